"""A task that updates an alert with a comment, then fails on its first try (after the comment was
posted) and is retried: the comment must be on the alert once."""

from __future__ import annotations

from airflow.sdk import DAG

from airflow_provider_mtp.operators.alerts import UpdateAlertOperator
from tests.dags.write_operator_tasks import ONE_OFF, retried_write

with DAG(dag_id="alerts_operator_retry", schedule=None, **ONE_OFF) as dag:
    retried_write(UpdateAlertOperator, alert_id="{{ dag_run.conf['alert_id'] }}")
