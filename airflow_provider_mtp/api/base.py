"""What a back end is: a description of the calls one Defender API takes, with no I/O of its own.

Both back ends implement :class:`SecurityApi` and answer in the one normalised shape (Graph's), so
a DAG written once runs on either. A back end does not send anything: each method returns a
:data:`~airflow_provider_mtp.api.request.Program` (the requests to send and how to read their
replies) or, for a listing, an :class:`~airflow_provider_mtp.api.listing.IncidentPages`. The
clients in :mod:`airflow_provider_mtp.api.client` run them with the sync transport (workers) or
the async one (the triggerer), so both hooks go through the same back-end code.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

# Re-exported (the redundant alias says so): the hook names it here, beside the back ends.
from airflow_provider_mtp.api.token_source import TokenSource as TokenSource

if TYPE_CHECKING:
    from airflow_provider_mtp.api.alert_query import AlertQuery
    from airflow_provider_mtp.api.incident_query import IncidentQuery
    from airflow_provider_mtp.api.listing import AlertPasses, IncidentPages
    from airflow_provider_mtp.api.request import ApiIdentity, Program


class SecurityApi(abc.ABC):
    """One back end: the Graph security API or the legacy MTP API."""

    #: ``graph`` or ``legacy``.
    name: str
    #: How messages name the API (given to the transports).
    identity: ApiIdentity
    #: Where a relative path given to ``MTPHook.call`` goes.
    call_base_path: str

    @abc.abstractmethod
    def incident_listing(self, query: IncidentQuery) -> IncidentPages:
        """The listing of ``query`` (checked against this API's rules); ranges are half-open."""

    @abc.abstractmethod
    def get_incident(self, incident_id: str, *, include_alerts: bool = True) -> Program[dict[str, Any]]:
        """One incident in the Graph shape."""

    @abc.abstractmethod
    def update_incident(
        self, incident_id: str, changes: Mapping[str, Any], *, comment: str | None = None
    ) -> Program[dict[str, Any]]:
        """Apply validated Graph-named ``changes`` (and a comment); the updated incident."""

    @abc.abstractmethod
    def add_incident_comment(self, incident_id: str, text: str) -> Program[list[dict[str, Any]]]:
        """Append a comment; every comment of the incident afterwards."""

    @abc.abstractmethod
    def alert_listing(self, query: AlertQuery) -> AlertPasses:
        """The alert listing of ``query`` (checked against this API's rules); ranges are half-open."""

    @abc.abstractmethod
    def get_alert(self, alert_id: str, *, incident_id: str | None = None) -> Program[dict[str, Any]]:
        """One alert in the Graph ``alerts_v2`` shape (the legacy API needs its incident's id)."""

    @abc.abstractmethod
    def update_alert(
        self, alert_id: str, changes: Mapping[str, Any], *, comment: str | None = None
    ) -> Program[dict[str, Any]]:
        """Apply Graph-named ``changes`` (and a comment) to an alert; the alert afterwards."""

    @abc.abstractmethod
    def add_alert_comment(self, alert_id: str, text: str) -> Program[list[dict[str, Any]]]:
        """Add a comment to an alert; every comment of the alert afterwards."""

    @abc.abstractmethod
    def run_hunting_query(self, query: str, *, timespan: str | None = None) -> Program[Any]:
        """Run KQL; the transport's streamed hunting result."""
