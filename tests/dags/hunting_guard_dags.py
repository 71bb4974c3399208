"""DAGs for the hunting operator's guards: deferral cap, query errors, split validity, bad outputs.

Run with ``dag.test()`` by tests/integration/test_hunting_operator_errors.py and
tests/reliability/test_bad_input_hunting.py. Each takes its query and output path from the run's
``conf``; the connection is ``mtp_default`` (``AIRFLOW_CONN_MTP_DEFAULT``, set by the test).
"""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import DAG

from airflow_provider_mtp.operators.hunting import RunHuntingQueryOperator

LOOKBACK = timedelta(days=30)
QUERY = "{{ dag_run.conf['query'] }}"
OUTPUT = "{{ dag_run.conf.get('output_path', '') }}"

#: Deferrable, waits at most 0.5 s on a worker, defers at most twice.
with DAG("hunting_guard_capped", schedule=None, catchup=False, tags=["test"]) as capped_dag:
    RunHuntingQueryOperator(
        task_id="hunt",
        query=QUERY,
        lookback=LOOKBACK,
        output_path=OUTPUT,
        max_xcom_rows=100_000,
        deferrable=True,
        throttle_max_wait=0.5,
        max_throttle_deferrals=2,
    )

#: split_on_limit with the query checked (the default).
with DAG("hunting_guard_split", schedule=None, catchup=False, tags=["test"]) as split_dag:
    RunHuntingQueryOperator(
        task_id="hunt",
        query=QUERY,
        lookback=LOOKBACK,
        output_path=OUTPUT,
        max_xcom_rows=100_000,
        split_on_limit=True,
        max_splits=2,
    )

#: The same, the author vouching that rows do not depend on the window.
with DAG("hunting_guard_split_unchecked", schedule=None, catchup=False, tags=["test"]) as unchecked_dag:
    RunHuntingQueryOperator(
        task_id="hunt",
        query=QUERY,
        lookback=LOOKBACK,
        output_path=OUTPUT,
        max_xcom_rows=100_000,
        split_on_limit=True,
        split_validity="rows_independent",
        max_splits=2,
    )
