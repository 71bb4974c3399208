"""The window rule shared by the hunting operator and the incident sensor (airflow_provider_mtp/windows.py).

Explicit start/end win; else a non-empty data interval; else ``lookback`` ending at the run's
time (logical date, else ``run_after`` for manual runs without one); else no window. Contexts
here are plain dicts with pendulum values, as Airflow hands them over.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from types import SimpleNamespace
from typing import Any

import pendulum
import pytest

from airflow_provider_mtp.windows import Window, format_instant, resolve_window

NOON = pendulum.datetime(2026, 11, 20, 12)
DAY = timedelta(days=1)


def context(
    *,
    start: Any = None,
    end: Any = None,
    logical_date: Any = None,
    run_after: Any = None,
) -> dict[str, Any]:
    return {
        "data_interval_start": start,
        "data_interval_end": end,
        "logical_date": logical_date,
        "dag_run": SimpleNamespace(run_after=run_after),
    }


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


# --------------------------------------------------------------------------------------------
# The rule
# --------------------------------------------------------------------------------------------


def test_explicit_start_and_end_win() -> None:
    ctx = context(start=NOON - DAY, end=NOON, logical_date=NOON)
    window = resolve_window(ctx, start="2026-11-01T00:00:00Z", end="2026-11-02T00:00:00+02:00", lookback=DAY)
    assert window == Window(utc(2026, 11, 1), utc(2026, 11, 1, 22))


def test_explicit_datetimes_and_blank_strings() -> None:
    ctx = context(start=NOON - DAY, end=NOON)
    assert resolve_window(ctx, start=utc(2026, 1, 1), end=utc(2026, 1, 2)) == Window(
        utc(2026, 1, 1), utc(2026, 1, 2)
    )
    # Templates that render to "" mean "not given".
    assert resolve_window(ctx, start="", end="") == Window(utc(2026, 11, 19, 12), utc(2026, 11, 20, 12))


def test_non_empty_data_interval() -> None:
    window = resolve_window(
        context(start=NOON - DAY, end=NOON, logical_date=NOON - DAY), lookback=timedelta(hours=1)
    )
    assert window == Window(utc(2026, 11, 19, 12), utc(2026, 11, 20, 12))


def test_zero_width_interval_falls_back_to_lookback() -> None:
    """Cron without create_cron_data_intervals, manual runs and dags test: start == end."""
    window = resolve_window(context(start=NOON, end=NOON, logical_date=NOON), lookback=timedelta(hours=6))
    assert window == Window(utc(2026, 11, 20, 6), utc(2026, 11, 20, 12))


def test_lookback_from_pendulum_values_keeps_its_zone() -> None:
    """pendulum drops a standard tzinfo on arithmetic; the window must still be aware UTC."""
    window = resolve_window(context(logical_date=NOON), lookback=timedelta(days=30))
    assert window is not None
    assert window.start.tzinfo is UTC
    assert window.end.tzinfo is UTC
    assert type(window.start) is datetime
    assert window.start == utc(2026, 10, 21, 12)


def test_manual_run_without_logical_date_uses_run_after() -> None:
    ctx = context(run_after=pendulum.datetime(2026, 11, 20, 9, 30, tz="Europe/Paris"))
    window = resolve_window(ctx, lookback=timedelta(minutes=30))
    assert window == Window(utc(2026, 11, 20, 8), utc(2026, 11, 20, 8, 30))


def test_no_window_without_interval_or_lookback() -> None:
    assert resolve_window(context(start=NOON, end=NOON, logical_date=NOON)) is None
    assert resolve_window({}) is None


def test_reruns_get_the_same_window() -> None:
    ctx = context(start=NOON, end=NOON, logical_date=NOON)
    assert resolve_window(ctx, lookback=DAY) == resolve_window(dict(ctx), lookback=DAY)


# --------------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"start": "2026-11-01T00:00:00Z"}, "give both start and end"),
        ({"end": "2026-11-01T00:00:00Z"}, "give both start and end"),
        ({"start": "2026-11-01", "end": "2026-11-02"}, "needs a time zone"),
        ({"start": "yesterday", "end": "2026-11-02T00:00:00Z"}, "not an ISO 8601 time"),
        ({"start": 5, "end": 6}, "must be a datetime or an ISO 8601 string"),
        ({"start": "2026-11-02T00:00:00Z", "end": "2026-11-01T00:00:00Z"}, "is not after its start"),
        ({"start": "2026-11-01T00:00:00Z", "end": "2026-11-01T00:00:00Z"}, "is not after its start"),
        ({"lookback": timedelta(0)}, "lookback must be positive"),
    ],
)
def test_errors(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        resolve_window(context(start=NOON, end=NOON, logical_date=NOON), **kwargs)


def test_lookback_needs_the_runs_time() -> None:
    with pytest.raises(ValueError, match="neither a data interval nor a logical date"):
        resolve_window({"dag_run": SimpleNamespace(run_after=None)}, lookback=DAY)


def test_window_needs_aware_bounds() -> None:
    with pytest.raises(ValueError, match="need a time zone"):
        Window(datetime(2026, 1, 1), utc(2026, 1, 2))


# --------------------------------------------------------------------------------------------
# The Window
# --------------------------------------------------------------------------------------------


def test_window_normalises_to_utc() -> None:
    plus_two = timezone(timedelta(hours=2))
    window = Window(datetime(2026, 1, 1, 2, tzinfo=plus_two), datetime(2026, 1, 2, 2, tzinfo=plus_two))
    assert window.start == utc(2026, 1, 1)
    assert window.start.tzinfo is UTC


def test_halves_tile_the_window() -> None:
    window = Window(utc(2026, 10, 21, 12), utc(2026, 11, 20, 12))
    first, second = window.halves()
    assert first.start == window.start
    assert second.end == window.end
    assert first.end == second.start == utc(2026, 11, 5, 12)
    assert first.duration == second.duration


def test_halves_of_an_odd_length_stay_contiguous() -> None:
    window = Window(utc(2026, 1, 1), utc(2026, 1, 1) + timedelta(microseconds=3))
    first, second = window.halves()
    assert first.end == second.start
    assert first.duration + second.duration == window.duration


def test_halves_refuse_a_window_too_short_to_split() -> None:
    with pytest.raises(ValueError, match="too short to split"):
        Window(utc(2026, 1, 1), utc(2026, 1, 1) + timedelta(microseconds=1)).halves()


def test_window_forms() -> None:
    window = Window(utc(2026, 11, 1), utc(2026, 11, 2, 0, 0, 0, 123456))
    assert window.as_dict() == {
        "start": "2026-11-01T00:00:00.0000000Z",
        "end": "2026-11-02T00:00:00.1234560Z",
    }
    assert window.timespan == "2026-11-01T00:00:00.0000000Z/2026-11-02T00:00:00.1234560Z"
    assert window.label() == "[2026-11-01 00:00, 2026-11-02 00:00:00.123456) UTC"
    assert Window.from_dict(window.as_dict()) == window
    assert Window.from_dict({"start": window.start.isoformat(), "end": window.end.isoformat()}) == window
    assert window.contains(utc(2026, 11, 1))
    assert not window.contains(window.end)
    assert window.shifted(-DAY) == Window(utc(2026, 10, 31), utc(2026, 11, 1, 0, 0, 0, 123456))
    assert format_instant(utc(2026, 11, 1)) == "2026-11-01T00:00:00.0000000Z"


def test_from_dict_needs_both_bounds() -> None:
    with pytest.raises(ValueError, match="needs both start and end"):
        Window.from_dict({"start": "2026-11-01T00:00:00Z"})
