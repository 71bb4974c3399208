"""The legacy Microsoft Threat Protection API back end (``/api/incidents``, ``/api/advancedhunting/run``).

Everything it returns is in the Graph shape, converted by :func:`mapping.incident_to_graph` (the
one mapping; defender-api.md section 6), so a DAG runs unchanged on either back end.

What the legacy API cannot do, and what this back end does instead:

* ``$filter`` knows only ``lastUpdateTime``, ``createdTime``, ``status`` and ``assignedTo`` and is
  documented with ``and`` only: severity, and a choice of several statuses, are filtered here after
  each page arrives.
* No ``@odata.nextLink``, and ``$skip`` paging skips incidents that analysts update mid-listing:
  the window is read in pieces (ranges on ``createdTime`` and ``lastUpdateTime``) that each fit
  one page of ``$top=100`` (:mod:`airflow_provider_mtp.api.listing`); a full page means "more".
* Comments go in the PATCH body (``comment``); a PATCH carrying one is not retried blindly.
* Hunting takes no ``Timespan``: the window must be in the KQL itself
  (``| where Timestamp between (datetime(...) .. datetime(...))``); the data goes back 30 days.
* Incident ids are JSON integers: they are sent as integers in the path and returned as strings.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from airflow_provider_mtp.api import mapping
from airflow_provider_mtp.api.alert_query import AlertQuery
from airflow_provider_mtp.api.base import SecurityApi
from airflow_provider_mtp.api.call_rules import page_items
from airflow_provider_mtp.api.incident_query import TIME_BOUNDS, IncidentQuery
from airflow_provider_mtp.api.legacy_alerts import LegacyAlertPasses, refuse_alert_update
from airflow_provider_mtp.api.listing import ListingPlan, Page, Piece
from airflow_provider_mtp.api.odata import (
    filter_values,
    incident_window,
    non_blank,
    odata_string,
    page_top,
    range_clauses,
)
from airflow_provider_mtp.api.raw_filter import checked_odata_filter, rename_fields
from airflow_provider_mtp.api.request import ApiIdentity, ApiRequest, Program
from airflow_provider_mtp.common.jwt_claims import claims
from airflow_provider_mtp.errors import MTPConfigError, MTPNotFoundError

#: ``$top`` maximum of ``/api/incidents`` (defender-api.md section 4.1).
LEGACY_MAX_TOP = 100

READ_PERMISSION = "Incident.Read.All"
WRITE_PERMISSION = "Incident.ReadWrite.All"
HUNT_PERMISSION = "AdvancedHunting.Read.All"

#: The incidents collection.
INCIDENTS_PATH = "/api/incidents"

#: Graph-named fields the legacy PATCH can set.
UPDATE_FIELDS = ("status", "assignedTo", "classification", "determination", "customTags")


def legacy_id(incident_id: str | int) -> int:
    """The integer the legacy API wants in the path.

    :raises MTPConfigError: the id is not all digits.
    """
    text = str(incident_id).strip()
    if not text.isdigit():
        raise MTPConfigError(f"Legacy MTP incident ids are whole numbers, got {incident_id!r}")
    return int(text)


def token_tenant(token: str) -> str | None:
    """The ``tid`` claim of a JWT access token, read without verifying it (only to label data)."""
    tenant = (claims(token) or {}).get("tid")
    return str(tenant) if tenant else None


#: How messages name this API, where its permissions are granted and what its tokens are for.
IDENTITY = ApiIdentity(
    dialect="legacy",
    name="the Microsoft Threat Protection API",
    permission_home="the Microsoft Threat Protection API (WindowsDefenderATP is a different API)",
    token_audience=(
        "https://api.security.microsoft.com (not the WindowsDefenderATP audience api.securitycenter.microsoft.com)"
    ),
)

#: Turns a legacy incident into the Graph shape (the back end's tenant and portal bound in).
Converter = Callable[[Mapping[str, Any]], dict[str, Any]]


@dataclass(frozen=True, kw_only=True)
class LegacyListing:
    """A legacy incident listing: what is asked of the API, and what is filtered after each page.

    Run by :func:`~airflow_provider_mtp.api.listing.run_listing` (sync) or
    :func:`~airflow_provider_mtp.api.listing.arun_listing` (async): one description, two transports.

    :param query: the listing, checked against the legacy API's rules.
    :param params: ``$filter`` of the whole window (if any); ``$top`` is added per request.
    :param top: the page size, at most :data:`LEGACY_MAX_TOP`; a shorter page is the last.
    :param local_status: Graph statuses to keep, when the API cannot filter them (several).
    :param local_severity: Graph severities to keep (the API cannot filter on severity).
    :param window: the time bounds, the piece the listing plan starts from.
    :param convert: legacy incident to Graph shape; ``None`` keeps the API's own shape.
    """

    query: IncidentQuery
    params: dict[str, Any]
    top: int
    local_status: frozenset[str] | None = None
    local_severity: frozenset[str] | None = None
    window: Piece = field(default_factory=Piece)
    convert: Converter | None = None

    @property
    def include_alerts(self) -> bool:
        """Keep the alerts the API always embeds."""
        return self.query.include_alerts

    def keeps(self, incident: Mapping[str, Any]) -> bool:
        """Whether a Graph-shape incident passes the filters applied here and the query's own."""
        if self.local_status is not None and incident.get("status") not in self.local_status:
            return False
        if self.local_severity is not None and incident.get("severity") not in self.local_severity:
            return False
        return self.query.keeps(incident)

    def plan(self) -> ListingPlan:
        """A fresh plan over the window."""
        return ListingPlan(window=self.window, page_size=self.top)

    def piece_params(self, piece: Piece) -> dict[str, Any]:
        """Query parameters of one piece: the caller's filters and the piece's ranges, no ``$skip``."""
        listing = incident_list_query(self.query.replace(**piece.list_arguments()))
        return {**listing.params, "$top": listing.top}

    def request(self, piece: Piece) -> ApiRequest:
        """The request for one piece's single page."""
        return ApiRequest(
            method="GET", path=INCIDENTS_PATH, params=self.piece_params(piece), permission=READ_PERMISSION
        )

    def page(self, body: Any) -> Page:
        """One reply as a plan's page: every incident in the Graph shape (none filtered out yet, so
        the split sees the page the service sent); more when the page is full.

        :param body: the decoded reply.
        """
        raw = page_items(body, INCIDENTS_PATH)
        convert = self.convert or dict
        return Page(items=[convert(item) for item in raw], more=len(raw) >= self.top)


