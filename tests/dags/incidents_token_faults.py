"""One incident update, for the test that runs it while Entra ID fails the token request.

The run's conf names the incident (``incident_id``) and the tag to add (``tag``).
"""

from __future__ import annotations

from datetime import UTC, datetime

from airflow.sdk import DAG

from airflow_provider_mtp.operators.incidents import UpdateIncidentOperator

with DAG(
    dag_id="incidents_token_faults",
    schedule=None,
    start_date=datetime(2026, 1, 1, tzinfo=UTC),
    catchup=False,
) as dag:
    UpdateIncidentOperator(
        task_id="tag",
        incident_id="{{ dag_run.conf['incident_id'] }}",
        tags=["{{ dag_run.conf['tag'] }}"],
        add_tags=True,
    )
