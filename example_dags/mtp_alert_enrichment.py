"""Hourly alert enrichment: hunt around each new alert's device, comment, close the known-benign, ask an analyst.

What it does
    1. ``wait_for_alerts`` (a deferrable ``AlertSensor``) lists the new, high- and medium-severity
       alerts last updated in the run's data interval, shifted back by the sensor's 5-minute
       ingestion lag. None: the run is skipped.
    2. ``find_devices`` reads each alert with its evidence and keeps those not enriched yet (no
       ``Airflow enrichment:`` comment) that name a device: the first device of the evidence
       (:func:`airflow_provider_mtp.evidence.evidence_of`) and the alert's activity, padded by an
       hour each side. It also looks each alert up in :data:`KNOWN_BENIGN`, this tenant's table of
       detector alerts known to be benign.
    3. ``device_activity`` (``RunHuntingQueryOperator``, one mapped task per alert) counts that
       device's process, network, logon and file events over that span, by kind and value, into
       one JSON Lines file per alert. The device name reaches KQL only as the bound parameter
       ``device``, never pasted into it.
    4. ``decide`` is the automatic part of the policy (replace it with yours): a comment with what
       the hunt found; an alert in :data:`KNOWN_BENIGN` is also resolved as
       ``informationalExpectedActivity`` with the table's determination (``securityTesting``,
       ``lineOfBusinessApplication``).
    5. ``update_alert`` (``UpdateAlertOperator``, mapped) applies it. A retried task does not post
       its comment twice.
    6. ``review`` (the standard provider's ``HITLOperator``, one per alert not closed as benign)
       asks an analyst in the Airflow UI (Browse -> Required Actions): a Markdown summary (the
       alert, its evidence, what the hunt found, a portal link; tenant text escaped) and a choice
       of classification and determination, or "Leave for later". Nobody answering within
       ``REVIEW_TIMEOUT`` is "Leave for later".
    7. ``apply_review`` (``UpdateAlertOperator``, mapped over the answers that chose something)
       sets exactly the chosen classification and determination, with a comment naming who chose.
    8. ``summary`` logs one line: alerts hunted, events found, closed as benign, classified by an
       analyst.

Why it is written this way
    * ``CronDataIntervalTimetable("0 * * * *")`` gives real one-hour data intervals (a plain
      ``@hourly`` or ``timedelta`` schedule gives zero-width ones on Airflow 3), so consecutive runs
      tile time: each alert update is enriched by exactly one run, and a rerun asks the same
      question. A manual run covers the last full hour.
    * The sensor defers to the triggerer (``deferrable=True``) rather than holding a worker slot.
      Writes (PATCH, comments) happen in worker tasks, never in a trigger.
    * Hunting tasks share the tenant's quota (45 hunts a minute per tenant, across all workers)
      through the pool ``mtp_hunting``; ``max_alerts`` bounds how many hunts one run may start.
    * Our own comment updates the alert, which moves it into a later hour's window: the comment
      is also the "already enriched" mark, so each alert is enriched once (and a benign one,
      resolved, no longer matches ``status="new"``).
    * The benign rules are data (:data:`KNOWN_BENIGN`: detection source, title pattern,
      determination, reason), reviewed like code; the reason goes into the alert's comment.
    * A person decides everything else; the DAG only prepares the decision, with the pieces of
      :mod:`airflow_provider_mtp.triage_review` that the incident triage example uses too.
    * Only the Microsoft Graph security API can comment on and classify alerts (the legacy MTP API
      has no alerts endpoint). ``find_devices`` checks the connection first and fails, before any
      hunt and without retries, saying to set ``api`` to ``graph``.

How to run it
    Needs: the connection ``mtp_default`` (type ``mtp``, ``api`` ``graph``, with alert write
    permission ``SecurityAlert.ReadWrite.All`` and ``ThreatHunting.Read.All``), the pool
    ``mtp_hunting`` (``airflow pools set mtp_hunting 3 "Defender XDR hunting quota"``) and a
    triggerer. Hunt results go under the Airflow Variable ``mtp_output_root``, else the environment
    variable ``MTP_OUTPUT_ROOT``, else ``file:///tmp/mtp-output``. Unpause the DAG, or try one hour
    with ``airflow dags test mtp_alert_enrichment 2026-11-20T12:00:00+00:00``.
"""

