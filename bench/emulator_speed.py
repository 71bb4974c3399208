"""What the emulator costs a test suite: its start-up time and hunting queries per second.

Start-up (as bench/emulator_startup.py measures it): seconds from ``DefenderEmulator(...)`` to its
ready line, for the default tenant (500 incidents, 30 days of 1,000 events a day per large table)
and for a minimal one (5 incidents, 1 day of 10 events), the baseline: the ratio is what the
default tenant's data costs over the server's own start.

Hunting (as bench/hunting_query.py runs its query, but over HTTPS through ``MTPHook``, the way a
test suite reaches it): each round runs every query once, in turn, on the default tenant with
quotas off (with quotas on, the tenant's 45 calls a minute cap a suite first). The emulator
caches each query text's parse and translation, so one query gets a new text every round. The baseline is a
trivial query (``DeviceInfo | take 1``): the round trip, token, parse and engine overhead every
query pays; the ratio of each query to it is within the round.

Budgets from the emulator issue: ready within 10 s at the default size; a simple filter and
projection answers within 0.25 s (median).

    .venv/bin/python bench/emulator_speed.py [--starts 3] [--rounds 9]
"""

from __future__ import annotations

import argparse
import os
import sys
import time

from _report import Report, median

from airflow_provider_mtp.emulator import DefenderEmulator

TRIVIAL = "DeviceInfo | take 1"
QUERIES = {
    "trivial (baseline)": TRIVIAL,
    "filter + project (bench/hunting_query.py)": (
        "DeviceNetworkEvents | where RemotePort == 4444 | project Timestamp, DeviceName, RemoteIP"
    ),
    # The emulator caches a query's parse and translation by its text: a new text pays them.
    "filter + project, a new text each time": (
        "DeviceNetworkEvents | where RemotePort == 4444 and DeviceName != 'round {n}' "
        "| project Timestamp, DeviceName, RemoteIP"
    ),
    "summarize count() by": "DeviceProcessEvents | summarize count() by DeviceName",
    "join on 30 days": (
        "DeviceLogonEvents | where ActionType == 'LogonSuccess' | join kind=inner "
        "(DeviceNetworkEvents | summarize by DeviceId) on DeviceId | count"
    ),
    "1,000 rows back": "DeviceProcessEvents | take 1000",
}
SIMPLE = "filter + project (bench/hunting_query.py)"
STARTUP_BUDGET_S = 10.0
QUERY_BUDGET_S = 0.25
MINIMAL = {"incidents": 5, "days": 1, "events_per_day": 10}


def start_time(**options: int) -> float:
    started = time.perf_counter()
    with DefenderEmulator(**options):  # type: ignore[arg-type]
        return time.perf_counter() - started


def hunt(hook: object, query: str) -> tuple[float, int]:
    started = time.perf_counter()
    with hook.run_hunting_query(query) as result:  # type: ignore[attr-defined]
        rows = sum(1 for _ in result.rows)
    return time.perf_counter() - started, rows


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--starts", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=9)
    args = parser.parse_args()
    report = Report(
        "emulator_speed",
        f"emulator start-up (median of {args.starts}) and hunting queries per second (median of {args.rounds} rounds)",
        ["what", "rows", "median s", "per second", "/ baseline"],
    )
    startups: dict[str, list[float]] = {"minimal": [], "default": []}
    for _ in range(args.starts):
        startups["minimal"].append(start_time(**MINIMAL))
        startups["default"].append(start_time())
    ratio = median(d / m for d, m in zip(startups["default"], startups["minimal"], strict=True))
    report.row("start-up, minimal tenant (baseline)", "-", median(startups["minimal"]), "-", 1.0)
    report.row("start-up, default tenant", "-", median(startups["default"]), "-", ratio)
    report.target("default tenant ready", median(startups["default"]), STARTUP_BUDGET_S, unit=" s")

    from airflow_provider_mtp.hooks.mtp import MTPHook

    times: dict[str, list[float]] = {name: [] for name in QUERIES}
    rows: dict[str, int] = {}
    with DefenderEmulator(quotas=False) as emulator:
        os.environ["AIRFLOW_CONN_MTP_BENCH"] = emulator.airflow_conn
        with MTPHook("mtp_bench") as hook:
            for query in QUERIES.values():
                hunt(hook, query.format(n="warm"))  # the token, the connection, the engine's tables
            for round_ in range(args.rounds):
                for name, query in QUERIES.items():
                    seconds, rows[name] = hunt(hook, query.format(n=round_))
                    times[name].append(seconds)
    baseline = times["trivial (baseline)"]
    for name in QUERIES:
        seconds = median(times[name])
        ratio = median(t / b for t, b in zip(times[name], baseline, strict=True))
        report.row(f"hunt: {name}", rows[name], seconds, 1 / seconds, ratio)
    report.target(f"hunt: {SIMPLE}, median", median(times[SIMPLE]), QUERY_BUDGET_S, unit=" s")
    report.note("queries one after the other through MTPHook over HTTPS, quotas off; per second = 1 / median")
    report.extra["startups"] = startups
    report.extra["hunts"] = times
    report.finish()
    return 0


if __name__ == "__main__":
    sys.exit(main())
