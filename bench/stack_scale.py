"""Scale figures of the distributed stack (docker-compose.yaml's services as local processes, Celery).

Starts the compose stack (:func:`tests.stack.harness.compose_stack`, with this folder's
``stack_dags/`` beside the example DAGs) and prints, each measured in this run:

1. **Triggerer RSS and CPU** (the ``airflow triggerer`` process and its trigger runner) over
   ``--window`` seconds with no deferred task (the baseline), then with ``--sensors`` (1,000)
   deferrable ``IncidentSensor``s deferred, each polling the emulator every 60 s; the ratio and the
   cost per sensor. Also how long the workers took to start and defer them all.
2. **Scheduler-to-worker latency of the hunting task**: ``queued_when`` -> ``start_date`` of the
   ``hunt`` task of ``--hunts`` runs of the ad-hoc hunting example, one run at a time, from the
   REST API; on the idle cluster, and again with the sensors deferred (the ratio).
3. **Wall time of ``--updates`` (100) mapped incident updates** (``UpdateIncidentOperator``
   expanded over 100 incident ids, adding a tag): the run's start to end, and per task.

Absolute figures depend on this machine (2 cores shared by every service here); the ratios and
per-item costs are what carry over. Not run by ``make test``.

    .venv/bin/python bench/stack_scale.py [--sensors 1000] [--updates 100] [--hunts 8] [--window 90]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any
from unittest import mock

import psutil

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.e2e.harness import DAGS_FOLDER, EXAMPLE_DAG_IDS, wait_for  # noqa: E402
from tests.stack import harness  # noqa: E402
from tests.stack.compose import Instance, Layout  # noqa: E402

BENCH_DAGS = Path(__file__).resolve().parent / "stack_dags"
SENSORS_DAG = "bench_stack_sensors"
UPDATES_DAG = "bench_stack_updates"
HUNT_DAG = "mtp_adhoc_hunt"


@contextmanager
def bench_stack() -> Iterator[harness.ComposeStack]:
    """The compose stack with a dags folder of the example DAGs and the bench's DAGs (symlinks)."""
    with tempfile.TemporaryDirectory(prefix="mtp-bench-dags-") as folder:
        dags = Path(folder)
        for source in (*DAGS_FOLDER.glob("*.py"), *BENCH_DAGS.glob("*.py")):
            (dags / source.name).symlink_to(source)
        planned = harness.plan

        def plan(compose: dict[str, Any], layout: Layout) -> dict[str, Instance]:
            layout.dags = dags  # the compose file's dags mount, pointed at the bench's folder
            return planned(compose, layout)

        with (
            mock.patch.object(harness, "plan", plan),
            harness.compose_stack(dag_ids=(*EXAMPLE_DAG_IDS, SENSORS_DAG, UPDATES_DAG)) as stack,
        ):
            yield stack


