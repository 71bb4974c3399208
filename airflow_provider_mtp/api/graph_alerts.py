"""The Graph security API's alerts (``/security/alerts_v2``), described: listing, paths, update bodies.

Pure functions and values that :class:`~airflow_provider_mtp.api.graph.GraphSecurityApi` uses for
its alert methods (defender-api.md section 3.5). The listing reads a window in pieces that each fit
one page, as incidents do (:mod:`airflow_provider_mtp.api.listing`): alerts carry the same
``createdDateTime`` and ``lastUpdateDateTime`` the plan splits on. ``$top`` goes up to 1000 (the
service clamps a larger value rather than refusing it, so a full page is told by
``@odata.nextLink``, never by counting).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from airflow_provider_mtp.api import mapping
from airflow_provider_mtp.api.alert_query import ALERT_TIME_BOUNDS, AlertQuery
from airflow_provider_mtp.api.call_rules import page_items
from airflow_provider_mtp.api.listing import IncidentPages, ListingPlan, Page, Piece
from airflow_provider_mtp.api.odata import any_of, common_clauses, incident_window, odata_string, page_top
from airflow_provider_mtp.api.request import ApiRequest
from airflow_provider_mtp.errors import MTPConfigError

__all__ = [
    "ALERT_READ_PERMISSION",
    "ALERT_UPDATE_FIELDS",
    "ALERT_WRITE_PERMISSION",
    "GRAPH_ALERT_MAX_TOP",
    "GraphAlertListing",
    "alert_list_params",
    "alert_path",
    "alert_update_body",
    "normalised_alert",
]

#: ``alerts_v2`` clamps ``$top`` above 1000 (defender-api.md section 3.5); asking for more is pointless.
GRAPH_ALERT_MAX_TOP = 1000

ALERT_READ_PERMISSION = "SecurityAlert.Read.All"
ALERT_WRITE_PERMISSION = "SecurityAlert.ReadWrite.All"

#: Graph-named fields an alert PATCH may set.
ALERT_UPDATE_FIELDS = ("status", "classification", "determination", "assignedTo")

_ALERT_ENUMS = (
    ("status", mapping.ALERT_STATUS),
    ("severity", mapping.SEVERITY),
    ("classification", mapping.CLASSIFICATION),
    ("determination", mapping.DETERMINATION),
    ("serviceSource", mapping.SERVICE_SOURCE),
    ("detectionSource", mapping.DETECTION_SOURCE),
)
#: Query fields Graph filters on, with the alert field and the enum table (``None``: free text).
_SERVER_LISTS = (
    ("status", "status", mapping.ALERT_STATUS),
    ("severity", "severity", mapping.SEVERITY),
    ("service_source", "serviceSource", mapping.SERVICE_SOURCE),
    ("classification", "classification", mapping.CLASSIFICATION),
    ("determination", "determination", mapping.DETERMINATION),
)


def normalised_alert(alert: Any) -> Any:
    """A Graph alert with OData annotations dropped and enums in Graph's own spelling.

    Unknown values (the lists grow) pass through unchanged.
    """
    if not isinstance(alert, dict):
        return alert
    result = {key: value for key, value in alert.items() if not key.startswith("@odata.")}
    for key, table in _ALERT_ENUMS:
        if key in result:
            result[key] = table.to_graph(result[key])
    return result


def alert_path(alert_id: str, *, version: str = "v1.0") -> str:
    """The path of one alert, its id quoted.

    :raises MTPConfigError: the id is blank.
    """
    text = alert_id.strip() if isinstance(alert_id, str) else ""
    if not text:
        raise MTPConfigError(f"alert_id must be a non-blank string, got {alert_id!r}")
    return f"/{version}/security/alerts_v2/{quote(text, safe='')}"


def alert_list_params(query: AlertQuery) -> dict[str, Any]:
    """Query parameters of one request of ``GET /security/alerts_v2``: ``$filter`` and ``$top``.

    :param query: the listing (its time bounds are the request's ranges).
    """
    clauses = []
    for name, field, table in _SERVER_LISTS:
        values = getattr(query, name)
        if values:
            clauses.append(any_of(field, [odata_string(table.require_graph(value)) for value in values]))
    clauses += common_clauses(query)
    params: dict[str, Any] = {"$top": page_top(query.page_size, GRAPH_ALERT_MAX_TOP)}
    if clauses:
        params["$filter"] = " and ".join(clauses)
    return params


@dataclass(frozen=True, kw_only=True)
class GraphAlertListing:
    """A Graph alert listing: one pass over ``alerts_v2``, read in pieces like incidents.

    Both an :class:`~airflow_provider_mtp.api.listing.IncidentPages` (its items are alerts) and an
    :class:`~airflow_provider_mtp.api.listing.AlertPasses` of one pass.

    :param query: the listing.
    :param path: the collection's path.
    :param window: the time bounds, the piece the listing plan starts from.
    :param top: ``$top`` of every request.
    """

    query: AlertQuery
    path: str
    window: Piece
    top: int

    @classmethod
    def build(cls, query: AlertQuery, *, version: str = "v1.0") -> GraphAlertListing:
        """The listing of ``query``, every field checked before any call."""
        return cls(
            query=query,
            path=f"/{version}/security/alerts_v2",
            window=incident_window(**{name: getattr(query, name) for name in ALERT_TIME_BOUNDS}),
            top=alert_list_params(query)["$top"],
        )

    # AlertPasses
    def listings(self) -> Iterator[IncidentPages]:
        """The one pass."""
        yield self

    def alerts(self, item: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
        """The item is the alert."""
        yield dict(item)

    # IncidentPages
    def plan(self) -> ListingPlan:
        """A fresh plan over the window."""
        return ListingPlan(window=self.window, page_size=self.top)

    def request(self, piece: Piece) -> ApiRequest:
        """The request for one piece's single page."""
        params = alert_list_params(self.query.replace(**piece.list_arguments()))
        return ApiRequest(method="GET", path=self.path, params=params, permission=ALERT_READ_PERMISSION)

    def page(self, body: Any) -> Page:
        """One reply as a plan's page: alerts normalised; more when Graph sent a next link."""
        items = [normalised_alert(item) for item in page_items(body, self.path)]
        return Page(items=items, more=bool(body.get("@odata.nextLink")))

    def keeps(self, alert: Mapping[str, Any]) -> bool:
        """Whether an alert passes the filters Graph cannot apply (detection source, incident)."""
        return self.query.keeps(alert)


def alert_update_body(changes: Mapping[str, Any]) -> dict[str, Any]:
    """A validated Graph PATCH body for an alert from Graph-named ``changes`` (``None`` values left out).

    :raises MTPConfigError: an unknown field or value; the message lists the accepted ones.
    """
    unknown = sorted(set(changes) - set(ALERT_UPDATE_FIELDS))
    if unknown:
        raise MTPConfigError(
            f"Cannot update {', '.join(unknown)} on an alert; settable fields: {', '.join(ALERT_UPDATE_FIELDS)}."
        )
    body: dict[str, Any] = {}
    for field, table in (
        ("status", mapping.ALERT_STATUS),
        ("classification", mapping.CLASSIFICATION),
        ("determination", mapping.DETERMINATION),
    ):
        value = changes.get(field)
        if value is not None:
            try:
                body[field] = table.require_graph(value)
            except ValueError as exc:
                raise MTPConfigError(f"{field}: {exc}") from None
    assigned_to = changes.get("assignedTo")
    if assigned_to is not None:
        if not isinstance(assigned_to, str):
            raise MTPConfigError(f"assigned_to must be a string ('' unassigns), got {assigned_to!r}")
        body["assignedTo"] = assigned_to
    return body
