"""Times as 100-ns ticks since the Unix epoch: the precision Defender stamps updates with.

Python's ``datetime`` keeps microseconds, one digit short of the seven the services send and
OData datetime literals accept. Comparing, splitting and writing bounds in integer ticks keeps an
update exactly on a boundary in exactly one window. Pure functions, no I/O; shared by the listing
planner, the triggers, the KQL writer and the emulator.

Two readers of timestamp text, on one parser:

* :func:`timestamp_ticks` reads what a service sends and is lenient (no zone means UTC, digits
  past the seventh are dropped, an offset may omit its colon); it gives ``None`` for anything else.
* :func:`odata_ticks` reads an OData ``DateTimeOffset`` literal as the services check it (a zone
  is required, at most seven fractional digits, ``±hh:mm`` offsets) and says what is wrong.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any, Final

__all__ = [
    "TICKS_PER_SECOND",
    "InvalidTimestampError",
    "duration_ticks",
    "format_ticks",
    "instant_ticks",
    "odata_ticks",
    "ticks_instant",
    "timestamp_ticks",
]

#: 100-ns ticks per second.
TICKS_PER_SECOND: Final = 10_000_000

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND: Final = timedelta(microseconds=1)
# The union of both readers' forms; each reader then applies its own rules.
_TIMESTAMP: Final = re.compile(
    r"(?P<date>\d{4}-\d{2}-\d{2})"
    r"(?:[Tt](?P<hour>\d{2}):(?P<minute>\d{2})(?::(?P<second>\d{2})(?:\.(?P<fraction>\d+))?)?)?"
    r"(?P<zone>[Zz]|[+-]\d{2}:?\d{2})?",
    re.ASCII,
)


class InvalidTimestampError(ValueError):
    """A timestamp :func:`odata_ticks` cannot read.

    :param value: the text.
    :param reason: what is wrong with it.
    """

    def __init__(self, value: str, reason: str) -> None:
        super().__init__(f"Invalid datetime {value!r}: {reason}")
        self.value = value
        self.reason = reason


def instant_ticks(when: datetime) -> int:
    """A datetime as 100-ns ticks since the Unix epoch (naive means UTC).

    :param when: the instant.
    """
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return (when.astimezone(UTC) - _EPOCH) // _MICROSECOND * 10


def ticks_instant(ticks: int) -> datetime:
    """100-ns ticks as a UTC datetime, cut to the microsecond (never later than the ticks).

    :param ticks: 100-ns ticks since the Unix epoch.
    """
    return _EPOCH + timedelta(microseconds=ticks // 10)


def duration_ticks(duration: timedelta) -> int:
    """A duration as 100-ns ticks (Kusto's ``timespan`` unit), exact.

    :param duration: the duration; negative gives negative ticks.
    """
    return duration // _MICROSECOND * 10


def format_ticks(ticks: int, *, trim: bool = False) -> str:
    """Ticks as a UTC timestamp: ``2024-05-01T10:00:00.1234567Z``.

    :param ticks: 100-ns ticks since the Unix epoch.
    :param trim: drop trailing fractional zeros (and the dot if nothing is left), as the services
        write stamps; by default all seven digits are written, as OData literals and bounds want.
    """
    seconds, fraction = divmod(ticks, TICKS_PER_SECOND)
    moment = _EPOCH + timedelta(seconds=seconds)
    # Not strftime: its %Y writes year 999 as "999", and every reader wants four digits.
    text = (
        f"{moment.year:04d}-{moment.month:02d}-{moment.day:02d}"
        f"T{moment.hour:02d}:{moment.minute:02d}:{moment.second:02d}"
    )
    digits = f"{fraction:07d}"
    if trim:
        digits = digits.rstrip("0")
    return f"{text}.{digits}Z" if digits else f"{text}Z"


def timestamp_ticks(value: Any) -> int | None:
    """A service's timestamp (0-7 fractional digits, ``Z`` or an offset) as ticks; ``None`` if unreadable.

    Digits past the seventh are dropped (the services send at most seven); a time without a zone
    is taken as UTC, as the services mean it. Seconds are required.

    :param value: the value from a reply; anything but text gives ``None``.
    """
    if not isinstance(value, str):
        return None
    match = _TIMESTAMP.fullmatch(value.strip())
    if match is None or match["second"] is None:
        return None
    try:
        return _ticks(value, match, fraction=(match["fraction"] or "")[:7])
    except InvalidTimestampError:
        return None


def odata_ticks(value: str) -> int:
    """The ticks of an OData ``DateTimeOffset`` literal, exact to the tick.

    Accepts what Defender sends and OData allows: ``YYYY-MM-DDThh:mm[:ss[.f{1,7}]]`` followed by
    ``Z`` or ``±hh:mm``.

    :param value: the literal.
    :raises InvalidTimestampError: (a :class:`ValueError`) not such a literal (no time zone, more
        than 7 fractional digits, a month 13, ...).
    """
    match = _TIMESTAMP.fullmatch(value)
    zone = match["zone"] if match else None
    if match is None or match["hour"] is None or (zone is not None and len(zone) == 5):
        raise InvalidTimestampError(value, "expected YYYY-MM-DDThh:mm[:ss[.fffffff]] and Z or ±hh:mm")
    fraction = match["fraction"] or ""
    if len(fraction) > 7:
        raise InvalidTimestampError(value, "at most 7 fractional digits (100 ns) are allowed")
    if zone is None:
        raise InvalidTimestampError(value, "a time zone is required (Z or ±hh:mm)")
    return _ticks(value, match, fraction=fraction)


def _ticks(value: str, match: re.Match[str], *, fraction: str) -> int:
    """The ticks of a matched timestamp whose fraction has at most 7 digits (no zone means UTC)."""
    try:
        # Only to validate the calendar fields; the arithmetic stays in integers.
        year, month, day = (int(part) for part in match["date"].split("-"))
        moment = datetime(
            year,
            month,
            day,
            int(match["hour"] or 0),
            int(match["minute"] or 0),
            int(match["second"] or 0),
            tzinfo=UTC,
        )
    except ValueError as exc:
        raise InvalidTimestampError(value, str(exc)) from exc
    seconds = (moment - _EPOCH) // timedelta(seconds=1) - _offset_seconds(value, match["zone"])
    return seconds * TICKS_PER_SECOND + int(fraction.ljust(7, "0"))


def _offset_seconds(value: str, zone: str | None) -> int:
    if zone is None or zone in ("Z", "z"):
        return 0
    hours, minutes = int(zone[1:3]), int(zone[-2:])
    if hours > 23 or minutes > 59:
        raise InvalidTimestampError(value, f"time zone offset {zone} is out of range")
    sign = -1 if zone[0] == "-" else 1
    return sign * (hours * 3_600 + minutes * 60)
