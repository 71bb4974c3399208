"""Tasks with retries that fail: only what time can fix is retried.

Run with ``dag.test()`` by tests/integration/test_retry_policy.py. Every task has two retries and
no delay between tries, so ``dag.test()`` runs each try at once.
"""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import DAG

from airflow_provider_mtp.operators.hunting import RunHuntingQueryOperator
from airflow_provider_mtp.operators.incidents import UpdateIncidentOperator

RETRIES = 2
LOOKBACK = timedelta(days=1)

with DAG(
    "retry_policy",
    schedule=None,
    catchup=False,
    default_args={"retries": RETRIES, "retry_delay": timedelta(0)},
    tags=["test"],
) as dag:
    #: KQL the service refuses: MTPQueryError, the same answer on every try.
    RunHuntingQueryOperator(task_id="bad_kql", query="DeviceProcessEvents | where", lookback=LOOKBACK)
    #: A value no incident takes, known only once rendered: MTPConfigError before any call.
    UpdateIncidentOperator(task_id="bad_status", incident_id="{{ dag_run.conf['incident_id'] }}",
                           status="{{ 'closedForGood' }}")  # fmt: skip
    #: An app without the hunting permission: MTPPermissionError, which an administrator can fix.
    RunHuntingQueryOperator(
        task_id="forbidden",
        query="DeviceProcessEvents | take 1",
        lookback=LOOKBACK,
        mtp_conn_id="mtp_no_hunting",
    )
