"""Triggerer scale: K deferred sensors' triggers in one event loop, as the triggerer runs them.

Each measurement runs in a fresh subprocess (so one's memory is not the next one's) against one
emulator (TLS, real msal tokens, quotas off), K triggers started together in one event loop and
left waiting (open windows over the last day, mixed filters, a minimum they never reach), each
polling every ``--interval`` seconds (5). Measured per run:

* peak RSS (``VmHWM``) and its growth over the process with everything imported, per trigger;
* CPU time per poll round (the process's, threads included), over ``--rounds`` rounds after the
  first;
* token requests and listing requests per round, from the emulator's ``/_emulator/stats``.

Runs: ``IncidentTrigger`` coalesced (the default), ``IncidentTrigger`` with coalescing switched
off (``AIRFLOW_MTP_COALESCED_POLLING=false``: one listing per trigger per poll, sessions still
shared), ``AlertTrigger`` coalesced, ``IncidentTrigger`` coalesced on the legacy back end, and the
baseline: the http provider's ``HttpSensorTrigger``, each polling the emulator's incident endpoint
for an incident that does not exist (a 404 keeps it polling; the token sent as a header).

Targets (issue 13): 1,000 triggers under 300 MB peak RSS (stretch 200 MB), 1 token request,
listing requests per round at most the pages of the union window (listing it once, same
connection), CPU per round at most the http baseline's.

    .venv/bin/python bench/triggerer_scale.py [--triggers 1000] [--interval 5] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import random
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench._report import Report, peak_rss_mib, rss_mib  # noqa: E402

#: Runs: key -> (label, trigger kind, back end, coalesced).
RUNS: dict[str, tuple[str, str, str, bool]] = {
    "incidents": ("IncidentTrigger, coalesced", "incident", "graph", True),
    "independent": ("IncidentTrigger, not coalesced", "incident", "graph", False),
    "alerts": ("AlertTrigger, coalesced", "alert", "graph", True),
    "legacy": ("IncidentTrigger legacy, coalesced", "incident", "legacy", True),
    "http": ("HttpSensorTrigger (baseline)", "http", "graph", False),
}
#: An incident id the emulator does not know: the http baseline's 404.
MISSING = "v1.0/security/incidents/987654321"


# --------------------------------------------------------------------------------------------------
# The child: K triggers in one loop
# --------------------------------------------------------------------------------------------------


def _stats(url: str, ca: str) -> dict[str, Any]:
    import requests

    reply = requests.get(f"{url}/_emulator/stats", verify=ca, timeout=60)
    reply.raise_for_status()
    result: dict[str, Any] = reply.json()
    return result


def _listings(stats: dict[str, Any]) -> int:
    routes = ("GET /v1.0/security/", "GET /api/")
    return sum(sum(s.values()) for route, s in stats["requests"].items() if route.startswith(routes))


def _tokens(stats: dict[str, Any]) -> int:
    return sum(stats["tokens_issued"].values())


def _triggers(kind: str, api: str, count: int, interval: float, token: str) -> list[Any]:
    if kind == "http":
        from airflow.providers.http.triggers.http import HttpSensorTrigger

        return [
            HttpSensorTrigger(
                endpoint=MISSING,
                http_conn_id="emulator_http",
                headers={"Authorization": f"Bearer {token}"},
                poke_interval=interval,
            )
            for _ in range(count)
        ]
    from airflow_provider_mtp.triggers.alerts import AlertTrigger
    from airflow_provider_mtp.triggers.incidents import IncidentTrigger

    rng = random.Random(13)
    now = datetime.now(UTC)
    made = []
    for index in range(count):
        # Hourly windows over the last day, still open: a mix of windows whose union is one range.
        window = {
            "window_start": (now - timedelta(hours=1 + index % 24)).isoformat(),
            "window_end": (now + timedelta(hours=1)).isoformat(),
            "lag_seconds": 0,
            "poke_interval": interval,
            "api": api,
        }
        severity = rng.choice((None, ["high"], ["high", "medium"], ["low"]))
        if kind == "incident":
            made.append(IncidentTrigger(severity=severity, min_incidents=10**6, **window))
        else:
            made.append(AlertTrigger(severity=severity, min_alerts=10**6, **window))
    return made


def child(options: dict[str, Any]) -> dict[str, Any]:
    """One run: import, build the triggers, run them for the rounds; the figures as a dict."""
    import airflow.providers.http.triggers.http
    import airflow.sdk  # noqa: F401 - what a triggerer has imported before any trigger

    import airflow_provider_mtp.triggers.alerts
    import airflow_provider_mtp.triggers.incidents  # noqa: F401
    from airflow_provider_mtp.triggers import poller

    kind, api, count, interval = options["kind"], options["api"], options["triggers"], options["interval"]
    url, ca = options["url"], options["ca"]
    _count_polls(kind)
    gc.collect()
    base = rss_mib()
    triggers = _triggers(kind, api, count, interval, options["token"])
    started = _stats(url, ca)

    async def run() -> dict[str, Any]:
        tasks = [asyncio.create_task(anext(trigger.run())) for trigger in triggers]
        coalesced = poller.coalescing() and kind != "http"
        # The first round (sessions, tokens, the first listings) is start-up, not steady state.
        if coalesced:
            # Measured from the end of a round to the end of the last: whole rounds only.
            await _rounds_done(poller, 1, limit=interval * 10)
        else:
            await asyncio.sleep(interval * 1.5)
        rounds_before, polls_before = _rounds(poller), POLLS[0]
        before = await asyncio.to_thread(_stats, url, ca)
        cpu, wall = time.process_time(), time.perf_counter()
        if coalesced:
            await _rounds_done(
                poller, rounds_before + options["rounds"], limit=interval * 10 * options["rounds"]
            )
        else:
            await asyncio.sleep(interval * options["rounds"])
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        after = await asyncio.to_thread(_stats, url, ca)
        rounds: float = _rounds(poller) - rounds_before
        polls = POLLS[0] - polls_before
        for task in tasks:
            task.cancel()
        done = await asyncio.gather(*tasks, return_exceptions=True)
        fired = [d for d in done if not isinstance(d, BaseException)]
        listings = _listings(after) - _listings(before)
        if not coalesced:
            # Not coalesced: a round is every trigger polling once.
            rounds = polls / count
        return {"cpu": cpu, "wall": wall, "rounds": rounds, "listings": listings, "fired": len(fired)}

    measured = asyncio.run(run())
    ended = _stats(url, ca)
    return {
        **measured,
        "base_mib": base,
        "peak_mib": peak_rss_mib(),
        "tokens": _tokens(ended) - _tokens(started),
    }


#: Polls made by the triggers (listings, or the http hook's requests), counted in the child.
POLLS = [0]


def _count_polls(kind: str) -> None:
    """Count each trigger's poll as it completes: ``list_<kind>s`` of the async hook read to its
    end, or the http hook's ``run``."""
    if kind == "http":
        from airflow.providers.http.hooks.http import HttpAsyncHook

        run = HttpAsyncHook.run

        async def counted_run(*args: Any, **kwargs: Any) -> Any:
            try:
                return await run(*args, **kwargs)
            finally:
                POLLS[0] += 1

        HttpAsyncHook.run = counted_run  # type: ignore[method-assign]
        return
    from airflow_provider_mtp.hooks.mtp_async import MTPAsyncHook

    name = f"list_{kind}s"
    listing = getattr(MTPAsyncHook, name)

    async def counted_listing(*args: Any, **kwargs: Any) -> Any:
        async for record in listing(*args, **kwargs):
            yield record
        POLLS[0] += 1

    setattr(MTPAsyncHook, name, counted_listing)


