"""Hourly incident triage: wait for updated incidents, hunt each device's timeline, tag, comment, ask an analyst, notify.

What it does
    1. ``wait_for_incidents`` (a deferrable ``IncidentSensor``) lists the active, high-severity
       incidents last updated in the run's data interval, shifted back by the sensor's 5-minute
       ingestion lag. None: the run is skipped.
    2. ``find_devices`` reads each incident's alerts and keeps the endpoint incidents not triaged
       yet (no ``airflow-triaged`` tag): the device named by the latest alert on a device, and that
       alert's activity, padded by an hour each side.
    3. ``device_timeline`` (``RunHuntingQueryOperator``, one mapped task per incident) hunts that
       device's process and network events over that span into one JSON Lines file per incident.
       The device name reaches KQL only as the bound parameter ``device``, never pasted into it.
    4. ``decide`` is the automatic part of the policy (replace it with yours): a tag and a comment
       with the timeline's size and path, and the evidence Defender itself judged malicious.
    5. ``update_incident`` (``UpdateIncidentOperator``, mapped) applies it. A retried task does not
       post its comment twice.
    6. ``review`` (the standard provider's ``HITLOperator``, one per incident) asks an analyst in the
       Airflow UI (Browse -> Required Actions, or the task's "Required Actions" tab): a Markdown
       summary (the incident, its alerts and evidence, what the timeline hunt found, a portal link;
       tenant text escaped) and a choice of classification and determination, or "Leave for
       later". Nobody answering within ``REVIEW_TIMEOUT`` is "Leave for later".
    7. ``apply_review`` (``UpdateIncidentOperator``, mapped over the answers that chose something)
       sets exactly the chosen classification and determination, with a comment naming who chose.
       "Leave for later" changes nothing. A retry sends the same values (they come from the
       recorded answer) and does not post its comment twice.
    8. ``notify_webhook`` (the http provider's ``HttpOperator``) posts a JSON summary, with a
       Slack-style ``text`` line, to the ``mtp_webhook`` connection.

Why it is written this way
    * ``CronDataIntervalTimetable("0 * * * *")`` gives real one-hour data intervals (a plain
      ``@hourly`` or ``timedelta`` schedule gives zero-width ones on Airflow 3), so consecutive runs
      tile time: each incident update is triaged by exactly one run, and a rerun asks the same
      question. A manual run covers the last full hour.
    * The sensor defers to the triggerer (``deferrable=True``) rather than holding a worker slot.
    * Writes (PATCH, comments) happen in worker tasks, never in a trigger.
    * Hunting tasks share the tenant's quota (45 hunts a minute per tenant, across all workers)
      through the pool ``mtp_hunting``; ``max_incidents`` bounds how many hunts one run may start.
    * A person decides the classification; the DAG only prepares the decision. The pieces
      (summary, choices, answer -> update) are :mod:`airflow_provider_mtp.triage_review`, shared
      with the alert example. Tags and the comment go on before the review, so a later run (up to
      ``max_active_runs`` run at once while analysts take their time) skips an incident under review.
    * The triage itself updates incidents. An event-driven DAG watching the same incidents
      (``mtp_incident_events``) sees those updates too; it only logs them, so nothing loops.

How to run it
    Needs: the connection ``mtp_default`` (type ``mtp``, with incident write permission:
    ``SecurityIncident.ReadWrite.All`` on Graph), the pool ``mtp_hunting``
    (``airflow pools set mtp_hunting 3 "Defender XDR hunting quota"``), a triggerer, and an HTTP
    connection ``mtp_webhook`` whose host is the full webhook URL, e.g.
    ``AIRFLOW_CONN_MTP_WEBHOOK='{"conn_type": "http", "host": "https://hooks.example.com/T0/B0/x"}'``.
    Timelines go under the Airflow Variable ``mtp_output_root``, else the environment variable
    ``MTP_OUTPUT_ROOT``, else ``file:///tmp/mtp-output``. Unpause the DAG, or try one hour with
    ``airflow dags test mtp_incident_triage 2026-11-20T12:00:00+00:00``.
"""

# DAG wiring passes XComArgs where TaskFlow functions declare the values they get at run time.
# mypy: disable-error-code="arg-type"
from __future__ import annotations

import json
import logging
import os
from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from airflow.providers.http.operators.http import HttpOperator
from airflow.providers.standard.operators.hitl import HITLOperator
from airflow.sdk import DAG, CronDataIntervalTimetable, ObjectStoragePath, Variable, task
from airflow.sdk.exceptions import AirflowSkipException

