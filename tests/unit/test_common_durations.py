"""ISO 8601 durations (common/durations.py): pendulum's reading, with the rules each caller needs."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from airflow_provider_mtp.common.durations import InvalidDurationError, iso_duration, leading_iso_duration


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("PT5M", timedelta(minutes=5)),
        ("P1DT2H", timedelta(days=1, hours=2)),
        ("P1DT2H30M15S", timedelta(days=1, hours=2, minutes=30, seconds=15)),
        ("PT36H", timedelta(hours=36)),
        ("P2W", timedelta(weeks=2)),
        ("P0D", timedelta(0)),
        ("PT1.5S", timedelta(seconds=1.5)),
        ("PT0.5H", timedelta(minutes=30)),
        ("P1.5D", timedelta(days=1, hours=12)),
        ("P1,5D", timedelta(days=1, hours=12)),
        ("pt5m", timedelta(minutes=5)),
        ("  P30D  ", timedelta(days=30)),
    ],
)
def test_iso_durations(text: str, expected: timedelta) -> None:
    assert iso_duration(text) == expected


def test_fractions_are_read_to_the_microsecond() -> None:
    assert iso_duration("PT1.23456789S") == timedelta(seconds=1, microseconds=234568)
    assert iso_duration("PT0.0000001S") == timedelta(0), "finer than pendulum's microsecond"


@pytest.mark.parametrize(
    "text", ["", "P", "PT", "P1DT", "T5M", "5M", "PT5M later", "P1W2D", "-", "2024-05-01", "10:00:00", "P1X"]
)
def test_not_durations(text: str) -> None:
    with pytest.raises(InvalidDurationError) as info:
        iso_duration(text, signed=True, calendar=True)
    assert isinstance(info.value, ValueError)
    assert info.value.text == text
    assert repr(text) in str(info.value)
    assert not info.value.too_long


def test_a_sign_only_when_the_caller_allows_it() -> None:
    with pytest.raises(InvalidDurationError):
        iso_duration("-PT5M")
    assert iso_duration("-PT5M", signed=True) == timedelta(minutes=-5)
    assert iso_duration("-p1dt12h", signed=True) == -timedelta(days=1, hours=12)


def test_years_and_months_only_when_the_caller_allows_them_as_dotnet_reads_them() -> None:
    for text in ("P1Y", "P1M", "P1Y2M3D"):
        with pytest.raises(InvalidDurationError, match="years and months have no fixed length"):
            iso_duration(text)
    assert iso_duration("P1Y", calendar=True) == timedelta(days=365)
    assert iso_duration("P2M", calendar=True) == timedelta(days=60)
    assert iso_duration("P1Y1M1DT1M", calendar=True) == timedelta(days=396, minutes=1)


def test_too_long_for_a_timedelta_is_said_apart() -> None:
    with pytest.raises(InvalidDurationError) as info:
        iso_duration("P99999999999D")
    assert info.value.too_long


def test_the_result_is_a_plain_timedelta() -> None:
    assert type(iso_duration("PT5M")) is timedelta


@given(duration=st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=10_000)))
def test_round_trip_through_iso_text(duration: timedelta) -> None:
    text = f"P{duration.days}DT{duration.seconds}.{duration.microseconds:06d}S"
    assert iso_duration(text) == duration
    assert iso_duration("-" + text, signed=True) == -duration


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("PT1M30S.", timedelta(seconds=90)),
        ("PT5M and then", timedelta(minutes=5)),
        ("  pt30s, thanks", timedelta(seconds=30)),
        ("PT1.5S.", timedelta(seconds=1.5)),
        ("P1D", timedelta(days=1)),
        ("Please retry", None),
        ("5 minutes", None),
        ("PT", None),
        ("-PT5M", None),
        ("P1Y", None),
        ("", None),
    ],
)
def test_leading_iso_duration_in_free_text(text: str, expected: timedelta | None) -> None:
    assert leading_iso_duration(text) == expected
