"""Hunting time windows: the Graph ``Timespan`` (ISO 8601 interval or duration) and the data window."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from airflow_provider_mtp.common.durations import InvalidDurationError, iso_duration
from airflow_provider_mtp.common.utc import parse_iso
from airflow_provider_mtp.emulator.hunting_errors import HuntingError

TIMESPAN_FORMS = (
    "start/end (2024-02-01T08:00:00Z/2024-02-15T08:00:00Z), duration/end (P30D/2024-02-15T08:00:00Z), "
    "start/duration (2024-02-01T08:00:00Z/P30D), duration back from now (P30D) or start only "
    "(2024-02-01T08:00:00Z); durations are ISO 8601 (P30D, PT6H, P1DT2H)"
)


def _timespan_error(value: str, why: str = "") -> HuntingError:
    detail = f" ({why})" if why else ""
    return HuntingError(
        f"Invalid Timespan '{value}'{detail}. Accepted forms: {TIMESPAN_FORMS}.", kind="timespan"
    )


def parse_duration(text: str) -> timedelta | None:
    """An ISO 8601 duration (``P30D``, ``PT6H``, ``P1DT2H30M``), or None if ``text`` is not one.

    Years count 365 days and months 30, as .NET's ``XmlConvert`` (which Graph parses Timespan
    with) reads them.

    :param text: the candidate duration.
    """
    try:
        return iso_duration(text, calendar=True)
    except InvalidDurationError:
        return None


def parse_instant(text: str) -> datetime | None:
    """An ISO 8601 date or date-time (offset-less means UTC), or None if ``text`` is not one.

    :param text: the candidate instant, e.g. ``2024-02-01T08:00:00Z`` or ``2024-02-01``.
    """
    try:
        moment = parse_iso(text)
    except ValueError:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def parse_timespan(value: str, now: datetime) -> tuple[datetime, datetime]:
    """The ``[start, end)`` a Graph ``Timespan`` asks for, before the data window applies.

    :param value: one of the forms in :data:`TIMESPAN_FORMS`.
    :param now: the data clock's time, the end of the open-ended forms.
    :raises HuntingError: (400, kind ``timespan``) for anything else, or a start after the end.
    """
    parts = value.strip().split("/")
    if len(parts) == 1:
        duration = parse_duration(parts[0])
        if duration is not None:
            return now - duration, now
        start = parse_instant(parts[0])
        if start is None:
            raise _timespan_error(value)
        return start, now
    if len(parts) != 2:
        raise _timespan_error(value)
    first, second = parts
    start, end = parse_instant(first), parse_instant(second)
    first_duration, second_duration = parse_duration(first), parse_duration(second)
    if start is None and first_duration is not None and end is not None:
        start = end - first_duration
    elif end is None and second_duration is not None and start is not None:
        end = start + second_duration
    if start is None or end is None:
        raise _timespan_error(value)
    if start > end:
        raise _timespan_error(value, "the start is after the end")
    return start, end


def hunting_window(timespan: str | None, now: datetime, data_days: int) -> tuple[datetime, datetime]:
    """The half-open ``[start, end)`` a query sees: ``Timespan`` within the last ``data_days`` days.

    An absent or blank ``Timespan`` means the whole data window. An intersection that is empty
    (a ``Timespan`` wholly in the future or the distant past) gives an empty window, not an error.

    :param timespan: the Graph ``Timespan``, or None (legacy API, or Graph without one).
    :param now: the data clock's time; nothing at or after it is visible.
    :param data_days: days of data the service keeps.
    """
    data_start = now - timedelta(days=data_days)
    if timespan is None or not timespan.strip():
        return data_start, now
    start, end = parse_timespan(timespan, now)
    start, end = max(start, data_start), min(end, now)
    return (start, end) if start < end else (end, end)
