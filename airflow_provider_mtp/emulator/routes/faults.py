"""``/_emulator/faults``: register, list and clear injected faults (see :mod:`..faults`)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from airflow_provider_mtp.emulator.faults import FaultSpecError, registry_of
from airflow_provider_mtp.emulator.replies import ApiError
from airflow_provider_mtp.emulator.state import state_of

router = APIRouter(prefix="/_emulator", tags=["Emulator admin"])


@router.post("/faults")
async def add_faults(request: Request) -> dict[str, Any]:
    """Register one fault (a JSON object) or several (a list), applied in order.

    ``{"path": glob, "method": optional, "query": optional glob, "count": n, "after": n,
    "kind": "status" | "drop" | "malformed" | "mutate", "status": code, "retry_after": s,
    "delay_s": s, "code": optional, "message": optional, "n": incidents, "probability": p,
    "seed": n}`` (the last three for ``mutate``)
    """
    try:
        body = await request.json()
    except ValueError as exc:
        raise ApiError(400, "BadRequest", "The body must be a JSON fault object or a list of them.") from exc
    specs = body if isinstance(body, list) else [body]
    registry = registry_of(state_of(request))
    try:
        added = registry.add(*specs)
    except FaultSpecError as exc:
        raise ApiError(400, "BadRequest", str(exc)) from exc
    return {"added": [fault.to_json() for fault in added], "faults": registry.pending()}


@router.get("/faults")
def list_faults(request: Request) -> dict[str, Any]:
    """Faults still to fire, with their remaining counts."""
    return {"faults": registry_of(state_of(request)).pending()}


@router.delete("/faults")
def clear_faults(request: Request) -> dict[str, Any]:
    """Drop every registered fault."""
    return {"cleared": registry_of(state_of(request)).clear()}


@router.get("/analyst-updates")
def analyst_updates(request: Request) -> dict[str, Any]:
    """Every incident update ``mutate`` faults made, in order: ``{"id", "old", "new", "path", "filter", "at"}``."""
    registry = registry_of(state_of(request))
    return {"updates": list(registry.analyst_updates)}


@router.delete("/analyst-updates")
def clear_analyst_updates(request: Request) -> dict[str, Any]:
    """The logged analyst updates, forgotten in the same step (the incidents keep them)."""
    updates = registry_of(state_of(request)).drain_analyst_updates()
    return {"cleared": len(updates), "updates": updates}
