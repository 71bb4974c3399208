"""RunHuntingQueryOperator through ``dag.test()``: query errors fail at once, throttling defers a bounded number of times.

Issue 8, Must show 6: a query whose text holds "try again in 20 seconds" (or a limit's words) is
a query error after exactly one hunting request, on both back ends, also with ``deferrable=True``;
a real 429 storm is deferred through, and a longer one ends after ``max_throttle_deferrals`` with
an error that says so. The DAGs are in ``tests/dags/hunting_guard_dags.py``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_mtp.emulator import DefenderEmulator
from tests.dags import hunting_guard_dags
from tests.integration.test_hunting_operator import MONTH, direct, failure, run
from tests.integration.test_hunting_operator import task_errors as task_errors

DIALECTS = ["graph", "legacy"]
ROUTES = {"graph": "/v1.0/security/runHuntingQuery", "legacy": "/api/advancedhunting/run"}
TRAPS = [
    "try again in 20 seconds",
    "too many rows: limit",
    "timed out",
    "You can run queries again in 5 minutes",
]
#: 40 rows of the 30 days before the test's data time.
SMALL = (
    "DeviceProcessEvents\n"
    "| where Timestamp >= WindowStart and Timestamp < WindowEnd\n"
    '| where FileName =~ "powershell.exe"\n'
    "| project Timestamp, DeviceName, ReportId\n"
    "| order by Timestamp asc, ReportId asc\n"
    "| take 40"
)


@pytest.fixture
def emulator(airflow_db: None, mtp_default_connection: DefenderEmulator) -> Iterator[DefenderEmulator]:
    """The session emulator, reset, as ``mtp_default``."""
    yield mtp_default_connection
    mtp_default_connection.clear_faults()


def use_api(emulator: DefenderEmulator, monkeypatch: pytest.MonkeyPatch, api: str) -> None:
    conn = json.loads(emulator.airflow_conn)
    conn["extra"]["api"] = api
    monkeypatch.setenv("AIRFLOW_CONN_MTP_DEFAULT", json.dumps(conn))


def hunts(emulator: DefenderEmulator, api: str) -> dict[str, int]:
    """Replies to the back end's hunting route so far, by status."""
    return dict(emulator.stats()["requests"].get(f"POST {ROUTES[api]}", {}))


def conf(query: str, output: Path | None = None) -> dict[str, Any]:
    return {"query": query, **({"output_path": str(output)} if output else {})}


@pytest.mark.parametrize("text", TRAPS)
@pytest.mark.parametrize("api", DIALECTS)
def test_a_query_quoting_throttling_or_limit_words_fails_once_as_a_query_error(
    emulator: DefenderEmulator,
    monkeypatch: pytest.MonkeyPatch,
    task_errors: list[Any],
    tmp_path: Path,
    api: str,
    text: str,
) -> None:
    use_api(emulator, monkeypatch, api)
    output = tmp_path / "hunt.jsonl"

    state, result, _ = run(hunting_guard_dags.capped_dag, conf(f'DeviceProcessEvents "{text}"', output))

    assert (state, result) == ("failed", None)
    message = failure(task_errors)
    assert message.startswith("MTPQueryError: "), message
    assert "rejected the hunting query" in message
    assert text in message
    assert hunts(emulator, api) == {"400": 1}
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("to_file", [True, False], ids=["output_path", "xcom"])
def test_a_429_storm_defers_up_to_max_throttle_deferrals_then_fails_clearly(
    emulator: DefenderEmulator,
    task_errors: list[Any],
    tmp_path: Path,
    to_file: bool,
) -> None:
    emulator.inject_fault(path=ROUTES["graph"], status=429, retry_after=1, count=50)
    output = tmp_path / "hunt.csv" if to_file else None

    state, result, _ = run(hunting_guard_dags.capped_dag, conf(SMALL, output))

    assert (state, result) == ("failed", None)
    message = failure(task_errors)
    assert message.startswith(
        "MTPThrottledError: Defender kept throttling the hunt: the task deferred 2 times (2 s in all), "
        "as many as max_throttle_deferrals=2 allows, and the service still asks to wait 1 s"
    ), message
    assert "raise max_throttle_deferrals" in message
    # The first try, then one per resume: the cap ends the storm, not the fault running out.
    assert hunts(emulator, "graph") == {"429": 3}
    assert list(tmp_path.iterdir()) == []


def test_a_short_429_storm_is_deferred_through(emulator: DefenderEmulator, tmp_path: Path) -> None:
    expected = direct(SMALL, MONTH)
    emulator.reset()
    emulator.inject_fault(path=ROUTES["graph"], status=429, retry_after=1, count=2)
    output = tmp_path / "hunt.jsonl"

    state, manifest, _ = run(hunting_guard_dags.capped_dag, conf(SMALL, output))

    assert state == "success"
    assert hunts(emulator, "graph") == {"429": 2, "200": 1}
    assert manifest["rows"] == len(expected) == 40
    assert [json.loads(line) for line in output.read_text().splitlines()] == expected
    assert list(tmp_path.iterdir()) == [output]


def test_a_query_error_after_a_resume_fails_at_once(
    emulator: DefenderEmulator,
    task_errors: list[Any],
) -> None:
    emulator.inject_fault(path=ROUTES["graph"], status=429, retry_after=1, count=1)

    state, _, _ = run(hunting_guard_dags.capped_dag, conf("DeviceProcessEvents | where | x"))

    assert state == "failed"
    assert failure(task_errors).startswith("MTPQueryError: ")
    assert hunts(emulator, "graph") == {"429": 1, "400": 1}


@pytest.mark.parametrize("text", ["too many rows: limit", "timed out"])
def test_quoted_limit_words_do_not_split_the_window(
    emulator: DefenderEmulator,
    task_errors: list[Any],
    tmp_path: Path,
    text: str,
) -> None:
    """Taken for the row or time limit, these once split the window 8 levels deep for nothing."""
    query = f'DeviceProcessEvents\n| where Timestamp >= WindowStart and Timestamp < WindowEnd "{text}"'

    state, _, _ = run(hunting_guard_dags.split_dag, conf(query, tmp_path / "hunt.jsonl"))

    assert state == "failed"
    message = failure(task_errors)
    assert message.startswith("MTPQueryError: "), message
    assert hunts(emulator, "graph") == {"400": 1}
    assert list(tmp_path.iterdir()) == []
