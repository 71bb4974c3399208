"""Coalesced polling gives every window trigger the event independent polling gives it (issue 13).

Several hundred deferred ``IncidentTrigger`` / ``AlertTrigger`` waits, with mixed windows (hours of
two days and a day far from them, overlapping, touching and apart, some shifted by a lag) and mixed
filters (shared and differing enum filters, after-fetch filters, an assignee, minimum and maximum
counts, ``on_empty``, with and without summaries), run in one event loop as the triggerer runs
them: once with coalescing switched off (one listing per trigger) and once on. Each trigger's event
must be the same, and the emulator's request counters show what one round costs: at most the
requests of listing the union of the windows once, per connection, against at least one per
trigger when polling independently. Both back ends.
"""

from __future__ import annotations

import asyncio
import random
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from airflow_provider_mtp.api.alert_query import AlertQuery
from airflow_provider_mtp.api.incident_query import IncidentQuery
from airflow_provider_mtp.auth import clear_token_cache
from airflow_provider_mtp.emulator import DefenderEmulator
from airflow_provider_mtp.hooks import shared_clients
from airflow_provider_mtp.hooks.mtp_async import MTPAsyncHook
from airflow_provider_mtp.triggers import poller
from airflow_provider_mtp.triggers.alerts import AlertTrigger
from airflow_provider_mtp.triggers.incidents import IncidentTrigger
from airflow_provider_mtp.triggers.listing import WindowTrigger
from airflow_provider_mtp.windows import format_instant
from tests.conftest import TEST_NOW

#: How many triggers per run.
TRIGGERS = 300
#: Two neighbouring days with data, and one far from them (a few records).
DAYS = (datetime(2026, 6, 1, tzinfo=UTC), datetime(2026, 6, 2, tzinfo=UTC), datetime(2026, 7, 15, tzinfo=UTC))
SEVERITIES = ("informational", "low", "medium", "high")
INCIDENT_STATUSES = ("active", "inProgress", "resolved")
ALERT_STATUSES = ("new", "inProgress", "resolved")
CLASSIFICATIONS = ("truePositive", "falsePositive", "informationalExpectedActivity")
SOURCES = ("microsoftDefenderForEndpoint", "microsoftDefenderForOffice365", "microsoftDefenderForIdentity")
DETECTORS = ("antivirus", "microsoftDefenderForEndpoint", "customDetection")
ASSIGNEE = "analyst@contoso.example"


@pytest.fixture(scope="module")
def tenant() -> Iterator[DefenderEmulator]:
    """A small tenant without quotas (300 independent legacy listings would be throttled) and
    records in June and July 2026, long before the seeded ones."""
    with DefenderEmulator(
        seed=13, now=TEST_NOW, quotas=False, incidents=5, days=1, events_per_day=5
    ) as emulator:
        rng = random.Random(13)
        emulator.put_incidents(*(_incident(rng) for _ in range(160)))
        emulator.put_alerts(*(_alert(rng) for _ in range(160)))
        yield emulator


@pytest.fixture
def emulator(tenant: DefenderEmulator, monkeypatch: pytest.MonkeyPatch) -> DefenderEmulator:
    clear_token_cache()
    monkeypatch.setenv("AIRFLOW_CONN_MTP_DEFAULT", tenant.airflow_conn)
    return tenant


def _stamp(rng: random.Random) -> str:
    day = DAYS[rng.choice((0, 0, 1, 1, 2))]
    return format_instant(day + timedelta(seconds=rng.randrange(24 * 3600)))


def _incident(rng: random.Random) -> dict[str, Any]:
    return {
        "displayName": f"incident {rng.randrange(10**6)}",
        "severity": rng.choice(SEVERITIES),
        "status": rng.choice(INCIDENT_STATUSES),
        "classification": rng.choice((None, *CLASSIFICATIONS)),
        "customTags": rng.choice(([], ["watch"], ["Watch", "vip"], ["other"])),
        "assignedTo": rng.choice((None, None, ASSIGNEE)),
        "lastUpdateDateTime": _stamp(rng),
    }


