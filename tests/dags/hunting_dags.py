"""DAGs that tests/integration/test_hunting_operator.py runs with ``dag.test()`` against the emulator.

Each takes what varies per test from the run's ``conf`` (the query, the output path, an explicit
window) so the test can point it at a temporary folder; the connection is ``mtp_default``
(``AIRFLOW_CONN_MTP_DEFAULT``, set by the test).
"""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import DAG, Asset, Param

from airflow_provider_mtp.operators.hunting import RunHuntingQueryOperator

#: The emulator's tenant holds 30 days of data; dag.test() gives these DAGs a zero-width interval.
LOOKBACK = timedelta(days=30)
QUERY = "{{ dag_run.conf['query'] }}"
OUTPUT = "{{ dag_run.conf.get('output_path', '') }}"
START = "{{ dag_run.conf.get('start', '') }}"
END = "{{ dag_run.conf.get('end', '') }}"
RESULTS = Asset(name="mtp_hunting_results", uri="file:///tmp/mtp-hunting-results")

with DAG("hunting_conf", schedule=None, catchup=False, tags=["test"]) as conf_dag:
    RunHuntingQueryOperator(
        task_id="hunt",
        query=QUERY,
        start=START,
        end=END,
        lookback=LOOKBACK,
        output_path=OUTPUT,
        max_xcom_rows=50,
        outlets=[RESULTS],
    )

with DAG("hunting_split", schedule=None, catchup=False, tags=["test"]) as split_dag:
    RunHuntingQueryOperator(
        task_id="hunt",
        query=QUERY,
        lookback=LOOKBACK,
        output_path=OUTPUT,
        split_on_limit=True,
        max_splits=4,
    )

with DAG("hunting_no_split", schedule=None, catchup=False, tags=["test"]) as no_split_dag:
    RunHuntingQueryOperator(task_id="hunt", query=QUERY, lookback=LOOKBACK, output_path=OUTPUT)

with DAG(
    "hunting_params",
    schedule=None,
    catchup=False,
    tags=["test"],
    params={"device": Param("ws-nothing-matches", type="string"), "min_size": Param(0, type="integer")},
) as params_dag:
    RunHuntingQueryOperator(
        task_id="hunt",
        query=(
            "DeviceProcessEvents\n"
            "| where Timestamp >= WindowStart and Timestamp < WindowEnd\n"
            "| where DeviceName == device and FileSize >= min_size\n"
            "| project Timestamp, DeviceName, FileName, ReportId"
        ),
        query_parameters={"device": "{{ params.device }}", "min_size": "{{ params.min_size }}"},
        parameter_types={"min_size": "long"},
        lookback=LOOKBACK,
        max_xcom_rows=5000,
    )

with DAG(
    "hunting_kql_file",
    schedule=None,
    catchup=False,
    tags=["test"],
    params={"file": Param("powershell.exe", type="string")},
) as kql_file_dag:
    RunHuntingQueryOperator(
        task_id="hunt", query="hunting_by_file.kql", lookback=LOOKBACK, max_xcom_rows=5000
    )

with DAG("hunting_deferrable", schedule=None, catchup=False, tags=["test"]) as deferrable_dag:
    RunHuntingQueryOperator(
        task_id="hunt",
        query=QUERY,
        lookback=LOOKBACK,
        output_path=OUTPUT,
        split_on_limit=True,
        deferrable=True,
        throttle_max_wait=1,
    )
