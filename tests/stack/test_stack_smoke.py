"""The compose stack runs a DAG on its Celery workers: triggered through REST, hunted on the emulator."""

from __future__ import annotations

import json
import os
from datetime import datetime
from pathlib import Path
from urllib.parse import urlparse

import pytest

from tests.stack.harness import ComposeStack

pytestmark = pytest.mark.stack

ENRICHMENT = "mtp_scheduled_enrichment"
#: Upper bound for the run on 2 cores (typical: about a minute).
RUN_TIMEOUT_S = 300.0


def _instant(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def test_scheduled_enrichment_runs_on_a_celery_worker(cluster: ComposeStack) -> None:
    interval = cluster.last_data_hour()
    run = cluster.trigger_interval(ENRICHMENT, interval)
    cluster.unpause(ENRICHMENT)
    run = cluster.wait_run(ENRICHMENT, run["dag_run_id"], timeout=RUN_TIMEOUT_S)

    # Every task ran on one of the compose file's workers (the task instance's hostname is the
    # worker's HOSTNAME, as in a container), through the CeleryExecutor.
    workers = {name for name, instance in cluster.instances.items() if instance.service == "airflow-worker"}
    tis = cluster.task_instances(ENRICHMENT, run["dag_run_id"])
    assert tis
    for ti in tis:
        assert ti["state"] == "success", ti
        assert ti["hostname"] in workers, (ti["task_id"], ti["hostname"], workers)
        assert ti["executor"] in (None, "CeleryExecutor"), ti["executor"]
    print(f"\n{ENRICHMENT}: " + ", ".join(f"{ti['task_id']} on {ti['hostname']}" for ti in tis))

    # The hunt asked the run's interval of the emulator, and wrote what it found.
    manifest = cluster.xcom(ENRICHMENT, run["dag_run_id"], "hunt_process_events")
    assert _instant(manifest["window"]["start"]) == _instant(run["data_interval_start"])
    output = Path(urlparse(manifest["path"]).path)
    rows = [json.loads(line) for line in output.read_text().splitlines()]
    assert manifest["rows"] == len(rows) > 0
    hunts = cluster.emulator.stats()["requests"]
    assert any("runHuntingQuery" in route for route in hunts), hunts


def test_a_killed_worker_is_gone_with_its_children_and_comes_back_healthy(cluster: ComposeStack) -> None:
    name = "airflow-worker-2"
    pid = cluster.pid(name)
    cluster.kill(name)
    # SIGKILL went to the whole process group: no Celery child outlives its worker.
    with pytest.raises(ProcessLookupError):
        os.killpg(pid, 0)
    cluster.start(name)
    cluster.wait_healthy(name)  # the compose healthcheck: celery inspect ping -d celery@airflow-worker-2
    assert cluster.pid(name) != pid
