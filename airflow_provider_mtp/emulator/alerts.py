"""Alerts across the store's incidents: the index ``alerts_v2`` pages from, and how an alert changes.

Alerts live inside their incidents (the Graph shape, ``alerts``); there is no second copy. The
:class:`AlertIndex` points at the very dicts the stored incidents embed, so an alert changed
through ``alerts_v2`` is the alert ``$expand=alerts`` and the legacy API show, and the other way
round. The incident store keeps it up to date under its lock on every change (it only re-reads
the alerts of the incident that changed), and each page walks a kept order, as incident pages do
(:mod:`~airflow_provider_mtp.emulator.store_index`).

The rule the client's legacy alert listing rests on (it lists incidents by update time, then
filters their alerts) holds after every change: an incident's ``lastUpdateDateTime`` is never
before one of its alerts' (:func:`settled`).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from airflow_provider_mtp.common.ticks import odata_ticks
from airflow_provider_mtp.emulator.store_index import (
    KeptOrders,
    Row,
    Slice,
    SortKeys,
    clone,
    normalized,
    time_key,
    walk,
)

#: .NET ticks (100 ns since 0001-01-01) at the Unix epoch: alert ids embed .NET ticks.
_DOTNET_EPOCH_TICKS = 621_355_968_000_000_000


class AlertListener(Protocol):
    """Told of every alert change under the store's lock (the hunting tables follow the store)."""

    def alerts_changed(self, changed: Sequence[Row], removed: Sequence[str]) -> None:
        """``changed``: alerts new or changed (stored, read-only); ``removed``: ids of alerts gone."""

    def alerts_reset(self, incidents: Iterable[Row]) -> None:
        """The store went back to its seed; ``incidents`` are the seeded ones, alerts embedded."""


def alert_id_of(alert: Any) -> str:
    """The id of an embedded alert.

    :raises ValueError: not an object with a non-empty string ``id``.
    """
    if not isinstance(alert, Mapping) or not isinstance(alert.get("id"), str) or not alert["id"]:
        raise ValueError(f"Every alert needs a non-empty string 'id'; got {alert!r}.")
    return str(alert["id"])


@dataclass(frozen=True)
class AlertChange:
    """The alerts one incident change touches (:meth:`AlertIndex.plan`).

    :param incident_id: the incident.
    :param changed: ``(id, alert, sort keys)`` of each alert new or changed.
    :param removed: ids of the alerts the incident no longer holds.
    """

    incident_id: str
    changed: list[tuple[str, dict[str, Any], SortKeys]]
    removed: list[str]

    @property
    def alerts(self) -> list[Row]:
        """The alerts new or changed."""
        return [alert for _, alert, _ in self.changed]


class AlertIndex:
    """Every alert of the store's incidents by id; not thread-safe (the store's lock guards it).

    ``rows`` holds the alert dicts the stored incidents embed (never copies); ``incident_of`` the
    id of each alert's incident. Ties in an order go by a serial number each alert gets when first
    indexed (the seed's in order, later ones after), newest first as incidents do.
    """

    def __init__(self) -> None:
        self.rows: dict[str, dict[str, Any]] = {}
        self.incident_of: dict[str, str] = {}
        self.orders = KeptOrders({})
        self._serials: dict[str, int] = {}
        self._next = itertools.count()

    def rebuild(self, incidents: Iterable[Row]) -> None:
        """Index the alerts of ``incidents`` from scratch.

        :raises ValueError: an alert without an id, an id twice, or a time field that is no timestamp.
        """
        self.rows, self.incident_of, self._serials, self._next = {}, {}, {}, itertools.count()
        keys: dict[str, SortKeys] = {}
        for incident in incidents:
            for alert in incident.get("alerts") or ():
                alert_id = alert_id_of(alert)
                if alert_id in self.rows:
                    raise ValueError(f"Alert {alert_id} is in two incidents.")
                self.rows[alert_id] = alert
                self.incident_of[alert_id] = str(incident["id"])
                keys[alert_id] = SortKeys.of(alert, self._serial(alert_id))
        self.orders = KeptOrders(keys)

    def _serial(self, alert_id: str) -> int:
        serial = self._serials.get(alert_id)
        if serial is None:
            serial = self._serials[alert_id] = next(self._next)
        return serial

    def plan(self, incident_id: str, before: Row | None, after: Row) -> AlertChange:
        """What storing a new version of one incident changes among the alerts; changes nothing.

        :param incident_id: the incident's id.
        :param before: the incident as it is stored (``None``: new).
        :param after: the incident about to be stored.
        :raises ValueError: an alert without an id, twice in the incident or in another incident,
            or with a time field that is no timestamp.
        """
        changed: list[tuple[str, dict[str, Any], SortKeys]] = []
        seen: set[str] = set()
        for alert in after.get("alerts") or ():
            alert_id = alert_id_of(alert)
            owner = self.incident_of.get(alert_id, incident_id)
            if owner != incident_id:
                raise ValueError(
                    f"Alert {alert_id} is already in incident {owner}; an alert keeps its incident."
                )
            if alert_id in seen:
                raise ValueError(f"Alert {alert_id} is twice in incident {incident_id}.")
            seen.add(alert_id)
            if self.rows.get(alert_id) is not alert:
                # The serial is given out by apply(), once the change is known to be good.
                changed.append((alert_id, alert, SortKeys.of(alert, self._serials.get(alert_id, -1))))
        removed = [
            alert_id_of(alert)
            for alert in (before or {}).get("alerts") or ()
            if alert_id_of(alert) not in seen
        ]
        return AlertChange(incident_id=incident_id, changed=changed, removed=removed)

    def apply(self, change: AlertChange) -> None:
        """Index what :meth:`plan` found (the incident is being stored)."""
        for alert_id in change.removed:
            del self.rows[alert_id], self.incident_of[alert_id]
            self.orders.remove(alert_id)
        for alert_id, alert, keys in change.changed:
            self.rows[alert_id] = alert
            self.incident_of[alert_id] = change.incident_id
            self.orders.put(alert_id, SortKeys(ticks=keys.ticks, number=self._serial(alert_id)))

    def page(
        self,
        predicate: Callable[[Any], bool] | None,
        orderby: Iterable[tuple[str, bool]] | None,
        *,
        skip: int,
        top: int | None,
        count: bool,
    ) -> Slice:
        """Alerts ``skip`` to ``skip + top`` of those ``predicate`` keeps, newest created first unless
        ``orderby`` says; items share the stored values (read-only below the top level)."""
        order = self.orders.order(normalized(orderby))
        return walk(order, self.rows, dict, predicate, skip=skip, top=top, count=count)


