"""Crash tests on the compose stack run as processes: nothing lost, nothing written twice.

One stack for the module (:func:`tests.stack.crash_support.crash_stack`: the compose file's
services, 2 Celery workers, short failure timeouts); each test crashes one part of it, checks
what the DAGs delivered against what they should have, prints the counts line
(``<crash>: expected=E delivered=D missed=M duplicated=X``) and leaves the stack healthy again:

* a Celery worker SIGKILLed in the middle of a split hunt;
* Postgres frozen (SIGSTOP) for 20 s while two hunts run;
* the scheduler SIGKILLed during a run of the triage example;
* the triggerer restarted while :data:`SENSORS` IncidentSensors are deferred and the event
  example's ``IncidentEventTrigger`` watches.
"""

from __future__ import annotations

import os
import signal
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from airflow_provider_mtp.triage_review import LEAVE_FOR_LATER
from tests.e2e.harness import StackError, load_example, wait_for
from tests.stack.crash_support import (
    Counts,
    crash_stack,
    graph_time,
    hunt_faults,
    instant,
    leftovers,
    load_hunt_rows,
    local_path,
    output_uri,
    report_ids,
)
from tests.stack.harness import ComposeStack

# The crash and quota runs take about 15 minutes together: `make test-stack`, not `make test`.
pytestmark = [pytest.mark.stack, pytest.mark.cluster]

HUNT = "stack_crash_hunt"
SENSORS_DAG = "stack_crash_sensors"
TRIAGE = "mtp_incident_triage"
EVENTS = "mtp_incident_events"
#: Rows each crash hunt returns: 4 pieces of a day once split.
HUNT_ROWS = 30_000
#: Seconds the emulator holds each hunting call, so a crash lands between pieces.
PIECE_DELAY_S = 6.0
#: Deferred IncidentSensors during the triggerer restart (issue 12 asks for 200).
SENSORS = int(os.environ.get("MTP_CRASH_SENSORS", "200"))
#: Seconds Postgres stays frozen.
POSTGRES_PAUSE_S = 20.0
RUN_TIMEOUT_S = 600.0
#: Seconds for the event example to handle every watched update (it polls every 5 s).
EVENTS_TIMEOUT_S = 180.0
#: 200 sensors each start on a worker, defer, and come back to finish: two task starts each.
SENSORS_TIMEOUT_S = 300.0 + 6.0 * SENSORS


@pytest.fixture(scope="module")
def stack() -> Iterator[ComposeStack]:
    with crash_stack() as running:
        yield running


@pytest.fixture(autouse=True)
def _healthy_after(stack: ComposeStack) -> Iterator[None]:
    """Each test starts and ends with every service up and no fault left in the emulator."""
    stack.check_alive()
    yield
    stack.emulator.clear_faults()
    stack.check_alive()


def _task_instances(stack: ComposeStack, dag_id: str, run_id: str, task_id: str) -> list[dict[str, Any]]:
    """Every instance of one (mapped) task of a run, all pages."""
    found: list[dict[str, Any]] = []
    while True:
        page = stack.api(
            "GET",
            f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances",
            params={"task_id": task_id, "limit": 100, "offset": len(found), "order_by": "map_index"},
        )["task_instances"]
        found += page
        if len(page) < 100:
            return found


def _wait_ended(stack: ComposeStack, dag_id: str, run_id: str, timeout: float) -> dict[str, Any]:
    """Wait for the run to end, success or failure (a crash may fail it cleanly)."""
    last: dict[str, Any] = {}

    def ended() -> dict[str, Any] | None:
        last.update(stack.run(dag_id, run_id))
        return dict(last) if last["state"] in ("success", "failed") else None

    return wait_for(
        ended,
        timeout=timeout,
        what=f"{dag_id} run {run_id} to end",
        explain=lambda: (
            f"last state: {last.get('state')}\n{stack.describe_run(dag_id, run_id)}\n{stack.logs()}"
        ),
        interval=2.0,
    )


def _hunt_conf(start: datetime, end: datetime, prefix: str, output: str) -> dict[str, str]:
    return {"start": start.isoformat(), "end": end.isoformat(), "prefix": prefix, "output": output}


