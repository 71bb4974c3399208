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

import bisect
import copy
import functools
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from airflow_provider_mtp.common.ticks import format_ticks, instant_ticks, odata_ticks
from airflow_provider_mtp.emulator.config import Clock

Row = Mapping[str, Any]

#: Time fields that ``$orderby`` accepts.
TIME_FIELDS = ("createdDateTime", "lastUpdateDateTime")

#: ``(field, descending)`` pairs, most significant first.
OrderBy = tuple[tuple[str, bool], ...]

#: Newest first: the order without ``$orderby``.
NEWEST_FIRST: OrderBy = (("createdDateTime", True),)


def format_time(when: datetime) -> str:
    """A Graph timestamp with 7 fractional digits, as the service stamps updates."""
    return format_ticks(instant_ticks(when))


def _time_key(row: Row, field: str) -> int:
    value = row.get(field)
    if not value:
        return -1
    if not isinstance(value, str):
        raise ValueError(f"{field} is not a timestamp: {value!r}")
    return odata_ticks(value)


def clone(value: Any) -> Any:
    """A deep copy of JSON-shaped data (dicts, lists, scalars), several times faster than ``deepcopy``."""
    kind = type(value)
    if kind is dict:
        return {key: clone(item) for key, item in value.items()}
    if kind is list:
        return [clone(item) for item in value]
    if kind in (str, int, float, bool) or value is None:
        return value
    return copy.deepcopy(value)


def _without_alerts(incident: Row) -> dict[str, Any]:
    return {key: clone(value) for key, value in incident.items() if key != "alerts"}


def _shared(incident: Row) -> dict[str, Any]:
    """The stored incident's values in a new dict: read-only below the top level."""
    return dict(incident)


def _shared_without_alerts(incident: Row) -> dict[str, Any]:
    return {key: value for key, value in incident.items() if key != "alerts"}


def _normalized(orderby: Iterable[tuple[str, bool]] | None) -> OrderBy:
    """``orderby`` without repeated fields: a field's second mention can never break a tie."""
    seen: dict[str, bool] = {}
    for field, descending in orderby or ():
        seen.setdefault(field, descending)
    return tuple(seen.items()) or NEWEST_FIRST


@dataclass(frozen=True)
class Slice:
    """One page of matching incidents.

    :param items: the incidents on the page, in order: new dicts whose values are the store's own
        (lists, alerts): read them, never change them in place.
    :param total: how many incidents match: when counted, or without a filter (free then);
        else ``None``.
    :param more: whether matching incidents follow the page.
    """

    items: list[dict[str, Any]]
    total: int | None
    more: bool


@dataclass(frozen=True)
class _Keys:
    """An incident's sort fields, read once: ticks by time field, and the numeric id for ties."""

    ticks: dict[str, int]
    number: int

    def rank(self, orderby: OrderBy) -> tuple[int, ...]:
        # Ties fall back to the id, in the first key's direction, so pages never reshuffle.
        ranks = [-self.ticks[field] if descending else self.ticks[field] for field, descending in orderby]
        ranks.append(-self.number if orderby[0][1] else self.number)
        return tuple(ranks)


def _keys_of(incident: Row) -> _Keys:
    incident_id = str(incident["id"])
    if not incident_id.isdigit():
        raise ValueError(f"Incident ids are numbers; got {incident_id!r}.")
    return _Keys(ticks={field: _time_key(incident, field) for field in TIME_FIELDS}, number=int(incident_id))


