"""What is particular to alerts in the sensor and triggers' shared rules: :data:`ALERTS` and
:func:`alert_summary`.

The rules are :mod:`airflow_provider_mtp.listing_rules`, the same as for incidents, applied with
:data:`ALERTS` (``min_alerts``/``max_alerts`` in messages, ``list_alerts`` on the hooks).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from airflow_provider_mtp.api.alert_query import AlertQuery
from airflow_provider_mtp.listing_rules import Resource

__all__ = ["ALERTS", "TOO_MANY_ALERTS", "alert_summary"]

#: The alert fields a summary keeps, in Graph's ``alerts_v2`` spelling (both back ends list alerts
#: in that shape), so a summary reads like the alert it came from.
_SUMMARY_FIELDS = (
    "title",
    "severity",
    "status",
    "classification",
    "determination",
    "serviceSource",
    "detectionSource",
    "assignedTo",
    "createdDateTime",
    "lastUpdateDateTime",
    "alertWebUrl",
)


def alert_summary(alert: Mapping[str, Any]) -> dict[str, Any]:
    """What XCom and events carry about an alert: small, JSON, enough to act on or ``.expand`` over.

    ``(id, lastUpdateDateTime)`` identifies one update of one alert: downstream tasks deduplicate on
    it. ``incidentId`` is a string (the incident the alert belongs to, ``None`` if it has none); the
    evidence is left out (large): fetch it with ``get_alert`` where it is needed.
    """
    incident_id = alert.get("incidentId")
    summary: dict[str, Any] = {
        "id": str(alert.get("id")),
        "incidentId": None if incident_id in (None, "") else str(incident_id),
    }
    summary.update((name, alert.get(name)) for name in _SUMMARY_FIELDS)
    return summary


#: Alerts as the shared sensor and triggers see them (kind, query, the filters applied after
#: fetching: Graph refuses detection source and incident id; the summary, its update-time key).
ALERTS = Resource(
    "alert", AlertQuery, ("detection_source", "incident_id"), alert_summary, "lastUpdateDateTime"
)

#: ``error_type`` of the event fired when more alerts match than ``max_alerts``.
TOO_MANY_ALERTS = ALERTS.too_many
