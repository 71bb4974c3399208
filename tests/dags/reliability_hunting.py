"""The hunting storm: one hunt per 6-hour data interval, to a file per window, with Airflow retries.

The run's ``conf`` names the output folder. Run by ``tests/reliability/test_hunting_storm.py``.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from airflow.sdk import DAG

from airflow_provider_mtp.operators.hunting import RunHuntingQueryOperator

QUERY = (
    "DeviceProcessEvents\n"
    "| where Timestamp >= WindowStart and Timestamp < WindowEnd\n"
    "| project Timestamp, ReportId, DeviceName"
)

with DAG(
    dag_id="reliability_hunting",
    schedule=timedelta(hours=6),
    start_date=datetime(2026, 11, 19, tzinfo=UTC),
    catchup=False,
    default_args={"retries": 2, "retry_delay": timedelta(0)},
) as dag:
    RunHuntingQueryOperator(
        task_id="hunt",
        query=QUERY,
        output_path="{{ dag_run.conf['folder'] }}/{{ data_interval_start.strftime('%Y%m%dT%H%M') }}.jsonl",
        throttle_max_wait=5,
    )
