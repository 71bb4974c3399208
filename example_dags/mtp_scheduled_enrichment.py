"""Hourly process-event hunt over the run's data interval, written to object storage, then aggregated per device.

What it does
    Every hour, ``hunt_process_events`` asks Defender XDR advanced hunting for the process
    creations of the run's data interval (``[data_interval_start, data_interval_end)``: the query
    filters on ``WindowStart``/``WindowEnd``, which the operator binds to that interval) and
    streams the rows to a JSON Lines file. Its outlet ``Asset("mtp://hunting/process-events")``
    records an asset event (with the path, row count and window in its ``extra``), so other DAGs
    can be scheduled on new results. ``per_device`` then reads the file back through
    ``ObjectStoragePath`` (the path comes from the hunt's XCom manifest) and writes a per-device
    summary next to it.

Why it is written this way
    * ``CronDataIntervalTimetable("0 * * * *")`` gives every run a real one-hour data interval, so
      consecutive runs tile time and a rerun or backfill of a run asks exactly the same question.
      On Airflow 3 a plain ``schedule="@hourly"`` or ``schedule=timedelta(hours=1)`` gives
      zero-width intervals (trigger timetables) unless ``[scheduler] create_cron_data_intervals`` /
      ``create_delta_data_intervals`` is on; a manual run of this DAG covers the last full hour.
    * The query is row by row (no aggregation across the window), so ``split_on_limit=True`` is
      valid: an hour that exceeds Defender's 100,000-row limit is cut in halves instead of failing.
    * ``pool="mtp_hunting"`` shares the tenant's hunting quota (45 hunts a minute per tenant, across
      all workers and DAGs) with every other hunting task; ``deferrable=True`` waits out a long
      throttling on the triggerer instead of holding a worker slot.

How to run it
    Needs: the connection ``mtp_default`` (type ``mtp``; see the README), the pool ``mtp_hunting``
    (``airflow pools set mtp_hunting 3 "Defender XDR hunting quota"``) and a triggerer. Results go
    under the Airflow Variable ``mtp_output_root``, else the environment variable
    ``MTP_OUTPUT_ROOT``, else ``file:///tmp/mtp-output``; any ``ObjectStoragePath`` URI works
    (``s3://bucket/mtp``, ``abfs://...``). Unpause the DAG, or try one interval with
    ``airflow dags test mtp_scheduled_enrichment 2026-11-20T12:00:00+00:00`` (the hour before it).
"""

# DAG wiring passes XComArgs where TaskFlow functions declare the values they get at run time.
# mypy: disable-error-code="arg-type"
from __future__ import annotations

import json
import logging
import os
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

from airflow.sdk import DAG, Asset, CronDataIntervalTimetable, ObjectStoragePath, Variable, task

from airflow_provider_mtp.operators.hunting import RunHuntingQueryOperator

log = logging.getLogger(__name__)

#: One pool per tenant for every hunting task: the tenant's quota is shared by all of them.
HUNTING_POOL = "mtp_hunting"
#: Marks new hunting results; downstream DAGs can use ``schedule=[PROCESS_EVENTS]``.
PROCESS_EVENTS = Asset("mtp://hunting/process-events")
DEFAULT_OUTPUT_ROOT = "file:///tmp/mtp-output"

# Row by row (no aggregation over the window): safe to split when an hour exceeds the row limit.
QUERY = """
DeviceProcessEvents
| where Timestamp >= WindowStart and Timestamp < WindowEnd
| project Timestamp, DeviceId, DeviceName, AccountDomain, AccountName, FileName, FolderPath, SHA256,
          ProcessCommandLine, InitiatingProcessFileName, InitiatingProcessCommandLine, ReportId
"""


def output_root() -> str:
    """The results' root URI, read when a task runs (never when the DAG is parsed)."""
    default = os.environ.get("MTP_OUTPUT_ROOT", DEFAULT_OUTPUT_ROOT)
    return str(Variable.get("mtp_output_root", default=default)).rstrip("/")


with DAG(
    dag_id="mtp_scheduled_enrichment",
    description="Hourly Defender XDR process-event hunt to object storage, aggregated per device",
    # Real one-hour data intervals, aligned on the hour (see the docstring).
    schedule=CronDataIntervalTimetable("0 * * * *", timezone="UTC"),
    start_date=datetime(2026, 1, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,
    default_args={"retries": 2, "retry_delay": timedelta(minutes=5)},
    user_defined_macros={"mtp_output_root": output_root},
    tags=["mtp", "defender", "example"],
) as dag:
    hunt = RunHuntingQueryOperator(
        task_id="hunt_process_events",
        query=QUERY,
        # A run triggered without a logical date has no data interval: it hunts the hour before it.
        lookback=timedelta(hours=1),
        # One file per hour, named by the hour's end: a rerun replaces its own file and no other.
        output_path=(
            "{{ mtp_output_root() }}/process-events/"
            "{{ data_interval_end | default(dag_run.run_after, true) | ts_nodash }}.jsonl"
        ),
        split_on_limit=True,
        deferrable=True,
        pool=HUNTING_POOL,
        execution_timeout=timedelta(minutes=30),
        outlets=[PROCESS_EVENTS],
    )

    @task
    def per_device(manifest: dict[str, Any]) -> dict[str, Any]:
        """Count each device's process creations from the hunt's file; write the counts beside it."""
        source = ObjectStoragePath(manifest["path"])
        processes: Counter[str] = Counter()
        programs: defaultdict[str, set[str]] = defaultdict(set)
        with source.open("r") as lines:  # streamed: the file may hold 100,000s of rows
            for line in lines:
                row = json.loads(line)
                device = row.get("DeviceName") or "(unknown)"
                processes[device] += 1
                programs[device].add(str(row.get("FileName") or ""))
        summary = {
            device: {"processes": count, "distinct_programs": len(programs[device])}
            for device, count in processes.most_common()
        }
        target = ObjectStoragePath(manifest["path"].removesuffix(".jsonl") + ".per-device.json")
        with target.open("w") as handle:
            json.dump({"window": manifest["window"], "devices": summary}, handle, indent=1)
        log.info(
            "%d process events on %d devices; busiest: %s",
            manifest["rows"],
            len(summary),
            ", ".join(f"{device} ({count})" for device, count in processes.most_common(3)) or "none",
        )
        return {"path": str(target), "rows": manifest["rows"], "devices": len(summary)}

    per_device(hunt.output)
