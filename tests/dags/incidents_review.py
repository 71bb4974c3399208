"""An analyst's review per incident (HITLOperator), then the chosen classification applied.

The same pieces as the triage example's review (:mod:`airflow_provider_mtp.triage_review`), without
its sensor and hunts: the run's conf names the incidents (``incident_ids``) and, per incident, a
hunt's findings to show (``rows``). The update crashes after its write on its first try (a worker
lost before the task saw the reply) and is retried at once: the answer must be applied once, the
same.
"""

# DAG wiring passes XComArgs where TaskFlow functions declare the values they get at run time.
# mypy: disable-error-code="arg-type"
from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from airflow.providers.standard.operators.hitl import HITLOperator
from airflow.sdk import DAG, task

from airflow_provider_mtp.operators.incidents import UpdateIncidentOperator
from airflow_provider_mtp.triage_review import (
    LEAVE_FOR_LATER,
    HuntFindings,
    review_markdown,
    review_options,
    review_subject,
    review_updates,
)
from tests.dags.write_operator_tasks import crash_on_first_try

with DAG(
    dag_id="incidents_review",
    schedule=None,
    start_date=datetime(2026, 1, 1, tzinfo=UTC),
    catchup=False,
) as dag:

    @task
    def requests(dag_run: Any = None) -> list[dict[str, str]]:
        from airflow_provider_mtp.hooks.mtp import MTPHook
        from airflow_provider_mtp.links import incident_portal_url

        hook = MTPHook()
        made = []
        for incident_id in dag_run.conf["incident_ids"]:
            incident = hook.get_incident(incident_id, include_alerts=True)
            found = HuntFindings(title="Device timeline", rows=int(dag_run.conf.get("rows", 0)))
            body = review_markdown(
                incident, findings=[found], portal_url=incident_portal_url(hook.settings, incident_id)
            )
            made.append({"subject": review_subject(incident), "body": body})
        return made

    reviews = HITLOperator.partial(
        task_id="review",
        options=review_options(),
        defaults=[LEAVE_FOR_LATER],
        response_timeout=timedelta(hours=1),
    ).expand_kwargs(requests())

    @task
    def answers(reviews: Sequence[dict[str, Any]], dag_run: Any = None) -> list[dict[str, Any]]:
        return review_updates(dag_run.conf["incident_ids"], reviews[:])

    crash_on_first_try(UpdateIncidentOperator).partial(
        task_id="apply_review", retries=1, retry_delay=timedelta(0)
    ).expand_kwargs(answers(reviews.output))
