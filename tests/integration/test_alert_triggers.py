"""AlertTrigger and AlertEventTrigger against the emulator (their rules are the incident ones',
``tests/unit/test_listing_rules.py``).

Triggers run in this test's own event loop, as the triggerer runs them: ``anext(trigger.run())``.
Alerts are put through the emulator's ``/_emulator/alerts`` route.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

import pytest
from airflow.sdk.serde import deserialize, serialize
from airflow.triggers.base import BaseEventTrigger

from airflow_provider_mtp.api.alert_query import AlertQuery
from airflow_provider_mtp.emulator import DefenderEmulator
from airflow_provider_mtp.enums import Severity
from airflow_provider_mtp.hooks.mtp_async import MTPAsyncHook
from airflow_provider_mtp.triggers import poller
from airflow_provider_mtp.triggers.alerts import AlertEventTrigger, AlertTrigger
from tests.integration import test_incident_triggers as incident_tests
from tests.integration.test_incident_triggers import END, START, until

#: The incident trigger tests' fixture, shared: a reset emulator as ``mtp_default``.
emulator = incident_tests.emulator

ALERTS_PATH = "/v1.0/security/alerts_v2"
T = TypeVar("T")
#: What an AlertTrigger serialises: one ``query`` kwarg, no filter of its own.
TRIGGER_KWARGS = {
    "window_start",
    "window_end",
    "lag_seconds",
    "mtp_conn_id",
    "api",
    "query",
    "min_alerts",
    "max_alerts",
    "include_alerts",
    "poke_interval",
    "on_empty",
}


@pytest.fixture
def alert_calls(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """Counts MTPAsyncHook alert listings and closes, in any trigger (counted when called)."""
    calls = {"list_alerts": 0, "close": 0}

    def counted(name: str) -> Callable[..., Any]:
        method = getattr(MTPAsyncHook, name)

        def wrapper(self: MTPAsyncHook, *args: Any, **kwargs: Any) -> Any:
            calls[name] += 1
            return method(self, *args, **kwargs)

        return wrapper

    for name in calls:
        monkeypatch.setattr(MTPAsyncHook, name, counted(name))
    return calls


def alert_trigger(**kwargs: Any) -> AlertTrigger:
    return AlertTrigger(
        **{"window_start": START, "window_end": END, "lag_seconds": 0, "poke_interval": 0.1, **kwargs}
    )


# AlertTrigger -------------------------------------------------------------------------------------


def test_alert_trigger_serialises_one_query_and_round_trips() -> None:
    query = AlertQuery.build(severity=Severity.HIGH, service_source="microsoftDefenderForEndpoint")
    trigger = alert_trigger(query=query, max_alerts=None)

    classpath, kwargs = trigger.serialize()

    assert classpath == "airflow_provider_mtp.triggers.alerts.AlertTrigger"
    assert set(kwargs) == TRIGGER_KWARGS
    assert kwargs["query"] == query.to_json()
    assert json.loads(json.dumps(kwargs)) == kwargs
    rebuilt = AlertTrigger(**deserialize(serialize(kwargs)))  # type: ignore[arg-type]
    assert rebuilt.serialize() == (classpath, kwargs)
    # Filters given as keywords are folded into the one query kwarg.
    assert alert_trigger(severity="high").serialize()[1]["query"] == {"severity": "high"}
    with pytest.raises(TypeError, match="fields of AlertQuery"):
        alert_trigger(tags=["x"])


def first_events(*triggers: AlertTrigger) -> list[dict[str, Any]]:
    """Each trigger's one event (its payload), all run in one event loop; each must then return."""

    async def one(trigger: AlertTrigger) -> dict[str, Any]:
        run = trigger.run()
        event = await anext(run)
        assert await anext(run, None) is None, "run() returns after its one event"
        return dict(event.payload)

    async def scenario() -> list[dict[str, Any]]:
        return list(await asyncio.gather(*map(one, triggers)))

    return asyncio.run(scenario())


def test_alert_trigger_fires_one_event_with_alert_summaries(
    emulator: DefenderEmulator, alert_calls: dict[str, int]
) -> None:
    made = emulator.put_alerts(
        *(
            {"title": title, "severity": severity, "lastUpdateDateTime": stamp}
            for title, severity, stamp in (
                ("a", "high", "2026-06-01T00:10:00Z"),
                ("b", "low", "2026-06-01T00:20:00Z"),
                ("c", "high", END),
            )
        ),
    )
    [payload] = first_events(alert_trigger(severity=["high"]))
    assert (payload["status"], payload["count"], payload["window"]) == (
        "success",
        1,
        {"start": START, "end": END},
    )
    [summary] = payload["alerts"]
    assert (summary["id"], summary["incidentId"]) == (made[0]["id"], made[0]["incidentId"])
    assert summary["lastUpdateDateTime"] == "2026-06-01T00:10:00Z"
    assert json.loads(json.dumps(payload)) == payload
    assert alert_calls == {"list_alerts": 1, "close": 1}


