"""What every bench script prints and saves: rows of measurements, ratios against a baseline of the
same run, and each target as MET or MISSED.

A script builds a :class:`Report`, adds rows (:meth:`Report.row`) and targets
(:meth:`Report.target`), then calls :meth:`Report.finish`, which prints the table and the targets
and writes everything as JSON to ``bench/results/<name>.json``. Absolute times are printed for
context only; the targets are ratios (or counts), because these machines are noisy.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"


@dataclass(frozen=True)
class Target:
    """One target: ``value`` compared with ``limit`` (``<=`` unless ``at_least``)."""

    what: str
    value: float
    limit: float
    at_least: bool = False
    unit: str = "x"

    @property
    def met(self) -> bool:
        return self.value >= self.limit if self.at_least else self.value <= self.limit

    def line(self) -> str:
        sign = ">=" if self.at_least else "<="
        verdict = "MET" if self.met else "MISSED"
        return (
            f"{verdict:<6} {self.what}: {self.value:.3g}{self.unit} (target {sign} {self.limit:g}{self.unit})"
        )


@dataclass
class Report:
    """The table and targets of one bench script.

    :param name: the script's name, also the results file's (``bench/results/<name>.json``).
    :param title: one line saying what is measured.
    :param columns: the table's column names.
    """

    name: str
    title: str
    columns: Sequence[str]
    rows: list[list[Any]] = field(default_factory=list)
    targets: list[Target] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    def row(self, *values: Any) -> None:
        """Add a table row (values in :attr:`columns` order)."""
        if len(values) != len(self.columns):
            raise ValueError(f"{self.name}: a row needs {len(self.columns)} values, got {len(values)}")
        self.rows.append(list(values))

    def target(
        self, what: str, value: float, limit: float, *, at_least: bool = False, unit: str = "x"
    ) -> Target:
        """Record a target; ``value <= limit`` is MET (``>=`` with ``at_least``)."""
        found = Target(what, float(value), float(limit), at_least, unit)
        self.targets.append(found)
        return found

    def note(self, text: str) -> None:
        """A line printed under the table (why a peer was skipped, what a profile showed)."""
        self.notes.append(text)

    def finish(self) -> int:
        """Print the table, the notes and the targets; write the JSON; the number of MISSED targets."""
        print(f"\n== {self.name}: {self.title}")
        print(format_table(self.columns, self.rows))
        for line in self.notes:
            print(f"note: {line}")
        for found in self.targets:
            print(found.line())
        RESULTS.mkdir(parents=True, exist_ok=True)
        document = {
            "name": self.name,
            "title": self.title,
            "when": datetime.now(UTC).isoformat(timespec="seconds"),
            "machine": machine(),
            "command": " ".join([Path(sys.executable).name, *sys.argv]),
            "columns": list(self.columns),
            "rows": self.rows,
            "notes": self.notes,
            "targets": [{**asdict(t), "met": t.met} for t in self.targets],
            **self.extra,
        }
        (RESULTS / f"{self.name}.json").write_text(json.dumps(document, indent=2, default=str) + "\n")
        return sum(not t.met for t in self.targets)


def format_table(columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """A plain-text table, columns padded to their widest cell."""
    cells = [[str(c) for c in columns], *[[_cell(v) for v in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(columns))]
    lines = [" | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells]
    lines.insert(1, "-|-".join("-" * w for w in widths))
    return "\n".join(lines)


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 1000 else f"{value:,.0f}"
    return str(value)


def machine() -> str:
    """The machine, for the published table: CPU count, Python, platform."""
    return f"{os.cpu_count()} CPU, Python {platform.python_version()}, {platform.platform(terse=True)}"


def median(values: Iterable[float]) -> float:
    return float(statistics.median(list(values)))


def timed(call: Callable[[], Any]) -> tuple[float, float, Any]:
    """Run ``call``; its wall time, CPU time of this process (s) and result."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = call()
    return time.perf_counter() - wall, time.process_time() - cpu, result


def peak_rss_mib() -> float:
    """This process's peak resident set size so far (``VmHWM``), in MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def rss_mib(pid: int | str = "self") -> float:
    """A process's current resident set size (``VmRSS``), in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS in /proc/{pid}/status")
