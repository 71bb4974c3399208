"""``make demo``: every example DAG against the Defender XDR emulator, end to end, in a few minutes.

Steps (Airflow's own output goes to ``airflow-home/demo.log``; this prints a short summary):

1. Start the emulator (Entra ID, Graph and the legacy API on 127.0.0.1, with a synthetic tenant
   whose data ends at the current hour: its *data time*) and a local webhook sink.
2. Make an Airflow home in ``airflow-home/`` (SQLite; ``example_dags/`` as the DAGs folder; the
   ``mtp_default`` and ``mtp_webhook`` connections and ``MTP_OUTPUT_ROOT`` as environment
   variables), migrate it and create the pool ``mtp_hunting``.
3. ``airflow dags test`` each example DAG; the two hourly ones for the hour ending at the data time:

   * ``mtp_scheduled_enrichment`` hunts that hour's process events into ``demo-output/``;
   * ``mtp_incident_triage``: two endpoint incidents are first stamped as updated 20 minutes
     before the data time (``POST /_emulator/incidents``) so the hour has work at any time of day;
     its deferrable sensor's trigger runs inline under ``dags test``; its human-in-the-loop reviews
     wait there until :class:`demo.analyst.Analyst` answers each with :data:`REVIEW_CHOICE`,
     through the endpoint the UI's form calls, on the demo's metadata database;
   * ``mtp_adhoc_hunt`` with a conf, as its trigger form would send it;
   * ``mtp_incident_events``: ``dags test`` makes manual runs, which carry no asset events, so the
     demo runs that DAG's own ``IncidentEventTrigger`` here, updates an incident as an analyst
     would, takes the trigger's first event and hands it to the DAG through its ``replay`` param.
     Under a real scheduler and triggerer the same event arrives as an asset event instead.
   * ``mtp_alert_enrichment``: three new alerts on devices (one a detector alert the DAG's
     ``KNOWN_BENIGN`` table closes) are first stamped as updated 20 minutes before the data time
     (``POST /_emulator/alerts``); the analyst answers its reviews as for the triage
     (:mod:`demo.alert_enrichment`).

4. Read the results back (files, the webhook sink, the emulator), print them and write
   ``demo-output/summary.json``.
5. Stop the emulator and the sink, also on failure. Exit status 0 on success, 1 on failure.

``python -m demo --workdir DIR`` puts ``airflow-home/`` and ``demo-output/`` under DIR instead of
the repository.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import csv
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import AsyncGenerator, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from airflow_provider_mtp.emulator import DefenderEmulator
from demo import alert_enrichment as alert_step

if TYPE_CHECKING:
    from airflow.triggers.base import TriggerEvent

    from airflow_provider_mtp.hooks.mtp import MTPHook
    from airflow_provider_mtp.triggers.incidents import IncidentEventTrigger

REPO = Path(__file__).resolve().parent.parent
DAGS_FOLDER = REPO / "example_dags"
POOL = ("mtp_hunting", "3", "Defender XDR hunting quota: 45 hunts a minute per tenant")
TRIAGE_TAG = "airflow-triaged"
#: Start of the marker UpdateIncidentOperator appends to the comments the triage DAG posts.
COMMENT_MARKER = "[airflow:mtp_incident_triage/update_incident/"
#: What the demo's analyst picks in every triage review (a label of triage_review.DECISIONS).
REVIEW_CHOICE = "True positive: malware"
#: The classification and determination that label sets.
REVIEW_VALUES = ("truePositive", "malware")
#: The longest one Airflow command may take.
STEP_TIMEOUT_S = 300.0
#: How long to wait for the incident event trigger's first event.
EVENT_TIMEOUT_S = 60.0


class DemoError(Exception):
    """A step failed; the message says which."""


@dataclass(frozen=True)
class Paths:
    """Where the demo writes: an Airflow home and the pipelines' results."""

    workdir: Path

    @property
    def home(self) -> Path:
        return self.workdir / "airflow-home"

    @property
    def output(self) -> Path:
        return self.workdir / "demo-output"

    @property
    def log(self) -> Path:
        return self.home / "demo.log"

    def show(self, path: Path) -> str:
        """``path`` relative to the work folder when inside it, for short output lines."""
        return str(path.relative_to(self.workdir)) if path.is_relative_to(self.workdir) else str(path)