# DAG wiring passes XComArgs where TaskFlow functions declare the values they get at run time.
# mypy: disable-error-code="arg-type"
from __future__ import annotations

import fnmatch
import json
import logging
import os
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

from airflow.providers.standard.operators.hitl import HITLOperator
from airflow.sdk import DAG, CronDataIntervalTimetable, ObjectStoragePath, Variable, task
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from airflow_provider_mtp.enums import AlertStatus, Classification, Determination
from airflow_provider_mtp.operators.alerts import UpdateAlertOperator
from airflow_provider_mtp.operators.hunting import RunHuntingQueryOperator
from airflow_provider_mtp.sensors.alerts import AlertSensor
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
#: How every comment this DAG writes begins; an alert carrying one is not enriched again.
COMMENT_PREFIX = "Airflow enrichment:"
#: The window of a run triggered without a logical date (it has no data interval).
LOOKBACK = timedelta(hours=1)
#: How far before the first and after the last alert activity the hunt reaches.
HUNT_PADDING = timedelta(hours=1)
DEFAULT_OUTPUT_ROOT = "file:///tmp/mtp-output"
#: How long an analyst has to answer a review; then it is "Leave for later" (nothing changes).
REVIEW_TIMEOUT = timedelta(hours=2)
#: Values per kind of event named in the comment and the review, and the characters kept of each.
TOP_VALUES = 5
VALUE_CHARACTERS = 100


class KnownBenign(NamedTuple):
    """A detector's alerts known to be benign in this tenant: closed without asking anyone.

    :param detection_source: the alert's ``detectionSource`` (Graph spelling).
    :param title: a shell-style pattern (``fnmatch``, case-insensitive) for the alert's title.
    :param determination: what the alert is closed as (``securityTesting``,
        ``lineOfBusinessApplication``, ...), with ``classification=informationalExpectedActivity``.
    :param reason: why it is benign, for the alert's comment: who owns the activity.
    """

    detection_source: str
    title: str
    determination: Determination
    reason: str

    def matches(self, alert: Mapping[str, Any]) -> bool:
        return alert.get("detectionSource") == self.detection_source and fnmatch.fnmatchcase(
            str(alert.get("title") or "").casefold(), self.title.casefold()
        )


#: This tenant's known-benign detector alerts (an example: replace with your own, reviewed like code).
KNOWN_BENIGN: tuple[KnownBenign, ...] = (
    KnownBenign(
        detection_source="microsoftDefenderForEndpoint",
        title="Suspicious service launched with PsExec",
        determination=Determination.LINE_OF_BUSINESS_APPLICATION,
        reason="IT's software deployment starts its installers on workstations with PsExec",
    ),
    KnownBenign(
        detection_source="microsoftDefenderForEndpoint",
        title="Multiple failed sign-in attempts on*",
        determination=Determination.SECURITY_TESTING,
        reason="the red team's scheduled password audit tries the built-in accounts of every device",
    ),
)

# `device` is bound by the operator as a typed string literal placed before the query; the window
# (WindowStart/WindowEnd) is the alert's padded activity. Counts by kind and value: small, and all
# an analyst reads first; the raw events are one click away (the task's advanced-hunting link).
DEVICE_ACTIVITY = """
let OnDevice = (T: (Timestamp: datetime, DeviceName: string)) {
    T
    | where Timestamp >= WindowStart and Timestamp < WindowEnd
    | where DeviceName =~ device or DeviceName startswith strcat(device, ".")
};
union
    (OnDevice(DeviceProcessEvents) | project Timestamp, Kind = "processes", Value = FileName),
    (OnDevice(DeviceNetworkEvents)
        | project Timestamp, Kind = "remote addresses", Value = iff(isempty(RemoteUrl), RemoteIP, RemoteUrl)),
    (OnDevice(DeviceLogonEvents)
        | project Timestamp, Kind = "logons", Value = strcat(AccountName, " (", ActionType, ")")),
    (OnDevice(DeviceFileEvents) | project Timestamp, Kind = "file events", Value = FileName)
| summarize Events = count(), First = min(Timestamp), Last = max(Timestamp) by Kind, Value
| sort by Kind asc, Events desc, Value asc
"""


