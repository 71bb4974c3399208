"""What the write-operator DAG files share (incidents and alerts): the arguments of a one-off DAG,
a task that does its write and then crashes on its first try, and a task whose comment write the
emulator applies late. Each DAG file names the operator and the resource it writes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from airflow_provider_mtp.operators.marked_writes import MarkedWriteOperator

#: A DAG run only by ``dag.test()`` (with ``schedule=None``).
ONE_OFF: dict[str, Any] = {"start_date": datetime(2026, 1, 1, tzinfo=UTC), "catchup": False}

#: What the retried and late-comment tasks write: a resolution with a comment.
RESOLVE: dict[str, Any] = {
    "status": "resolved",
    "classification": "falsePositive",
    "determination": "clean",
    "comment": "Closed by Airflow",
}


def crash_on_first_try(operator: type[MarkedWriteOperator]) -> type[MarkedWriteOperator]:
    """``operator``, doing its write and then dying on try 1: a worker lost after the comment POST, say."""

    class CrashOnFirstTry(operator):  # type: ignore[valid-type,misc]
        def execute(self, context: Any) -> dict[str, Any]:
            result: dict[str, Any] = super().execute(context)
            if context["ti"].try_number == 1:
                raise RuntimeError("simulated crash after the comment was posted")
            return result

    CrashOnFirstTry.__name__ = CrashOnFirstTry.__qualname__ = f"CrashOnFirstTry{operator.__name__}"
    return CrashOnFirstTry


def retried_write(operator: type[MarkedWriteOperator], **target: Any) -> MarkedWriteOperator:
    """The ``resolve`` task: :data:`RESOLVE` written, a crash after it on try 1, one retry at once.

    :param operator: the update operator.
    :param target: the resource's id argument (``incident_id=...`` or ``alert_id=...``).
    """
    crashing = crash_on_first_try(operator)
    return crashing(task_id="resolve", **target, **RESOLVE, retries=1, retry_delay=timedelta(0))


def late_comment_write(
    operator: type[MarkedWriteOperator], *, settle_s: float, **target: Any
) -> MarkedWriteOperator:
    """The ``resolve`` task whose comment write the emulator applies late: re-reads for ``settle_s``
    every 0.25 s, one retry at once.

    :param operator: the update operator.
    :param settle_s: ``comment_settle_seconds``.
    :param target: the resource's id argument (``incident_id=...`` or ``alert_id=...``).
    """
    return operator(
        task_id="resolve",
        **target,
        **RESOLVE,
        comment_settle_seconds=settle_s,
        comment_settle_interval=0.25,
        retries=1,
        retry_delay=timedelta(0),
    )
