"""The compose stack the tests under tests/stack/ share: started once, stopped after its last user.

Tests ask for the session-scoped ``cluster`` fixture (a :class:`~tests.stack.harness.ComposeStack`);
crash tests that stop or kill an instance should start it again (``cluster.start(name)``) before
they end, so the next test finds the whole stack.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack

import pytest

from tests.session_fixtures import last_user
from tests.stack.harness import ComposeStack, compose_stack

_STOP_CLUSTER = pytest.StashKey[Callable[[], None]]()


@pytest.fixture(scope="session")
def cluster(request: pytest.FixtureRequest) -> Iterator[ComposeStack]:
    """Every service of docker-compose.yaml as local processes, ready; stopped by pid after."""
    with ExitStack() as running:
        request.config.stash[_STOP_CLUSTER] = running.close
        yield running.enter_context(compose_stack())


@pytest.hookimpl(trylast=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> None:
    """After the last test that uses the cluster, stop it (closing it twice is harmless)."""
    stop = item.config.stash.get(_STOP_CLUSTER, None)
    if stop is not None and last_user(item, "cluster"):
        stop()
