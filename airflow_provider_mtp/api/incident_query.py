"""IncidentQuery: which incidents a listing asks for, as one frozen, JSON-serialisable value.

The one description of an incident listing, from a DAG's arguments to the request on the wire:
:class:`~airflow_provider_mtp.sensors.incidents.IncidentSensor` builds it from its arguments, hands
it to :class:`~airflow_provider_mtp.triggers.incidents.IncidentTrigger` (``to_json`` /
``from_json``), the hooks pass it to the back end in use, and the back end turns it into its own
``$filter`` and checks it against its own rules (enum spellings, ``$top``) before any call.

What goes where:

* ``status``, ``severity``, ``assigned_to``, the four time bounds and ``odata_filter`` are sent to
  the service (the legacy API cannot filter on severity or on several statuses: its back end
  filters those after each page);
* ``classification`` and ``tags`` are applied to each incident after it arrives, on both back
  ends alike (:meth:`IncidentQuery.keeps`): the legacy API cannot filter them, and Graph cannot
  filter tags;
* ``include_alerts`` and ``page_size`` shape the replies.

Time bounds are kept as the OData literals sent on the wire: a string already in that form stays
exactly as given (a 7-digit watermark is not rounded), a ``datetime`` is written in UTC.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from airflow_provider_mtp.api import mapping
from airflow_provider_mtp.api.odata import check_page_size, name_list, time_bound
from airflow_provider_mtp.api.query_base import ListingQuery
from airflow_provider_mtp.api.raw_filter import checked_odata_filter
from airflow_provider_mtp.errors import MTPConfigError

__all__ = ["FILTERS", "TIME_BOUNDS", "IncidentQuery"]

#: The time-bound fields; a listing's pieces narrow them.
TIME_BOUNDS = ("created_from", "created_before", "updated_from", "updated_before")
#: The filter fields (what a sensor or trigger takes besides its window), in messages' order.
FILTERS = ("status", "severity", "assigned_to", "classification", "tags", "odata_filter")
_LISTS = ("status", "severity", "classification", "tags")


@dataclass(frozen=True, kw_only=True)
class IncidentQuery(ListingQuery):
    """Which incidents to list; build it with :meth:`build` (checks and normalises every field).

    :param status: any of these statuses (``active``, ``inProgress``, ``resolved``, ``redirected``;
        either API's spelling).
    :param severity: any of these severities (``informational``, ``low``, ``medium``, ``high``).
    :param assigned_to: the assignee's user principal name, exactly.
    :param classification: any of these classifications; applied after fetching, on both back ends.
    :param tags: incidents carrying at least one of these tags (custom or system, any case);
        applied after fetching.
    :param created_from: created at or after (an OData datetime literal).
    :param created_before: created before.
    :param updated_from: last updated at or after.
    :param updated_before: last updated before.
    :param odata_filter: a raw ``$filter`` clause for the back end in use, ANDed with the others
        inside parentheses: its own must balance outside string literals.
    :param include_alerts: embed each incident's alerts (always there on the legacy API).
    :param page_size: incidents per request; ``None`` for the back end's maximum (50 on Graph,
        100 on legacy), and never above it.
    """

    status: tuple[str, ...] | None = None
    severity: tuple[str, ...] | None = None
    assigned_to: str | None = None
    classification: tuple[str, ...] | None = None
    tags: tuple[str, ...] | None = None
    created_from: str | None = None
    created_before: str | None = None
    updated_from: str | None = None
    updated_before: str | None = None
    odata_filter: str | None = None
    include_alerts: bool = False
    page_size: int | None = None

    KIND: ClassVar[str] = "incident"
    LIST_FIELDS: ClassVar[tuple[str, ...]] = _LISTS
    FILTER_FIELDS: ClassVar[tuple[str, ...]] = FILTERS

    @classmethod
    def build(cls, **fields: Any) -> IncidentQuery:
        """A query from keyword arguments: one value or a list for the list fields, a ``datetime``
        or an ISO 8601 string for the time bounds.

        :param fields: the fields of :class:`IncidentQuery`.
        :raises MTPConfigError: an unknown field, a value of the wrong type, an unknown
            classification, a time that is not one, a page size below 1, or an ``odata_filter``
            that could escape its parentheses.
        """
        cls.unknown_fields(fields)
        values: dict[str, Any] = {name: name_list(fields.get(name), name=name) for name in _LISTS}
        if values["classification"] is not None:
            try:
                values["classification"] = tuple(
                    mapping.CLASSIFICATION.require_graph(value) for value in values["classification"]
                )
            except ValueError as exc:
                raise MTPConfigError(str(exc)) from None
        assigned_to = fields.get("assigned_to")
        if assigned_to is not None and not isinstance(assigned_to, str):
            raise MTPConfigError(f"assigned_to must be a string, got {assigned_to!r}")
        for name in TIME_BOUNDS:
            values[name] = time_bound(fields.get(name), name=name)
        page_size = fields.get("page_size")
        check_page_size(page_size)
        include_alerts = fields.get("include_alerts", False)
        if not isinstance(include_alerts, bool):
            raise MTPConfigError(f"include_alerts must be true or false, got {include_alerts!r}")
        return cls(
            **values,
            assigned_to=assigned_to,
            # Balanced parentheses, closed strings: checked here so a task fails before any call.
            odata_filter=checked_odata_filter(fields.get("odata_filter")),
            include_alerts=include_alerts,
            page_size=page_size,
        )

    def keeps(self, incident: Mapping[str, Any]) -> bool:
        """Whether a Graph-shape incident passes the filters applied after fetching (classification, tags)."""
        if self.classification is not None and incident.get("classification") not in self.classification:
            return False
        if self.tags is not None:
            wanted = {tag.casefold() for tag in self.tags}
            carried = [*(incident.get("customTags") or ()), *(incident.get("systemTags") or ())]
            if not any(isinstance(tag, str) and tag.casefold() in wanted for tag in carried):
                return False
        return True
