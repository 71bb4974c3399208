"""Errors no retry can fix fail the task at once; the others use its retries (``dag.test()``, emulator).

``MTPQueryError`` and ``MTPConfigError`` are ``AirflowFailException`` too: a task with two retries
fails after its first try, having sent the service one request (or none), instead of asking the
same question three times and spending the tenant's hunting quota. A permission error is retried,
because an administrator may grant the permission meanwhile. The DAG is
``tests/dags/retry_policy.py``.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from airflow_provider_mtp.emulator import DefenderEmulator
from tests.dags import retry_policy
from tests.integration.test_hunting_operator import NOW

HUNTS = "POST /v1.0/security/runHuntingQuery"


@pytest.fixture
def emulator(
    airflow_db: None, mtp_default_connection: DefenderEmulator, monkeypatch: pytest.MonkeyPatch
) -> DefenderEmulator:
    """``mtp_default``, and ``mtp_no_hunting``: the emulator's app without ThreatHunting.Read.All."""
    conn = json.loads(mtp_default_connection.airflow_conn)
    app = mtp_default_connection.apps["no_hunting"]
    conn.update(login=app["client_id"], password=app["client_secret"])
    monkeypatch.setenv("AIRFLOW_CONN_MTP_NO_HUNTING", json.dumps(conn))
    return mtp_default_connection


def tries(run: Any) -> dict[str, tuple[str, int]]:
    return {ti.task_id: (str(ti.state), ti.try_number) for ti in run.get_task_instances()}


def test_only_errors_time_can_fix_are_retried(emulator: DefenderEmulator) -> None:
    incident = next(iter(emulator.put_incidents({"status": "active"})))

    run = retry_policy.dag.test(logical_date=NOW, run_conf={"incident_id": incident["id"]})

    attempts = retry_policy.RETRIES + 1
    assert tries(run) == {
        "bad_kql": ("failed", 1),
        "bad_status": ("failed", 1),
        "forbidden": ("failed", attempts),
    }
    # One refused hunt for the bad KQL; one 403 per try of the forbidden one; nothing for the update.
    assert emulator.stats()["requests"][HUNTS] == {"400": 1, "403": attempts}
    assert not [key for key in emulator.stats()["requests"] if key.startswith("PATCH ")]
