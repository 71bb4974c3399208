"""Tags and the connection id from templates: ``dag_run.conf['tags']`` renders to text (``"['a', 'b']"``,
``'["a", "b"]'`` or one tag); the operator must set the list the text spells, not one tag holding it."""

from __future__ import annotations

from datetime import UTC, datetime

from airflow.sdk import DAG

from airflow_provider_mtp.operators.incidents import UpdateIncidentOperator

with DAG(
    dag_id="incidents_operator_templated_tags",
    schedule=None,
    start_date=datetime(2026, 1, 1, tzinfo=UTC),
    catchup=False,
) as dag:
    UpdateIncidentOperator(
        task_id="tag",
        incident_id="{{ dag_run.conf['incident_id'] }}",
        tags="{{ dag_run.conf['tags'] }}",
        mtp_conn_id="{{ dag_run.conf.get('conn_id', 'mtp_default') }}",
    )
