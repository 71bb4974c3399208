"""The example DAGs on a real Airflow: triggered through the REST API as the UI does, run by a real scheduler.

The stack (``conftest.py``, :mod:`tests.e2e.harness`) is an api-server, scheduler, triggerer and
dag-processor on loopback with the Defender emulator behind ``mtp_default``. The module fixture
starts all four example DAGs at once, so their runs overlap on the 2-core machine instead of
queueing one after another, and each test then waits (bounded) for its own run and checks what it
left behind: files, incidents in the emulator, the webhook sink, the triggerer's log.
"""

from __future__ import annotations

import csv
import importlib.util
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest

from airflow_provider_mtp.evidence import evidence_of
from airflow_provider_mtp.triage_review import LEAVE_FOR_LATER
from tests.e2e.harness import DAGS_FOLDER, AirflowStack, wait_for

pytestmark = pytest.mark.e2e

ENRICHMENT = "mtp_scheduled_enrichment"
TRIAGE = "mtp_incident_triage"
ADHOC = "mtp_adhoc_hunt"
EVENTS = "mtp_incident_events"
ALERTS = "mtp_alert_enrichment"

#: The triage DAG's file: the test reads the sensor's filters and the tag from it, not a copy.
TRIAGE_FILE = DAGS_FOLDER / "mtp_incident_triage.py"
#: The alert enrichment DAG's file: the test reads its KNOWN_BENIGN rule and comment prefix from it.
ALERTS_FILE = DAGS_FOLDER / "mtp_alert_enrichment.py"
#: What the alert run's analyst picks (a label of triage_review.DECISIONS), and what it sets.
ALERT_CHOICE = "True positive: malware"
ALERT_CHOICE_VALUES = ("truePositive", "malware")
#: A device the seeded tenant has events for, and the form values of the ad-hoc run.
ADHOC_CONF = {
    "query": "device_process_events",
    "lookback_hours": 48,
    "device_name": "ws-hr-04",
    "account_name": "",
}

#: Upper bounds for a run on the 2-core machine while the other DAGs run too (typical: 30-120 s).
RUN_TIMEOUT_S = 240.0
TRIAGE_TIMEOUT_S = 300.0
#: The watcher's trigger starts at the dag-processor's next parse after the unpause (10 s here).
WATCHER_TIMEOUT_S = 90.0


@dataclass
class Started:
    """What the module fixture started: run ids, and what it staged in the emulator."""

    runs: dict[str, dict[str, Any]]
    #: The incident moved into the triage run's window, so the run has one to triage.
    triage_incident: str
    #: The incident created after the watcher started, for the event-driven run.
    event_incident: dict[str, Any]
    #: The alerts made in the alert run's window: ``{"benign": id, "review": id}``.
    alerts: dict[str, str]


