"""The Microsoft Graph security API under ``/v1.0/security`` (and ``/beta/security``)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from airflow_provider_mtp.api import mapping
from airflow_provider_mtp.emulator.audiences import Api
from airflow_provider_mtp.emulator.replies import ApiError
from airflow_provider_mtp.emulator.routes.common import authorize, caller_name
from airflow_provider_mtp.emulator.routes.graph_common import (
    comment_text,
    context,
    counted,
    json_object,
    listing_body,
)
from airflow_provider_mtp.emulator.routes.hunting_calls import hunt
from airflow_provider_mtp.emulator.routes.incidents_common import page_of
from airflow_provider_mtp.emulator.state import state_of

router = APIRouter(tags=["Graph security API"])

READ = ("SecurityIncident.Read.All", "SecurityIncident.ReadWrite.All")
WRITE = ("SecurityIncident.ReadWrite.All",)
HUNT = ("ThreatHunting.Read.All",)

#: ``$filter`` fields (defender-api.md section 3.1) and how they compare.
FILTER_FIELDS = {
    "assignedTo": "string",
    "classification": "enum",
    "createdDateTime": "datetime",
    "determination": "enum",
    "lastUpdateDateTime": "datetime",
    "severity": "enum",
    "status": "enum",
}
MAX_TOP = 50
#: Settable by PATCH, Graph names (defender-api.md section 3.2).
PATCHABLE = {
    "assignedTo",
    "classification",
    "determination",
    "status",
    "customTags",
    "description",
    "summary",
    "resolvingComment",
}


def _expand_alerts(request: Request) -> bool:
    expand = request.query_params.get("$expand", "")
    if expand and expand.strip() != "alerts":
        raise ApiError(
            400,
            "BadRequest",
            f"Parsing OData Select and Expand failed: Could not find a property named '{expand}'.",
        )
    return bool(expand)


@router.get("/security/incidents")
def list_incidents(request: Request) -> dict[str, Any]:
    authorize(request, Api.GRAPH, READ)
    expand = _expand_alerts(request)
    count = counted(request)
    page = page_of(
        request,
        fields=FILTER_FIELDS,
        view=lambda row: row,
        max_top=MAX_TOP,
        default_top=MAX_TOP,
        legacy=False,
        allow_orderby=True,
        alerts=expand,
        count=count,
    )
    return listing_body(request, "security/incidents", page, count=count)


def _incident_or_404(request: Request, incident_id: str, *, alerts: bool = False) -> dict[str, Any]:
    found = state_of(request).incidents.get(incident_id, alerts=alerts)
    if found is None:
        raise ApiError(404, "NotFound", f"Incident {incident_id} was not found.")
    return found


@router.get("/security/incidents/{incident_id}")
def get_incident(incident_id: str, request: Request) -> dict[str, Any]:
    authorize(request, Api.GRAPH, READ)
    expand = _expand_alerts(request)
    incident = _incident_or_404(request, incident_id, alerts=expand)
    return {"@odata.context": context(request, "security/incidents/$entity"), **incident}


@router.patch("/security/incidents/{incident_id}")
async def update_incident(incident_id: str, request: Request) -> dict[str, Any]:
    claims = authorize(request, Api.GRAPH, WRITE)
    body = await json_object(request)
    unknown = sorted(set(body) - PATCHABLE - {"@odata.type"})
    if unknown:
        raise ApiError(
            400,
            "BadRequest",
            f"Property '{unknown[0]}' does not exist on type 'microsoft.graph.security.incident' or is read-only.",
        )
    try:
        changes = mapping.graph_update_body(
            status=body.get("status"),
            assigned_to=body.get("assignedTo"),
            classification=body.get("classification"),
            determination=body.get("determination"),
            tags=body.get("customTags"),
        )
    except ValueError as exc:
        raise ApiError(400, "BadRequest", str(exc)) from exc
    for field in ("description", "summary", "resolvingComment"):
        if field in body:
            changes[field] = body[field]
    _incident_or_404(request, incident_id)
    updated = state_of(request).incidents.update(incident_id, changes, author=caller_name(claims))
    assert updated is not None
    updated.pop("alerts", None)
    return {"@odata.context": context(request, "security/incidents/$entity"), **updated}


@router.post("/security/incidents/{incident_id}/comments")
async def add_comment(incident_id: str, request: Request) -> dict[str, Any]:
    claims = authorize(request, Api.GRAPH, WRITE)
    body = await json_object(request)
    text = comment_text(body)
    _incident_or_404(request, incident_id)
    updated = state_of(request).incidents.update(incident_id, {}, author=caller_name(claims), comment=text)
    assert updated is not None
    return {
        "@odata.context": context(request, f"security/incidents('{incident_id}')/comments"),
        "value": updated.get("comments", []),
    }


@router.post("/security/runHuntingQuery")
@router.post("/security/microsoft.graph.security.runHuntingQuery")
async def run_hunting_query(request: Request) -> dict[str, Any]:
    """Both the plain action name and the namespace-qualified one Microsoft's own SDKs use."""
    claims = authorize(request, Api.GRAPH, HUNT)
    body = await json_object(request)
    query = body.get("Query", body.get("query"))
    timespan = body.get("Timespan", body.get("timespan"))
    if not isinstance(query, str) or not query.strip():
        raise ApiError(400, "BadRequest", "The 'Query' parameter is missing or empty.")
    if timespan is not None and not isinstance(timespan, str):
        raise ApiError(400, "BadRequest", "The 'Timespan' parameter must be a string.")
    # KQL runs for up to minutes, on the engine's threads: the event loop stays free.
    output = await hunt(request, claims, Api.GRAPH, query, timespan=timespan)
    return {
        "@odata.context": context(request, "microsoft.graph.security.huntingQueryResults"),
        "schema": [{"name": name, "type": kind} for name, kind in output.schema],
        "results": output.rows,
    }
