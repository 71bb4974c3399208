"""What a hunt asks, piece by piece, and how far it got: the state a deferred hunt resumes from.

The text sent for a window is always built the same way, so a rerun asks exactly the same
question and gets the same ``query_sha256``::

    let device = "ws-01";                                   <- bound parameters, sorted by name
    let WindowStart = datetime(2026-11-01T00:00:00.0000000Z);
    let WindowEnd = datetime(2026-11-02T00:00:00.0000000Z);  <- the window (when there is one)
    DeviceProcessEvents | where ...                          <- the query as rendered

:class:`HuntProgress` is plain data with a JSON form (:meth:`HuntProgress.to_json`): the
windows still to run (in time order), the pieces done with their part files and row counts, and
for results going to XCom the rows so far. It travels in the ``kwargs`` of a deferral, never
pickled, and with an output file a copy is also saved next to the part files.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from airflow_provider_mtp.windows import Window, format_instant

__all__ = ["DonePiece", "HuntProgress", "Piece", "query_sha256", "task_token", "window_bindings"]

#: Version of the JSON form; a resumed task refuses another.
PROGRESS_VERSION = 1


def window_bindings(window: Window | None) -> str:
    """``let WindowStart = datetime(...);`` and ``let WindowEnd``, or ``""`` without a window."""
    if window is None:
        return ""
    return (
        f"let WindowStart = datetime({format_instant(window.start)});\n"
        f"let WindowEnd = datetime({format_instant(window.end)});\n"
    )


def task_token(context: Mapping[str, Any]) -> str | None:
    """A name for one task instance's part files: the same on every try and after a deferral.

    Derived from the DAG, task, run and map index, so a resumed task finds its parts even when
    the deferral's ``kwargs`` did not come back (``dag.test()`` in Airflow 3.3 drops them), and a
    retry finds, and removes, what a failed try left behind.

    :param context: the task context (``ti``).
    """
    ti = context.get("ti")
    if ti is None:
        return None
    key = f"{ti.dag_id}\n{ti.task_id}\n{ti.run_id}\n{getattr(ti, 'map_index', -1)}"
    return hashlib.sha256(key.encode()).hexdigest()[:16]


def query_sha256(text: str) -> str:
    """SHA-256 of the query text as sent (UTF-8), hex."""
    return hashlib.sha256(text.encode()).hexdigest()


def _window_json(window: Window | None) -> dict[str, str] | None:
    # Microsecond ISO text: exact for Python datetimes (format_instant pads to 7 digits).
    return None if window is None else {"start": window.start.isoformat(), "end": window.end.isoformat()}


def _window_from(value: Mapping[str, Any] | None) -> Window | None:
    return None if value is None else Window.from_dict(value)


@dataclass
class Piece:
    """A window still to run.

    :param window: the window (``None``: the service's own 30 days).
    :param depth: how many times the whole window was halved to get it.
    """

    window: Window | None
    depth: int = 0

    def to_json(self) -> dict[str, Any]:
        return {"window": _window_json(self.window), "depth": self.depth}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Piece:
        return cls(window=_window_from(data["window"]), depth=int(data["depth"]))


@dataclass
class DonePiece:
    """A window that ran and fit.

    :param window: its window.
    :param rows: rows it returned.
    :param query_sha256: hash of its query text.
    :param part: its part file's URI (results to a file), else ``None``.
    """

    window: Window | None
    rows: int
    query_sha256: str
    part: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "window": _window_json(self.window),
            "rows": self.rows,
            "query_sha256": self.query_sha256,
            "part": self.part,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> DonePiece:
        return cls(
            window=_window_from(data["window"]),
            rows=int(data["rows"]),
            query_sha256=str(data["query_sha256"]),
            part=data.get("part"),
        )

    def manifest_entry(self) -> dict[str, Any]:
        """``{"window", "rows", "query_sha256"}`` for the manifest's ``pieces``."""
        return {
            "window": None if self.window is None else self.window.as_dict(),
            "rows": self.rows,
            "query_sha256": self.query_sha256,
        }


@dataclass
class HuntProgress:
    """One hunt: its question, the windows to run, the pieces done.

    :param parameters: the bound parameters' ``let`` lines.
    :param query: the query as rendered.
    :param window: the whole window, or ``None``.
    :param token: names this run's part files (``<output>.parts/<token>/``).
    :param pending: windows still to run, in time order.
    :param done: pieces that fit, in time order.
    :param schema: the result's columns, once known.
    :param rows: for results going to XCom, the rows so far (``None`` with an output file).
    :param next_part: number of the next part file.
    :param deferrals: times the task deferred on throttling so far.
    :param deferred_s: seconds those deferrals waited, in all.
    """

    parameters: str
    query: str
    window: Window | None
    token: str = field(default_factory=lambda: uuid.uuid4().hex[:16])
    pending: list[Piece] = field(default_factory=list)
    done: list[DonePiece] = field(default_factory=list)
    schema: list[dict[str, str]] | None = None
    rows: list[dict[str, Any]] | None = None
    next_part: int = 0
    deferrals: int = 0
    deferred_s: float = 0.0

    @classmethod
    def start(
        cls, *, parameters: str, query: str, window: Window | None, to_xcom: bool, token: str | None = None
    ) -> HuntProgress:
        """A hunt with nothing run yet: one piece, the whole window.

        :param token: names the part files; by default a random one.
        """
        return cls(
            parameters=parameters,
            query=query,
            window=window,
            token=token or uuid.uuid4().hex[:16],
            pending=[Piece(window)],
            rows=[] if to_xcom else None,
        )

    def text_for(self, window: Window | None) -> str:
        """The query text sent for ``window``: parameters, window bindings, query."""
        return self.parameters + window_bindings(window) + self.query

    @property
    def query_sha256(self) -> str:
        """Hash of the unsplit question (the whole window)."""
        return query_sha256(self.text_for(self.window))

    @property
    def total_rows(self) -> int:
        return sum(piece.rows for piece in self.done)

    def to_json(self) -> dict[str, Any]:
        """The JSON form, for a deferral's ``kwargs``."""
        return {
            "version": PROGRESS_VERSION,
            "parameters": self.parameters,
            "query": self.query,
            "window": _window_json(self.window),
            "token": self.token,
            "pending": [piece.to_json() for piece in self.pending],
            "done": [piece.to_json() for piece in self.done],
            "schema": self.schema,
            "rows": self.rows,
            "next_part": self.next_part,
            "deferrals": self.deferrals,
            "deferred_s": self.deferred_s,
        }

    @classmethod
    def from_json(cls, data: Any) -> HuntProgress:
        """Read :meth:`to_json`'s output back.

        :raises ValueError: not that shape, or another version.
        """
        if not isinstance(data, Mapping) or data.get("version") != PROGRESS_VERSION:
            raise ValueError(
                f"not a hunt progress record of version {PROGRESS_VERSION}: {type(data).__name__}"
            )
        try:
            return cls(
                parameters=str(data["parameters"]),
                query=str(data["query"]),
                window=_window_from(data["window"]),
                token=str(data["token"]),
                pending=[Piece.from_json(piece) for piece in data["pending"]],
                done=[DonePiece.from_json(piece) for piece in data["done"]],
                schema=data["schema"],
                rows=data["rows"],
                next_part=int(data["next_part"]),
                deferrals=int(data["deferrals"]),
                # Absent from records saved before it was added; they resume from 0 s.
                deferred_s=float(data.get("deferred_s", 0.0)),
            )
        except (KeyError, TypeError) as exc:
            raise ValueError(f"hunt progress record is incomplete: {type(exc).__name__}: {exc}") from exc
