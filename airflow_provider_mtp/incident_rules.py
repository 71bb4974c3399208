"""The incident-matching rules the sensor, its trigger, the event trigger and the operators share.

The rules themselves are resource-neutral and live in :mod:`airflow_provider_mtp.listing_rules`
(alerts use them too); this module holds what is particular to incidents, :data:`INCIDENTS` and
:func:`incident_summary`, and keeps the incident names its users import: :func:`listing_query`
says what to ask the hook for, :func:`match_incidents` picks the incidents of a window,
:func:`decide` says whether the wait is over, :func:`incident_summary` is what reaches XCom, and
:class:`UpdateCursor` is what an event trigger has fired for.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from airflow_provider_mtp import listing_rules
from airflow_provider_mtp.api.incident_query import IncidentQuery
from airflow_provider_mtp.listing_rules import (
    ON_EMPTY,
    Decision,
    Resource,
    UpdateCursor,
    describe_window,
)
from airflow_provider_mtp.windows import Window

__all__ = [
    "INCIDENTS",
    "ON_EMPTY",
    "TOO_MANY",
    "Decision",
    "UpdateCursor",
    "decide",
    "describe_window",
    "incident_summary",
    "listing_query",
    "match_incidents",
]


def incident_summary(incident: Mapping[str, Any]) -> dict[str, Any]:
    """What XCom and events carry about an incident: small, JSON, enough to act on or ``.expand`` over.

    ``(id, last_update)`` identifies one update of one incident: downstream tasks deduplicate on it.
    A redirected (merged) incident carries ``redirect_target``, the id of the incident it was merged
    into; the target itself is not fetched (its state would change the XCom of a rerun), and it is
    reported in its own right by the window of its own last update.
    """
    summary: dict[str, Any] = {
        "id": str(incident.get("id")),
        "title": incident.get("displayName"),
        "severity": incident.get("severity"),
        "status": incident.get("status"),
        "last_update": incident.get("lastUpdateDateTime"),
        "portal_url": incident.get("incidentWebUrl"),
    }
    target = incident.get("redirectIncidentId")
    if target not in (None, "", 0):
        summary["redirect_target"] = str(target)
    return summary


#: Incidents as the shared sensor and triggers see them (kind, query, the filters applied after
#: fetching: the legacy API cannot filter on either, Graph not on tags; the summary, its update-time
#: key).
INCIDENTS = Resource("incident", IncidentQuery, ("classification", "tags"), incident_summary, "last_update")

#: ``error_type`` of the event fired when more incidents match than ``max_incidents``.
TOO_MANY = INCIDENTS.too_many

#: The incidents last updated in a window, deduplicated, filtered and sorted by (last update, id):
#: :func:`~airflow_provider_mtp.listing_rules.match_updates`.
match_incidents = listing_rules.match_updates


def listing_query(
    query: IncidentQuery, *, window: Window | None = None, since: str | None = None
) -> IncidentQuery:
    """What to ask either hook's ``list_incidents`` for: ``query``'s service-side filters and the
    bounds (:func:`~airflow_provider_mtp.listing_rules.listing_query`; classification and tags are
    applied after fetching)."""
    return listing_rules.listing_query(INCIDENTS, query, window=window, since=since)


def decide(
    count: int,
    *,
    window: Window,
    now: datetime,
    min_incidents: int,
    max_incidents: int | None,
    query: IncidentQuery,
    lag: timedelta | None = None,
) -> Decision:
    """The one rule of :class:`~airflow_provider_mtp.sensors.incidents.IncidentSensor`, in every mode
    (:func:`~airflow_provider_mtp.listing_rules.decide` with the incident names in messages)."""
    return listing_rules.decide(
        INCIDENTS,
        count,
        window=window,
        now=now,
        minimum=min_incidents,
        maximum=max_incidents,
        query=query,
        lag=lag,
    )
