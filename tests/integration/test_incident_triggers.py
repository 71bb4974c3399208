"""IncidentTrigger and IncidentEventTrigger against the emulator (the rules they share are in
``tests/unit/test_incident_rules.py``).

Triggers run in this test's own event loop, as the triggerer runs them: ``anext(trigger.run())``.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from airflow.sdk.serde import deserialize, serialize
from airflow.triggers.base import BaseEventTrigger, TriggerEvent

from airflow_provider_mtp.api.incident_query import IncidentQuery
from airflow_provider_mtp.auth import clear_token_cache
from airflow_provider_mtp.emulator import DefenderEmulator
from airflow_provider_mtp.hooks.mtp_async import MTPAsyncHook
from airflow_provider_mtp.triggers import poller
from airflow_provider_mtp.triggers.incidents import IncidentEventTrigger, IncidentTrigger

#: A closed window in June 2026 (no seeded incident is that old), and one incident in it.
START, END = "2026-06-01T00:00:00.0000000Z", "2026-06-01T01:00:00.0000000Z"


@pytest.fixture
def emulator(defender_emulator: DefenderEmulator, monkeypatch: pytest.MonkeyPatch) -> DefenderEmulator:
    defender_emulator.reset()
    defender_emulator.clear_faults()
    clear_token_cache()
    monkeypatch.setenv("AIRFLOW_CONN_MTP_DEFAULT", defender_emulator.airflow_conn)
    return defender_emulator


@pytest.fixture
def hook_calls(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """Counts MTPAsyncHook listings and closes, in any trigger."""
    calls = {"list": 0, "close": 0}
    listing, closing = MTPAsyncHook.list_incidents, MTPAsyncHook.close

    def counting_list(self: MTPAsyncHook, *args: Any, **kwargs: Any) -> AsyncIterator[dict[str, Any]]:
        calls["list"] += 1
        return listing(self, *args, **kwargs)

    async def counting_close(self: MTPAsyncHook) -> None:
        calls["close"] += 1
        await closing(self)

    monkeypatch.setattr(MTPAsyncHook, "list_incidents", counting_list)
    monkeypatch.setattr(MTPAsyncHook, "close", counting_close)
    return calls


def window_trigger(**kwargs: Any) -> IncidentTrigger:
    return IncidentTrigger(
        window_start=kwargs.pop("window_start", START),
        window_end=kwargs.pop("window_end", END),
        lag_seconds=kwargs.pop("lag_seconds", 0),
        poke_interval=kwargs.pop("poke_interval", 0.1),
        **kwargs,
    )


async def until(condition: Callable[[], bool], what: str) -> None:
    """Yield to the loop until ``condition`` holds (a safety bound, not a timing assertion)."""
    for _ in range(400):
        if condition():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"gave up waiting for {what}")


# IncidentTrigger ----------------------------------------------------------------------------------


def test_serialize_round_trips_as_json_and_through_airflow_serde() -> None:
    trigger = window_trigger(
        status=["active"], severity=["high"], tags=["a"], classification=["truePositive"], max_incidents=None
    )
    classpath, kwargs = trigger.serialize()
    assert classpath == "airflow_provider_mtp.triggers.incidents.IncidentTrigger"
    assert json.loads(json.dumps(kwargs)) == kwargs
    rebuilt = IncidentTrigger(**deserialize(serialize(kwargs)))  # type: ignore[arg-type]
    assert rebuilt.serialize() == (classpath, kwargs)


def test_trigger_fires_one_success_event_and_closes_its_hook(
    emulator: DefenderEmulator, hook_calls: dict[str, int]
) -> None:
    made = emulator.put_incidents(
        {"displayName": "a", "severity": "high", "lastUpdateDateTime": "2026-06-01T00:10:00Z"},
        {"displayName": "b", "severity": "low", "lastUpdateDateTime": "2026-06-01T00:20:00Z"},
        {"displayName": "c", "severity": "high", "lastUpdateDateTime": END},
    )

    async def scenario() -> tuple[TriggerEvent, Any]:
        run = window_trigger(severity=["high"]).run()
        event = await anext(run)
        return event, await anext(run, None)

    event, after = asyncio.run(scenario())
    assert after is None, "run() returns after its one event"
    assert event.payload["status"] == "success"
    assert event.payload["count"] == 1
    assert [s["id"] for s in event.payload["incidents"]] == [made[0]["id"]]
    assert event.payload["window"] == {"start": START, "end": END}
    assert json.loads(json.dumps(event.payload)) == event.payload
    assert hook_calls == {"list": 1, "close": 1}


def test_trigger_reports_service_errors_as_an_error_event(
    emulator: DefenderEmulator, hook_calls: dict[str, int]
) -> None:
    emulator.inject_fault(path="/v1.0/security/incidents", method="GET", status=403)
    event = asyncio.run(anext(window_trigger().run()))
    assert event.payload["status"] == "error"
    assert event.payload["error_type"] == "MTPPermissionError"
    assert "SecurityIncident.Read.All" in event.payload["message"]
    assert hook_calls["close"] == 1


def test_a_trigger_row_of_the_previous_release_asks_the_same_question(
    emulator: DefenderEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A row serialised before the ``query`` kwarg (six filter kwargs) is rebuilt and runs."""
    made = emulator.put_incidents(
        {
            "displayName": "a",
            "severity": "high",
            "customTags": ["watch"],
            "lastUpdateDateTime": "2026-06-01T00:10:00Z",
        },
        {
            "displayName": "b",
            "severity": "low",
            "customTags": ["watch"],
            "lastUpdateDateTime": "2026-06-01T00:20:00Z",
        },
        {"displayName": "c", "severity": "high", "lastUpdateDateTime": "2026-06-01T00:30:00Z"},
    )
    old_row = {
        "window_start": START,
        "window_end": END,
        "lag_seconds": 0,
        "mtp_conn_id": "mtp_default",
        "api": None,
        "status": None,
        "severity": ["high"],
        "assigned_to": None,
        "classification": None,
        "tags": ["Watch"],
        "odata_filter": None,
        "min_incidents": 1,
        "max_incidents": 200,
        "include_incidents": True,
        "poke_interval": 0.1,
        "on_empty": "skip",
    }
    asked: list[tuple[Any, ...]] = []
    listing = MTPAsyncHook.list_incidents

    def recording_list(self: MTPAsyncHook, *args: Any, **kwargs: Any) -> AsyncIterator[dict[str, Any]]:
        asked.append((*args, *kwargs.items()))
        return listing(self, *args, **kwargs)

    monkeypatch.setattr(MTPAsyncHook, "list_incidents", recording_list)
    trigger = IncidentTrigger(**deserialize(serialize(json.loads(json.dumps(old_row)))))  # type: ignore[arg-type]

    event = asyncio.run(anext(trigger.run()))

    assert event.payload["status"] == "success"
    assert [s["id"] for s in event.payload["incidents"]] == [made[0]["id"]]
    # One query reached the hook: the window as 7-digit bounds, tags left to the matching rules.
    [(query,)] = asked
    assert isinstance(query, IncidentQuery)
    assert (query.severity, query.tags, query.updated_from, query.updated_before) == (
        ("high",),
        None,
        START,
        END,
    )


