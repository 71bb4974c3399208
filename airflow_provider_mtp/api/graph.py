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
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from airflow_provider_mtp.api import mapping
from airflow_provider_mtp.api.base import SecurityApi
from airflow_provider_mtp.api.listing import ListingPlan, Page, Piece, walk
from airflow_provider_mtp.api.models import HuntingResult
from airflow_provider_mtp.api.raw_filter import checked_odata_filter
from airflow_provider_mtp.api.transport import Transport, page_items
from airflow_provider_mtp.common.ticks import timestamp_ticks
from airflow_provider_mtp.common.utc import parse_iso
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

# The literal form OData accepts as is: seconds, 0-7 fraction digits, Z or an offset.
_ODATA_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,7})?(Z|[+-]\d{2}:\d{2})$")


def odata_datetime(value: datetime | str, *, name: str) -> str:
    """An unquoted OData datetime literal.

    A string already in the OData form is kept as given, so a watermark with 7 fractional digits
    (100 ns, which Python's datetime drops) stays exact. Other ISO 8601 strings and datetimes are
    written in UTC; a value without a time zone is taken as UTC.

    :param value: the bound.
    :param name: the argument's name, for the error message.
    :raises MTPConfigError: the value is not a time.
    """
    if isinstance(value, str):
        text = value.strip()
        if _ODATA_DATETIME.match(text):
            return text
        try:
            value = parse_iso(text)
        except ValueError:
            raise MTPConfigError(
                f"{name} must be an ISO 8601 time such as 2024-05-01T00:00:00Z, got {value!r}"
            ) from None
    if not isinstance(value, datetime):
        raise MTPConfigError(f"{name} must be a datetime or an ISO 8601 string, got {type(value).__name__}")
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    value = value.astimezone(UTC)
    text = value.strftime("%Y-%m-%dT%H:%M:%S")
    if value.microsecond:
        text += f".{value.microsecond:06d}"
    return text + "Z"


def odata_string(value: str) -> str:
    """A quoted OData string literal (a single quote is doubled)."""
    return "'" + value.replace("'", "''") + "'"


def filter_values(
    values: str | Iterable[str], table: mapping.EnumMap, *, legacy: bool, extra: Sequence[str] = ()
) -> list[str]:
    """Enum values for a filter, in the dialect's spelling; either dialect and any case accepted.

    An unknown value fails here rather than silently matching nothing.

    :param values: one value or several.
    :param table: the enum.
    :param legacy: spell them the MTP way.
    :param extra: values the service accepts that the table does not list.
    :raises MTPConfigError: a value is unknown; the message lists the accepted ones.
    """
    listed = [values] if isinstance(values, str) else list(values)
    extras = {value.casefold(): value for value in extra}
    spelled = []
    for value in listed:
        if isinstance(value, str) and value.casefold() in extras:
            spelled.append(extras[value.casefold()])
            continue
        try:
            spelled.append(table.require_legacy(value) if legacy else table.require_graph(value))
        except ValueError as exc:
            raise MTPConfigError(str(exc)) from None
    return spelled


def any_of(field: str, literals: Sequence[str]) -> str:
    """``field eq a`` or ``(field eq a or field eq b)``."""
    clauses = [f"{field} eq {literal}" for literal in literals]
    return clauses[0] if len(clauses) == 1 else "(" + " or ".join(clauses) + ")"


def range_clauses(
    field: str, start: datetime | str | None, before: datetime | str | None, *, name: str
) -> list[str]:
    """The half-open range ``[start, before)`` as ``ge`` and ``lt`` clauses."""
    clauses = []
    if start is not None:
        clauses.append(f"{field} ge {odata_datetime(start, name=f'{name}_from')}")
    if before is not None:
        clauses.append(f"{field} lt {odata_datetime(before, name=f'{name}_before')}")
    if start is not None and before is not None and _as_utc(start) > _as_utc(before):
        raise MTPConfigError(f"{name}_from ({start}) is after {name}_before ({before}); the window is empty")
    return clauses


def _as_utc(value: datetime | str) -> datetime:
    if isinstance(value, str):
        value = parse_iso(value)
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def page_top(page_size: int | None, maximum: int) -> int:
    """``$top`` for a page size: the back end's maximum when ``None``, never above it."""
    if page_size is None:
        return maximum
    if isinstance(page_size, bool) or not isinstance(page_size, int) or page_size < 1:
        raise MTPConfigError(f"page_size must be a whole number of at least 1, got {page_size!r}")
    if page_size > maximum:
        # The service rejects a larger $top; a smaller page only costs more calls.
        log.debug("page_size %d is above this API's maximum; using %d", page_size, maximum)
    return min(page_size, maximum)


def non_blank(text: Any, *, name: str) -> str:
    if not isinstance(text, str) or not text.strip():
        raise MTPConfigError(f"{name} must be a non-blank string, got {text!r}")
    return text


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


def incident_window(
    *,
    created_from: datetime | str | None = None,
    created_before: datetime | str | None = None,
    updated_from: datetime | str | None = None,
    updated_before: datetime | str | None = None,
) -> Piece:
    """The time bounds of a listing in 100-ns ticks, the piece every listing plan starts from.

    :raises MTPConfigError: a bound is not a time.
    """
    return Piece(
        created_from=_bound_ticks(created_from, name="created_from"),
        created_before=_bound_ticks(created_before, name="created_before"),
        updated_from=_bound_ticks(updated_from, name="updated_from"),
        updated_before=_bound_ticks(updated_before, name="updated_before"),
    )


def _bound_ticks(value: datetime | str | None, *, name: str) -> int | None:
    if value is None:
        return None
    ticks = timestamp_ticks(odata_datetime(value, name=name))
    if ticks is None:
        raise MTPConfigError(f"{name} must be an ISO 8601 time such as 2024-05-01T00:00:00Z, got {value!r}")
    return ticks


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
