"""Incidents and alerts between the dialects: the MTP shape <-> the Graph shape (part of :mod:`.mapping`).

Ids, portal URLs, comments, then alerts (with their evidence, from
:mod:`airflow_provider_mtp.api.mapping_evidence`) and incidents. Timestamps are copied as received.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from airflow_provider_mtp.api.mapping_evidence import (
    _device_to_evidence,
    _entity_to_evidence,
    _evidence_to_device,
    _evidence_to_entity,
    _is_device_evidence,
)
from airflow_provider_mtp.api.mapping_tables import (
    ALERT_STATUS,
    CLASSIFICATION,
    DETECTION_SOURCE,
    DETERMINATION,
    INCIDENT_STATUS,
    SERVICE_SOURCE,
    SEVERITY,
)

__all__ = [
    "alert_to_graph",
    "alert_to_legacy",
    "alert_web_url",
    "incident_to_graph",
    "incident_to_legacy",
    "incident_web_url",
]

JsonDict = dict[str, Any]


# --------------------------------------------------------------------------------------------------
# Ids, URLs, comments
# --------------------------------------------------------------------------------------------------


def _id_to_graph(value: Any) -> str | None:
    return None if value is None else str(value)


def _id_to_legacy(value: Any) -> Any:
    """MTP ids are JSON integers; a value that is not all digits passes through rather than fail."""
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return value


def _portal_url(portal: str, path: str, tenant_id: str | None) -> str:
    url = f"{portal.rstrip('/')}/{path}"
    return url if tenant_id is None else f"{url}?tid={quote(tenant_id, safe='')}"


def incident_web_url(portal: str, incident_id: Any, tenant_id: str | None) -> str:
    """The incident's page in the Defender portal, as Graph's ``incidentWebUrl`` spells it.

    :param portal: the cloud's portal origin, e.g. ``https://security.microsoft.com``.
    :param incident_id: the incident id (int or str).
    :param tenant_id: appended as ``?tid=``; omitted when ``None``.
    """
    return _portal_url(portal, f"incidents/{quote(str(incident_id), safe='')}", tenant_id)


def alert_web_url(portal: str, alert_id: Any, tenant_id: str | None) -> str:
    """The alert's page in the Defender portal, as Graph's ``alertWebUrl`` spells it.

    :param portal: the cloud's portal origin, e.g. ``https://security.microsoft.com``.
    :param alert_id: the alert id.
    :param tenant_id: appended as ``?tid=``; omitted when ``None``.
    """
    return _portal_url(portal, f"alerts/{quote(str(alert_id), safe='')}", tenant_id)


def _comment_to_graph(comment: Mapping[str, Any]) -> JsonDict:
    return {
        "comment": comment.get("comment"),
        "createdByDisplayName": comment.get("createdBy"),
        "createdDateTime": comment.get("createdTime"),
    }


def _comment_to_legacy(comment: Mapping[str, Any]) -> JsonDict:
    return {
        "comment": comment.get("comment"),
        "createdBy": comment.get("createdByDisplayName"),
        "createdTime": comment.get("createdDateTime"),
    }


# --------------------------------------------------------------------------------------------------
# Alerts
# --------------------------------------------------------------------------------------------------


def alert_to_graph(legacy: Mapping[str, Any], *, tenant_id: str | None, portal: str) -> JsonDict:
    """An alert embedded in an MTP incident, in the ``alerts_v2`` shape.

    ``devices[]`` become ``deviceEvidence`` items, then ``entities[]`` become typed evidence.
    Timestamps are copied as received.

    :param legacy: the MTP alert.
    :param tenant_id: the tenant the alert belongs to (MTP does not say).
    :param portal: the cloud's portal origin, for ``alertWebUrl`` and ``incidentWebUrl``.
    """
    alert_id = legacy.get("alertId")
    incident_id = _id_to_graph(legacy.get("incidentId"))
    return {
        "id": alert_id,
        "providerAlertId": alert_id,
        "incidentId": incident_id,
        "status": ALERT_STATUS.to_graph(legacy.get("status")),
        "severity": SEVERITY.to_graph(legacy.get("severity")),
        "classification": CLASSIFICATION.to_graph(legacy.get("classification")),
        "determination": DETERMINATION.to_graph(legacy.get("determination")),
        "serviceSource": SERVICE_SOURCE.to_graph(legacy.get("serviceSource")),
        "detectionSource": DETECTION_SOURCE.to_graph(legacy.get("detectionSource")),
        "detectorId": legacy.get("detectorId"),
        "tenantId": tenant_id,
        "title": legacy.get("title"),
        "description": legacy.get("description"),
        "recommendedActions": None,
        "category": legacy.get("category"),
        "assignedTo": legacy.get("assignedTo"),
        "alertWebUrl": alert_web_url(portal, alert_id, tenant_id),
        "incidentWebUrl": None if incident_id is None else incident_web_url(portal, incident_id, tenant_id),
        "actorDisplayName": legacy.get("actorName"),
        "threatDisplayName": None,
        "threatFamilyName": legacy.get("threatFamilyName"),
        "mitreTechniques": list(legacy.get("mitreTechniques") or []),
        "createdDateTime": legacy.get("creationTime"),
        "lastUpdateDateTime": legacy.get("lastUpdatedTime"),
        "resolvedDateTime": legacy.get("resolvedTime"),
        "firstActivityDateTime": legacy.get("firstActivity"),
        "lastActivityDateTime": legacy.get("lastActivity"),
        "comments": [],
        "evidence": [
            *(_device_to_evidence(device) for device in legacy.get("devices") or []),
            *(_entity_to_evidence(entity) for entity in legacy.get("entities") or []),
        ],
        "systemTags": [],
    }


def alert_to_legacy(graph: Mapping[str, Any]) -> JsonDict:
    """An ``alerts_v2`` alert as an MTP incident embeds it: every key present, ``null`` where n/a.

    :param graph: the Graph alert.
    """
    evidence = list(graph.get("evidence") or [])
    return {
        "alertId": graph.get("id"),
        "incidentId": _id_to_legacy(graph.get("incidentId")),
        "serviceSource": SERVICE_SOURCE.to_legacy(graph.get("serviceSource")),
        "creationTime": graph.get("createdDateTime"),
        "lastUpdatedTime": graph.get("lastUpdateDateTime"),
        "resolvedTime": graph.get("resolvedDateTime"),
        "firstActivity": graph.get("firstActivityDateTime"),
        "lastActivity": graph.get("lastActivityDateTime"),
        "title": graph.get("title"),
        "description": graph.get("description"),
        "category": graph.get("category"),
        "status": ALERT_STATUS.to_legacy(graph.get("status")),
        "severity": SEVERITY.to_legacy(graph.get("severity")),
        "investigationId": None,
        "investigationState": None,
        "classification": CLASSIFICATION.to_legacy(graph.get("classification")),
        "determination": DETERMINATION.to_legacy(graph.get("determination")),
        "detectionSource": DETECTION_SOURCE.to_legacy(graph.get("detectionSource")),
        "detectorId": graph.get("detectorId"),
        "assignedTo": graph.get("assignedTo"),
        "actorName": graph.get("actorDisplayName"),
        "threatFamilyName": graph.get("threatFamilyName"),
        "mitreTechniques": list(graph.get("mitreTechniques") or []),
        "devices": [_evidence_to_device(item) for item in evidence if _is_device_evidence(item)],
        "entities": [_evidence_to_entity(item) for item in evidence if not _is_device_evidence(item)],
    }


# --------------------------------------------------------------------------------------------------
# Incidents
# --------------------------------------------------------------------------------------------------


def incident_to_graph(
    legacy: Mapping[str, Any], *, tenant_id: str | None, portal: str, include_alerts: bool = True
) -> JsonDict:
    """An MTP incident in the Graph shape (defender-api.md section 6).

    Ids become strings, enums camelCase, timestamps are copied as received (never reformatted:
    the 7th fractional digit matters to watermarks).

    :param legacy: the MTP incident, as ``/api/incidents`` returns it.
    :param tenant_id: the tenant (the token's ``tid``): MTP incidents do not carry it.
    :param portal: the cloud's portal origin, for ``incidentWebUrl``.
    :param include_alerts: add ``alerts``, as Graph does with ``$expand=alerts``.
    """
    incident_id = _id_to_graph(legacy.get("incidentId"))
    graph: JsonDict = {
        "id": incident_id,
        "tenantId": tenant_id,
        "incidentWebUrl": incident_web_url(portal, incident_id, tenant_id),
        "redirectIncidentId": _id_to_graph(legacy.get("redirectIncidentId")),
        "displayName": legacy.get("incidentName"),
        "createdDateTime": legacy.get("createdTime"),
        "lastUpdateDateTime": legacy.get("lastUpdateTime"),
        "assignedTo": legacy.get("assignedTo"),
        "classification": CLASSIFICATION.to_graph(legacy.get("classification")),
        "determination": DETERMINATION.to_graph(legacy.get("determination")),
        "status": INCIDENT_STATUS.to_graph(legacy.get("status")),
        "severity": SEVERITY.to_graph(legacy.get("severity")),
        "customTags": list(legacy.get("tags") or []),
        "systemTags": [],
        "description": legacy.get("description"),
        "summary": legacy.get("summary"),
        "priorityScore": legacy.get("priorityScore"),
        "lastModifiedBy": legacy.get("lastModifiedBy"),
        "resolvingComment": legacy.get("resolvingComment"),
        "comments": [_comment_to_graph(comment) for comment in legacy.get("comments") or []],
    }
    if include_alerts:
        graph["alerts"] = [
            alert_to_graph(alert, tenant_id=tenant_id, portal=portal) for alert in legacy.get("alerts") or []
        ]
    return graph


def incident_to_legacy(graph: Mapping[str, Any]) -> JsonDict:
    """A Graph incident as ``/api/incidents`` serves it (defender-api.md section 4.2).

    The emulator keeps one Graph-shape store and serves this view from it. Alerts are always
    embedded (``[]`` when the Graph incident has none).

    :param graph: the Graph incident, alerts expanded or not.
    """
    return {
        "incidentId": _id_to_legacy(graph.get("id")),
        "redirectIncidentId": _id_to_legacy(graph.get("redirectIncidentId")),
        "incidentName": graph.get("displayName"),
        "createdTime": graph.get("createdDateTime"),
        "lastUpdateTime": graph.get("lastUpdateDateTime"),
        "assignedTo": graph.get("assignedTo"),
        "classification": CLASSIFICATION.to_legacy(graph.get("classification")),
        "determination": DETERMINATION.to_legacy(graph.get("determination")),
        "status": INCIDENT_STATUS.to_legacy(graph.get("status")),
        "severity": SEVERITY.to_legacy(graph.get("severity")),
        "tags": list(graph.get("customTags") or []),
        "comments": [_comment_to_legacy(comment) for comment in graph.get("comments") or []],
        "alerts": [alert_to_legacy(alert) for alert in graph.get("alerts") or []],
    }
