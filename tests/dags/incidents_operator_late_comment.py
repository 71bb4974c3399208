"""A task whose comment write times out and is applied by the service later (the emulator's ``late``
fault), with ``retries=1`` and ``retry_delay=0``: the comment must end up on the incident once.

``incidents_operator_late_comment`` re-reads for long enough to see the late comment in its first
try. ``incidents_operator_late_comment_short`` gives up re-reading before the comment lands, so the
retry must find it (its own re-reading at the start covers the rest).
"""

from __future__ import annotations

from airflow.sdk import DAG

from airflow_provider_mtp.operators.incidents import UpdateIncidentOperator
from tests.dags.write_operator_tasks import ONE_OFF, late_comment_write


def _late_comment_dag(dag_id: str, *, settle_s: float) -> DAG:
    with DAG(dag_id=dag_id, schedule=None, **ONE_OFF) as dag:
        late_comment_write(
            UpdateIncidentOperator, settle_s=settle_s, incident_id="{{ dag_run.conf['incident_id'] }}"
        )
    return dag


dag = _late_comment_dag("incidents_operator_late_comment", settle_s=30.0)
short_settle_dag = _late_comment_dag("incidents_operator_late_comment_short", settle_s=1.0)
