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
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import quote

from airflow_provider_mtp.api import mapping
from airflow_provider_mtp.api.base import SecurityApi
from airflow_provider_mtp.api.listing import ListingPlan, Page, Piece, walk
from airflow_provider_mtp.api.models import HuntingResult
from airflow_provider_mtp.api.odata import (
    any_of,
    filter_values,
    incident_window,
    non_blank,
    odata_string,
    page_top,
    range_clauses,
)
from airflow_provider_mtp.api.raw_filter import checked_odata_filter
from airflow_provider_mtp.api.transport import Transport, page_items
from airflow_provider_mtp.errors import MTPConfigError

log = logging.getLogger(__name__)

#: Graph answers ``$top`` above 50 on incidents with HTTP 400 (defender-api.md section 3.1).
GRAPH_MAX_TOP = 50

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
        result["alerts"] = [_normalised_alert(alert) for alert in result["alerts"]]
    return result


def _normalised_alert(alert: Any) -> Any:
    if not isinstance(alert, dict):
        return alert
    result = {key: value for key, value in alert.items() if not key.startswith("@odata.")}
    for key, table in _ALERT_ENUMS:
        if key in result:
            result[key] = table.to_graph(result[key])
    return result


_INCIDENT_ENUMS = (
    ("status", mapping.INCIDENT_STATUS),
    ("severity", mapping.SEVERITY),
    ("classification", mapping.CLASSIFICATION),
    ("determination", mapping.DETERMINATION),
)
_ALERT_ENUMS = (
    ("status", mapping.ALERT_STATUS),
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


def incident_list_params(
    *,
    status: Sequence[str] | None = None,
    severity: Sequence[str] | None = None,
    assigned_to: str | None = None,
    created_from: datetime | str | None = None,
    created_before: datetime | str | None = None,
    updated_from: datetime | str | None = None,
    updated_before: datetime | str | None = None,
    include_alerts: bool = False,
    page_size: int | None = None,
    odata_filter: str | None = None,
) -> dict[str, Any]:
    """Query parameters of the first page of ``GET /security/incidents``.

    Shared by :meth:`GraphSecurityApi.list_incidents` and the async hook, so both send the same
    request; the arguments mean what they mean there.

    :raises MTPConfigError: an unknown enum value, a bad time or page size.
    """
    clauses = []
    if status:
        values = filter_values(status, mapping.INCIDENT_STATUS, legacy=False, extra=GRAPH_ONLY_STATUS)
        clauses.append(any_of("status", [odata_string(value) for value in values]))
    if severity:
        values = filter_values(severity, mapping.SEVERITY, legacy=False, extra=GRAPH_ONLY_SEVERITY)
        clauses.append(any_of("severity", [odata_string(value) for value in values]))
    if assigned_to is not None:
        clauses.append(f"assignedTo eq {odata_string(assigned_to)}")
    clauses += range_clauses("createdDateTime", created_from, created_before, name="created")
    clauses += range_clauses("lastUpdateDateTime", updated_from, updated_before, name="updated")
    raw = checked_odata_filter(odata_filter)
    if raw:
        # Balanced (checked above), so the parentheses hold all of it: it can only narrow.
        clauses.append(f"({raw})")
    params: dict[str, Any] = {"$top": page_top(page_size, GRAPH_MAX_TOP)}
    if clauses:
        params["$filter"] = " and ".join(clauses)
    if include_alerts:
        params["$expand"] = "alerts"
    return params


#: ``list_incidents`` arguments that are time bounds: a listing's pieces set them.
TIME_ARGUMENTS = ("created_from", "created_before", "updated_from", "updated_before")


@dataclass(frozen=True, kw_only=True)
class IncidentListing:
    """A Graph incident listing: the caller's filters, its window, and the request of each piece.

    Shared by :class:`GraphSecurityApi` and the async hook, which run :meth:`plan` with their own I/O.

    :param arguments: the ``list_incidents`` arguments other than the time bounds, checked.
    :param window: the time bounds.
    :param top: ``$top`` of every request.
    """

    arguments: Mapping[str, Any]
    window: Piece
    top: int

    @classmethod
    def build(cls, **arguments: Any) -> IncidentListing:
        """From :meth:`GraphSecurityApi.list_incidents` arguments, every one checked before any call.

        :raises MTPConfigError: an unknown enum value, a bad time, page size or ``odata_filter``.
        """
        top = incident_list_params(**arguments)["$top"]
        bounds = {name: arguments.pop(name, None) for name in TIME_ARGUMENTS}
        return cls(arguments=arguments, window=incident_window(**bounds), top=top)

    def plan(self) -> ListingPlan:
        """A fresh plan over the window."""
        return ListingPlan(window=self.window, page_size=self.top)

    def params(self, piece: Piece) -> dict[str, Any]:
        """Query parameters of one piece: the caller's filters and the piece's ranges, no ``$skip``."""
        return incident_list_params(**self.arguments, **piece.list_arguments())

    @staticmethod
    def page(body: Any, path: str) -> Page:
        """One reply as a plan's page: incidents normalised; more when Graph sent a next link."""
        items = [normalised_incident(item) for item in page_items(body, path)]
        return Page(items=items, more=bool(body.get("@odata.nextLink")))


class GraphSecurityApi(SecurityApi):
    """The Graph security API.

    :param transport: the transport to the Graph origin (dialect ``graph``).
    :param version: ``v1.0`` or ``beta``.
    """

    name = "graph"

    def __init__(self, *, transport: Transport, version: str = "v1.0") -> None:
        self.transport = transport
        self.version = version

    def _path(self, rest: str) -> str:
        return security_path(rest, version=self.version)

    def _incident_path(self, incident_id: str) -> str:
        return incident_path(incident_id, version=self.version)

    # Incidents ------------------------------------------------------------------------------------

    def list_incidents(
        self,
        *,
        status: Sequence[str] | None = None,
        severity: Sequence[str] | None = None,
        assigned_to: str | None = None,
        created_from: datetime | str | None = None,
        created_before: datetime | str | None = None,
        updated_from: datetime | str | None = None,
        updated_before: datetime | str | None = None,
        include_alerts: bool = False,
        page_size: int | None = None,
        odata_filter: str | None = None,
    ) -> Iterator[dict[str, Any]]:
        """Incidents matching every given condition, newest first (the service's order).

        Arguments are checked before the first call; the calls happen as the iterator is read.
        The window is read in pieces that each fit one page, never by offset, so an incident that
        analysts leave alone is returned even while they update others (see
        :mod:`airflow_provider_mtp.api.listing`); each ``(id, lastUpdateDateTime)`` comes once.

        :param status: any of these statuses.
        :param severity: any of these severities.
        :param assigned_to: the owner, exactly.
        :param created_from: ``createdDateTime ge`` this.
        :param created_before: ``createdDateTime lt`` this.
        :param updated_from: ``lastUpdateDateTime ge`` this.
        :param updated_before: ``lastUpdateDateTime lt`` this.
        :param include_alerts: ``$expand=alerts``.
        :param page_size: ``$top``, at most 50.
        :param odata_filter: one more ``$filter`` clause in Graph names, AND-ed with the rest.
        """
        listing = IncidentListing.build(
            status=status,
            severity=severity,
            assigned_to=assigned_to,
            created_from=created_from,
            created_before=created_before,
            updated_from=updated_from,
            updated_before=updated_before,
            include_alerts=include_alerts,
            page_size=page_size,
            odata_filter=odata_filter,
        )
        path = self._path("incidents")

        def fetch(piece: Piece) -> Page:
            body = self.transport.request_json(
                "GET", path, params=listing.params(piece), permission=READ_PERMISSION
            )
            return listing.page(body, path)

        return walk(listing.plan(), fetch)

    def get_incident(self, incident_id: str, *, include_alerts: bool = True) -> dict[str, Any]:
        """One incident; :class:`~airflow_provider_mtp.errors.MTPNotFoundError` when it does not exist."""
        params = {"$expand": "alerts"} if include_alerts else None
        body = self.transport.request_json(
            "GET", self._incident_path(incident_id), params=params, permission=READ_PERMISSION
        )
        return normalised_incident(body)

    def update_incident(
        self, incident_id: str, changes: dict[str, Any], *, comment: str | None = None
    ) -> dict[str, Any]:
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
            incident = normalised_incident(
                self.transport.request_json("PATCH", path, json=body, permission=WRITE_PERMISSION)
            )
        if comment is not None:
            comments = self.add_incident_comment(incident_id, comment)
            if incident is None:
                return self.get_incident(incident_id, include_alerts=False)
            incident["comments"] = comments
        assert incident is not None
        incident.pop("alerts", None)
        return incident

    def add_incident_comment(self, incident_id: str, text: str) -> list[dict[str, Any]]:
        """POST a comment; every comment of the incident afterwards (Graph returns them all)."""
        body = {
            "@odata.type": "microsoft.graph.security.alertComment",
            "comment": non_blank(text, name="comment"),
        }
        reply = self.transport.request_json(
            "POST",
            self._incident_path(incident_id) + "/comments",
            json=body,
            idempotent=False,
            permission=WRITE_PERMISSION,
        )
        comments = reply.get("value") if isinstance(reply, dict) else None
        return list(comments or [])

    # Hunting --------------------------------------------------------------------------------------

    def run_hunting_query(self, query: str, *, timespan: str | None = None) -> HuntingResult:
        """Run KQL with ``runHuntingQuery``; the rows stream as they are read.

        :param query: the KQL.
        :param timespan: ISO 8601 ``Timespan`` (``start/end``, ``P1D``, ...); the service defaults
            to 30 days and applies the narrower of it and the query's own time filter.
        """
        body: dict[str, Any] = {"Query": non_blank(query, name="query")}
        if timespan is not None:
            body["Timespan"] = non_blank(timespan, name="timespan")
        return self.transport.fetch(
            "POST",
            self._path("runHuntingQuery"),
            json=body,
            consume=HuntingResult.from_response,
            idempotent=True,  # a read: running it twice costs quota, changes nothing
            permission=HUNT_PERMISSION,
            query=query,
        )


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