def incident_list_query(
    query: IncidentQuery | None = None, /, *, convert: Converter | None = None, **fields: Any
) -> LegacyListing:
    """The legacy listing of a query (see :meth:`LegacyMtpApi.incident_listing`), checked.

    :param query: the listing.
    :param convert: legacy incident to Graph shape, for the listing's pages.
    :param fields: the query's fields, when no query is given (see :class:`IncidentQuery`).
    :raises MTPConfigError: an unknown enum value, a bad time or page size.
    """
    query = IncidentQuery.of(query, **fields)
    clauses = []
    local_status: frozenset[str] | None = None
    if query.status:
        values = filter_values(query.status, mapping.INCIDENT_STATUS, legacy=True)
        if len(values) == 1:
            clauses.append(f"status eq {odata_string(values[0])}")
        else:
            local_status = frozenset(mapping.INCIDENT_STATUS.to_graph(value) for value in values)
    local_severity: frozenset[str] | None = None
    if query.severity:
        local_severity = frozenset(filter_values(query.severity, mapping.SEVERITY, legacy=False))
    if query.assigned_to is not None:
        clauses.append(f"assignedTo eq {odata_string(query.assigned_to)}")
    clauses += range_clauses("createdTime", query.created_from, query.created_before, name="created")
    clauses += range_clauses("lastUpdateTime", query.updated_from, query.updated_before, name="updated")
    raw = checked_odata_filter(query.odata_filter)
    if raw:
        # Field names only: a string literal that happens to spell one stays as written.
        clauses.append(f"({rename_fields(raw, mapping.GRAPH_TO_LEGACY_FILTER_FIELDS)})")
    return LegacyListing(
        query=query,
        params={"$filter": " and ".join(clauses)} if clauses else {},
        top=page_top(query.page_size, LEGACY_MAX_TOP),
        local_status=local_status,
        local_severity=local_severity,
        window=incident_window(**{name: getattr(query, name) for name in TIME_BOUNDS}),
        convert=convert,
    )


