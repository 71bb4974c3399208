"""The one incident store both back ends serve, kept in the Graph shape.

A listing costs what its page costs, not what the tenant holds:

* each incident's sort fields are read once, when it is stored or changed, and each ``$orderby``
  asked for keeps its order of ids, which every change updates in place;
* stored incidents are never changed in place: a change stores a new dict (copy on write), so a
  page can hand out the stored values without copying them, and a reader holding an old version
  never sees it change under it;
* a page walks the kept order, tests the filter on the stored rows and stops after the page
  unless the total is asked for; only its own incidents are touched, alerts only when asked for.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from airflow_provider_mtp.emulator.alerts import (
    AlertIndex,
    AlertListener,
    alert_id_of,
    changed_alert,
    later,
    new_alert,
    settled,
)
from airflow_provider_mtp.emulator.config import Clock
from airflow_provider_mtp.emulator.store_index import (
    NEWEST_FIRST,
    TIME_FIELDS,
    KeptOrders,
    OrderBy,
    Row,
    Slice,
    SortKeys,
    clone,
    format_time,
    normalized,
    walk,
)

__all__ = [
    "NEWEST_FIRST",
    "TIME_FIELDS",
    "IncidentStore",
    "OrderBy",
    "Slice",
    "clone",
    "format_time",
]


def _without_alerts(incident: Row) -> dict[str, Any]:
    return {key: clone(value) for key, value in incident.items() if key != "alerts"}


def _shared(incident: Row) -> dict[str, Any]:
    """The stored incident's values in a new dict: read-only below the top level."""
    return dict(incident)


def _shared_without_alerts(incident: Row) -> dict[str, Any]:
    return {key: value for key, value in incident.items() if key != "alerts"}


def _keys_of(incident: Row) -> SortKeys:
    incident_id = str(incident["id"])
    if not incident_id.isdigit():
        raise ValueError(f"Incident ids are numbers; got {incident_id!r}.")
    return SortKeys.of(incident, int(incident_id))


