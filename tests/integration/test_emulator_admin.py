"""The emulator's own routes: counters, reset, loading rows, and incident writes through both APIs."""

from __future__ import annotations

from airflow_provider_mtp.emulator import DefenderEmulator
from tests.integration.conftest import GRAPH, MTP, call, graph_hunt, legacy_hunt, token


def test_stats_count_requests_by_route_template_and_status(strict_emulator: DefenderEmulator) -> None:
    strict_emulator.reset()
    bearer = token(strict_emulator, GRAPH)
    ids = [
        item["id"]
        for item in call(strict_emulator, "GET", "/v1.0/security/incidents", bearer=bearer).json()["value"]
    ]
    for incident_id in ids[:3]:
        call(strict_emulator, "GET", f"/v1.0/security/incidents/{incident_id}", bearer=bearer)
    call(strict_emulator, "GET", "/v1.0/security/incidents/424242", bearer=bearer)
    stats = strict_emulator.stats()
    assert stats["tokens_issued"] == {strict_emulator.client_id: 1}
    assert stats["requests"]["GET /v1.0/security/incidents"] == {"200": 1}
    assert stats["requests"]["GET /v1.0/security/incidents/{incident_id}"] == {"200": 3, "404": 1}
    assert not any(key.startswith("GET /_emulator") for key in stats["requests"])


def test_loaded_rows_are_hunted_and_reset_drops_them(strict_emulator: DefenderEmulator) -> None:
    strict_emulator.reset()
    query = 'DeviceProcessEvents | where DeviceName == "my-test-box" | project FileName, ProcessCommandLine'
    bearer = token(strict_emulator, MTP)
    assert legacy_hunt(strict_emulator, bearer, query).json()["Results"] == []
    rows = [
        {
            "Timestamp": "2026-11-20T11:00:00Z",
            "DeviceName": "my-test-box",
            "FileName": "evil.exe",
            "ProcessCommandLine": "evil.exe --all",
        },
        {
            "Timestamp": "2026-11-20T11:30:00Z",
            "DeviceName": "my-test-box",
            "FileName": "calc.exe",
            "ProcessCommandLine": "calc.exe",
        },
    ]
    assert strict_emulator.load_rows("DeviceProcessEvents", rows) == 2
    results = legacy_hunt(strict_emulator, bearer, query).json()["Results"]
    assert sorted(results, key=lambda row: row["FileName"]) == [
        {"FileName": "calc.exe", "ProcessCommandLine": "calc.exe"},
        {"FileName": "evil.exe", "ProcessCommandLine": "evil.exe --all"},
    ]
    strict_emulator.reset()
    assert legacy_hunt(strict_emulator, token(strict_emulator, MTP), query).json()["Results"] == []


def test_loading_into_an_unknown_table_or_column_is_a_400(strict_emulator: DefenderEmulator) -> None:
    session = strict_emulator.session
    response = session.post(
        f"{strict_emulator.url}/_emulator/tables/NoSuchTable", json=[{"a": 1}], timeout=30
    )
    assert response.status_code == 400
    assert "NoSuchTable" in response.json()["error"]["message"]
    response = session.post(
        f"{strict_emulator.url}/_emulator/tables/DeviceProcessEvents", json=[{"Colour": "red"}], timeout=30
    )
    assert response.status_code == 400
    assert "Colour" in response.json()["error"]["message"]


def test_an_update_through_one_api_shows_in_the_other_and_reset_restores_it(
    strict_emulator: DefenderEmulator,
) -> None:
    strict_emulator.reset()
    graph_token, mtp_token = token(strict_emulator, GRAPH), token(strict_emulator, MTP)
    incident_id = call(strict_emulator, "GET", "/v1.0/security/incidents?$top=1", bearer=graph_token).json()[
        "value"
    ][0]["id"]
    before = call(strict_emulator, "GET", f"/api/incidents/{incident_id}", bearer=mtp_token).json()
    patched = call(
        strict_emulator,
        "PATCH",
        f"/api/incidents/{incident_id}",
        bearer=mtp_token,
        json={
            "status": "Resolved",
            "classification": "TruePositive",
            "determination": "Malware",
            "tags": ["ir-42"],
            "comment": "contained",
        },
    )
    assert patched.status_code == 200, patched.text
    graph = call(strict_emulator, "GET", f"/v1.0/security/incidents/{incident_id}", bearer=graph_token).json()
    assert (graph["status"], graph["classification"], graph["determination"]) == (
        "resolved",
        "truePositive",
        "malware",
    )
    assert graph["customTags"] == ["ir-42"]
    assert graph["comments"][-1]["comment"] == "contained"
    assert graph["comments"][-1]["createdByDisplayName"] == f"API-App:{strict_emulator.client_id}"
    assert graph["lastUpdateDateTime"] != before["lastUpdateTime"]
    comments = call(
        strict_emulator,
        "POST",
        f"/v1.0/security/incidents/{incident_id}/comments",
        bearer=graph_token,
        json={"@odata.type": "microsoft.graph.security.alertComment", "comment": "second"},
    ).json()["value"]
    assert [item["comment"] for item in comments[-2:]] == ["contained", "second"]
    strict_emulator.reset()
    after = call(
        strict_emulator, "GET", f"/api/incidents/{incident_id}", bearer=token(strict_emulator, MTP)
    ).json()
    assert after == before


