"""The emulator's Graph ``alerts_v2``: listing (filter fields, clamped ``$top``, ``$skip``, ``$count``,
``@odata.nextLink``), get, PATCH and comments over TLS with the emulator's own tokens; alerts are the
objects the incidents embed (Graph ``$expand=alerts``, the legacy API); the ``SecurityAlert.*``
roles and the app without them; and the rule the client's legacy alert listing rests on: an incident
is never updated before one of its alerts. (The hunting rows, ``/_emulator/alerts`` and the store's
alert index: test_emulator_alert_changes.py.)"""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from airflow_provider_mtp.api import mapping
from airflow_provider_mtp.common.ticks import odata_ticks
from airflow_provider_mtp.emulator import DefenderEmulator
from airflow_provider_mtp.emulator.routes.alerts import FILTER_FIELDS
from tests.conftest import TEST_NOW
from tests.integration.conftest import GRAPH, MTP, call, graph_hunt, token
from tests.integration.test_emulator_tenant import ALERT_KEYS

#: Every field of the alerts_v2 shape (defender-api.md section 3.5).
ALERT_FIELDS = ALERT_KEYS
ALERTS = "/v1.0/security/alerts_v2"
COMMENT_TYPE = "microsoft.graph.security.alertComment"


@pytest.fixture(scope="module")
def alerts_emulator() -> Iterator[DefenderEmulator]:
    """600 incidents: more than 1000 alerts, so that a clamped ``$top`` shows."""
    with DefenderEmulator(
        seed=23, now=TEST_NOW, incidents=600, days=3, events_per_day=5, quotas=False
    ) as emu:
        yield emu


@pytest.fixture
def emulator(alerts_emulator: DefenderEmulator) -> DefenderEmulator:
    alerts_emulator.reset()
    return alerts_emulator


def ticks(stamp: str) -> int:
    return odata_ticks(stamp)


def every_page(emulator: DefenderEmulator, bearer: str, url: str) -> tuple[list[dict[str, Any]], int]:
    """Every item, following ``@odata.nextLink``; and how many pages that took."""
    items: list[dict[str, Any]] = []
    pages = 0
    next_url: str | None = url
    while next_url:
        reply = call(emulator, "GET", next_url, bearer=bearer)
        assert reply.status_code == 200, reply.text
        body = reply.json()
        items.extend(body["value"])
        pages += 1
        next_url = body.get("@odata.nextLink")
    return items, pages


def every_incident(emulator: DefenderEmulator, bearer: str) -> list[dict[str, Any]]:
    return every_page(emulator, bearer, "/v1.0/security/incidents?$top=50&$expand=alerts")[0]


def newest_first(alerts: list[dict[str, Any]]) -> list[str]:
    return [alert["id"] for alert in sorted(alerts, key=lambda alert: -ticks(alert["createdDateTime"]))]


def admin_alerts(emulator: DefenderEmulator, *alerts: dict[str, Any]) -> requests.Response:
    return emulator.session.post(f"{emulator.url}/_emulator/alerts", json=list(alerts), timeout=60)


def put_alerts(emulator: DefenderEmulator, *alerts: dict[str, Any]) -> list[dict[str, Any]]:
    return emulator.put_alerts(*alerts)


def graph_error(reply: requests.Response, status: int) -> dict[str, Any]:
    """The Graph error body: code, message and innerError with the request ids."""
    assert reply.status_code == status, reply.text
    error = reply.json()["error"]
    assert set(error) == {"code", "message", "innerError"}
    assert {"date", "request-id", "client-request-id"} <= set(error["innerError"])
    return dict(error)


def assert_incidents_not_before_their_alerts(incidents: list[dict[str, Any]]) -> None:
    for incident in incidents:
        for alert in incident["alerts"]:
            assert ticks(incident["lastUpdateDateTime"]) >= ticks(alert["lastUpdateDateTime"]), (
                incident["id"],
                alert["id"],
            )


# Listing --------------------------------------------------------------------------------------------