def test_a_bad_filter_value_is_an_error_event_not_a_failure_to_load(emulator: DefenderEmulator) -> None:
    event = asyncio.run(anext(window_trigger(query={"severity": "urgent"}).run()))
    assert event.payload["status"] == "error"
    assert event.payload["error_type"] == "MTPConfigError"
    assert "Invalid severity 'urgent'" in event.payload["message"]
    assert emulator.stats()["requests"] == {}


def test_trigger_reports_too_many_and_empty(emulator: DefenderEmulator) -> None:
    emulator.put_incidents(
        *({"lastUpdateDateTime": f"2026-06-01T00:{minute:02d}:00Z"} for minute in range(1, 4))
    )
    too_many = asyncio.run(anext(window_trigger(max_incidents=2).run()))
    assert too_many.payload["status"] == "error"
    assert too_many.payload["error_type"] == "TooManyIncidents"
    assert "more than max_incidents=2" in too_many.payload["message"]

    empty = asyncio.run(anext(window_trigger(min_incidents=4, on_empty="fail").run()))
    assert empty.payload["status"] == "empty"
    assert empty.payload["count"] == 3
    assert empty.payload["on_empty"] == "fail"
    assert len(empty.payload["incidents"]) == 3

    counted = asyncio.run(anext(window_trigger(include_incidents=False, max_incidents=None).run()))
    assert counted.payload["status"] == "success"
    assert "incidents" not in counted.payload


def test_a_cancelled_trigger_closes_its_hook(emulator: DefenderEmulator, hook_calls: dict[str, int]) -> None:
    now = datetime.now(UTC)
    open_window = window_trigger(
        window_start=(now - timedelta(hours=1)).isoformat(),
        window_end=(now + timedelta(hours=1)).isoformat(),
        poke_interval=60,
    )

    async def scenario() -> None:
        task = asyncio.create_task(anext(open_window.run()))
        await until(lambda: hook_calls["list"] == 1, "the first poll")
        await asyncio.sleep(0.1)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(scenario())
    assert hook_calls["close"] == 1