def test_graph_filter_orderby_and_count(defender_emulator: DefenderEmulator) -> None:
    bearer = token(defender_emulator, GRAPH)
    everything = call(
        defender_emulator, "GET", "/v1.0/security/incidents?$top=50&$count=true", bearer=bearer
    ).json()
    total = everything["@odata.count"]
    high = call(
        defender_emulator,
        "GET",
        "/v1.0/security/incidents",
        bearer=bearer,
        params={
            "$filter": "severity eq 'high' and status ne 'resolved'",
            "$count": "true",
            "$orderby": "lastUpdateDateTime asc",
            "$top": "50",
        },
    ).json()
    assert 0 < high["@odata.count"] < total
    assert all(item["severity"] == "high" and item["status"] != "resolved" for item in high["value"])
    stamps = [item["lastUpdateDateTime"] for item in high["value"]]
    assert stamps == sorted(stamps, key=lambda s: s.rstrip("Z").ljust(27, "0"))
    assert "alerts" not in high["value"][0]
    expanded = call(
        defender_emulator, "GET", "/v1.0/security/incidents?$top=1&$expand=alerts", bearer=bearer
    ).json()
    assert expanded["value"][0]["alerts"]


def test_hunting_datetimes_have_seven_fractional_digits(defender_emulator: DefenderEmulator) -> None:
    rows = graph_hunt(
        defender_emulator, token(defender_emulator, GRAPH), "DeviceProcessEvents | take 5 | project Timestamp"
    ).json()["results"]
    assert rows
    for row in rows:
        seconds = row["Timestamp"].split(".")
        assert len(seconds) == 2
        assert len(seconds[1]) == 8
        assert seconds[1].endswith("Z")


def test_put_incidents_and_move_the_clock_act_as_a_live_tenant(strict_emulator: DefenderEmulator) -> None:
    strict_emulator.reset()
    bearer = token(strict_emulator, GRAPH)
    start = strict_emulator.set_clock("2026-11-20T12:00:00Z")
    assert start == "2026-11-20T12:00:00Z"
    assert strict_emulator.advance_clock(90) == "2026-11-20T12:01:30Z"
    (created,) = strict_emulator.put_incidents({"displayName": "Made by a test", "severity": "high"})
    assert created["lastUpdateDateTime"] == "2026-11-20T12:01:30.0000000Z"
    assert created["createdDateTime"] == created["lastUpdateDateTime"]
    fetched = call(strict_emulator, "GET", f"/v1.0/security/incidents/{created['id']}", bearer=bearer).json()
    assert (fetched["displayName"], fetched["severity"], fetched["status"]) == (
        "Made by a test",
        "high",
        "active",
    )
    strict_emulator.advance_clock(60)
    (changed,) = strict_emulator.put_incidents({"id": created["id"], "status": "inProgress"})
    assert changed["lastUpdateDateTime"] == "2026-11-20T12:02:30.0000000Z"
    assert changed["displayName"] == "Made by a test"
    (exact,) = strict_emulator.put_incidents(
        {"id": created["id"], "lastUpdateDateTime": "2026-11-20T12:00:00Z"}
    )
    assert exact["lastUpdateDateTime"] == "2026-11-20T12:00:00Z"
    legacy = call(
        strict_emulator, "GET", f"/api/incidents/{created['id']}", bearer=token(strict_emulator, MTP)
    )
    assert legacy.json()["lastUpdateTime"] == "2026-11-20T12:00:00Z"
    strict_emulator.reset()
    assert (
        call(strict_emulator, "GET", f"/v1.0/security/incidents/{created['id']}", bearer=bearer).status_code
        == 404
    )


def test_bad_clock_bodies_are_refused(strict_emulator: DefenderEmulator) -> None:
    for body in (
        {},
        {"now": "yesterday"},
        {"now": "2026-11-20T12:00:00"},
        {"advance_s": 1, "now": "2026-11-20T12:00:00Z"},
    ):
        response = strict_emulator.session.post(
            f"{strict_emulator.url}/_emulator/clock", json=body, timeout=30
        )
        assert response.status_code == 400, body