def _attempt_log(stack: ComposeStack, dag_id: str, run_id: str, task_id: str, attempt: int) -> str:
    path = stack.task_log_folder(dag_id, run_id, task_id) / f"attempt={attempt}.log"
    return path.read_text(errors="replace") if path.exists() else ""


# --------------------------------------------------------------------------------------------------
# A Celery worker SIGKILLed mid-hunt
# --------------------------------------------------------------------------------------------------


def test_worker_sigkill_mid_split_hunt(stack: ComposeStack) -> None:
    """The hunt's try dies with its worker; the retry, on the other worker, writes every row once."""
    prefix = "crash-worker"
    start, end = load_hunt_rows(stack, prefix, HUNT_ROWS)
    hunt_faults(stack, splits=3, delay_s=PIECE_DELAY_S)  # 4 pieces, 6 s each
    stack.unpause(HUNT)
    output = output_uri(stack, "worker-kill", "hunt.jsonl")
    run_id = stack.trigger_dag(HUNT, conf=_hunt_conf(start, end, prefix, output))["dag_run_id"]

    def worker_of_first_piece() -> str | None:
        tis = _task_instances(stack, HUNT, run_id, "hunt")
        if not tis:
            return None
        ti = tis[0]
        if ti["state"] in ("success", "failed", "up_for_retry"):
            raise StackError(
                f"the hunt ended before the kill: {ti['state']}\n{stack.describe_run(HUNT, run_id)}"
            )
        written = "window 1/" in _attempt_log(stack, HUNT, run_id, "hunt", 1)
        return str(ti["hostname"]) if written and ti["hostname"] else None

    victim = wait_for(
        worker_of_first_piece,
        timeout=RUN_TIMEOUT_S,
        what=f"{HUNT} run {run_id} to finish the first piece of its split hunt",
        explain=lambda: (
            f"{stack.describe_run(HUNT, run_id)}\n{stack.logs('airflow-worker-1', 'airflow-worker-2')}"
        ),
    )
    assert victim in stack.processes, f"the hunt runs on {victim!r}, not one of {sorted(stack.processes)}"
    stack.kill(victim)
    try:
        stack.wait_run(HUNT, run_id, timeout=RUN_TIMEOUT_S)
    finally:
        stack.start(victim)  # as `restart: always` would; ready for the next test
        stack.wait_healthy(victim)

    (ti,) = _task_instances(stack, HUNT, run_id, "hunt")
    assert ti["try_number"] >= 2, ti
    assert ti["hostname"] != victim, f"the retry ran on the killed worker {victim}: {ti}"
    assert "window 1/" in _attempt_log(stack, HUNT, run_id, "hunt", 1)  # the kill came mid-hunt
    path = local_path(output)
    counts = Counts.of("worker SIGKILL mid split hunt", range(HUNT_ROWS), report_ids(path)).report()
    assert (counts.missed, counts.duplicated, counts.delivered) == (0, 0, HUNT_ROWS), counts
    assert leftovers(path.parent, {path.name}) == []
    assert stack.xcom(HUNT, run_id, "hunt")["rows"] == HUNT_ROWS


# --------------------------------------------------------------------------------------------------
# Postgres frozen for 20 s
# --------------------------------------------------------------------------------------------------