def output_root() -> str:
    """The results' root URI, read when a task runs (never when the DAG is parsed)."""
    default = os.environ.get("MTP_OUTPUT_ROOT", DEFAULT_OUTPUT_ROOT)
    return str(Variable.get("mtp_output_root", default=default)).rstrip("/")


def known_benign(alert: Mapping[str, Any]) -> KnownBenign | None:
    """The first :data:`KNOWN_BENIGN` rule the alert matches, if any."""
    return next((rule for rule in KNOWN_BENIGN if rule.matches(alert)), None)


def _enriched(alert: Mapping[str, Any]) -> bool:
    return any(
        str(item.get("comment") or "").startswith(COMMENT_PREFIX)
        for item in alert.get("comments") or ()
        if isinstance(item, Mapping)
    )


def _activity_span(alert: Mapping[str, Any]) -> tuple[datetime, datetime]:
    """The alert's activity, padded on both sides."""
    first = alert.get("firstActivityDateTime") or alert["createdDateTime"]
    last = alert.get("lastActivityDateTime") or alert["createdDateTime"]
    return (
        datetime.fromisoformat(first.replace("Z", "+00:00")) - HUNT_PADDING,
        datetime.fromisoformat(last.replace("Z", "+00:00")) + HUNT_PADDING,
    )


def _span_text(target: Mapping[str, Any]) -> str:
    """The hunt's span for people: ``2026-11-20 09:15 to 11:12 UTC`` (the day again if it changes)."""
    start, end = (datetime.fromisoformat(target[name]) for name in ("start", "end"))
    end_format = "%H:%M" if end.date() == start.date() else "%Y-%m-%d %H:%M"
    return f"{start:%Y-%m-%d %H:%M} to {end.strftime(end_format)} UTC"


def _activity(path: str) -> dict[str, dict[str, int]]:
    """The hunt's rows as ``{kind: {value: events}}``, most frequent first."""
    counts: dict[str, dict[str, int]] = {}
    with ObjectStoragePath(path).open("r") as lines:
        for line in lines:
            row = json.loads(line)
            counts.setdefault(str(row["Kind"]), {})[str(row["Value"])] = int(row["Events"])
    return {
        kind: dict(sorted(values.items(), key=lambda item: (-item[1], item[0])))
        for kind, values in counts.items()
    }


def _findings(target: Mapping[str, Any], hunt: Mapping[str, Any]) -> HuntFindings:
    """What the alert's hunt found, as the review and the comment show it."""
    counts = _activity(hunt["path"])
    return HuntFindings(
        title=f"Events on {target['device']}",
        rows=sum(sum(values.values()) for values in counts.values()),
        window=_span_text(target),
        location=hunt["path"],
        counts={kind: dict(list(values.items())[:TOP_VALUES]) for kind, values in counts.items()},
    )


def _hunt_kwargs(target: Mapping[str, Any]) -> dict[str, Any]:
    """One mapped hunt's arguments: the device is a bound parameter, the span its window."""
    return {
        "query_parameters": {"device": target["device"]},
        "start": target["start"],
        "end": target["end"],
        "output_path": target["hunt_path"],
    }