# --------------------------------------------------------------------------------------------------
# What the demo starts: a webhook sink and Airflow commands
# --------------------------------------------------------------------------------------------------


class WebhookSink:
    """A local stand-in for a chat or SOAR webhook: keeps the JSON body of every POST."""

    def __init__(self) -> None:
        self.received: list[Any] = []
        received = self.received

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                try:
                    received.append(json.loads(body))
                except ValueError:
                    received.append(body.decode(errors="replace"))
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(b'{"ok": true}')

            def log_message(self, format: str, *args: Any) -> None:
                """Quiet: no line per request on stderr."""

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, name="webhook-sink", daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/mtp/triage"

    def start(self) -> WebhookSink:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


class Airflow:
    """Airflow CLI commands in the demo's home, their output appended to the demo log.

    :param env: the commands' environment.
    :param log: the file their output goes to.
    """

    def __init__(self, env: Mapping[str, str], log: Path) -> None:
        self.env = dict(env)
        self.log = log

    def start(self, *args: str) -> subprocess.Popen[bytes]:
        with self.log.open("a") as handle:
            handle.write(f"\n=== airflow {' '.join(args)}\n")
            handle.flush()
            return subprocess.Popen(
                [sys.executable, "-m", "airflow", *args],
                stdout=handle,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=self.env,
                cwd=self.log.parent,
            )

    def wait(self, process: subprocess.Popen[bytes], what: str) -> None:
        try:
            code = process.wait(timeout=STEP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            raise DemoError(f"{what} took more than {STEP_TIMEOUT_S:.0f} s") from None
        if code:
            raise DemoError(f"{what} failed (exit status {code})")

    def run(self, *args: str, what: str) -> None:
        self.wait(self.start(*args), what)


def airflow_env(paths: Paths) -> dict[str, str]:
    """This process's environment without any Airflow setting, plus the demo's own."""
    inherited = {
        name: value for name, value in os.environ.items() if not name.startswith(("AIRFLOW", "MTP_"))
    }
    return {
        **inherited,
        "AIRFLOW_HOME": str(paths.home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS_FOLDER),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "MTP_OUTPUT_ROOT": paths.output.as_uri(),
        # The event trigger polls every second here, not every minute.
        "MTP_INCIDENT_POLL_SECONDS": "1",
    }


def connections(emulator: DefenderEmulator, sink: WebhookSink) -> dict[str, str]:
    """``mtp_default`` pointing at the emulator, ``mtp_webhook`` at the sink."""
    return {
        "AIRFLOW_CONN_MTP_DEFAULT": emulator.airflow_conn,
        "AIRFLOW_CONN_MTP_WEBHOOK": json.dumps({"conn_type": "http", "host": sink.url}),
    }


# --------------------------------------------------------------------------------------------------
# The emulator as a live tenant
# --------------------------------------------------------------------------------------------------


def _evidence(incident: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    for alert in incident.get("alerts") or ():
        yield from alert.get("evidence") or ()


def _worth_triaging(incident: Mapping[str, Any]) -> bool:
    """Untriaged, unclassified, on a device, with evidence Defender judged malicious."""
    evidence = list(_evidence(incident))
    return (
        incident.get("classification") in (None, "unknown")
        and TRIAGE_TAG not in (incident.get("customTags") or ())
        and any(str(item.get("@odata.type", "")).endswith("deviceEvidence") for item in evidence)
        and any(item.get("verdict") == "malicious" for item in evidence)
    )


def touch_incidents(hook: MTPHook, emulator: DefenderEmulator, when: datetime, count: int = 2) -> list[str]:
    """Stamp ``count`` active, high-severity incidents worth triaging as updated at ``when``.

    The triage DAG's hour then has work whatever the time of day; its sensor finds these and
    whatever else the synthetic tenant updated in that hour.
    """
    listing = hook.list_incidents(status="active", severity="high", include_alerts=True)
    chosen = [incident["id"] for incident in listing if _worth_triaging(incident)][:count]
    if not chosen:
        raise DemoError("the emulator has no active, high-severity incident on a device to triage")
    stamp = when.strftime("%Y-%m-%dT%H:%M:%SZ")
    emulator.put_incidents(*({"id": incident_id, "lastUpdateDateTime": stamp} for incident_id in chosen))
    return chosen


def _watcher_trigger() -> IncidentEventTrigger:
    """The ``IncidentEventTrigger`` the event-driven example DAG's ``AssetWatcher`` runs."""
    spec = importlib.util.spec_from_file_location(
        "mtp_incident_events", DAGS_FOLDER / "mtp_incident_events.py"
    )
    if spec is None or spec.loader is None:
        raise DemoError("cannot load example_dags/mtp_incident_events.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    trigger: IncidentEventTrigger = module.INCIDENT_UPDATES.watchers[0].trigger
    return trigger


def _analyst_picks_up(emulator: DefenderEmulator, incident_id: str) -> None:
    """Move the tenant's clock to now and set the incident in progress, as an analyst would."""
    emulator.set_clock(datetime.now(UTC).isoformat())
    emulator.put_incidents({"id": incident_id, "status": "inProgress"})


async def first_incident_event(emulator: DefenderEmulator, incident_id: str) -> dict[str, Any]:
    """Run the watcher's trigger until its event for an update of ``incident_id``."""
    # run() is an async generator; closing it closes the trigger's HTTP session.
    events = cast("AsyncGenerator[TriggerEvent, None]", _watcher_trigger().run())

    async def of_this_incident() -> TriggerEvent:
        # The trigger also fires updates of the lag before it started (what a restarted triggerer
        # relies on): the triage run may have updated other watched incidents moments ago.
        async for event in events:
            if str(event.payload.get("id")) == str(incident_id):
                return event
        raise DemoError("the incident event trigger stopped")

    first = asyncio.ensure_future(of_this_incident())
    try:
        await asyncio.sleep(2)  # the trigger has taken its start time and polled once
        await asyncio.to_thread(_analyst_picks_up, emulator, incident_id)
        event = await asyncio.wait_for(first, EVENT_TIMEOUT_S)
    except TimeoutError:
        raise DemoError(f"the incident event trigger fired nothing within {EVENT_TIMEOUT_S:.0f} s") from None
    finally:
        if not first.done():
            first.cancel()
            with contextlib.suppress(asyncio.CancelledError, StopAsyncIteration):
                await first
        await events.aclose()
    return dict(event.payload)


# --------------------------------------------------------------------------------------------------
# The pipelines, each run and then read back
# --------------------------------------------------------------------------------------------------


def _require(condition: object, message: str) -> None:
    if not condition:
        raise DemoError(message)


def _count_lines(path: Path) -> int:
    with path.open("rb") as handle:
        return sum(1 for _ in handle)


def enrichment(airflow: Airflow, paths: Paths, data_time: datetime) -> dict[str, Any]:
    """The hourly hunt for the hour ending at the data time, and its per-device counts."""
    airflow.run(
        "dags", "test", "mtp_scheduled_enrichment", data_time.isoformat(), what="mtp_scheduled_enrichment"
    )
    hunted = paths.output / "process-events" / f"{data_time:%Y%m%dT%H%M%S}.jsonl"  # named by the hour's end
    per_device = hunted.with_suffix(".per-device.json")
    _require(hunted.exists() and per_device.exists(), f"mtp_scheduled_enrichment wrote no {hunted}")
    rows = _count_lines(hunted)
    devices = len(json.loads(per_device.read_text())["devices"])
    _require(rows > 0, f"mtp_scheduled_enrichment hunted no rows into {hunted}")
    return {
        "rows": rows,
        "devices": devices,
        "file": paths.show(hunted),
        "per_device": paths.show(per_device),
    }


def _check_triaged(hook: MTPHook, reported: Sequence[Mapping[str, Any]]) -> dict[str, int]:
    """What the emulator says the triage changed: tags, comments, the analyst's classifications."""
    counts = {"tagged": 0, "commented": 0, "classified": 0}
    for item in reported:
        incident = hook.get_incident(item["id"], include_alerts=False)
        counts["tagged"] += TRIAGE_TAG in (incident.get("customTags") or ())
        counts["commented"] += any(
            COMMENT_MARKER in str(comment.get("comment")) for comment in incident.get("comments") or ()
        )
        counts["classified"] += (
            (incident.get("classification"), incident.get("determination"))
            == REVIEW_VALUES
            == (item["classification"], item.get("determination"))
        )
    return counts


def triage(
    airflow: Airflow, paths: Paths, data_time: datetime, emulator: DefenderEmulator, sink: WebhookSink
) -> dict[str, Any]:
    """Touch two incidents in the hour, run the triage DAG and answer its reviews, check the webhook and the tenant."""
    from airflow_provider_mtp.hooks.mtp import MTPHook
    from demo.analyst import Analyst

    hook = MTPHook(mtp_conn_id="mtp_default")
    touched = touch_incidents(hook, emulator, data_time - timedelta(minutes=20))
    with Analyst("mtp_incident_triage", lambda review: REVIEW_CHOICE) as analyst:
        airflow.run("dags", "test", "mtp_incident_triage", data_time.isoformat(), what="mtp_incident_triage")
    _require(not analyst.errors, f"answering the triage reviews failed: {analyst.errors}")
    _require(analyst.answers, "mtp_incident_triage asked for no review")
    messages = [message for message in sink.received if isinstance(message, dict) and "incidents" in message]
    _require(messages, "mtp_incident_triage posted nothing to the webhook (was its sensor skipped?)")
    reported = messages[-1]["incidents"]
    _require(reported, "mtp_incident_triage triaged no incident")
    checked = _check_triaged(hook, reported)
    _require(
        checked["tagged"] == checked["commented"] == len(reported),
        f"the emulator shows {checked} for {len(reported)} triaged incidents",
    )
    folder = paths.output / "incident-triage"
    return {
        "incidents": len(reported),
        "touched": touched,
        **checked,
        "timeline_rows": sum(int(item["timeline_rows"]) for item in reported),
        "timelines": len(list(folder.rglob("*.jsonl"))),
        "folder": paths.show(folder),
        "webhook_messages": len(messages),
        "webhook_text": messages[-1].get("text", ""),
        "first": reported[0],
        "reviews": {
            "answered": len(analyst.answers),
            "choice": REVIEW_CHOICE,
            "subjects": [item.review.subject for item in analyst.answers],
        },
    }


def adhoc(airflow: Airflow, paths: Paths, device: str) -> dict[str, Any]:
    """The ad-hoc hunt with the values a user would type into its trigger form."""
    conf = {"query": "device_process_events", "device_name": device, "lookback_hours": 24}
    airflow.run("dags", "test", "mtp_adhoc_hunt", "--conf", json.dumps(conf), what="mtp_adhoc_hunt")
    files = sorted((paths.output / "adhoc").glob("*.csv"))
    _require(files, "mtp_adhoc_hunt wrote no CSV file")
    with files[-1].open(newline="") as handle:
        table = list(csv.reader(handle))
    _require(len(table) > 1, f"mtp_adhoc_hunt found no rows for {device} in 24 h")
    return {**conf, "rows": len(table) - 1, "columns": len(table[0]), "file": paths.show(files[-1])}


def incident_events(
    airflow: Airflow, paths: Paths, emulator: DefenderEmulator, incident_id: str
) -> dict[str, Any]:
    """The event trigger's first event, handed to the event-driven DAG."""
    event = asyncio.run(first_incident_event(emulator, incident_id))
    conf = json.dumps({"replay": [event]})
    airflow.run("dags", "test", "mtp_incident_events", "--conf", conf, what="mtp_incident_events")
    seen = paths.output / "incident-events" / "seen"
    handled = sorted(path.name for path in seen.iterdir()) if seen.exists() else []
    _require(handled, "mtp_incident_events handled no incident update")
    return {"event": event, "handled": len(handled), "folder": paths.show(seen)}


def alert_enrichment(
    airflow: Airflow, paths: Paths, data_time: datetime, emulator: DefenderEmulator
) -> dict[str, Any]:
    """Touch three alerts in the hour, run the alert enrichment and answer its reviews, read the tenant back."""
    from airflow_provider_mtp.hooks.mtp import MTPHook
    from demo.analyst import Analyst

    hook = MTPHook(mtp_conn_id="mtp_default")
    touched = alert_step.touch_alerts(hook, emulator, data_time - timedelta(minutes=20))
    _require(touched, "the emulator has no new alert on a device that KNOWN_BENIGN closes")
    with Analyst(alert_step.DAG_ID, lambda review: REVIEW_CHOICE) as analyst:
        airflow.run("dags", "test", alert_step.DAG_ID, data_time.isoformat(), what=alert_step.DAG_ID)
    _require(not analyst.errors, f"answering the alert reviews failed: {analyst.errors}")
    folder = paths.output / "alert-enrichment"
    figures = alert_step.read_back(
        hook, since=alert_step.since(data_time), folder=folder, review_values=REVIEW_VALUES
    )
    _require(
        figures["hunted"] == figures["commented"] >= len(touched) and figures["benign"] >= 1,
        f"the emulator shows {figures} after {alert_step.DAG_ID} (touched {touched})",
    )
    return {**figures, "touched": touched, "reviews": len(analyst.answers), "folder": paths.show(folder)}


# --------------------------------------------------------------------------------------------------
# The whole run
# --------------------------------------------------------------------------------------------------


def _fresh(paths: Paths) -> None:
    for folder in (paths.home, paths.output):
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)


@contextlib.contextmanager
def running(sink: WebhookSink, emulator: DefenderEmulator) -> Iterator[None]:
    """The sink and the emulator, both stopped on the way out, whatever happened."""
    sink.start()
    try:
        emulator.start()
        yield
    finally:
        with contextlib.suppress(Exception):
            sink.stop()
        emulator.stop()


def run(paths: Paths) -> dict[str, Any]:
    """Run the whole demo; the figures it prints. Raises :class:`DemoError` on a failed step."""
    began = time.monotonic()
    _fresh(paths)
    env = airflow_env(paths)
    # This process's own hook and trigger use the same settings, set before Airflow is first
    # imported (in triage), with quieter logs: token and polling lines are not for the screen.
    for name in [name for name in os.environ if name not in env]:
        del os.environ[name]  # the caller's own AIRFLOW_* and MTP_* settings
    os.environ.update({**env, "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING"})
    sink, emulator = WebhookSink(), DefenderEmulator()
    airflow = Airflow(env, paths.log)
    migrate = airflow.start("db", "migrate")  # meanwhile the emulator starts
    try:
        with running(sink, emulator):
            airflow.wait(migrate, "airflow db migrate")
            return _pipelines(paths, airflow, emulator, sink, began)
    finally:
        if migrate.poll() is None:
            migrate.kill()
            migrate.wait()


def _pipelines(
    paths: Paths, airflow: Airflow, emulator: DefenderEmulator, sink: WebhookSink, began: float
) -> dict[str, Any]:
    """Pool, connections, the four DAGs and their results; the summary."""
    airflow.run("pools", "set", *POOL, what="airflow pools set")
    airflow.env.update(connections(emulator, sink))
    os.environ.update(connections(emulator, sink))
    data_time = datetime.fromisoformat(str(emulator.info["now"]).replace("Z", "+00:00"))
    summary: dict[str, Any] = {"emulator": emulator.url, "data_time": emulator.info["now"]}
    summary["enrichment"] = enrichment(airflow, paths, data_time)
    summary["triage"] = triage(airflow, paths, data_time, emulator, sink)
    summary["adhoc"] = adhoc(airflow, paths, summary["triage"]["first"]["device"])
    summary["events"] = incident_events(airflow, paths, emulator, summary["triage"]["first"]["id"])
    summary["alerts"] = alert_enrichment(airflow, paths, data_time, emulator)
    summary["seconds"] = round(time.monotonic() - began)
    (paths.output / "summary.json").write_text(json.dumps(summary, indent=1))
    return summary


def report(paths: Paths, summary: Mapping[str, Any]) -> list[str]:
    """The lines the demo prints."""
    hunt, triaged, adhoc_, events = (summary[key] for key in ("enrichment", "triage", "adhoc", "events"))
    event = events["event"]
    return [
        f"Defender XDR emulator at {summary['emulator']}, tenant data up to {summary['data_time']}",
        f"Airflow home {paths.show(paths.home)}/ (SQLite); Airflow's output in {paths.show(paths.log)}",
        f"1. mtp_scheduled_enrichment: {hunt['rows']} process events hunted for the last hour, on "
        f"{hunt['devices']} devices",
        f"     {hunt['file']} and {Path(hunt['per_device']).name}",
        f"2. mtp_incident_triage: {triaged['incidents']} incidents triaged ({len(triaged['touched'])} of them "
        f"updated by the demo), {triaged['timeline_rows']} timeline events in {triaged['timelines']} mapped hunts",
        f"     {triaged['commented']} commented, {triaged['tagged']} tagged {TRIAGE_TAG!r}; "
        f"{triaged['reviews']['answered']} analyst reviews (HITL) answered {triaged['reviews']['choice']!r}",
        f"     -> {triaged['classified']} classified {'/'.join(REVIEW_VALUES)} (read back from the emulator)",
        f"     webhook got {triaged['webhook_messages']} summary: {triaged['webhook_text']}",
        f"     timelines in {triaged['folder']}/",
        f"3. mtp_adhoc_hunt: {adhoc_['query']} on {adhoc_['device_name']} over {adhoc_['lookback_hours']} h: "
        f"{adhoc_['rows']} rows x {adhoc_['columns']} columns",
        f"     {adhoc_['file']}",
        f"4. mtp_incident_events: IncidentEventTrigger fired for incident {event['id']} ({event['status']}) "
        f"-> {events['handled']} update handled (markers in {events['folder']}/)",
        alert_step.report_line(summary["alerts"]),
        f"Done in {summary['seconds']} s; figures in {paths.show(paths.output / 'summary.json')}",
    ]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m demo", description=__doc__.splitlines()[0] if __doc__ else None
    )
    parser.add_argument(
        "--workdir",
        type=Path,
        default=REPO,
        help="folder for airflow-home/ and demo-output/ (default: the repository)",
    )
    args = parser.parse_args(argv)
    paths = Paths(args.workdir.resolve())
    print("Running the example DAGs against the Defender XDR emulator (a minute or two) ...", flush=True)
    try:
        summary = run(paths)
    except Exception as exc:
        detail = str(exc) if isinstance(exc, DemoError) else f"{type(exc).__name__}: {exc}"
        print(f"demo failed: {detail}", file=sys.stderr)
        if paths.log.exists():
            tail = paths.log.read_text(errors="replace").splitlines()[-15:]
            print(f"last lines of {paths.log}:", *tail, sep="\n  ", file=sys.stderr)
        return 1
    print(*report(paths, summary), sep="\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
