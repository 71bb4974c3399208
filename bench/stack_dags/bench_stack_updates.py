"""``bench/stack_scale.py``'s mapped incident updates: one UpdateIncidentOperator per id in ``conf["ids"]``."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from airflow.sdk import DAG, task

from airflow_provider_mtp.operators.incidents import UpdateIncidentOperator

with DAG(
    dag_id="bench_stack_updates",
    schedule=None,
    start_date=datetime(2026, 1, 1, tzinfo=UTC),
    catchup=False,
    max_active_tasks=64,
    tags=["bench"],
):

    @task
    def incident_ids(**context: Any) -> list[str]:
        return [str(incident_id) for incident_id in context["dag_run"].conf["ids"]]

    UpdateIncidentOperator.partial(task_id="update", tags=["bench-scale"], add_tags=True).expand(
        incident_id=incident_ids()
    )
