"""The emulator's ``mutate`` fault: analysts who update incidents while a listing is paged.

Raw HTTP against a small emulator: the fault really changes the store between two pages, only
touches incidents matching the request's ``$filter``, stamps them with the data clock, logs every
update, and leaves other faults their turn.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from airflow_provider_mtp.emulator import DefenderEmulator
from airflow_provider_mtp.emulator.faults import ANALYST
from tests.conftest import TEST_NOW
from tests.integration.conftest import GRAPH, MTP, call, token

#: 120 incidents last updated one minute apart from here: three Graph pages, two MTP pages.
FIRST = "2026-06-01T00:00:00.0000000Z"
WINDOW = "lastUpdateDateTime ge 2026-06-01T00:00:00.0000000Z and lastUpdateDateTime lt 2026-06-01T02:00:00.0000000Z"
LEGACY_WINDOW = WINDOW.replace("lastUpdateDateTime", "lastUpdateTime")
CLOCK = "2026-06-02T00:00:00Z"
CLOCK_STAMP = "2026-06-02T00:00:00.0000000Z"


@pytest.fixture(scope="module")
def analyst_emulator() -> Iterator[DefenderEmulator]:
    with DefenderEmulator(seed=23, now=TEST_NOW, incidents=3, days=1, events_per_day=5, quotas=False) as emu:
        yield emu


@pytest.fixture
def emulator(analyst_emulator: DefenderEmulator) -> DefenderEmulator:
    analyst_emulator.reset()
    analyst_emulator.put_incidents(
        *(
            {
                "displayName": f"paged {minute}",
                "lastUpdateDateTime": f"2026-06-01T{minute // 60:02d}:{minute % 60:02d}:00.0000000Z",
            }
            for minute in range(120)
        )
    )
    analyst_emulator.set_clock(CLOCK)
    return analyst_emulator


def graph_pages(emulator: DefenderEmulator, bearer: str) -> list[list[dict[str, str]]]:
    """Every page of the window's Graph listing, following ``@odata.nextLink`` (offset paging)."""
    pages = []
    url: str | None = f"/v1.0/security/incidents?$top=50&$filter={WINDOW}"
    while url:
        body = call(emulator, "GET", url, bearer=bearer).json()
        pages.append(body["value"])
        url = body.get("@odata.nextLink")
    return pages


def test_analysts_update_matching_incidents_between_two_pages(emulator: DefenderEmulator) -> None:
    bearer = token(emulator, GRAPH)
    emulator.inject_fault(path="/v1.0/security/incidents", kind="mutate", n=3, after=1, count=1, seed=1)
    pages = graph_pages(emulator, bearer)

    updates = emulator.analyst_updates()
    assert len(updates) == 3
    for update in updates:
        assert FIRST <= update["old"] < "2026-06-01T02:00:00"
        assert update["new"] == CLOCK_STAMP
        assert update["filter"] == WINDOW
        stored = call(emulator, "GET", f"/v1.0/security/incidents/{update['id']}", bearer=bearer).json()
        assert (stored["lastUpdateDateTime"], stored["lastModifiedBy"]) == (CLOCK_STAMP, ANALYST)
    # The three left the window while page 2 was fetched: each one that was on page 1 moved every
    # later incident up a place, so offset paging skipped as many untouched ones.
    touched = {update["id"] for update in updates}
    on_page_1 = touched & {incident["id"] for incident in pages[0]}
    untouched_listed = {incident["id"] for page in pages for incident in page} - touched
    assert sum(len(page) for page in pages) == 120 - 3
    assert on_page_1, "seed 1 touches page 1"
    assert 117 - len(untouched_listed) == len(on_page_1)


