"""Alerts through both hooks against the emulator: one alert shape and the same keys on either back end.

Graph lists ``alerts_v2``; the legacy API has no alerts endpoint, so its back end reads the
incidents that embed them. A DAG must see the same alerts, ids and ``lastUpdateDateTime`` on
both, an update made through Graph must show wherever the alert shows (its incident on either
API, the hunting tables), and what cannot work on the legacy API must fail before any call with a
message that says what to do.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from airflow_provider_mtp.api.alert_query import AlertQuery
from airflow_provider_mtp.emulator import DefenderEmulator
from airflow_provider_mtp.errors import MTPConfigError, MTPNotFoundError, MTPPermissionError
from airflow_provider_mtp.hooks.mtp import MTPHook
from airflow_provider_mtp.hooks.mtp_async import MTPAsyncHook
from tests.integration.test_hook import api_requests, use_connection

APIS = ("graph", "legacy")


@pytest.fixture
def emulator(defender_emulator: DefenderEmulator) -> Iterator[DefenderEmulator]:
    defender_emulator.reset()
    defender_emulator.clear_faults()
    yield defender_emulator
    defender_emulator.reset()


@pytest.fixture
def make_hook() -> Iterator[Callable[..., MTPHook]]:
    made: list[MTPHook] = []

    def make(conn_id: str, **kwargs: Any) -> MTPHook:
        hook = MTPHook(mtp_conn_id=conn_id, **kwargs)
        made.append(hook)
        return hook

    yield make
    for hook in made:
        hook.close()


def hooks(
    emulator: DefenderEmulator, monkeypatch: pytest.MonkeyPatch, make_hook: Callable[..., MTPHook]
) -> dict[str, MTPHook]:
    return {
        api: make_hook(use_connection(monkeypatch, emulator, api=api, conn_id=f"mtp_{api}")) for api in APIS
    }


def keys(alerts: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return sorted((alert["id"], alert["lastUpdateDateTime"]) for alert in alerts)


def middle_window(alerts: list[dict[str, Any]]) -> dict[str, str]:
    """A window holding the middle half of the alerts' last updates: alerts on both sides of it."""
    stamps = sorted(alert["lastUpdateDateTime"] for alert in alerts)
    return {"updated_from": stamps[len(stamps) // 4], "updated_before": stamps[3 * len(stamps) // 4]}


def test_both_back_ends_list_the_same_alert_ids_and_keys_for_a_window(
    emulator: DefenderEmulator, monkeypatch: pytest.MonkeyPatch, make_hook: Callable[..., MTPHook]
) -> None:
    by_api = hooks(emulator, monkeypatch, make_hook)
    everything = list(by_api["graph"].list_alerts())
    window = middle_window(everything)
    graph = list(by_api["graph"].list_alerts(**window))
    legacy = list(by_api["legacy"].list_alerts(**window))
    expected = [
        alert
        for alert in everything
        if window["updated_from"] <= alert["lastUpdateDateTime"] < window["updated_before"]
    ]
    print(
        f"alerts in the tenant: {len(everything)}; in the window {window['updated_from']} .. "
        f"{window['updated_before']}: graph {len(graph)}, legacy {len(legacy)}"
    )
    assert len(expected) > 10
    assert keys(graph) == keys(expected)
    assert keys(legacy) == keys(graph)
    assert len(set(keys(graph))) == len(graph)  # each key once
    legacy_by_id = {alert["id"]: alert for alert in legacy}
    for alert in graph:
        twin = legacy_by_id[alert["id"]]
        for field in (
            "incidentId",
            "status",
            "severity",
            "classification",
            "serviceSource",
            "createdDateTime",
        ):
            assert twin[field] == alert[field], (alert["id"], field)


@pytest.mark.parametrize(
    "filters",
    [
        {"severity": ["high", "medium"]},
        {"status": "new", "service_source": "microsoftDefenderForEndpoint"},
        {"detection_source": "antivirus"},
    ],
)
def test_both_back_ends_apply_the_same_filters(
    emulator: DefenderEmulator,
    monkeypatch: pytest.MonkeyPatch,
    make_hook: Callable[..., MTPHook],
    filters: dict[str, Any],
) -> None:
    by_api = hooks(emulator, monkeypatch, make_hook)
    graph = list(by_api["graph"].list_alerts(**filters))
    legacy = list(by_api["legacy"].list_alerts(**filters))
    assert graph, filters
    assert keys(legacy) == keys(graph)
    query = AlertQuery.build(**filters)
    assert all(query.keeps(alert, local_only=False) for alert in graph)


def test_the_async_hook_lists_the_same_alerts(
    emulator: DefenderEmulator, monkeypatch: pytest.MonkeyPatch, make_hook: Callable[..., MTPHook]
) -> None:
    by_api = hooks(emulator, monkeypatch, make_hook)
    window = middle_window(list(by_api["graph"].list_alerts()))

    async def listed(api: str) -> list[dict[str, Any]]:
        async with MTPAsyncHook(mtp_conn_id=f"mtp_{api}") as hook:
            return [alert async for alert in hook.list_alerts(AlertQuery.build(**window))]

    for api in APIS:
        assert keys(asyncio.run(listed(api))) == keys(list(by_api[api].list_alerts(**window)))


def test_an_update_through_update_alert_shows_in_its_incident_on_both_apis_and_in_alert_info(
    emulator: DefenderEmulator, monkeypatch: pytest.MonkeyPatch, make_hook: Callable[..., MTPHook]
) -> None:
    by_api = hooks(emulator, monkeypatch, make_hook)
    graph = by_api["graph"]
    alert = next(iter(graph.list_alerts(status="new")))
    updated = graph.update_alert(
        alert["id"],
        status="resolved",
        classification="falsePositive",
        determination="clean",
        assigned_to="analyst@contoso.com",
        comment="benign: the backup agent",
    )
    assert updated["status"] == "resolved"
    assert updated["lastUpdateDateTime"] > alert["lastUpdateDateTime"]
    assert [comment["comment"] for comment in updated["comments"]][-1] == "benign: the backup agent"
    assert graph.get_alert(alert["id"]) == {**updated, "comments": graph.get_alert(alert["id"])["comments"]}
    for api, hook in by_api.items():
        incident = hook.get_incident(alert["incidentId"], include_alerts=True)
        embedded = next(item for item in incident["alerts"] if item["id"] == alert["id"])
        assert embedded["status"] == "resolved", api
        assert embedded["classification"] == "falsePositive", api
        assert embedded["determination"] == "clean", api
        assert embedded["assignedTo"] == "analyst@contoso.com", api
        assert embedded["lastUpdateDateTime"] == updated["lastUpdateDateTime"], api
        assert incident["lastUpdateDateTime"] >= updated["lastUpdateDateTime"], api
        assert hook.get_alert(alert["id"], incident_id=alert["incidentId"])["status"] == "resolved", api
    # The hunting tables hold the same alert (AlertInfo has no status column: one row, the alert's).
    rows = list(graph.run_hunting_query(f'AlertInfo | where AlertId == "{alert["id"]}"').rows)
    assert len(rows) == 1
    assert rows[0]["Title"] == updated["title"]
    assert rows[0]["Severity"].casefold() == updated["severity"].casefold()


def test_the_legacy_back_end_refuses_alert_updates_before_any_call(
    emulator: DefenderEmulator, monkeypatch: pytest.MonkeyPatch, make_hook: Callable[..., MTPHook]
) -> None:
    legacy = hooks(emulator, monkeypatch, make_hook)["legacy"]
    alert = next(iter(legacy.list_alerts()))
    before = api_requests(emulator)
    with pytest.raises(MTPConfigError) as update:
        legacy.update_alert(alert["id"], status="resolved")
    with pytest.raises(MTPConfigError) as comment:
        legacy.add_alert_comment(alert["id"], "looked at it")
    print(update.value)
    assert str(update.value).startswith("The legacy MTP API cannot update an alert")
    assert "set the connection's extra 'api' to 'graph'" in str(update.value)
    assert str(comment.value).startswith("The legacy MTP API cannot comment on an alert")
    assert api_requests(emulator) == before
    with pytest.raises(MTPConfigError, match="pass incident_id"):
        legacy.get_alert(alert["id"])


def test_an_unknown_alert_is_not_found_on_both_apis(
    emulator: DefenderEmulator, monkeypatch: pytest.MonkeyPatch, make_hook: Callable[..., MTPHook]
) -> None:
    by_api = hooks(emulator, monkeypatch, make_hook)
    incident_id = next(iter(by_api["graph"].list_alerts()))["incidentId"]
    with pytest.raises(MTPNotFoundError, match="alert ids look like da638501234567890123_393341063"):
        by_api["graph"].get_alert("da000000000000000000_0")
    with pytest.raises(
        MTPNotFoundError, match=f"Incident {incident_id} holds no alert 'da000000000000000000_0'"
    ):
        by_api["legacy"].get_alert("da000000000000000000_0", incident_id=incident_id)


def test_connection_without_alert_permissions_succeeds_and_names_them(
    emulator: DefenderEmulator, monkeypatch: pytest.MonkeyPatch, make_hook: Callable[..., MTPHook]
) -> None:
    hook = make_hook(use_connection(monkeypatch, emulator, api="graph", app="no_alerts"))
    ok, message = hook.test_connection()
    print(message)
    assert ok, message
    assert (
        "Missing permissions: SecurityAlert.Read.All (to read alerts (AlertSensor, list_alerts))" in message
    )
    assert (
        "SecurityAlert.ReadWrite.All (to update alerts and comment on them (UpdateAlertOperator))" in message
    )
    assert "SecurityIncident" not in message.split("Missing permissions:")[1]
    with pytest.raises(MTPPermissionError, match=r"SecurityAlert\.Read\.All"):
        next(iter(hook.list_alerts()))


def test_the_async_hook_updates_and_refuses_as_the_sync_hook_does(
    emulator: DefenderEmulator, monkeypatch: pytest.MonkeyPatch, make_hook: Callable[..., MTPHook]
) -> None:
    by_api = hooks(emulator, monkeypatch, make_hook)
    alert = next(iter(by_api["graph"].list_alerts(status="new")))

    async def update(api: str) -> dict[str, Any]:
        async with MTPAsyncHook(mtp_conn_id=f"mtp_{api}") as hook:
            return await hook.update_alert(alert["id"], status="inProgress", comment="looking")

    updated = asyncio.run(update("graph"))
    assert updated["status"] == "inProgress"
    assert updated["comments"][-1]["comment"] == "looking"
    assert by_api["graph"].get_alert(alert["id"])["status"] == "inProgress"
    with pytest.raises(MTPConfigError, match="The legacy MTP API cannot update an alert"):
        asyncio.run(update("legacy"))