def _instant(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _graph_time(when: datetime) -> str:
    """Graph's timestamp format: 7 fractional digits, ``Z``."""
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f") + "0Z"


def _local(uri: str) -> Path:
    """A ``file://`` URI (the DAGs' output root) as a local path."""
    return Path(urlparse(uri).path) if uri.startswith("file://") else Path(uri)


def _device_of(incident: dict[str, Any]) -> str | None:
    for alert in incident.get("alerts") or ():
        for evidence in alert.get("evidence") or ():
            if str(evidence.get("@odata.type", "")).endswith("deviceEvidence") and evidence.get("hostName"):
                return str(evidence["hostName"])
    return None


@dataclass(frozen=True)
class TriagePolicy:
    """What the triage DAG's sensor asks and what it tags, read from the DAG file."""

    statuses: tuple[str, ...]
    severities: tuple[str, ...]
    lag: timedelta
    max_incidents: int
    tag: str

    def matches(self, incident: dict[str, Any]) -> bool:
        return incident["status"] in self.statuses and incident["severity"] in self.severities


def _names(value: str | list[str] | tuple[str, ...]) -> tuple[str, ...]:
    return (value,) if isinstance(value, str) else tuple(value)


def _example(path: Path) -> Any:
    """An example DAG file's module, loaded from the file itself."""
    spec = importlib.util.spec_from_file_location(f"e2e_{path.stem}", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def triage_policy() -> TriagePolicy:
    module = _example(TRIAGE_FILE)
    sensor = module.dag.get_task("wait_for_incidents")
    return TriagePolicy(
        statuses=_names(sensor.status),
        severities=_names(sensor.severity),
        lag=sensor.lag,
        max_incidents=sensor.max_incidents,
        tag=module.TRIAGE_TAG,
    )


def _stage_triage_incident(stack: AirflowStack, policy: TriagePolicy) -> str:
    """Give the triage run's window an endpoint incident: a seeded one, updated just before its end.

    The seeded tenant's incidents are spread over its history; this makes the window's answer
    certain (a live tenant would update an incident the same way).
    """
    start, end = (when - policy.lag for when in stack.last_data_hour())
    stamp = end - timedelta(minutes=1)
    candidates = [
        incident
        for incident in stack.incidents({"$expand": "alerts", "$top": "50"})
        if policy.matches(incident) and _device_of(incident) and _instant(incident["createdDateTime"]) < stamp
    ]
    assert candidates, (
        f"the seeded tenant has no incident naming a device that the triage sensor wants: {policy}"
    )
    chosen = candidates[0]["id"]
    stack.emulator.put_incidents({"id": chosen, "lastUpdateDateTime": _graph_time(stamp)})

    in_window = [
        incident
        for incident in stack.incidents({})
        if policy.matches(incident) and start <= _instant(incident["lastUpdateDateTime"]) < end
    ]
    assert 1 <= len(in_window) <= policy.max_incidents, (
        f"{len(in_window)} incidents in the triage window [{start}, {end}): the run would fail or skip"
    )
    return str(chosen)


@pytest.fixture(scope="module")
def alert_example() -> Any:
    """The alert enrichment DAG's module (its sensor, ``KNOWN_BENIGN`` and ``COMMENT_PREFIX``)."""
    return _example(ALERTS_FILE)


def _stage_alerts(stack: AirflowStack, example: Any) -> dict[str, str]:
    """Give the alert run's window two new alerts on devices: one its KNOWN_BENIGN table closes, one to review.

    Made from seeded alerts (title, detector, evidence, activity) as medium-severity alerts in new
    incidents, updated just before the window's end: medium, so the triage run (high incidents)
    does not see their incidents.
    """
    sensor = example.dag.get_task("wait_for_alerts")
    stamp = stack.last_data_hour()[1] - sensor.lag - timedelta(minutes=1)
    on_devices = [
        alert
        for alert in stack.graph("GET", "alerts_v2", params={"$top": "1000"})["value"]
        if evidence_of(alert).device_names and _instant(alert["createdDateTime"]) < stamp
    ]
    benign = next((alert for alert in on_devices if example.known_benign(alert)), None)
    other = next((alert for alert in on_devices if not example.known_benign(alert)), None)
    assert benign is not None, "the seeded tenant has no alert on a device that KNOWN_BENIGN closes"
    assert other is not None, "the seeded tenant has no other alert on a device"
    copied = ("title", "description", "category", "serviceSource", "detectionSource", "evidence")
    made = stack.emulator.put_alerts(
        *(
            {
                **{name: seed[name] for name in copied},
                "firstActivityDateTime": seed["firstActivityDateTime"],
                "lastActivityDateTime": seed["lastActivityDateTime"],
                "createdDateTime": seed["createdDateTime"],
                "severity": "medium",
                "status": "new",
                "lastUpdateDateTime": _graph_time(stamp),
            }
            for seed in (benign, other)
        )
    )
    return {"benign": made[0]["id"], "review": made[1]["id"]}


def _put_event_incident(stack: AirflowStack) -> dict[str, Any]:
    """Wait for the AssetWatcher's trigger to run in the triggerer, then create an incident it watches."""
    triggerer_log = stack.log_path("triggerer")

    def watching() -> bool:
        stack.check_alive()
        return "Watching incidents updated from" in triggerer_log.read_text(errors="replace")

    wait_for(
        watching,
        timeout=WATCHER_TIMEOUT_S,
        what=f"the {EVENTS} AssetWatcher's IncidentEventTrigger to start in the triggerer",
        explain=lambda: stack.logs("triggerer", "dag-processor"),
    )
    # Stamped with the wall clock: the watcher fires for updates from when it started (not the
    # emulator's frozen data clock, which stays at the start of the hour).
    (incident,) = stack.emulator.put_incidents(
        {
            "displayName": "E2E: ransomware behaviour on ws-e2e-01",
            "severity": "high",
            "status": "active",
            "lastUpdateDateTime": _graph_time(datetime.now(UTC)),
        }
    )
    return incident


@pytest.fixture(scope="module")
def started(stack: AirflowStack, triage_policy: TriagePolicy, alert_example: Any) -> Started:
    """Every example DAG started once, their runs overlapping."""
    # First: the watcher's trigger is registered only when the dag-processor parses the DAG unpaused.
    stack.unpause(EVENTS)
    triage_incident = _stage_triage_incident(stack, triage_policy)
    alerts = _stage_alerts(stack, alert_example)
    runs: dict[str, dict[str, Any]] = {}
    # Hourly DAGs: the last full hour, triggered while paused, then unpaused (see
    # AirflowStack.trigger_interval): the scheduler takes it as its run for that hour.
    for dag_id in (TRIAGE, ENRICHMENT, ALERTS):
        runs[dag_id] = stack.trigger_interval(dag_id, stack.last_data_hour())
        stack.unpause(dag_id)
    # The ad-hoc DAG (schedule=None), as the trigger form posts it: unpause, then the run with conf.
    stack.unpause(ADHOC)
    runs[ADHOC] = stack.trigger(ADHOC, logical_date=datetime.now(UTC), conf=ADHOC_CONF)
    return Started(
        runs=runs,
        triage_incident=triage_incident,
        event_incident=_put_event_incident(stack),
        alerts=alerts,
    )


def test_scheduled_enrichment_hunts_its_data_interval(stack: AirflowStack, started: Started) -> None:
    run = stack.wait_run(ENRICHMENT, started.runs[ENRICHMENT]["dag_run_id"], timeout=RUN_TIMEOUT_S)

    manifest = stack.xcom(ENRICHMENT, run["dag_run_id"], "hunt_process_events")
    # The hunt asked exactly the run's one-hour data interval.
    assert _instant(manifest["window"]["start"]) == _instant(run["data_interval_start"])
    assert _instant(manifest["window"]["end"]) == _instant(run["data_interval_end"])
    assert _instant(run["data_interval_end"]) - _instant(run["data_interval_start"]) == timedelta(hours=1)
    output = _local(manifest["path"])
    assert output.is_file(), manifest
    rows = [json.loads(line) for line in output.read_text().splitlines()]
    assert manifest["rows"] == len(rows) > 0
    start, end = _instant(run["data_interval_start"]), _instant(run["data_interval_end"])
    assert all(start <= _instant(row["Timestamp"]) < end for row in rows)

    summary = stack.xcom(ENRICHMENT, run["dag_run_id"], "per_device")
    per_device = json.loads(_local(summary["path"]).read_text())
    assert sum(device["processes"] for device in per_device["devices"].values()) == len(rows)
    assert summary["devices"] == len(per_device["devices"]) > 0


def test_incident_triage_defers_to_the_triggerer_and_updates_incidents(
    stack: AirflowStack, started: Started, triage_policy: TriagePolicy
) -> None:
    run_id = started.runs[TRIAGE]["dag_run_id"]
    # The run asks an analyst per incident (HITL); answered here through the REST API the UI's
    # form calls, "Leave for later" (test_browser.py answers a review in the UI itself).
    _, reviews = stack.wait_run_answering(TRIAGE, run_id, LEAVE_FOR_LATER, timeout=TRIAGE_TIMEOUT_S)

    # The sensor deferred on the worker, and its IncidentTrigger ran in the triggerer process,
    # which writes a trigger's log next to the task's (attempt=N.log.trigger.<trigger id>.log).
    sensor_logs = stack.task_log_folder(TRIAGE, run_id, "wait_for_incidents")
    assert "Pausing task as DEFERRED" in (sensor_logs / "attempt=1.log").read_text()
    trigger_logs = sorted(sensor_logs.glob("attempt=1.log.trigger.*.log"))
    assert trigger_logs, f"no trigger log under {sensor_logs}: {sorted(sensor_logs.iterdir())}"
    trigger_log = trigger_logs[0].read_text()
    assert "airflow_provider_mtp.triggers.incidents.IncidentTrigger" in trigger_log
    assert "triggerer_job_runner.py" in trigger_log  # written by the triggerer's runner
    assert "Trigger fired event" in trigger_log
    assert "TriggerEvent<{'status': 'success'" in trigger_log

    # The webhook got this run's JSON summary (a later hour's scheduled run may post its own).
    posted = [
        body
        for body in stack.webhook.json_bodies()
        if isinstance(body, dict)
        and started.triage_incident in {item.get("id") for item in body.get("incidents", ())}
    ]
    assert len(posted) == 1, stack.webhook.received
    summary = posted[0]
    assert "incident(s) tagged and commented" in summary["text"]
    assert {r["path"] for r in stack.webhook.received} == {urlparse(stack.webhook.url).path}
    # Every incident the run triaged got the tag and one comment marked with this run.
    triaged = {item["id"] for item in summary["incidents"]}
    # ... and one review, whose subject names it; left for later, nobody classified it.
    assert len(reviews) == len(triaged), reviews
    assert {review["subject"].split(" ")[1] for review in reviews} == triaged
    assert "classified by an analyst" in summary["text"]
    assert summary["text"].count(" 0 classified by an analyst") == 1, summary["text"]
    for incident_id in triaged:
        incident = stack.graph("GET", f"incidents/{incident_id}")
        assert triage_policy.tag in incident["customTags"], incident
        marked = [
            comment
            for comment in incident["comments"]
            if comment["comment"].startswith("Airflow triage:") and f"/{run_id}#" in comment["comment"]
        ]
        assert len(marked) == 1, incident["comments"]
    for item in summary["incidents"]:
        timeline = _local(item["timeline_path"])
        assert timeline.is_file()
        assert item["timeline_rows"] == len(timeline.read_text().splitlines())
    # The seeded devices have events around their alerts: the mapped hunts found some.
    assert sum(item["timeline_rows"] for item in summary["incidents"]) > 0, summary


def test_alert_enrichment_comments_closes_the_benign_and_asks_the_analyst(
    stack: AirflowStack, started: Started, alert_example: Any
) -> None:
    run_id = started.runs[ALERTS]["dag_run_id"]
    # One review per alert not closed as benign, answered through the REST API the UI's form calls.
    _, reviews = stack.wait_run_answering(ALERTS, run_id, ALERT_CHOICE, timeout=TRIAGE_TIMEOUT_S)
    sensor_logs = stack.task_log_folder(ALERTS, run_id, "wait_for_alerts")
    assert "Pausing task as DEFERRED" in (sensor_logs / "attempt=1.log").read_text()

    targets = {target["alert_id"]: target for target in stack.xcom(ALERTS, run_id, "find_devices")}
    assert set(started.alerts.values()) <= set(targets), targets
    for index, alert_id in enumerate(targets):
        alert = stack.graph("GET", f"alerts_v2/{alert_id}")
        ours = [
            c["comment"] for c in alert["comments"] if c["comment"].startswith(alert_example.COMMENT_PREFIX)
        ]
        assert len(ours) == 1, alert["comments"]
        assert f"/update_alert/{run_id}#{index} " in ours[0]
        # The mapped hunt wrote its counts where the comment says.
        hunt = stack.xcom(ALERTS, run_id, "device_activity", map_index=index)
        assert _local(hunt["path"]).is_file()
        assert hunt["path"] in ours[0]

    benign = stack.graph("GET", f"alerts_v2/{started.alerts['benign']}")
    assert (benign["status"], benign["classification"], benign["determination"]) == (
        "resolved",
        "informationalExpectedActivity",
        alert_example.known_benign(benign).determination.value,
    )
    reviewed = {review["subject"].split(" ")[1] for review in reviews}
    assert reviewed == {alert_id for alert_id, target in targets.items() if not target["known_benign"]}
    chosen = stack.graph("GET", f"alerts_v2/{started.alerts['review']}")
    assert (chosen["classification"], chosen["determination"]) == ALERT_CHOICE_VALUES
    assert any(
        c["comment"].startswith(f"Airflow review: {ALERT_CHOICE}, chosen by ") for c in chosen["comments"]
    )


def test_adhoc_hunt_runs_with_the_form_values(stack: AirflowStack, started: Started) -> None:
    run = stack.wait_run(ADHOC, started.runs[ADHOC]["dag_run_id"], timeout=RUN_TIMEOUT_S)
    assert run["conf"] == ADHOC_CONF

    summary = stack.xcom(ADHOC, run["dag_run_id"], "summarize")
    output = _local(summary["path"])
    assert output.name.startswith("device_process_events-")
    assert output.suffix == ".csv"
    with output.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert summary["rows"] == len(rows) > 0
    assert {"Timestamp", "DeviceName"} <= set(summary["columns"]), summary["columns"]
    device = ADHOC_CONF["device_name"]
    assert all(row["DeviceName"].lower().split(".")[0] == device for row in rows), {
        row["DeviceName"] for row in rows
    }


def test_incident_event_starts_the_event_driven_dag(stack: AirflowStack, started: Started) -> None:
    incident = started.event_incident
    seen: dict[str, Any] = {}

    def handled_by_a_run() -> dict[str, Any] | None:
        """The asset-triggered run that handled the incident, once it succeeded."""
        stack.check_alive()
        for run in stack.runs(EVENTS):
            if run["run_type"] != "asset_triggered":
                continue
            seen[run["dag_run_id"]] = run["state"]
            if run["state"] == "failed":
                raise AssertionError(f"{EVENTS} run failed:\n{stack.describe_run(EVENTS, run['dag_run_id'])}")
            if run["state"] == "success":
                result = stack.xcom(EVENTS, run["dag_run_id"], "handle_updates")
                if any(key.split("@", 1)[0] == incident["id"] for key in result["handled"]):
                    return {**run, "result": result}
        return None

    run = wait_for(
        handled_by_a_run,
        timeout=RUN_TIMEOUT_S,
        what=f"a successful asset-triggered run of {EVENTS} handling incident {incident['id']}",
        explain=lambda: f"asset-triggered runs seen: {seen}\n{stack.logs('triggerer', 'scheduler')}",
        interval=2.0,
    )
    assert run["result"]["duplicates"] == 0, run["result"]
    # The event came from the watcher's trigger in the triggerer process.
    assert "new incident update(s) since" in stack.log_path("triggerer").read_text()


def test_no_process_died(stack: AirflowStack) -> None:
    """Every Airflow process the stack started is still running after the runs."""
    stack.check_alive()