def _alert(rng: random.Random) -> dict[str, Any]:
    return {
        "title": f"alert {rng.randrange(10**6)}",
        "severity": rng.choice(SEVERITIES),
        "status": rng.choice(ALERT_STATUSES),
        "serviceSource": rng.choice(SOURCES),
        "detectionSource": rng.choice(DETECTORS),
        "lastUpdateDateTime": _stamp(rng),
    }


def _some(rng: random.Random, values: tuple[str, ...]) -> list[str] | None:
    """No filter half the time (so some filters are shared by many triggers), else 1-2 values."""
    return None if rng.random() < 0.5 else rng.sample(values, rng.choice((1, 2)))


def _window(rng: random.Random) -> dict[str, Any]:
    day = DAYS[rng.choice((0, 0, 1, 1, 2))]
    start = day + timedelta(hours=rng.randrange(23))
    end = start + timedelta(hours=rng.choice((1, 1, 2, 6)))
    return {
        "window_start": start.isoformat(),
        "window_end": end.isoformat(),
        "lag_seconds": rng.choice((0, 0, 300, 3600)),
        "poke_interval": rng.choice((0.1, 0.2)),
        "on_empty": rng.choice(("skip", "fail", "succeed")),
    }


def _counts(rng: random.Random, plural: str) -> dict[str, Any]:
    return {
        f"min_{plural}": rng.choice((1, 1, 3, 50)),
        f"max_{plural}": rng.choice((200, 200, None, 4)),
        f"include_{plural}": rng.random() < 0.8,
    }


def incident_triggers(api: str) -> list[WindowTrigger]:
    rng = random.Random(f"incidents-{api}")
    made: list[WindowTrigger] = []
    for _ in range(TRIGGERS):
        query = IncidentQuery.build(
            severity=_some(rng, SEVERITIES),
            status=_some(rng, INCIDENT_STATUSES),
            classification=_some(rng, CLASSIFICATIONS) if rng.random() < 0.3 else None,
            tags=["watch"] if rng.random() < 0.2 else None,
            assigned_to=ASSIGNEE if rng.random() < 0.1 else None,
        )
        made.append(IncidentTrigger(api=api, query=query, **_window(rng), **_counts(rng, "incidents")))
    return made


def alert_triggers(api: str) -> list[WindowTrigger]:
    rng = random.Random(f"alerts-{api}")
    made: list[WindowTrigger] = []
    for _ in range(TRIGGERS):
        query = AlertQuery.build(
            severity=_some(rng, SEVERITIES),
            status=_some(rng, ALERT_STATUSES),
            service_source=_some(rng, SOURCES) if rng.random() < 0.5 else None,
            detection_source=_some(rng, DETECTORS) if rng.random() < 0.3 else None,
        )
        made.append(AlertTrigger(api=api, query=query, **_window(rng), **_counts(rng, "alerts")))
    return made


def listing_requests(emulator: DefenderEmulator) -> int:
    """Every listing request the two APIs answered so far (not Entra ID's)."""
    stats = emulator.stats()["requests"]
    api_routes = ("GET /v1.0/security/", "GET /api/")
    return sum(sum(statuses.values()) for route, statuses in stats.items() if route.startswith(api_routes))


