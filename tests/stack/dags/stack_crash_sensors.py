"""The crash tests' deferred sensors: ``conf["count"]`` mapped deferrable IncidentSensors, all alike.

Each waits on the triggerer (``IncidentTrigger``) for ``min_incidents`` incidents carrying the
run's tag (``conf["tag"]``) updated in ``[conf["start"], conf["end"])``, an open window, so the
sensors stay deferred until the test creates those incidents. Every sensor asks the same question,
so every one must return the same XCom. Run by ``tests/stack/test_crashes.py``.
"""

# DAG wiring passes XComArgs where TaskFlow functions declare the values they get at run time.
# mypy: disable-error-code="arg-type"
from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from airflow.sdk import DAG, task

from airflow_provider_mtp.sensors.incidents import IncidentSensor

#: Incidents each sensor waits for.
MIN_INCIDENTS = 3

with DAG(
    dag_id="stack_crash_sensors",
    schedule=None,
    start_date=datetime(2026, 1, 1, tzinfo=UTC),
    catchup=False,
    # Deferred sensors do not count against it; the short runs on the workers do.
    max_active_tasks=16,
    tags=["stack-crash"],
) as dag:

    @task
    def tags_per_sensor(dag_run: Any = None) -> list[list[str]]:
        """The run's tag, once per sensor to map."""
        conf = dag_run.conf
        return [[str(conf["tag"])]] * int(conf["count"])

    IncidentSensor.partial(
        task_id="wait",
        start="{{ dag_run.conf['start'] }}",
        end="{{ dag_run.conf['end'] }}",
        lag=timedelta(0),
        min_incidents=MIN_INCIDENTS,
        max_incidents=20,
        deferrable=True,
        poke_interval=5,
        retries=1,
        retry_delay=timedelta(seconds=1),
    ).expand(tags=tags_per_sensor())