from airflow_provider_mtp.operators.hunting import RunHuntingQueryOperator
from airflow_provider_mtp.operators.incidents import UpdateIncidentOperator
from airflow_provider_mtp.sensors.incidents import IncidentSensor
from airflow_provider_mtp.triage_review import (
    LEAVE_FOR_LATER,
    HuntFindings,
    break_templates,
    decision_changes,
    review_markdown,
    review_options,
    review_subject,
    review_updates,
)

log = logging.getLogger(__name__)

MTP_CONN_ID = "mtp_default"
HUNTING_POOL = "mtp_hunting"
TRIAGE_TAG = "airflow-triaged"
#: The window of a run triggered without a logical date (it has no data interval).
LOOKBACK = timedelta(hours=1)
#: How far before the first and after the last alert activity the timeline reaches.
TIMELINE_PADDING = timedelta(hours=1)
DEFAULT_OUTPUT_ROOT = "file:///tmp/mtp-output"
#: How long an analyst has to answer a review; then it is "Leave for later" (nothing changes).
REVIEW_TIMEOUT = timedelta(hours=2)
#: Timeline rows read for the review's "most frequent" lines.
TIMELINE_SAMPLE_ROWS = 50_000

# `device` is bound by the operator as a typed string literal placed before the query; the window
# (WindowStart/WindowEnd) is the alerts' activity span. Row by row, so safe to split.
TIMELINE = """
union
    (DeviceProcessEvents
        | where Timestamp >= WindowStart and Timestamp < WindowEnd
        | where DeviceName =~ device or DeviceName startswith strcat(device, ".")
        | project Timestamp, DeviceName, Kind = "process", ActionType, FileName,
                  CommandLine = ProcessCommandLine, AccountName,
                  RemoteIP = "", RemotePort = int(null), RemoteUrl = ""),
    (DeviceNetworkEvents
        | where Timestamp >= WindowStart and Timestamp < WindowEnd
        | where DeviceName =~ device or DeviceName startswith strcat(device, ".")
        | project Timestamp, DeviceName, Kind = "network", ActionType, FileName = InitiatingProcessFileName,
                  CommandLine = InitiatingProcessCommandLine, AccountName = InitiatingProcessAccountName,
                  RemoteIP, RemotePort, RemoteUrl)
| sort by Timestamp asc
"""


def output_root() -> str:
    """The results' root URI, read when a task runs (never when the DAG is parsed)."""
    default = os.environ.get("MTP_OUTPUT_ROOT", DEFAULT_OUTPUT_ROOT)
    return str(Variable.get("mtp_output_root", default=default)).rstrip("/")


