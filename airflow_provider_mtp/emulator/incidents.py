"""The one incident store both back ends serve, kept in the Graph shape."""

from __future__ import annotations

import copy
import threading
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Any

from airflow_provider_mtp.common.ticks import format_ticks, instant_ticks, odata_ticks
from airflow_provider_mtp.emulator.config import Clock

Row = Mapping[str, Any]

#: Time fields that ``$orderby`` accepts.
TIME_FIELDS = ("createdDateTime", "lastUpdateDateTime")


def format_time(when: datetime) -> str:
    """A Graph timestamp with 7 fractional digits, as the service stamps updates."""
    return format_ticks(instant_ticks(when))


def _time_key(row: Row, field: str) -> int:
    value = row.get(field)
    return odata_ticks(value) if value else -1


class IncidentStore:
    """Incidents in the Graph shape, alerts embedded; thread-safe.

    :param incidents: the seeded incidents (copied; :meth:`reset` returns to them).
    :param clock: the data clock that stamps updates.
    """

    def __init__(self, incidents: Iterable[dict[str, Any]], *, clock: Clock) -> None:
        self._seed = [copy.deepcopy(incident) for incident in incidents]
        self._clock = clock
        self._lock = threading.Lock()
        self._by_id: dict[str, dict[str, Any]] = {}
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self._by_id = {incident["id"]: copy.deepcopy(incident) for incident in self._seed}

    def __len__(self) -> int:
        return len(self._by_id)

    def select(
        self,
        predicate: Callable[[dict[str, Any]], bool] | None = None,
        orderby: list[tuple[str, bool]] | None = None,
    ) -> list[dict[str, Any]]:
        """Matching incidents (deep copies), newest first unless ``orderby`` says otherwise.

        :param predicate: keeps an incident when true.
        :param orderby: ``(field, descending)`` pairs on the time fields.
        """
        with self._lock:
            chosen = [
                copy.deepcopy(row) for row in self._by_id.values() if predicate is None or predicate(row)
            ]
        keys = orderby or [("createdDateTime", True)]
        # Ties fall back to the id so pages never reshuffle between calls.
        chosen.sort(key=lambda row: int(row["id"]), reverse=keys[0][1])
        for field, descending in reversed(keys):
            chosen.sort(key=lambda row: _time_key(row, field), reverse=descending)
        return chosen

    def get(self, incident_id: str) -> dict[str, Any] | None:
        with self._lock:
            found = self._by_id.get(incident_id)
            return copy.deepcopy(found) if found else None

    def update(
        self, incident_id: str, changes: Mapping[str, Any], *, author: str, comment: str | None = None
    ) -> dict[str, Any] | None:
        """Apply Graph-named ``changes`` (and a comment) and stamp the update; ``None`` if unknown.

        :param incident_id: the Graph id.
        :param changes: new values by Graph field name.
        :param author: who changed it, for ``lastModifiedBy`` and the comment.
        :param comment: text appended as a new comment.
        """
        with self._lock:
            incident = self._by_id.get(incident_id)
            if incident is None:
                return None
            stamp = format_time(self._clock.now())
            incident.update(changes)
            if comment:
                incident.setdefault("comments", []).append(
                    {"comment": comment, "createdByDisplayName": author, "createdDateTime": stamp}
                )
            incident["lastUpdateDateTime"] = stamp
            incident["lastModifiedBy"] = author
            for alert in incident.get("alerts") or ():
                if "status" in changes and changes["status"] == "resolved":
                    alert["status"] = "resolved"
                alert["lastUpdateDateTime"] = stamp
            return copy.deepcopy(incident)

    def put(self, fields: Mapping[str, Any], *, tenant_id: str, portal: str) -> dict[str, Any]:
        """Create an incident or change one, as a live tenant would (the admin route).

        A known ``id`` merges ``fields`` into that incident; otherwise a new incident is made from
        ``fields`` over defaults, with the next free id. ``lastUpdateDateTime`` is stamped from the
        data clock unless ``fields`` sets it (tests placing an update exactly on a boundary).

        :param fields: Graph-shape fields.
        :param tenant_id: the tenant, for ``tenantId`` and the portal link of new incidents.
        :param portal: the portal origin for ``incidentWebUrl``.
        """
        with self._lock:
            stamp = format_time(self._clock.now())
            incident_id = str(fields["id"]) if fields.get("id") is not None else None
            incident = self._by_id.get(incident_id) if incident_id else None
            if incident is None:
                incident_id = incident_id or str(max((int(key) for key in self._by_id), default=999) + 1)
                incident = _new_incident(incident_id, stamp, tenant_id=tenant_id, portal=portal)
                self._by_id[incident_id] = incident
            incident.update({key: copy.deepcopy(value) for key, value in fields.items() if key != "id"})
            incident.setdefault("lastUpdateDateTime", stamp)
            if "lastUpdateDateTime" not in fields:
                incident["lastUpdateDateTime"] = stamp
            return copy.deepcopy(incident)


def _new_incident(incident_id: str, stamp: str, *, tenant_id: str, portal: str) -> dict[str, Any]:
    return {
        "id": incident_id,
        "tenantId": tenant_id,
        "incidentWebUrl": f"{portal}/incidents/{incident_id}?tid={tenant_id}",
        "redirectIncidentId": None,
        "displayName": f"Incident {incident_id}",
        "createdDateTime": stamp,
        "lastUpdateDateTime": stamp,
        "assignedTo": None,
        "classification": "unknown",
        "determination": "unknown",
        "status": "active",
        "severity": "medium",
        "customTags": [],
        "systemTags": [],
        "description": None,
        "summary": None,
        "priorityScore": 50,
        "lastModifiedBy": None,
        "resolvingComment": None,
        "comments": [],
        "alerts": [],
    }
