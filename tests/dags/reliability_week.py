"""The reliability week: one window, the sensor in its three modes, with Airflow retries.

12-hour data intervals and a 30-minute lag: the run at logical date T matches incidents last
updated in [T - 12h - 30m, T - 30m). Every incident counts (no filters), however many there are.
The tasks do not depend on each other, so a mode that fails does not hide the others' results.
``reliability_week_poke`` is the poke task alone, for the run that breaks the listing on purpose.
Run by ``tests/reliability/test_week.py``.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from airflow.sdk import DAG

from airflow_provider_mtp.sensors.incidents import IncidentSensor

INTERVAL = timedelta(hours=12)
LAG = timedelta(minutes=30)
COMMON: dict[str, Any] = {
    "lag": LAG,
    "poke_interval": 1,
    "max_incidents": 100_000,
    "on_empty": "succeed",
    "timeout": 300,
}

with DAG(
    dag_id="reliability_week",
    schedule=INTERVAL,
    start_date=datetime(2026, 6, 1, tzinfo=UTC),
    catchup=False,
    default_args={"retries": 3, "retry_delay": timedelta(0)},
) as dag:
    IncidentSensor(task_id="poke", mode="poke", **COMMON)
    IncidentSensor(task_id="reschedule", mode="reschedule", **COMMON)
    IncidentSensor(task_id="deferrable", deferrable=True, **COMMON)

with DAG(
    dag_id="reliability_week_poke",
    schedule=INTERVAL,
    start_date=datetime(2026, 6, 1, tzinfo=UTC),
    catchup=False,
    default_args={"retries": 3, "retry_delay": timedelta(0)},
) as poke_dag:
    IncidentSensor(task_id="poke", mode="poke", **COMMON)
