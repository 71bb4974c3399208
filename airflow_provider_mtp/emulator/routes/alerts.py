"""Graph ``alerts_v2`` under ``/v1.0/security`` (and ``/beta/security``): list, get, PATCH, comments.

The alerts are the ones the incidents embed (one store): a change here shows in
``/security/incidents/{id}?$expand=alerts``, in the legacy API's incidents and in the AlertInfo
and AlertEvidence hunting tables. The legacy MTP API has no alerts endpoint (``/api/alerts`` stays
an unknown route). No call budget is emulated for ``alerts_v2``, as for Graph incidents: Microsoft
publishes none for either (the 150 requests a minute of Graph's throttling page are the retiring
``/security/alerts``); fault injection gives tests their 429s.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from airflow_provider_mtp.api import mapping
from airflow_provider_mtp.emulator import odata
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
from airflow_provider_mtp.emulator.routes.incidents_common import Page, options_of
from airflow_provider_mtp.emulator.state import state_of

router = APIRouter(tags=["Graph security API: alerts"])

READ = ("SecurityAlert.Read.All", "SecurityAlert.ReadWrite.All")
WRITE = ("SecurityAlert.ReadWrite.All",)

#: ``$filter`` fields of ``alerts_v2`` (defender-api.md section 3.5); any other is a 400.
FILTER_FIELDS: dict[str, odata.FieldKind] = {
    "assignedTo": "string",
    "classification": "enum",
    "createdDateTime": "datetime",
    "determination": "enum",
    "lastUpdateDateTime": "datetime",
    "serviceSource": "enum",
    "severity": "enum",
    "status": "enum",
}
#: ``$top`` above this is answered with pages of this size (clamped, not refused: section 3.5).
MAX_TOP = 1000
#: The page size without ``$top``: Graph does not document one (section 12); a tenth of the maximum.
DEFAULT_TOP = 100
#: Settable by PATCH, with the table each value must be in (``None``: any string).
PATCHABLE: dict[str, mapping.EnumMap | None] = {
    "status": mapping.ALERT_STATUS,
    "classification": mapping.CLASSIFICATION,
    "determination": mapping.DETERMINATION,
    "assignedTo": None,
}
RESOURCE = "security/alerts_v2"


@router.get("/security/alerts_v2")
def list_alerts(request: Request) -> dict[str, Any]:
    authorize(request, Api.GRAPH, READ)
    count = counted(request)
    options = options_of(
        request,
        fields=FILTER_FIELDS,
        max_top=MAX_TOP,
        default_top=DEFAULT_TOP,
        legacy=False,
        allow_orderby=True,
        clamp_top=True,
    )
    found = state_of(request).incidents.alert_page(
        options.predicate, options.orderby, skip=options.skip, top=options.top, count=count
    )
    page = Page(items=found.items, total=found.total, skip=options.skip, top=options.top, has_more=found.more)
    return listing_body(request, RESOURCE, page, count=count)


def _found(alert: dict[str, Any] | None, alert_id: str) -> dict[str, Any]:
    """The alert, or Graph's 404 when the store knows no such id."""
    if alert is None:
        raise ApiError(404, "NotFound", f"Alert {alert_id} was not found.")
    return alert


@router.get("/security/alerts_v2/{alert_id}")
def get_alert(alert_id: str, request: Request) -> dict[str, Any]:
    authorize(request, Api.GRAPH, READ)
    return {
        "@odata.context": context(request, f"{RESOURCE}/$entity"),
        **_found(state_of(request).incidents.get_alert(alert_id), alert_id),
    }


def _changes(body: dict[str, Any]) -> dict[str, Any]:
    """The PATCH body as Graph-spelt changes, or a 400 naming the field or value and what is accepted."""
    writable = ", ".join(PATCHABLE)
    unknown = sorted(set(body) - set(PATCHABLE) - {"@odata.type"})
    if unknown:
        raise ApiError(
            400,
            "BadRequest",
            f"Property '{unknown[0]}' does not exist on type 'microsoft.graph.security.alert' or is not "
            f"writable. Writable properties: {writable}.",
        )
    changes: dict[str, Any] = {}
    for field, table in PATCHABLE.items():
        if field not in body:
            continue
        value = body[field]
        if table is None:
            if value is not None and not isinstance(value, str):
                raise ApiError(
                    400, "BadRequest", f"Invalid {field} {value!r}: a string (or null) is expected."
                )
            changes[field] = value
            continue
        try:
            changes[field] = table.require_graph(value)
        except ValueError as exc:
            raise ApiError(400, "BadRequest", f"{field}: {exc}") from exc
    return changes


@router.patch("/security/alerts_v2/{alert_id}")
async def update_alert(alert_id: str, request: Request) -> dict[str, Any]:
    claims = authorize(request, Api.GRAPH, WRITE)
    changes = _changes(await json_object(request))
    updated = _found(
        state_of(request).incidents.update_alert(alert_id, changes, author=caller_name(claims)), alert_id
    )
    return {"@odata.context": context(request, f"{RESOURCE}/$entity"), **updated}


@router.post("/security/alerts_v2/{alert_id}/comments")
async def add_comment(alert_id: str, request: Request) -> dict[str, Any]:
    claims = authorize(request, Api.GRAPH, WRITE)
    text = comment_text(await json_object(request))
    store = state_of(request).incidents
    updated = _found(store.update_alert(alert_id, {}, author=caller_name(claims), comment=text), alert_id)
    return {
        "@odata.context": context(request, f"{RESOURCE}('{alert_id}')/comments"),
        "value": updated.get("comments", []),
    }
