"""UTC datetimes: a plain one from any aware one (pendulum's ``DateTime`` included), and ISO 8601 text read."""

from __future__ import annotations

from datetime import UTC, datetime

__all__ = ["parse_iso", "plain_utc"]


def plain_utc(when: datetime) -> datetime:
    """``when`` as a standard-library ``datetime`` in UTC, exact to the microsecond.

    Airflow's context holds pendulum ``DateTime`` values; pendulum drops a standard-library
    ``tzinfo`` on arithmetic (``DateTime - timedelta`` comes back naive), and its type does not
    survive serialisation, so windows and trigger arguments are made of plain datetimes.

    :param when: an aware datetime (a naive one is read as local time, as ``astimezone`` does).
    """
    when = when.astimezone(UTC)
    return datetime(
        when.year, when.month, when.day, when.hour, when.minute, when.second, when.microsecond, tzinfo=UTC
    )


def parse_iso(text: str) -> datetime:
    """An ISO 8601 date or date-time as a ``datetime``, with ``Z`` or ``z`` read as UTC.

    ``datetime.fromisoformat`` (Python 3.11+) reads ``Z``, offsets and seven fractional digits (the
    seventh is dropped); only the lower-case ``z`` is left to this function. Whether a time without
    a zone is acceptable is the caller's rule: it comes back naive.

    :param text: the text; surrounding spaces are ignored.
    :raises ValueError: not ISO 8601.
    """
    stripped = text.strip()
    if stripped.endswith("z"):
        stripped = stripped[:-1] + "Z"
    return datetime.fromisoformat(stripped)