def _rounds(poller: Any) -> int:
    return sum(p.rounds_done for table in list(poller._POLLERS.values()) for p in table.values())


async def _rounds_done(poller: Any, count: int, *, limit: float) -> None:
    """Return once ``count`` coalesced rounds are complete (or after ``limit`` seconds)."""
    deadline = time.perf_counter() + limit
    while _rounds(poller) < count and time.perf_counter() < deadline:
        await asyncio.sleep(0.05)


# --------------------------------------------------------------------------------------------------
# The parent: the emulator, one subprocess per run, the table
# --------------------------------------------------------------------------------------------------


def union_pages(emulator: Any, api: str, kind: str) -> int:
    """Requests of listing the runs' union window ([now - 24 h, now + 1 h)) once, no filter."""
    from airflow_provider_mtp.hooks.mtp import MTPHook

    conn = json.loads(emulator.airflow_conn)
    os.environ["AIRFLOW_CONN_MTP_DEFAULT"] = json.dumps(conn)
    now = datetime.now(UTC)
    before = _listings(emulator.stats())
    hook = MTPHook(api=api)
    listing = hook.list_incidents if kind == "incident" else hook.list_alerts
    for _ in listing(updated_from=now - timedelta(hours=24), updated_before=now + timedelta(hours=1)):
        pass
    return _listings(emulator.stats()) - before


def bearer(emulator: Any) -> str:
    """A Graph token for the http baseline's header, as a user of that trigger would paste one."""
    import requests

    reply = requests.post(
        f"{emulator.url}/{emulator.tenant_id}/oauth2/v2.0/token",
        data={
            "grant_type": "client_credentials",
            "client_id": emulator.client_id,
            "client_secret": emulator.client_secret,
            "scope": "https://graph.microsoft.com/.default",
        },
        verify=emulator.ca_bundle,
        timeout=60,
    )
    reply.raise_for_status()
    return str(reply.json()["access_token"])


