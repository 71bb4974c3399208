"""UpdateIncidentOperator, AddIncidentCommentOperator and the portal link against the emulator."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from airflow_provider_mtp.auth import clear_token_cache
from airflow_provider_mtp.emulator import DefenderEmulator
from airflow_provider_mtp.errors import MTPConfigError
from airflow_provider_mtp.hooks.mtp import MTPHook
from airflow_provider_mtp.links import INCIDENT_URL_XCOM_KEY, DefenderIncidentLink
from airflow_provider_mtp.operators.incidents import AddIncidentCommentOperator, UpdateIncidentOperator

DAGS = Path(__file__).parents[1] / "dags"
PORTAL = "https://security.microsoft.com/incidents"


def load_dag(name: str) -> Any:
    spec = importlib.util.spec_from_file_location(f"mtp_test_dag_{name}", DAGS / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.dag


def xcom(run: Any, task_id: str, *, key: str = "return_value", map_index: int = -1) -> Any:
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        row = session.scalars(
            XComModel.get_many(
                run_id=run.run_id, dag_ids=run.dag_id, task_ids=task_id, map_indexes=map_index, key=key
            )
        ).first()
        return None if row is None else XComModel.deserialize_value(row)


def task_instances(run: Any) -> list[Any]:
    from airflow.utils.session import create_session

    with create_session() as session:
        return list(run.get_task_instances(session=session))


def comments_with(incident: dict[str, Any], marker: str) -> list[str]:
    return [c["comment"] for c in incident.get("comments") or () if marker in c["comment"]]


@pytest.fixture
def emulator(
    defender_emulator: DefenderEmulator, airflow_db: None, monkeypatch: pytest.MonkeyPatch
) -> DefenderEmulator:
    defender_emulator.reset()
    defender_emulator.clear_faults()
    clear_token_cache()
    monkeypatch.setenv("AIRFLOW_CONN_MTP_DEFAULT", defender_emulator.airflow_conn)
    return defender_emulator


def use_back_end(emulator: DefenderEmulator, monkeypatch: pytest.MonkeyPatch, api: str) -> None:
    conn = json.loads(emulator.airflow_conn)
    conn["extra"]["api"] = api
    monkeypatch.setenv("AIRFLOW_CONN_MTP_DEFAULT", json.dumps(conn))


def fetch(incident_id: str) -> dict[str, Any]:
    return MTPHook().get_incident(incident_id, include_alerts=False)


# dag.test ----------------------------------------------------------------------------------------


def test_operators_and_link_in_a_dag_fed_by_the_sensor(emulator: DefenderEmulator) -> None:
    target = emulator.put_incidents({"displayName": "to triage", "customTags": ["existing", "Airflow"]})[0]
    found = emulator.put_incidents(
        {"displayName": "seen 1", "customTags": ["triage"], "lastUpdateDateTime": "2026-06-01T00:10:00Z"},
        {"displayName": "seen 2", "customTags": ["triage"], "lastUpdateDateTime": "2026-06-01T00:20:00Z"},
    )
    conf = {
        "incident_id": target["id"],
        "tag": "ir-42",
        "start": "2026-06-01T00:00:00Z",
        "end": "2026-06-01T01:00:00Z",
    }

    run = load_dag("incidents_operators").test(run_conf=conf)

    assert {(ti.task_id, ti.map_index): str(ti.state) for ti in task_instances(run)} == {
        ("update", -1): "success",
        ("found", -1): "success",
        ("comment", 0): "success",
        ("comment", 1): "success",
    }
    updated = fetch(target["id"])
    assert updated["status"] == "inProgress"
    assert updated["assignedTo"] == "soc@contoso.com"
    assert (updated["classification"], updated["determination"]) == ("truePositive", "malware")
    assert updated["customTags"] == ["existing", "Airflow", "ir-42"], "merged, not replaced (any case)"
    marker = f"[airflow:incidents_operators/update/{run.run_id}#-1]"
    assert comments_with(updated, marker) == [f"Triaged by incidents_operators {marker}"]

    summary = xcom(run, "update")
    assert summary["id"] == target["id"]
    assert summary["status"] == "inProgress"
    assert summary["last_update"] == updated["lastUpdateDateTime"]
    url = f"{PORTAL}/{target['id']}?tid={emulator.tenant_id}"
    assert xcom(run, "update", key=INCIDENT_URL_XCOM_KEY) == url
    # What the UI shows: the worker stored get_link()'s answer under the link's own key.
    assert xcom(run, "update", key=DefenderIncidentLink().xcom_key) == url

    # The sensor's summaries fed the mapped comment operator, one marker per map index.
    for index, incident in enumerate(found):
        marker = f"[airflow:incidents_operators/comment/{run.run_id}#{index}]"
        assert comments_with(fetch(incident["id"]), marker) == [f"Seen by Airflow {marker}"]
        assert xcom(run, "comment", map_index=index)["id"] == incident["id"]
        assert xcom(run, "comment", key=DefenderIncidentLink().xcom_key, map_index=index).endswith(
            f"/incidents/{incident['id']}?tid={emulator.tenant_id}"
        )


@pytest.mark.parametrize("api", ["graph", "legacy"])
def test_a_retried_update_posts_its_comment_once(
    emulator: DefenderEmulator, monkeypatch: pytest.MonkeyPatch, api: str
) -> None:
    use_back_end(emulator, monkeypatch, api)
    incident = emulator.put_incidents({"displayName": "retry me"})[0]

    run = load_dag("incidents_operator_retry").test(run_conf={"incident_id": incident["id"]})

    (ti,) = task_instances(run)
    assert (str(ti.state), ti.try_number) == ("success", 2), "try 1 crashed after the comment; try 2 passed"
    after = fetch(incident["id"])
    marker = f"[airflow:incidents_operator_retry/resolve/{run.run_id}#-1]"
    assert comments_with(after, marker) == [f"Closed by Airflow {marker}"]
    assert (after["status"], after["classification"], after["determination"]) == (
        "resolved",
        "falsePositive",
        "clean",
    )
    requests = emulator.stats()["requests"]
    if api == "graph":
        assert requests["POST /v1.0/security/incidents/{incident_id}/comments"] == {"200": 1}
        assert requests["PATCH /v1.0/security/incidents/{incident_id}"] == {"200": 2}
    else:
        # The legacy API adds comments through the PATCH: one with the comment, one without.
        assert requests["PATCH /api/incidents/{incident_id}"] == {"200": 2}


# Direct calls -------------------------------------------------------------------------------------


def context(task_id: str = "op", run_id: str = "manual__1", map_index: int = -1) -> dict[str, Any]:
    pushed: dict[str, Any] = {}
    ti = SimpleNamespace(
        dag_id="d",
        task_id=task_id,
        run_id=run_id,
        map_index=map_index,
        xcom_push=lambda key, value: pushed.__setitem__(key, value),
        pushed=pushed,
    )
    return {"ti": ti}


def test_the_same_task_instance_comments_once_another_run_again(emulator: DefenderEmulator) -> None:
    incident = emulator.put_incidents({"displayName": "twice"})[0]
    operator = AddIncidentCommentOperator(task_id="op", incident_id=incident["id"], comment="hello")
    first = context()
    operator.execute(first)  # type: ignore[arg-type]
    operator.execute(context())  # type: ignore[arg-type]
    operator.execute(context(run_id="manual__2"))  # type: ignore[arg-type]
    comments = [c["comment"] for c in fetch(incident["id"])["comments"]]
    assert comments == ["hello [airflow:d/op/manual__1#-1]", "hello [airflow:d/op/manual__2#-1]"]
    assert first["ti"].pushed == {
        INCIDENT_URL_XCOM_KEY: f"{PORTAL}/{incident['id']}?tid={emulator.tenant_id}"
    }


def test_tags_replace_unless_add_tags(emulator: DefenderEmulator) -> None:
    incident = emulator.put_incidents({"customTags": ["a", "b"]})[0]
    UpdateIncidentOperator(task_id="op", incident_id=incident["id"], tags=["b", "c"]).execute(context())  # type: ignore[arg-type]
    assert fetch(incident["id"])["customTags"] == ["b", "c"]
    summary = UpdateIncidentOperator(
        task_id="op", incident_id=incident["id"], tags="D", add_tags=True, assigned_to=""
    ).execute(context())  # type: ignore[arg-type]
    after = fetch(incident["id"])
    assert after["customTags"] == ["b", "c", "D"]
    assert after["assignedTo"] in (None, "")
    assert summary["last_update"] == after["lastUpdateDateTime"]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"status": "closed"}, "Invalid incident status 'closed'"),
        ({"classification": "maybe", "comment": "x"}, "Invalid classification 'maybe'"),
        ({"determination": "aliens"}, "Invalid determination 'aliens'"),
        ({"tags": [1, 2]}, "tags must be a list of strings"),
        ({"comment": "   "}, "nothing to do"),
        ({}, "nothing to do"),
        ({"incident_id": "", "status": "active"}, "incident_id must name an incident"),
    ],
)
def test_values_are_checked_before_any_call(
    emulator: DefenderEmulator, kwargs: dict[str, Any], match: str
) -> None:
    kwargs.setdefault("incident_id", "1001")
    with pytest.raises(MTPConfigError, match=match):
        UpdateIncidentOperator(task_id="op", **kwargs).execute(context())  # type: ignore[arg-type]
    assert emulator.stats()["requests"] == {}


def test_templated_fields_and_link_are_declared() -> None:
    assert UpdateIncidentOperator.template_fields == (
        "incident_id",
        "status",
        "assigned_to",
        "classification",
        "determination",
        "tags",
        "comment",
    )
    assert AddIncidentCommentOperator.template_fields == UpdateIncidentOperator.template_fields
    (link,) = UpdateIncidentOperator.operator_extra_links
    assert isinstance(link, DefenderIncidentLink)
    assert link.name == "Defender incident"
