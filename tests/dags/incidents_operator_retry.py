"""A task that updates an incident with a comment, then fails on its first try (after the comment
was posted) and is retried: the comment must be on the incident once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from airflow.sdk import DAG

from airflow_provider_mtp.operators.incidents import UpdateIncidentOperator


class CrashOnFirstTry(UpdateIncidentOperator):
    """Does the update, then dies on try 1: a worker lost after the comment POST, say."""

    def execute(self, context: Any) -> dict[str, Any]:
        result = super().execute(context)
        if context["ti"].try_number == 1:
            raise RuntimeError("simulated crash after the comment was posted")
        return result


with DAG(
    dag_id="incidents_operator_retry",
    schedule=None,
    start_date=datetime(2026, 1, 1, tzinfo=UTC),
    catchup=False,
) as dag:
    CrashOnFirstTry(
        task_id="resolve",
        incident_id="{{ dag_run.conf['incident_id'] }}",
        status="resolved",
        classification="falsePositive",
        determination="clean",
        comment="Closed by Airflow",
        retries=1,
        retry_delay=timedelta(0),
    )
