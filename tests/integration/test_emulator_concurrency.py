"""Several hunting queries at once, and stopping them: the emulator over TLS, real HTTP, no timings.

The slow query joins three 10,000-row ranges on a constant key (10^12 rows to count): it would run
for most of an hour, so any test that ends proves the query was interrupted. (Its pieces are
small, so DuckDB notices an interrupt within milliseconds; a join of two one-million-row ranges
took seconds to notice one with four such queries running.) Timings
(how much faster, how soon) live in ``bench/emulator_concurrency.py``; here each wait has a
generous limit that only a broken emulator reaches.
"""

from __future__ import annotations

import http.client
import json
import signal
import ssl
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import requests

from airflow_provider_mtp.emulator import DefenderEmulator
from tests.conftest import TEST_NOW
from tests.golden.battery import QUERIES
from tests.golden.fixture import NOW, build_fixture
from tests.integration.conftest import GRAPH, MTP, graph_hunt, legacy_hunt, token

SLOW = (
    "range x from 1 to 10000 step 1 | extend k = 1"
    " | join kind=inner (range y from 1 to 10000 step 1 | extend k = 1) on k"
    " | join kind=inner (range z from 1 to 10000 step 1 | extend k = 1) on k | summarize count()"
)
FAST = "DeviceProcessEvents | summarize n = count() by DeviceName | order by n desc, DeviceName asc"
#: Longest wait for something the emulator does at once; reached only when it is broken.
PATIENCE_S = 30.0
HUNT_PATH = "/v1.0/security/runHuntingQuery"


def wait_for(check: Callable[[], bool], what: str) -> None:
    """Poll ``check`` every 50 ms until it holds; fail after :data:`PATIENCE_S`."""
    deadline = time.monotonic() + PATIENCE_S
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"still waiting, after {PATIENCE_S:.0f} s, for {what}")
        time.sleep(0.05)


def hunting(emulator: DefenderEmulator) -> dict[str, Any]:
    stats: dict[str, Any] = emulator.stats()["hunting"]
    return stats


def open_hunt(emulator: DefenderEmulator, bearer: str, query: str) -> http.client.HTTPSConnection:
    """Send a Graph hunt on a connection of its own and leave the answer unread."""
    host, port = emulator.url.removeprefix("https://").rsplit(":", 1)
    context = ssl.create_default_context(cafile=emulator.ca_bundle)
    connection = http.client.HTTPSConnection(host, int(port), context=context, timeout=PATIENCE_S)
    connection.request(
        "POST",
        HUNT_PATH,
        body=json.dumps({"Query": query}),
        headers={"Authorization": f"Bearer {bearer}", "Content-Type": "application/json"},
    )
    return connection


@pytest.fixture(scope="module")
def busy_emulator() -> Iterator[DefenderEmulator]:
    """A small tenant, no quotas (these tests send many hunts), two queries at a time."""
    with DefenderEmulator(
        seed=13,
        now=TEST_NOW,
        incidents=3,
        days=2,
        events_per_day=200,
        quotas=False,
        max_concurrent_queries=2,
    ) as emulator:
        yield emulator


@pytest.fixture
def emulator(busy_emulator: DefenderEmulator) -> DefenderEmulator:
    busy_emulator.reset()
    return busy_emulator


@pytest.fixture(scope="module")
def bearer(busy_emulator: DefenderEmulator) -> str:
    return token(busy_emulator, GRAPH)


def test_every_accepted_connection_has_tcp_nodelay(emulator: DefenderEmulator) -> None:
    """Read by the server from each accepted socket: without it every small reply waits ~40 ms."""
    for _ in range(3):
        with requests.Session() as session:
            session.trust_env = False
            reply = session.get(f"{emulator.url}/_emulator/stats", verify=emulator.ca_bundle, timeout=30)
            assert reply.status_code == 200
    connections = emulator.stats()["connections"]
    assert connections["accepted"] >= 3
    assert connections["tcp_nodelay"] == connections["accepted"]