class IncidentStore:
    """Incidents in the Graph shape, alerts embedded (and indexed across incidents); thread-safe.

    :param incidents: the seeded incidents (copied; :meth:`reset` returns to them).
    :param clock: the data clock that stamps updates.
    :param listener: told of every alert change (the hunting tables follow the store).
    """

    def __init__(
        self, incidents: Iterable[dict[str, Any]], *, clock: Clock, listener: AlertListener | None = None
    ) -> None:
        self._seed = [clone(incident) for incident in incidents]
        self._clock = clock
        self._listener = listener
        self._lock = threading.Lock()
        self._by_id: dict[str, dict[str, Any]] = {}
        self._orders = KeptOrders({})
        self._alerts = AlertIndex()
        # (transform, id) -> (the stored version it was made from, the view).
        self._views: dict[tuple[Callable[[Row], Any], str], tuple[Row, Any]] = {}
        self.reset()

    def reset(self) -> None:
        with self._lock:
            # The seed's dicts themselves: nothing changes a stored incident in place.
            self._by_id = {incident["id"]: incident for incident in self._seed}
            self._orders = KeptOrders(
                {incident_id: _keys_of(row) for incident_id, row in self._by_id.items()}
            )
            self._alerts.rebuild(self._seed)
            self._views = {}
            if self._listener is not None:
                self._listener.alerts_reset(self._seed)

    def __len__(self) -> int:
        return len(self._by_id)

    def _store(self, incident_id: str, before: Row | None, incident: dict[str, Any]) -> None:
        """Check, index and store a new version of an incident (under the lock); nothing changes on error.

        :raises ValueError: an id, a time or an alert the indexes cannot take.
        """
        keys = _keys_of(incident)
        incident = settled(incident)
        change = self._alerts.plan(incident_id, before, incident)
        # The hunting rows first: should they refuse a value, the store is left as it was.
        if self._listener is not None and (change.changed or change.removed):
            self._listener.alerts_changed(change.alerts, change.removed)
        self._alerts.apply(change)
        self._by_id[incident_id] = incident
        self._orders.put(incident_id, keys)

    def page(
        self,
        predicate: Callable[[dict[str, Any]], bool] | None = None,
        orderby: Iterable[tuple[str, bool]] | None = None,
        *,
        skip: int = 0,
        top: int | None = None,
        alerts: bool = True,
        count: bool = True,
        transform: Callable[[Row], dict[str, Any]] | None = None,
    ) -> Slice:
        """The incidents ``skip`` to ``skip + top`` of those matching, newest first unless ``orderby`` says.

        :param predicate: keeps an incident when true; it sees the stored row and must not change it.
        :param orderby: ``(field, descending)`` pairs on the time fields.
        :param skip: matching incidents to pass over.
        :param top: the page size (``None``: all the rest).
        :param alerts: keep the embedded alerts (else the items have no ``alerts`` key).
        :param count: count every match for :attr:`Slice.total`; without it a filtered listing
            stops at the first match after the page.
        :param transform: makes each item from the stored incident (alerts included) instead; a
            pure function, whose result is kept per incident version and shared: read-only.
        """
        copy_row: Callable[[Row], dict[str, Any]]
        if transform is not None:
            copy_row = functools.partial(self._view, transform)
        else:
            # No copy below the top level: stored values are never changed in place (see the module).
            copy_row = _shared if alerts else _shared_without_alerts
        with self._lock:
            order = self._orders.order(normalized(orderby))
            return walk(order, self._by_id, copy_row, predicate, skip=skip, top=top, count=count)

    def alert_page(
        self,
        predicate: Callable[[Any], bool] | None = None,
        orderby: Iterable[tuple[str, bool]] | None = None,
        *,
        skip: int = 0,
        top: int | None = None,
        count: bool = True,
    ) -> Slice:
        """Alerts of every incident, ``skip`` to ``skip + top`` of those matching, newest created first.

        Items are new dicts sharing the stored values (read-only below the top level), as :meth:`page`.

        :param predicate: keeps an alert when true; it sees the stored alert.
        :param orderby: ``(field, descending)`` pairs on the time fields.
        :param skip: matching alerts to pass over.
        :param top: the page size (``None``: all the rest).
        :param count: count every match for :attr:`Slice.total`.
        """
        with self._lock:
            return self._alerts.page(predicate, orderby, skip=skip, top=top, count=count)

    def _view(self, transform: Callable[[Row], dict[str, Any]], row: Row) -> dict[str, Any]:
        """``transform(row)``, made once per stored version of the incident. Under the lock."""
        key = (transform, str(row["id"]))
        kept = self._views.get(key)
        if kept is not None and kept[0] is row:
            view: dict[str, Any] = kept[1]
            return view
        view = transform(row)
        self._views[key] = (row, view)
        return view

    def select(
        self,
        predicate: Callable[[dict[str, Any]], bool] | None = None,
        orderby: list[tuple[str, bool]] | None = None,
    ) -> list[dict[str, Any]]:
        """Every matching incident (read-only, as :meth:`page`), newest first unless ``orderby`` says otherwise.

        :param predicate: keeps an incident when true.
        :param orderby: ``(field, descending)`` pairs on the time fields.
        """
        return self.page(predicate, orderby).items

    def get(self, incident_id: str, *, alerts: bool = True) -> dict[str, Any] | None:
        """A copy of one incident, or ``None``.

        :param incident_id: the Graph id.
        :param alerts: copy the embedded alerts too (else the copy has no ``alerts`` key).
        """
        with self._lock:
            found = self._by_id.get(incident_id)
            if found is None:
                return None
            return clone(found) if alerts else _without_alerts(found)

    def get_alert(self, alert_id: str) -> dict[str, Any] | None:
        """A copy of one alert, or ``None``.

        :param alert_id: the alert's id.
        """
        with self._lock:
            found = self._alerts.rows.get(alert_id)
            return None if found is None else clone(found)

    def update(
        self, incident_id: str, changes: Mapping[str, Any], *, author: str, comment: str | None = None
    ) -> dict[str, Any] | None:
        """Apply Graph-named ``changes`` (and a comment) and stamp the update; ``None`` if unknown.

        Every alert of the incident is stamped with the same time; resolving the incident
        resolves its alerts.

        :param incident_id: the Graph id.
        :param changes: new values by Graph field name.
        :param author: who changed it, for ``lastModifiedBy`` and the comment.
        :param comment: text appended as a new comment.
        """
        with self._lock:
            stored = self._by_id.get(incident_id)
            if stored is None:
                return None
            stamp = format_time(self._clock.now())
            # A new dict, and new lists/alerts where they change: pages already handed out keep theirs.
            incident = {**stored, **clone(dict(changes))}
            if comment:
                added = {"comment": comment, "createdByDisplayName": author, "createdDateTime": stamp}
                incident["comments"] = [*(incident.get("comments") or ()), added]
            incident["lastUpdateDateTime"] = stamp
            incident["lastModifiedBy"] = author
            if incident.get("alerts"):
                alert_changes = {"status": "resolved"} if changes.get("status") == "resolved" else {}
                incident["alerts"] = [
                    changed_alert(alert, alert_changes, stamp=stamp) for alert in incident["alerts"]
                ]
            self._store(incident_id, stored, incident)
            return clone(incident)

    def update_alert(
        self, alert_id: str, changes: Mapping[str, Any], *, author: str, comment: str | None = None
    ) -> dict[str, Any] | None:
        """Apply Graph-named ``changes`` (and a comment) to one alert; ``None`` if unknown.

        The alert and its incident are stamped with the same time (the incident keeps a later
        one, should the data clock have been set back).

        :param alert_id: the alert's id.
        :param changes: new values by Graph field name.
        :param author: who comments, for ``createdByDisplayName``.
        :param comment: text appended as a new comment.
        """
        with self._lock:
            alert = self._alerts.rows.get(alert_id)
            if alert is None:
                return None
            stamp = format_time(self._clock.now())
            updated = changed_alert(alert, changes, stamp=stamp, author=author, comment=comment)
            self._put_alert(self._alerts.incident_of[alert_id], updated)
            return clone(updated)

    def put_alert(self, fields: Mapping[str, Any], *, tenant_id: str, portal: str) -> dict[str, Any]:
        """Create an alert or change one, as a live tenant would (the admin route).

        A known ``id`` merges ``fields`` into that alert; otherwise a new alert is made from
        ``fields`` over defaults, in the incident ``incidentId`` names, or in a new incident made
        for it when there is none. The alert is stamped from the data clock unless ``fields`` sets
        ``lastUpdateDateTime``; its incident takes the same time unless its own is later.

        :param fields: Graph-shape alert fields.
        :param tenant_id: the tenant, for a new incident.
        :param portal: the portal origin for the web URLs.
        :raises ValueError: an ``incidentId`` that names no incident or is not the alert's own, or a
            time field that is not a timestamp.
        """
        with self._lock:
            stamp = format_time(self._clock.now())
            alert_id = str(fields.get("id") or "")
            wanted = fields.get("incidentId")
            existing = self._alerts.rows.get(alert_id)
            incident: Row | None = None
            if existing is not None:
                incident_id = self._alerts.incident_of[alert_id]
                if wanted is not None and str(wanted) != incident_id:
                    raise ValueError(
                        f"Alert {alert_id} is in incident {incident_id}; an alert cannot move to incident {wanted}."
                    )
                alert = changed_alert(existing, {k: v for k, v in fields.items() if k != "id"}, stamp=stamp)
            else:
                if wanted is not None and str(wanted) not in self._by_id:
                    raise ValueError(
                        f"Incident {wanted} does not exist: name an existing incident in 'incidentId', "
                        "or leave it out to create a new incident for the alert."
                    )
                if wanted is not None:
                    incident = self._by_id[str(wanted)]
                else:
                    incident = self._new_incident_for(fields, stamp, tenant_id=tenant_id, portal=portal)
                alert = new_alert(
                    fields,
                    incident=incident,
                    stamp=stamp,
                    portal=portal,
                    taken=self._alerts.rows.__contains__,
                )
                incident_id = str(incident["id"])
            self._put_alert(incident_id, alert, incident)
            return clone(alert)

    def _new_incident_for(
        self, fields: Mapping[str, Any], stamp: str, *, tenant_id: str, portal: str
    ) -> dict[str, Any]:
        """A new incident for an alert made without one (not stored yet). Under the lock."""
        incident_id = self._next_id()
        incident = _new_incident(incident_id, stamp, tenant_id=tenant_id, portal=portal)
        incident["createdDateTime"] = str(fields.get("createdDateTime") or stamp)
        incident["lastUpdateDateTime"] = str(fields.get("lastUpdateDateTime") or stamp)
        incident["displayName"] = str(fields.get("title") or incident["displayName"])
        incident["severity"] = fields.get("severity") or incident["severity"]
        return incident

    def _put_alert(self, incident_id: str, alert: dict[str, Any], incident: Row | None = None) -> None:
        """Store one new or changed alert in its incident and stamp the incident. Under the lock."""
        stored = self._by_id.get(incident_id)
        base = stored if incident is None else incident
        assert base is not None
        others = [item for item in base.get("alerts") or () if alert_id_of(item) != alert["id"]]
        position = next(
            (index for index, item in enumerate(base.get("alerts") or ()) if item["id"] == alert["id"]),
            len(others),
        )
        changed = {**base, "alerts": [*others[:position], alert, *others[position:]]}
        changed["lastUpdateDateTime"] = later(base.get("lastUpdateDateTime"), alert["lastUpdateDateTime"])
        self._store(incident_id, stored, changed)

    def _next_id(self) -> str:
        return str(max((keys.number for keys in self._orders.keys.values()), default=999) + 1)

    def put(self, fields: Mapping[str, Any], *, tenant_id: str, portal: str) -> dict[str, Any]:
        """Create an incident or change one, as a live tenant would (the admin route).

        A known ``id`` merges ``fields`` into that incident; otherwise a new incident is made from
        ``fields`` over defaults, with the next free id. ``lastUpdateDateTime`` is stamped from the
        data clock unless ``fields`` sets it (tests placing an update exactly on a boundary); an
        alert updated after that time takes it. ``alerts``, when given, replace the incident's,
        each filled out with defaults (an ``id`` is made when absent).

        :param fields: Graph-shape fields.
        :param tenant_id: the tenant, for ``tenantId`` and the portal link of new incidents.
        :param portal: the portal origin for ``incidentWebUrl``.
        :raises ValueError: an ``id`` that is not a number, a time field that is not a timestamp,
            or an alert that is in another incident.
        """
        with self._lock:
            stamp = format_time(self._clock.now())
            incident_id = str(fields["id"]) if fields.get("id") is not None else None
            stored = self._by_id.get(incident_id) if incident_id else None
            incident = stored
            if incident is None:
                incident_id = incident_id or self._next_id()
                incident = _new_incident(incident_id, stamp, tenant_id=tenant_id, portal=portal)
            assert incident_id is not None
            merged = {**incident, **{key: clone(value) for key, value in fields.items() if key != "id"}}
            if "lastUpdateDateTime" not in fields:
                merged["lastUpdateDateTime"] = stamp
            if "alerts" in fields:
                merged["alerts"] = self._filled_alerts(merged, stamp, portal)
            self._store(incident_id, stored, merged)
            return clone(merged)

    def _filled_alerts(self, incident: dict[str, Any], stamp: str, portal: str) -> list[dict[str, Any]]:
        given = incident.get("alerts")
        if not isinstance(given, list) or not all(isinstance(alert, dict) for alert in given):
            raise ValueError("'alerts' must be a list of alert objects.")
        made: list[dict[str, Any]] = []
        names = {str(alert.get("id")) for alert in given if alert.get("id")}

        def taken(alert_id: str) -> bool:
            return alert_id in self._alerts.rows or alert_id in names

        for alert in given:
            made.append(new_alert(alert, incident=incident, stamp=stamp, portal=portal, taken=taken))
            names.add(made[-1]["id"])
        return made


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
