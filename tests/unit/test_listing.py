"""The listing planner against an in-memory service where analysts update incidents mid-listing.

The fake service answers one piece with one page (its items in the chosen order, ``$top`` of
them, and whether there is more), stamps every update with a clock that is past the window, and
lets the test update any incidents between two page fetches. The property: whatever the
interleaving, every incident whose last update is in the window when the listing ends is
returned, and no ``(id, lastUpdateDateTime)`` twice. The same check run over offset paging fails,
which shows it can.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from airflow_provider_mtp.api.listing import AXES, ListingPlan, Page, Piece, awalk, walk
from airflow_provider_mtp.common.ticks import TICKS_PER_SECOND, format_ticks, timestamp_ticks
from airflow_provider_mtp.errors import MTPServiceError

Order = Literal["created", "updated", "shuffled", "id"]
HOUR = 3600 * TICKS_PER_SECOND
START = 1_780_000_000 * TICKS_PER_SECOND  # 2026-05-28, a whole second
END = START + HOUR


@dataclass
class FakeService:
    """Incidents in the Graph shape; a page per piece; updates stamped "now" (after the window).

    :param order: how a page is ordered: newest created first (both APIs' default), newest
        updated first, shuffled, or by id.
    :param legacy: say "more" the legacy way (a full page) rather than Graph's (more remain).
    """

    order: Order = "created"
    legacy: bool = False
    seed: int = 0
    incidents: dict[str, dict[str, Any]] = field(default_factory=dict)
    now: int = END + 60 * TICKS_PER_SECOND
    requests: list[Piece] = field(default_factory=list)
    ignores_ranges: bool = False
    touched: set[str] = field(default_factory=set)

    def add(self, *, created: int, updated: int) -> str:
        incident_id = str(len(self.incidents) + 1)
        self.incidents[incident_id] = {
            "id": incident_id,
            "createdDateTime": format_ticks(created),
            "lastUpdateDateTime": format_ticks(updated),
        }
        return incident_id

    def update(self, incident_id: str) -> None:
        """An analyst changes the incident: its last update moves to now."""
        self.now += 1_000
        self.touched.add(incident_id)
        self.incidents[incident_id]["lastUpdateDateTime"] = format_ticks(self.now)

    def matching(self, piece: Piece) -> list[dict[str, Any]]:
        found = [
            dict(item)
            for item in self.incidents.values()
            if self.ignores_ranges or all(piece.holds(axis, timestamp_ticks(item[axis])) for axis in AXES)
        ]
        if self.order == "created":
            found.sort(key=lambda item: int(item["id"]), reverse=True)
            found.sort(key=lambda item: item["createdDateTime"], reverse=True)
        elif self.order == "updated":
            found.sort(key=lambda item: int(item["id"]), reverse=True)
            found.sort(key=lambda item: item["lastUpdateDateTime"], reverse=True)
        elif self.order == "shuffled":
            found.sort(key=lambda item: int(item["id"]))
            random.Random(self.seed + len(self.requests)).shuffle(found)
        else:
            found.sort(key=lambda item: int(item["id"]))
        return found

    def page(self, piece: Piece, top: int, skip: int = 0) -> Page:
        self.requests.append(piece)
        found = self.matching(piece)
        items = found[skip : skip + top]
        more = len(items) == top if self.legacy else skip + len(items) < len(found)
        return Page(items=items, more=more)

    def in_window(self, window: Piece) -> set[tuple[str, str]]:
        return {(item["id"], item["lastUpdateDateTime"]) for item in self.matching(window)}


def planner_listing(
    service: FakeService, window: Piece, top: int, between: Callable[[], None] = lambda: None
) -> list[dict[str, Any]]:
    """The listing under test; ``between`` runs before every fetch but the first."""
    plan = ListingPlan(window=window, page_size=top)
    first = [True]

    def fetch(piece: Piece) -> Page:
        if not first[0]:
            between()
        first[0] = False
        return service.page(piece, top)

    return list(walk(plan, fetch))


def offset_listing(
    service: FakeService, window: Piece, top: int, between: Callable[[], None] = lambda: None
) -> list[dict[str, Any]]:
    """The old way: the same query with a growing ``$skip`` until the service says no more."""
    listed: list[dict[str, Any]] = []
    skip = 0
    while True:
        if skip:
            between()
        page = service.page(window, top, skip)
        listed += page.items
        if not page.more:
            return listed
        skip += len(page.items)


def check_complete(service: FakeService, window: Piece, listed: list[dict[str, Any]]) -> None:
    keys = [(item["id"], item["lastUpdateDateTime"]) for item in listed]
    assert len(keys) == len(set(keys)), "an (id, lastUpdateDateTime) was returned twice"
    missed = service.in_window(window) - set(keys)
    assert not missed, f"in the window at the end but never returned: {sorted(missed)}"


def window_of(start: int | None = START, end: int | None = END) -> Piece:
    return Piece(updated_from=start, updated_before=end)


def spread(service: FakeService, count: int, *, seed: int = 1, created_span: int = 2 * 86400) -> None:
    """``count`` incidents updated within the window, created up to ``created_span`` seconds before."""
    rng = random.Random(seed)
    for _ in range(count):
        updated = START + rng.randrange(HOUR)
        service.add(created=updated - rng.randrange(created_span * TICKS_PER_SECOND), updated=updated)


# --------------------------------------------------------------------------------------------------
# The property: any interleaving of analyst updates, no miss, no duplicate
# --------------------------------------------------------------------------------------------------

incident_times = st.tuples(
    st.integers(min_value=START - 3 * HOUR, max_value=END + HOUR),  # created
    st.integers(min_value=START - HOUR, max_value=END + HOUR // 2),  # last update
).map(lambda times: (min(times), times[1]))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    times=st.lists(
        st.one_of(
            incident_times,
            # Bursts: many incidents on one tick of each axis.
            st.sampled_from([(START - HOUR, START + 5), (START + 5, START + 5), (START, END - 1)]),
        ),
        max_size=120,
    ),
    order=st.sampled_from(["created", "updated", "shuffled", "id"]),
    legacy=st.booleans(),
    top=st.integers(min_value=3, max_value=12),
    bounds=st.sampled_from([(START, END), (None, END), (START, None), (None, None)]),
    data=st.data(),
)
def test_no_interleaving_of_updates_makes_the_listing_miss_or_repeat(
    times: list[tuple[int, int]],
    order: Order,
    legacy: bool,
    top: int,
    bounds: tuple[int | None, int | None],
    data: st.DataObject,
) -> None:
    service = FakeService(order=order, legacy=legacy, seed=data.draw(st.integers(0, 99)))
    for created, updated in times:
        service.add(created=created, updated=updated)
    window = window_of(*bounds)

    def analysts() -> None:
        if service.incidents:
            ids = sorted(service.incidents, key=int)
            for incident_id in data.draw(st.lists(st.sampled_from(ids), max_size=3)):
                service.update(incident_id)

    failure: MTPServiceError | None = None
    try:
        listed = planner_listing(service, window, top, analysts)
    except MTPServiceError as exc:
        failure = exc
    if failure is not None:
        # Only more than a page of incidents sharing both ticks may stop the listing, loudly.
        assert "share lastUpdateDateTime" in str(failure)
        clumps: dict[tuple[str, str], int] = {}
        for item in service.matching(window):
            key = (item["lastUpdateDateTime"], item["createdDateTime"])
            clumps[key] = clumps.get(key, 0) + 1
        assert max(clumps.values()) >= top
        return
    if bounds[1] is None:
        # A window reaching into the present: updates land in it again; nothing untouched is missed.
        untouched = {key for key in service.in_window(window) if key[0] not in service.touched}
        keys = [(item["id"], item["lastUpdateDateTime"]) for item in listed]
        assert untouched <= set(keys)
        assert len(keys) == len(set(keys))
        return
    check_complete(service, window, listed)


def test_offset_paging_misses_an_untouched_incident_when_one_on_page_one_is_updated() -> None:
    service = FakeService()
    spread(service, 30)
    first_page = service.matching(window_of())[:10]

    def analyst() -> None:
        if first_page:
            service.update(first_page.pop(0)["id"])

    listed = offset_listing(service, window_of(), 10, analyst)
    with pytest.raises(AssertionError, match="never returned"):
        check_complete(service, window_of(), listed)


def test_the_planner_returns_everything_in_the_same_situation() -> None:
    service = FakeService()
    spread(service, 30)
    first_page = service.matching(window_of())[:10]

    def analyst() -> None:
        if first_page:
            service.update(first_page.pop(0)["id"])

    check_complete(service, window_of(), planner_listing(service, window_of(), 10, analyst))


@settings(max_examples=60, deadline=None)
@given(updates=st.lists(st.integers(min_value=0, max_value=59), min_size=1, max_size=4), data=st.data())
def test_the_property_catches_offset_paging(updates: list[int], data: st.DataObject) -> None:
    """The property above, over offset paging: an update on an early page makes it fail."""
    service = FakeService(order=data.draw(st.sampled_from(["created", "updated", "id"])))
    spread(service, 60)
    shown = [item["id"] for item in service.matching(window_of())]
    targets = [shown[index] for index in updates if index < 10]  # on the first page
    pending = list(targets)

    def analysts() -> None:
        while pending:
            service.update(pending.pop())

    listed = offset_listing(service, window_of(), 10, analysts)
    if targets:
        with pytest.raises(AssertionError):
            check_complete(service, window_of(), listed)


# --------------------------------------------------------------------------------------------------
# Splitting and its guards
# --------------------------------------------------------------------------------------------------


def test_a_window_that_fits_one_page_costs_one_call() -> None:
    service = FakeService()
    spread(service, 40)
    assert len(planner_listing(service, window_of(), 50)) == 40
    assert len(service.requests) == 1


def test_an_empty_window_costs_no_call() -> None:
    service = FakeService()
    spread(service, 5)
    assert planner_listing(service, window_of(END, END), 50) == []
    assert service.requests == []


@pytest.mark.parametrize(("legacy", "top"), [(False, 50), (True, 100)])
def test_five_hundred_incidents_cost_less_than_twice_the_calls_of_offset_paging(
    legacy: bool, top: int
) -> None:
    service, reference = FakeService(legacy=legacy), FakeService(legacy=legacy)
    spread(service, 500)
    spread(reference, 500)
    listed = planner_listing(service, window_of(), top)
    check_complete(service, window_of(), listed)
    assert len(listed) == 500
    assert len(offset_listing(reference, window_of(), top)) == 500
    assert len(service.requests) < 2 * len(reference.requests), (
        len(service.requests),
        len(reference.requests),
    )


@pytest.mark.parametrize("order", ["created", "updated", "shuffled", "id"])
def test_any_page_order_reads_every_incident(order: Order) -> None:
    service = FakeService(order=order)
    spread(service, 300, seed=7)
    listed = planner_listing(service, window_of(), 20)
    check_complete(service, window_of(), listed)
    assert len(listed) == 300


def test_one_busy_tick_is_split_by_creation_time() -> None:
    service = FakeService(order="id")
    for offset in range(35):
        service.add(created=START - offset * TICKS_PER_SECOND, updated=START + 7)
    listed = planner_listing(service, window_of(), 10)
    check_complete(service, window_of(), listed)
    assert len(listed) == 35
    assert any(piece.created_before is not None for piece in service.requests)


def test_more_than_a_page_on_one_pair_of_ticks_fails_loudly() -> None:
    service = FakeService()
    for _ in range(11):
        service.add(created=START, updated=START + 7)
    with pytest.raises(MTPServiceError, match="More than 10 incidents share lastUpdateDateTime") as failure:
        planner_listing(service, window_of(), 10)
    assert "Stopped rather than return part of them" in str(failure.value)


def test_a_service_that_ignores_the_range_fails_loudly() -> None:
    service = FakeService(ignores_ranges=True)
    spread(service, 20)
    for _ in range(20):
        service.add(created=START - 10 * HOUR, updated=START - 5 * HOUR)
    with pytest.raises(MTPServiceError, match="seems to ignore"):
        planner_listing(service, window_of(), 10)


def test_the_call_guard_stops_a_listing_that_does_not_finish() -> None:
    service = FakeService()
    spread(service, 300)
    plan = ListingPlan(window=window_of(), page_size=10, max_calls=5)
    with pytest.raises(MTPServiceError, match="made 5 requests without reading the whole window"):
        list(walk(plan, lambda piece: service.page(piece, 10)))
    assert len(service.requests) == 5


def test_pieces_are_sent_as_seven_digit_literals() -> None:
    piece = Piece(updated_from=START + 1, updated_before=END, created_before=START)
    assert piece.list_arguments() == {
        "updated_from": "2026-05-28T20:26:40.0000001Z",
        "updated_before": "2026-05-28T21:26:40.0000000Z",
        "created_from": None,
        "created_before": "2026-05-28T20:26:40.0000000Z",
    }


def test_the_async_driver_asks_the_same_pieces() -> None:
    sync_service, async_service = FakeService(), FakeService()
    spread(sync_service, 200)
    spread(async_service, 200)
    listed = planner_listing(sync_service, window_of(), 20)

    async def run() -> list[dict[str, Any]]:
        async def fetch(piece: Piece) -> Page:
            return async_service.page(piece, 20)

        return [item async for item in awalk(ListingPlan(window=window_of(), page_size=20), fetch)]

    assert asyncio.run(run()) == listed
    assert async_service.requests == sync_service.requests


def test_a_caller_that_stops_early_pays_one_call_per_page() -> None:
    service = FakeService()
    spread(service, 200)
    plan = ListingPlan(window=window_of(), page_size=10)
    listing: Iterator[dict[str, Any]] = walk(plan, lambda piece: service.page(piece, 10))
    assert len([next(listing) for _ in range(10)]) == 10
    assert len(service.requests) == 1
