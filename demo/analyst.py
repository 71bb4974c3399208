"""An analyst stand-in for ``dag.test()`` runs: answers human-in-the-loop reviews as the Airflow UI does.

``dag.test()`` (and ``airflow dags test``) leaves a ``HITLOperator`` task parked in
``awaiting_input`` until a response is recorded from outside. The UI's form records it with
``PATCH /api/v2/dags/{dag}/dagRuns/{run}/taskInstances/{task}/{map_index}/hitlDetails``;
:func:`answer` calls that endpoint's own function (Airflow's ``update_hitl_detail``) on the
metadata database this process shares with the run, so the response is checked and the task
resumed exactly as for a click in the UI. :class:`Analyst` does that from a thread for every
review of a DAG that waits, with a fixed choice.

Needs this process's Airflow configuration to name the run's metadata database (the demo's
``AIRFLOW_HOME``; a test's own database for an in-process ``dag.test()``).
"""

from __future__ import annotations

import threading
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

#: Seconds between two looks for waiting reviews.
POLL_S = 0.5


@dataclass(frozen=True)
class Review:
    """A review waiting for an answer: where it is and what it asks."""

    dag_id: str
    run_id: str
    task_id: str
    map_index: int
    subject: str
    body: str
    options: tuple[str, ...]


@dataclass(frozen=True)
class Answer:
    """An answer given: the review and the option chosen."""

    review: Review
    option: str


class _User:
    """The responding user, as the auth manager would give it to the endpoint."""

    def __init__(self, name: str) -> None:
        self.name = name

    def get_id(self) -> str:
        return self.name

    def get_name(self) -> str:
        return self.name


def waiting_reviews(dag_id: str) -> list[Review]:
    """The DAG's reviews whose task waits for input and that nobody has answered."""
    from airflow.models.hitl import HITLDetail
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session
    from airflow.utils.state import TaskInstanceState
    from sqlalchemy import select

    with create_session() as session:
        rows = session.execute(
            select(HITLDetail, TaskInstance)
            .join(TaskInstance, HITLDetail.ti_id == TaskInstance.id)
            .where(
                TaskInstance.dag_id == dag_id,
                TaskInstance.state == TaskInstanceState.AWAITING_INPUT,
                HITLDetail.responded_at.is_(None),
            )
            .order_by(TaskInstance.run_id, TaskInstance.task_id, TaskInstance.map_index)
        ).all()
        return [
            Review(
                dag_id=ti.dag_id,
                run_id=ti.run_id,
                task_id=ti.task_id,
                map_index=ti.map_index,
                subject=detail.subject,
                body=detail.body or "",
                options=tuple(detail.options or ()),
            )
            for detail, ti in rows
        ]


def answer(review: Review, option: str, *, user: str = "demo-analyst") -> dict[str, Any]:
    """Record ``option`` as the answer to ``review``, through the REST endpoint the UI's form calls.

    :return: the endpoint's reply (``chosen_options``, ``responded_by_user``, ``responded_at``...).
    """
    from airflow.utils.session import create_session

    with warnings.catch_warnings():
        # The api-server's modules import Starlette's test client, which warns (a UserWarning)
        # about its httpx: a line on the demo's screen that says nothing about the demo.
        warnings.filterwarnings("ignore", message=r"Using `httpx` with `starlette\.testclient`")
        from airflow.api_fastapi.core_api.datamodels.hitl import UpdateHITLDetailPayload
        from airflow.api_fastapi.core_api.routes.public.hitl import update_hitl_detail

    with create_session() as session:
        reply = update_hitl_detail(
            dag_id=review.dag_id,
            dag_run_id=review.run_id,
            task_id=review.task_id,
            update_hitl_detail_payload=UpdateHITLDetailPayload(chosen_options=[option], params_input={}),
            user=_User(user),  # type: ignore[arg-type]
            session=session,
            map_index=review.map_index,
        )
        return reply.model_dump(mode="json")


class Analyst:
    """Answers every waiting review of one DAG from a thread, until stopped.

    :param dag_id: the DAG whose reviews to answer.
    :param choose: the option for a review (e.g. always the same label).
    :param user: the name the answers are recorded under.
    """

    def __init__(self, dag_id: str, choose: Callable[[Review], str], *, user: str = "demo-analyst") -> None:
        self.dag_id = dag_id
        self.choose = choose
        self.user = user
        self.answers: list[Answer] = []
        self.errors: list[BaseException] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"analyst-{dag_id}", daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(POLL_S):
            try:
                for review in waiting_reviews(self.dag_id):
                    option = self.choose(review)
                    answer(review, option, user=self.user)
                    self.answers.append(Answer(review, option))
            except Exception as exc:  # kept for the caller: a thread's exception is otherwise lost
                self.errors.append(exc)
                return

    def __enter__(self) -> Analyst:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)