def test_postgres_frozen_during_runs(stack: ComposeStack) -> None:
    """Two hunts run through a 20 s Postgres freeze: each ends complete, or failed with no file."""
    prefix = "crash-postgres"
    start, end = load_hunt_rows(stack, prefix, HUNT_ROWS)
    hunt_faults(stack, splits=2, delay_s=PIECE_DELAY_S)
    stack.unpause(HUNT)
    names = ("postgres-1.jsonl", "postgres-2.jsonl")
    runs = {
        name: stack.trigger_dag(
            HUNT, conf=_hunt_conf(start, end, prefix, output_uri(stack, "postgres", name))
        )["dag_run_id"]
        for name in names
    }

    def both_running() -> bool:
        tis = [ti for run_id in runs.values() for ti in _task_instances(stack, HUNT, run_id, "hunt")]
        return len(tis) == len(runs) and all(ti["state"] == "running" for ti in tis)

    wait_for(both_running, timeout=RUN_TIMEOUT_S, what="both hunts to be running", explain=stack.logs)
    postgres = stack.pid("postgres")
    os.killpg(postgres, signal.SIGSTOP)
    try:
        time.sleep(POSTGRES_PAUSE_S)
    finally:
        os.killpg(postgres, signal.SIGCONT)
    stack.wait_healthy("postgres")

    delivered: list[tuple[str, int]] = []
    failed: list[str] = []
    folder = local_path(output_uri(stack, "postgres", names[0])).parent
    for name, run_id in runs.items():
        run = _wait_ended(stack, HUNT, run_id, RUN_TIMEOUT_S)
        path = folder / name
        if run["state"] == "success":
            delivered += [(name, row) for row in report_ids(path)]
        else:
            # A clean failure: a stated error in the log, and no file at all.
            failed.append(f"{name}: {stack.describe_run(HUNT, run_id)}")
            assert not path.exists(), f"{run_id} failed but left {path}"
    expected = [(name, row) for name in names if (folder / name).exists() for row in range(HUNT_ROWS)]
    counts = Counts.of("postgres SIGSTOP 20 s during 2 hunts", expected, delivered).report()
    print(f"postgres SIGSTOP: {len(names) - len(failed)} run(s) succeeded, {len(failed)} failed cleanly")
    assert (counts.missed, counts.duplicated) == (0, 0), counts
    assert leftovers(folder, set(names)) == []
    assert not failed, "\n".join(failed)  # with retries on, both are expected to finish


# --------------------------------------------------------------------------------------------------
# The scheduler SIGKILLed during a triage run
# --------------------------------------------------------------------------------------------------


def _stage_triage_incident(stack: ComposeStack, sensor: Any) -> str:
    """An endpoint incident the triage sensor wants, updated just before its window's end."""
    end = stack.last_data_hour()[1] - sensor.lag
    stamp = end - timedelta(minutes=1)
    statuses = {sensor.status} if isinstance(sensor.status, str) else set(sensor.status)
    severities = {sensor.severity} if isinstance(sensor.severity, str) else set(sensor.severity)
    for incident in stack.incidents({"$expand": "alerts", "$top": "50"}):
        devices = [
            evidence
            for alert in incident.get("alerts") or ()
            for evidence in alert.get("evidence") or ()
            if str(evidence.get("@odata.type", "")).endswith("deviceEvidence") and evidence.get("hostName")
        ]
        if incident["status"] in statuses and incident["severity"] in severities and devices:
            stack.emulator.put_incidents({"id": incident["id"], "lastUpdateDateTime": graph_time(stamp)})
            return str(incident["id"])
    raise AssertionError("the seeded tenant has no incident naming a device that the triage sensor wants")


def test_scheduler_sigkill_during_triage(stack: ComposeStack) -> None:
    """The run completes after a scheduler crash; each incident gets its comment and its tag once."""
    example = load_example(TRIAGE)
    sensor = example.dag.get_task("wait_for_incidents")
    staged = _stage_triage_incident(stack, sensor)
    hunt_faults(stack, splits=0, delay_s=PIECE_DELAY_S)  # the timeline hunts last long enough to crash in
    run_id = stack.trigger_interval(TRIAGE, stack.last_data_hour())["dag_run_id"]
    stack.unpause(TRIAGE)

    def hunting() -> bool:
        if stack.run(TRIAGE, run_id)["state"] in ("success", "failed"):
            raise StackError(f"the triage run ended before the crash\n{stack.describe_run(TRIAGE, run_id)}")
        tis = stack.task_instances(TRIAGE, run_id)
        return any(ti["task_id"] == "device_timeline" and ti["state"] == "running" for ti in tis)

    wait_for(hunting, timeout=RUN_TIMEOUT_S, what=f"{TRIAGE} run {run_id} to hunt", explain=stack.logs)
    stack.kill("airflow-scheduler")
    stack.start("airflow-scheduler")
    stack.wait_healthy("airflow-scheduler")
    _, reviews = stack.wait_run_answering(TRIAGE, run_id, LEAVE_FOR_LATER, timeout=RUN_TIMEOUT_S)
    stack.api("PATCH", f"/api/v2/dags/{TRIAGE}", json={"is_paused": True})  # no later hour's run

    posted = [
        body
        for body in stack.webhook.json_bodies()
        if isinstance(body, dict) and staged in {item.get("id") for item in body.get("incidents", ())}
    ]
    assert len(posted) == 1, stack.webhook.received
    triaged = sorted(item["id"] for item in posted[0]["incidents"])
    assert triaged, posted[0]
    comments: list[str] = []
    tags: list[str] = []
    for incident_id in triaged:
        incident = stack.graph("GET", f"incidents/{incident_id}")
        comments += [
            incident_id
            for comment in incident["comments"]
            if comment["comment"].startswith("Airflow triage:") and f"/{run_id}#" in comment["comment"]
        ]
        tags += [incident_id for tag in incident["customTags"] if tag == example.TRIAGE_TAG]
    counts = Counts.of("scheduler SIGKILL during triage: comments", triaged, comments).report()
    tag_counts = Counts.of("scheduler SIGKILL during triage: tags", triaged, tags).report()
    assert (counts.missed, counts.duplicated) == (0, 0), counts
    assert (tag_counts.missed, tag_counts.duplicated) == (0, 0), tag_counts
    assert sorted(review["subject"].split(" ")[1] for review in reviews) == triaged


