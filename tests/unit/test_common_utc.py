"""Plain UTC datetimes (common/utc.py): what windows and trigger arguments are made of."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pendulum
import pytest
from hypothesis import given
from hypothesis import strategies as st

from airflow_provider_mtp.common.utc import parse_iso, plain_utc


def test_a_pendulum_datetime_becomes_a_plain_one_at_the_same_instant() -> None:
    moment = pendulum.datetime(2026, 11, 20, 8, 30, 15, 123456, tz="Europe/Paris")
    plain = plain_utc(moment)
    assert type(plain) is datetime
    assert plain.tzinfo is UTC
    assert plain == datetime(2026, 11, 20, 7, 30, 15, 123456, tzinfo=UTC)
    # The reason it exists: arithmetic on a plain datetime keeps its zone.
    assert (plain - timedelta(hours=1)).tzinfo is UTC


@given(
    moment=st.datetimes(min_value=datetime(1900, 1, 2), max_value=datetime(2200, 1, 1)),
    minutes=st.integers(-14 * 60, 14 * 60),
)
def test_any_offset_gives_the_same_instant_in_utc(moment: datetime, minutes: int) -> None:
    aware = moment.replace(tzinfo=timezone(timedelta(minutes=minutes)))
    plain = plain_utc(aware)
    assert plain == aware
    assert plain.tzinfo is UTC
    assert plain.utcoffset() == timedelta(0)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-20T08:00:00Z", datetime(2026, 11, 20, 8, tzinfo=UTC)),
        ("2026-11-20T08:00:00z", datetime(2026, 11, 20, 8, tzinfo=UTC)),
        (" 2026-11-20T08:00:00+00:00 ", datetime(2026, 11, 20, 8, tzinfo=UTC)),
        ("2026-11-20T10:00:00+02:00", datetime(2026, 11, 20, 8, tzinfo=UTC)),
        ("2026-11-20T08:00:00.1234567Z", datetime(2026, 11, 20, 8, 0, 0, 123456, tzinfo=UTC)),
        ("2026-11-20", datetime(2026, 11, 20)),
        ("2026-11-20T08:00:00", datetime(2026, 11, 20, 8)),
    ],
)
def test_parse_iso(text: str, expected: datetime) -> None:
    parsed = parse_iso(text)
    assert parsed == expected
    assert (parsed.tzinfo is None) == (expected.tzinfo is None), "naive stays naive: the caller decides"


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "Invalid isoformat string"),
        ("yesterday", "Invalid isoformat string"),
        ("2026-13-01T00:00:00Z", "month must be in 1..12"),
        ("2026-11-20T25:00:00Z", "hour must be in 0..23"),
    ],
)
def test_parse_iso_refuses_what_is_not_iso(text: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        parse_iso(text)
