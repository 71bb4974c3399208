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

try:
    # The package, not the plugin module: pytest must import that itself to rewrite its asserts.
    import airflow_provider_mtp.emulator  # noqa: F401
except ImportError:
    # Without the emulator extra the unit tier still runs (tests/unit/test_layers.py proves it);
    # the tiers that use the emulator fixtures then fail with "fixture not found".
    pytest_plugins: list[str] = []
else:
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
