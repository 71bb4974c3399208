"""The crash tests' split hunt: rows of one device prefix over an explicit window, to one file.

The run's ``conf`` gives ``start``, ``end`` (ISO 8601), ``prefix`` (the device names the test
loaded) and ``output`` (the file). ``split_on_limit`` is on: the test makes the emulator answer the
first calls with Defender's timeout error, so the window is cut into pieces, and slows the pieces
down so a worker can be killed between them. Retries are immediate: the crash, not the wait, is
under test. Run by ``tests/stack/test_crashes.py``.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from airflow.sdk import DAG

from airflow_provider_mtp.operators.hunting import RunHuntingQueryOperator

QUERY = (
    "DeviceProcessEvents\n"
    "| where Timestamp >= WindowStart and Timestamp < WindowEnd\n"
    "| where DeviceName startswith prefix\n"
    "| project Timestamp, ReportId, DeviceName, FileName"
)

with DAG(
    dag_id="stack_crash_hunt",
    schedule=None,
    start_date=datetime(2026, 1, 1, tzinfo=UTC),
    catchup=False,
    tags=["stack-crash"],
) as dag:
    RunHuntingQueryOperator(
        task_id="hunt",
        query=QUERY,
        start="{{ dag_run.conf['start'] }}",
        end="{{ dag_run.conf['end'] }}",
        query_parameters={"prefix": "{{ dag_run.conf['prefix'] }}"},
        output_path="{{ dag_run.conf['output'] }}",
        split_on_limit=True,
        retries=3,
        retry_delay=timedelta(seconds=1),
        execution_timeout=timedelta(minutes=10),
    )
