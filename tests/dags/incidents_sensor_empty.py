"""A closed window where nothing matches: on_empty skip, fail and succeed, each poked and deferred."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from airflow.sdk import DAG

from airflow_provider_mtp.sensors.incidents import IncidentSensor

with DAG(
    dag_id="incidents_sensor_empty",
    schedule=timedelta(hours=1),
    start_date=datetime(2026, 1, 1, tzinfo=UTC),
    catchup=False,
) as dag:
    for on_empty in ("skip", "fail", "succeed"):
        for deferrable in (False, True):
            IncidentSensor(
                task_id=f"{on_empty}_{'deferred' if deferrable else 'poked'}",
                tags=["no-incident-has-this-tag"],
                severity=["high", "medium"],
                on_empty=on_empty,
                deferrable=deferrable,
                poke_interval=1,
                timeout=120,
            )
