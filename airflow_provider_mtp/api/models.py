"""What the back ends hand back: a streamed hunting result, and small incident helpers.

A hunting reply can hold 100,000 rows (tens of MB of JSON). :class:`HuntingResult` parses it
incrementally while the caller iterates (:class:`~airflow_provider_mtp.api.reply_scan.ReplyScanner`:
each row decoded once by the standard library's C scanner), so the document never sits in memory
whole and the rows are never held twice. :attr:`HuntingResult.rows_with_text` also hands out each
row's JSON text as the service sent it, which a JSON Lines writer copies instead of encoding again.

Both reply shapes are read: Graph's ``schema`` (``name``/``type``) and ``results``, and the
legacy API's ``Stats``, ``Schema`` (``Name``/``Type``) and ``Results``. Key case is taken as it
comes, so either shape is understood whichever back end sent it.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator, Mapping
from types import TracebackType
from typing import Any

import requests

from airflow_provider_mtp.api.reply_scan import ReplyScanner
from airflow_provider_mtp.error_replies import ReplyCutOff
from airflow_provider_mtp.errors import MTPServiceError

__all__ = ["HuntingResult", "incident_key"]

#: Bytes read from the socket per parser step (measured: larger chunks parse no faster).
CHUNK_SIZE = 16 * 1024

_END = object()


def _schema_entry(column: Mapping[str, Any]) -> dict[str, str]:
    name = column.get("name", column.get("Name"))
    kind = column.get("type", column.get("Type"))
    return {"name": str(name), "type": str(kind)}


class _Rows(Iterator[Any]):
    """The rows iterator: resumable, but a second pass after the end is an error, not silence.

    :param result: the result read from.
    """

    def __init__(self, *, result: HuntingResult) -> None:
        self._result = result

    def __iter__(self) -> _Rows:
        if self._result.exhausted:
            raise RuntimeError(
                "HuntingResult.rows streams from the reply and can be read only once; it was already "
                "read to the end (or the result was closed). Keep the rows (rows = list(result.rows)) "
                "or run the query again."
            )
        return self

    def __next__(self) -> Any:
        return self._result._next_pair()[0]


class _RowsWithText(_Rows):
    """The same stream as ``(row, text)`` pairs."""

    def __next__(self) -> Any:
        return self._result._next_pair()


class HuntingResult:
    """A hunting result: ``schema``, ``rows`` (an iterator, consumed once) and ``stats``.

    Build it with :meth:`from_response` (streaming) or :meth:`from_rows` (rows already in hand).
    The reply is closed when the rows run out, on :meth:`close`, or on leaving a ``with`` block.

    If a reply puts ``schema`` after ``results`` (no service does today), reading :attr:`schema`
    before the rows buffers the rows read up to the schema in memory: correct, but not streamed.

    :param response: the open reply, body unread; ``None`` with ``rows``.
    :param rows: rows already in hand, when there is no reply.
    :param schema: the columns, when known up front.
    :param stats: the legacy API's ``Stats``, when known up front.
    :param chunk_size: bytes read per parser step.
    """

    def __init__(
        self,
        *,
        response: requests.Response | None = None,
        rows: Iterable[dict[str, Any]] = (),
        schema: list[dict[str, str]] | None = None,
        stats: dict[str, Any] | None = None,
        chunk_size: int = CHUNK_SIZE,
    ) -> None:
        self._response = response
        self._given_rows: Iterator[dict[str, Any]] | None = iter(rows)
        self._schema = schema
        self._stats = stats
        self._chunk_size = chunk_size
        #: Rows parsed and not handed out yet, ``(row, text)``: the scanner's own queue.
        self._pending: deque[tuple[dict[str, Any], str | None]] = deque()
        self._chunks: Iterator[bytes] | None = None
        self._scanner: ReplyScanner | None = None
        self._eof = response is None
        self._closed = False
        self._rows = _Rows(result=self)
        #: Rows handed out so far.
        self.rows_read = 0

    # ----------------------------------------------------------------------------------------------
    # Construction
    # ----------------------------------------------------------------------------------------------

    @classmethod
    def from_response(cls, response: requests.Response, *, chunk_size: int = CHUNK_SIZE) -> HuntingResult:
        """Start parsing a 2xx hunting reply: reads up to the first row (or the end).

        Reading ahead to the first row means a reply cut off before any row raises here, inside
        the transport's retry loop, where it is retried; later the rows are the caller's.

        :param response: the reply, body unread (``stream=True``).
        :param chunk_size: bytes read per parser step.
        :raises ReplyCutOff: the body ended early or is not JSON (the reply is closed).
        """
        result = cls(response=response, chunk_size=chunk_size)
        try:
            while not result._pending and not result._eof:
                result._feed()
        except BaseException:
            result.close()
            raise
        return result

    @classmethod
    def from_rows(
        cls,
        *,
        schema: list[dict[str, str]],
        rows: Iterable[dict[str, Any]],
        stats: dict[str, Any] | None = None,
    ) -> HuntingResult:
        """A result from rows already in hand (tests, the async hook, a cached result)."""
        return cls(rows=rows, schema=[_schema_entry(column) for column in schema], stats=stats)

    # ----------------------------------------------------------------------------------------------
    # Public view
    # ----------------------------------------------------------------------------------------------

    @property
    def schema(self) -> list[dict[str, str]]:
        """The columns, ``[{"name": ..., "type": ...}]`` in result order."""
        if self._schema is None and not self._eof:
            # Schema after the results: read on, keeping the rows for the caller.
            self._read_on(until=lambda: self._schema is not None)
        return list(self._schema or [])

    @property
    def rows(self) -> Iterator[dict[str, Any]]:
        """The rows as dicts, streamed; iterate once (stopping and resuming is fine)."""
        return self._rows

    @property
    def rows_with_text(self) -> Iterator[tuple[dict[str, Any], str | None]]:
        """The rows as ``(row, text)`` pairs: ``text`` is the row's JSON exactly as the service sent
        it (``None`` for rows given in hand). The same stream as :attr:`rows`: read one of them."""
        return _RowsWithText(result=self)

    @property
    def stats(self) -> dict[str, Any] | None:
        """The legacy API's ``Stats`` (Graph sends none): known once the parser has passed it."""
        if self._stats is None and not self._eof and self._schema is None:
            # Legacy replies send Stats before Schema: once the schema is in, so are the stats.
            self._read_on(until=lambda: self._stats is not None or self._schema is not None)
        return self._stats

    @property
    def exhausted(self) -> bool:
        """True once every row was handed out or the result was closed."""
        return self._closed or (self._eof and not self._pending and self._given_rows is None)

    def close(self) -> None:
        """Close the reply; rows not read yet are dropped."""
        self._closed = True
        self._pending.clear()
        self._scanner = None
        self._release()

    def __enter__(self) -> HuntingResult:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        columns = ", ".join(column["name"] for column in self._schema or [])
        return f"<HuntingResult columns=[{columns}] rows_read={self.rows_read}>"

    # ----------------------------------------------------------------------------------------------
    # Parsing
    # ----------------------------------------------------------------------------------------------

    def _next_row(self) -> dict[str, Any]:
        return self._next_pair()[0]

    def _next_pair(self) -> tuple[dict[str, Any], str | None]:
        if self._closed:
            raise StopIteration
        if self._given_rows is not None:
            row = next(self._given_rows, _END)
            if row is not _END:
                self.rows_read += 1
                return row, None  # type: ignore[return-value]
            self._given_rows = None
        while not self._pending:
            if self._eof:
                self.close()
                raise StopIteration
            try:
                self._feed()
            except ReplyCutOff as exc:
                self.close()
                raise MTPServiceError(
                    f"The hunting reply was cut off after {self.rows_read} rows ({exc}). The rows before "
                    "were delivered; run the query again to get all of them."
                ) from exc
        self.rows_read += 1
        return self._pending.popleft()

    def _read_on(self, *, until: Any) -> None:
        try:
            while not until() and not self._eof and not self._closed:
                self._feed()
        except ReplyCutOff as exc:
            self.close()
            raise MTPServiceError(f"The hunting reply was cut off ({exc}); run the query again.") from exc

    def _release(self) -> None:
        """Close the reply and let go of it: the result and its rows iterator refer to each other,
        so a reply kept here would pin its socket until the garbage collector runs."""
        response, self._response = self._response, None
        self._chunks = None if self._eof or self._closed else self._chunks
        if response is not None:
            response.close()

    def _start(self) -> None:
        assert self._response is not None
        self._chunks = self._response.iter_content(chunk_size=self._chunk_size)

    def _feed(self) -> None:
        """Parse one more chunk; the end of the body finishes (and validates) the document."""
        if self._chunks is None:
            self._start()
        assert self._chunks is not None
        try:
            chunk = next(self._chunks, None)
        except (requests.exceptions.RequestException, OSError, ValueError) as exc:
            raise ReplyCutOff(f"the connection dropped: {type(exc).__name__}") from exc
        self._parse(chunk)

    def _parse(self, chunk: bytes | None) -> None:
        """Feed one chunk (``None`` at the end of the body) to the scanner; no I/O."""
        scanner = self._scanner
        if scanner is None:
            scanner = self._scanner = ReplyScanner()
            # Rows go straight to the queue handed out (the scanner's texts are never None).
            scanner.rows = self._pending  # type: ignore[assignment]
        try:
            if chunk is None:
                self._eof = True
                scanner.finish()
                self._release()
            elif chunk:
                scanner.feed(chunk)
        except ValueError as exc:  # json.JSONDecodeError, UnicodeDecodeError
            raise ReplyCutOff(f"the body is not whole JSON: {str(exc).splitlines()[0]}") from exc
        if self._schema is None and scanner.schema is not None:
            columns = scanner.schema
            self._schema = [_schema_entry(column) for column in columns] if isinstance(columns, list) else []
        if self._stats is None and scanner.stats is not None:
            self._stats = scanner.stats if isinstance(scanner.stats, dict) else None


def incident_key(incident: Mapping[str, Any]) -> tuple[str, str]:
    """``(id, lastUpdateDateTime)`` of a Graph-shape incident: the key to deduplicate a ``ge`` window.

    The timestamp is the string as received (7 fractional digits kept), not a parsed datetime.
    """
    return str(incident.get("id")), str(incident.get("lastUpdateDateTime") or "")
