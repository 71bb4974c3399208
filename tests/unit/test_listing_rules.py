"""The resource-neutral rules with alerts (the incident ones are ``test_incident_rules.py``): what
the alert sensor asks the hook for, how it matches, decides and words it, and the event cursor.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from airflow_provider_mtp import incident_rules
from airflow_provider_mtp.alert_rules import ALERTS, alert_summary
from airflow_provider_mtp.api.alert_query import AlertQuery
from airflow_provider_mtp.common.ticks import timestamp_ticks
from airflow_provider_mtp.listing_rules import UpdateCursor, WindowQuestion, listing_query
from airflow_provider_mtp.windows import Window

WINDOW = Window(datetime(2026, 6, 1, tzinfo=UTC), datetime(2026, 6, 1, 1, tzinfo=UTC))


def alert(alert_id: str, stamp: str, **fields: str) -> dict[str, str]:
    return {"id": alert_id, "incidentId": "7", "lastUpdateDateTime": stamp, **fields}


def test_the_two_resources_name_their_hook_methods_arguments_and_errors() -> None:
    incidents = incident_rules.INCIDENTS
    assert (incidents.min_name, incidents.max_name, incidents.too_many, incidents.sensor) == (
        "min_incidents",
        "max_incidents",
        "TooManyIncidents",
        "IncidentSensor",
    )
    assert (ALERTS.min_name, ALERTS.max_name, ALERTS.too_many, ALERTS.sensor) == (
        "min_alerts",
        "max_alerts",
        "TooManyAlerts",
        "AlertSensor",
    )

    class Hook:
        def list_alerts(self) -> str:
            return "alerts"

        def check_alert_query(self) -> str:
            return "checked"

    assert ALERTS.hook_method(Hook(), "list")() == "alerts"
    assert ALERTS.hook_method(Hook(), "check")() == "checked"


def test_the_hook_is_asked_without_the_after_fetch_filters() -> None:
    query = AlertQuery.build(severity="high", detection_source="antivirus", incident_id=7)
    asked = listing_query(ALERTS, query, window=WINDOW)
    assert (asked.severity, asked.detection_source, asked.incident_id) == (("high",), None, None)
    assert (asked.updated_from, asked.updated_before) == (
        "2026-06-01T00:00:00.0000000Z",
        "2026-06-01T01:00:00.0000000Z",
    )
    assert listing_query(ALERTS, query, since="2026-06-01T00:30:00Z").updated_from == "2026-06-01T00:30:00Z"


def test_an_alert_listed_twice_is_judged_by_its_latest_copy() -> None:
    listing = [
        alert("da2", "2026-06-01T00:10:00Z", detectionSource="antivirus"),
        alert("da1", "2026-06-01T00:10:00.0000000Z", detectionSource="antivirus"),
        alert("da2", "2026-06-01T00:20:00Z", detectionSource="customDetection"),
        alert("da3", "2026-06-01T01:00:00Z", detectionSource="antivirus"),
    ]
    question = WindowQuestion(ALERTS, AlertQuery.build(detection_source="Antivirus"), WINDOW, 1, 5)
    matches, decision = question.answer(listing, now=WINDOW.end + timedelta(seconds=1))
    assert [a["id"] for a in matches] == ["da1"], "da2's latest copy is not from the antivirus"
    assert (decision.outcome, decision.count) == ("success", 1)
    assert decision.message.startswith("1 alert(s) updated in [2026-06-01T00:00:00.0000000Z, ")


def test_alert_decisions_speak_of_alerts() -> None:
    query = AlertQuery.build(severity="high")
    too_many = WindowQuestion(ALERTS, query, WINDOW, 1, 2).answer(
        [alert(f"a{n}", f"2026-06-01T00:0{n}:00Z") for n in range(3)], now=WINDOW.start
    )[1]
    assert too_many.outcome == "too_many"
    assert too_many.message.startswith("3 alerts updated in")
    assert "more than max_alerts=2. Raise max_alerts" in too_many.message
    empty = WindowQuestion(ALERTS, query, WINDOW, 2, 5, timedelta(minutes=5)).answer([], now=WINDOW.end)[1]
    assert empty.outcome == "empty"
    assert "fewer than min_alerts=2" in empty.message
    assert "shifted back by lag 0:05:00" in empty.message
    waiting = WindowQuestion(ALERTS, query, WINDOW, 1, 5).answer([], now=WINDOW.start)[1]
    assert (waiting.outcome, waiting.final) == ("wait", False)


def test_the_cursor_fires_each_alert_update_once() -> None:
    start = timestamp_ticks("2026-06-01T00:00:00Z")
    assert start is not None
    cursor = UpdateCursor(start=start, lag=60 * 10**7)
    query = AlertQuery.build(detection_source="antivirus")
    first = [alert("da1", "2026-06-01T00:10:00Z", detectionSource="antivirus")]
    now = start + 3600 * 10**7
    assert [a["id"] for a in cursor.take_new(first, query=query, now=now)] == ["da1"]
    assert cursor.take_new(first, query=query, now=now) == [], "a repeat poll fires nothing"
    updated = [*first, alert("da1", "2026-06-01T00:10:30Z", detectionSource="antivirus")]
    assert [a["lastUpdateDateTime"] for a in cursor.take_new(updated, query=query, now=now)] == [
        "2026-06-01T00:10:30Z"
    ]


def test_an_alert_summary_is_small_json_with_the_alert_names() -> None:
    full = {
        "id": "da638",
        "incidentId": 42,
        "title": "Suspicious PowerShell",
        "severity": "high",
        "status": "new",
        "classification": None,
        "determination": None,
        "serviceSource": "microsoftDefenderForEndpoint",
        "detectionSource": "antivirus",
        "assignedTo": None,
        "createdDateTime": "2026-06-01T00:00:00Z",
        "lastUpdateDateTime": "2026-06-01T00:10:00.1234567Z",
        "alertWebUrl": "https://security.microsoft.com/alerts/da638",
        "evidence": [{"@odata.type": "#microsoft.graph.security.deviceEvidence"}],
    }
    summary = alert_summary(full)
    assert summary["incidentId"] == "42"
    assert "evidence" not in summary
    assert {key: value for key, value in full.items() if key not in ("incidentId", "evidence")} == {
        key: value for key, value in summary.items() if key != "incidentId"
    }
    assert ALERTS.event_key(summary) == "da638@2026-06-01T00:10:00.1234567Z"
    assert alert_summary({"id": "x", "incidentId": ""})["incidentId"] is None