def changed_alert(
    alert: Row,
    changes: Mapping[str, Any],
    *,
    stamp: str,
    author: str | None = None,
    comment: str | None = None,
) -> dict[str, Any]:
    """A new dict: ``alert`` with ``changes`` (and a comment), stamped as the service stamps it.

    ``lastUpdateDateTime`` becomes ``stamp`` unless ``changes`` sets it; an alert that becomes
    resolved gets ``resolvedDateTime`` (its update time), one that leaves ``resolved`` loses it.

    :param alert: the stored alert (not changed).
    :param changes: new values by Graph field name.
    :param stamp: the time of the change.
    :param author: who comments, for ``createdByDisplayName``.
    :param comment: text appended as a new comment.
    """
    changed = {**alert, **clone(dict(changes))}
    if comment:
        added = {"comment": comment, "createdByDisplayName": author, "createdDateTime": stamp}
        changed["comments"] = [*(alert.get("comments") or ()), added]
    if "lastUpdateDateTime" not in changes:
        changed["lastUpdateDateTime"] = stamp
    if "resolvedDateTime" not in changes:
        if changed.get("status") == "resolved":
            if alert.get("status") != "resolved" or not alert.get("resolvedDateTime"):
                changed["resolvedDateTime"] = changed["lastUpdateDateTime"]
        elif "status" in changes:
            changed["resolvedDateTime"] = None
    return changed


def settled(incident: dict[str, Any]) -> dict[str, Any]:
    """``incident`` with no alert updated after it: such an alert takes the incident's update time.

    Only a test moving times back (an admin put with an earlier ``lastUpdateDateTime``, or the
    data clock set back) can get there; the service never does.
    """
    stamp = incident.get("lastUpdateDateTime")
    alerts = incident.get("alerts")
    if not alerts or not isinstance(stamp, str):
        return incident
    limit = odata_ticks(stamp)
    if all(time_key(alert, "lastUpdateDateTime") <= limit for alert in alerts):
        return incident
    incident["alerts"] = [
        {**alert, "lastUpdateDateTime": stamp} if time_key(alert, "lastUpdateDateTime") > limit else alert
        for alert in alerts
    ]
    return incident


def later(first: str | None, second: str) -> str:
    """The later of two timestamps (``second`` when ``first`` is empty)."""
    if not first or odata_ticks(second) >= odata_ticks(first):
        return second
    return first


def new_alert(
    fields: Mapping[str, Any], *, incident: Row, stamp: str, portal: str, taken: Callable[[str], bool]
) -> dict[str, Any]:
    """An alert of ``incident`` made from ``fields`` over defaults (what a synthetic alert carries).

    :param fields: Graph-shape alert fields; ``id`` is made when absent (``da<.NET ticks>_<n>``).
    :param incident: the incident the alert joins.
    :param stamp: the creation time unless ``fields`` says.
    :param portal: the portal origin for ``alertWebUrl``.
    :param taken: whether an alert id is in use.
    """
    created = str(fields.get("createdDateTime") or stamp)
    alert_id = str(fields.get("id") or "")
    if not alert_id:
        base = f"da{odata_ticks(created) + _DOTNET_EPOCH_TICKS}"
        alert_id = next(f"{base}_{n}" for n in itertools.count(1) if not taken(f"{base}_{n}"))
    tenant_id = incident.get("tenantId")
    defaults: dict[str, Any] = {
        "id": alert_id,
        "providerAlertId": alert_id,
        "incidentId": str(incident["id"]),
        "status": "new",
        "severity": incident.get("severity") or "medium",
        "classification": "unknown",
        "determination": "unknown",
        "serviceSource": "microsoftDefenderForEndpoint",
        "detectionSource": "microsoftDefenderForEndpoint",
        "detectorId": None,
        "tenantId": tenant_id,
        "title": f"Alert {alert_id}",
        "description": None,
        "recommendedActions": None,
        "category": "SuspiciousActivity",
        "assignedTo": None,
        "alertWebUrl": f"{portal}/alerts/{alert_id}?tid={tenant_id}",
        "incidentWebUrl": incident.get("incidentWebUrl"),
        "actorDisplayName": None,
        "threatDisplayName": None,
        "threatFamilyName": None,
        "mitreTechniques": [],
        "createdDateTime": created,
        "lastUpdateDateTime": stamp,
        "resolvedDateTime": None,
        "firstActivityDateTime": created,
        "lastActivityDateTime": created,
        "comments": [],
        "evidence": [],
        "systemTags": [],
    }
    alert = {**defaults, **clone(dict(fields)), "id": alert_id, "incidentId": str(incident["id"])}
    if alert["status"] == "resolved" and not alert["resolvedDateTime"]:
        alert["resolvedDateTime"] = alert["lastUpdateDateTime"]
    return alert
