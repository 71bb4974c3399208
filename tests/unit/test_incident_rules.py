"""The incident rules the sensor, both triggers and the operators share (pure: no emulator, no hook).

What to ask the hook for, matching a window's listing, deciding whether a wait is over, and the
event trigger's cursor.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from airflow_provider_mtp.api.incident_query import IncidentQuery
from airflow_provider_mtp.incident_rules import UpdateCursor, decide, listing_query, match_incidents
from airflow_provider_mtp.windows import Window


def test_match_keeps_one_copy_at_the_latest_update_and_filters_after() -> None:
    window = Window(datetime(2026, 6, 1, tzinfo=UTC), datetime(2026, 6, 1, 1, tzinfo=UTC))
    listing = [
        {"id": "2", "lastUpdateDateTime": "2026-06-01T00:10:00Z", "classification": "truePositive"},
        {"id": "10", "lastUpdateDateTime": "2026-06-01T00:10:00.0000000Z", "classification": "truePositive"},
        {"id": "2", "lastUpdateDateTime": "2026-06-01T00:20:00Z", "classification": "falsePositive"},
        {"id": "3", "lastUpdateDateTime": "2026-06-01T01:00:00Z", "classification": "truePositive"},
        {"id": "4", "lastUpdateDateTime": "2026-05-31T23:59:59.9999999Z", "classification": "truePositive"},
    ]
    everything = match_incidents(listing, window=window, query=IncidentQuery())
    assert [(i["id"], i["lastUpdateDateTime"]) for i in everything] == [
        ("10", "2026-06-01T00:10:00.0000000Z"),
        ("2", "2026-06-01T00:20:00Z"),
    ]
    true_positives = match_incidents(
        listing, window=window, query=IncidentQuery.build(classification="TruePositive")
    )
    assert [i["id"] for i in true_positives] == ["10"], "incident 2's latest update is not a true positive"


@pytest.mark.parametrize(
    ("count", "minutes_past_end", "maximum", "outcome"),
    [
        (0, -1, 5, "wait"),
        (2, -1, 5, "success"),
        (1, -1, 5, "wait"),
        (1, 0, 5, "empty"),
        (1, 1, 5, "empty"),
        (6, -1, 5, "too_many"),
        (6, -1, None, "success"),
    ],
)
def test_decide(count: int, minutes_past_end: int, maximum: int | None, outcome: str) -> None:
    window = Window(datetime(2026, 6, 1, tzinfo=UTC), datetime(2026, 6, 1, 1, tzinfo=UTC))
    decision = decide(
        count,
        window=window,
        now=window.end + timedelta(minutes=minutes_past_end),
        min_incidents=2,
        max_incidents=maximum,
        query=IncidentQuery(),
    )
    assert decision.outcome == outcome
    assert decision.final == (outcome != "wait")


def test_cursor_fires_each_update_once_and_looks_back_by_the_lag() -> None:
    cursor = UpdateCursor(start=100, lag=10)
    everything = IncidentQuery()

    def incident(ident: str, ticks: int) -> dict[str, Any]:
        seconds, fraction = divmod(ticks, 10_000_000)
        stamp = (datetime(1970, 1, 1, tzinfo=UTC) + timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%S")
        return {"id": ident, "lastUpdateDateTime": f"{stamp}.{fraction:07d}Z"}

    first = cursor.take_new(
        [incident("a", 99), incident("b", 120), incident("c", 120)], query=everything, now=10**9
    )
    assert [i["id"] for i in first] == ["b", "c"], "updates before start are not wanted"
    assert cursor.query_from() == 110
    # The same listing again (a ge query returns the boundary): nothing new. A late one at 115: new.
    again = cursor.take_new(
        [incident("b", 120), incident("c", 120), incident("d", 115)], query=everything, now=10**9
    )
    assert [i["id"] for i in again] == ["d"]
    # An update of b is a new key; the cursor forgets what the next query cannot return.
    later = cursor.take_new([incident("b", 200)], query=everything, now=10**9)
    assert [i["id"] for i in later] == ["b"]
    assert cursor.query_from() == 190
    assert set(cursor.seen) == {("b", incident("b", 200)["lastUpdateDateTime"])}
    # A future stamp does not drag the horizon past the clock.
    cursor.take_new([incident("e", 10**12)], query=everything, now=300)
    assert cursor.high == 300


def test_decide_names_the_query_filters_in_its_message() -> None:
    window = Window(datetime(2026, 6, 1, tzinfo=UTC), datetime(2026, 6, 1, 1, tzinfo=UTC))
    decision = decide(
        0,
        window=window,
        now=window.end,
        min_incidents=1,
        max_incidents=5,
        query=IncidentQuery.build(status="active", severity=["high", "medium"], tags="x"),
        lag=timedelta(minutes=5),
    )
    assert decision.outcome == "empty"
    assert "with status=active, severity=high|medium, tags=x match" in decision.message
    assert "shifted back by lag 0:05:00" in decision.message


# What the hook is asked -----------------------------------------------------------------------------


def test_the_listing_query_has_the_window_as_7_digit_bounds_and_no_local_filters() -> None:
    query = IncidentQuery.build(
        status=["active", "inProgress"],
        severity="high",
        assigned_to="a@example.com",
        classification="truePositive",
        tags=["watch"],
        odata_filter="determination eq 'malware'",
        created_from="2026-05-01T00:00:00Z",
    )
    window = Window(datetime(2026, 6, 1, tzinfo=UTC), datetime(2026, 6, 1, 1, 0, 0, 500, tzinfo=UTC))

    asked = listing_query(query, window=window)

    assert (asked.updated_from, asked.updated_before) == (
        "2026-06-01T00:00:00.0000000Z",
        "2026-06-01T01:00:00.0005000Z",
    )
    # Classification and tags are judged on each incident's latest copy (match_incidents), not by the hook.
    assert (asked.classification, asked.tags) == (None, None)
    assert (
        asked.replace(
            classification=query.classification, tags=query.tags, updated_from=None, updated_before=None
        )
        == query
    )
    assert query.updated_from is None, "the sensor's own query is left as it was"


def test_the_event_triggers_listing_query_asks_from_a_watermark_verbatim() -> None:
    query = IncidentQuery.build(severity="high", tags="watch")
    asked = listing_query(query, since="2026-06-01T00:00:00.1234567Z")
    assert (asked.updated_from, asked.updated_before, asked.tags) == (
        "2026-06-01T00:00:00.1234567Z",
        None,
        None,
    )
    assert asked.severity == ("high",)
    assert listing_query(query) == query.replace(tags=None)


def test_a_hook_that_filters_first_would_keep_an_older_copy_that_matched() -> None:
    """Why the listing query leaves classification and tags to match_incidents."""
    window = Window(datetime(2026, 6, 1, tzinfo=UTC), datetime(2026, 6, 1, 1, tzinfo=UTC))
    query = IncidentQuery.build(tags="watch")
    listing = [
        {"id": "1", "lastUpdateDateTime": "2026-06-01T00:10:00Z", "customTags": ["watch"]},
        {"id": "1", "lastUpdateDateTime": "2026-06-01T00:20:00Z", "customTags": []},
    ]
    assert match_incidents(listing, window=window, query=query) == []
    prefiltered = [incident for incident in listing if query.keeps(incident)]
    assert [i["id"] for i in match_incidents(prefiltered, window=window, query=query)] == ["1"]
