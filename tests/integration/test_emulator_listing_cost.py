"""Listings from the emulator's incident index stay exact through every kind of change.

The store keeps each ``$orderby`` as a ready order and moves an incident in it when it changes
(issue 10: listing cost proportional to the page). These tests change incidents every way the
emulator can (Graph PATCH and comment, legacy PATCH, admin puts that create incidents or move their
times, the ``mutate`` fault, reset) and check each listing against the order computed here from
the incidents' own timestamps, over real HTTPS; and that the same listing twice is the same bytes.
(That a page copies only its own incidents is checked in tests/integration/test_emulator_incident_store.py.)
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from airflow_provider_mtp.common.ticks import odata_ticks
from airflow_provider_mtp.emulator import DefenderEmulator
from tests.conftest import TEST_NOW
from tests.integration.conftest import GRAPH, MTP, call, token

ORDERS = [
    None,
    "lastUpdateDateTime asc",
    "lastUpdateDateTime desc,createdDateTime asc",
    "createdDateTime asc",
]


@pytest.fixture(scope="module")
def index_emulator() -> Iterator[DefenderEmulator]:
    with DefenderEmulator(seed=41, now=TEST_NOW, incidents=60, days=1, events_per_day=5, quotas=False) as emu:
        yield emu


@pytest.fixture
def emulator(index_emulator: DefenderEmulator) -> Iterator[DefenderEmulator]:
    index_emulator.reset()
    yield index_emulator
    index_emulator.clear_faults()


def expected_order(items: list[dict[str, Any]], orderby: str | None) -> list[str]:
    """Ids in ``$orderby`` order, ties by id in the first key's direction (newest created first by default)."""
    keys = [
        (part.split()[0], part.split()[1] == "desc")
        for part in (orderby or "createdDateTime desc").split(",")
    ]

    def rank(item: dict[str, Any]) -> tuple[int, ...]:
        ticks = [odata_ticks(item[field]) * (-1 if descending else 1) for field, descending in keys]
        return (*ticks, int(item["id"]) * (-1 if keys[0][1] else 1))

    return [item["id"] for item in sorted(items, key=rank)]


def graph_listing(emulator: DefenderEmulator, bearer: str, params: str = "") -> list[dict[str, Any]]:
    """Every page, following ``@odata.nextLink``; pages of 7 so that most incidents are on a later page."""
    items: list[dict[str, Any]] = []
    url: str | None = f"/v1.0/security/incidents?$top=7{params}"
    while url:
        reply = call(emulator, "GET", url, bearer=bearer)
        assert reply.status_code == 200, reply.text
        items += reply.json()["value"]
        url = reply.json().get("@odata.nextLink")
    return items


