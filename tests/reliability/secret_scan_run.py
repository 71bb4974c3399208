"""One ``dag.test()`` run in a fresh process, for tests/reliability/test_secret_scan.py to scan.

``python -m tests.reliability.secret_scan_run <dag_id> <logical date> <report.json>``, with the
Airflow home, the DAGs folder, DEBUG logging and the connections in the environment. A process
of its own, so Airflow configures its logging at DEBUG from the start (as a worker set to DEBUG
would) and the metadata database holds this run only.

Writes to ``report.json``: the task states, each failed task's exception with its traceback
(from a listener), every XCom and every rendered-fields row of the run (read back from the
database), and every token in every Entra ID reply the process received (read off the replies
as requests hands them over, so the scan knows the exact tokens of this run).
"""

from __future__ import annotations

import json
import sys
import traceback
from datetime import datetime
from typing import Any

import requests

#: Token fields of an Entra ID or managed identity token reply.
TOKEN_FIELDS = ("access_token", "refresh_token", "id_token")
TOKEN_PATHS = ("/oauth2/v2.0/token", "/oauth2/token", "/msi/token")

_issued: list[dict[str, str]] = []
_send = requests.Session.send


def _recording_send(session: requests.Session, request: Any, **kwargs: Any) -> requests.Response:
    response: requests.Response = _send(session, request, **kwargs)
    if any(path in str(request.url) for path in TOKEN_PATHS):
        try:
            body = response.json()
        except ValueError:
            body = None
        if isinstance(body, dict):
            _issued.append({field: str(body[field]) for field in TOKEN_FIELDS if body.get(field)})
    return response


class _FailureListener:
    """The exception of every failed task instance, with its traceback."""

    from airflow.listeners import hookimpl

    def __init__(self) -> None:
        self.errors: dict[str, str] = {}

    @hookimpl
    def on_task_instance_failed(self, previous_state: Any, task_instance: Any, error: Any) -> None:
        text = "".join(traceback.format_exception(error)) if isinstance(error, BaseException) else str(error)
        self.errors[task_instance.task_id] = text


def _stored(dag_run: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """Every XCom and rendered-fields row of the run, as the database holds them."""
    from airflow.models.renderedtifields import RenderedTaskInstanceFields as Rendered
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        xcoms = {
            f"{row.task_id}[{row.map_index}].{row.key}": row.value
            for row in session.scalars(XComModel.get_many(run_id=dag_run.run_id, dag_ids=dag_run.dag_id))
        }
        rendered = {
            row.task_id: [row.rendered_fields, row.k8s_pod_yaml]
            for row in session.scalars(
                select(Rendered).where(Rendered.dag_id == dag_run.dag_id, Rendered.run_id == dag_run.run_id)
            )
        }
    return xcoms, rendered


def main(dag_id: str, logical_date: str, report: str) -> None:
    from airflow.sdk.listener import get_listener_manager
    from airflow.utils import db

    from tests.dags import secret_scan_dags

    db.resetdb()
    requests.Session.send = _recording_send  # type: ignore[method-assign,assignment]
    listener = _FailureListener()
    get_listener_manager().add_listener(listener)
    dag = {"secret_scan": secret_scan_dags.dag, "secret_scan_leak": secret_scan_dags.leak_dag}[dag_id]
    dag_run = dag.test(logical_date=datetime.fromisoformat(logical_date))
    xcoms, rendered = _stored(dag_run)
    result = {
        "states": {ti.task_id: str(ti.state) for ti in dag_run.get_task_instances()},
        "exceptions": listener.errors,
        "xcoms": xcoms,
        "rendered": rendered,
        "tokens": _issued,
    }
    with open(report, "w") as out:
        json.dump(result, out, default=str)


if __name__ == "__main__":
    main(*sys.argv[1:])