def _comment(target: Mapping[str, Any], found: HuntFindings) -> str:
    """What the hunt found, as one comment (Defender shows comments as plain text)."""
    most = "; ".join(
        f"{kind}: " + ", ".join(f"{value[:VALUE_CHARACTERS]} ({events})" for value, events in values.items())
        for kind, values in found.counts.items()
    )
    text = (
        f"{COMMENT_PREFIX} {found.rows} events on {target['device']}, {_span_text(target)} "
        f"(the alert's activity ± {HUNT_PADDING / timedelta(hours=1):g} h)"
        f"{'; most frequent ' + most if most else ''}. Counts by value: {found.location}."
    )
    benign = target["known_benign"]
    if benign:
        text += f" Closed as known benign ({benign['determination']}): {benign['reason']}."
    # Tenant text (device, file and account names) in a template field that Airflow renders, values
    # from XCom included: no template may survive in it.
    return break_templates(text)


with DAG(
    dag_id="mtp_alert_enrichment",
    description="Enrich new Defender XDR alerts with a hunt around their device; close known-benign ones; ask an analyst",
    # Real one-hour data intervals, aligned on the hour (see the docstring).
    schedule=CronDataIntervalTimetable("0 * * * *", timezone="UTC"),
    start_date=datetime(2026, 1, 1, tzinfo=UTC),
    catchup=False,
    # Runs wait up to REVIEW_TIMEOUT for their analysts: later hours must not wait behind them.
    max_active_runs=4,
    default_args={"retries": 2, "retry_delay": timedelta(minutes=2)},
    tags=["mtp", "defender", "example"],
) as dag:
    alerts = AlertSensor(
        task_id="wait_for_alerts",
        mtp_conn_id=MTP_CONN_ID,
        status="new",
        severity=["high", "medium"],
        max_alerts=50,  # at most 50 hunts per run; more fails the run, loudly
        lookback=LOOKBACK,
        deferrable=True,
        poke_interval=120,
        timeout=timedelta(hours=2),
    )

    @task
    def find_devices(
        alerts: list[dict[str, Any]], data_interval_end: datetime | None = None
    ) -> list[dict[str, Any]]:
        """The alerts to enrich: the device each names, its padded activity, where the hunt goes."""
        from airflow_provider_mtp.evidence import evidence_of
        from airflow_provider_mtp.hooks.mtp import MTPHook

        hook = MTPHook(mtp_conn_id=MTP_CONN_ID)
        if hook.settings.api != "graph":
            # Not retried: a retry would meet the same connection.
            raise AirflowFailException(
                f"mtp_alert_enrichment comments on and classifies alerts, which only the Microsoft Graph "
                f"security API can do, but the connection {MTP_CONN_ID!r} uses the legacy MTP API: set its "
                "extra 'api' to 'graph' (with SecurityAlert.ReadWrite.All granted to the app)."
            )
        folder = f"{output_root()}/alert-enrichment/{(data_interval_end or datetime.now(UTC)):%Y%m%dT%H%M%S}"
        targets = []
        for summary in alerts:
            alert = hook.get_alert(summary["id"])
            if _enriched(alert):
                # Our own comment moved it into a later window: enrich each alert once.
                log.info("Alert %s is already enriched", summary["id"])
                continue
            devices = evidence_of(alert).device_names
            if not devices:
                log.info("Alert %s (%s) names no device: no hunt", summary["id"], summary["title"])
                continue
            start, end = _activity_span(alert)
            rule = known_benign(alert)
            targets.append(
                {
                    "alert_id": summary["id"],
                    "title": summary["title"],
                    "device": devices[0],
                    "start": start.isoformat(),
                    "end": end.isoformat(),
                    "hunt_path": f"{folder}/alert-{summary['id']}-{devices[0]}.jsonl",
                    "known_benign": rule
                    and {"determination": rule.determination.value, "reason": rule.reason},
                }
            )
        log.info("%d of %d alerts to enrich", len(targets), len(alerts))
        return targets

    targets = find_devices(alerts.output)

    hunts = RunHuntingQueryOperator.partial(
        task_id="device_activity",
        mtp_conn_id=MTP_CONN_ID,
        query=DEVICE_ACTIVITY,
        deferrable=True,
        pool=HUNTING_POOL,
        execution_timeout=timedelta(minutes=30),
    ).expand_kwargs(targets.map(_hunt_kwargs))

    @task
    def decide(targets: list[dict[str, Any]], hunts: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        """The automatic part of the policy: a comment, and known-benign alerts closed. Replace with yours."""
        updates = []
        # [:] reads every mapped result in one call.
        for target, hunt in zip(targets, hunts[:], strict=True):
            update: dict[str, Any] = {
                "alert_id": target["alert_id"],
                "comment": _comment(target, _findings(target, hunt)),
            }
            if target["known_benign"]:
                update.update(
                    status=AlertStatus.RESOLVED.value,
                    classification=Classification.INFORMATIONAL_EXPECTED_ACTIVITY.value,
                    determination=target["known_benign"]["determination"],
                )
            updates.append(update)
        return updates

    updated = UpdateAlertOperator.partial(task_id="update_alert", mtp_conn_id=MTP_CONN_ID).expand_kwargs(
        decide(targets, hunts.output)
    )

    @task
    def review_requests(
        targets: list[dict[str, Any]], hunts: Sequence[dict[str, Any]]
    ) -> list[dict[str, str]]:
        """What each analyst reads: the alert as it is now (commented), the hunt's highlights."""
        from airflow_provider_mtp.hooks.mtp import MTPHook
        from airflow_provider_mtp.links import alert_portal_url

        hook = MTPHook(mtp_conn_id=MTP_CONN_ID)
        requests = []
        for target, hunt in zip(targets, hunts[:], strict=True):
            if target["known_benign"]:
                continue
            alert = hook.get_alert(target["alert_id"])
            body = review_markdown(
                alert,
                findings=[_findings(target, hunt)],
                portal_url=alert_portal_url(hook.settings, target["alert_id"]),
            )
            requests.append({"subject": review_subject(alert), "body": body})
        return requests

    requests = review_requests(targets, hunts.output)
    updated >> requests

    # One review per alert left, answered in the UI; its result (XCom) holds the chosen option.
    reviews = HITLOperator.partial(
        task_id="review",
        options=review_options(),
        defaults=[LEAVE_FOR_LATER],
        response_timeout=REVIEW_TIMEOUT,
    ).expand_kwargs(requests)

    @task
    def answers(targets: list[dict[str, Any]], reviews: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        """The analysts' choices as updates; "Leave for later" (or no answer in time) gives none."""
        reviewed = [target["alert_id"] for target in targets if not target["known_benign"]]
        return review_updates(reviewed, reviews[:], id_field="alert_id")

    applied = UpdateAlertOperator.partial(task_id="apply_review", mtp_conn_id=MTP_CONN_ID).expand_kwargs(
        answers(targets, reviews.output)
    )

    # After the chosen changes are applied; none chosen (every review left for later) is fine too.
    @task(trigger_rule="none_failed")
    def summary(
        targets: list[dict[str, Any]] | None,
        hunts: Sequence[dict[str, Any]],
        reviews: Sequence[dict[str, Any]],
    ) -> dict[str, int]:
        """One line for the log (and XCom): what this run did."""
        if not targets:
            raise AirflowSkipException("no alert was enriched: nothing to report")
        answered = [decision_changes(review) for review in reviews[:]]
        result = {
            "alerts": len(targets),
            "events": sum(
                _findings(target, hunt).rows for target, hunt in zip(targets, hunts[:], strict=True)
            ),
            "benign": sum(1 for target in targets if target["known_benign"]),
            "reviewed": len(answered),
            "classified": sum(1 for changes in answered if changes),
        }
        log.info(
            "Alert enrichment: %(alerts)d alerts hunted (%(events)d events), %(benign)d closed as known "
            "benign, %(reviewed)d reviewed, %(classified)d classified by an analyst",
            result,
        )
        return result

    applied >> summary(targets, hunts.output, reviews.output)
