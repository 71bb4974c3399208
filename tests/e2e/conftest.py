"""The running Airflow stack the end-to-end and browser tests share: started once, stopped early.

The stack (:mod:`tests.e2e.harness`) is session-scoped so that ``test_airflow_e2e.py`` and
``test_browser.py`` share one, but it is stopped as soon as no later test asks for it: left
running, its scheduler and dag-processor would take CPU from the rest of the suite.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack

import pytest

from tests.e2e.harness import AirflowStack, airflow_stack
from tests.session_fixtures import last_user

_STOP_STACK = pytest.StashKey[Callable[[], None]]()


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Iterator[AirflowStack]:
    """Emulator, api-server, scheduler, triggerer and dag-processor on loopback; stopped by pid after."""
    with ExitStack() as running:
        request.config.stash[_STOP_STACK] = running.close
        yield running.enter_context(airflow_stack(tmp_path_factory.mktemp("airflow-home")))


@pytest.hookimpl(trylast=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> None:
    """After the last test that uses the stack, stop it (closing it twice is harmless)."""
    stop = item.config.stash.get(_STOP_STACK, None)
    if stop is not None and last_user(item, "stack"):
        stop()