def test_the_log_is_drained_once_and_reset_forgets_it(emulator: DefenderEmulator) -> None:
    bearer = token(emulator, GRAPH)
    emulator.inject_fault(path="/v1.0/security/incidents", kind="mutate", n=2, count=1, seed=1)
    call(emulator, "GET", f"/v1.0/security/incidents?$filter={WINDOW}", bearer=bearer)
    assert len(emulator.analyst_updates(clear=True)) == 2
    assert emulator.analyst_updates() == []
    emulator.inject_fault(path="/v1.0/security/incidents", kind="mutate", count=1)
    call(emulator, "GET", "/v1.0/security/incidents", bearer=bearer)
    emulator.reset()
    assert emulator.analyst_updates() == []


def test_legacy_listings_are_touched_through_their_own_filter_names(emulator: DefenderEmulator) -> None:
    bearer = token(emulator, MTP)
    emulator.inject_fault(path="/api/incidents", kind="mutate", n=5, count=1, seed=9)
    body = call(emulator, "GET", f"/api/incidents?$filter={LEGACY_WINDOW}", bearer=bearer).json()
    updates = emulator.analyst_updates()
    assert len(updates) == 5
    assert all(FIRST <= update["old"] < "2026-06-01T02:00:00" for update in updates)
    # Served after the updates: the touched incidents have left the window.
    assert len(body["value"]) == 100
    assert {update["id"] for update in updates}.isdisjoint(str(item["incidentId"]) for item in body["value"])


def test_the_same_seed_touches_the_same_incidents_and_probability_thins_requests(
    emulator: DefenderEmulator,
) -> None:
    bearer = token(emulator, GRAPH)
    emulator.inject_fault(
        path="/v1.0/security/incidents", kind="mutate", n=1, probability=0.5, count=1000, seed=7
    )
    for _ in range(20):
        call(emulator, "GET", "/v1.0/security/incidents?$top=1", bearer=bearer)
    first = emulator.analyst_updates()
    emulator.reset()
    emulator.put_incidents(
        *(
            {
                "displayName": f"paged {minute}",
                "lastUpdateDateTime": f"2026-06-01T{minute // 60:02d}:{minute % 60:02d}:00.0000000Z",
            }
            for minute in range(120)
        )
    )
    emulator.set_clock(CLOCK)
    emulator.inject_fault(
        path="/v1.0/security/incidents", kind="mutate", n=1, probability=0.5, count=1000, seed=7
    )
    for _ in range(20):
        call(emulator, "GET", "/v1.0/security/incidents?$top=1", bearer=bearer)
    assert [update["id"] for update in emulator.analyst_updates()] == [update["id"] for update in first]
    assert 0 < len(first) < 20


def test_a_mutation_leaves_the_other_faults_their_turn(emulator: DefenderEmulator) -> None:
    bearer = token(emulator, GRAPH)
    emulator.inject_fault(path="/v1.0/security/incidents", kind="mutate", count=1)
    emulator.inject_fault(path="/v1.0/security/incidents", status=503, count=1)
    reply = call(emulator, "GET", f"/v1.0/security/incidents?$filter={WINDOW}", bearer=bearer)
    assert reply.status_code == 503
    assert len(emulator.analyst_updates()) == 1
    # A single incident is not a listing: the fault does not touch it, nor use up its count.
    emulator.inject_fault(path="/v1.0/security/incidents*", kind="mutate", count=1)
    call(emulator, "GET", "/v1.0/security/incidents/1001", bearer=bearer)
    assert len(emulator.analyst_updates()) == 1
    assert emulator.clear_faults() == 1


@pytest.mark.parametrize(
    ("spec", "named"),
    [
        ({"n": 0}, "'n'"),
        ({"probability": 0}, "'probability'"),
        ({"probability": 1.5}, "'probability'"),
        ({"seed": "x"}, "'seed'"),
    ],
)
def test_a_bad_mutate_spec_is_refused_naming_the_field(
    analyst_emulator: DefenderEmulator, spec: dict[str, object], named: str
) -> None:
    reply = analyst_emulator.session.post(
        f"{analyst_emulator.url}/_emulator/faults",
        json={"path": "/v1.0/security/incidents", "kind": "mutate", **spec},
        timeout=30,
    )
    assert reply.status_code == 400
    assert named in reply.json()["error"]["message"]
