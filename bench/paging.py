"""Paging: list 10,000 incidents (and their alerts) through MTPHook, MTPAsyncHook and the peers.

Starts an emulator holding 10,000 incidents (about 20,000 alerts), quotas off, and in every round
lists everything through each contender, one after the other:

* the floor: a bare ``requests.Session`` loop with a token fetched beforehand, following
  ``@odata.nextLink`` on Graph, ``$top=100`` + ``$skip`` on the legacy API (which has no nextLink;
  its incidents embed their alerts, so it is also the floor of the legacy alert listing);
* ``MTPHook`` (Graph and legacy, incidents and alerts) and ``MTPAsyncHook`` (Graph), a new hook
  per listing, as a task or a trigger makes one;
* the same bare loop sending the exact URLs ``MTPHook`` sent on Graph (its window pieces): what
  those requests cost without the hook, which separates the hook's own cost from the emulator's
  (in the first round only: the emulator takes seconds over those requests);
* Airflow's msgraph hook (``KiotaRequestAdapterHook.paginated_run``) and ``msgraph-sdk``, each in a
  worker process in ``.bench-venv`` (bench/_peers.py) driven between the others, so their ratios
  are within the same round. msgraph-sdk takes several ms per item here, so it lists only the
  first ``--sdk-items`` of each collection and its ratio is per item against the floor's.

Printed: the median over rounds of the wall time and of the per-round ratio to the floor of the
same API, the requests the emulator counted, the client's CPU and the emulator's CPU (psutil).
Target (issue 13): MTPHook and MTPAsyncHook at most 1.10x the floor's time.

    .venv/bin/python bench/paging.py [--incidents 10000] [--rounds 5] [--sdk-items 200]
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

import psutil
from _paging_parts import REPLAY, Contender, Peer, contenders, peer_contenders
from _report import Report, median

from airflow_provider_mtp.emulator import DefenderEmulator

TARGET = 1.10


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--incidents", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--sdk-items", type=int, default=200, help="items msgraph-sdk lists per collection")
    parser.add_argument(
        "--bench-venv", type=Path, default=Path(__file__).resolve().parents[1] / ".bench-venv"
    )
    args = parser.parse_args()
    report = Report(
        "paging",
        f"list {args.incidents:,} incidents and their alerts; medians of {args.rounds} rounds",
        [
            "what",
            "API",
            "contender",
            "items",
            "requests",
            "wall s",
            "/ floor",
            "client CPU s",
            "emulator CPU s",
        ],
    )
    with DefenderEmulator(incidents=args.incidents, days=1, events_per_day=10, quotas=False) as emulator:
        os.environ["AIRFLOW_CONN_MTP_BENCH"] = emulator.airflow_conn
        server = psutil.Process(emulator.pid)
        runners = contenders(emulator)
        peers = [Peer(name, args.bench_venv, emulator) for name in ("airflow-msgraph", "msgraph-sdk")]
        for peer in peers:
            if peer.error:
                report.note(f"{peer.name} not measured: {peer.error}")
        runners += peer_contenders([p for p in peers if not p.error], sdk_items=args.sdk_items)
        # Floors first, then each collection and API together (a stable sort keeps the rest's order).
        runners.sort(key=lambda r: (r.resource != "incidents", r.api, not r.floor))
        try:
            results = measure(runners, emulator, server, args.rounds)
        finally:
            for peer in peers:
                peer.close()
    publish(report, runners, results)
    report.note(
        "floor: requests + nextLink (Graph) or $top/$skip (legacy); 'requests, MTPHook's URLs' replays the "
        "hook's own window pieces through the same bare loop, so (MTPHook - replay) is the hook's own cost "
        "and (replay - floor) what the emulator spends on the pieces' $filter/$orderby"
    )
    report.note(
        f"msgraph-sdk lists the first {args.sdk_items:,} items of each collection; its ratio is per item"
    )
    report.finish()
    return 0


Results = dict[str, list[dict[str, float]]]


def measure(runners: list[Contender], emulator: DefenderEmulator, server: Any, rounds: int) -> Results:
    """Every contender once per round, in the same order; the floors first."""
    for runner in runners:
        runner.warm()
    results: Results = {runner.key: [] for runner in runners}
    for round_ in range(rounds):
        for runner in runners:
            if runner.once and round_:
                continue
            before_requests, before_cpu = _requests(emulator), _cpu(server)
            outcome = runner.run()
            outcome["requests"] = _requests(emulator) - before_requests
            outcome["emulator_cpu"] = _cpu(server) - before_cpu
            results[runner.key].append(outcome)
    return results


def publish(report: Report, runners: list[Contender], results: Results) -> None:
    floors = {(r.resource, r.api): r.key for r in runners if r.floor}
    for runner in runners:
        runs = results[runner.key]
        floor_runs = results[floors[(runner.resource, runner.api)]]
        # Per round, and per item so a partial listing (msgraph-sdk) compares fairly.
        ratios = [
            (run["seconds"] / run["count"]) / (base["seconds"] / base["count"])
            for run, base in zip(runs, floor_runs, strict=False)
        ]
        ratio = median(ratios)
        report.row(
            runner.resource,
            runner.api,
            runner.name,
            int(median(run["count"] for run in runs)),
            int(median(run["requests"] for run in runs)),
            median(run["seconds"] for run in runs),
            ratio,
            median(run["cpu"] for run in runs),
            median(run["emulator_cpu"] for run in runs),
        )
        if runner.targeted:
            report.target(f"{runner.name} {runner.resource} ({runner.api}) / floor", ratio, TARGET)
    # The hook's own cost: its time over the bare loop sending the very same URLs, within each round.
    for api in ("graph",):
        hook, replay = (results.get(f"incidents/{api}/{name}") for name in ("MTPHook", REPLAY))
        if hook and replay:
            # The replay runs in the first round only.
            ratio = hook[0]["seconds"] / replay[0]["seconds"]
            extra = median(
                h["requests"] / f["requests"] for h, f in zip(hook, floor_of(results, api), strict=True)
            )
            report.note(
                f"{api}: MTPHook / the bare loop sending MTPHook's URLs = {ratio:.2f}x in round 1 (the hook's own cost); "
                f"MTPHook sends {extra:.2f}x the floor's requests"
            )
    report.extra["runs"] = results


def floor_of(results: Results, api: str) -> list[dict[str, float]]:
    return next(runs for key, runs in results.items() if key.startswith(f"incidents/{api}/floor"))


def _requests(emulator: DefenderEmulator) -> int:
    counted = emulator.stats()["requests"]
    # The admin route's own calls (this one) are not in the counts.
    return sum(sum(by_status.values()) for by_status in counted.values())


def _cpu(server: Any) -> float:
    times = server.cpu_times()
    return float(times.user + times.system)


if __name__ == "__main__":
    sys.exit(main())
