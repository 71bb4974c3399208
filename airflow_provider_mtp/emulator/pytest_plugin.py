"""Opt-in pytest fixtures for testing your own DAGs against the emulator.

Enable them in your ``conftest.py``::

    pytest_plugins = ["airflow_provider_mtp.emulator.pytest_plugin"]

Then ask for ``mtp_default_connection`` (sets ``AIRFLOW_CONN_MTP_DEFAULT`` for one test) or for
``defender_emulator`` itself. Override ``defender_emulator_options`` to size the tenant.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from airflow_provider_mtp.emulator.process import DefenderEmulator


@pytest.fixture(scope="session")
def defender_emulator_options() -> dict[str, Any]:
    """Keyword arguments for :class:`DefenderEmulator`; override it in your conftest."""
    return {}


@pytest.fixture(scope="session")
def defender_emulator(defender_emulator_options: dict[str, Any]) -> Iterator[DefenderEmulator]:
    """One emulator for the whole test session (it takes a few seconds to start)."""
    with DefenderEmulator(**defender_emulator_options) as emulator:
        yield emulator


@pytest.fixture
def mtp_default_connection(
    defender_emulator: DefenderEmulator, monkeypatch: pytest.MonkeyPatch
) -> DefenderEmulator:
    """The ``mtp_default`` connection pointed at a freshly reset emulator, for one test."""
    defender_emulator.reset()
    monkeypatch.setenv("AIRFLOW_CONN_MTP_DEFAULT", defender_emulator.airflow_conn)
    return defender_emulator
