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

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from airflow_provider_mtp.api import mapping
from airflow_provider_mtp.api.base import SecurityApi
from airflow_provider_mtp.api.listing import ListingPlan, Page, Piece, walk
from airflow_provider_mtp.api.models import HuntingResult
from airflow_provider_mtp.api.odata import (
    filter_values,
    incident_window,
    non_blank,
    odata_string,
    page_top,
    range_clauses,
)
from airflow_provider_mtp.api.raw_filter import checked_odata_filter, rename_fields
from airflow_provider_mtp.api.transport import Transport, page_items
from airflow_provider_mtp.common.jwt_claims import claims
from airflow_provider_mtp.errors import MTPConfigError

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


@dataclass(frozen=True, kw_only=True)
class LegacyListing:
    """A legacy incident listing: what is asked of the API, and what is filtered after each page.

    :param params: ``$filter`` (if any); ``$top`` is added per request.
    :param top: the page size, at most :data:`LEGACY_MAX_TOP`; a shorter page is the last.
    :param include_alerts: keep the alerts the API always embeds.
    :param local_status: Graph statuses to keep, when the API cannot filter them (several).
    :param local_severity: Graph severities to keep (the API cannot filter on severity).
    :param arguments: the ``list_incidents`` arguments other than the time bounds, for the pieces.
    :param window: the time bounds, the piece the listing plan starts from.
    """

    params: dict[str, Any]
    top: int
    include_alerts: bool
    local_status: frozenset[str] | None = None
    local_severity: frozenset[str] | None = None
    arguments: Mapping[str, Any] = field(default_factory=dict)
    window: Piece = field(default_factory=Piece)

    def keeps(self, incident: Mapping[str, Any]) -> bool:
        """Whether a Graph-shape incident passes the filters applied here."""
        if self.local_status is not None and incident.get("status") not in self.local_status:
            return False
        return self.local_severity is None or incident.get("severity") in self.local_severity

    def plan(self) -> ListingPlan:
        """A fresh plan over the window."""
        return ListingPlan(window=self.window, page_size=self.top)

    def piece_params(self, piece: Piece) -> dict[str, Any]:
        """Query parameters of one piece: the caller's filters and the piece's ranges, no ``$skip``."""
        query = incident_list_query(**self.arguments, **piece.list_arguments())
        return {**query.params, "$top": query.top}

    def page(self, body: Any, convert: Callable[[Mapping[str, Any]], dict[str, Any]]) -> Page:
        """One reply as a plan's page: every incident in the Graph shape (none filtered out yet, so
        the split sees the page the service sent); more when the page is full.

        :param body: the decoded reply.
        :param convert: legacy incident to Graph shape.
        """
        raw = page_items(body, INCIDENTS_PATH)
        return Page(items=[convert(item) for item in raw], more=len(raw) >= self.top)


def incident_list_query(
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
) -> LegacyListing:
    """The legacy listing for Graph-style arguments (see :meth:`LegacyMtpApi.list_incidents`).

    Shared by :class:`LegacyMtpApi` and the async hook, so both ask the same thing.

    :raises MTPConfigError: an unknown enum value, a bad time or page size.
    """
    clauses = []
    local_status: frozenset[str] | None = None
    if status:
        values = filter_values(status, mapping.INCIDENT_STATUS, legacy=True)
        if len(values) == 1:
            clauses.append(f"status eq {odata_string(values[0])}")
        else:
            local_status = frozenset(mapping.INCIDENT_STATUS.to_graph(value) for value in values)
    local_severity: frozenset[str] | None = None
    if severity:
        local_severity = frozenset(filter_values(severity, mapping.SEVERITY, legacy=False))
    if assigned_to is not None:
        clauses.append(f"assignedTo eq {odata_string(assigned_to)}")
    clauses += range_clauses("createdTime", created_from, created_before, name="created")
    clauses += range_clauses("lastUpdateTime", updated_from, updated_before, name="updated")
    raw = checked_odata_filter(odata_filter)
    if raw:
        # Field names only: a string literal that happens to spell one stays as written.
        clauses.append(f"({rename_fields(raw, mapping.GRAPH_TO_LEGACY_FILTER_FIELDS)})")
    return LegacyListing(
        params={"$filter": " and ".join(clauses)} if clauses else {},
        top=page_top(page_size, LEGACY_MAX_TOP),
        include_alerts=include_alerts,
        local_status=local_status,
        local_severity=local_severity,
        arguments={
            "status": status,
            "severity": severity,
            "assigned_to": assigned_to,
            "include_alerts": include_alerts,
            "page_size": page_size,
            "odata_filter": odata_filter,
        },
        window=incident_window(
            created_from=created_from,
            created_before=created_before,
            updated_from=updated_from,
            updated_before=updated_before,
        ),
    )


