"""A standard-library UTC ``datetime`` from any aware one, pendulum's ``DateTime`` included."""

from __future__ import annotations

from datetime import UTC, datetime

__all__ = ["plain_utc"]


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
