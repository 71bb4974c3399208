"""The example DAGs parse offline and follow the project's rules; ``python -m demo`` runs them all.

The parse tests need no connection, no database and no network: a socket that tries to connect
while the DAG files are parsed fails the import. The demo test (slow, about two minutes) runs the
real driver in a subprocess with its own Airflow home and checks the figures it wrote.
"""

from __future__ import annotations

import ast
import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "example_dags"
EXPECTED = {
    "mtp_scheduled_enrichment",
    "mtp_incident_triage",
    "mtp_adhoc_hunt",
    "mtp_incident_events",
    "mtp_alert_enrichment",
}
HUNTING_POOL = "mtp_hunting"


def _no_network(*args: Any, **kwargs: Any) -> None:
    raise AssertionError("a DAG file opened a network connection while being parsed")


@pytest.fixture(scope="module")
def dagbag() -> Any:
    """The example DAGs, parsed with no connection defined and the network cut off."""
    from airflow.dag_processing.dagbag import DagBag

    saved = {name: os.environ.pop(name) for name in list(os.environ) if name.startswith("AIRFLOW_CONN_")}
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(socket.socket, "connect", _no_network)
        patch.setattr(socket, "create_connection", _no_network)
        bag = DagBag(dag_folder=EXAMPLES)
    os.environ.update(saved)
    return bag


def test_every_example_dag_parses_offline(dagbag: Any) -> None:
    assert dagbag.import_errors == {}
    assert set(dagbag.dag_ids) == EXPECTED


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.py")), ids=lambda path: path.name)
def test_every_example_dag_file_explains_itself(path: Path) -> None:
    docstring = ast.get_docstring(ast.parse(path.read_text())) or ""
    for section in ("What it does", "Why it is written this way", "How to run it"):
        assert section in docstring, f"{path.name}: the docstring lacks {section!r}"
    assert "mtp_default" in docstring, f"{path.name}: the docstring does not name the connection"


def test_scheduled_dags_have_real_data_intervals(dagbag: Any) -> None:
    """A trigger timetable (plain cron or timedelta on Airflow 3) would give zero-width windows."""
    import pendulum
    from airflow.sdk import CronDataIntervalTimetable, DeltaDataIntervalTimetable
    from airflow.serialization.encoders import coerce_to_core_timetable

    kinds = {dag_id: type(dag.timetable).__name__ for dag_id, dag in dagbag.dags.items()}
    assert kinds["mtp_adhoc_hunt"] == "NullTimetable"
    assert kinds["mtp_incident_events"] == "AssetTriggeredTimetable"
    for dag_id in ("mtp_scheduled_enrichment", "mtp_incident_triage", "mtp_alert_enrichment"):
        timetable = dagbag.dags[dag_id].timetable
        assert isinstance(timetable, CronDataIntervalTimetable | DeltaDataIntervalTimetable)
        # What the scheduler makes of it: a manual run at 16:30 covers the last full hour.
        interval = coerce_to_core_timetable(timetable).infer_manual_data_interval(
            run_after=pendulum.datetime(2026, 11, 20, 16, 30, tz="UTC")
        )
        assert (interval.start, interval.end) == (
            pendulum.datetime(2026, 11, 20, 15, tz="UTC"),
            pendulum.datetime(2026, 11, 20, 16, tz="UTC"),
        )


def _operator_class(task: Any) -> type:
    # A mapped task keeps the class it expands into.
    return task.operator_class if hasattr(task, "operator_class") else type(task)


def test_hunting_tasks_share_the_hunting_pool(dagbag: Any) -> None:
    from airflow_provider_mtp.operators.hunting import RunHuntingQueryOperator

    hunting = {
        (dag.dag_id, task.task_id): task.pool
        for dag in dagbag.dags.values()
        for task in dag.tasks
        if issubclass(_operator_class(task), RunHuntingQueryOperator)
    }
    assert {key[0] for key in hunting} == EXPECTED - {"mtp_incident_events"}
    assert set(hunting.values()) == {HUNTING_POOL}, hunting


