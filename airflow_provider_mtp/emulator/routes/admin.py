"""The emulator's own routes under ``/_emulator``: not Microsoft's API, and no authentication.

They let tests read counters, restore the seeded state and load their own hunting rows.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from airflow_provider_mtp.emulator.replies import ApiError
from airflow_provider_mtp.emulator.state import state_of

router = APIRouter(prefix="/_emulator", tags=["Emulator admin"])


@router.get("/stats")
def stats(request: Request) -> dict[str, Any]:
    """Tokens issued per client id and requests per route template and status."""
    state = state_of(request)
    return {"tokens_issued": dict(state.directory.tokens_issued), "requests": state.requests.snapshot()}


@router.post("/reset")
def reset(request: Request) -> dict[str, Any]:
    """Restore the seeded incidents, drop loaded rows, zero the counters, refill the quotas."""
    state = state_of(request)
    state.incidents.reset()
    state.clock.reset()
    state.quotas.reset()
    state.directory.reset_counters()
    state.requests.reset()
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