# --------------------------------------------------------------------------------------------------
# The triggerer restarted under deferred sensors and a watcher
# --------------------------------------------------------------------------------------------------


def _event_incident(stack: ComposeStack, label: str) -> str:
    """A new high, active incident (the event example watches those), stamped with the wall clock."""
    (incident,) = stack.emulator.put_incidents(
        {
            "displayName": f"Stack crash: {label}",
            "severity": "high",
            "status": "active",
            "lastUpdateDateTime": graph_time(datetime.now(UTC)),
        }
    )
    return _key(str(incident["id"]), str(incident["lastUpdateDateTime"]))


def _key(incident_id: str, last_update: str) -> str:
    """An update's key as the event example writes it, its time normalised (the spellings differ)."""
    return f"{incident_id}@{instant(last_update).isoformat()}"


def _watcher_story(stack: ComposeStack) -> str:
    """What the watcher logged (starts, polls, failures) and the event example's runs, for a failure."""
    log = stack.log_path("airflow-triggerer").read_text(errors="replace").splitlines()
    marks = (
        "Starting the triggerer",
        "Watching incidents",
        "new incident update",
        "Listing incidents failed",
    )
    lines = [line[:300] for line in log if any(mark in line for mark in marks)]
    runs = [f"{run['dag_run_id']}: {run['run_type']} {run['state']}" for run in stack.runs(EVENTS)]
    return "\n".join(
        ["--- the watcher in airflow-triggerer.log ---", *lines, f"--- {EVENTS} runs ---", *runs]
    )


def _handled_events(stack: ComposeStack) -> tuple[list[str], int]:
    """Every update the event example's successful runs handled, and the duplicates they skipped."""
    handled: list[str] = []
    duplicates = 0
    for run in stack.runs(EVENTS):
        if run["run_type"] == "asset_triggered" and run["state"] == "success":
            result = stack.xcom(EVENTS, run["dag_run_id"], "handle_updates")
            handled += [_key(*key.split("@", 1)) for key in result["handled"]]
            duplicates += int(result["duplicates"])
    return handled, duplicates


@dataclass(frozen=True)
class TriggererRestart:
    """What :func:`triggerer_restart` did: the sensors' run, their incidents, the watched updates."""

    run_id: str
    sensed: list[str]
    updates: dict[str, str]  # update key -> when it was made (before/during/after the restart)


