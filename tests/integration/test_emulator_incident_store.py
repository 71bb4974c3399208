"""The emulator's incident store: pages equal, byte for byte, what the store answered before it kept
an index (every matching incident deep-copied, then sorted, then sliced), through any sequence of
updates, comments, admin puts and resets; a page copies only its own incidents; and a page handed
out never changes when the incident is updated afterwards."""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from airflow_provider_mtp.common.ticks import format_ticks, odata_ticks
from airflow_provider_mtp.emulator import odata
from airflow_provider_mtp.emulator.config import Clock
from airflow_provider_mtp.emulator.incidents import IncidentStore, format_time

START = datetime(2026, 6, 1, tzinfo=UTC)
BASE_TICKS = odata_ticks("2026-05-01T00:00:00Z")
FIELDS: dict[str, odata.FieldKind] = {
    "createdDateTime": "datetime",
    "lastUpdateDateTime": "datetime",
    "status": "enum",
    "assignedTo": "string",
}
TENANT = "00000000-0000-0000-0000-000000000001"
PORTAL = "https://security.microsoft.com"


def stamp(step: int) -> str:
    """Few distinct times (ties are the hard part), some with all 7 fractional digits."""
    return format_ticks(BASE_TICKS + step * 10_000_000 + (step % 3) * 7)


def seeded(count: int) -> list[dict[str, Any]]:
    return [
        {
            "id": str(1000 + number),
            "displayName": f"Incident {number}",
            "createdDateTime": stamp(number % 5),
            "lastUpdateDateTime": stamp(number % 7),
            "status": ("active", "resolved", "inProgress")[number % 3],
            "assignedTo": None if number % 4 else "ana@contoso.com",
            "customTags": ["t"],
            "comments": [],
            "alerts": [
                {"id": f"da{number}", "status": "new", "lastUpdateDateTime": stamp(0), "evidence": [{}]}
            ],
        }
        for number in range(count)
    ]


class ReferenceStore:
    """The store as it was before the index: the oracle the pages are compared with."""

    def __init__(self, incidents: list[dict[str, Any]], clock: Clock) -> None:
        self.seed = copy.deepcopy(incidents)
        self.clock = clock
        self.by_id: dict[str, dict[str, Any]] = {}
        self.reset()

    def reset(self) -> None:
        self.by_id = {incident["id"]: copy.deepcopy(incident) for incident in self.seed}

    def select(
        self, predicate: Callable[[dict[str, Any]], bool] | None, orderby: list[tuple[str, bool]] | None
    ) -> list[dict[str, Any]]:
        chosen = [copy.deepcopy(row) for row in self.by_id.values() if predicate is None or predicate(row)]
        keys = orderby or [("createdDateTime", True)]
        chosen.sort(key=lambda row: int(row["id"]), reverse=keys[0][1])
        for field, descending in reversed(keys):
            chosen.sort(key=lambda row: odata_ticks(row[field]) if row.get(field) else -1, reverse=descending)
        return chosen

    def update(self, incident_id: str, changes: dict[str, Any], *, author: str, comment: str | None) -> None:
        incident = self.by_id[incident_id]
        now = format_time(self.clock.now())
        incident.update(changes)
        if comment:
            incident.setdefault("comments", []).append(
                {"comment": comment, "createdByDisplayName": author, "createdDateTime": now}
            )
        incident["lastUpdateDateTime"] = now
        incident["lastModifiedBy"] = author
        for alert in incident.get("alerts") or ():
            if changes.get("status") == "resolved":
                # An alert that becomes resolved says when (alerts_v2's resolvedDateTime).
                if alert.get("status") != "resolved" or not alert.get("resolvedDateTime"):
                    alert["resolvedDateTime"] = now
                alert["status"] = "resolved"
            alert["lastUpdateDateTime"] = now

    def put(self, fields: dict[str, Any], store: IncidentStore) -> None:
        # New incidents' defaults come from the store under test's own answer (same clock, same id).
        incident_id = str(fields["id"]) if fields.get("id") is not None else None
        incident = self.by_id.get(incident_id) if incident_id else None
        if incident is None:
            made = store.put(fields, tenant_id=TENANT, portal=PORTAL)
            self.by_id[made["id"]] = made
            return
        store.put(fields, tenant_id=TENANT, portal=PORTAL)
        incident.update(copy.deepcopy({key: value for key, value in fields.items() if key != "id"}))
        if "lastUpdateDateTime" not in fields:
            incident["lastUpdateDateTime"] = format_time(self.clock.now())
        # An incident is never updated before its alerts: a put moving it back takes them along.
        limit = odata_ticks(incident["lastUpdateDateTime"])
        for alert in incident.get("alerts") or ():
            if odata_ticks(alert["lastUpdateDateTime"]) > limit:
                alert["lastUpdateDateTime"] = incident["lastUpdateDateTime"]


