"""Event-driven: a DAG run for every batch of new or updated high-severity incidents (``AssetWatcher``).

What it does
    The asset ``mtp_incident_updates`` is watched by an ``IncidentEventTrigger`` that runs on the
    triggerer, polls the incident list and fires one event per incident update (active or in
    progress, high severity). Each event becomes an asset event whose ``extra["payload"]`` is the
    incident's summary (``id``, ``title``, ``severity``, ``status``, ``last_update``, ``portal_url``,
    ``key``), and the scheduler starts this DAG (``schedule=[that asset]``). ``handle_updates``
    reads the run's ``triggering_asset_events`` (one run may carry several), drops the updates it
    has handled before and logs the new ones: put your own reaction there (open a ticket, page).

Why it is written this way
    * Delivery is at least once: the trigger keeps its cursor in memory, so after a triggerer
      restart updates already delivered are delivered again. Handling is therefore idempotent on
      the key ``(id, last_update)``: a marker object per handled update under
      ``<output root>/incident-events/seen/`` (object storage, so every worker sees it).
    * The trigger's arguments identify it (Airflow hashes them): they are constants, and ``start``
      is left out so the watch starts when the triggerer starts it.
    * Another DAG's writes to the same incidents (``mtp_incident_triage``) show up here as updates
      too; this DAG only reads, so the two never loop.
    * The ``replay`` param lets you hand the DAG updates yourself, in the payload's shape, from
      the trigger form or ``airflow dags test`` (manual runs carry no asset events): for a rerun
      after a failure, or to test the handler. Replays go through the same deduplication.

How to run it
    Needs: the connection ``mtp_default`` (type ``mtp``), a running triggerer and scheduler, and
    the DAG unpaused (the watcher starts then). ``MTP_INCIDENT_POLL_SECONDS`` (read where the DAG
    is parsed; default 60) sets how often the trigger polls. Handled-update markers go under the
    Airflow Variable ``mtp_output_root``, else the environment variable ``MTP_OUTPUT_ROOT``, else
    ``file:///tmp/mtp-output``. Replay by hand:
    ``airflow dags test mtp_incident_events -c '{"replay": [{"id": "1000", "last_update": "..."}]}'``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from airflow.sdk import DAG, Asset, AssetWatcher, ObjectStoragePath, Param, Variable, task

from airflow_provider_mtp.triggers.incidents import IncidentEventTrigger

log = logging.getLogger(__name__)

DEFAULT_OUTPUT_ROOT = "file:///tmp/mtp-output"

INCIDENT_UPDATES = Asset(
    name="mtp_incident_updates",
    watchers=[
        AssetWatcher(
            name="mtp_high_severity_incidents",
            trigger=IncidentEventTrigger(
                mtp_conn_id="mtp_default",
                status=["active", "inProgress"],
                severity=["high"],
                poll_interval=float(os.environ.get("MTP_INCIDENT_POLL_SECONDS", "60")),
            ),
        )
    ],
)


def output_root() -> str:
    """The results' root URI, read when a task runs (never when the DAG is parsed)."""
    default = os.environ.get("MTP_OUTPUT_ROOT", DEFAULT_OUTPUT_ROOT)
    return str(Variable.get("mtp_output_root", default=default)).rstrip("/")


def _payloads(triggering_asset_events: Mapping[Any, Iterable[Any]]) -> list[dict[str, Any]]:
    """The incident summaries the watcher's events carry (``extra["payload"]``)."""
    return [
        dict(event.extra["payload"])
        for events in triggering_asset_events.values()
        for event in events
        if isinstance(event.extra.get("payload"), Mapping)
    ]


with DAG(
    dag_id="mtp_incident_events",
    description="React to new or updated high-severity Defender XDR incidents, at least once, deduplicated",
    schedule=[INCIDENT_UPDATES],
    start_date=datetime(2026, 1, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,  # one handler at a time, so two runs never race on the same marker
    params={
        "replay": Param(
            [],
            type="array",
            items={"type": "object", "required": ["id", "last_update"]},
            title="Replay incident updates",
            description='Updates to handle by hand, e.g. [{"id": "1000", "last_update": "..."}]. '
            "Empty for event-driven runs.",
        )
    },
    tags=["mtp", "defender", "example"],
) as dag:

    @task
    def handle_updates(
        triggering_asset_events: Mapping[Any, Iterable[Any]] | None = None,
        params: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Handle each incident update once, whatever the trigger delivered twice."""
        updates = _payloads(triggering_asset_events or {}) + list((params or {}).get("replay") or [])
        seen = ObjectStoragePath(f"{output_root()}/incident-events/seen")
        seen.mkdir(parents=True, exist_ok=True)
        handled: list[str] = []
        duplicates = 0
        for update in updates:
            key = f"{update['id']}@{update['last_update']}"
            marker = seen / key.replace(":", "")  # object names without ':' work on every store
            if key in handled or marker.exists():
                duplicates += 1
                continue
            log.info(
                "Incident %s (%s, %s) updated at %s: %s %s",
                update["id"],
                update.get("severity"),
                update.get("status"),
                update["last_update"],
                update.get("title"),
                update.get("portal_url") or "",
            )
            marker.touch()  # after handling: a crash before this line means handling it again
            handled.append(key)
        log.info("%d update(s) handled, %d duplicate(s) skipped", len(handled), duplicates)
        return {"handled": handled, "duplicates": duplicates}

    handle_updates()