@pytest.mark.parametrize(("coalesced", "listings"), [(True, 1), (False, 200)])
def test_200_triggers_in_one_loop_ask_entra_for_one_token(
    emulator: DefenderEmulator, monkeypatch: pytest.MonkeyPatch, coalesced: bool, listings: int
) -> None:
    """One token either way; one listing for all 200 when coalesced, one each when not."""
    monkeypatch.setattr(poller, "COALESCING", coalesced)
    emulator.put_incidents({"displayName": "shared", "lastUpdateDateTime": "2026-06-01T00:30:00Z"})
    triggers = [window_trigger() for _ in range(200)]

    async def scenario() -> list[TriggerEvent]:
        return list(await asyncio.gather(*(anext(trigger.run()) for trigger in triggers)))

    events = asyncio.run(scenario())
    assert {event.payload["status"] for event in events} == {"success"}
    assert {event.payload["incidents"][0]["title"] for event in events} == {"shared"}
    stats = emulator.stats()
    assert stats["tokens_issued"] == {emulator.client_id: 1}
    assert stats["requests"]["POST /{tenant}/oauth2/v2.0/token"] == {"200": 1}
    assert stats["requests"]["GET /v1.0/security/incidents"] == {"200": listings}


# IncidentEventTrigger -----------------------------------------------------------------------------


def test_event_trigger_serializes_and_hashes_stably() -> None:
    trigger = IncidentEventTrigger(severity="high", tags=["watch"], poll_interval=30)
    classpath, kwargs = trigger.serialize()
    assert classpath == "airflow_provider_mtp.triggers.incidents.IncidentEventTrigger"
    assert json.loads(json.dumps(kwargs)) == kwargs
    assert kwargs["start"] is None, "no 'now' in the kwargs: they identify the watcher"
    rebuilt = IncidentEventTrigger(**deserialize(serialize(kwargs)))  # type: ignore[arg-type]
    assert rebuilt.serialize() == (classpath, kwargs)
    assert isinstance(rebuilt, BaseEventTrigger)
    assert BaseEventTrigger.hash(classpath, kwargs) == BaseEventTrigger.hash(*rebuilt.serialize())


def test_event_trigger_fires_for_new_and_updated_incidents_once_each(
    emulator: DefenderEmulator, hook_calls: dict[str, int]
) -> None:
    trigger = IncidentEventTrigger(tags="watch", poll_interval=0.1, lag_seconds=60)
    events: list[dict[str, Any]] = []

    def put(*incidents: dict[str, Any]) -> list[dict[str, Any]]:
        # Stamped by the emulator's clock: set it to now, after the trigger started.
        emulator.set_clock(datetime.now(UTC).isoformat())
        return emulator.put_incidents(*incidents)

    async def scenario() -> list[dict[str, Any]]:
        async def consume() -> None:
            async for event in trigger.run():
                events.append(event.payload)

        task = asyncio.create_task(consume())
        await until(lambda: hook_calls["list"] >= 1, "the first poll")
        made = await asyncio.to_thread(
            put,
            {"displayName": "new one", "customTags": ["watch"]},
            {"displayName": "new two", "customTags": ["watch"]},
            {"displayName": "not watched"},
        )
        await until(lambda: len(events) >= 2, "two new incidents")
        await asyncio.to_thread(put, {"id": made[0]["id"], "status": "resolved"})
        await until(lambda: len(events) >= 3, "the update")
        polls = hook_calls["list"]
        await until(lambda: hook_calls["list"] >= polls + 3, "three more polls")
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        return made

    made = asyncio.run(scenario())
    assert [event["title"] for event in events] == ["new one", "new two", "new one"]
    assert events[2]["status"] == "resolved"
    assert len({event["key"] for event in events}) == 3, "re-polls (lag 60 s) fired nothing twice"
    first = events[0]
    assert first["key"] == f"{made[0]['id']}@{first['last_update']}"
    assert set(first) == {"id", "title", "severity", "status", "last_update", "portal_url", "key"}
    assert hook_calls["close"] == 1


def test_a_watcher_started_without_start_fires_the_updates_of_the_last_lag(
    emulator: DefenderEmulator, hook_calls: dict[str, int]
) -> None:
    """What a triggerer restart relies on: updates made while no triggerer ran (shorter than the
    lag) still fire; older ones do not."""
    now = datetime.now(UTC)
    emulator.set_clock((now - timedelta(seconds=600)).isoformat())
    emulator.put_incidents({"displayName": "before the lag", "customTags": ["outage"]})
    emulator.set_clock((now - timedelta(seconds=30)).isoformat())
    emulator.put_incidents({"displayName": "during the outage", "customTags": ["outage"]})
    trigger = IncidentEventTrigger(tags="outage", poll_interval=0.1, lag_seconds=120)
    events: list[dict[str, Any]] = []

    async def scenario() -> None:
        async def consume() -> None:
            async for event in trigger.run():
                events.append(event.payload)

        task = asyncio.create_task(consume())
        await until(lambda: hook_calls["list"] >= 3, "three polls")
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    asyncio.run(scenario())
    assert [event["title"] for event in events] == ["during the outage"]