FILTERS = [
    None,
    "status eq 'resolved'",
    f"lastUpdateDateTime ge {stamp(3)}",
    f"createdDateTime lt {stamp(2)} or status ne 'active'",
    "assignedTo eq null",
]
ORDERS: list[list[tuple[str, bool]] | None] = [
    None,
    [("lastUpdateDateTime", False)],
    [("lastUpdateDateTime", True)],
    [("createdDateTime", False)],
    [("lastUpdateDateTime", False), ("createdDateTime", True)],
    [("createdDateTime", True), ("createdDateTime", False), ("lastUpdateDateTime", False)],
]

page_ops = st.tuples(
    st.just("page"),
    st.sampled_from(range(len(FILTERS))),
    st.sampled_from(range(len(ORDERS))),
    st.integers(0, 45),
    st.integers(0, 12),
    st.booleans(),
    st.booleans(),
)
update_ops = st.tuples(
    st.just("update"),
    st.integers(0, 60),
    st.sampled_from([None, "resolved", "inProgress"]),
    st.sampled_from([None, "a comment"]),
    st.integers(0, 3),
)
put_ops = st.tuples(
    st.just("put"),
    st.one_of(st.none(), st.integers(0, 60)),
    st.one_of(st.none(), st.integers(0, 8)),
    st.one_of(st.none(), st.integers(0, 8)),
)
operations = st.lists(st.one_of(page_ops, update_ops, put_ops, st.just(("reset",))), max_size=40)


def compare_page(store: IncidentStore, reference: ReferenceStore, op: tuple[Any, ...]) -> None:
    _, filter_index, order_index, skip, top, alerts, count = op
    text = FILTERS[filter_index]
    predicate = odata.parse_filter(text, fields=FIELDS) if text else None
    orderby = ORDERS[order_index]
    got = store.page(predicate, orderby, skip=skip, top=top, alerts=alerts, count=count)
    matching = reference.select(predicate, orderby)
    expected = copy.deepcopy(matching[skip : skip + top])
    if not alerts:
        for item in expected:
            item.pop("alerts", None)
    assert json.dumps(got.items) == json.dumps(expected), (text, orderby, skip, top)
    assert got.more == (skip + len(expected) < len(matching))
    # Counted when asked for; without a filter the count costs nothing and is always there.
    assert got.total == (len(matching) if count or predicate is None else None)
    assert json.dumps(store.select(predicate, orderby)) == json.dumps(matching)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(operations)
def test_pages_equal_the_unindexed_store_through_any_changes(ops: list[tuple[Any, ...]]) -> None:
    clock = Clock(START)
    store = IncidentStore(seeded(30), clock=clock)
    reference = ReferenceStore(seeded(30), clock)
    for op in [*ops, ("page", 0, 0, 0, 100, True, True), ("page", 0, 1, 0, 100, True, True)]:
        ids = sorted(reference.by_id)
        if op[0] == "page":
            compare_page(store, reference, op)
        elif op[0] == "update":
            _, which, status, comment, advance = op
            incident_id = ids[which % len(ids)]
            clock.set(clock.now() + timedelta(seconds=advance))
            changes = {} if status is None else {"status": status}
            store.update(incident_id, changes, author="ana", comment=comment)
            reference.update(incident_id, changes, author="ana", comment=comment)
        elif op[0] == "put":
            _, which, created, updated = op
            fields: dict[str, Any] = {}
            if which is not None:
                fields["id"] = ids[which % len(ids)] if which < 40 else str(5000 + which)
            if created is not None:
                fields["createdDateTime"] = stamp(created)
            if updated is not None:
                fields["lastUpdateDateTime"] = stamp(updated)
            reference.put(fields, store)
        else:
            store.reset()
            reference.reset()