def _instant(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def triggerer_usage(stack: harness.ComposeStack, window: float) -> tuple[float, float]:
    """The triggerer's process tree: RSS (MiB) at the end and CPU (% of one core) over ``window`` s."""

    def tree() -> list[psutil.Process]:
        root = psutil.Process(stack.pid("airflow-triggerer"))
        return [root, *root.children(recursive=True)]

    def cpu(processes: list[psutil.Process]) -> float:
        total = 0.0
        for process in processes:
            try:
                times = process.cpu_times()
            except psutil.NoSuchProcess:
                continue
            total += times.user + times.system
        return total

    before, started = cpu(tree()), time.monotonic()
    time.sleep(window)
    processes = tree()
    used, elapsed = cpu(processes) - before, time.monotonic() - started
    rss = sum(process.memory_info().rss for process in processes) / 2**20
    return rss, 100 * used / elapsed


def _wait_success(stack: harness.ComposeStack, dag_id: str, run_id: str, timeout: float) -> dict[str, Any]:
    return stack.wait_run(dag_id, run_id, timeout=timeout)


def hunt_latencies(stack: harness.ComposeStack, runs: int, label: str) -> list[float]:
    """Seconds from queued to running of the ``hunt`` task, one run at a time."""
    stack.unpause(HUNT_DAG)
    found = []
    for index in range(runs):
        run = stack.api(
            "POST",
            f"/api/v2/dags/{HUNT_DAG}/dagRuns",
            json={
                "dag_run_id": f"bench-{label}-{index}",
                "logical_date": None,
                "conf": {"lookback_hours": 1},
            },
        )
        _wait_success(stack, HUNT_DAG, run["dag_run_id"], 300)
        (hunt,) = [ti for ti in stack.task_instances(HUNT_DAG, run["dag_run_id"]) if ti["task_id"] == "hunt"]
        found.append((_instant(hunt["start_date"]) - _instant(hunt["queued_when"])).total_seconds())
    return found


def mapped_updates(stack: harness.ComposeStack, count: int) -> tuple[float, list[float]]:
    """Wall seconds of one run updating ``count`` incidents, and each update task's duration."""
    ids = [incident["id"] for incident in stack.incidents({"$top": "50"})][:count]
    while len(ids) < count:  # a small tenant: updating an incident twice would not be 100 updates
        ids += [item["id"] for item in stack.emulator.put_incidents({"displayName": f"bench {len(ids)}"})]
    stack.unpause(UPDATES_DAG)
    run = stack.api(
        "POST", f"/api/v2/dags/{UPDATES_DAG}/dagRuns", json={"logical_date": None, "conf": {"ids": ids}}
    )
    run = _wait_success(stack, UPDATES_DAG, run["dag_run_id"], 1800)
    tis: list[dict[str, Any]] = []
    while True:  # the API pages at 100 task instances
        page = stack.api(
            "GET",
            f"/api/v2/dags/{UPDATES_DAG}/dagRuns/{run['dag_run_id']}/taskInstances",
            params={"limit": 100, "offset": len(tis)},
        )["task_instances"]
        tis += page
        if len(page) < 100:
            break
    tis = [ti for ti in tis if ti["task_id"] == "update"]
    wall = (_instant(run["end_date"]) - _instant(run["start_date"])).total_seconds()
    return wall, [float(ti["duration"]) for ti in tis]


def defer_sensors(stack: harness.ComposeStack, count: int) -> float:
    """Trigger ``count`` deferrable sensors; seconds until all of them are deferred."""
    stack.unpause(SENSORS_DAG)
    started = time.monotonic()
    run = stack.api(
        "POST",
        f"/api/v2/dags/{SENSORS_DAG}/dagRuns",
        json={"logical_date": None, "conf": {"sensors": count, "open_hours": 6}},
    )
    path = f"/api/v2/dags/{SENSORS_DAG}/dagRuns/{run['dag_run_id']}/taskInstances"

    def deferred() -> bool:
        stack.check_alive()
        states = {}
        for state in ("deferred", "failed", "upstream_failed"):
            states[state] = stack.api("GET", path, params={"state": state, "limit": 1})["total_entries"]
        if states["failed"] or states["upstream_failed"]:
            raise harness.StackError(
                f"sensors failed: {states}\n{stack.describe_run(SENSORS_DAG, run['dag_run_id'])}"
            )
        return bool(states["deferred"] >= count)

    wait_for(
        deferred,
        timeout=3600,
        what=f"{count} sensors to be deferred",
        explain=lambda: stack.logs("airflow-triggerer", "airflow-scheduler"),
        interval=10.0,
    )
    return time.monotonic() - started


def _spread(values: list[float]) -> str:
    ordered = sorted(values)
    p90 = ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))]
    return f"median {statistics.median(ordered):.2f} s, p90 {p90:.2f} s, max {ordered[-1]:.2f} s (n={len(ordered)})"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sensors", type=int, default=1000)
    parser.add_argument("--updates", type=int, default=100)
    parser.add_argument("--hunts", type=int, default=8)
    parser.add_argument(
        "--window", type=float, default=90.0, help="seconds the triggerer's CPU is averaged over"
    )
    args = parser.parse_args()
    with bench_stack() as stack:
        workers = sum(1 for instance in stack.instances.values() if instance.service == "airflow-worker")
        print(f"stack up: {workers} Celery workers, UI {stack.ui_url}", flush=True)
        idle_rss, idle_cpu = triggerer_usage(stack, args.window)
        print(
            f"triggerer, no deferred task:  RSS {idle_rss:7.1f} MiB, CPU {idle_cpu:5.1f} % of a core",
            flush=True,
        )
        idle = hunt_latencies(stack, args.hunts, "idle")
        print(f"hunt queued -> running, idle cluster: {_spread(idle)}", flush=True)
        wall, durations = mapped_updates(stack, args.updates)
        print(
            f"{args.updates} mapped incident updates: wall {wall:.1f} s ({wall / args.updates:.2f} s per update "
            f"with {workers} workers x their slots); per task {_spread(durations)}",
            flush=True,
        )
        took = defer_sensors(stack, args.sensors)
        print(
            f"{args.sensors} sensors deferred after {took:.0f} s ({took / args.sensors:.2f} s each)",
            flush=True,
        )
        rss, cpu = triggerer_usage(stack, args.window)
        print(
            f"triggerer, {args.sensors} deferred sensors: RSS {rss:7.1f} MiB (+{rss - idle_rss:.1f} MiB, "
            f"{1024 * (rss - idle_rss) / args.sensors:.0f} KiB per sensor), CPU {cpu:5.1f} % of a core "
            f"(+{cpu - idle_cpu:.1f} points; {rss / idle_rss:.2f}x the idle RSS)",
            flush=True,
        )
        loaded = hunt_latencies(stack, args.hunts, "loaded")
        print(f"hunt queued -> running, {args.sensors} sensors deferred: {_spread(loaded)}", flush=True)
        print(
            f"latency ratio loaded / idle (medians): {statistics.median(loaded) / statistics.median(idle):.2f}x",
            flush=True,
        )


if __name__ == "__main__":
    main()
