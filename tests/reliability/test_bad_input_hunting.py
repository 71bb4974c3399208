"""The hunting operator's bad-input catalogue (issue 8): each case refused with a clear message,
before any hunt, leaving nothing written.

Each test runs a real DAG (``tests/dags/hunting_guard_dags.py``) with ``dag.test()`` against a
small emulator tenant, and checks three things: the task's error names the argument and the fix,
the emulator saw no hunting request (no quota spent), and no file, part file or folder was left.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_mtp.emulator import DefenderEmulator
from tests.conftest import TEST_NOW
from tests.dags import hunting_guard_dags
from tests.integration.test_hunting_operator import task_errors as task_errors

NOW = datetime.fromisoformat(TEST_NOW)
HUNTING_ROUTE = "POST /v1.0/security/runHuntingQuery"
WINDOWED = "DeviceProcessEvents\n| where Timestamp >= WindowStart and Timestamp < WindowEnd\n"
#: Row by row: fine to split.
PROCESSES = WINDOWED + "| project Timestamp, DeviceName, ReportId"
#: The issue's case: each piece would take its own 100,000 rows.
TAKE = PROCESSES + "\n| take 100000"


@pytest.fixture(scope="module")
def small_emulator() -> Iterator[DefenderEmulator]:
    with DefenderEmulator(seed=7, now=TEST_NOW, incidents=5, days=3, events_per_day=40) as emulator:
        yield emulator


@pytest.fixture
def emulator(
    airflow_db: None, small_emulator: DefenderEmulator, monkeypatch: pytest.MonkeyPatch
) -> DefenderEmulator:
    small_emulator.reset()
    monkeypatch.setenv("AIRFLOW_CONN_MTP_DEFAULT", small_emulator.airflow_conn)
    return small_emulator


def run(dag: Any, conf: dict[str, Any]) -> tuple[str, Any]:
    dag_run = dag.test(logical_date=NOW, run_conf=conf)
    ti = dag_run.get_task_instance("hunt")
    return str(ti.state), ti.xcom_pull(task_ids="hunt")


def failure(errors: list[Any]) -> str:
    assert len(errors) == 1, errors
    error = errors[0]
    return f"{type(error).__name__}: {error}" if isinstance(error, BaseException) else str(error)


def hunts(emulator: DefenderEmulator) -> dict[str, int]:
    return dict(emulator.stats()["requests"].get(HUNTING_ROUTE, {}))


def everything_under(folder: Path) -> list[str]:
    return sorted(str(path.relative_to(folder)) for path in folder.rglob("*"))


# --------------------------------------------------------------------------------------------------
# output_path
# --------------------------------------------------------------------------------------------------


def test_output_path_under_a_file_is_refused_before_any_hunt(
    emulator: DefenderEmulator,
    task_errors: list[Any],
    tmp_path: Path,
) -> None:
    (tmp_path / "reports").write_text("not a folder")
    output = tmp_path / "reports" / "daily" / "hunt.jsonl"

    state, result = run(hunting_guard_dags.capped_dag, {"query": PROCESSES, "output_path": str(output)})

    assert (state, result) == ("failed", None)
    assert failure(task_errors) == (
        f"MTPConfigError: output_path '{output}': its folder {output.parent} cannot be created or "
        f"written ({tmp_path / 'reports'} is a file, not a folder). Choose a folder the worker's user "
        "can write, or create it with write permission for that user."
    )
    assert hunts(emulator) == {}
    assert everything_under(tmp_path) == ["reports"]


def test_output_path_in_a_folder_the_system_refuses_is_refused_before_any_hunt(
    emulator: DefenderEmulator,
    task_errors: list[Any],
) -> None:
    """/proc takes no new folders, not even from root: the check tries for real."""
    output = Path("/proc/mtp-hunting-results/hunt.jsonl")

    state, _ = run(hunting_guard_dags.capped_dag, {"query": PROCESSES, "output_path": str(output)})

    assert state == "failed"
    message = failure(task_errors)
    assert message.startswith(
        f"MTPConfigError: output_path '{output}': its folder {output.parent} cannot be created or written ("
    ), message
    assert "Choose a folder the worker's user can write" in message
    assert hunts(emulator) == {}
    assert not output.parent.exists()
    assert not [name for name in os.listdir("/proc") if name.startswith(".mtp-check-")]


def test_output_path_that_is_an_existing_folder_is_refused_before_any_hunt(
    emulator: DefenderEmulator,
    task_errors: list[Any],
    tmp_path: Path,
) -> None:
    folder = tmp_path / "hunt.jsonl"
    folder.mkdir()

    state, _ = run(hunting_guard_dags.capped_dag, {"query": PROCESSES, "output_path": str(folder)})

    assert state == "failed"
    assert failure(task_errors) == (
        f"MTPConfigError: output_path '{folder}' is an existing folder: give the path of a file in it, "
        f"such as {folder}/hunt.jsonl"
    )
    assert hunts(emulator) == {}
    assert everything_under(tmp_path) == ["hunt.jsonl"]  # the folder, still empty


@pytest.mark.parametrize(
    ("uri", "package", "provider"),
    [
        ("gs://hunting-results/daily/hunt.jsonl", "gcsfs", "apache-airflow-providers-google"),
        ("s3://hunting-results/daily/hunt.parquet", "s3fs", "apache-airflow-providers-amazon"),
        ("abfs://results@account/daily/hunt.csv", "adlfs", "apache-airflow-providers-microsoft-azure"),
    ],
)
def test_object_storage_without_its_filesystem_package_is_refused_before_any_hunt(
    emulator: DefenderEmulator,
    task_errors: list[Any],
    uri: str,
    package: str,
    provider: str,
) -> None:
    scheme = uri.split("://")[0]

    state, _ = run(hunting_guard_dags.capped_dag, {"query": PROCESSES, "output_path": uri})

    assert state == "failed"
    message = failure(task_errors)
    assert message.startswith(
        f"MTPConfigError: output_path '{uri}' is on {scheme}:// storage, which this worker cannot write: "
        f"install {package} and the Airflow provider {provider} (pip install {provider} {package}) on "
        "every worker, or write to a local path."
    ), message
    assert hunts(emulator) == {}


# --------------------------------------------------------------------------------------------------
# split_on_limit on a query whose rows depend on the whole window
# --------------------------------------------------------------------------------------------------


def test_split_on_limit_refuses_a_query_ending_in_take(
    emulator: DefenderEmulator,
    task_errors: list[Any],
    tmp_path: Path,
) -> None:
    output = tmp_path / "hunt.jsonl"

    state, _ = run(hunting_guard_dags.split_dag, {"query": TAKE, "output_path": str(output)})

    assert state == "failed"
    assert failure(task_errors) == (
        "MTPConfigError: split_on_limit=True cannot split this query: its rows depend on the whole window "
        "(take (line 4)), so pieces run one by one would not add up to the whole window's result (a take "
        "100000 takes 100,000 rows per piece). Remove split_on_limit (the task then fails on the row limit "
        "and says so), or narrow the window or the query; if every row really depends only on its own "
        'piece, set split_validity="rows_independent".'
    )
    assert hunts(emulator) == {}
    assert everything_under(tmp_path) == []


def test_split_validity_rows_independent_runs_the_same_query(
    emulator: DefenderEmulator, tmp_path: Path
) -> None:
    output = tmp_path / "hunt.jsonl"

    state, manifest = run(hunting_guard_dags.unchecked_dag, {"query": TAKE, "output_path": str(output)})

    assert state == "success"
    assert manifest["rows"] > 0
    assert hunts(emulator) == {"200": 1}
    assert everything_under(tmp_path) == ["hunt.jsonl"]
