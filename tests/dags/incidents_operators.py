"""The incident write operators, fed by a sensor through dynamic task mapping.

The run's conf names the window (``start``, ``end``) and the incident to update (``incident_id``).
"""

from __future__ import annotations

from datetime import UTC, datetime

from airflow.sdk import DAG

from airflow_provider_mtp.operators.incidents import AddIncidentCommentOperator, UpdateIncidentOperator
from airflow_provider_mtp.sensors.incidents import IncidentSensor

with DAG(
    dag_id="incidents_operators",
    schedule=None,
    start_date=datetime(2026, 1, 1, tzinfo=UTC),
    catchup=False,
) as dag:
    update = UpdateIncidentOperator(
        task_id="update",
        incident_id="{{ dag_run.conf['incident_id'] }}",
        status="inProgress",
        assigned_to="soc@contoso.com",
        classification="TruePositive",
        determination="malware",
        tags=["airflow", "{{ dag_run.conf['tag'] }}"],
        add_tags=True,
        comment="Triaged by {{ dag.dag_id }}",
    )
    found = IncidentSensor(
        task_id="found",
        start="{{ dag_run.conf['start'] }}",
        end="{{ dag_run.conf['end'] }}",
        lag=0,
        tags=["triage"],
        poke_interval=1,
        timeout=120,
    )
    comment = AddIncidentCommentOperator.partial(task_id="comment", comment="Seen by Airflow").expand(
        incident_id=found.output.map(lambda summary: summary["id"])
    )
    update >> found
