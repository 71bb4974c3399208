"""Times as 100-ns ticks since the Unix epoch: the precision Defender stamps updates with.

Python's ``datetime`` keeps microseconds, one digit short of the seven the services send and
OData datetime literals accept. Comparing, splitting and writing bounds in integer ticks keeps an
update exactly on a boundary in exactly one window. Pure functions, no I/O; shared by the listing
planner (:mod:`airflow_provider_mtp.api.listing`) and the triggers.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

__all__ = [
    "TICKS_PER_SECOND",
    "format_ticks",
    "instant_ticks",
    "ticks_instant",
    "timestamp_ticks",
]

#: 100-ns ticks per second.
TICKS_PER_SECOND = 10_000_000

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
_TIMESTAMP = re.compile(
    r"^(?P<base>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(?P<fraction>\d+))?(?P<zone>Z|z|[+-]\d{2}:?\d{2})?$"
)


def instant_ticks(when: datetime) -> int:
    """A timezone-aware datetime as 100-ns ticks since the Unix epoch (naive means UTC)."""
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return (when.astimezone(UTC) - _EPOCH) // _MICROSECOND * 10


def ticks_instant(ticks: int) -> datetime:
    """100-ns ticks as a datetime (rounded down to the microsecond)."""
    return _EPOCH + timedelta(microseconds=ticks // 10)


def timestamp_ticks(value: Any) -> int | None:
    """A Defender timestamp (0-7 fractional digits, ``Z`` or an offset) as 100-ns ticks; ``None`` if unreadable.

    Digits past the seventh are dropped (the services send at most seven); a time without a zone
    is taken as UTC, as the services mean it.
    """
    if not isinstance(value, str):
        return None
    match = _TIMESTAMP.match(value.strip())
    if match is None:
        return None
    zone = match.group("zone") or "+00:00"
    try:
        base = datetime.fromisoformat(match.group("base") + ("+00:00" if zone in ("Z", "z") else zone))
    except ValueError:
        return None
    fraction = (match.group("fraction") or "")[:7].ljust(7, "0")
    return instant_ticks(base) + int(fraction)


def format_ticks(ticks: int) -> str:
    """Ticks as an OData datetime literal with all 7 fractional digits: ``2024-05-01T10:00:00.1234567Z``."""
    seconds, fraction = divmod(ticks, TICKS_PER_SECOND)
    moment = _EPOCH + timedelta(seconds=seconds)
    return f"{moment:%Y-%m-%dT%H:%M:%S}.{fraction:07d}Z"