@pytest.mark.timeout(120)
def test_a_fast_query_is_answered_while_a_slow_one_runs(emulator: DefenderEmulator, bearer: str) -> None:
    slow = open_hunt(emulator, bearer, SLOW)
    try:
        wait_for(lambda: hunting(emulator)["running"] == 1, "the slow query to start")
        fast = graph_hunt(emulator, bearer, FAST)
        assert fast.status_code == 200, fast.text
        assert fast.json()["results"]
        assert hunting(emulator)["running"] == 1, "the slow query should still be running"
    finally:
        slow.close()
    wait_for(lambda: hunting(emulator)["interrupted_by"]["disconnect"] == 1, "the slow query to stop")


@pytest.mark.timeout(120)
def test_a_client_that_disconnects_gets_its_query_interrupted(
    emulator: DefenderEmulator, bearer: str
) -> None:
    connection = open_hunt(emulator, bearer, SLOW)
    wait_for(lambda: hunting(emulator)["running"] == 1, "the slow query to start")
    connection.close()
    wait_for(lambda: hunting(emulator)["running"] == 0, "the abandoned query to stop")
    stats = hunting(emulator)
    assert stats["interrupted"] == 1
    assert stats["interrupted_by"] == {"timeout": 0, "disconnect": 1, "shutdown": 0}
    assert stats["cpu_seconds"] > 0, "an interrupted query's CPU time is counted too"
    # The counters belong to the run: a reset zeroes them.
    emulator.reset()
    assert hunting(emulator)["interrupted"] == 0


@pytest.mark.timeout(120)
def test_a_waiting_query_whose_client_left_never_runs(emulator: DefenderEmulator, bearer: str) -> None:
    """Two slots: two slow queries take them, the third waits; its client leaves, it is dropped."""
    holders = [open_hunt(emulator, bearer, SLOW) for _ in range(2)]
    try:
        wait_for(lambda: hunting(emulator)["running"] == 2, "both slots to be taken")
        waiting = open_hunt(emulator, bearer, SLOW)
        wait_for(lambda: hunting(emulator)["waiting"] == 1, "the third query to wait")
        waiting.close()
        wait_for(lambda: hunting(emulator)["waiting"] == 0, "the waiting query to be dropped")
        assert hunting(emulator)["running"] == 2
    finally:
        for connection in holders:
            connection.close()
    wait_for(lambda: hunting(emulator)["interrupted_by"]["disconnect"] == 3, "all three to stop")


@pytest.mark.timeout(180)
def test_answers_in_flight_together_equal_serial_answers_byte_for_byte() -> None:
    """The golden battery on both APIs, one at a time, then all at once on four slots: same bytes.

    The legacy ``Stats`` block holds timings, so the legacy comparison leaves it out.
    """
    with DefenderEmulator(
        now=NOW.isoformat().replace("+00:00", "Z"),
        events_per_day=0,
        incidents=0,
        quotas=False,
        max_concurrent_queries=4,
    ) as emulator:
        for table, rows in build_fixture().items():
            emulator.load_rows(table, rows)
        bearers = {"graph": token(emulator, GRAPH), "legacy": token(emulator, MTP)}
        calls = [(api, query.text) for query in QUERIES for api in ("graph", "legacy")]

        def answer(call: tuple[str, str]) -> bytes:
            api, text = call
            if api == "graph":
                reply = graph_hunt(emulator, bearers["graph"], text)
                assert reply.status_code == 200, reply.text
                return reply.content
            reply = legacy_hunt(emulator, bearers["legacy"], text)
            assert reply.status_code == 200, reply.text
            body = reply.json()
            body.pop("Stats")
            return json.dumps(body, sort_keys=True).encode()

        serial = [answer(call) for call in calls]
        with ThreadPoolExecutor(max_workers=8) as pool:
            together = list(pool.map(answer, calls * 2))
        assert hunting(emulator)["answered"] == 3 * len(calls)
    mismatched = [calls[i % len(calls)] for i, body in enumerate(together) if body != serial[i % len(calls)]]
    assert mismatched == []