@pytest.fixture(scope="module")
def triggerer_restart(stack: ComposeStack) -> TriggererRestart:
    """Restart the triggerer with :data:`SENSORS` sensors deferred and the event watcher running.

    Incidents are made before, during (no triggerer runs) and after the restart: the sensors'
    three (tagged, medium, so the watcher ignores them) while it is down, watched updates (high,
    active) at each stage.
    """
    triggerer = "airflow-triggerer"
    stack.unpause(EVENTS)
    wait_for(
        lambda: "Watching incidents updated from" in stack.log_path(triggerer).read_text(errors="replace"),
        timeout=RUN_TIMEOUT_S,
        what=f"the {EVENTS} watcher's IncidentEventTrigger to start",
        explain=lambda: stack.logs(triggerer, "airflow-dag-processor"),
    )
    tag = f"stack-crash-{uuid.uuid4().hex[:8]}"
    now = datetime.now(UTC)
    conf = {"tag": tag, "count": SENSORS, "start": (now - timedelta(minutes=10)).isoformat(),
            "end": (now + timedelta(hours=2)).isoformat()}  # fmt: skip
    stack.unpause(SENSORS_DAG)
    run_id = stack.trigger_dag(SENSORS_DAG, conf=conf)["dag_run_id"]

    def all_deferred() -> bool:
        states = [ti["state"] for ti in _task_instances(stack, SENSORS_DAG, run_id, "wait")]
        if any(state in ("failed", "upstream_failed", "success") for state in states):
            raise StackError(f"a sensor ended before the restart: {sorted(set(states))}")
        return len(states) == SENSORS and all(state == "deferred" for state in states)

    wait_for(all_deferred, timeout=SENSORS_TIMEOUT_S, what=f"{SENSORS} sensors deferred", explain=stack.logs)
    updates = {_event_incident(stack, "before the restart"): "before"}
    stack.stop(triggerer)
    try:
        sensed = stack.emulator.put_incidents(
            *(
                {"displayName": f"Stack crash sensed {n}", "severity": "medium", "status": "active",
                 "customTags": [tag], "lastUpdateDateTime": graph_time(datetime.now(UTC))}
                for n in range(3)
            )
        )  # fmt: skip
        updates.update({_event_incident(stack, f"during the restart {n}"): "during" for n in range(2)})
    finally:
        stack.start(triggerer)
        stack.wait_healthy(triggerer)
    updates[_event_incident(stack, "after the restart")] = "after"
    keys = [_key(str(item["id"]), str(item["lastUpdateDateTime"])) for item in sensed]
    return TriggererRestart(run_id=run_id, sensed=sorted(keys), updates=updates)


def test_triggerer_restart_deferred_sensors(stack: ComposeStack, triggerer_restart: TriggererRestart) -> None:
    """Every deferred sensor finishes with the XCom it would have had without the restart."""
    run_id = triggerer_restart.run_id
    stack.wait_run(SENSORS_DAG, run_id, timeout=SENSORS_TIMEOUT_S)
    delivered = []
    for ti in _task_instances(stack, SENSORS_DAG, run_id, "wait"):
        xcom = stack.xcom(SENSORS_DAG, run_id, "wait", map_index=ti["map_index"])
        if (
            sorted(_key(str(item["id"]), str(item["last_update"])) for item in xcom)
            == triggerer_restart.sensed
        ):
            delivered.append(ti["map_index"])
    counts = Counts.of(f"triggerer restart: {SENSORS} deferred sensors", range(SENSORS), delivered).report()
    assert (counts.delivered, counts.missed, counts.duplicated) == (SENSORS, 0, 0), counts


def test_triggerer_restart_incident_updates(stack: ComposeStack, triggerer_restart: TriggererRestart) -> None:
    """Every watched update, before, during and after the restart, is handled by a run (at least once)."""
    updates = triggerer_restart.updates
    last: dict[str, Any] = {}

    def all_handled() -> bool:
        last["handled"], last["duplicates"] = _handled_events(stack)
        return set(updates) <= set(last["handled"])

    try:
        wait_for(all_handled, timeout=EVENTS_TIMEOUT_S, what=f"{EVENTS} runs handling {sorted(updates)}",
                 explain=lambda: _watcher_story(stack), interval=3.0)  # fmt: skip
    except StackError as exc:
        print(exc)
    handled = [key for key in last["handled"] if key in updates]
    counts = Counts.of("triggerer restart: incident updates -> runs", updates, handled)
    # A re-fired update is skipped by the DAG's markers, which count it.
    counts = Counts(counts.crash, counts.expected, counts.delivered + last["duplicates"], counts.missed,
                    counts.duplicated + last["duplicates"]).report()  # fmt: skip
    stack.api("PATCH", f"/api/v2/dags/{EVENTS}", json={"is_paused": True})
    missed = {updates[key] for key in updates if key not in handled}
    assert counts.missed == 0, f"{counts.line()}; missed updates made {sorted(missed)} the restart"
