"""The emulator's own routes under ``/_emulator``: not Microsoft's API, and no authentication.

They let tests read counters, restore the seeded state, load their own hunting rows, change
incidents as a live tenant would, and move the data clock.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from airflow_provider_mtp.common.utc import parse_iso
from airflow_provider_mtp.emulator.replies import ApiError
from airflow_provider_mtp.emulator.state import state_of

router = APIRouter(prefix="/_emulator", tags=["Emulator admin"])


@router.get("/stats")
def stats(request: Request) -> dict[str, Any]:
    """Tokens issued per client id, requests per route template and status, hunting queries, connections, quotas.

    ``hunting`` counts queries answered, refused and interrupted (per reason: timeout, disconnect,
    shutdown), the running and waiting ones, and under ``cpu`` each tenant's CPU use in the current
    budget cycle. ``connections`` counts accepted connections and those with ``TCP_NODELAY`` set.
    ``quotas`` says whether the call budgets are on and the hunting one's size.
    """
    state = state_of(request)
    return {
        "tokens_issued": dict(state.directory.tokens_issued),
        "requests": state.requests.snapshot(),
        "hunting": {**state.hunting.stats(), "cpu": state.quotas.cpu.snapshot()},
        "connections": state.connections.snapshot(),
        "quotas": state.quotas.snapshot(),
    }


@router.post("/quotas")
async def set_quotas(request: Request) -> dict[str, Any]:
    """Change the hunting call budget while running: ``{"hunting_per_minute": n}`` (``/reset`` restores it).

    A test shrinks the tenant's quota so that a few dozen hunts meet it, without restarting the
    emulator its stack depends on.
    """
    try:
        body = await request.json()
    except ValueError:
        body = None
    calls = body.get("hunting_per_minute") if isinstance(body, dict) else None
    if (
        not isinstance(body, dict)
        or set(body) != {"hunting_per_minute"}
        or isinstance(calls, bool)
        or not isinstance(calls, int)
        or calls < 1
    ):
        raise ApiError(400, "BadRequest", 'Send {"hunting_per_minute": n}, n a whole number of at least 1.')
    state = state_of(request)
    state.quotas.set_hunting_per_minute(calls)
    return state.quotas.snapshot()


@router.post("/reset")
def reset(request: Request) -> dict[str, Any]:
    """Restore the seeded incidents, drop loaded rows, faults and the analyst log, zero the counters, refill the quotas."""
    from airflow_provider_mtp.emulator.faults import registry_of

    state = state_of(request)
    registry_of(state).clear()
    registry_of(state).analyst_updates.clear()
    state.incidents.reset()
    state.clock.reset()
    state.quotas.reset()
    state.directory.reset_counters()
    state.requests.reset()
    state.hunting.reset_stats()
    with state.hunting.lock:
        for table, seeded in state.seeded_rows.items():
            # Loaded rows are appended, so they are the ones past the seeded row ids.
            state.con.execute(f'DELETE FROM store."{table}" WHERE rowid >= ?', [seeded])
    return {"reset": True}


@router.post("/tables/{table}")
async def load_rows(table: str, request: Request) -> dict[str, Any]:
    """Append JSON rows (a list of objects, or ``{"rows": [...]}``) to a hunting table."""
    from airflow_provider_mtp.emulator.tenant import insert_rows

    try:
        body = await request.json()
    except ValueError as exc:
        raise ApiError(400, "BadRequest", "The body must be a JSON list of row objects.") from exc
    rows = body.get("rows") if isinstance(body, dict) else body
    if not isinstance(rows, list) or not all(isinstance(row, dict) for row in rows):
        raise ApiError(400, "BadRequest", 'The body must be a JSON list of row objects, or {"rows": [...]}.')
    state = state_of(request)

    def append() -> int:
        with state.hunting.lock:
            return insert_rows(state.con, table, rows)

    try:
        added = await run_in_threadpool(append)
    except ValueError as exc:
        raise ApiError(400, "BadRequest", str(exc)) from exc
    return {"table": table, "rows_added": added}


@router.post("/externaldata")
async def register_externaldata(request: Request) -> dict[str, Any]:
    """Serve content for a URL that KQL ``externaldata`` reads: ``{"url", "content"}``, or ``{"url", "file"}``
    with a file of the ``--externaldata-dir`` folder (no other file is read)."""
    from airflow_provider_mtp.emulator.externaldata import ExternalDataError

    try:
        body = await request.json()
    except ValueError as exc:
        raise ApiError(400, "BadRequest", "The body must be a JSON object.") from exc
    url = body.get("url") if isinstance(body, dict) else None
    content = body.get("content") if isinstance(body, dict) else None
    file = body.get("file") if isinstance(body, dict) else None
    if not isinstance(url, str) or (not isinstance(content, str)) == (not isinstance(file, str)):
        raise ApiError(
            400, "BadRequest", 'The body must be {"url": ..., "content": ...} or {"url": ..., "file": ...}.'
        )
    sources = state_of(request).hunting.externaldata
    try:
        if isinstance(content, str):
            sources.register(url, content)
        else:
            sources.register_file(url, str(file))
    except ExternalDataError as exc:
        raise ApiError(400, "BadRequest", str(exc)) from exc
    return {"url": url, "urls": sources.urls}


async def _objects(request: Request, what: str) -> list[dict[str, Any]]:
    """The body's objects (one, or a list of them), or a 400 saying the body must be ``what``."""
    try:
        body = await request.json()
    except ValueError as exc:
        raise ApiError(400, "BadRequest", f"The body must be {what}.") from exc
    items = body if isinstance(body, list) else [body]
    if not all(isinstance(item, dict) for item in items):
        raise ApiError(400, "BadRequest", f"The body must be {what}.")
    return items