class CopyProbe:
    """Counts how often it is deep-copied: one sits in every incident and in every alert."""

    copies = 0

    def __deepcopy__(self, memo: dict[int, Any]) -> CopyProbe:
        CopyProbe.copies += 1
        return self


def probed(count: int) -> list[dict[str, Any]]:
    incidents = seeded(count)
    for incident in incidents:
        incident["probe"] = CopyProbe()
        incident["alerts"][0]["probe"] = CopyProbe()
    return incidents


@pytest.mark.parametrize("alerts", [True, False])
def test_a_page_copies_nothing_and_reads_the_filter_only_until_the_page_is_full(alerts: bool) -> None:
    store = IncidentStore(probed(2000), clock=Clock(START))
    seen = 0

    def predicate(row: Any) -> bool:
        nonlocal seen
        seen += 1
        return True

    CopyProbe.copies = 0
    page = store.page(predicate, None, skip=0, top=1, alerts=alerts, count=False)
    assert CopyProbe.copies == 0, "pages share the stored values (copy on write), they copy none"
    assert seen == 2, "one incident for the page, one to know there are more"
    assert page.more
    assert page.total is None
    assert ("alerts" in page.items[0]) is alerts
    # A single incident is handed out as a private copy; without alerts, those are not copied.
    store.get(page.items[0]["id"], alerts=alerts)
    assert CopyProbe.copies == (2 if alerts else 1)


def test_a_page_handed_out_keeps_its_values_when_the_incident_changes() -> None:
    clock = Clock(START)
    store = IncidentStore(seeded(3), clock=clock)
    (before,) = store.page(None, None, top=1).items
    snapshot = json.dumps(before)
    clock.set(START + timedelta(hours=1))
    store.update(before["id"], {"status": "resolved"}, author="ana", comment="done")
    store.put({"id": before["id"], "customTags": ["x"]}, tenant_id=TENANT, portal=PORTAL)
    assert json.dumps(before) == snapshot
    (after,) = store.page(None, [("lastUpdateDateTime", True)], top=1).items
    assert after["id"] == before["id"]
    assert after["status"] == "resolved"
    assert after["customTags"] == ["x"]
    assert after["comments"][-1]["comment"] == "done"
    assert {alert["status"] for alert in after["alerts"]} == {"resolved"}


def test_transformed_items_are_made_once_per_incident_version() -> None:
    clock = Clock(START)
    store = IncidentStore(seeded(5), clock=clock)
    made: list[str] = []

    def legacy(row: Any) -> dict[str, Any]:
        made.append(row["id"])
        return {"incidentId": int(row["id"]), "status": row["status"]}

    first = store.page(None, None, top=5, transform=legacy).items
    assert store.page(None, None, top=5, transform=legacy).items == first
    assert len(made) == 5
    store.update(str(first[0]["incidentId"]), {"status": "resolved"}, author="ana")
    again = store.page(None, None, top=5, transform=legacy).items
    assert len(made) == 6
    assert again[0]["status"] == "resolved"


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"id": "abc"}, "Incident ids are numbers; got 'abc'."),
        ({"createdDateTime": "yesterday"}, "Invalid datetime 'yesterday'"),
        ({"lastUpdateDateTime": 5}, "lastUpdateDateTime is not a timestamp: 5"),
    ],
)
def test_a_put_the_index_cannot_read_is_refused_whole(fields: dict[str, Any], message: str) -> None:
    store = IncidentStore(seeded(3), clock=Clock(START))
    before = json.dumps(store.select())
    with pytest.raises(ValueError, match=re.escape(message)):
        store.put({"id": "1001", **fields} if "id" not in fields else fields, tenant_id=TENANT, portal=PORTAL)
    assert json.dumps(store.select()) == before
    assert len(store) == 3
