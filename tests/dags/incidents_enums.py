"""The incident tasks given the public enums instead of strings, on a connection named by the run.

The run's conf names the connection (``conn_id``: templated ``mtp_conn_id``), the window
(``start``, ``end``) and the incident to update (``incident_id``).
"""

from __future__ import annotations

from datetime import UTC, datetime

from airflow.sdk import DAG

from airflow_provider_mtp.enums import Classification, Determination, IncidentStatus, Severity
from airflow_provider_mtp.operators.incidents import UpdateIncidentOperator
from airflow_provider_mtp.sensors.incidents import IncidentSensor

with DAG(
    dag_id="incidents_enums",
    schedule=None,
    start_date=datetime(2026, 1, 1, tzinfo=UTC),
    catchup=False,
) as dag:
    update = UpdateIncidentOperator(
        task_id="update",
        mtp_conn_id="{{ dag_run.conf['conn_id'] }}",
        incident_id="{{ dag_run.conf['incident_id'] }}",
        status=IncidentStatus.RESOLVED,
        classification=Classification.TRUE_POSITIVE,
        determination=Determination.MULTI_STAGED_ATTACK,
    )
    found = IncidentSensor(
        task_id="found",
        mtp_conn_id="{{ dag_run.conf['conn_id'] }}",
        start="{{ dag_run.conf['start'] }}",
        end="{{ dag_run.conf['end'] }}",
        lag=0,
        status=[IncidentStatus.ACTIVE, IncidentStatus.IN_PROGRESS],
        severity=Severity.HIGH,
        classification=[Classification.UNKNOWN, Classification.TRUE_POSITIVE],
        tags=["enums"],
        deferrable=True,
        poke_interval=1,
        timeout=120,
    )
    update >> found
