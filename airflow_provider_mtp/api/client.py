"""A back end run over a transport: the sync client for workers, the async one for the triggerer.

:class:`SecurityClient` and :class:`AsyncSecurityClient` hold no API knowledge: each method takes
the back end's description of the operation (:data:`~airflow_provider_mtp.api.request.Program` or
:class:`~airflow_provider_mtp.api.listing.IncidentPages`) and runs it with its transport's
``send``. So :class:`~airflow_provider_mtp.hooks.mtp.MTPHook` and
:class:`~airflow_provider_mtp.hooks.mtp_async.MTPAsyncHook` reach the same back-end code: for
``get_incident`` on Graph, both run :meth:`GraphSecurityApi.get_incident
<airflow_provider_mtp.api.graph.GraphSecurityApi.get_incident>`'s one request through
:class:`~airflow_provider_mtp.api.call_rules.CallRules`, one with requests, one with aiohttp.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from airflow_provider_mtp.api.alert_query import AlertQuery
from airflow_provider_mtp.api.incident_query import IncidentQuery
from airflow_provider_mtp.api.listing import arun_alert_listing, arun_listing, run_alert_listing, run_listing
from airflow_provider_mtp.api.request import arun, run

if TYPE_CHECKING:
    from airflow_provider_mtp.api.base import SecurityApi
    from airflow_provider_mtp.api.models import HuntingResult
    from airflow_provider_mtp.api.transport import Transport
    from airflow_provider_mtp.api.transport_async import AsyncHuntingResult, AsyncTransport

__all__ = ["AsyncSecurityClient", "SecurityClient"]


class SecurityClient:
    """A back end over the sync transport; every incident in the Graph shape.

    :param api: the back end (:class:`~airflow_provider_mtp.api.graph.GraphSecurityApi` or
        :class:`~airflow_provider_mtp.api.legacy.LegacyMtpApi`).
    :param transport: the requests transport to the back end's origin.
    """

    def __init__(self, *, api: SecurityApi, transport: Transport) -> None:
        self.api = api
        self.transport = transport

    @property
    def name(self) -> str:
        """``graph`` or ``legacy``."""
        return self.api.name

    def list_incidents(
        self, query: IncidentQuery | None = None, /, **fields: Any
    ) -> Iterator[dict[str, Any]]:
        """Incidents matching ``query`` (or its fields as keywords), a page at a time as you iterate.

        The query is checked against the back end's rules now, before any call.
        """
        listing = self.api.incident_listing(IncidentQuery.of(query, **fields))
        return run_listing(listing, self.transport.send)

    def get_incident(self, incident_id: str, *, include_alerts: bool = True) -> dict[str, Any]:
        """One incident; :class:`~airflow_provider_mtp.errors.MTPNotFoundError` if unknown."""
        return run(self.api.get_incident(incident_id, include_alerts=include_alerts), self.transport.send)

    def update_incident(
        self, incident_id: str, changes: Mapping[str, Any], *, comment: str | None = None
    ) -> dict[str, Any]:
        """Apply Graph-named ``changes`` and a comment; the incident afterwards."""
        return run(self.api.update_incident(incident_id, changes, comment=comment), self.transport.send)

    def add_incident_comment(self, incident_id: str, text: str) -> list[dict[str, Any]]:
        """Add a comment; every comment of the incident afterwards."""
        return run(self.api.add_incident_comment(incident_id, text), self.transport.send)

    def list_alerts(self, query: AlertQuery | None = None, /, **fields: Any) -> Iterator[dict[str, Any]]:
        """Alerts matching ``query`` (or its fields as keywords), each ``(id, lastUpdateDateTime)`` once.

        The query is checked against the back end's rules now, before any call.
        """
        return run_alert_listing(self.api.alert_listing(AlertQuery.of(query, **fields)), self.transport.send)

    def get_alert(self, alert_id: str, *, incident_id: str | None = None) -> dict[str, Any]:
        """One alert; :class:`~airflow_provider_mtp.errors.MTPNotFoundError` if unknown."""
        return run(self.api.get_alert(alert_id, incident_id=incident_id), self.transport.send)

    def update_alert(
        self, alert_id: str, changes: Mapping[str, Any], *, comment: str | None = None
    ) -> dict[str, Any]:
        """Apply Graph-named ``changes`` and a comment; the alert afterwards."""
        return run(self.api.update_alert(alert_id, changes, comment=comment), self.transport.send)

    def add_alert_comment(self, alert_id: str, text: str) -> list[dict[str, Any]]:
        """Add a comment; every comment of the alert afterwards."""
        return run(self.api.add_alert_comment(alert_id, text), self.transport.send)

    def run_hunting_query(self, query: str, *, timespan: str | None = None) -> HuntingResult:
        """Run KQL; the result's rows stream as they are read."""
        result: HuntingResult = run(self.api.run_hunting_query(query, timespan=timespan), self.transport.send)
        return result