def test_form_values_reach_kql_only_as_parameters(dagbag: Any) -> None:
    dag = dagbag.dags["mtp_adhoc_hunt"]
    hunt = dag.get_task("hunt")
    saved = dag.user_defined_macros["saved_queries"]
    assert dag.params.get_param("query").schema["enum"] == sorted(saved)
    assert hunt.query == "{{ saved_queries[params.query] }}"
    assert all("{{" not in query and "params" not in query for query in saved.values())
    assert set(hunt.query_parameters) == {"device", "account", "lookback_hours", "until"}
    assert hunt.parameter_types == {"lookback_hours": "long", "until": "datetime"}


def test_triage_passes_the_device_as_a_parameter(dagbag: Any) -> None:
    timeline = dagbag.dags["mtp_incident_triage"].get_task("device_timeline")
    query = timeline.partial_kwargs["query"]
    assert "{{" not in query
    assert "WindowStart" in query
    assert "DeviceName =~ device" in query
    assert timeline.partial_kwargs["split_on_limit"] is True


def test_alert_enrichment_passes_the_device_as_a_parameter(dagbag: Any) -> None:
    dag = dagbag.dags["mtp_alert_enrichment"]
    query = dag.get_task("device_activity").partial_kwargs["query"]
    assert "{{" not in query
    assert "WindowStart" in query
    assert "DeviceName =~ device" in query
    sensor = dag.get_task("wait_for_alerts")
    assert sensor.deferrable is True
    assert (sensor.status, sensor.severity) == ("new", ["high", "medium"])


def test_event_dag_is_started_by_the_incident_event_trigger(dagbag: Any) -> None:
    from airflow.sdk import Asset

    from airflow_provider_mtp.triggers.incidents import IncidentEventTrigger

    condition = dagbag.dags["mtp_incident_events"].timetable.asset_condition
    assets = [item for item in condition.objects if isinstance(item, Asset)]
    watchers = [watcher for asset in assets for watcher in asset.watchers]
    assert len(watchers) == 1
    assert isinstance(watchers[0].trigger, IncidentEventTrigger)
    assert watchers[0].trigger.serialize()[1]["start"] is None  # constant kwargs: no "now" in them


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_demo_runs_every_pipeline(tmp_path: Path) -> None:
    env = {name: value for name, value in os.environ.items() if not name.startswith(("AIRFLOW", "MTP_"))}
    done = subprocess.run(
        [sys.executable, "-m", "demo", "--workdir", str(tmp_path)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=840,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert len(done.stdout.splitlines()) <= 20, done.stdout
    summary = json.loads((tmp_path / "demo-output" / "summary.json").read_text())
    hunt, triage, adhoc, events = (summary[key] for key in ("enrichment", "triage", "adhoc", "events"))
    assert hunt["rows"] > 0
    assert hunt["devices"] > 0
    assert triage["incidents"] > 0
    assert triage["timeline_rows"] > 0
    assert triage["commented"] == triage["tagged"] == triage["incidents"] == triage["timelines"]
    assert triage["classified"] > 0
    # Every triaged incident got a review (HITL), answered by the demo's analyst, applied as chosen.
    assert triage["reviews"]["answered"] == triage["classified"] == triage["incidents"]
    assert triage["webhook_messages"] == 1
    assert adhoc["rows"] > 0
    assert adhoc["columns"] == 7
    assert events["handled"] == 1
    assert events["event"]["id"] == triage["first"]["id"]
    # The alert enrichment, read back from the emulator: every hunted alert commented once, the
    # known-benign one(s) closed, the rest reviewed and classified as the demo's analyst chose.
    alerts = summary["alerts"]
    assert alerts["hunted"] == alerts["commented"] >= len(alerts["touched"]) == 3
    assert alerts["benign"] >= 1
    assert alerts["analyst"] == alerts["reviews"] == alerts["hunted"] - alerts["benign"] > 0
    assert len(list((tmp_path / alerts["folder"]).rglob("*.jsonl"))) == alerts["hunted"]
    for key in (hunt["file"], hunt["per_device"], adhoc["file"]):
        assert (tmp_path / key).is_file(), key
    assert len(list((tmp_path / triage["folder"]).rglob("*.jsonl"))) == triage["incidents"]
    assert (tmp_path / "airflow-home" / "airflow.db").is_file()
