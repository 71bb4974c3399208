"""``bench/stack_scale.py``'s deferred sensors: ``conf["sensors"]`` IncidentSensors waiting on the triggerer.

Each sensor waits for an incident assigned to an address nobody has, in a window that stays open
for ``conf["open_hours"]``, so it stays deferred (its ``IncidentTrigger`` polling the emulator every
``poke_interval``) until the bench stops the stack.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from airflow.sdk import DAG, task

from airflow_provider_mtp.sensors.incidents import IncidentSensor

with DAG(
    dag_id="bench_stack_sensors",
    schedule=None,
    start_date=datetime(2026, 1, 1, tzinfo=UTC),
    catchup=False,
    max_active_tasks=2048,  # deferred sensors do not hold a worker; let them all start
    tags=["bench"],
):

    @task
    def assignees(**context: Any) -> list[str]:
        """One address per sensor; no incident is assigned to any of them."""
        return [f"bench-{index}@nobody.example" for index in range(int(context["dag_run"].conf["sensors"]))]

    IncidentSensor.partial(
        task_id="wait",
        deferrable=True,
        start="{{ dag_run.run_after.isoformat() }}",
        end="{{ (dag_run.run_after + macros.timedelta(hours=dag_run.conf['open_hours'])).isoformat() }}",
        lag=timedelta(0),
        poke_interval=60,
        timeout=24 * 3600,
    ).expand(assigned_to=assignees())
