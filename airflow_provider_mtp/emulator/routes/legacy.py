"""The legacy MTP API under ``/api`` (``api.security.microsoft.com``), served from the Graph store."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from airflow_provider_mtp.api import mapping
from airflow_provider_mtp.emulator.audiences import Api
from airflow_provider_mtp.emulator.replies import ApiError
from airflow_provider_mtp.emulator.routes.common import authorize, caller_name, take_quota
from airflow_provider_mtp.emulator.routes.hunting_calls import hunt
from airflow_provider_mtp.emulator.routes.incidents_common import page_of
from airflow_provider_mtp.emulator.state import state_of

router = APIRouter(prefix="/api", tags=["Legacy MTP API"])

READ = ("Incident.Read.All", "Incident.ReadWrite.All", "Incident.Read", "Incident.ReadWrite")
WRITE = ("Incident.ReadWrite.All", "Incident.ReadWrite")
HUNT = ("AdvancedHunting.Read.All", "AdvancedHunting.Read")

#: ``$filter`` fields the MTP API documents (defender-api.md section 4.1), by their MTP names.
FILTER_FIELDS = {
    "lastUpdateTime": "datetime",
    "createdTime": "datetime",
    "status": "enum",
    "assignedTo": "string",
}
MAX_TOP = 100
PATCHABLE = {"status", "assignedTo", "classification", "determination", "tags", "comment"}


def _filter_view(incident: dict[str, Any]) -> dict[str, Any]:
    """The MTP names the filter sees; enum values compare case-insensitively, so Graph spellings do."""
    return {
        "lastUpdateTime": incident.get("lastUpdateDateTime"),
        "createdTime": incident.get("createdDateTime"),
        "status": incident.get("status"),
        "assignedTo": incident.get("assignedTo"),
    }


def _context(request: Request, fragment: str) -> str:
    return f"{state_of(request).url}/api/$metadata#{fragment}"


@router.get("/incidents")
def list_incidents(request: Request) -> dict[str, Any]:
    claims = authorize(request, Api.MTP, READ)
    take_quota(request, "legacy-incidents-list", claims, Api.MTP)
    page = page_of(
        request,
        fields=FILTER_FIELDS,
        view=_filter_view,
        max_top=MAX_TOP,
        default_top=MAX_TOP,
        legacy=True,
        allow_orderby=False,
        # Legacy incidents always embed their alerts; the MTP API has no count and no nextLink.
        alerts=True,
        count=False,
        transform=mapping.incident_to_legacy,
    )
    return {"@odata.context": _context(request, "Incidents"), "value": page.items}


def _incident_id(raw: str) -> str:
    if not raw.isdigit():
        raise ApiError(400, "InvalidInput", f"Invalid input {raw}.")
    return str(int(raw))


@router.get("/incidents/{incident_id}")
def get_incident(incident_id: str, request: Request) -> dict[str, Any]:
    claims = authorize(request, Api.MTP, READ)
    take_quota(request, "legacy-incidents-get", claims, Api.MTP)
    found = state_of(request).incidents.get(_incident_id(incident_id))
    if found is None:
        raise ApiError(404, "ResourceNotFound", f"Incident {incident_id} was not found")
    return {"@odata.context": _context(request, "Incidents/$entity"), **mapping.incident_to_legacy(found)}


@router.patch("/incidents/{incident_id}")
async def update_incident(incident_id: str, request: Request) -> dict[str, Any]:
    claims = authorize(request, Api.MTP, WRITE)
    take_quota(request, "legacy-incidents-update", claims, Api.MTP)
    body = await _json_object(request)
    unknown = sorted(set(body) - PATCHABLE)
    if unknown:
        raise ApiError(400, "InvalidRequestBody", f"Unknown property '{unknown[0]}'.")
    try:
        changes = mapping.graph_update_body(
            status=body.get("status"),
            assigned_to=body.get("assignedTo"),
            classification=body.get("classification"),
            determination=body.get("determination"),
            tags=body.get("tags"),
        )
    except ValueError as exc:
        raise ApiError(400, "InvalidInput", str(exc)) from exc
    comment = body.get("comment")
    if comment is not None and not isinstance(comment, str):
        raise ApiError(400, "InvalidInput", "Invalid input comment: must be a string.")
    store = state_of(request).incidents
    updated = store.update(_incident_id(incident_id), changes, author=caller_name(claims), comment=comment)
    if updated is None:
        raise ApiError(404, "ResourceNotFound", f"Incident {incident_id} was not found")
    return {"@odata.context": _context(request, "Incidents/$entity"), **mapping.incident_to_legacy(updated)}


async def _json_object(request: Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError as exc:
        raise ApiError(400, "InvalidRequestBody", "Missing query.") from exc
    if not isinstance(body, dict):
        raise ApiError(400, "InvalidRequestBody", "The request body must be a JSON object.")
    return body


@router.post("/advancedhunting/run")
async def run_advanced_hunting(request: Request) -> dict[str, Any]:
    claims = authorize(request, Api.MTP, HUNT)
    body = await _json_object(request)
    # Body keys are case-sensitive on this API (defender-api.md section 4.3).
    query = body.get("Query")
    if not isinstance(query, str) or not query.strip():
        raise ApiError(400, "InvalidRequestBody", "Missing query.")
    # KQL runs for up to minutes, on the engine's threads: the event loop stays free.
    output = await hunt(request, claims, Api.MTP, query)
    return {
        "Stats": output.stats,
        "Schema": [{"Name": name, "Type": kind} for name, kind in output.schema],
        "Results": output.rows,
    }