class LegacyMtpApi(SecurityApi):
    """The legacy MTP API, described, answering in the Graph shape.

    :param portal: the cloud's Defender portal origin, for ``incidentWebUrl``.
    :param tenant: the directory id for ``tenantId``, asked for when first needed: the hooks read
        it from the access token's ``tid`` claim (the connection may name the tenant by domain).
    """

    name = "legacy"
    identity = IDENTITY
    call_base_path = "/api/"

    def __init__(self, *, portal: str, tenant: Callable[[], str | None] = lambda: None) -> None:
        self.portal = portal
        self.tenant = tenant

    def _to_graph(self, incident: Mapping[str, Any], *, include_alerts: bool) -> dict[str, Any]:
        return mapping.incident_to_graph(
            incident, tenant_id=self.tenant(), portal=self.portal, include_alerts=include_alerts
        )

    # Incidents ------------------------------------------------------------------------------------

    def incident_listing(self, query: IncidentQuery) -> LegacyListing:
        """Incidents in the Graph shape; the same query and meaning as the Graph back end.

        Several statuses and every severity are filtered after each page (the API cannot);
        ``odata_filter`` is written in Graph names: ``lastUpdateDateTime`` and ``createdDateTime``
        are renamed, the rest is sent as written.
        """
        return incident_list_query(
            query, convert=lambda item: self._to_graph(item, include_alerts=query.include_alerts)
        )

    def get_incident(self, incident_id: str, *, include_alerts: bool = True) -> Program[dict[str, Any]]:
        """One incident; :class:`~airflow_provider_mtp.errors.MTPNotFoundError` when it does not exist."""
        body = yield ApiRequest(
            method="GET", path=f"{INCIDENTS_PATH}/{legacy_id(incident_id)}", permission=READ_PERMISSION
        )
        return self._to_graph(body, include_alerts=include_alerts)

    def update_incident(
        self, incident_id: str, changes: Mapping[str, Any], *, comment: str | None = None
    ) -> Program[dict[str, Any]]:
        """One PATCH with the changes (Graph names, either dialect's enum spelling) and the comment.

        :param incident_id: the incident.
        :param changes: ``status``, ``assignedTo``, ``classification``, ``determination``, ``customTags``.
        :param comment: a comment to append, in the same call.
        :return: the incident afterwards, without alerts.
        """
        unknown = sorted(set(changes) - set(UPDATE_FIELDS))
        if unknown:
            raise MTPConfigError(
                f"Cannot update {', '.join(unknown)} through the legacy MTP API; settable fields: "
                f"{', '.join(UPDATE_FIELDS)} (Graph also sets description, summary, resolvingComment)."
            )
        try:
            body = mapping.legacy_update_body(
                status=changes.get("status"),
                assigned_to=changes.get("assignedTo"),
                classification=changes.get("classification"),
                determination=changes.get("determination"),
                tags=changes.get("customTags"),
                comment=comment,
            )
        except ValueError as exc:
            raise MTPConfigError(str(exc)) from None
        if not body:
            raise MTPConfigError("Nothing to update: give at least one field to change or a comment.")
        return (yield from self._patch(incident_id, body))

    def add_incident_comment(self, incident_id: str, text: str) -> Program[list[dict[str, Any]]]:
        """Append a comment (a PATCH with ``comment``); every comment of the incident afterwards."""
        incident = yield from self._patch(incident_id, {"comment": non_blank(text, name="comment")})
        return list(incident.get("comments") or [])

    def _patch(self, incident_id: str, body: dict[str, Any]) -> Program[dict[str, Any]]:
        reply = yield ApiRequest(
            method="PATCH",
            path=f"{INCIDENTS_PATH}/{legacy_id(incident_id)}",
            json=body,
            # The comment is appended on every call that reaches the service.
            idempotent="comment" not in body,
            permission=WRITE_PERMISSION,
        )
        return self._to_graph(reply, include_alerts=False)

    # Alerts ---------------------------------------------------------------------------------------

    def alert_listing(self, query: AlertQuery) -> LegacyAlertPasses:
        """Alerts in the ``alerts_v2`` shape, read through the incidents that embed them.

        Every filter is applied to the embedded alerts here; ``odata_filter`` is refused (see
        :mod:`airflow_provider_mtp.api.legacy_alerts`).
        """
        return LegacyAlertPasses.build(query, self.incident_listing)

    def get_alert(self, alert_id: str, *, incident_id: str | None = None) -> Program[dict[str, Any]]:
        """One alert, read from its incident (the API has no alerts endpoint).

        :param alert_id: the alert.
        :param incident_id: its incident (each alert's ``incidentId``); required here.
        :raises MTPConfigError: no ``incident_id``.
        :raises MTPNotFoundError: the incident does not hold the alert.
        """
        if incident_id is None:
            raise MTPConfigError(
                f"The legacy MTP API reads an alert only through its incident: pass incident_id "
                f"(the alert's 'incidentId') to get alert {alert_id!r}, or use api='graph'."
            )
        incident = yield from self.get_incident(incident_id, include_alerts=True)
        for alert in incident.get("alerts") or ():
            if isinstance(alert, dict) and alert.get("id") == alert_id:
                return alert
        raise MTPNotFoundError(
            f"Incident {incident_id} holds no alert {alert_id!r} on the legacy MTP API; check the "
            "alert's 'incidentId' (an alert can move when incidents are merged)."
        )

    def update_alert(
        self, alert_id: str, changes: Mapping[str, Any], *, comment: str | None = None
    ) -> Program[dict[str, Any]]:
        """Refused before any call: the legacy API cannot update alerts."""
        raise refuse_alert_update("update")

    def add_alert_comment(self, alert_id: str, text: str) -> Program[list[dict[str, Any]]]:
        """Refused before any call: the legacy API cannot comment on alerts."""
        raise refuse_alert_update("comment on")

    # Hunting --------------------------------------------------------------------------------------

    def run_hunting_query(self, query: str, *, timespan: str | None = None) -> Program[Any]:
        """Run KQL with ``/api/advancedhunting/run``; the rows stream as they are read.

        :param query: the KQL, carrying its own time window (the API takes no ``Timespan``).
        :param timespan: must be ``None``; the legacy API has no such parameter.
        :return: the transport's streamed hunting result (sync or async).
        """
        if timespan is not None:
            raise MTPConfigError(
                "The legacy MTP hunting API takes no Timespan: put the window in the KQL, e.g. "
                "| where Timestamp between (datetime(2024-05-01) .. datetime(2024-05-02)), or use api='graph'."
            )
        result = yield ApiRequest(
            method="POST",
            path="/api/advancedhunting/run",
            json={"Query": non_blank(query, name="query")},
            idempotent=True,
            permission=HUNT_PERMISSION,
            query=query,
            reply="hunting",
        )
        return result