def run_child(emulator: Any, name: str, args: argparse.Namespace, token: str) -> dict[str, Any]:
    _, kind, api, coalesced = RUNS[name]
    host_port = emulator.url.split("://", 1)[1]
    host, port = host_port.rsplit(":", 1)
    env = {
        **os.environ,
        "AIRFLOW_CONN_MTP_DEFAULT": emulator.airflow_conn,
        "AIRFLOW_CONN_EMULATOR_HTTP": json.dumps(
            {"conn_type": "http", "host": host, "port": int(port), "schema": "https"}
        ),
        # The http baseline verifies the emulator's certificate through the default TLS context.
        "SSL_CERT_FILE": emulator.ca_bundle,
        "AIRFLOW_MTP_COALESCED_POLLING": "true" if coalesced else "false",
    }
    options = {
        "kind": kind,
        "api": api,
        "triggers": args.triggers,
        "interval": args.interval,
        "rounds": args.rounds,
        "url": emulator.url,
        "ca": emulator.ca_bundle,
        "token": token,
    }
    done = subprocess.run(
        [sys.executable, __file__, "--child", json.dumps(options)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    if done.returncode != 0:
        raise RuntimeError(f"{RUNS[name][0]}: the child failed:\n{done.stderr[-3000:]}")
    last: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return last


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--triggers", type=int, default=1000, help="triggers per run (1,000)")
    parser.add_argument("--interval", type=float, default=5.0, help="poke interval, seconds (5)")
    parser.add_argument("--rounds", type=int, default=3, help="poll rounds measured per run (3)")
    parser.add_argument("--runs", default=",".join(RUNS), help=f"which runs ({', '.join(RUNS)})")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(json.loads(args.child))))
        return 0

    from airflow_provider_mtp.emulator import DefenderEmulator

    report = Report(
        "triggerer_scale",
        f"{args.triggers} deferred triggers in one event loop, {args.interval:g} s polls, emulator",
        [
            "run",
            "peak RSS MB",
            "growth MB",
            "KB/trigger",
            "CPU ms/round",
            "tokens",
            "listings/round",
            "union pages",
        ],
    )
    results: dict[str, dict[str, Any]] = {}
    with DefenderEmulator(seed=13, quotas=False, incidents=300, days=2) as emulator:
        token = bearer(emulator)
        pages = {
            ("incident", "graph"): union_pages(emulator, "graph", "incident"),
            ("alert", "graph"): union_pages(emulator, "graph", "alert"),
            ("incident", "legacy"): union_pages(emulator, "legacy", "incident"),
        }
        for name in [n.strip() for n in args.runs.split(",") if n.strip()]:
            label, kind, api, _ = RUNS[name]
            print(f"running: {label} ...", flush=True)
            got = results[name] = run_child(emulator, name, args, token)
            growth = got["peak_mib"] - got["base_mib"]
            union = pages.get((kind, api), "-")
            report.row(
                label,
                got["peak_mib"],
                growth,
                growth * 1024 / args.triggers,
                got["cpu"] * 1000 / max(got["rounds"], 1),
                got["tokens"] if kind != "http" else "- (header)",
                got["listings"] / max(got["rounds"], 1),
                union,
            )
    http = results.get("http")
    for name, got in results.items():
        label, kind, api, coalesced = RUNS[name]
        if not coalesced:
            continue
        report.target(f"{label}: peak RSS", got["peak_mib"], 300, unit=" MB")
        report.target(f"{label}: peak RSS (stretch)", got["peak_mib"], 200, unit=" MB")
        report.target(f"{label}: token requests", got["tokens"], 1, unit="")
        report.target(
            f"{label}: listing requests per round / union pages",
            got["listings"] / max(got["rounds"], 1) / max(pages[(kind, api)], 1),
            1.0,
        )
        if http is not None:
            ours = got["cpu"] / max(got["rounds"], 1)
            theirs = http["cpu"] / max(http["rounds"], 1)
            report.target(f"{label}: CPU per round / HttpSensorTrigger's", ours / theirs, 1.0)
    report.note(
        "growth = peak RSS minus the RSS with Airflow and the triggers' modules imported, before any "
        "trigger; CPU per round over the rounds after the first; listings and tokens from the "
        "emulator's /_emulator/stats. 'not coalesced' is AIRFLOW_MTP_COALESCED_POLLING=false."
    )
    report.note(
        "HttpSensorTrigger opens a new aiohttp session (and TLS handshake) per poll and holds none "
        "between polls; its token is a header, so it asks Entra ID for none."
    )
    report.extra["runs"] = results
    report.finish()
    return 0


if __name__ == "__main__":
    sys.exit(main())