def _instant(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _device_name(alert: Mapping[str, Any]) -> str | None:
    """The device the alert's evidence names: its host name, which ``DeviceName`` starts with."""
    for evidence in alert.get("evidence") or ():
        if str(evidence.get("@odata.type", "")).endswith("deviceEvidence"):
            name = evidence.get("hostName") or str(evidence.get("deviceDnsName") or "").split(".")[0]
            if name:
                return str(name)
    return None


def _timeline_span(alert: Mapping[str, Any]) -> tuple[datetime, datetime]:
    """The alert's activity, padded on both sides."""
    first = alert.get("firstActivityDateTime") or alert["createdDateTime"]
    last = alert.get("lastActivityDateTime") or alert["createdDateTime"]
    return _instant(first) - TIMELINE_PADDING, _instant(last) + TIMELINE_PADDING


def _latest_on_a_device(alerts: Sequence[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    """The most recent alert that names a device (an incident's alerts may span weeks)."""
    on_devices = [alert for alert in alerts if _device_name(alert)]
    return max(on_devices, key=lambda alert: _timeline_span(alert)[1], default=None)


def _malicious_evidence(alerts: Sequence[Mapping[str, Any]]) -> list[str]:
    """What Defender judged malicious in the alerts' evidence: file names, addresses, URLs."""
    names: set[str] = set()
    for alert in alerts:
        for evidence in alert.get("evidence") or ():
            if evidence.get("verdict") != "malicious":
                continue
            file = evidence.get("imageFile") or evidence.get("fileDetails") or {}
            name = file.get("fileName") or evidence.get("ipAddress") or evidence.get("url")
            names.add(str(name or str(evidence.get("@odata.type", "evidence")).rsplit(".", 1)[-1]))
    return sorted(names)


def _timeline_counts(path: str) -> dict[str, dict[str, int]]:
    """The timeline's most frequent processes and remote ends, for the analyst's summary."""
    counts: dict[str, Counter[str]] = {"processes": Counter(), "remote addresses": Counter()}
    with ObjectStoragePath(path).open("r") as lines:
        for _, line in zip(range(TIMELINE_SAMPLE_ROWS), lines, strict=False):
            row = json.loads(line)
            if row.get("Kind") == "process" and row.get("FileName"):
                counts["processes"][str(row["FileName"])] += 1
            elif row.get("Kind") == "network" and (row.get("RemoteUrl") or row.get("RemoteIP")):
                counts["remote addresses"][str(row.get("RemoteUrl") or row["RemoteIP"])] += 1
    return {column: dict(values.most_common(5)) for column, values in counts.items()}


def _timeline_kwargs(target: Mapping[str, Any]) -> dict[str, Any]:
    """One mapped hunt's arguments: the device is a bound parameter, the span its window."""
    return {
        "query_parameters": {"device": target["device"]},
        "start": target["start"],
        "end": target["end"],
        "output_path": target["timeline_path"],
    }


with DAG(
    dag_id="mtp_incident_triage",
    description="Triage updated Defender XDR incidents: device timelines, tags, comments, a webhook",
    # Real one-hour data intervals, aligned on the hour (see the docstring).
    schedule=CronDataIntervalTimetable("0 * * * *", timezone="UTC"),
    start_date=datetime(2026, 1, 1, tzinfo=UTC),
    catchup=False,
    # Runs wait up to REVIEW_TIMEOUT for their analysts: later hours must not wait behind them
    # (with catchup=False a waiting hour would be skipped, not run later).
    max_active_runs=4,
    default_args={"retries": 2, "retry_delay": timedelta(minutes=2)},
    tags=["mtp", "defender", "example"],
) as dag:
    incidents = IncidentSensor(
        task_id="wait_for_incidents",
        mtp_conn_id=MTP_CONN_ID,
        status="active",
        severity="high",
        max_incidents=50,  # at most 50 timelines (hunts) per run; more fails the run, loudly
        lookback=LOOKBACK,
        deferrable=True,
        poke_interval=120,
        timeout=timedelta(hours=2),
    )

    @task
    def find_devices(
        incidents: list[dict[str, Any]], data_interval_end: datetime | None = None
    ) -> list[dict[str, Any]]:
        """The endpoint incidents: the device each names and where its timeline will go."""
        from airflow_provider_mtp.hooks.mtp import MTPHook

        hook = MTPHook(mtp_conn_id=MTP_CONN_ID)
        folder = f"{output_root()}/incident-triage/{(data_interval_end or datetime.now(UTC)):%Y%m%dT%H%M%S}"
        targets = []
        for summary in incidents:
            incident = hook.get_incident(summary["id"], include_alerts=True)
            if TRIAGE_TAG in (incident.get("customTags") or ()):
                # Our own update moved it into a later window: triage each incident once.
                log.info("Incident %s is already triaged", summary["id"])
                continue
            alerts = incident.get("alerts") or []
            alert = _latest_on_a_device(alerts)
            if alert is None:
                log.info("Incident %s (%s) names no device: no timeline", summary["id"], summary["title"])
                continue
            device = _device_name(alert)
            start, end = _timeline_span(alert)
            targets.append(
                {
                    "incident_id": summary["id"],
                    "title": summary["title"],
                    "severity": summary["severity"],
                    "portal_url": summary["portal_url"],
                    "classification": incident.get("classification"),
                    "device": device,
                    "malicious": _malicious_evidence(alerts),
                    "start": start.isoformat(),
                    "end": end.isoformat(),
                    "timeline_path": f"{folder}/incident-{summary['id']}-{device}.jsonl",
                }
            )
        log.info("%d of %d incidents to triage", len(targets), len(incidents))
        return targets

    targets = find_devices(incidents.output)

    timelines = RunHuntingQueryOperator.partial(
        task_id="device_timeline",
        mtp_conn_id=MTP_CONN_ID,
        query=TIMELINE,
        split_on_limit=True,
        deferrable=True,
        pool=HUNTING_POOL,
        execution_timeout=timedelta(minutes=30),
    ).expand_kwargs(targets.map(_timeline_kwargs))

    @task
    def decide(targets: list[dict[str, Any]], timelines: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        """The automatic part of the triage policy: a tag and a comment. Replace it with your own rules."""
        updates = []
        # [:] reads every mapped result in one call.
        for target, timeline in zip(targets, timelines[:], strict=True):
            comment = (
                f"Airflow triage: {timeline['rows']} process and network events on {target['device']} "
                f"from {target['start']} to {target['end']} (the latest alert's activity ± 1 h); timeline: "
                f"{timeline['path']}."
            )
            if target["malicious"]:
                comment += f" Evidence Defender judged malicious: {', '.join(target['malicious'])}."
            # The comment holds tenant text (device and file names) and is a template field that
            # Airflow renders, values from XCom included: no template may survive in it.
            updates.append(
                {
                    "incident_id": target["incident_id"],
                    "tags": [TRIAGE_TAG],
                    "comment": break_templates(comment),
                }
            )
        return updates

    decisions = decide(targets, timelines.output)

    updated = UpdateIncidentOperator.partial(
        task_id="update_incident", mtp_conn_id=MTP_CONN_ID, add_tags=True
    ).expand_kwargs(decisions)

    @task
    def review_requests(
        targets: list[dict[str, Any]], timelines: Sequence[dict[str, Any]]
    ) -> list[dict[str, str]]:
        """What each analyst reads: the incident as it is now (tagged, commented), the timeline's highlights."""
        from airflow_provider_mtp.hooks.mtp import MTPHook
        from airflow_provider_mtp.links import incident_portal_url

        hook = MTPHook(mtp_conn_id=MTP_CONN_ID)
        requests = []
        for target, timeline in zip(targets, timelines[:], strict=True):
            incident = hook.get_incident(target["incident_id"], include_alerts=True)
            found = HuntFindings(
                title=f"Process and network events on {target['device']}",
                rows=timeline["rows"],
                window=f"{target['start']} to {target['end']}",
                location=timeline["path"],
                counts=_timeline_counts(timeline["path"]),
            )
            body = review_markdown(
                incident,
                findings=[found],
                portal_url=incident_portal_url(hook.settings, target["incident_id"]),
            )
            requests.append({"subject": review_subject(incident), "body": body})
        return requests

    requests = review_requests(targets, timelines.output)
    updated >> requests

    # One review per incident, answered in the UI; its result (XCom) holds the chosen option.
    reviews = HITLOperator.partial(
        task_id="review",
        options=review_options(),
        defaults=[LEAVE_FOR_LATER],
        response_timeout=REVIEW_TIMEOUT,
    ).expand_kwargs(requests)

    @task
    def answers(targets: list[dict[str, Any]], reviews: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        """The analysts' choices as updates; "Leave for later" (or no answer in time) gives none."""
        return review_updates([target["incident_id"] for target in targets], reviews[:])

    chosen = answers(targets, reviews.output)

    applied = UpdateIncidentOperator.partial(task_id="apply_review", mtp_conn_id=MTP_CONN_ID).expand_kwargs(
        chosen
    )

    # After the chosen changes are applied; none chosen (every review left for later) is fine too.
    @task(trigger_rule="none_failed")
    def webhook_message(
        targets: list[dict[str, Any]],
        timelines: Sequence[dict[str, Any]],
        decisions: list[dict[str, Any]],
        updated: Sequence[dict[str, Any]],
        reviews: Sequence[dict[str, Any]],
        data_interval_start: datetime | None = None,
        data_interval_end: datetime | None = None,
    ) -> str:
        """A JSON summary with a Slack-style ``text`` line, for the webhook."""
        if not targets:
            raise AirflowSkipException("no incident was triaged: nothing to report")
        answered = [decision_changes(review) or {} for review in reviews[:]]
        incidents = [
            {
                "id": target["incident_id"],
                "title": target["title"],
                "severity": target["severity"],
                "status": incident["status"],
                "device": target["device"],
                "timeline_rows": timeline["rows"],
                "timeline_path": timeline["path"],
                "classification": answer.get("classification") or target["classification"],
                "determination": answer.get("determination"),
                "tags_added": decision["tags"],
                "portal_url": target["portal_url"],
            }
            for target, timeline, decision, incident, answer in zip(
                targets, timelines[:], decisions, updated[:], answered, strict=True
            )
        ]
        rows = sum(item["timeline_rows"] for item in incidents)
        classified = sum(1 for answer in answered if answer)
        end = data_interval_end or datetime.now(UTC)  # no interval: the sensor's lookback
        hour = f"{data_interval_start or end - LOOKBACK:%Y-%m-%d %H:%M}-{end:%H:%M} UTC"
        text = (
            f"Defender XDR triage, {hour}: {len(incidents)} incident(s) tagged and commented, "
            f"{classified} classified by an analyst, {rows} timeline events."
        )
        log.info("%s", text)
        return json.dumps({"text": text, "incidents": incidents})

    message = webhook_message(targets, timelines.output, decisions, updated.output, reviews.output)
    applied >> message

    HttpOperator(
        task_id="notify_webhook",
        http_conn_id="mtp_webhook",
        method="POST",
        data=message,
        headers={"Content-Type": "application/json"},
    )