class AsyncSecurityClient:
    """The same back end over the aiohttp transport: the same descriptions, awaited.

    :param api: the back end.
    :param transport: the aiohttp transport to the back end's origin.
    """

    def __init__(self, *, api: SecurityApi, transport: AsyncTransport) -> None:
        self.api = api
        self.transport = transport

    @property
    def name(self) -> str:
        """``graph`` or ``legacy``."""
        return self.api.name

    def list_incidents(
        self, query: IncidentQuery | None = None, /, **fields: Any
    ) -> AsyncIterator[dict[str, Any]]:
        """Incidents matching ``query``, a page at a time as you iterate (``async for``).

        The query is checked against the back end's rules now, before any call.
        """
        listing = self.api.incident_listing(IncidentQuery.of(query, **fields))
        return arun_listing(listing, self.transport.send)

    async def get_incident(self, incident_id: str, *, include_alerts: bool = True) -> dict[str, Any]:
        """One incident; :class:`~airflow_provider_mtp.errors.MTPNotFoundError` if unknown."""
        return await arun(
            self.api.get_incident(incident_id, include_alerts=include_alerts), self.transport.send
        )

    async def update_incident(
        self, incident_id: str, changes: Mapping[str, Any], *, comment: str | None = None
    ) -> dict[str, Any]:
        """Apply Graph-named ``changes`` and a comment; the incident afterwards."""
        return await arun(
            self.api.update_incident(incident_id, changes, comment=comment), self.transport.send
        )

    async def add_incident_comment(self, incident_id: str, text: str) -> list[dict[str, Any]]:
        """Add a comment; every comment of the incident afterwards."""
        return await arun(self.api.add_incident_comment(incident_id, text), self.transport.send)

    def list_alerts(self, query: AlertQuery | None = None, /, **fields: Any) -> AsyncIterator[dict[str, Any]]:
        """Alerts matching ``query``, each ``(id, lastUpdateDateTime)`` once (``async for``).

        The query is checked against the back end's rules now, before any call.
        """
        return arun_alert_listing(self.api.alert_listing(AlertQuery.of(query, **fields)), self.transport.send)

    async def get_alert(self, alert_id: str, *, incident_id: str | None = None) -> dict[str, Any]:
        """One alert; :class:`~airflow_provider_mtp.errors.MTPNotFoundError` if unknown."""
        return await arun(self.api.get_alert(alert_id, incident_id=incident_id), self.transport.send)

    async def update_alert(
        self, alert_id: str, changes: Mapping[str, Any], *, comment: str | None = None
    ) -> dict[str, Any]:
        """Apply Graph-named ``changes`` and a comment; the alert afterwards."""
        return await arun(self.api.update_alert(alert_id, changes, comment=comment), self.transport.send)

    async def add_alert_comment(self, alert_id: str, text: str) -> list[dict[str, Any]]:
        """Add a comment; every comment of the alert afterwards."""
        return await arun(self.api.add_alert_comment(alert_id, text), self.transport.send)

    async def run_hunting_query(self, query: str, *, timespan: str | None = None) -> AsyncHuntingResult:
        """Run KQL; ``async for row in result.rows`` streams them as they are read."""
        result: AsyncHuntingResult = await arun(
            self.api.run_hunting_query(query, timespan=timespan), self.transport.send
        )
        return result