class LegacyMtpApi(SecurityApi):
    """The legacy MTP API, answering in the Graph shape.

    :param transport: the transport to the MTP origin (dialect ``legacy``).
    :param portal: the cloud's Defender portal origin, for ``incidentWebUrl``.
    :param tenant_id: the directory id for ``tenantId``; ``None`` reads it from the access token's
        ``tid`` claim on first use (the connection may name the tenant by domain).
    """

    name = "legacy"

    def __init__(self, *, transport: Transport, portal: str, tenant_id: str | None = None) -> None:
        self.transport = transport
        self.portal = portal
        self.tenant_id = tenant_id

    def _tenant(self) -> str | None:
        if self.tenant_id is None:
            # MTP incidents do not carry their tenant; the token says which one it is for.
            self.tenant_id = token_tenant(self.transport.tokens.token())
        return self.tenant_id

    def _to_graph(self, incident: Mapping[str, Any], *, include_alerts: bool) -> dict[str, Any]:
        return mapping.incident_to_graph(
            incident, tenant_id=self._tenant(), portal=self.portal, include_alerts=include_alerts
        )

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
        """Incidents in the Graph shape; same arguments and meaning as the Graph back end.

        :param status: any of these statuses (several are filtered locally).
        :param severity: any of these severities (always filtered locally).
        :param assigned_to: the owner, exactly.
        :param created_from: ``createdTime ge`` this.
        :param created_before: ``createdTime lt`` this.
        :param updated_from: ``lastUpdateTime ge`` this.
        :param updated_before: ``lastUpdateTime lt`` this.
        :param include_alerts: keep the alerts the API always embeds.
        :param page_size: ``$top``, at most 100.
        :param odata_filter: one more clause in Graph names; ``lastUpdateDateTime`` and
            ``createdDateTime`` are renamed, the rest is sent as written.
        """
        query = incident_list_query(
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
        return self._incidents(query)

    def _incidents(self, query: LegacyListing) -> Iterator[dict[str, Any]]:
        def fetch(piece: Piece) -> Page:
            body = self.transport.request_json(
                "GET", INCIDENTS_PATH, params=query.piece_params(piece), permission=READ_PERMISSION
            )
            return query.page(body, lambda item: self._to_graph(item, include_alerts=query.include_alerts))

        for incident in walk(query.plan(), fetch):
            # Filtered after the plan saw the whole page: whether a piece fits is the raw page's length.
            if query.keeps(incident):
                yield incident

    def get_incident(self, incident_id: str, *, include_alerts: bool = True) -> dict[str, Any]:
        """One incident; :class:`~airflow_provider_mtp.errors.MTPNotFoundError` when it does not exist."""
        body = self.transport.request_json(
            "GET", f"{INCIDENTS_PATH}/{legacy_id(incident_id)}", permission=READ_PERMISSION
        )
        return self._to_graph(body, include_alerts=include_alerts)

    def update_incident(
        self, incident_id: str, changes: dict[str, Any], *, comment: str | None = None
    ) -> dict[str, Any]:
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
        return self._patch(incident_id, body)

    def add_incident_comment(self, incident_id: str, text: str) -> list[dict[str, Any]]:
        """Append a comment (a PATCH with ``comment``); every comment of the incident afterwards."""
        incident = self._patch(incident_id, {"comment": non_blank(text, name="comment")})
        return list(incident.get("comments") or [])

    def _patch(self, incident_id: str, body: dict[str, Any]) -> dict[str, Any]:
        reply = self.transport.request_json(
            "PATCH",
            f"/api/incidents/{legacy_id(incident_id)}",
            json=body,
            # The comment is appended on every call that reaches the service.
            idempotent="comment" not in body,
            permission=WRITE_PERMISSION,
        )
        return self._to_graph(reply, include_alerts=False)

    # Hunting --------------------------------------------------------------------------------------

    def run_hunting_query(self, query: str, *, timespan: str | None = None) -> HuntingResult:
        """Run KQL with ``/api/advancedhunting/run``; the rows stream as they are read.

        :param query: the KQL, carrying its own time window (the API takes no ``Timespan``).
        :param timespan: must be ``None``; the legacy API has no such parameter.
        """
        if timespan is not None:
            raise MTPConfigError(
                "The legacy MTP hunting API takes no Timespan: put the window in the KQL, e.g. "
                "| where Timestamp between (datetime(2024-05-01) .. datetime(2024-05-02)), or use api='graph'."
            )
        return self.transport.fetch(
            "POST",
            "/api/advancedhunting/run",
            json={"Query": non_blank(query, name="query")},
            consume=HuntingResult.from_response,
            idempotent=True,
            permission=HUNT_PERMISSION,
            query=query,
        )
