"""The emulator's alerts as they change: AlertInfo/AlertEvidence rows follow every change,
``/_emulator/alerts`` creates and updates alerts as a live tenant would, and the store's alert index
pages the very alerts the incidents embed, copying nothing, through any sequence of changes."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from airflow_provider_mtp.emulator import DefenderEmulator, odata
from airflow_provider_mtp.emulator.config import Clock
from airflow_provider_mtp.emulator.incidents import IncidentStore
from tests.conftest import TEST_NOW
from tests.integration.conftest import GRAPH, call, graph_hunt, token
from tests.integration.test_emulator_alerts import (
    ALERT_FIELDS,
    ALERTS,
    admin_alerts,
    assert_incidents_not_before_their_alerts,
    put_alerts,
    ticks,
)
from tests.integration.test_emulator_incident_store import CopyProbe


@pytest.fixture(scope="module")
def changes_emulator() -> Iterator[DefenderEmulator]:
    with DefenderEmulator(seed=29, now=TEST_NOW, incidents=40, days=2, events_per_day=5, quotas=False) as emu:
        yield emu


@pytest.fixture
def emulator(changes_emulator: DefenderEmulator) -> DefenderEmulator:
    changes_emulator.reset()
    return changes_emulator


# Hunting rows ----------------------------------------------------------------------------------------


def alert_rows(emulator: DefenderEmulator, bearer: str, table: str, alert_id: str) -> list[dict[str, Any]]:
    reply = graph_hunt(emulator, bearer, f'{table} | where AlertId == "{alert_id}" | order by Title asc')
    assert reply.status_code == 200, reply.text
    return list(reply.json()["results"])


def test_alert_info_and_evidence_follow_every_change_one_set_of_rows_per_alert(
    emulator: DefenderEmulator,
) -> None:
    bearer = token(emulator, GRAPH)
    alert = call(emulator, "GET", f"{ALERTS}?$top=1", bearer=bearer).json()["value"][0]
    (before,) = alert_rows(emulator, bearer, "AlertInfo", alert["id"])
    assert len(alert_rows(emulator, bearer, "AlertEvidence", alert["id"])) == len(alert["evidence"])
    put_alerts(emulator, {"id": alert["id"], "title": "Renamed by a test", "severity": "low"})
    # A PATCH changes no hunting column; its rows stay, not doubled.
    call(emulator, "PATCH", f"{ALERTS}/{alert['id']}", bearer=bearer, json={"classification": "truePositive"})
    put_alerts(emulator, {"id": alert["id"], "severity": "high"})
    (after,) = alert_rows(emulator, bearer, "AlertInfo", alert["id"])
    assert after == {**before, "Title": "Renamed by a test", "Severity": "High"}
    evidence = alert_rows(emulator, bearer, "AlertEvidence", alert["id"])
    assert len(evidence) == len(alert["evidence"])
    assert {row["Title"] for row in evidence} == {"Renamed by a test"}
    (made,) = put_alerts(emulator, {"title": "Made by a test", "severity": "medium", "category": "Execution"})
    # Created at the data clock's now: hunting windows end just before now, so a tick later.
    emulator.advance_clock(1)
    (info,) = alert_rows(emulator, bearer, "AlertInfo", made["id"])
    assert (info["Title"], info["Severity"], info["Category"]) == ("Made by a test", "Medium", "Execution")
    counts = graph_hunt(emulator, bearer, "AlertInfo | summarize n = count() by AlertId | where n > 1").json()
    assert counts["results"] == []
    emulator.reset()
    assert alert_rows(emulator, bearer, "AlertInfo", alert["id"]) == [before]
    assert alert_rows(emulator, bearer, "AlertInfo", made["id"]) == []


# /_emulator/alerts -----------------------------------------------------------------------------------


def test_the_admin_route_creates_alerts_in_an_incident_or_a_new_one_and_updates_any_field(
    emulator: DefenderEmulator,
) -> None:
    bearer = token(emulator, GRAPH)
    emulator.set_clock("2026-11-20T12:30:00Z")
    incident = call(emulator, "GET", "/v1.0/security/incidents?$top=1&$expand=alerts", bearer=bearer).json()[
        "value"
    ][0]
    joined, alone = put_alerts(
        emulator,
        {"incidentId": incident["id"], "title": "Joins an incident", "severity": "high"},
        {"title": "Alone", "serviceSource": "microsoftDefenderForIdentity"},
    )
    stamp = "2026-11-20T12:30:00.0000000Z"
    assert set(joined) == ALERT_FIELDS
    assert (joined["incidentId"], joined["lastUpdateDateTime"], joined["createdDateTime"]) == (
        incident["id"],
        stamp,
        stamp,
    )
    after = call(
        emulator, "GET", f"/v1.0/security/incidents/{incident['id']}?$expand=alerts", bearer=bearer
    ).json()
    assert after["lastUpdateDateTime"] == stamp
    assert [item["id"] for item in after["alerts"]] == [
        *(item["id"] for item in incident["alerts"]),
        joined["id"],
    ]
    new_incident = call(
        emulator, "GET", f"/v1.0/security/incidents/{alone['incidentId']}?$expand=alerts", bearer=bearer
    ).json()
    assert new_incident["displayName"] == "Alone"
    assert [item["id"] for item in new_incident["alerts"]] == [alone["id"]]
    listed = call(emulator, "GET", f"{ALERTS}?$top=2", bearer=bearer).json()["value"]
    assert {item["id"] for item in listed} == {joined["id"], alone["id"]}
    # Any field, an exact update time (a boundary) included.
    (changed,) = put_alerts(
        emulator, {"id": joined["id"], "detectorId": "d-1", "lastUpdateDateTime": "2026-11-20T12:00:00Z"}
    )
    assert (changed["detectorId"], changed["lastUpdateDateTime"], changed["title"]) == (
        "d-1",
        "2026-11-20T12:00:00Z",
        "Joins an incident",
    )
    for bad, words in (
        ({"incidentId": "999999"}, "Incident 999999 does not exist"),
        ({"id": joined["id"], "incidentId": alone["incidentId"]}, "an alert cannot move"),
        ({"id": joined["id"], "createdDateTime": "yesterday"}, "yesterday"),
        (
            {
                "id": joined["id"],
                "evidence": [
                    {
                        "@odata.type": "#microsoft.graph.security.fileEvidence",
                        "fileDetails": {"fileSize": "big"},
                    }
                ],
            },
            "AlertEvidence.FileSize",
        ),
    ):
        reply = admin_alerts(emulator, bad)
        assert reply.status_code == 400
        assert words in reply.json()["error"]["message"]
    # Refused whole: the store and the hunting rows are as they were.
    got = call(emulator, "GET", f"{ALERTS}/{joined['id']}", bearer=bearer).json()
    assert (got["evidence"], got["lastUpdateDateTime"]) == ([], "2026-11-20T12:00:00Z")
    emulator.advance_clock(1)  # created at now: hunting sees it a tick later
    assert len(alert_rows(emulator, bearer, "AlertInfo", joined["id"])) == 1
    assert len(alert_rows(emulator, bearer, "AlertEvidence", joined["id"])) == 0


# The store: a page costs the page ---------------------------------------------------------------------


def store_incidents(count: int) -> list[dict[str, Any]]:
    return [
        {
            "id": str(1000 + number),
            "createdDateTime": f"2026-05-01T00:{number % 60:02d}:00Z",
            "lastUpdateDateTime": "2026-05-02T00:00:00Z",
            "alerts": [
                {
                    "id": f"da{number}_{index}",
                    "status": "new",
                    "createdDateTime": f"2026-05-01T0{index}:{number % 60:02d}:00Z",
                    "lastUpdateDateTime": "2026-05-01T12:00:00Z",
                    "probe": CopyProbe(),
                }
                for index in range(2)
            ],
        }
        for number in range(count)
    ]


def test_an_alert_page_copies_nothing_and_reads_the_filter_only_until_the_page_is_full() -> None:
    store = IncidentStore(store_incidents(2000), clock=Clock(datetime(2026, 6, 1, tzinfo=UTC)))
    seen = 0

    def predicate(row: Any) -> bool:
        nonlocal seen
        seen += 1
        return True

    CopyProbe.copies = 0
    page = store.alert_page(predicate, None, skip=0, top=1, count=False)
    assert CopyProbe.copies == 0
    assert seen == 2, "one alert for the page, one to know there are more"
    assert page.more
    assert page.total is None


def test_alert_pages_equal_the_alerts_the_incidents_embed_through_any_changes() -> None:
    rng = random.Random(11)
    clock = Clock(datetime(2026, 6, 1, tzinfo=UTC))
    store = IncidentStore(store_incidents(40), clock=clock)
    fields: dict[str, odata.FieldKind] = {"status": "enum", "lastUpdateDateTime": "datetime"}
    predicate = odata.parse_filter(
        "status ne 'resolved' or lastUpdateDateTime ge 2026-06-01T00:10:00Z", fields=fields
    )
    for step in range(300):
        clock.set(clock.now() + timedelta(seconds=rng.randint(-30, 90)))
        ids = [alert["id"] for alert in store.alert_page().items]
        kind = rng.randrange(6)
        if kind == 0:
            store.update_alert(rng.choice(ids), {"status": rng.choice(["resolved", "new"])}, author="ana")
        elif kind == 1:
            store.update(rng.choice([i["id"] for i in store.select()]), {"status": "resolved"}, author="ana")
        elif kind == 2:
            store.put_alert({"incidentId": rng.choice(["1001", "1002", None])}, tenant_id="t", portal="p")
        elif kind == 3:
            store.put_alert(
                {"id": rng.choice(ids), "createdDateTime": f"2026-05-0{rng.randint(1, 9)}T00:00:00Z"},
                tenant_id="t",
                portal="p",
            )
        elif kind == 4:
            store.put({"id": "1003", "alerts": [{"title": "replaced"}]}, tenant_id="t", portal="p")
        elif step % 50 == 0:
            store.reset()
        embedded = [alert for incident in store.select() for alert in incident["alerts"]]
        listed = store.alert_page().items
        # The very alerts the incidents embed, newest created first (ties in a fixed order).
        assert sorted(listed, key=lambda alert: alert["id"]) == sorted(
            embedded, key=lambda alert: alert["id"]
        )
        assert [ticks(alert["createdDateTime"]) for alert in listed] == sorted(
            (ticks(alert["createdDateTime"]) for alert in embedded), reverse=True
        )
        assert len({alert["id"] for alert in embedded}) == len(embedded)
        matching = [alert["id"] for alert in listed if predicate(alert)]
        skip = rng.randint(0, 20)
        page = store.alert_page(predicate, None, skip=skip, top=7, count=True)
        assert [alert["id"] for alert in page.items] == matching[skip : skip + 7]
        assert page.total == len(matching)
        by_update = store.alert_page(None, [("lastUpdateDateTime", False)]).items
        assert [ticks(alert["lastUpdateDateTime"]) for alert in by_update] == sorted(
            ticks(alert["lastUpdateDateTime"]) for alert in embedded
        )
        assert_incidents_not_before_their_alerts(store.select())
