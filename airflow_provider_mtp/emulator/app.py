"""Assembles one emulator run: tenant data, directory, store, engine, and the HTTP routes."""

from __future__ import annotations

import logging
import time
from typing import Any

from fastapi import FastAPI
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from airflow_provider_mtp.emulator.config import Clock, EmulatorConfig
from airflow_provider_mtp.emulator.identity import Directory, default_apps, derived_id
from airflow_provider_mtp.emulator.replies import (
    ApiError,
    EntraError,
    api_error_handler,
    entra_error_handler,
    http_error_handler,
)
from airflow_provider_mtp.emulator.state import EmulatorState, RequestCounter

log = logging.getLogger(__name__)


class CountRequests:
    """ASGI middleware: counts each answered request by method, route template and status.

    The emulator's own ``/_emulator`` routes are not counted, so reading the counters never
    changes them.
    """

    def __init__(self, app: ASGIApp, counter: RequestCounter) -> None:
        self.app = app
        self.counter = counter

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith("/_emulator"):
            await self.app(scope, receive, send)
            return
        status = 500

        async def remember_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, remember_status)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or scope["path"]
            self.counter.add(scope["method"], template, status)


def build_state(config: EmulatorConfig, *, url: str) -> EmulatorState:
    """Generate the tenant and wire the parts; the slow step of a start.

    :param config: the run's settings.
    :param url: the origin clients will use.
    """
    import duckdb_kql

    from airflow_provider_mtp.emulator.alert_rows import AlertRows
    from airflow_provider_mtp.emulator.hunting import HuntingEngine
    from airflow_provider_mtp.emulator.incidents import IncidentStore
    from airflow_provider_mtp.emulator.limits import Quotas
    from airflow_provider_mtp.emulator.schema import table_schemas
    from airflow_provider_mtp.emulator.synthetic.alert_tables import ALERT_TABLES
    from airflow_provider_mtp.emulator.tenant import build_tenant

    started = time.monotonic()
    clock = Clock(config.start_time())
    tenant_id = derived_id(config.seed, "tenant")
    con = duckdb_kql.connect()
    # One thread: DuckDB's answers (ties, group order) then never change between calls.
    con.execute("SET threads = 1")
    tenant = build_tenant(
        con,
        tenant_id=tenant_id,
        seed=config.seed,
        now=clock.now(),
        days=config.days,
        events_per_day=config.events_per_day,
        incidents=config.incidents,
    )
    # The alert tables follow the incident store (AlertRows), reset included.
    seeded_rows = {table: _row_count(con, table) for table in table_schemas() if table not in ALERT_TABLES}
    hunting = HuntingEngine(
        con,
        clock=clock,
        row_limit_behaviour=config.row_limit_behaviour,
        query_timeout=config.query_timeout,
        max_result_bytes=config.max_result_bytes,
        max_concurrent=config.max_concurrent_queries,
    )
    alert_rows = AlertRows(con=con, lock=hunting.lock, incidents=tenant.incidents)
    state = EmulatorState(
        config=config,
        url=url,
        clock=clock,
        directory=Directory(
            tenant_id=tenant_id,
            apps=default_apps(config.seed),
            token_lifetime=config.token_lifetime,
            issuer_origin=url,
        ),
        incidents=IncidentStore(tenant.incidents, clock=clock, listener=alert_rows),
        hunting=hunting,
        quotas=Quotas(
            enabled=config.quotas,
            cpu_seconds=config.hunting_cpu_seconds,
            hunting_per_minute=config.hunting_calls_per_minute,
        ),
        con=con,
        seeded_rows=seeded_rows,
    )
    if config.externaldata_dir is not None:
        state.hunting.externaldata.load_dir(config.externaldata_dir)
    log.info(
        "tenant %s: %d incidents, %d event rows, built in %.1f s",
        tenant_id,
        len(tenant.incidents),
        sum(seeded_rows.values()),
        time.monotonic() - started,
    )
    return state


def _row_count(con: Any, table: str) -> int:
    (count,) = con.execute(f'SELECT count(*) FROM store."{table}"').fetchone()
    return int(count)


def create_app(state: EmulatorState) -> FastAPI:
    """The ASGI app serving every route at one origin."""
    from airflow_provider_mtp.emulator.faults import InjectFaults, registry_of
    from airflow_provider_mtp.emulator.routes import admin, alerts, entra, faults, graph, legacy

    app = FastAPI(
        title="Defender XDR emulator",
        description="Entra ID, the Graph security API and the legacy MTP API, offline.",
        docs_url="/_emulator/docs",
        openapi_url="/_emulator/openapi.json",
        redoc_url=None,
    )
    app.state.emulator = state
    app.add_exception_handler(ApiError, api_error_handler)
    app.add_exception_handler(EntraError, entra_error_handler)
    # No route, or a method the route does not take: the API's own error shape, not FastAPI's.
    app.add_exception_handler(StarletteHTTPException, http_error_handler)
    app.include_router(admin.router)
    app.include_router(faults.router)
    app.include_router(legacy.router)
    for version in ("/v1.0", "/beta"):
        app.include_router(graph.router, prefix=version)
        app.include_router(alerts.router, prefix=version)
    # Entra's routes start with a path parameter (the tenant): they go last.
    app.include_router(entra.router)
    # Added first, so it runs inside the counter: faulted requests are counted too.
    app.add_middleware(InjectFaults, registry=registry_of(state))
    app.add_middleware(CountRequests, counter=state.requests)
    return app
