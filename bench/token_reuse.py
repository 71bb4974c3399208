"""Token reuse: how many token requests N calls across H hooks, T threads and an event loop cost.

Starts an emulator (quotas off) and runs each scenario in a fresh Python process, as a worker or
a triggerer would be: the token cache is per process, so each process starts with none. The
emulator counts the tokens it issued (``DefenderEmulator.stats()["tokens_issued"]``), before and
after each process.

* threads: N ``get_incident`` calls over H ``MTPHook`` s (a new hook per task, say) from T threads;
* event loop: N calls over K ``MTPAsyncHook`` s gathered in one loop;
* triggers: K ``IncidentTrigger`` s in one loop, each to its first event;
* both: the threads and the event loop in the same process at once.

The baseline is what a token per hook would cost (msal's own cache lives in its application
object, so code that builds one per hook pays that): H or K. Target (issue 13): 1 token per
process per token lifetime (each run here lasts seconds, well inside the emulator's 3,599 s).

    .venv/bin/python bench/token_reuse.py [--calls 256] [--hooks 32]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from itertools import cycle
from typing import Any

from _report import RESULTS, Report

from airflow_provider_mtp.emulator import DefenderEmulator

CONN = "mtp_bench"


def threaded(calls: int, hooks: int, threads: int, ids: list[str], seconds: float = 0.0) -> None:
    """``calls`` calls, or calls until ``seconds`` have passed if given."""
    from airflow_provider_mtp.hooks.mtp import MTPHook

    made = [MTPHook(CONN) for _ in range(hooks)]
    work = zip(cycle(made), cycle(ids), range(calls) if not seconds else cycle([0]), strict=False)
    deadline = time.monotonic() + seconds
    lock = threading.Lock()

    def worker() -> None:
        while not seconds or time.monotonic() < deadline:
            with lock:
                item = next(work, None)
            if item is None:
                return
            hook, incident_id, _ = item
            hook.get_incident(incident_id, include_alerts=False)

    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    for hook in made:
        hook.close()


async def looped(calls: int, hooks: int, ids: list[str]) -> None:
    from airflow_provider_mtp.hooks.mtp_async import MTPAsyncHook

    made = [MTPAsyncHook(mtp_conn_id=CONN) for _ in range(hooks)]
    pairs = zip(cycle(made), cycle(ids), range(calls), strict=False)
    await asyncio.gather(*(hook.get_incident(i, include_alerts=False) for hook, i, _ in pairs))
    for hook in made:
        await hook.close()


async def triggers(count: int, now: datetime) -> None:
    from airflow_provider_mtp.triggers.incidents import IncidentTrigger

    # A closed window a day back holds incidents, so each trigger fires after its first poll.
    start, end = (now - timedelta(days=2)).isoformat(), (now - timedelta(days=1)).isoformat()
    made = [
        IncidentTrigger(
            window_start=start,
            window_end=end,
            lag_seconds=0,
            mtp_conn_id=CONN,
            max_incidents=None,
            include_incidents=False,
        )
        for _ in range(count)
    ]
    events = await asyncio.gather(*(anext(trigger.run()) for trigger in made))
    if not all(event.payload.get("status") == "success" for event in events):
        raise SystemExit(f"a trigger did not succeed: {events[0].payload}")


def child(scenario: dict[str, Any]) -> None:
    """One scenario, in this (fresh) process."""
    kind, calls, hooks, threads = (scenario[k] for k in ("kind", "calls", "hooks", "threads"))
    ids = scenario["ids"]
    if kind == "threads":
        threaded(calls, hooks, threads, ids, scenario.get("seconds", 0.0))
    elif kind == "loop":
        asyncio.run(looped(calls, hooks, ids))
    elif kind == "triggers":
        asyncio.run(triggers(hooks, datetime.fromisoformat(scenario["now"])))
    else:  # both: the threads run while the loop does
        side = threading.Thread(target=threaded, args=(calls, hooks, threads, ids))
        side.start()
        asyncio.run(looped(calls, hooks, ids))
        side.join()


def incident_ids(count: int) -> list[str]:
    """Ids of existing incidents, read here before counting (this process's token is not counted)."""
    from airflow_provider_mtp.hooks.mtp import MTPHook

    with MTPHook(CONN) as hook:
        found = []
        for incident in hook.list_incidents(page_size=count):
            found.append(str(incident["id"]))
            if len(found) == count:
                break
        return found


def tokens(emulator: DefenderEmulator) -> int:
    return sum(emulator.stats()["tokens_issued"].values())


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--calls", type=int, default=256)
    parser.add_argument("--hooks", type=int, default=32)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(json.loads(args.child))
        return 0
    report = Report(
        "token_reuse",
        "token requests per process: N calls over H hooks in T threads and an event loop",
        ["scenario", "calls", "hooks / triggers", "threads", "tokens issued", "a token per hook", "seconds"],
    )
    h, n = args.hooks, args.calls
    scenarios = [
        ("MTPHook, 8 threads", {"kind": "threads", "calls": n, "hooks": h, "threads": 8}),
        ("MTPHook, 16 threads", {"kind": "threads", "calls": n, "hooks": h, "threads": 16}),
        ("MTPAsyncHook, one event loop", {"kind": "loop", "calls": n, "hooks": h, "threads": 0}),
        ("IncidentTrigger, one event loop", {"kind": "triggers", "calls": h, "hooks": h, "threads": 0}),
        ("threads and event loop together", {"kind": "both", "calls": 2 * n, "hooks": h, "threads": 8}),
    ]
    with DefenderEmulator(quotas=False) as emulator:
        for name, scenario in scenarios:
            run(report, emulator, name, scenario, lifetimes=1)
    # Tokens that msal may serve for USABLE_S only (it renews one with 300 s or less left): calls
    # for LIFETIME_RUN_S need one token per USABLE_S, not one per call or per hook.
    with DefenderEmulator(quotas=False, token_lifetime=300 + USABLE_S) as emulator:
        scenario = {"kind": "threads", "calls": 0, "hooks": h, "threads": 8, "seconds": LIFETIME_RUN_S}
        name = f"MTPHook, 8 threads for {LIFETIME_RUN_S:g} s, tokens usable {USABLE_S} s"
        run(report, emulator, name, scenario, lifetimes=math.ceil(LIFETIME_RUN_S / USABLE_S))
    report.note(
        "each scenario in a fresh process (the token cache is per process); tokens counted by the emulator"
    )
    report.note(
        f"the last scenario's emulator issues tokens for {300 + USABLE_S} s; msal renews a token with 300 s "
        f"or less left, so each serves {USABLE_S} s and the target is one per {USABLE_S} s"
    )
    report.finish()
    return 0


#: How long a token of the lifetime scenario serves before msal renews it, and how long it runs.
USABLE_S = 5
LIFETIME_RUN_S = 12.0


def run(
    report: Report, emulator: DefenderEmulator, name: str, scenario: dict[str, Any], *, lifetimes: int
) -> None:
    """One scenario in a fresh process; its row and its target (``lifetimes`` tokens at most)."""
    os.environ["AIRFLOW_CONN_MTP_BENCH"] = emulator.airflow_conn
    ids = incident_ids(50)
    now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0).isoformat()
    before = tokens(emulator)
    started = time.perf_counter()
    RESULTS.mkdir(parents=True, exist_ok=True)
    with (RESULTS / "token_reuse.log").open("a") as log:
        subprocess.run(
            [sys.executable, __file__, "--child", json.dumps({**scenario, "ids": ids, "now": now})],
            check=True,
            stdout=log,
            stderr=log,
        )
    issued = tokens(emulator) - before
    hooks = scenario["hooks"] * (2 if scenario["kind"] == "both" else 1)
    calls = scenario["calls"] or "as many as fit"
    threads = scenario["threads"] or "loop"
    report.row(
        name, calls, hooks, threads, issued, hooks * lifetimes, round(time.perf_counter() - started, 1)
    )
    report.target(f"tokens per process, {name}", issued, lifetimes, unit="")


if __name__ == "__main__":
    sys.exit(main())
