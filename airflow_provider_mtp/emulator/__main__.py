"""``python -m airflow_provider_mtp.emulator``: serve the emulator over HTTPS.

When ready it prints exactly one JSON line on stdout (the ready line) and nothing else there;
logs go to stderr. SIGTERM and SIGINT stop it cleanly.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import shutil
import signal
import sys
import tempfile
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow_provider_mtp.common.utc import parse_iso
from airflow_provider_mtp.emulator.config import (
    HUNTING_CALLS_PER_MINUTE,
    HUNTING_CPU_SECONDS,
    HUNTING_MAX_CONCURRENT,
    HUNTING_MAX_RESULT_BYTES,
    HUNTING_TIMEOUT_S,
    EmulatorConfig,
)

if TYPE_CHECKING:
    from airflow_provider_mtp.emulator.state import EmulatorState

log = logging.getLogger("airflow_provider_mtp.emulator")

#: How long an interrupted hunting query may take to end before the process leaves without it.
_QUERY_END_WAIT_S = 2.0


def _iso_datetime(text: str) -> datetime:
    try:
        when = parse_iso(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(
            f"not an ISO 8601 time: {text!r} (e.g. 2026-11-20T12:00:00Z)"
        ) from exc
    if when.tzinfo is None:
        raise argparse.ArgumentTypeError(f"give a time zone, e.g. {text}Z")
    return when


def parse_args(argv: list[str] | None = None) -> tuple[EmulatorConfig, Path | None]:
    parser = argparse.ArgumentParser(
        prog="python -m airflow_provider_mtp.emulator",
        description="Offline emulator of Entra ID, the Microsoft Graph security API and the legacy MTP API.",
    )
    add = parser.add_argument
    add("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    add("--hostname", default=None, help="name for the certificate and the advertised URL (default: --host)")
    add("--port", type=int, default=0, help="port; 0 picks a free one (default 0)")
    add("--seed", type=int, default=7, help="seed of the synthetic tenant (default 7)")
    add("--now", type=_iso_datetime, default=None, help="frozen data time, ISO 8601 (default: this hour)")
    add("--incidents", type=int, default=500, help="incidents to generate (default 500)")
    add("--days", type=int, default=30, help="days of event history (default 30)")
    add(
        "--events-per-day",
        type=int,
        default=1000,
        help="rows per day in each large event table (default 1000)",
    )
    add("--no-quotas", action="store_true", help="turn the per-tenant call budgets off")
    add(
        "--token-lifetime", type=int, default=3599, help="expires_in of issued tokens, seconds (default 3599)"
    )
    add(
        "--row-limit-behaviour",
        choices=["truncate", "error"],
        default="truncate",
        help="a hunt over 100,000 rows is truncated (default) or fails",
    )
    add(
        "--query-timeout",
        type=float,
        default=HUNTING_TIMEOUT_S,
        help="hunting timeout, seconds (default 180)",
    )
    add(
        "--max-result-bytes",
        type=int,
        default=HUNTING_MAX_RESULT_BYTES,
        help="size cap of one hunting result (default 50 MiB)",
    )
    add(
        "--max-concurrent-queries",
        type=int,
        default=HUNTING_MAX_CONCURRENT,
        help="hunting queries run at once, more wait their turn "
        f"(default: the CPU count, at least 4; here {HUNTING_MAX_CONCURRENT})",
    )
    add(
        "--hunting-cpu-seconds",
        type=float,
        default=HUNTING_CPU_SECONDS,
        help="per-tenant hunting CPU budget, seconds of query CPU per 15-minute cycle "
        f"(default {HUNTING_CPU_SECONDS:g}; --no-quotas turns it off)",
    )
    add(
        "--hunting-calls-per-minute",
        type=int,
        default=HUNTING_CALLS_PER_MINUTE,
        help="per-tenant hunting call budget, calls per sliding minute, both APIs together "
        f"(default {HUNTING_CALLS_PER_MINUTE}; --no-quotas turns it off)",
    )
    add(
        "--state-dir",
        type=Path,
        default=None,
        help="where the CA bundle, the cert app's key and the federated token file go "
        "(default: a temporary folder removed at exit)",
    )
    add(
        "--externaldata-dir",
        type=Path,
        default=None,
        help="folder whose externaldata.json maps URLs to files for KQL externaldata (no network)",
    )
    add("--log-level", default="INFO", help="stderr log level (default INFO)")
    args = parser.parse_args(argv)
    for name in ("incidents", "days", "events_per_day"):
        if getattr(args, name) < 0:
            parser.error(f"--{name.replace('_', '-')} must be 0 or more")
    if args.token_lifetime < 1:
        parser.error("--token-lifetime must be at least 1 second")
    if args.max_concurrent_queries < 1:
        parser.error("--max-concurrent-queries must be at least 1")
    if args.hunting_cpu_seconds <= 0:
        parser.error("--hunting-cpu-seconds must be more than 0 (--no-quotas turns the budget off)")
    if args.hunting_calls_per_minute < 1:
        parser.error("--hunting-calls-per-minute must be at least 1 (--no-quotas turns the budget off)")
    config = EmulatorConfig(
        host=args.host,
        hostname=args.hostname,
        port=args.port,
        seed=args.seed,
        now=args.now,
        incidents=args.incidents,
        days=args.days,
        events_per_day=args.events_per_day,
        quotas=not args.no_quotas,
        token_lifetime=args.token_lifetime,
        row_limit_behaviour=args.row_limit_behaviour,
        query_timeout=args.query_timeout,
        max_result_bytes=args.max_result_bytes,
        max_concurrent_queries=args.max_concurrent_queries,
        hunting_cpu_seconds=args.hunting_cpu_seconds,
        hunting_calls_per_minute=args.hunting_calls_per_minute,
        externaldata_dir=args.externaldata_dir,
    )
    logging.basicConfig(
        stream=sys.stderr,
        level=args.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    return config, args.state_dir


def ready_line(state: Any, ca_bundle: Path) -> dict[str, Any]:
    """The contract users and tests read: where the emulator is and how to log in.

    ``apps`` lists every app but ``full`` (whose credentials are the top-level ones): ``read_only``,
    ``no_hunting`` and ``no_alerts`` with secrets, ``cert`` (``certificate_path``, ``certificate_thumbprint``),
    ``user`` (``username``, ``password``) and ``workload`` (``federated_token_file``).
    ``managed_identity`` gives ``identity_endpoint`` and ``identity_header`` (for msal's
    ``IDENTITY_ENDPOINT``/``IDENTITY_HEADER``), the user-assigned ``client_id`` and the
    ``system_client_id``.
    """
    from airflow_provider_mtp.emulator.identity import App

    apps: dict[str, App] = {app.name: app for app in state.directory.apps.values()}
    main = apps["full"]
    conn = {
        "conn_type": "mtp",
        "login": main.client_id,
        "password": main.client_secret,
        "extra": {
            "tenant_id": state.directory.tenant_id,
            "api": "graph",
            "api_url": state.url,
            "login_url": state.url,
            "ca_bundle": str(ca_bundle),
        },
    }
    return {
        "url": state.url,
        "ca_bundle": str(ca_bundle),
        "tenant_id": state.directory.tenant_id,
        "client_id": main.client_id,
        "client_secret": main.client_secret,
        "airflow_conn": json.dumps(conn),
        "apps": {name: app.ready_entry() for name, app in apps.items() if name != "full"},
        "managed_identity": state.directory.managed_identity_ready_entry(state.url),
        "now": state.clock.now().isoformat().replace("+00:00", "Z"),
    }


async def serve(
    config: EmulatorConfig, state_dir: Path, *, built: Callable[[EmulatorState], None] | None = None
) -> None:
    """Build the tenant, print the ready line, serve until a signal.

    :param built: called with the run's state once it is built.
    """
    import uvicorn

    from airflow_provider_mtp.emulator.app import build_state, create_app
    from airflow_provider_mtp.emulator.credentials import provision_credentials
    from airflow_provider_mtp.emulator.serving import EmulatorServer, count_connections, listening_socket
    from airflow_provider_mtp.emulator.tls import write_tls_files

    sock = listening_socket(config.host, config.port)
    port = sock.getsockname()[1]
    host = config.advertised_host
    url = f"https://[{host}]:{port}" if ":" in host else f"https://{host}:{port}"
    tls = write_tls_files(state_dir, hostnames=[host, config.host])
    state = build_state(config, url=url)
    if built is not None:
        built(state)
    # Certificate, federated token and managed identity credentials live in the state dir.
    provision_credentials(state.directory, state_dir, seed=config.seed)
    server_config = uvicorn.Config(
        create_app(state),
        ssl_certfile=str(tls.certificate),
        ssl_keyfile=str(tls.private_key),
        log_config=None,
        access_log=False,
        lifespan="off",
        # Queries are interrupted as shutdown starts; this bounds anything else still open.
        timeout_graceful_shutdown=2,
    )
    count_connections(server_config, state.connections)
    server = EmulatorServer(server_config, on_shutdown=state.hunting.close)
    serving = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        if serving.done():
            await serving  # re-raises the start-up failure
            return
        await asyncio.sleep(0.02)
    sys.stdout.write(json.dumps(ready_line(state, tls.ca_bundle)) + "\n")
    sys.stdout.flush()
    log.info("emulator ready at %s (seed %s, data time %s)", url, config.seed, state.clock.now().isoformat())
    await serving


def main(argv: list[str] | None = None) -> int:
    config, state_dir = parse_args(argv)
    temporary = state_dir is None
    directory = Path(tempfile.mkdtemp(prefix="mtp-emulator-")) if state_dir is None else state_dir
    # uvicorn shuts down gracefully on a signal, then re-raises it; SIGTERM then ends up where
    # SIGINT does (KeyboardInterrupt, caught below), so both exit with status 0.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    states: list[EmulatorState] = []
    try:
        asyncio.run(serve(config, directory, built=states.append))
    except KeyboardInterrupt:
        pass
    finally:
        if temporary:
            shutil.rmtree(directory, ignore_errors=True)
    log.info("emulator stopped")
    if states and not states[0].hunting.wait_idle(timeout=_QUERY_END_WAIT_S):
        # A query DuckDB has not let go of yet: finalising the interpreter would kill its thread
        # inside DuckDB, which aborts the process. Nothing is left to clean up: leave at once.
        log.warning("a hunting query was still running at exit")
        logging.shutdown()
        os._exit(0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
