"""Test-wide set-up: an isolated Airflow home, and the emulator fixtures."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

# Airflow reads these at import: set them before anything imports it.
os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="mtp-airflow-home-"))
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(Path(__file__).parent / "dags")
os.environ["AIRFLOW__CORE__UNIT_TEST_MODE"] = "True"

pytest_plugins = ["airflow_provider_mtp.emulator.pytest_plugin"]

#: The data time every test tenant is frozen at, so answers are the same on every run.
TEST_NOW = "2026-11-20T12:00:00Z"


import pytest  # noqa: E402


@pytest.fixture(scope="session")
def airflow_db() -> None:
    """A migrated metadata database in the test Airflow home, for ``dag.test()``.

    DAG files for ``dag.test()`` live in ``tests/dags`` (the configured dags folder): Airflow
    needs the file inside its dags folder to serialise the DAG.
    """
    from airflow.utils import db

    db.resetdb()
