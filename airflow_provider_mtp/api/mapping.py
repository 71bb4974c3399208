"""The one documented mapping between the legacy MTP API and the Graph security API.

design.md asks for the legacy <-> Graph mapping to live in one place (it names ``api/legacy.py``).
That place is this pure module (data and pure functions, no Airflow, no I/O) instead, so that the
client's legacy back end (``api/legacy.py``) and the emulator (which keeps one Graph-shape store
and serves the legacy view from it) import the same table and cannot drift apart. The source is
defender-api.md sections 4.2, 5 and 6.

Reads never fail: an enum value the tables do not know (the services add values over time) passes
through unchanged. Writes validate: :func:`graph_update_body` and :func:`legacy_update_body` raise
:class:`ValueError` naming the accepted values.

What the legacy API cannot carry
--------------------------------
``incident_to_graph(incident_to_legacy(g), tenant_id=g["tenantId"], portal=...)`` equals ``g`` on
every field the legacy API carries. The rest comes back as follows:

* incident: ``tenantId`` comes from the argument and ``incidentWebUrl`` is derived from the portal,
  the id and the tenant; :data:`INCIDENT_FIELDS_LOST_BY_LEGACY` come back ``None`` (``systemTags``
  as ``[]``).
* alert: ``tenantId``, ``alertWebUrl`` and ``incidentWebUrl`` are derived; ``providerAlertId``
  comes back equal to ``id``; :data:`ALERT_FIELDS_LOST_BY_LEGACY` come back ``None`` or ``[]``.
* evidence: :data:`EVIDENCE_FIELDS_LOST_BY_LEGACY` come back ``None`` or ``[]`` (device evidence
  keeps ``tags``); nested keys without a legacy entity key (``fileDetails.fileSize``, a user's
  ``displayName``, ...) are dropped; device evidence comes first, then the rest in order.
* enums: the Graph synonym ``notMalicious`` has no MTP spelling and comes back as ``clean``.

Legacy fields Graph has no place for (alert ``investigationId``/``investigationState``, device
``osProcessor``, entity ``deviceId`` outside file, process and registry-value evidence) are dropped
on the way to Graph and come back ``None``.

The module is the entry; its parts, all as neutral as it is: the :class:`EnumMap` class
(``mapping_enum_map``), the value tables (``mapping_tables``), alert evidence (``mapping_evidence``),
incidents and alerts (``mapping_incidents``) and the update bodies (``mapping_updates``).
Import from here.
"""

from __future__ import annotations

from airflow_provider_mtp.api.mapping_enum_map import EnumMap
from airflow_provider_mtp.api.mapping_incidents import (
    alert_to_graph,
    alert_to_legacy,
    alert_web_url,
    incident_to_graph,
    incident_to_legacy,
    incident_web_url,
)
from airflow_provider_mtp.api.mapping_tables import (
    ALERT_FIELDS_LOST_BY_LEGACY,
    ALERT_STATUS,
    CLASSIFICATION,
    DETECTION_SOURCE,
    DETERMINATION,
    DEVICE_KEYS,
    ENTITY_KEYS,
    EVIDENCE_FIELDS_LOST_BY_LEGACY,
    GRAPH_TO_LEGACY_FILTER_FIELDS,
    INCIDENT_FIELDS_LOST_BY_LEGACY,
    INCIDENT_STATUS,
    LEGACY_TO_GRAPH_FILTER_FIELDS,
    SERVICE_SOURCE,
    SEVERITY,
)
from airflow_provider_mtp.api.mapping_updates import graph_update_body, legacy_update_body

__all__ = [
    "ALERT_FIELDS_LOST_BY_LEGACY",
    "ALERT_STATUS",
    "CLASSIFICATION",
    "DETECTION_SOURCE",
    "DETERMINATION",
    "DEVICE_KEYS",
    "ENTITY_KEYS",
    "EVIDENCE_FIELDS_LOST_BY_LEGACY",
    "GRAPH_TO_LEGACY_FILTER_FIELDS",
    "INCIDENT_FIELDS_LOST_BY_LEGACY",
    "INCIDENT_STATUS",
    "LEGACY_TO_GRAPH_FILTER_FIELDS",
    "SERVICE_SOURCE",
    "SEVERITY",
    "EnumMap",
    "alert_to_graph",
    "alert_to_legacy",
    "alert_web_url",
    "graph_update_body",
    "incident_to_graph",
    "incident_to_legacy",
    "incident_web_url",
    "legacy_update_body",
]
