"""A window still open when the run starts (explicit start/end from the run's conf): the sensor
keeps asking until it closes, then applies ``on_empty``. One DAG per way of waiting, so each
starts while its window is open: rescheduled on a worker, and deferred to the triggerer."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from airflow.sdk import DAG

from airflow_provider_mtp.sensors.incidents import IncidentSensor

SENSOR: dict[str, Any] = {
    "start": "{{ dag_run.conf['start'] }}",
    "end": "{{ dag_run.conf['end'] }}",
    "lag": 0,
    "tags": ["open-window"],
    "min_incidents": 3,
    "on_empty": "succeed",
    "poke_interval": 1,
    "timeout": 120,
}

with DAG(
    dag_id="incidents_sensor_open_reschedule",
    schedule=None,
    start_date=datetime(2026, 1, 1, tzinfo=UTC),
    catchup=False,
) as reschedule_dag:
    IncidentSensor(task_id="wait", mode="reschedule", **SENSOR)

with DAG(
    dag_id="incidents_sensor_open_deferrable",
    schedule=None,
    start_date=datetime(2026, 1, 1, tzinfo=UTC),
    catchup=False,
) as deferrable_dag:
    IncidentSensor(task_id="wait", deferrable=True, **SENSOR)
