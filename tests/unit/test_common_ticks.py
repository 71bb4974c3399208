"""100-ns ticks (common/ticks.py): the one conversion the listing, the triggers, KQL and the emulator use."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from airflow_provider_mtp.common.ticks import (
    TICKS_PER_SECOND,
    InvalidTimestampError,
    duration_ticks,
    format_ticks,
    instant_ticks,
    odata_ticks,
    ticks_instant,
    timestamp_ticks,
)

MOMENTS = st.datetimes(min_value=datetime(1900, 1, 1), max_value=datetime(2200, 1, 1), timezones=st.just(UTC))
TICKS = st.integers(odata_ticks("1900-01-01T00:00:00Z"), odata_ticks("2200-01-01T00:00:00Z"))


# OData literals (the emulator's $filter): strict ---------------------------------------------------


@pytest.mark.parametrize(
    ("left", "right", "difference"),
    [
        ("2020-09-06T14:46:57.0733333Z", "2020-09-06T14:46:57.0733334Z", -1),
        ("2020-09-06T14:46:57.29Z", "2020-09-06T14:46:57.2900000Z", 0),
        ("2020-09-04T05:22:59Z", "2020-09-04T05:22:59.0000000Z", 0),
        ("2020-09-04T05:22Z", "2020-09-04T05:22:00Z", 0),
        ("2024-05-01T02:00:00+02:00", "2024-05-01T00:00:00Z", 0),
        ("2024-04-30T22:30:00-01:30", "2024-05-01T00:00:00Z", 0),
        ("2024-05-01t00:00:00.5z", "2024-05-01T00:00:00Z", 5_000_000),
    ],
)
def test_odata_ticks_are_exact(left: str, right: str, difference: int) -> None:
    assert odata_ticks(left) - odata_ticks(right) == difference


def test_ticks_count_from_the_unix_epoch() -> None:
    assert odata_ticks("1970-01-01T00:00:00Z") == 0
    assert odata_ticks("1970-01-01T00:00:01.0000001Z") == 10_000_001
    assert odata_ticks("1969-12-31T23:59:59.9999999Z") == -1
    assert TICKS_PER_SECOND == 10_000_000


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("2024-05-01T00:00:00", "a time zone is required"),
        ("2024-05-01T00:00:00.12345678Z", "at most 7 fractional digits"),
        ("2024-13-01T00:00:00Z", "month must be in 1..12"),
        ("2024-02-30T00:00:00Z", "day is out of range"),
        ("2024-05-01", "expected YYYY-MM-DDThh:mm"),
        ("2024-05-01T00:00:00+0200", "expected YYYY-MM-DDThh:mm"),
        ("2024-05-01T00:00:00+25:00", "time zone offset +25:00 is out of range"),
        ("yesterday", "expected YYYY-MM-DDThh:mm"),
    ],
)
def test_odata_ticks_say_what_is_wrong(value: str, reason: str) -> None:
    with pytest.raises(InvalidTimestampError, match=re.escape(reason)) as info:
        odata_ticks(value)
    assert isinstance(info.value, ValueError)
    assert info.value.reason.startswith(reason)
    assert info.value.value == value


@given(moment=MOMENTS, seventh=st.integers(0, 9), digits=st.integers(0, 7))
def test_odata_ticks_agree_with_datetime_to_the_100ns(moment: datetime, seventh: int, digits: int) -> None:
    fraction = f"{moment.microsecond:06d}{seventh}"[:digits]
    text = f"{moment:%Y-%m-%dT%H:%M:%S}" + (f".{fraction}" if digits else "") + "Z"
    whole = moment.replace(microsecond=0) - datetime(1970, 1, 1, tzinfo=UTC)
    expected = (whole // timedelta(seconds=1)) * 10_000_000 + int(fraction.ljust(7, "0"))
    assert odata_ticks(text) == expected
    assert timestamp_ticks(text) == expected, "both readers agree on what both accept"


@given(moment=MOMENTS, minutes=st.integers(-14 * 60, 14 * 60))
def test_offsets_name_the_same_instant(moment: datetime, minutes: int) -> None:
    local = moment.astimezone(UTC) + timedelta(minutes=minutes)
    sign = "-" if minutes < 0 else "+"
    offset = f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"
    text = f"{local:%Y-%m-%dT%H:%M:%S.%f}{offset}"
    assert odata_ticks(text) == odata_ticks(f"{moment:%Y-%m-%dT%H:%M:%S.%f}Z")
    assert timestamp_ticks(text[:-3] + offset[-2:]) == odata_ticks(text), "an offset may omit its colon"


# What the services send: lenient --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "ticks"),
    [
        ("1970-01-01T00:00:00Z", 0),
        ("1970-01-01T00:00:00.0000001Z", 1),
        ("1970-01-01T00:00:00.1Z", 1_000_000),
        ("1970-01-01T00:00:01.123456789Z", 11_234_567),
        ("1970-01-01T01:00:00+01:00", 0),
        ("1970-01-01T01:00:00+0100", 0),
        ("1970-01-01T00:00:00", 0),
        (" 1970-01-01T00:00:00z ", 0),
        ("1970-01-01T00:00Z", None),
        ("1970-01-01", None),
        ("1970-13-01T00:00:00Z", None),
        ("1970-01-01T00:00:00+24:00", None),
        ("yesterday", None),
        ("", None),
        (None, None),
        (0, None),
    ],
)
def test_timestamp_ticks_read_what_services_send_and_give_none_otherwise(
    text: Any, ticks: int | None
) -> None:
    assert timestamp_ticks(text) == ticks


# Instants, durations and text --------------------------------------------------------------------------


def test_instant_ticks_read_naive_as_utc_and_aware_in_any_zone() -> None:
    moment = datetime(2024, 5, 1, 10, 0, 0, 123456, tzinfo=UTC)
    plus_two = moment.astimezone(timezone(timedelta(hours=2)))
    assert instant_ticks(moment) == instant_ticks(plus_two) == instant_ticks(moment.replace(tzinfo=None))
    assert instant_ticks(moment) == odata_ticks("2024-05-01T10:00:00.123456Z")
    assert instant_ticks(datetime(1969, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)) == -10


@given(moment=MOMENTS)
def test_instants_round_trip_through_ticks(moment: datetime) -> None:
    assert ticks_instant(instant_ticks(moment)) == moment


@given(ticks=TICKS)
def test_ticks_instant_is_never_later_than_the_ticks(ticks: int) -> None:
    assert 0 <= ticks - instant_ticks(ticks_instant(ticks)) < 10


@given(ticks=TICKS, trim=st.booleans())
def test_formatted_ticks_read_back_exactly(ticks: int, trim: bool) -> None:
    text = format_ticks(ticks, trim=trim)
    assert odata_ticks(text) == timestamp_ticks(text) == ticks
    if not trim:
        assert len(text) == len("2024-05-01T00:00:00.0000000Z")


@pytest.mark.parametrize(
    ("ticks", "full", "trimmed"),
    [
        (0, "1970-01-01T00:00:00.0000000Z", "1970-01-01T00:00:00Z"),
        (5_000_000, "1970-01-01T00:00:00.5000000Z", "1970-01-01T00:00:00.5Z"),
        (-1, "1969-12-31T23:59:59.9999999Z", "1969-12-31T23:59:59.9999999Z"),
    ],
)
def test_format_ticks_writes_seven_digits_or_trims_as_the_services_do(
    ticks: int, full: str, trimmed: str
) -> None:
    assert format_ticks(ticks) == full
    assert format_ticks(ticks, trim=True) == trimmed


@given(duration=st.timedeltas())
def test_duration_ticks_are_exact(duration: timedelta) -> None:
    ticks = duration_ticks(duration)
    assert ticks == ((duration.days * 86_400 + duration.seconds) * 1_000_000 + duration.microseconds) * 10
    assert timedelta(microseconds=ticks // 10) == duration
