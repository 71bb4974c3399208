"""A task whose alert comment write times out and is applied by the service later (the emulator's
``late`` fault), with ``retries=1`` and ``retry_delay=0``: the comment must end up on the alert once.

``alerts_operator_late_comment`` re-reads for long enough to see the late comment in its first try;
``alerts_operator_late_comment_short`` gives up before it lands, so the retry must find it.
"""

from __future__ import annotations

from airflow.sdk import DAG

from airflow_provider_mtp.operators.alerts import UpdateAlertOperator
from tests.dags.write_operator_tasks import ONE_OFF, late_comment_write

with DAG(dag_id="alerts_operator_late_comment", schedule=None, **ONE_OFF) as dag:
    late_comment_write(UpdateAlertOperator, settle_s=30.0, alert_id="{{ dag_run.conf['alert_id'] }}")

with DAG(dag_id="alerts_operator_late_comment_short", schedule=None, **ONE_OFF) as short_settle_dag:
    late_comment_write(UpdateAlertOperator, settle_s=1.0, alert_id="{{ dag_run.conf['alert_id'] }}")
