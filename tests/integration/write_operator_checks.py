"""What the incident and alert write-operator tests share: DAG files run with ``dag.test()`` and their
XCom, the emulator made fresh for each test, the connection's back end and timeout, the markers the
operators write, a task context for direct ``execute()`` calls, and a fake clock for re-reading."""

from __future__ import annotations

import importlib.util
import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any, TypeVar

import pytest

from airflow_provider_mtp.auth import clear_token_cache
from airflow_provider_mtp.comment_markers import comment_marker, marker_key
from airflow_provider_mtp.emulator import DefenderEmulator
from airflow_provider_mtp.hooks.mtp import MTPHook
from airflow_provider_mtp.operators.marked_writes import MarkedWriteOperator

DAGS = Path(__file__).parents[1] / "dags"
_Operator = TypeVar("_Operator", bound=MarkedWriteOperator)


def load_dag(name: str, attr: str = "dag") -> Any:
    spec = importlib.util.spec_from_file_location(f"mtp_test_dag_{name}", DAGS / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return getattr(module, attr)


def xcom(run: Any, task_id: str, *, key: str = "return_value", map_index: int = -1) -> Any:
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        row = session.scalars(
            XComModel.get_many(
                run_id=run.run_id, dag_ids=run.dag_id, task_ids=task_id, map_indexes=map_index, key=key
            )
        ).first()
        return None if row is None else XComModel.deserialize_value(row)


def task_instances(run: Any) -> list[Any]:
    from airflow.utils.session import create_session

    with create_session() as session:
        return list(run.get_task_instances(session=session))


def comments_with(resource: dict[str, Any], marker: str) -> list[str]:
    """The comments of an incident or alert that carry ``marker``."""
    return [c["comment"] for c in resource.get("comments") or () if marker in c["comment"]]


def fresh_emulator(emulator: DefenderEmulator, monkeypatch: pytest.MonkeyPatch) -> DefenderEmulator:
    """The session's emulator reset, without faults or cached tokens, as ``mtp_default``."""
    emulator.reset()
    emulator.clear_faults()
    clear_token_cache()
    monkeypatch.setenv("AIRFLOW_CONN_MTP_DEFAULT", emulator.airflow_conn)
    return emulator


def use_back_end(emulator: DefenderEmulator, monkeypatch: pytest.MonkeyPatch, api: str) -> None:
    conn = json.loads(emulator.airflow_conn)
    conn["extra"]["api"] = api
    monkeypatch.setenv("AIRFLOW_CONN_MTP_DEFAULT", json.dumps(conn))


def use_timeout(monkeypatch: pytest.MonkeyPatch, seconds: float) -> None:
    """A short read timeout on the current connection, so a held reply times out quickly."""
    conn = json.loads(os.environ["AIRFLOW_CONN_MTP_DEFAULT"])
    conn["extra"]["timeout"] = seconds
    monkeypatch.setenv("AIRFLOW_CONN_MTP_DEFAULT", json.dumps(conn))


def marker_of(dag_id: str, task_id: str, run_id: str, resource_id: str, map_index: int = -1) -> str:
    """The marker the operators put on a comment: keyed with the connection's client secret."""
    key = marker_key(MTPHook().settings)
    assert key.source == "client secret"
    return comment_marker(
        key, dag_id=dag_id, task_id=task_id, run_id=run_id, map_index=map_index, incident_id=resource_id
    )


def context(
    task_id: str = "op", run_id: str = "manual__1", map_index: int = -1, try_number: int = 1
) -> dict[str, Any]:
    pushed: dict[str, Any] = {}
    ti = SimpleNamespace(
        dag_id="d",
        task_id=task_id,
        run_id=run_id,
        map_index=map_index,
        try_number=try_number,
        xcom_push=lambda key, value: pushed.__setitem__(key, value),
        pushed=pushed,
    )
    return {"ti": ti}


#: The late-comment DAGs (``dag``: re-reads long enough to see the comment land in the same try;
#: ``short_settle_dag``: gives up first, so the retry sees it) and when the emulator applies the write.
late_comment_cases = pytest.mark.parametrize(
    ("dag_attr", "apply_after_s"),
    [("dag", 2.0), ("short_settle_dag", 2.5)],
    ids=["seen-by-the-same-try", "seen-by-the-retry"],
)


def comments_after(apply_after_s: float, read: Callable[[], dict[str, Any]], marker: str) -> list[str]:
    """The marked comments, once the emulator's late write has surely been applied.

    Called when the run has ended. The write timed out (1 s) before the run ended, so it reached
    the emulator more than 1 s before now, and is applied ``apply_after_s`` after it arrived: by
    now + ``apply_after_s`` - 1 s. A second marked comment ends the wait early.

    :param read: reads the incident or alert (through Graph, which has no call budget in the emulator).
    """
    deadline = time.monotonic() + apply_after_s - 0.5
    while True:
        found = comments_with(read(), marker)
        if len(found) > 1 or time.monotonic() > deadline:
            return found
        time.sleep(0.25)


class FakeTime:
    """The operator's ``sleep`` and ``clock``: time moves only when it sleeps.

    :param on_sleep: called with the number of sleeps so far after each one (a late apply, say).
    """

    def __init__(self, on_sleep: Any = None) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []
        self.on_sleep = on_sleep

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        if self.on_sleep is not None:
            self.on_sleep(len(self.sleeps))


def on_fake_time(operator: _Operator, fake: FakeTime) -> _Operator:
    """``operator`` waiting and reading the time through ``fake``."""
    operator.sleep = fake.sleep
    operator.clock = fake.clock
    return operator