def events(triggers: list[WindowTrigger], *, coalesced: bool, monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Each trigger's first event, all run together in one fresh event loop."""
    monkeypatch.setattr(poller, "COALESCING", coalesced)

    async def scenario() -> list[Any]:
        fired = await asyncio.gather(*(anext(trigger.run()) for trigger in triggers))
        assert shared_clients.open_clients() == 0, "the last trigger closed the shared session"
        return [event.payload for event in fired]

    return asyncio.run(scenario())


def union_requests(emulator: DefenderEmulator, triggers: list[WindowTrigger], api: str) -> int:
    """What listing the union of the triggers' windows once costs: each maximal range of it
    listed with no filter, through one hook."""
    spans = sorted((trigger.shifted_window.start, trigger.shifted_window.end) for trigger in triggers)
    ranges: list[list[datetime]] = []
    for start, end in spans:
        if ranges and start <= ranges[-1][1]:
            ranges[-1][1] = max(ranges[-1][1], end)
        else:
            ranges.append([start, end])
    kind = triggers[0].resource.plural

    async def list_all() -> None:
        async with MTPAsyncHook(api=api) as hook:
            for start, end in ranges:
                async for _ in getattr(hook, f"list_{kind}")(updated_from=start, updated_before=end):
                    pass

    before = listing_requests(emulator)
    asyncio.run(list_all())
    return listing_requests(emulator) - before


@pytest.mark.slow
@pytest.mark.parametrize("make", [incident_triggers, alert_triggers], ids=["incidents", "alerts"])
@pytest.mark.parametrize("api", ["graph", "legacy"])
def test_coalesced_polling_fires_the_same_events_as_independent_polling(
    emulator: DefenderEmulator, monkeypatch: pytest.MonkeyPatch, api: str, make: Any
) -> None:
    triggers = make(api)
    before = listing_requests(emulator)
    alone = events(triggers, coalesced=False, monkeypatch=monkeypatch)
    independent = listing_requests(emulator) - before

    before = listing_requests(emulator)
    together = events(make(api), coalesced=True, monkeypatch=monkeypatch)
    coalesced = listing_requests(emulator) - before
    union = union_requests(emulator, triggers, api)

    # The figures Must show 3 asks for, in the test's output (-s).
    print(
        f"\n{api} {triggers[0].resource.plural}: {len(triggers)} triggers, one round each way; listing "
        f"requests: independent {independent}, coalesced {coalesced}, the union window listed once {union}"
    )
    # The events are mixed (else the comparison proves little) and equal trigger by trigger.
    assert {payload["status"] for payload in alone} >= {"success", "empty", "error"}
    assert len({payload.get("count") for payload in alone}) > 5
    for index, (mine, theirs) in enumerate(zip(together, alone, strict=True)):
        assert mine == theirs, f"trigger {index}: {triggers[index].serialize()[1]}"
    # All windows are closed: each trigger's first poll is final, so each way ran one round.
    assert independent >= len(triggers)
    assert coalesced <= union, "a round costs at most the pages of the union window"
    assert coalesced < len(triggers) / 10


def test_one_session_per_connection_for_many_triggers(
    emulator: DefenderEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Fifty waits still open hold one shared session; cancelling them closes it, warning-free."""
    monkeypatch.setattr(poller, "COALESCING", True)
    now = datetime.now(UTC)
    triggers = [
        IncidentTrigger(
            window_start=(now - timedelta(hours=1)).isoformat(),
            window_end=(now + timedelta(hours=1)).isoformat(),
            lag_seconds=0,
            poke_interval=60,
            min_incidents=10**6,
        )
        for _ in range(50)
    ]
    before = listing_requests(emulator)

    async def scenario() -> tuple[int, int]:
        tasks = [asyncio.create_task(anext(trigger.run())) for trigger in triggers]
        for _ in range(400):
            if listing_requests(emulator) > before:
                break
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.2)
        open_while_waiting = shared_clients.open_clients()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        return open_while_waiting, shared_clients.open_clients()

    with _no_unclosed_warning():
        waiting, after = asyncio.run(scenario())
    assert (waiting, after) == (1, 0)
    listed = listing_requests(emulator) - before
    assert listed == union_requests(emulator, triggers[:1], "graph"), "the 50 waits listed together, once"


class _no_unclosed_warning:
    """Fails if aiohttp reports an unclosed session or connector while inside."""

    def __enter__(self) -> None:
        import warnings

        self._catch = warnings.catch_warnings(record=True)
        self._seen = self._catch.__enter__()
        warnings.simplefilter("always", ResourceWarning)

    def __exit__(self, *exc: object) -> None:
        import gc

        gc.collect()
        self._catch.__exit__(None, None, None)
        unclosed = [str(w.message) for w in self._seen if "Unclosed" in str(w.message)]
        assert not unclosed, unclosed


@pytest.mark.parametrize("status", [403, 429])
def test_a_listing_error_reaches_every_trigger_of_the_round_as_when_alone(
    emulator: DefenderEmulator, monkeypatch: pytest.MonkeyPatch, status: int
) -> None:
    """A refusal (403) and throttling longer than the hook waits (429, Retry-After 3600 s) end
    every trigger the round served with the error event each gets when polling alone."""
    triggers = incident_triggers("graph")[:40]
    fault = {"path": "/v1.0/security/incidents", "method": "GET", "status": status, "count": 10**6}
    if status == 429:
        fault["retry_after"] = 3600
    emulator.inject_fault(**fault)
    try:
        alone = events(triggers, coalesced=False, monkeypatch=monkeypatch)
        together = events(incident_triggers("graph")[:40], coalesced=True, monkeypatch=monkeypatch)
    finally:
        emulator.clear_faults()
    assert {payload["status"] for payload in alone} == {"error"}
    # The same event but for the request id the service gave the one listing they shared.
    assert [_without_request_id(p) for p in together] == [_without_request_id(p) for p in alone]
    assert len({payload["message"] for payload in together}) == 1


def _without_request_id(payload: dict[str, Any]) -> dict[str, Any]:
    return {**payload, "message": re.sub(r" \(request id [^)]*\)", "", payload["message"])}


def test_a_trigger_joining_or_leaving_mid_round_changes_nothing_for_the_others(
    emulator: DefenderEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While a round's listing is held for 1 s, a trigger of another window starts (served by
    the next round, which lists its window) and one of the round's triggers is cancelled (the
    others still get their events). Every event equals the independent run's."""

    def made() -> tuple[list[WindowTrigger], WindowTrigger]:
        first = [
            IncidentTrigger(
                api="graph",
                window_start="2026-06-01T00:00:00+00:00",
                window_end="2026-06-01T01:00:00+00:00",
                lag_seconds=0,
                poke_interval=0.1,
                severity=[SEVERITIES[index % 4]],
            )
            for index in range(20)
        ]
        late = IncidentTrigger(
            api="graph",
            window_start="2026-06-02T05:00:00+00:00",
            window_end="2026-06-02T06:00:00+00:00",
            lag_seconds=0,
            poke_interval=10,
        )
        return first, late

    async def scenario(coalesced: bool) -> tuple[list[Any], list[int]]:
        monkeypatch.setattr(poller, "COALESCING", coalesced)
        # Every listing of the first 20 is held 1 s: the cancelled trigger is cancelled mid-listing.
        emulator.inject_fault(path="/v1.0/security/incidents", method="GET", delay_s=1.0, count=20)
        first, late = made()
        tasks = [asyncio.create_task(anext(trigger.run())) for trigger in first]
        rounds: Any = []
        if coalesced:
            shared = poller.poller_for("mtp_default", "graph", IncidentTrigger.resource)
            rounds = shared.rounds
            for _ in range(400):  # until the 20 asked and their round is listing
                if shared.newcomers == 0 and not shared.pending and shared.members == 20:
                    break
                await asyncio.sleep(0.01)
            else:
                raise AssertionError("the first round never started")
        else:
            await asyncio.sleep(0.3)
        tasks.append(asyncio.create_task(anext(late.run())))
        tasks[0].cancel()
        done = await asyncio.gather(*tasks, return_exceptions=True)
        emulator.clear_faults()
        assert isinstance(done[0], asyncio.CancelledError)
        return [event.payload for event in done[1:]], rounds

    alone, _ = asyncio.run(scenario(False))
    before = listing_requests(emulator)
    together, rounds = asyncio.run(scenario(True))
    listed = listing_requests(emulator) - before

    assert {payload["status"] for payload in together} >= {"success"}
    assert together == alone
    assert list(rounds) == [1, 1], "the late trigger's window was listed by a round of its own"
    first, late = made()
    assert listed == union_requests(emulator, first, "graph") + union_requests(emulator, [late], "graph")