@pytest.mark.timeout(180)
def test_sigterm_stops_the_emulator_while_slow_queries_run() -> None:
    emulator = DefenderEmulator(
        seed=17, now=TEST_NOW, incidents=0, days=1, events_per_day=10, quotas=False, max_concurrent_queries=4
    ).start()
    try:
        bearer = token(emulator, GRAPH)
        connections = [open_hunt(emulator, bearer, SLOW) for _ in range(8)]
        wait_for(
            lambda: (hunting(emulator)["running"], hunting(emulator)["waiting"]) == (4, 4),
            "four queries running and four waiting",
        )
        process = emulator._process
        assert process is not None
        process.send_signal(signal.SIGTERM)
        # A guard, not a measure: without the interrupts the process would run for hours.
        assert process.wait(timeout=PATIENCE_S) == 0
        statuses: list[int | None] = []
        for connection in connections:
            try:
                statuses.append(connection.getresponse().status)
            except (ConnectionError, http.client.HTTPException):
                statuses.append(None)
            finally:
                connection.close()
        # Those answered got the shutdown's 503; none was left hanging.
        assert set(statuses) <= {503, None}
        assert 503 in statuses
    finally:
        emulator.stop()


@pytest.mark.timeout(120)
def test_the_cpu_budget_is_charged_real_query_time() -> None:
    """A 0.2 s budget: one query that counts 400 million rows uses it up, the next call is refused."""
    costly = (
        "range x from 1 to 20000 step 1 | extend k = 1"
        " | join kind=inner (range y from 1 to 20000 step 1 | extend k = 1) on k | summarize count()"
    )
    with DefenderEmulator(
        seed=19, now=TEST_NOW, incidents=0, days=1, events_per_day=10, hunting_cpu_seconds=0.2
    ) as emulator:
        bearers = {"graph": token(emulator, GRAPH), "legacy": token(emulator, MTP)}
        first = graph_hunt(emulator, bearers["graph"], costly)
        assert first.status_code == 200, first.text
        used = hunting(emulator)["cpu"]["used_s"][emulator.tenant_id]
        assert used >= 0.2
        expected = (
            "You have exceeded processing resources allocated to this tenant. You can run queries again in "
        )
        for reply, code in (
            (graph_hunt(emulator, bearers["graph"], "print 1"), "TooManyRequests"),
            (legacy_hunt(emulator, bearers["legacy"], "print 1"), "429"),
        ):
            assert reply.status_code == 429, reply.text
            assert reply.json()["error"]["code"] == code
            assert reply.json()["error"]["message"].startswith(expected)
            assert 1 <= int(reply.headers["Retry-After"]) <= 900
        # Refused calls cost nothing; a reset refills the budget.
        assert hunting(emulator)["cpu"]["used_s"][emulator.tenant_id] == used
        emulator.reset()
        assert graph_hunt(emulator, bearers["graph"], "print 1").status_code == 200


def test_stopping_a_query_from_another_thread_interrupts_duckdb() -> None:
    """The engine alone: a stop lands while DuckDB runs, and the cursor serves the next query."""
    from airflow_provider_mtp.emulator.hunting import HuntingError, QueryControl
    from tests.golden.fixture import fixture_engine

    engine = fixture_engine(max_concurrent=1)
    control = QueryControl()
    running = engine.submit(SLOW, control=control)
    wait_for(lambda: engine.stats()["running"] == 1, "the query to start")
    control.stop("disconnect")
    error = running.exception(timeout=PATIENCE_S)
    assert isinstance(error, HuntingError)
    assert (error.status, error.kind) == (499, "cancelled")
    assert control.cpu_seconds > 0
    # One slot, so the same cursor: no interrupt is left over for the next query.
    assert engine.run("DeviceProcessEvents | count").rows
    engine.close()
    with pytest.raises(HuntingError) as closed:
        engine.run("DeviceProcessEvents | count")
    assert (closed.value.status, closed.value.kind) == (503, "cancelled")
    assert engine.stats()["interrupted_by"] == {"timeout": 0, "disconnect": 1, "shutdown": 1}


@pytest.mark.timeout(120)  # a guard, not a measure: without the interrupt the count runs for most of an hour
def test_a_timeout_is_counted_as_an_interruption() -> None:
    from airflow_provider_mtp.emulator.hunting import HuntingError
    from tests.golden.fixture import fixture_engine

    engine = fixture_engine(query_timeout=0.3)
    with pytest.raises(HuntingError) as caught:
        engine.run(SLOW)
    assert (caught.value.status, caught.value.kind) == (400, "timeout")
    stats = engine.stats()
    assert (stats["interrupted_by"], stats["answered"], stats["refused"]) == (
        {"timeout": 1, "disconnect": 0, "shutdown": 0},
        0,
        0,
    )
