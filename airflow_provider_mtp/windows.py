"""The time window a task asks about, derived from its run so reruns ask the same question.

Windows are half-open, ``[start, end)``. The rule, shared by the hunting operator and the
incident sensor:

1. explicit ``start`` and ``end`` win;
2. else a non-empty data interval;
3. else ``lookback`` ending at the run's time;
4. else no window (the API's own 30 days).

With Airflow 3.3's defaults, ``timedelta`` schedules, ``@hourly``-style presets and cron strings
all give a zero-width interval (start == end), as do manual runs and ``dags test``; the rule falls
through to ``lookback`` for those. Real intervals come from ``CronDataIntervalTimetable`` and
``DeltaDataIntervalTimetable``, or from the ``[scheduler] create_cron_data_intervals`` /
``create_delta_data_intervals`` settings.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from airflow_provider_mtp.common.ticks import format_ticks, instant_ticks
from airflow_provider_mtp.common.utc import parse_iso, plain_utc

__all__ = ["Window", "format_instant", "resolve_window"]


def format_instant(when: datetime) -> str:
    """UTC ISO 8601 with ``Z`` and 7 fractional digits, as Defender writes times (naive means UTC)."""
    return format_ticks(instant_ticks(when))


@dataclass(frozen=True)
class Window:
    """A half-open time window ``[start, end)`` in UTC.

    :param start: first instant included.
    :param end: first instant excluded.
    """

    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise ValueError(f"window bounds need a time zone: {self.start!r}, {self.end!r}")
        if self.end <= self.start:
            raise ValueError(
                f"window end {self.end.isoformat()} is not after its start {self.start.isoformat()}"
            )
        object.__setattr__(self, "start", plain_utc(self.start))
        object.__setattr__(self, "end", plain_utc(self.end))

    @property
    def duration(self) -> timedelta:
        return self.end - self.start

    def as_dict(self) -> dict[str, str]:
        """``{"start", "end"}`` as ISO 8601 strings, for XCom and manifests."""
        return {"start": format_instant(self.start), "end": format_instant(self.end)}

    @property
    def timespan(self) -> str:
        """Graph's ``Timespan`` form ``start/end``."""
        return f"{format_instant(self.start)}/{format_instant(self.end)}"

    @classmethod
    def from_dict(cls, value: Mapping[str, Any]) -> Window:
        """The window :meth:`as_dict` wrote (or any ``{"start", "end"}`` of ISO 8601 strings).

        :raises ValueError: a bound is missing or not an ISO 8601 time with a zone.
        """
        start, end = _as_utc(value.get("start"), "start"), _as_utc(value.get("end"), "end")
        if start is None or end is None:
            raise ValueError(f"a window needs both start and end, got {dict(value)!r}")
        return cls(start, end)

    def label(self) -> str:
        """``[2026-11-01 00:00, 2026-11-02 00:00) UTC``: short, for log lines."""
        return f"[{_short(self.start)}, {_short(self.end)}) UTC"

    def halves(self) -> tuple[Window, Window]:
        """The window cut in two at its midpoint (whole microseconds).

        :raises ValueError: the window is 1 microsecond long and cannot be cut.
        """
        middle = self.start + (self.end - self.start) / 2
        if not self.start < middle < self.end:
            raise ValueError(f"window {self.label()} is too short to split")
        return Window(self.start, middle), Window(middle, self.end)

    def shifted(self, by: timedelta) -> Window:
        """The same window moved by ``by`` (negative: earlier)."""
        return Window(self.start + by, self.end + by)

    def contains(self, when: datetime) -> bool:
        return self.start <= when < self.end


def _short(when: datetime) -> str:
    if when.microsecond:
        return when.strftime("%Y-%m-%d %H:%M:%S.%f")
    if when.second:
        return when.strftime("%Y-%m-%d %H:%M:%S")
    return when.strftime("%Y-%m-%d %H:%M")


def _as_utc(value: Any, name: str) -> datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, str):
        try:
            value = parse_iso(value)
        except ValueError:
            raise ValueError(f"{name} is not an ISO 8601 time: {value!r}") from None
    if not isinstance(value, datetime):
        raise ValueError(f"{name} must be a datetime or an ISO 8601 string, got {type(value).__name__}")
    if value.tzinfo is None:
        raise ValueError(f"{name} needs a time zone (e.g. 2026-11-20T00:00:00Z), got {value.isoformat()}")
    return plain_utc(value)


def run_time(context: Mapping[str, Any]) -> datetime | None:
    """The run's own time: its logical date, else when it was due to run (manual runs)."""
    logical = context.get("logical_date")
    if logical is not None:
        return _as_utc(logical, "logical_date")
    dag_run = context.get("dag_run")
    run_after = getattr(dag_run, "run_after", None)
    return _as_utc(run_after, "run_after") if run_after is not None else None


def resolve_window(
    context: Mapping[str, Any],
    *,
    start: datetime | str | None = None,
    end: datetime | str | None = None,
    lookback: timedelta | None = None,
) -> Window | None:
    """The window for this run by the module's rule, or ``None`` for no window.

    :param context: the task's context (``data_interval_start``/``_end``, ``logical_date``, ``dag_run``).
    :param start: explicit first instant; needs ``end`` too.
    :param end: explicit end (excluded); needs ``start`` too.
    :param lookback: how far back from the run's time to look when the data interval is empty.
    """
    explicit_start, explicit_end = _as_utc(start, "start"), _as_utc(end, "end")
    if (explicit_start is None) != (explicit_end is None):
        raise ValueError("give both start and end, or neither (then the data interval or lookback is used)")
    if explicit_start is not None and explicit_end is not None:
        return Window(explicit_start, explicit_end)
    interval_start = _as_utc(context.get("data_interval_start"), "data_interval_start")
    interval_end = _as_utc(context.get("data_interval_end"), "data_interval_end")
    if interval_start is not None and interval_end is not None and interval_end > interval_start:
        return Window(interval_start, interval_end)
    if lookback is not None:
        if lookback <= timedelta(0):
            raise ValueError(f"lookback must be positive, got {lookback}")
        anchor = interval_end or run_time(context)
        if anchor is None:
            raise ValueError(
                "lookback needs the run's time, but the context has neither a data interval nor a logical date"
            )
        return Window(anchor - lookback, anchor)
    return None
