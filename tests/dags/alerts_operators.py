"""The alert write operators, fed by the alert sensor through dynamic task mapping.

The run's conf names the alert to update (``alert_id``), the window (``start``, ``end``) and the
incident whose alerts the sensor waits for (``incident_id``).
"""

from __future__ import annotations

from airflow.sdk import DAG

from airflow_provider_mtp.enums import AlertStatus, Classification, Determination
from airflow_provider_mtp.operators.alerts import AddAlertCommentOperator, UpdateAlertOperator
from airflow_provider_mtp.sensors.alerts import AlertSensor
from tests.dags.write_operator_tasks import ONE_OFF

with DAG(dag_id="alerts_operators", schedule=None, **ONE_OFF) as dag:
    update = UpdateAlertOperator(
        task_id="update",
        alert_id="{{ dag_run.conf['alert_id'] }}",
        status=AlertStatus.IN_PROGRESS,
        assigned_to="{{ dag_run.conf['owner'] }}",
        classification="TruePositive",  # the legacy spelling is accepted too
        determination=Determination.MALWARE,
        comment="Triaged by {{ dag.dag_id }}",
    )
    found = AlertSensor(
        task_id="found",
        start="{{ dag_run.conf['start'] }}",
        end="{{ dag_run.conf['end'] }}",
        lag=0,
        incident_id="{{ dag_run.conf['incident_id'] }}",
        poke_interval=1,
        timeout=120,
    )
    comment = AddAlertCommentOperator.partial(task_id="comment", comment="Seen by Airflow").expand(
        alert_id=found.output.map(lambda summary: summary["id"])
    )
    classify = UpdateAlertOperator.partial(
        task_id="classify", classification=Classification.FALSE_POSITIVE, determination="clean"
    ).expand(alert_id=found.output.map(lambda summary: summary["id"]))
    update >> found