def test_the_listing_holds_every_alert_of_every_incident_newest_created_first(
    emulator: DefenderEmulator,
) -> None:
    bearer = token(emulator, GRAPH)
    embedded = [alert for incident in every_incident(emulator, bearer) for alert in incident["alerts"]]
    listed, pages = every_page(emulator, bearer, f"{ALERTS}?$top=300&$count=true")
    assert len(embedded) > 1000
    assert [alert["id"] for alert in listed] == newest_first(embedded)
    assert sorted(listed, key=lambda alert: alert["id"]) == sorted(embedded, key=lambda alert: alert["id"])
    assert pages == -(-len(embedded) // 300)
    first = call(emulator, "GET", f"{ALERTS}?$top=3&$count=true", bearer=bearer).json()
    assert first["@odata.count"] == len(embedded)
    assert first["@odata.context"].endswith("/v1.0/$metadata#security/alerts_v2")
    for alert in listed:
        assert set(alert) == ALERT_FIELDS
        assert isinstance(alert["incidentId"], str)
    # /beta serves the same alerts.
    beta = call(emulator, "GET", "/beta/security/alerts_v2?$top=5", bearer=bearer).json()
    assert [alert["id"] for alert in beta["value"]] == [alert["id"] for alert in listed[:5]]


def test_top_over_1000_is_clamped_the_default_page_is_100_and_skip_and_count_apply(
    emulator: DefenderEmulator,
) -> None:
    bearer = token(emulator, GRAPH)
    everything, _ = every_page(emulator, bearer, f"{ALERTS}?$top=1000")
    clamped = call(emulator, "GET", f"{ALERTS}?$top=5000", bearer=bearer)
    assert clamped.status_code == 200, clamped.text
    body = clamped.json()
    assert [alert["id"] for alert in body["value"]] == [alert["id"] for alert in everything[:1000]]
    follow = parse_qs(urlsplit(body["@odata.nextLink"]).query)
    assert (follow["$top"], follow["$skip"]) == (["1000"], ["1000"])
    default = call(emulator, "GET", ALERTS, bearer=bearer).json()
    assert len(default["value"]) == 100
    assert parse_qs(urlsplit(default["@odata.nextLink"]).query)["$top"] == ["100"]
    skipped = call(emulator, "GET", f"{ALERTS}?$skip=37&$top=10&$count=true", bearer=bearer).json()
    assert [alert["id"] for alert in skipped["value"]] == [alert["id"] for alert in everything[37:47]]
    assert skipped["@odata.count"] == len(everything)
    last = call(emulator, "GET", f"{ALERTS}?$skip={len(everything) - 2}&$top=10", bearer=bearer).json()
    assert len(last["value"]) == 2
    assert "@odata.nextLink" not in last


@pytest.mark.parametrize(
    ("clause", "keep"),
    [
        ("status eq 'inProgress'", lambda a: a["status"] == "inProgress"),
        ("severity eq 'high' or severity eq 'medium'", lambda a: a["severity"] in ("high", "medium")),
        ("classification ne 'unknown'", lambda a: a["classification"] != "unknown"),
        ("determination eq 'malware'", lambda a: a["determination"] == "malware"),
        (
            "serviceSource eq 'microsoftDefenderForOffice365'",
            lambda a: a["serviceSource"] == "microsoftDefenderForOffice365",
        ),
        ("assignedTo eq null", lambda a: a["assignedTo"] is None),
        (
            "createdDateTime ge 2026-11-19T12:00:00Z",
            lambda a: ticks(a["createdDateTime"]) >= ticks("2026-11-19T12:00:00Z"),
        ),
        (
            "lastUpdateDateTime lt 2026-11-20T06:00:00Z and status ne 'resolved'",
            lambda a: (
                ticks(a["lastUpdateDateTime"]) < ticks("2026-11-20T06:00:00Z") and a["status"] != "resolved"
            ),
        ),
    ],
)
def test_each_filterable_field_filters(emulator: DefenderEmulator, clause: str, keep: Any) -> None:
    bearer = token(emulator, GRAPH)
    everything, _ = every_page(emulator, bearer, f"{ALERTS}?$top=1000")
    filtered, _ = every_page(emulator, bearer, f"{ALERTS}?$top=1000&$filter={clause}")
    expected = [alert["id"] for alert in everything if keep(alert)]
    assert 0 < len(expected) < len(everything), clause
    assert [alert["id"] for alert in filtered] == expected


def test_a_filter_on_another_field_is_a_400_naming_it_and_the_filterable_ones(
    emulator: DefenderEmulator,
) -> None:
    assert set(FILTER_FIELDS) == {
        "assignedTo",
        "classification",
        "determination",
        "createdDateTime",
        "lastUpdateDateTime",
        "severity",
        "serviceSource",
        "status",
    }
    bearer = token(emulator, GRAPH)
    for field in ("investigationState", "title", "incidentId", "detectionSource"):
        reply = call(emulator, "GET", ALERTS, bearer=bearer, params={"$filter": f"{field} eq 'x'"})
        error = graph_error(reply, 400)
        assert error["code"] == "BadRequest"
        assert f"Could not find a property named '{field}'" in error["message"]
        assert (
            "the properties are assignedTo, classification, createdDateTime, determination, "
            "lastUpdateDateTime, serviceSource, severity, status" in error["message"]
        )


# Get, PATCH, comments --------------------------------------------------------------------------------


def test_get_an_alert_and_404_in_graph_shape(emulator: DefenderEmulator) -> None:
    bearer = token(emulator, GRAPH)
    listed = call(emulator, "GET", f"{ALERTS}?$top=1", bearer=bearer).json()["value"][0]
    got = call(emulator, "GET", f"{ALERTS}/{listed['id']}", bearer=bearer).json()
    assert got.pop("@odata.context").endswith("$metadata#security/alerts_v2/$entity")
    assert got == listed
    for method, path, body in (
        ("GET", f"{ALERTS}/da0_0", None),
        ("PATCH", f"{ALERTS}/da0_0", {"status": "resolved"}),
        ("POST", f"{ALERTS}/da0_0/comments", {"@odata.type": COMMENT_TYPE, "comment": "x"}),
    ):
        error = graph_error(call(emulator, method, path, bearer=bearer, json=body), 404)
        assert (error["code"], error["message"]) == ("NotFound", "Alert da0_0 was not found.")


def test_patch_updates_the_alert_and_stamps_it_and_its_incident_with_one_time(
    emulator: DefenderEmulator,
) -> None:
    bearer, mtp = token(emulator, GRAPH), token(emulator, MTP)
    alert = call(emulator, "GET", f"{ALERTS}?$top=1&$filter=status ne 'resolved'", bearer=bearer).json()[
        "value"
    ][0]
    now = emulator.advance_clock(90)
    reply = call(
        emulator,
        "PATCH",
        f"{ALERTS}/{alert['id']}",
        bearer=bearer,
        json={
            "status": "Resolved",
            "classification": "falsePositive",
            "determination": "clean",
            "assignedTo": "soc@contoso.com",
        },
    )
    assert reply.status_code == 200, reply.text
    updated = reply.json()
    stamp = now.replace("Z", ".0000000Z")
    assert (
        updated["status"],
        updated["classification"],
        updated["determination"],
        updated["assignedTo"],
    ) == (
        "resolved",
        "falsePositive",
        "clean",
        "soc@contoso.com",
    )
    assert updated["lastUpdateDateTime"] == updated["resolvedDateTime"] == stamp
    incident = call(
        emulator, "GET", f"/v1.0/security/incidents/{alert['incidentId']}?$expand=alerts", bearer=bearer
    ).json()
    assert incident["lastUpdateDateTime"] == stamp
    (embedded,) = [item for item in incident["alerts"] if item["id"] == alert["id"]]
    updated.pop("@odata.context")
    assert embedded == updated
    # The legacy API embeds the same alert, mapped; in its single incident and in its listing.
    legacy = call(emulator, "GET", f"/api/incidents/{alert['incidentId']}", bearer=mtp).json()
    (legacy_alert,) = [item for item in legacy["alerts"] if item["alertId"] == alert["id"]]
    assert legacy_alert == mapping.alert_to_legacy(updated)
    assert (legacy_alert["status"], legacy_alert["classification"], legacy_alert["lastUpdatedTime"]) == (
        "Resolved",
        "FalsePositive",
        stamp,
    )
    listing = call(emulator, "GET", f"/api/incidents?$filter=lastUpdateTime ge {now}", bearer=mtp).json()[
        "value"
    ]
    assert [item["incidentId"] for item in listing] == [int(alert["incidentId"])]
    assert legacy_alert in listing[0]["alerts"]
    # Leaving "resolved" drops resolvedDateTime.
    reopened = call(
        emulator, "PATCH", f"{ALERTS}/{alert['id']}", bearer=bearer, json={"status": "inProgress"}
    )
    assert reopened.json()["resolvedDateTime"] is None


@pytest.mark.parametrize(
    ("body", "words"),
    [
        (
            {"title": "x"},
            ["'title'", "Writable properties: status, classification, determination, assignedTo"],
        ),
        ({"severity": "high"}, ["'severity'", "Writable properties"]),
        ({"status": "closed"}, ["status", "'closed'", "new", "inProgress", "resolved"]),
        ({"classification": "benign"}, ["classification", "'benign'", "truePositive", "falsePositive"]),
        ({"determination": "sunspots"}, ["determination", "'sunspots'", "malware", "securityTesting"]),
        ({"assignedTo": 5}, ["assignedTo", "5", "string"]),
    ],
)
def test_patch_refuses_an_unknown_field_or_value_naming_what_is_accepted(
    emulator: DefenderEmulator, body: dict[str, Any], words: list[str]
) -> None:
    bearer = token(emulator, GRAPH)
    alert = call(emulator, "GET", f"{ALERTS}?$top=1", bearer=bearer).json()["value"][0]
    error = graph_error(call(emulator, "PATCH", f"{ALERTS}/{alert['id']}", bearer=bearer, json=body), 400)
    assert error["code"] == "BadRequest"
    for word in words:
        assert word in error["message"], (word, error["message"])
    assert (
        call(emulator, "GET", f"{ALERTS}/{alert['id']}", bearer=bearer).json()["lastUpdateDateTime"]
        == (alert["lastUpdateDateTime"])
    )


def test_comments_reply_with_every_comment_of_the_alert_and_stamp_like_patch(
    emulator: DefenderEmulator,
) -> None:
    bearer = token(emulator, GRAPH)
    alert = call(emulator, "GET", f"{ALERTS}?$top=1", bearer=bearer).json()["value"][0]
    now = emulator.advance_clock(30).replace("Z", ".0000000Z")
    path = f"{ALERTS}/{alert['id']}/comments"
    first = call(
        emulator, "POST", path, bearer=bearer, json={"@odata.type": COMMENT_TYPE, "comment": "looking"}
    )
    assert first.status_code == 200, first.text
    second = call(
        emulator, "POST", path, bearer=bearer, json={"@odata.type": COMMENT_TYPE, "comment": "benign"}
    )
    author = f"API-App:{emulator.client_id}"
    assert second.json()["value"] == [
        {"comment": "looking", "createdByDisplayName": author, "createdDateTime": now},
        {"comment": "benign", "createdByDisplayName": author, "createdDateTime": now},
    ]
    got = call(emulator, "GET", f"{ALERTS}/{alert['id']}", bearer=bearer).json()
    assert got["comments"] == second.json()["value"]
    assert got["lastUpdateDateTime"] == now
    incident = call(emulator, "GET", f"/v1.0/security/incidents/{alert['incidentId']}", bearer=bearer).json()
    assert incident["lastUpdateDateTime"] == now
    error = graph_error(call(emulator, "POST", path, bearer=bearer, json={"comment": ""}), 400)
    assert "'comment' property is required" in error["message"]


def test_an_incident_patch_on_either_api_shows_in_its_alerts(emulator: DefenderEmulator) -> None:
    bearer, mtp = token(emulator, GRAPH), token(emulator, MTP)
    incident = call(
        emulator,
        "GET",
        "/v1.0/security/incidents?$top=1&$filter=status eq 'active'&$expand=alerts",
        bearer=bearer,
    ).json()["value"][0]
    now = emulator.advance_clock(60).replace("Z", ".0000000Z")
    patched = call(
        emulator, "PATCH", f"/api/incidents/{incident['id']}", bearer=mtp, json={"status": "Resolved"}
    )
    assert patched.status_code == 200, patched.text
    for alert in incident["alerts"]:
        got = call(emulator, "GET", f"{ALERTS}/{alert['id']}", bearer=bearer).json()
        assert (got["status"], got["lastUpdateDateTime"], got["resolvedDateTime"]) == ("resolved", now, now)
    newest = call(emulator, "GET", f"{ALERTS}?$filter=lastUpdateDateTime ge {now}", bearer=bearer).json()[
        "value"
    ]
    assert sorted(alert["id"] for alert in newest) == sorted(alert["id"] for alert in incident["alerts"])


def test_an_incident_is_never_updated_before_its_alerts(emulator: DefenderEmulator) -> None:
    """Every way the emulator changes times, the clock moved back and forth, checked on every incident."""
    rng = random.Random(5)
    bearer, mtp = token(emulator, GRAPH), token(emulator, MTP)
    assert_incidents_not_before_their_alerts(every_incident(emulator, bearer))
    alerts, _ = every_page(emulator, bearer, f"{ALERTS}?$top=1000")
    incident_ids = sorted({alert["incidentId"] for alert in alerts})
    for step in range(40):
        emulator.set_clock(
            (datetime(2026, 11, 20, 12, tzinfo=UTC) + timedelta(minutes=rng.randint(-600, 600))).isoformat()
        )
        alert = rng.choice(alerts)
        incident_id = rng.choice(incident_ids)
        earlier = f"2026-11-{rng.randint(17, 20):02d}T0{rng.randint(0, 9)}:00:00Z"
        kind = step % 6
        if kind == 0:
            reply = call(
                emulator, "PATCH", f"{ALERTS}/{alert['id']}", bearer=bearer, json={"status": "inProgress"}
            )
        elif kind == 1:
            reply = call(
                emulator,
                "POST",
                f"{ALERTS}/{alert['id']}/comments",
                bearer=bearer,
                json={"@odata.type": COMMENT_TYPE, "comment": f"step {step}"},
            )
        elif kind == 2:
            reply = call(
                emulator, "PATCH", f"/api/incidents/{incident_id}", bearer=mtp, json={"comment": "x"}
            )
        elif kind == 3:
            reply = call(
                emulator,
                "PATCH",
                f"/v1.0/security/incidents/{incident_id}",
                bearer=bearer,
                json={"status": "inProgress"},
            )
        elif kind == 4:
            reply = admin_alerts(
                emulator, {"id": alert["id"], "lastUpdateDateTime": earlier}, {"incidentId": incident_id}
            )
        else:
            reply = emulator.session.post(
                f"{emulator.url}/_emulator/incidents",
                json={"id": incident_id, "lastUpdateDateTime": earlier},
                timeout=60,
            )
        assert reply.status_code == 200, (kind, reply.text)
    assert_incidents_not_before_their_alerts(every_incident(emulator, bearer))


# Permissions and routes ------------------------------------------------------------------------------


def test_the_app_without_alert_roles_gets_a_403_naming_the_permission(emulator: DefenderEmulator) -> None:
    apps = emulator.apps
    assert "SecurityAlert.Read.All" not in apps["no_alerts"]["roles"]["graph"]
    assert "SecurityAlert.ReadWrite.All" not in apps["no_alerts"]["roles"]["graph"]
    bearer = token(emulator, GRAPH, app="no_alerts")
    assert call(emulator, "GET", "/v1.0/security/incidents?$top=1", bearer=bearer).status_code == 200
    assert graph_hunt(emulator, bearer, "print x = 1").status_code == 200
    alert_id = call(emulator, "GET", f"{ALERTS}?$top=1", bearer=token(emulator, GRAPH)).json()["value"][0][
        "id"
    ]
    for method, path, body in (
        ("GET", ALERTS, None),
        ("GET", f"{ALERTS}/{alert_id}", None),
        ("PATCH", f"{ALERTS}/{alert_id}", {"status": "resolved"}),
        ("POST", f"{ALERTS}/{alert_id}/comments", {"@odata.type": COMMENT_TYPE, "comment": "x"}),
    ):
        error = graph_error(call(emulator, method, path, bearer=bearer, json=body), 403)
        needed = (
            "SecurityAlert.Read.All,SecurityAlert.ReadWrite.All"
            if method == "GET"
            else "SecurityAlert.ReadWrite.All"
        )
        assert error["code"] == "Forbidden"
        assert error["message"] == (
            f"Missing application roles. API required roles: {needed}, application roles: "
            "SecurityIncident.ReadWrite.All,ThreatHunting.Read.All."
        )


def test_read_only_reads_alerts_but_cannot_change_them_and_the_other_apps_can(
    emulator: DefenderEmulator,
) -> None:
    read_only = token(emulator, GRAPH, app="read_only")
    alert_id = call(emulator, "GET", f"{ALERTS}?$top=1", bearer=read_only).json()["value"][0]["id"]
    error = graph_error(
        call(emulator, "PATCH", f"{ALERTS}/{alert_id}", bearer=read_only, json={"status": "new"}), 403
    )
    assert "API required roles: SecurityAlert.ReadWrite.All," in error["message"]
    no_hunting = token(emulator, GRAPH, app="no_hunting")
    assert (
        call(emulator, "PATCH", f"{ALERTS}/{alert_id}", bearer=no_hunting, json={"status": "new"}).status_code
        == 200
    )
    # The user app: delegated (scp) alert permissions.
    user = emulator.apps["user"]
    assert "SecurityAlert.ReadWrite.All" in user["scopes"]["graph"]
    reply = requests.post(
        f"{emulator.url}/{emulator.tenant_id}/oauth2/v2.0/token",
        data={
            "grant_type": "password",
            "client_id": user["client_id"],
            "username": user["username"],
            "password": user["password"],
            "scope": f"{GRAPH}/.default",
        },
        verify=emulator.ca_bundle,
        timeout=30,
    )
    delegated = reply.json()["access_token"]
    reply = call(
        emulator, "PATCH", f"{ALERTS}/{alert_id}", bearer=delegated, json={"assignedTo": user["username"]}
    )
    assert reply.status_code == 200, reply.text


def test_the_legacy_api_has_no_alerts_route(emulator: DefenderEmulator) -> None:
    reply = call(emulator, "GET", "/api/alerts", bearer=token(emulator, MTP))
    assert reply.status_code == 404
    error = reply.json()["error"]
    assert set(error) == {"code", "message", "target"}
    assert error["code"] == "NotFound"


def test_stats_count_the_alert_routes(emulator: DefenderEmulator) -> None:
    bearer = token(emulator, GRAPH)
    alert_id = call(emulator, "GET", f"{ALERTS}?$top=1", bearer=bearer).json()["value"][0]["id"]
    call(emulator, "GET", f"{ALERTS}/{alert_id}", bearer=bearer)
    call(emulator, "GET", f"{ALERTS}/nope", bearer=bearer)
    call(emulator, "PATCH", f"{ALERTS}/{alert_id}", bearer=bearer, json={"status": "new"})
    call(emulator, "POST", f"{ALERTS}/{alert_id}/comments", bearer=bearer, json={"comment": "x"})
    requests_by_route = emulator.stats()["requests"]
    assert requests_by_route["GET /v1.0/security/alerts_v2"] == {"200": 1}
    assert requests_by_route["GET /v1.0/security/alerts_v2/{alert_id}"] == {"200": 1, "404": 1}
    assert requests_by_route["PATCH /v1.0/security/alerts_v2/{alert_id}"] == {"200": 1}
    assert requests_by_route["POST /v1.0/security/alerts_v2/{alert_id}/comments"] == {"200": 1}
