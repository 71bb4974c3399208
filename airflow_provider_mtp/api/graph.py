"""The Microsoft Graph security API back end (the default): incidents, comments, hunting.

Paths are ``/{version}/security/...`` under the API origin (defender-api.md section 3). The
listing sends an OData ``$filter`` built from the arguments and ``$top`` of at most 50 (Graph
answers a larger value with 400). It never follows ``@odata.nextLink`` (the link pages by offset,
which skips incidents that analysts update mid-listing): it asks for pieces of the window that
each fit one page (:mod:`airflow_provider_mtp.api.listing`), and a link only says "more".

The OData helpers here (:func:`odata_datetime`, :func:`odata_string`, :func:`filter_values`) are
shared with the legacy back end; the listing's parameters (:func:`incident_list_params`,
:class:`IncidentListing`), the paths and :func:`normalised_incident` are pure functions shared with
the async hook, which does its own I/O.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from airflow_provider_mtp.api import mapping
from airflow_provider_mtp.api.alert_query import AlertQuery
from airflow_provider_mtp.api.base import SecurityApi
from airflow_provider_mtp.api.call_rules import page_items
from airflow_provider_mtp.api.graph_alerts import (
    ALERT_READ_PERMISSION,
    ALERT_WRITE_PERMISSION,
    GraphAlertListing,
    alert_path,
    alert_update_body,
    normalised_alert,
)
from airflow_provider_mtp.api.incident_query import TIME_BOUNDS, IncidentQuery
from airflow_provider_mtp.api.listing import ListingPlan, Page, Piece
from airflow_provider_mtp.api.odata import (
    any_of,
    common_clauses,
    filter_values,
    incident_window,
    non_blank,
    odata_string,
    page_top,
)
from airflow_provider_mtp.api.request import ApiIdentity, ApiRequest, Program
from airflow_provider_mtp.errors import MTPConfigError

log = logging.getLogger(__name__)

#: Graph answers ``$top`` above 50 on incidents with HTTP 400 (defender-api.md section 3.1).
GRAPH_MAX_TOP = 50

#: How messages name this API, where its permissions are granted and what its tokens are for.
IDENTITY = ApiIdentity(
    dialect="graph",
    name="Microsoft Graph",
    permission_home="Microsoft Graph",
    token_audience="the cloud's Graph host, e.g. https://graph.microsoft.com",
)

READ_PERMISSION = "SecurityIncident.Read.All"
WRITE_PERMISSION = "SecurityIncident.ReadWrite.All"
HUNT_PERMISSION = "ThreatHunting.Read.All"

#: Graph-only enum values the mapping tables do not list but the service accepts in filters.
GRAPH_ONLY_STATUS = ("unknownFutureValue", "awaitingAction")
GRAPH_ONLY_SEVERITY = ("unknownFutureValue",)

#: Fields a Graph PATCH may set besides those :func:`mapping.graph_update_body` validates.
GRAPH_FREE_TEXT_FIELDS = ("description", "summary", "resolvingComment")
UPDATE_FIELDS = (
    "status",
    "assignedTo",
    "classification",
    "determination",
    "customTags",
    *GRAPH_FREE_TEXT_FIELDS,
)


def normalised_incident(incident: Mapping[str, Any]) -> dict[str, Any]:
    """A Graph incident with OData annotations dropped and enums in Graph's own spelling.

    Graph answers camelCase, but its own docs mix in PascalCase: running the values through the
    same tables as the legacy mapping makes the two back ends spell every enum alike.
    """
    result = {key: value for key, value in incident.items() if not key.startswith("@odata.")}
    for key, table in _INCIDENT_ENUMS:
        if key in result:
            result[key] = table.to_graph(result[key])
    if isinstance(result.get("alerts"), list):
        result["alerts"] = [normalised_alert(alert) for alert in result["alerts"]]
    return result


_INCIDENT_ENUMS = (
    ("status", mapping.INCIDENT_STATUS),
    ("severity", mapping.SEVERITY),
    ("classification", mapping.CLASSIFICATION),
    ("determination", mapping.DETERMINATION),
)


def security_path(rest: str, *, version: str = "v1.0") -> str:
    """The path of ``rest`` under ``/{version}/security/``."""
    return f"/{version}/security/{rest}"


def incident_path(incident_id: str | int, *, version: str = "v1.0") -> str:
    """The path of one incident, its id quoted.

    :raises MTPConfigError: the id is blank.
    """
    text = str(incident_id).strip() if isinstance(incident_id, str | int) else ""
    if not text:
        raise MTPConfigError(f"incident_id must be a non-blank string, got {incident_id!r}")
    return security_path(f"incidents/{quote(text, safe='')}", version=version)


def incident_list_params(query: IncidentQuery | None = None, /, **fields: Any) -> dict[str, Any]:
    """Query parameters of one request of ``GET /security/incidents``: ``$filter``, ``$top``, ``$expand``.

    :param query: the listing (its time bounds are the request's ranges).
    :param fields: the query's fields, when no query is given (see :class:`IncidentQuery`).
    :raises MTPConfigError: an unknown enum value, a bad time or page size.
    """
    query = IncidentQuery.of(query, **fields)
    clauses = []
    if query.status:
        values = filter_values(query.status, mapping.INCIDENT_STATUS, legacy=False, extra=GRAPH_ONLY_STATUS)
        clauses.append(any_of("status", [odata_string(value) for value in values]))
    if query.severity:
        values = filter_values(query.severity, mapping.SEVERITY, legacy=False, extra=GRAPH_ONLY_SEVERITY)
        clauses.append(any_of("severity", [odata_string(value) for value in values]))
    clauses += common_clauses(query)
    params: dict[str, Any] = {"$top": page_top(query.page_size, GRAPH_MAX_TOP)}
    if clauses:
        params["$filter"] = " and ".join(clauses)
    if query.include_alerts:
        params["$expand"] = "alerts"
    return params


@dataclass(frozen=True, kw_only=True)
class IncidentListing:
    """A Graph incident listing: the query, its window, and the request of each piece.

    Run by :func:`~airflow_provider_mtp.api.listing.run_listing` (sync) or
    :func:`~airflow_provider_mtp.api.listing.arun_listing` (async): one description, two transports.

    :param query: the listing, checked against Graph's rules.
    :param path: the collection's path.
    :param window: the time bounds, the piece the listing plan starts from.
    :param top: ``$top`` of every request.
    """

    query: IncidentQuery
    path: str
    window: Piece
    top: int

    @classmethod
    def build(cls, query: IncidentQuery, *, version: str = "v1.0") -> IncidentListing:
        """The listing of ``query``, every field checked before any call.

        :raises MTPConfigError: an unknown enum value, a bad time, page size or ``odata_filter``.
        """
        top = incident_list_params(query)["$top"]
        return cls(
            query=query,
            path=security_path("incidents", version=version),
            window=incident_window(**{name: getattr(query, name) for name in TIME_BOUNDS}),
            top=top,
        )

    def plan(self) -> ListingPlan:
        """A fresh plan over the window."""
        return ListingPlan(window=self.window, page_size=self.top)

    def params(self, piece: Piece) -> dict[str, Any]:
        """Query parameters of one piece: the caller's filters and the piece's ranges, no ``$skip``."""
        return incident_list_params(self.query.replace(**piece.list_arguments()))

    def request(self, piece: Piece) -> ApiRequest:
        """The request for one piece's single page."""
        return ApiRequest(method="GET", path=self.path, params=self.params(piece), permission=READ_PERMISSION)

    def page(self, body: Any) -> Page:
        """One reply as a plan's page: incidents normalised; more when Graph sent a next link."""
        items = [normalised_incident(item) for item in page_items(body, self.path)]
        return Page(items=items, more=bool(body.get("@odata.nextLink")))

    def keeps(self, incident: Mapping[str, Any]) -> bool:
        """Whether an incident passes the filters applied after fetching (classification, tags)."""
        return self.query.keeps(incident)


class GraphSecurityApi(SecurityApi):
    """The Graph security API, described: every method returns what to send and how to read it.

    :param version: ``v1.0`` or ``beta``.
    """

    name = "graph"
    identity = IDENTITY
    call_base_path = "/v1.0/security/"

    def __init__(self, *, version: str = "v1.0") -> None:
        self.version = version

    def _path(self, rest: str) -> str:
        return security_path(rest, version=self.version)

    def _incident_path(self, incident_id: str) -> str:
        return incident_path(incident_id, version=self.version)

    # Incidents ------------------------------------------------------------------------------------

    def incident_listing(self, query: IncidentQuery) -> IncidentListing:
        """Incidents matching every condition of ``query``, newest first (the service's order).

        The window is read in pieces that each fit one page, never by offset, so an incident that
        analysts leave alone is returned even while they update others (see
        :mod:`airflow_provider_mtp.api.listing`); each ``(id, lastUpdateDateTime)`` comes once.
        """
        return IncidentListing.build(query, version=self.version)

    def get_incident(self, incident_id: str, *, include_alerts: bool = True) -> Program[dict[str, Any]]:
        """One incident; :class:`~airflow_provider_mtp.errors.MTPNotFoundError` when it does not exist."""
        body = yield ApiRequest(
            method="GET",
            path=self._incident_path(incident_id),
            params={"$expand": "alerts"} if include_alerts else None,
            permission=READ_PERMISSION,
        )
        return normalised_incident(body)

    def update_incident(
        self, incident_id: str, changes: Mapping[str, Any], *, comment: str | None = None
    ) -> Program[dict[str, Any]]:
        """PATCH the fields in ``changes`` (Graph names), then add ``comment`` if given.

        The PATCH is safe to retry; the comment is not (Graph adds a second one), so it is sent
        last and retried only when the service surely did not act.

        :param incident_id: the incident.
        :param changes: ``status``, ``assignedTo``, ``classification``, ``determination``,
            ``customTags``, ``description``, ``summary``, ``resolvingComment``.
        :param comment: a comment to add.
        :return: the incident afterwards, without alerts.
        """
        body = graph_changes(changes)
        if not body and comment is None:
            raise MTPConfigError("Nothing to update: give at least one field to change or a comment.")
        path = self._incident_path(incident_id)
        incident: dict[str, Any] | None = None
        if body:
            reply = yield ApiRequest(method="PATCH", path=path, json=body, permission=WRITE_PERMISSION)
            incident = normalised_incident(reply)
        if comment is not None:
            comments = yield from self.add_incident_comment(incident_id, comment)
            if incident is None:
                return (yield from self.get_incident(incident_id, include_alerts=False))
            incident["comments"] = comments
        assert incident is not None
        incident.pop("alerts", None)
        return incident

    def add_incident_comment(self, incident_id: str, text: str) -> Program[list[dict[str, Any]]]:
        """POST a comment; every comment of the incident afterwards (Graph returns them all)."""
        return (yield from self._post_comment(self._incident_path(incident_id), text, WRITE_PERMISSION))

    # Alerts ---------------------------------------------------------------------------------------

    def alert_listing(self, query: AlertQuery) -> GraphAlertListing:
        """Alerts of ``alerts_v2`` matching ``query``, read in pieces like incidents (nothing skipped)."""
        return GraphAlertListing.build(query, version=self.version)

    def get_alert(self, alert_id: str, *, incident_id: str | None = None) -> Program[dict[str, Any]]:
        """One alert; :class:`~airflow_provider_mtp.errors.MTPNotFoundError` when it does not exist.

        :param incident_id: not needed on Graph (the legacy API needs it).
        """
        body = yield ApiRequest(
            method="GET", path=alert_path(alert_id, version=self.version), permission=ALERT_READ_PERMISSION
        )
        alert: dict[str, Any] = normalised_alert(body)
        return alert

    def update_alert(
        self, alert_id: str, changes: Mapping[str, Any], *, comment: str | None = None
    ) -> Program[dict[str, Any]]:
        """PATCH the fields in ``changes`` (Graph names), then add ``comment`` if given.

        As for incidents, the PATCH is safe to retry and the comment is not, so it goes last.

        :param alert_id: the alert.
        :param changes: ``status``, ``classification``, ``determination``, ``assignedTo``.
        :param comment: a comment to add.
        :return: the alert afterwards (with every comment when one was added).
        """
        body = alert_update_body(changes)
        if not body and comment is None:
            raise MTPConfigError("Nothing to update: give at least one field to change or a comment.")
        path = alert_path(alert_id, version=self.version)
        alert: dict[str, Any] | None = None
        if body:
            reply = yield ApiRequest(method="PATCH", path=path, json=body, permission=ALERT_WRITE_PERMISSION)
            alert = normalised_alert(reply)
        if comment is not None:
            comments = yield from self.add_alert_comment(alert_id, comment)
            if alert is None:
                return (yield from self.get_alert(alert_id))
            alert["comments"] = comments
        assert alert is not None
        return alert

    def add_alert_comment(self, alert_id: str, text: str) -> Program[list[dict[str, Any]]]:
        """POST a comment; every comment of the alert afterwards."""
        return (
            yield from self._post_comment(
                alert_path(alert_id, version=self.version), text, ALERT_WRITE_PERMISSION
            )
        )

    def _post_comment(self, path: str, text: str, permission: str) -> Program[list[dict[str, Any]]]:
        body = {
            "@odata.type": "microsoft.graph.security.alertComment",
            "comment": non_blank(text, name="comment"),
        }
        reply = yield ApiRequest(
            method="POST", path=path + "/comments", json=body, idempotent=False, permission=permission
        )
        comments = reply.get("value") if isinstance(reply, dict) else None
        return list(comments or [])

    # Hunting --------------------------------------------------------------------------------------

    def run_hunting_query(self, query: str, *, timespan: str | None = None) -> Program[Any]:
        """Run KQL with ``runHuntingQuery``; the rows stream as they are read.

        :param query: the KQL.
        :param timespan: ISO 8601 ``Timespan`` (``start/end``, ``P1D``, ...); the service defaults
            to 30 days and applies the narrower of it and the query's own time filter.
        :return: the transport's streamed hunting result (sync or async).
        """
        body: dict[str, Any] = {"Query": non_blank(query, name="query")}
        if timespan is not None:
            body["Timespan"] = non_blank(timespan, name="timespan")
        result = yield ApiRequest(
            method="POST",
            path=self._path("runHuntingQuery"),
            json=body,
            idempotent=True,  # a read: running it twice costs quota, changes nothing
            permission=HUNT_PERMISSION,
            query=query,
            reply="hunting",
        )
        return result


def graph_changes(changes: Mapping[str, Any]) -> dict[str, Any]:
    """A validated Graph PATCH body from Graph-named ``changes``.

    :raises MTPConfigError: an unknown field or value; the message lists the accepted ones.
    """
    unknown = sorted(set(changes) - set(UPDATE_FIELDS))
    if unknown:
        raise MTPConfigError(
            f"Cannot update {', '.join(unknown)} on an incident; settable fields: {', '.join(UPDATE_FIELDS)}."
        )
    try:
        body = mapping.graph_update_body(
            status=changes.get("status"),
            assigned_to=changes.get("assignedTo"),
            classification=changes.get("classification"),
            determination=changes.get("determination"),
            tags=changes.get("customTags"),
        )
    except ValueError as exc:
        raise MTPConfigError(str(exc)) from None
    for name in GRAPH_FREE_TEXT_FIELDS:
        if name in changes:
            body[name] = changes[name]
    return body
