"""Hunting queries side by side on the emulator: fast ones beside a slow one, a client that leaves, SIGTERM.

Prints, each measured in this run (absolute times on a shared machine mislead):

1. **Eight queries together, one slow.** Seven fast queries are sent at the same moment, alone
   (the unloaded time), then again while a slow one runs (a join of three 10,000-row ranges:
   10^12 rows to count; sent first, the fast ones go once the stats show it running). For each
   fast query: its median latency in both cases and the ratio. Target: every ratio under 2x.
   Before this change the fast ones waited behind the slow one, for as long as it ran.
2. **A client that disconnects.** The seconds from closing the connection of a running slow query
   to the emulator's stats showing it interrupted (and no query running). Target: under 2 s.
3. **SIGTERM with eight slow queries in flight.** The seconds from the signal to the process
   exit. Target: under 5 s.
4. **A small request** (``GET /_emulator/stats`` on a kept-alive connection): median
   milliseconds; about 44 ms while TCP_NODELAY was missing.
5. **Determinism in flight**: the fast answers given beside the slow query are byte-identical to
   the unloaded ones.

    .venv/bin/python bench/emulator_concurrency.py [--rounds 5]

Exits 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import functools
import http.client
import json
import signal
import ssl
import statistics
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import requests

from airflow_provider_mtp.emulator import DefenderEmulator

T = TypeVar("T")

NOW = "2026-11-20T12:00:00Z"
GRAPH = "https://graph.microsoft.com"
SLOW = (
    "range x from 1 to 10000 step 1 | extend k = 1"
    " | join kind=inner (range y from 1 to 10000 step 1 | extend k = 1) on k"
    " | join kind=inner (range z from 1 to 10000 step 1 | extend k = 1) on k | summarize count()"
)
FAST = [
    "DeviceProcessEvents | where FileName =~ 'powershell.exe' | project Timestamp, DeviceName, ProcessCommandLine | take 50",
    "DeviceLogonEvents | summarize Logons = count() by ActionType, LogonType | order by Logons desc, ActionType asc",
    "DeviceNetworkEvents | where RemotePort in (443, 80) | summarize n = count() by RemotePort",
    "AlertInfo | summarize n = count() by Severity | order by Severity asc",
    "DeviceFileEvents | where ActionType == 'FileCreated' | summarize n = count() by DeviceName "
    "| top 10 by n desc",
    "EmailEvents | summarize n = count() by EmailDirection | order by EmailDirection asc",
    "DeviceInfo | summarize arg_max(Timestamp, *) by DeviceId | project DeviceName, OSPlatform "
    "| order by DeviceName asc",
]
HUNT = "/v1.0/security/runHuntingQuery"


class Client:
    """Graph hunts with a token, one requests session per thread, on eight threads kept for the run.

    Kept threads keep their connections: the queries are timed, not TLS handshakes.
    """

    def __init__(self, emulator: DefenderEmulator) -> None:
        self.emulator = emulator
        self.local = threading.local()
        self.pool = ThreadPoolExecutor(max_workers=8)
        reply = self.session().post(
            f"{emulator.url}/{emulator.tenant_id}/oauth2/v2.0/token",
            data={
                "grant_type": "client_credentials",
                "client_id": emulator.client_id,
                "client_secret": emulator.client_secret,
                "scope": f"{GRAPH}/.default",
            },
            timeout=60,
        )
        reply.raise_for_status()
        self.bearer = str(reply.json()["access_token"])

    def session(self) -> requests.Session:
        session: requests.Session | None = getattr(self.local, "session", None)
        if session is None:
            session = requests.Session()
            session.trust_env = False
            session.verify = self.emulator.ca_bundle
            self.local.session = session
        return session

    def hunt(self, query: str) -> tuple[float, bytes]:
        """Seconds to the whole answer, and its bytes."""
        started = time.perf_counter()
        reply = self.session().post(
            f"{self.emulator.url}{HUNT}",
            json={"Query": query},
            headers={"Authorization": f"Bearer {self.bearer}"},
            timeout=600,
        )
        elapsed = time.perf_counter() - started
        if reply.status_code != 200:
            raise RuntimeError(f"{reply.status_code}: {reply.text[:300]}")
        return elapsed, reply.content

    def open_hunt(self, query: str) -> http.client.HTTPSConnection:
        """Send a hunt on a connection of its own, leaving the answer unread."""
        host, port = self.emulator.url.removeprefix("https://").rsplit(":", 1)
        context = ssl.create_default_context(cafile=self.emulator.ca_bundle)
        connection = http.client.HTTPSConnection(host, int(port), context=context, timeout=600)
        connection.request(
            "POST",
            HUNT,
            body=json.dumps({"Query": query}),
            headers={"Authorization": f"Bearer {self.bearer}", "Content-Type": "application/json"},
        )
        return connection

    def hunting(self) -> dict[str, Any]:
        reply = self.session().get(f"{self.emulator.url}/_emulator/stats", timeout=60)
        stats: dict[str, Any] = reply.json()["hunting"]
        return stats


def wait_for(check: Callable[[], bool], limit_s: float = 60.0) -> float:
    """Seconds until ``check`` holds, polled every 10 ms."""
    started = time.perf_counter()
    while not check():
        if time.perf_counter() - started > limit_s:
            raise RuntimeError(f"not within {limit_s:.0f} s")
        time.sleep(0.01)
    return time.perf_counter() - started


def at_once(client: Client, calls: list[Callable[[], T]]) -> list[T]:
    """Make ``calls`` at the same moment (a barrier), each on its own thread of ``client``."""
    barrier = threading.Barrier(len(calls))

    def make(call: Callable[[], T]) -> T:
        barrier.wait()
        return call()

    return list(client.pool.map(make, calls))


def together(client: Client, queries: list[str]) -> list[tuple[float, bytes]]:
    """Send ``queries`` at the same moment, each on its own thread and connection."""
    return at_once(client, [functools.partial(client.hunt, query) for query in queries])


def fast_beside_slow(client: Client, rounds: int) -> tuple[bool, bool]:
    for _ in range(2):  # warm: translations cached, cursors made, every thread's connection open
        together(client, FAST + FAST[:1])
    alone: list[list[float]] = [[] for _ in FAST]
    loaded: list[list[float]] = [[] for _ in FAST]
    reference = [body for _, body in together(client, FAST)]
    same = True
    for _ in range(rounds):
        for index, (elapsed, body) in enumerate(together(client, FAST)):
            alone[index].append(elapsed)
            same &= body == reference[index]
        # The slow query goes first, on its own connection; once DuckDB runs it, the fast ones go.
        slow = client.open_hunt(SLOW)
        wait_for(lambda: client.hunting()["running"] == 1)
        answers = together(client, FAST)
        if client.hunting()["running"] < 1:
            raise RuntimeError("the slow query ended before the fast ones")
        for index, (elapsed, body) in enumerate(answers):
            loaded[index].append(elapsed)
            same &= body == reference[index]
        slow.close()
        wait_for(lambda: client.hunting()["running"] == 0)
    print(
        f"1. Seven fast queries sent together, alone and beside one slow query (median of {rounds} rounds):"
    )
    ratios = []
    for index, query in enumerate(FAST):
        base, beside = statistics.median(alone[index]), statistics.median(loaded[index])
        ratios.append(beside / base)
        print(
            f"   {base * 1000:7.1f} ms alone  {beside * 1000:7.1f} ms beside the slow one  {beside / base:4.2f}x  {query[:60]}"
        )
    worst = max(ratios)
    print(f"   worst ratio {worst:.2f}x, median {statistics.median(ratios):.2f}x (target < 2x)")
    return worst < 2, same


def released(client: Client, interrupted: int) -> bool:
    """No query runs, and ``interrupted`` were interrupted by a disconnect."""
    stats = client.hunting()
    return stats["running"] == 0 and stats["interrupted_by"]["disconnect"] == interrupted


def disconnect(client: Client, tries: int = 3) -> bool:
    releases = []
    for _ in range(tries):
        before = client.hunting()["interrupted_by"]["disconnect"]
        connection = client.open_hunt(SLOW)
        wait_for(lambda: client.hunting()["running"] == 1)
        time.sleep(0.3)  # let it run
        connection.close()
        releases.append(wait_for(functools.partial(released, client, before + 1)))
    worst = max(releases)
    print(
        f"2. Client disconnects: query released and counted interrupted after "
        f"{', '.join(f'{r:.2f}' for r in releases)} s (worst {worst:.2f} s, target < 2 s)"
    )
    return worst < 2


def small_requests(client: Client, count: int = 30) -> None:
    session = client.session()
    url = f"{client.emulator.url}/_emulator/stats"
    session.get(url, timeout=60)
    runs = []
    for _ in range(count):
        started = time.perf_counter()
        session.get(url, timeout=60)
        runs.append(time.perf_counter() - started)
    print(
        f"4. Small request (GET /_emulator/stats, kept-alive): median {statistics.median(runs) * 1000:.1f} ms"
    )


def sigterm() -> bool:
    emulator = DefenderEmulator(seed=7, now=NOW, incidents=0, days=1, events_per_day=10, quotas=False)
    emulator.start()
    try:
        client = Client(emulator)
        connections = [client.open_hunt(SLOW) for _ in range(8)]
        wait_for(lambda: (stats := client.hunting())["running"] + stats["waiting"] == 8)
        stats = client.hunting()
        process = emulator._process
        assert process is not None
        started = time.perf_counter()
        process.send_signal(signal.SIGTERM)
        code = process.wait(timeout=120)
        elapsed = time.perf_counter() - started
        for connection in connections:
            connection.close()
    finally:
        emulator.stop()
    print(
        f"3. SIGTERM with 8 slow queries in flight ({stats['running']} running, {stats['waiting']} "
        f"waiting): exit code {code} after {elapsed:.2f} s (target < 5 s)"
    )
    return elapsed < 5 and code == 0


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    with DefenderEmulator(seed=7, now=NOW, quotas=False) as emulator:
        client = Client(emulator)
        print(f"emulator: default tenant, {client.hunting()['max_concurrent']} queries at once")
        fast_ok, same = fast_beside_slow(client, args.rounds)
        released = disconnect(client)
        stopped = sigterm()
        small_requests(client)
    print(f"5. Answers beside the slow query byte-identical to the unloaded ones: {'yes' if same else 'NO'}")
    return 0 if fast_ok and released and stopped and same else 1


if __name__ == "__main__":
    sys.exit(main())
