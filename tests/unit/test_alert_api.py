"""Alerts in the API layer, without a server: AlertQuery, Graph's alerts_v2 requests, the legacy passes.

The back ends only describe calls, so each case drives a description with canned replies and
checks what would be sent (as ``tests/unit/test_programs.py`` does for incidents).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from airflow_provider_mtp.api.alert_query import AlertQuery
from airflow_provider_mtp.api.graph import GraphSecurityApi
from airflow_provider_mtp.api.graph_alerts import GRAPH_ALERT_MAX_TOP, alert_list_params
from airflow_provider_mtp.api.legacy import LegacyMtpApi
from airflow_provider_mtp.api.legacy_alerts import CLOCK_MARGIN, LegacyAlertPasses
from airflow_provider_mtp.api.listing import arun_alert_listing, run_alert_listing
from airflow_provider_mtp.api.request import ApiRequest, run
from airflow_provider_mtp.errors import MTPConfigError, MTPNotFoundError

PORTAL = "https://security.microsoft.com"


def alert(alert_id: str, updated: str, **fields: Any) -> dict[str, Any]:
    return {
        "id": alert_id,
        "incidentId": "7",
        "status": "new",
        "severity": "high",
        "serviceSource": "microsoftDefenderForEndpoint",
        "detectionSource": "antivirus",
        "createdDateTime": "2024-05-01T00:00:00Z",
        "lastUpdateDateTime": updated,
        **fields,
    }


def legacy_alert(alert_id: str, updated: str, **fields: Any) -> dict[str, Any]:
    return {
        "alertId": alert_id,
        "incidentId": 7,
        "status": "New",
        "severity": "High",
        "serviceSource": "MicrosoftDefenderATP",
        "detectionSource": "WindowsDefenderAv",
        "creationTime": "2024-05-01T00:00:00Z",
        "lastUpdatedTime": updated,
        **fields,
    }


def legacy_incident(incident_id: int, updated: str, alerts: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "incidentId": incident_id,
        "createdTime": "2024-05-01T00:00:00Z",
        "lastUpdateTime": updated,
        "status": "Active",
        "severity": "High",
        "alerts": alerts,
    }


# AlertQuery -------------------------------------------------------------------------------------


def test_an_alert_query_keeps_graph_spellings_whatever_was_given() -> None:
    query = AlertQuery.build(
        status="New",
        severity=["High", "medium"],
        service_source="MicrosoftDefenderATP",
        classification="TruePositive",
    )
    assert query.status == ("new",)
    assert query.severity == ("high", "medium")
    assert query.service_source == ("microsoftDefenderForEndpoint",)
    assert query.classification == ("truePositive",)


@pytest.mark.parametrize(
    ("fields", "words"),
    [
        ({"status": "active-ish"}, ["status", "Invalid alert status 'active-ish'", "new"]),
        ({"service_source": "defender"}, ["service_source", "microsoftDefenderForEndpoint"]),
        ({"sevrity": "high"}, ["Unknown alert filter 'sevrity'", "severity"]),
        ({"incident_id": ""}, ["incident_id must be an incident id"]),
        ({"updated_from": "yesterday"}, ["updated_from"]),
        ({"odata_filter": "status eq 'new') or (true"}, ["odata_filter"]),
    ],
)
def test_a_bad_alert_query_names_the_field_and_the_fix(fields: dict[str, Any], words: list[str]) -> None:
    with pytest.raises(MTPConfigError) as caught:
        AlertQuery.build(**fields)
    for word in words:
        assert word in str(caught.value)


def test_an_alert_query_survives_json_and_describes_its_filters() -> None:
    query = AlertQuery.build(severity=["high"], incident_id=42, updated_from="2024-05-01T00:00:00.1234567Z")
    assert AlertQuery.from_json(query.to_json()) == query
    assert query.updated_from == "2024-05-01T00:00:00.1234567Z"  # 7 digits kept, not rounded
    assert query.describe() == "severity=high, incident_id=42"
    assert AlertQuery.of(None, severity="low") == AlertQuery.build(severity="low")
    with pytest.raises(MTPConfigError, match="not both"):
        AlertQuery.of(query, severity="low")


def test_in_window_is_half_open_on_the_alerts_own_times() -> None:
    query = AlertQuery.build(updated_from="2024-05-01T10:00:00Z", updated_before="2024-05-01T11:00:00Z")
    assert query.in_window(alert("a", "2024-05-01T10:00:00Z"))
    assert query.in_window(alert("a", "2024-05-01T10:59:59.9999999Z"))
    assert not query.in_window(alert("a", "2024-05-01T11:00:00Z"))
    assert not query.in_window(alert("a", "2024-05-01T09:59:59.9999999Z"))
    assert not query.in_window(alert("a", None))  # type: ignore[arg-type]


def test_keeps_applies_only_what_graph_cannot_unless_told_to_apply_everything() -> None:
    query = AlertQuery.build(severity="low", detection_source="ANTIVIRUS", incident_id="7")
    high = alert("a", "2024-05-01T10:00:00Z")
    assert query.keeps(high)  # severity is Graph's to filter
    assert not query.keeps(high, local_only=False)
    assert not query.keeps({**high, "incidentId": "8"})
    assert not query.keeps({**high, "detectionSource": "customDetection"})


# Graph ------------------------------------------------------------------------------------------


def test_graph_alert_params_filter_on_the_filterable_fields_and_never_exceed_1000() -> None:
    query = AlertQuery.build(
        status=["new", "inProgress"],
        severity="high",
        service_source="microsoftDefenderForEndpoint",
        determination="malware",
        assigned_to="o'brien@contoso.com",
        detection_source="antivirus",
        incident_id="7",
        updated_from="2024-05-01T10:00:00Z",
        page_size=5000,
    )
    params = alert_list_params(query)
    assert params["$top"] == GRAPH_ALERT_MAX_TOP
    assert params["$filter"] == (
        "(status eq 'new' or status eq 'inProgress') and severity eq 'high' and "
        "serviceSource eq 'microsoftDefenderForEndpoint' and determination eq 'malware' and "
        "assignedTo eq 'o''brien@contoso.com' and lastUpdateDateTime ge 2024-05-01T10:00:00Z"
    )
    assert "detectionSource" not in params["$filter"]
    assert "incidentId" not in params["$filter"]


def test_graph_alert_listing_reads_pieces_and_yields_each_key_once() -> None:
    listing = GraphSecurityApi().alert_listing(AlertQuery.build(detection_source="antivirus"))
    pages = iter(
        [
            {
                "value": [
                    alert("a", "2024-05-01T10:00:00Z", detectionSource="Antivirus"),
                    alert("b", "2024-05-01T09:00:00Z", detectionSource="customDetection"),
                    alert("a", "2024-05-01T10:00:00Z"),
                ]
            }
        ]
    )
    sent: list[ApiRequest] = []

    def send(request: ApiRequest) -> Any:
        sent.append(request)
        return next(pages)

    got = list(run_alert_listing(listing, send))
    assert [item["id"] for item in got] == ["a"]
    assert got[0]["detectionSource"] == "antivirus"
    assert sent[0].path == "/v1.0/security/alerts_v2"
    assert sent[0].permission == "SecurityAlert.Read.All"


def test_graph_update_alert_patches_then_comments_last() -> None:
    replies: Iterator[Any] = iter([alert("a", "t1", status="resolved"), {"value": [{"comment": "done"}]}])
    sent: list[ApiRequest] = []

    def send(request: ApiRequest) -> Any:
        sent.append(request)
        return next(replies)

    updated = run(
        GraphSecurityApi().update_alert("a/b", {"status": "Resolved", "assignedTo": ""}, comment="done"), send
    )
    assert [(r.method, r.path, r.idempotent) for r in sent] == [
        ("PATCH", "/v1.0/security/alerts_v2/a%2Fb", True),
        ("POST", "/v1.0/security/alerts_v2/a%2Fb/comments", False),
    ]
    assert sent[0].json == {"status": "resolved", "assignedTo": ""}
    assert sent[1].permission == "SecurityAlert.ReadWrite.All"
    assert updated["comments"] == [{"comment": "done"}]


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        ({"severity": "high"}, ["Cannot update severity on an alert", "status, classification"]),
        ({"status": "closed"}, ["status", "Invalid alert status 'closed'"]),
        ({}, ["Nothing to update"]),
    ],
)
def test_graph_update_alert_refuses_bad_changes_before_any_call(
    changes: dict[str, Any], words: list[str]
) -> None:
    def send(request: ApiRequest) -> Any:
        raise AssertionError(f"sent {request}")

    with pytest.raises(MTPConfigError) as caught:
        run(GraphSecurityApi().update_alert("a", changes), send)
    for word in words:
        assert word in str(caught.value)


# Legacy -----------------------------------------------------------------------------------------


def legacy_api() -> LegacyMtpApi:
    return LegacyMtpApi(portal=PORTAL, tenant=lambda: "tenant-1")


def test_legacy_refuses_alert_updates_at_once_naming_api_graph() -> None:
    with pytest.raises(MTPConfigError) as update:
        legacy_api().update_alert("a", {"status": "resolved"})
    with pytest.raises(MTPConfigError) as comment:
        legacy_api().add_alert_comment("a", "x")
    assert "The legacy MTP API cannot update an alert" in str(update.value)
    assert "The legacy MTP API cannot comment on an alert" in str(comment.value)
    assert "set the connection's extra 'api' to 'graph'" in str(comment.value)


def test_legacy_reads_an_alert_through_its_incident_and_needs_its_id() -> None:
    with pytest.raises(MTPConfigError, match="pass incident_id"):
        run(legacy_api().get_alert("a"), lambda request: None)
    incident = legacy_incident(7, "2024-05-01T10:00:00Z", [legacy_alert("a", "2024-05-01T10:00:00Z")])
    got = run(legacy_api().get_alert("a", incident_id="7"), lambda request: incident)
    assert got["id"] == "a"
    assert got["serviceSource"] == "microsoftDefenderForEndpoint"
    assert got["alertWebUrl"].startswith(PORTAL)
    with pytest.raises(MTPNotFoundError, match="holds no alert 'b'"):
        run(legacy_api().get_alert("b", incident_id="7"), lambda request: incident)


def test_legacy_refuses_a_raw_filter_on_alerts() -> None:
    with pytest.raises(MTPConfigError, match="odata_filter cannot be applied to alerts on the legacy"):
        legacy_api().alert_listing(AlertQuery.build(odata_filter="status eq 'new'"))


def test_legacy_alerts_come_from_two_incident_passes_split_before_the_listing_began() -> None:
    now = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    query = AlertQuery.build(
        severity="high", updated_from="2024-05-01T10:00:00Z", updated_before="2024-05-01T11:00:00Z"
    )
    passes = LegacyAlertPasses.build(query, legacy_api().incident_listing, now=lambda: now)
    in_window = legacy_alert("in", "2024-05-01T10:30:00Z")
    low = legacy_alert("low", "2024-05-01T10:30:00Z", severity="Low")
    late = legacy_alert("late", "2024-05-01T11:30:00Z")
    moved = legacy_alert("moved", "2024-05-01T10:45:00Z")
    replies = iter(
        [
            {"value": [legacy_incident(1, "2024-05-01T11:30:00Z", [in_window, low, late])]},
            # The incident of 'in' was updated during the first pass: it shows again, with a new one.
            {"value": [legacy_incident(1, "2024-05-01T11:58:00Z", [in_window, moved])]},
        ]
    )
    sent: list[ApiRequest] = []

    def send(request: ApiRequest) -> Any:
        sent.append(request)
        return next(replies)

    got = list(run_alert_listing(passes, send))
    assert [item["id"] for item in got] == ["in", "moved"]
    assert CLOCK_MARGIN.total_seconds() == 300  # the split: now - 5 minutes
    assert sent[0].params["$filter"] == (
        "lastUpdateTime ge 2024-05-01T10:00:00.0000000Z and lastUpdateTime lt 2024-05-01T11:55:00.0000000Z"
    )
    assert sent[1].params["$filter"] == "lastUpdateTime ge 2024-05-01T11:55:00.0000000Z"


def test_legacy_alerts_of_a_window_that_began_within_the_margin_take_one_pass() -> None:
    now = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    query = AlertQuery.build(updated_from="2024-05-01T11:58:00Z")
    passes = LegacyAlertPasses.build(query, legacy_api().incident_listing, now=lambda: now)
    sent: list[ApiRequest] = []

    async def send(request: ApiRequest) -> Any:
        sent.append(request)
        return {
            "value": [legacy_incident(1, "2024-05-01T11:59:00Z", [legacy_alert("a", "2024-05-01T11:59:00Z")])]
        }

    async def collect() -> list[dict[str, Any]]:
        return [item async for item in arun_alert_listing(passes, send)]

    assert [item["id"] for item in asyncio.run(collect())] == ["a"]
    assert len(sent) == 1
    assert sent[0].params["$filter"] == "lastUpdateTime ge 2024-05-01T11:58:00.0000000Z"