@router.post("/incidents")
async def put_incidents(request: Request) -> dict[str, Any]:
    """Create or update incidents (Graph shape; one object or a list); updates stamp the clock's time.

    An object with a known ``id`` changes that incident (only the fields given); one without an
    ``id``, or with an unknown one, creates an incident. ``lastUpdateDateTime`` is the data clock's
    time unless the object sets it.
    """
    items = await _objects(request, "an incident object or a list of them")
    state = state_of(request)
    portal = "https://security.microsoft.com"
    try:
        incidents = [
            state.incidents.put(item, tenant_id=state.directory.tenant_id, portal=portal) for item in items
        ]
    except ValueError as exc:
        raise ApiError(400, "BadRequest", str(exc)) from exc
    return {"value": incidents}


@router.post("/alerts")
async def put_alerts(request: Request) -> dict[str, Any]:
    """Create or update alerts (Graph ``alerts_v2`` shape; one object or a list), stamped as the service would.

    An object with a known ``id`` changes that alert (any field given). Any other object creates
    an alert, over the defaults a synthetic alert carries, in the incident ``incidentId`` names or,
    without one, in a new incident made for it. The alert's ``lastUpdateDateTime`` is the data
    clock's time unless the object sets it; its incident takes the same time (unless its own is
    later), and the AlertInfo and AlertEvidence rows of the alert follow.
    """
    items = await _objects(request, "an alert object or a list of them")
    state = state_of(request)
    portal = "https://security.microsoft.com"

    def put_all() -> list[dict[str, Any]]:
        tenant_id = state.directory.tenant_id
        return [state.incidents.put_alert(item, tenant_id=tenant_id, portal=portal) for item in items]

    try:
        # The hunting rows are rewritten on the way: off the event loop.
        alerts = await run_in_threadpool(put_all)
    except ValueError as exc:
        raise ApiError(400, "BadRequest", str(exc)) from exc
    return {"value": alerts}


@router.post("/clock")
async def move_clock(request: Request) -> dict[str, Any]:
    """Move the data clock: ``{"advance_s": seconds}`` or ``{"now": "<ISO 8601>"}``."""
    try:
        body = await request.json()
    except ValueError:
        body = None
    state = state_of(request)
    if isinstance(body, dict) and isinstance(body.get("advance_s"), int | float) and "now" not in body:
        state.clock.advance(float(body["advance_s"]))
    elif isinstance(body, dict) and isinstance(body.get("now"), str) and "advance_s" not in body:
        try:
            when = parse_iso(body["now"])
        except ValueError as exc:
            raise ApiError(400, "BadRequest", f"'now' is not an ISO 8601 time: {body['now']!r}") from exc
        if when.tzinfo is None:
            raise ApiError(400, "BadRequest", "'now' needs a time zone, e.g. 2026-11-20T12:00:00Z")
        state.clock.set(when)
    else:
        raise ApiError(400, "BadRequest", 'Send {"advance_s": seconds} or {"now": "<ISO 8601 time>"}.')
    return {"now": state.clock.now().isoformat().replace("+00:00", "Z")}