class IncidentStore:
    """Incidents in the Graph shape, alerts embedded; thread-safe.

    :param incidents: the seeded incidents (copied; :meth:`reset` returns to them).
    :param clock: the data clock that stamps updates.
    """

    def __init__(self, incidents: Iterable[dict[str, Any]], *, clock: Clock) -> None:
        self._seed = [clone(incident) for incident in incidents]
        self._clock = clock
        self._lock = threading.Lock()
        self._by_id: dict[str, dict[str, Any]] = {}
        self._keys: dict[str, _Keys] = {}
        self._orders: dict[OrderBy, list[str]] = {}
        # (transform, id) -> (the stored version it was made from, the view).
        self._views: dict[tuple[Callable[[Row], Any], str], tuple[Row, Any]] = {}
        self.reset()

    def reset(self) -> None:
        with self._lock:
            # The seed's dicts themselves: nothing changes a stored incident in place.
            self._by_id = {incident["id"]: incident for incident in self._seed}
            self._keys = {incident_id: _keys_of(row) for incident_id, row in self._by_id.items()}
            self._orders = {}
            self._views = {}

    def __len__(self) -> int:
        return len(self._by_id)

    def _order(self, orderby: OrderBy) -> list[str]:
        """The ids in ``orderby`` order; sorted once, then kept by :meth:`_reindex`. Under the lock."""
        ids = self._orders.get(orderby)
        if ids is None:
            ids = sorted(self._keys, key=self._ranker(orderby))
            self._orders[orderby] = ids
        return ids

    def _ranker(self, orderby: OrderBy) -> Callable[[str], tuple[int, ...]]:
        keys = self._keys

        def rank(incident_id: str) -> tuple[int, ...]:
            return keys[incident_id].rank(orderby)

        return rank

    def _reindex(self, incident_id: str, *, new: bool) -> None:
        """Re-read one incident's sort fields and move it in every kept order. Under the lock."""
        keys = _keys_of(self._by_id[incident_id])
        if not new and keys == self._keys[incident_id]:
            return
        self._keys[incident_id] = keys
        for orderby, ids in self._orders.items():
            if not new:
                ids.remove(incident_id)
            bisect.insort(ids, incident_id, key=self._ranker(orderby))

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
            order = self._order(_normalized(orderby))
            end = len(order) if top is None else skip + top
            if predicate is None:
                chosen = order[skip:end]
                return Slice(
                    items=[copy_row(self._by_id[incident_id]) for incident_id in chosen],
                    total=len(order),
                    more=skip + len(chosen) < len(order),
                )
            rows = self._by_id
            picked: list[dict[str, Any]] = []
            matched = 0
            for incident_id in order:
                row = rows[incident_id]
                if not predicate(row):
                    continue
                if skip <= matched < end:
                    picked.append(copy_row(row))
                matched += 1
                if matched > end and not count:
                    break
            return Slice(items=picked, total=matched if count else None, more=matched > skip + len(picked))

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
                incident["alerts"] = [
                    _stamp_alert(alert, stamp, resolved=changes.get("status") == "resolved")
                    for alert in incident["alerts"]
                ]
            self._by_id[incident_id] = incident
            self._reindex(incident_id, new=False)
            return clone(incident)

    def put(self, fields: Mapping[str, Any], *, tenant_id: str, portal: str) -> dict[str, Any]:
        """Create an incident or change one, as a live tenant would (the admin route).

        A known ``id`` merges ``fields`` into that incident; otherwise a new incident is made from
        ``fields`` over defaults, with the next free id. ``lastUpdateDateTime`` is stamped from the
        data clock unless ``fields`` sets it (tests placing an update exactly on a boundary).

        :param fields: Graph-shape fields.
        :param tenant_id: the tenant, for ``tenantId`` and the portal link of new incidents.
        :param portal: the portal origin for ``incidentWebUrl``.
        :raises ValueError: an ``id`` that is not a number, or a time field that is not a timestamp.
        """
        with self._lock:
            stamp = format_time(self._clock.now())
            incident_id = str(fields["id"]) if fields.get("id") is not None else None
            incident = self._by_id.get(incident_id) if incident_id else None
            new = incident is None
            if incident is None:
                incident_id = incident_id or str(
                    max((keys.number for keys in self._keys.values()), default=999) + 1
                )
                incident = _new_incident(incident_id, stamp, tenant_id=tenant_id, portal=portal)
            assert incident_id is not None
            merged = {**incident, **{key: clone(value) for key, value in fields.items() if key != "id"}}
            merged.setdefault("lastUpdateDateTime", stamp)
            if "lastUpdateDateTime" not in fields:
                merged["lastUpdateDateTime"] = stamp
            # Checked before it is stored: an id or a time the index cannot read is refused whole.
            _keys_of(merged)
            self._by_id[incident_id] = merged
            self._reindex(incident_id, new=new)
            return clone(merged)


def _stamp_alert(alert: dict[str, Any], stamp: str, *, resolved: bool) -> dict[str, Any]:
    changed = dict(alert)
    if resolved:
        changed["status"] = "resolved"
    changed["lastUpdateDateTime"] = stamp
    return changed


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