def assert_listings_exact(emulator: DefenderEmulator, bearer: str) -> None:
    for orderby in ORDERS:
        listed = graph_listing(emulator, bearer, f"&$orderby={orderby}" if orderby else "")
        assert len({item["id"] for item in listed}) == len(listed), "no incident twice"
        assert [item["id"] for item in listed] == expected_order(listed, orderby), orderby
    everything = graph_listing(emulator, bearer)
    ids = {item["id"] for item in everything}
    cut = sorted(item["lastUpdateDateTime"] for item in everything)[len(everything) // 2]
    reply = call(
        emulator,
        "GET",
        f"/v1.0/security/incidents?$top=5&$count=true&$filter=lastUpdateDateTime ge {cut}"
        "&$orderby=lastUpdateDateTime asc",
        bearer=bearer,
    ).json()
    newer = [item for item in everything if odata_ticks(item["lastUpdateDateTime"]) >= odata_ticks(cut)]
    assert reply["@odata.count"] == len(newer)
    assert [item["id"] for item in reply["value"]] == expected_order(newer, "lastUpdateDateTime asc")[:5]
    assert ("@odata.nextLink" in reply) is (len(newer) > 5)
    assert ids == {item["id"] for item in graph_listing(emulator, bearer, "&$orderby=lastUpdateDateTime asc")}


def test_listings_follow_every_kind_of_change(emulator: DefenderEmulator) -> None:
    graph, legacy = token(emulator, GRAPH), token(emulator, MTP)
    seeded = graph_listing(emulator, graph)
    assert_listings_exact(emulator, graph)
    oldest = graph_listing(emulator, graph, "&$orderby=lastUpdateDateTime asc")
    # Graph PATCH and comment, and a legacy PATCH, on the incidents updated longest ago.
    emulator.advance_clock(60)
    patched = call(
        emulator,
        "PATCH",
        f"/v1.0/security/incidents/{oldest[0]['id']}",
        bearer=graph,
        json={"status": "resolved"},
    )
    assert patched.status_code == 200, patched.text
    emulator.advance_clock(60)
    commented = call(
        emulator,
        "POST",
        f"/v1.0/security/incidents/{oldest[1]['id']}/comments",
        bearer=graph,
        json={"comment": "x"},
    )
    assert commented.status_code == 200, commented.text
    emulator.advance_clock(60)
    legacy_patch = call(
        emulator,
        "PATCH",
        f"/api/incidents/{oldest[2]['id']}",
        bearer=legacy,
        json={"assignedTo": "ana@contoso.com"},
    )
    assert legacy_patch.status_code == 200, legacy_patch.text
    newest_three = graph_listing(emulator, graph, "&$orderby=lastUpdateDateTime desc")[:3]
    assert [item["id"] for item in newest_three] == [oldest[2]["id"], oldest[1]["id"], oldest[0]["id"]]
    assert_listings_exact(emulator, graph)
    # Admin puts: a new incident, an old one moved back in time on both axes, ties on purpose.
    tie = oldest[10]["createdDateTime"]
    (created,) = emulator.put_incidents(
        {"createdDateTime": tie, "lastUpdateDateTime": "2020-01-01T00:00:00Z"}
    )
    emulator.put_incidents(
        {"id": oldest[20]["id"], "createdDateTime": tie, "lastUpdateDateTime": "2019-01-01T00:00:00Z"}
    )
    first_two = graph_listing(emulator, graph, "&$orderby=lastUpdateDateTime asc")[:2]
    assert [item["id"] for item in first_two] == [oldest[20]["id"], created["id"]]
    assert_listings_exact(emulator, graph)
    # Analysts (the mutate fault) update incidents just before a listing is answered.
    emulator.advance_clock(60)
    emulator.inject_fault(path="/v1.0/security/incidents", kind="mutate", n=5, count=1, seed=3)
    call(emulator, "GET", "/v1.0/security/incidents?$top=1", bearer=graph)
    touched = {update["id"] for update in emulator.analyst_updates(clear=True)}
    assert len(touched) == 5
    newest = graph_listing(emulator, graph, "&$orderby=lastUpdateDateTime desc")[:5]
    assert {item["id"] for item in newest} == touched
    assert_listings_exact(emulator, graph)
    # The legacy listing (newest created first, always with alerts) agrees with the Graph one.
    legacy_items = call(emulator, "GET", "/api/incidents?$top=100", bearer=legacy).json()["value"]
    graph_items = graph_listing(emulator, graph)
    assert [str(item["incidentId"]) for item in legacy_items] == [item["id"] for item in graph_items]
    assert [item["lastUpdateTime"] for item in legacy_items] == [
        item["lastUpdateDateTime"] for item in graph_items
    ]
    # Reset: the seeded listing again.
    emulator.reset()
    assert graph_listing(emulator, graph) == seeded
    assert_listings_exact(emulator, graph)


def test_a_page_handed_out_is_not_changed_by_a_later_update(emulator: DefenderEmulator) -> None:
    """Pages share the stored values: a change must make new ones, never edit those in place."""
    graph, legacy = token(emulator, GRAPH), token(emulator, MTP)
    first = call(emulator, "GET", "/v1.0/security/incidents?$top=3&$expand=alerts", bearer=graph)
    legacy_first = call(emulator, "GET", "/api/incidents?$top=3", bearer=legacy)
    incident_id = first.json()["value"][0]["id"]
    emulator.advance_clock(60)
    call(
        emulator,
        "PATCH",
        f"/v1.0/security/incidents/{incident_id}",
        bearer=graph,
        json={"status": "resolved"},
    )
    call(
        emulator,
        "POST",
        f"/v1.0/security/incidents/{incident_id}/comments",
        bearer=graph,
        json={"comment": "c"},
    )
    again = call(emulator, "GET", "/v1.0/security/incidents?$top=3&$expand=alerts", bearer=graph).json()[
        "value"
    ]
    assert again[0]["id"] == incident_id
    assert again[0]["status"] == "resolved"
    assert again[0]["comments"][-1]["comment"] == "c"
    assert {alert["status"] for alert in again[0]["alerts"]} <= {"resolved"}
    legacy_again = call(emulator, "GET", "/api/incidents?$top=3", bearer=legacy).json()["value"]
    assert legacy_again[0]["status"] == "Resolved"
    assert legacy_again[0]["comments"][-1]["comment"] == "c"
    emulator.reset()
    assert (
        call(emulator, "GET", "/v1.0/security/incidents?$top=3&$expand=alerts", bearer=graph).content
        == first.content
    )
    assert call(emulator, "GET", "/api/incidents?$top=3", bearer=legacy).content == legacy_first.content


def test_the_same_listing_twice_is_the_same_bytes(emulator: DefenderEmulator) -> None:
    graph, legacy = token(emulator, GRAPH), token(emulator, MTP)
    for path, bearer in [
        ("/v1.0/security/incidents?$top=50&$expand=alerts&$count=true", graph),
        ("/v1.0/security/incidents?$top=10&$skip=20&$orderby=lastUpdateDateTime asc", graph),
        ("/api/incidents?$top=100", legacy),
    ]:
        first = call(emulator, "GET", path, bearer=bearer)
        assert first.status_code == 200, first.text
        assert call(emulator, "GET", path, bearer=bearer).content == first.content
