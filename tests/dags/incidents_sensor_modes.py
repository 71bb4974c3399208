"""One window, three sensor modes: poke, reschedule and deferrable must return the same XCom.

Hourly data intervals and the default 5-minute lag: the run at logical date T matches incidents
last updated in [T - 1h - 5m, T - 5m). Only incidents tagged ``tiling`` (put there by the tests).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from airflow.sdk import DAG

from airflow_provider_mtp.sensors.incidents import IncidentSensor

COMMON = {"tags": ["tiling"], "poke_interval": 1, "max_incidents": 50, "timeout": 120}

with DAG(
    dag_id="incidents_sensor_modes",
    schedule=timedelta(hours=1),
    start_date=datetime(2026, 1, 1, tzinfo=UTC),
    catchup=False,
) as dag:
    IncidentSensor(task_id="poke", mode="poke", **COMMON)
    IncidentSensor(task_id="reschedule", mode="reschedule", **COMMON)
    IncidentSensor(task_id="deferrable", deferrable=True, **COMMON)
