"""The Airflow-facing surface against the emulator: enums in a DAG, MTPHook.call(), hook.close()."""

from __future__ import annotations

import importlib.util
import json
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import requests

from airflow_provider_mtp.api.graph import normalised_incident
from airflow_provider_mtp.auth import clear_token_cache
from airflow_provider_mtp.emulator import DefenderEmulator
from airflow_provider_mtp.enums import IncidentStatus, Severity
from airflow_provider_mtp.errors import MTPConfigError, MTPNotFoundError
from airflow_provider_mtp.hooks.mtp import MTPHook
from airflow_provider_mtp.triggers.incidents import IncidentTrigger

DAGS = Path(__file__).parents[1] / "dags"


def load_dag(name: str) -> Any:
    spec = importlib.util.spec_from_file_location(f"mtp_test_dag_{name}", DAGS / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.dag


def xcom(run: Any, task_id: str) -> Any:
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        row = session.scalars(
            XComModel.get_many(run_id=run.run_id, dag_ids=run.dag_id, task_ids=task_id, key="return_value")
        ).first()
        return None if row is None else XComModel.deserialize_value(row)


def states(run: Any) -> dict[str, str]:
    from airflow.utils.session import create_session

    with create_session() as session:
        return {ti.task_id: str(ti.state) for ti in run.get_task_instances(session=session)}


@pytest.fixture
def emulator(
    defender_emulator: DefenderEmulator, airflow_db: None, monkeypatch: pytest.MonkeyPatch
) -> DefenderEmulator:
    defender_emulator.reset()
    defender_emulator.clear_faults()
    clear_token_cache()
    monkeypatch.setenv("AIRFLOW_CONN_MTP_DEFAULT", defender_emulator.airflow_conn)
    conn = json.loads(defender_emulator.airflow_conn)
    conn["extra"]["api"] = "legacy"
    monkeypatch.setenv("AIRFLOW_CONN_MTP_LEGACY", json.dumps(conn))
    return defender_emulator


@pytest.fixture
def trigger_kwargs(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """The serialised kwargs of every IncidentTrigger that ran."""
    seen: list[dict[str, Any]] = []
    original = IncidentTrigger.run

    async def spy(self: IncidentTrigger) -> AsyncIterator[Any]:
        seen.append(self.serialize()[1])
        async for event in original(self):
            yield event

    monkeypatch.setattr(IncidentTrigger, "run", spy)
    return seen


# Enums in a DAG ------------------------------------------------------------------------------------


@pytest.mark.parametrize("conn_id", ["mtp_default", "mtp_legacy"])
def test_a_dag_using_the_enums_and_a_templated_connection_runs_on_both_back_ends(
    emulator: DefenderEmulator, trigger_kwargs: list[dict[str, Any]], conn_id: str
) -> None:
    target = emulator.put_incidents({"displayName": "to resolve"})[0]
    stamp = "2026-06-01T00:10:00Z"
    wanted = emulator.put_incidents(
        {"displayName": "high", "severity": "high", "customTags": ["enums"], "lastUpdateDateTime": stamp},
        {
            "displayName": "high, in progress",
            "severity": "high",
            "status": "inProgress",
            "customTags": ["enums"],
            "lastUpdateDateTime": stamp,
        },
    )
    emulator.put_incidents(
        {"displayName": "low", "severity": "low", "customTags": ["enums"], "lastUpdateDateTime": stamp},
        {
            "displayName": "resolved",
            "severity": "high",
            "status": "resolved",
            "customTags": ["enums"],
            "lastUpdateDateTime": stamp,
        },
    )
    conf = {
        "conn_id": conn_id,
        "incident_id": target["id"],
        "start": "2026-06-01T00:00:00Z",
        "end": "2026-06-01T01:00:00Z",
    }

    run = load_dag("incidents_enums").test(run_conf=conf)

    assert states(run) == {"update": "success", "found": "success"}
    updated = MTPHook().get_incident(target["id"], include_alerts=False)
    assert (updated["status"], updated["classification"], updated["determination"]) == (
        "resolved",
        "truePositive",
        "multiStagedAttack",
    )
    assert xcom(run, "update")["status"] == "resolved"
    assert sorted(summary["id"] for summary in xcom(run, "found")) == sorted(i["id"] for i in wanted)
    # The sensor deferred with the enum filters as plain strings: JSON, and equal to the values.
    [kwargs] = trigger_kwargs
    assert kwargs["mtp_conn_id"] == conn_id
    query = kwargs["query"]
    assert query["status"] == ["active", "inProgress"]
    assert {type(value) for value in [*query["status"], *query["severity"], *query["classification"]]} == {
        str
    }
    json.dumps(kwargs)


def test_the_hook_takes_enum_members_where_it_took_strings(emulator: DefenderEmulator) -> None:
    made = emulator.put_incidents(
        {"displayName": "one", "severity": "high", "customTags": ["hook-enums"]},
        {"displayName": "two", "severity": "low", "customTags": ["hook-enums"]},
    )
    with MTPHook() as hook:
        listed = {
            incident["id"]
            for incident in hook.list_incidents(status=IncidentStatus.ACTIVE, severity=[Severity.HIGH])
        }
        assert made[0]["id"] in listed
        assert made[1]["id"] not in listed
        updated = hook.update_incident(made[1]["id"], status=IncidentStatus.IN_PROGRESS)
    assert updated["status"] == "inProgress"


# MTPHook.call ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(("api", "path"), [("graph", "incidents/{id}"), ("legacy", "incidents/{id}")])
def test_call_gets_what_get_incident_gets_before_mapping(
    emulator: DefenderEmulator, api: str, path: str
) -> None:
    incident = emulator.put_incidents({"displayName": "raw"})[0]
    with MTPHook(api=api) as hook:
        raw = hook.call(
            "GET", path.format(id=incident["id"]), params={"$expand": "alerts"} if api == "graph" else None
        )
        mapped = hook.get_incident(incident["id"])
        same_by_full_path = hook.call(
            "GET", f"{'/v1.0/security' if api == 'graph' else '/api'}/incidents/{incident['id']}"
        )
    if api == "graph":
        assert normalised_incident(raw) == mapped
    else:
        assert (raw["incidentId"], raw["incidentName"]) == (int(incident["id"]), "raw")
    assert same_by_full_path["@odata.context" if api == "graph" else "incidentId"] is not None


def test_call_pages_a_collection_through_next_links(emulator: DefenderEmulator) -> None:
    everything = sorted(incident["id"] for incident in MTPHook().list_incidents())
    before = graph_listings(emulator)
    with MTPHook() as hook:
        pages = hook.call("GET", "incidents", params={"$top": 3}, paginate=True)
        items = [item["id"] for item in pages]
    assert sorted(items) == everything
    assert len(everything) > 6
    # Three a page: every page was a request of its own, the first by path and the rest by next link.
    assert graph_listings(emulator) - before == -(-len(everything) // 3)


def graph_listings(emulator: DefenderEmulator) -> int:
    return int(emulator.stats()["requests"].get("GET /v1.0/security/incidents", {}).get("200", 0))


def test_call_raises_not_found_for_a_404(emulator: DefenderEmulator) -> None:
    with (
        MTPHook() as hook,
        pytest.raises(MTPNotFoundError, match=re.escape("GET /v1.0/security/incidents/999999: not found")),
    ):
        hook.call("GET", "incidents/999999")


@pytest.mark.parametrize(
    "path",
    ["https://evil.example.com/v1.0/security/incidents", "//evil.example.com/v1.0/security/incidents"],
)
def test_call_refuses_a_url_on_another_host_before_sending_anything(
    emulator: DefenderEmulator, path: str
) -> None:
    with (
        MTPHook() as hook,
        pytest.raises(MTPConfigError, match=re.escape("evil.example.com, not on the API's host")),
    ):
        hook.call("GET", path)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"method": "TRACE", "path": "incidents"}, "method must be one of GET, POST, PATCH, PUT, DELETE"),
        (
            {"method": "POST", "path": "incidents", "paginate": True},
            "paginate=True reads a collection with GET",
        ),
        ({"method": "GET", "path": " "}, "path must be a non-empty string"),
    ],
)
def test_call_checks_its_arguments_before_any_call(kwargs: dict[str, Any], message: str) -> None:
    # No connection exists: the checks come before it is read.
    with pytest.raises(MTPConfigError, match=message):
        MTPHook(mtp_conn_id="mtp_not_defined").call(**kwargs)


# close ---------------------------------------------------------------------------------------------


def test_close_closes_the_session_and_is_idempotent_and_the_hook_stays_usable(
    emulator: DefenderEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    closed: list[requests.Session] = []
    original = requests.Session.close

    def spy(self: requests.Session) -> None:
        closed.append(self)
        original(self)

    monkeypatch.setattr(requests.Session, "close", spy)
    incident = emulator.put_incidents({"displayName": "close"})[0]
    hook = MTPHook()
    hook.close()  # nothing built yet: nothing opened to close it
    assert closed == []
    with hook:
        first = hook.session
        hook.get_incident(incident["id"])
    assert closed == [first]
    hook.close()
    assert closed == [first], "a second close does nothing"
    assert hook.get_incident(incident["id"])["id"] == incident["id"]
    assert hook.session is not first