def test_alert_trigger_errors_are_events(emulator: DefenderEmulator) -> None:
    emulator.put_alerts(*({"lastUpdateDateTime": f"2026-06-01T00:{m:02d}:00Z"} for m in range(1, 4)))
    too_many = asyncio.run(anext(alert_trigger(max_alerts=2).run()))
    assert too_many.payload["status"] == "error"
    assert too_many.payload["error_type"] == "TooManyAlerts"
    assert "3 alerts updated in" in too_many.payload["message"]
    assert "more than max_alerts=2" in too_many.payload["message"]

    empty = asyncio.run(anext(alert_trigger(min_alerts=4, on_empty="fail").run()))
    assert (empty.payload["status"], empty.payload["count"], empty.payload["on_empty"]) == (
        "empty",
        3,
        "fail",
    )

    emulator.reset()
    bad = asyncio.run(anext(alert_trigger(query={"severity": "urgent"}).run()))
    assert (bad.payload["status"], bad.payload["error_type"]) == ("error", "MTPConfigError")
    assert emulator.stats()["requests"] == {}, "a bad filter is refused before any call"

    emulator.inject_fault(path=ALERTS_PATH, method="GET", status=403)
    denied = asyncio.run(anext(alert_trigger().run()))
    assert (denied.payload["status"], denied.payload["error_type"]) == ("error", "MTPPermissionError")
    assert "SecurityAlert.Read.All" in denied.payload["message"]
    assert emulator.client_secret not in json.dumps(denied.payload)


@pytest.mark.parametrize(("coalesced", "listings"), [(True, 1), (False, 200)])
def test_200_alert_triggers_in_one_loop_ask_entra_for_one_token(
    emulator: DefenderEmulator, monkeypatch: pytest.MonkeyPatch, coalesced: bool, listings: int
) -> None:
    """One token either way; one listing for all 200 when coalesced, one each when not."""
    monkeypatch.setattr(poller, "COALESCING", coalesced)
    emulator.put_alerts({"title": "shared", "lastUpdateDateTime": "2026-06-01T00:30:00Z"})
    payloads = first_events(*(alert_trigger() for _ in range(200)))
    assert len(payloads) == 200
    assert {(p["status"], p["alerts"][0]["title"]) for p in payloads} == {("success", "shared")}
    stats = emulator.stats()
    assert stats["tokens_issued"] == {emulator.client_id: 1}
    assert stats["requests"]["POST /{tenant}/oauth2/v2.0/token"] == {"200": 1}
    assert stats["requests"][f"GET {ALERTS_PATH}"] == {"200": listings}


# AlertEventTrigger --------------------------------------------------------------------------------


def test_alert_event_trigger_serialises_one_query_and_hashes_stably() -> None:
    trigger = AlertEventTrigger(severity="high", detection_source="antivirus", poll_interval=30)
    classpath, kwargs = trigger.serialize()
    assert classpath == "airflow_provider_mtp.triggers.alerts.AlertEventTrigger"
    assert set(kwargs) == {"mtp_conn_id", "api", "query", "start", "lag_seconds", "poll_interval"}
    assert kwargs["query"] == {"severity": "high", "detection_source": "antivirus"}
    assert kwargs["start"] is None, "no 'now' in the kwargs: they identify the watcher"
    rebuilt = AlertEventTrigger(**deserialize(serialize(kwargs)))  # type: ignore[arg-type]
    assert isinstance(rebuilt, BaseEventTrigger)
    assert BaseEventTrigger.hash(classpath, kwargs) == BaseEventTrigger.hash(*rebuilt.serialize())


def put_now(emulator: DefenderEmulator, *alerts: dict[str, Any]) -> list[dict[str, Any]]:
    """Put alerts stamped by the emulator's clock, set to this moment (after the trigger started)."""
    emulator.set_clock(datetime.now(UTC).isoformat())
    return emulator.put_alerts(*alerts)


async def watching(trigger: AlertEventTrigger, script: Callable[[list[dict[str, Any]]], Awaitable[T]]) -> T:
    """Run ``script`` while ``trigger`` runs beside it, appending its events; then stop the trigger."""
    events: list[dict[str, Any]] = []

    async def consume() -> None:
        async for event in trigger.run():
            events.append(event.payload)

    task = asyncio.create_task(consume())
    try:
        return await script(events)
    finally:
        assert not task.done(), "an event trigger never returns by itself"
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def test_alert_event_trigger_fires_once_per_update_and_waits_out_throttling(
    emulator: DefenderEmulator, alert_calls: dict[str, int]
) -> None:
    watched = {"detectionSource": "antivirus"}

    async def polls(more: int, what: str) -> None:
        target = alert_calls["list_alerts"] + more
        await until(lambda: alert_calls["list_alerts"] >= target, what)

    async def script(events: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        await polls(1, "the first poll")
        made = await asyncio.to_thread(
            put_now,
            emulator,
            {"title": "new one", **watched},
            {"title": "new two", **watched},
            {"title": "not watched", "detectionSource": "automatedInvestigation"},
        )
        await until(lambda: len(events) == 2, "two new alerts")
        # Throttled for an hour: the hook gives up at once, and the trigger polls again.
        await asyncio.to_thread(
            emulator.inject_fault, path=ALERTS_PATH, method="GET", status=429, retry_after=3600
        )
        await polls(2, "a poll after the throttled one")
        await asyncio.to_thread(put_now, emulator, {"id": made[0]["id"], "status": "resolved"})
        await until(lambda: len(events) == 3, "the update")
        await polls(3, "three more polls, which fire nothing")
        return made, list(events)

    trigger = AlertEventTrigger(detection_source="antivirus", poll_interval=0.1, lag_seconds=60)
    made, events = asyncio.run(watching(trigger, script))
    assert [(event["title"], event["status"]) for event in events] == [
        ("new one", "new"),
        ("new two", "new"),
        ("new one", "resolved"),
    ]
    assert len({event["key"] for event in events}) == 3, "re-polls (lag 60 s) fired nothing twice"
    assert events[0]["key"] == f"{made[0]['id']}@{events[0]['lastUpdateDateTime']}"
    assert events[0]["incidentId"] == made[0]["incidentId"]
    assert emulator.stats()["requests"][f"GET {ALERTS_PATH}"].get("429") == 1
    assert alert_calls["close"] == 1
