"""AlertQuery: which alerts a listing asks for, as one frozen, JSON-serialisable value.

The alert twin of :class:`~airflow_provider_mtp.api.incident_query.IncidentQuery`: built from a
sensor's arguments, handed to :class:`~airflow_provider_mtp.triggers.alerts.AlertTrigger` as JSON,
passed by the hooks to the back end in use, which turns it into its own request and checks it
against its own rules before any call.

What goes where:

* On Graph (``/security/alerts_v2``), ``status``, ``severity``, ``service_source``,
  ``classification``, ``determination``, ``assigned_to``, the four time bounds and
  ``odata_filter`` are sent to the service (the fields the reference lists as filterable);
  ``detection_source`` and ``incident_id`` are applied to each alert after it arrives
  (:meth:`AlertQuery.keeps`), as filtering on them is refused.
* The legacy API has no alerts endpoint: its back end lists incidents by update time and applies
  every field of the query to their embedded alerts (:meth:`AlertQuery.keeps` and
  :meth:`AlertQuery.in_window`).

Enum values are checked here and kept in Graph's spelling, so both back ends and the after-fetch
filter compare like with like. Time bounds are kept as the OData literals sent on the wire.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from airflow_provider_mtp.api import mapping
from airflow_provider_mtp.api.odata import check_page_size, name_list, time_bound
from airflow_provider_mtp.api.query_base import ListingQuery
from airflow_provider_mtp.api.raw_filter import checked_odata_filter
from airflow_provider_mtp.common.ticks import timestamp_ticks
from airflow_provider_mtp.errors import MTPConfigError

__all__ = ["ALERT_FILTERS", "ALERT_TIME_BOUNDS", "AlertQuery"]

#: The time-bound fields; a listing's pieces narrow them.
ALERT_TIME_BOUNDS = ("created_from", "created_before", "updated_from", "updated_before")
#: The filter fields (what a sensor or trigger takes besides its window), in messages' order.
ALERT_FILTERS = (
    "status",
    "severity",
    "service_source",
    "detection_source",
    "classification",
    "determination",
    "assigned_to",
    "incident_id",
    "odata_filter",
)
#: List fields whose values must be known spellings, with their table (Graph spelling kept).
_CHECKED_LISTS: tuple[tuple[str, mapping.EnumMap], ...] = (
    ("status", mapping.ALERT_STATUS),
    ("severity", mapping.SEVERITY),
    ("service_source", mapping.SERVICE_SOURCE),
    ("classification", mapping.CLASSIFICATION),
    ("determination", mapping.DETERMINATION),
)
_LISTS = ("status", "severity", "service_source", "detection_source", "classification", "determination")
#: Query field -> the alert's field it is compared with, after fetching.
_ALERT_FIELDS = {
    "status": "status",
    "severity": "severity",
    "service_source": "serviceSource",
    "detection_source": "detectionSource",
    "classification": "classification",
    "determination": "determination",
}


@dataclass(frozen=True, kw_only=True)
class AlertQuery(ListingQuery):
    """Which alerts to list; build it with :meth:`build` (checks and normalises every field).

    :param status: any of these statuses (``new``, ``inProgress``, ``resolved``; either API's spelling).
    :param severity: any of these severities (``informational``, ``low``, ``medium``, ``high``).
    :param service_source: any of these products (``microsoftDefenderForEndpoint``, ...).
    :param detection_source: any of these detectors (``antivirus``, ...; any value, compared
        case-insensitively); applied after fetching.
    :param classification: any of these classifications.
    :param determination: any of these determinations.
    :param assigned_to: the assignee's user principal name, exactly.
    :param incident_id: only the alerts of this incident; applied after fetching.
    :param created_from: created at or after (an OData datetime literal).
    :param created_before: created before.
    :param updated_from: last updated at or after.
    :param updated_before: last updated before.
    :param odata_filter: a raw ``$filter`` clause for Graph's ``alerts_v2``, ANDed with the others
        inside parentheses; the legacy API cannot apply one to alerts and refuses it.
    :param page_size: alerts per request on Graph; ``None`` for the back end's maximum.
    """

    status: tuple[str, ...] | None = None
    severity: tuple[str, ...] | None = None
    service_source: tuple[str, ...] | None = None
    detection_source: tuple[str, ...] | None = None
    classification: tuple[str, ...] | None = None
    determination: tuple[str, ...] | None = None
    assigned_to: str | None = None
    incident_id: str | None = None
    created_from: str | None = None
    created_before: str | None = None
    updated_from: str | None = None
    updated_before: str | None = None
    odata_filter: str | None = None
    page_size: int | None = None

    KIND: ClassVar[str] = "alert"
    LIST_FIELDS: ClassVar[tuple[str, ...]] = _LISTS
    FILTER_FIELDS: ClassVar[tuple[str, ...]] = ALERT_FILTERS

    @classmethod
    def build(cls, **fields: Any) -> AlertQuery:
        """A query from keyword arguments: one value or a list for the list fields, a ``datetime``
        or an ISO 8601 string for the time bounds.

        :param fields: the fields of :class:`AlertQuery`.
        :raises MTPConfigError: an unknown field, a value of the wrong type, an unknown enum
            value, a time that is not one, a page size below 1, or an ``odata_filter`` that could
            escape its parentheses.
        """
        cls.unknown_fields(fields)
        values: dict[str, Any] = {name: name_list(fields.get(name), name=name) for name in _LISTS}
        for name, table in _CHECKED_LISTS:
            if values[name] is not None:
                try:
                    values[name] = tuple(table.require_graph(value) for value in values[name])
                except ValueError as exc:
                    raise MTPConfigError(f"{name}: {exc}") from None
        if values["detection_source"] is not None:
            values["detection_source"] = tuple(
                mapping.DETECTION_SOURCE.to_graph(value) for value in values["detection_source"]
            )
        assigned_to = fields.get("assigned_to")
        if assigned_to is not None and not isinstance(assigned_to, str):
            raise MTPConfigError(f"assigned_to must be a string, got {assigned_to!r}")
        incident_id = fields.get("incident_id")
        if incident_id is not None:
            if (
                isinstance(incident_id, bool)
                or not isinstance(incident_id, str | int)
                or not str(incident_id).strip()
            ):
                raise MTPConfigError(f"incident_id must be an incident id such as '42', got {incident_id!r}")
            incident_id = str(incident_id).strip()
        for name in ALERT_TIME_BOUNDS:
            values[name] = time_bound(fields.get(name), name=name)
        page_size = fields.get("page_size")
        check_page_size(page_size)
        return cls(
            **values,
            assigned_to=assigned_to,
            incident_id=incident_id,
            # Balanced parentheses, closed strings: checked here so a task fails before any call.
            odata_filter=checked_odata_filter(fields.get("odata_filter")),
            page_size=page_size,
        )

    def keeps(self, alert: Mapping[str, Any], *, local_only: bool = True) -> bool:
        """Whether a Graph-shape alert passes the filters.

        :param alert: the alert.
        :param local_only: only the filters Graph cannot apply (``detection_source``,
            ``incident_id``); ``False`` applies every field but the time bounds and
            ``odata_filter`` (the legacy back end, which filters everything itself).
        """
        names = ("detection_source",) if local_only else tuple(_ALERT_FIELDS)
        for name in names:
            wanted = getattr(self, name)
            if wanted is None:
                continue
            value = alert.get(_ALERT_FIELDS[name])
            if not isinstance(value, str) or value.casefold() not in {item.casefold() for item in wanted}:
                return False
        if self.incident_id is not None and str(alert.get("incidentId")) != self.incident_id:
            return False
        return local_only or self.assigned_to is None or alert.get("assignedTo") == self.assigned_to

    def in_window(self, alert: Mapping[str, Any]) -> bool:
        """Whether a Graph-shape alert's own times lie in the query's half-open ranges."""
        for field, start, before in (
            ("createdDateTime", self.created_from, self.created_before),
            ("lastUpdateDateTime", self.updated_from, self.updated_before),
        ):
            if start is None and before is None:
                continue
            ticks = timestamp_ticks(alert.get(field))
            if ticks is None:
                return False
            if start is not None and ticks < _ticks(start):
                return False
            if before is not None and ticks >= _ticks(before):
                return False
        return True


def _ticks(literal: str) -> int:
    ticks = timestamp_ticks(literal)
    assert ticks is not None, literal  # time_bound wrote it
    return ticks
