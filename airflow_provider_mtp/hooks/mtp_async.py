"""MTPAsyncHook: Defender XDR incidents and hunting for triggers and other async code, on aiohttp.

A trigger polls from the triggerer's event loop, which must never block. This hook is the twin of
:class:`~airflow_provider_mtp.hooks.mtp.MTPHook` and holds no API knowledge either: it reads the
connection, picks the same back end (:mod:`airflow_provider_mtp.api.graph` or
:mod:`airflow_provider_mtp.api.legacy`) and runs its descriptions with the aiohttp transport
(:class:`~airflow_provider_mtp.api.client.AsyncSecurityClient`), under the same rules as the sync
hook (:class:`~airflow_provider_mtp.api.call_rules.CallRules`). So both hooks ask the same questions
and fail the same way:

* the connection is read with ``BaseHook.aget_connection`` and ``Connection.aextra_dejson``
  (the sync accessors deadlock inside an event loop before Airflow 3.3.2) and validated by
  :class:`~airflow_provider_mtp.settings.ConnectionSettings`;
* tokens come from the same process-wide msal cache (:func:`airflow_provider_mtp.auth.get_token_source`),
  called through ``asyncio.to_thread``: msal is synchronous, and a token request may wait on
  another thread's.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncGenerator, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import aiohttp
from airflow.sdk import BaseHook

from airflow_provider_mtp.api.session import USER_AGENT, ssl_context
from airflow_provider_mtp.errors import MTPConfigError
from airflow_provider_mtp.hooks.mtp import (
    DEFAULT_MAX_WAIT_S,
    alert_changes,
    checked_comment,
    incident_changes,
)
from airflow_provider_mtp.hooks.shared_clients import SharedClient, acquire, release
from airflow_provider_mtp.off_loop import import_module

if TYPE_CHECKING:
    import requests

    from airflow_provider_mtp.api.alert_query import AlertQuery
    from airflow_provider_mtp.api.base import SecurityApi
    from airflow_provider_mtp.api.client import AsyncSecurityClient
    from airflow_provider_mtp.api.incident_query import IncidentQuery
    from airflow_provider_mtp.api.transport_async import AsyncHuntingResult, AsyncTransport
    from airflow_provider_mtp.settings import ConnectionSettings


class MTPAsyncHook(BaseHook):
    """Defender XDR incidents and advanced hunting for async code; the twin of ``MTPHook``.

    Lists, reads and updates incidents in the Graph shape and runs hunting queries on either back
    end, with the same arguments, retries and errors as :class:`~airflow_provider_mtp.hooks.mtp.MTPHook`.
    The aiohttp session (connector, TLS context, kept-alive sockets) is shared by every hook of the
    same connection in the same event loop (:mod:`~airflow_provider_mtp.hooks.shared_clients`),
    opened by the first and closed when the last one closes; close yours with :meth:`close` or
    ``async with``.

    :param mtp_conn_id: the ``mtp`` connection to use.
    :param api: ``graph`` or ``legacy`` to override the connection's back end.
    :param max_wait: the longest wait (seconds) the hook sleeps through when the service throttles;
        a longer one raises :class:`~airflow_provider_mtp.errors.MTPThrottledError` at once. Default 60 s.
    """

    conn_name_attr = "mtp_conn_id"
    default_conn_name = "mtp_default"
    conn_type = "mtp"
    hook_name = "Microsoft Defender XDR"

    def __init__(
        self,
        *,
        mtp_conn_id: str = default_conn_name,
        api: str | None = None,
        max_wait: float | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.mtp_conn_id = mtp_conn_id
        self.api = api
        self.max_wait = max_wait
        self._settings: ConnectionSettings | None = None
        self._client: AsyncSecurityClient | None = None
        # This hook's reference to the connection's shared client (None when closed).
        self._shared: SharedClient | None = None
        # Built on first use: two coroutines starting together must not open two sessions.
        self._opening: asyncio.Lock | None = None

    async def __aenter__(self) -> MTPAsyncHook:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Let go of the connection's shared session (the last hook to close closes it); the next
        call opens or joins one again."""
        self._client = None
        shared, self._shared = self._shared, None
        if shared is not None:
            await release(shared)

    # Connection and transport, built on first use.
    async def get_settings(self) -> ConnectionSettings:
        """The connection, read without blocking the event loop and validated once per hook."""
        if self._settings is None:
            from airflow.sdk.log import amask_secret

            from airflow_provider_mtp.settings import ConnectionSettings, parse_extra

            conn = await BaseHook.aget_connection(self.mtp_conn_id)
            # aextra_dejson turns JSON it cannot parse into {}: name the real mistake instead.
            parse_extra(self.mtp_conn_id, conn.extra)
            extra = dict(await _aextra(conn))
            if self.api:
                extra["api"] = self.api
            settings = ConnectionSettings.from_connection(
                conn_id=self.mtp_conn_id, login=conn.login, password=conn.password, extra=extra
            )
            for secret in settings.secrets():
                await amask_secret(secret)
            self._settings = settings
        return self._settings

    async def get_client(self) -> AsyncSecurityClient:
        """The connection's back end over the aiohttp transport, built on first use."""
        if self._client is None:
            if self._opening is None:
                self._opening = asyncio.Lock()
            async with self._opening:
                if self._client is None:
                    settings = await self.get_settings()
                    key = (self.mtp_conn_id, self.api, self.max_wait)
                    self._shared = await acquire(key, settings, self._open_client)
                    self._client = self._shared.client
        return self._client

    async def _open_client(self) -> tuple[AsyncSecurityClient, requests.Session]:
        from airflow_provider_mtp.api.client import AsyncSecurityClient
        from airflow_provider_mtp.api.graph import GraphSecurityApi
        from airflow_provider_mtp.api.legacy import LegacyMtpApi, token_tenant
        from airflow_provider_mtp.api.session import ProviderSession
        from airflow_provider_mtp.api.transport_async import AsyncTransport

        auth = await import_module("airflow_provider_mtp.auth")
        settings = await self.get_settings()
        if settings.proxy and urlsplit(settings.proxy).scheme.startswith("socks"):
            raise MTPConfigError(
                f"Connection {settings.conn_id!r}: proxy is a SOCKS proxy, which the async hook (aiohttp, "
                "used by triggers) cannot use. Fix: use an http:// or https:// proxy."
            )
        # Loading a CA bundle reads files; a bad one is named before any call, msal's included.
        context = await asyncio.to_thread(ssl_context, settings)
        # msal speaks requests: the same kind of session the sync hook lends it (ca_bundle, proxy).
        session = ProviderSession(
            ca_bundle=settings.ca_bundle, proxy=settings.proxy, timeout=settings.timeouts
        )
        tokens = await asyncio.to_thread(auth.get_token_source, settings, session)
        backend: SecurityApi = GraphSecurityApi()
        if settings.api != "graph":
            # The directory id for legacy incidents: the token's tid claim, as the sync hook reads it.
            tenant = token_tenant(await asyncio.to_thread(tokens.token))
            backend = LegacyMtpApi(portal=settings.cloud.portal, tenant=lambda: tenant)
        connect, read = settings.timeouts
        transport = AsyncTransport(
            client=aiohttp.ClientSession(
                headers={"User-Agent": USER_AGENT},
                timeout=aiohttp.ClientTimeout(total=None, sock_connect=connect, sock_read=read),
                # Like requests: proxies from the environment apply unless the connection names one.
                trust_env=True,
            ),
            ssl_context=context,
            proxy=settings.proxy,
            origin=settings.api_origin,
            tokens=tokens,
            identity=backend.identity,
            allowed_hosts=settings.allowed_hosts,
            max_wait=DEFAULT_MAX_WAIT_S if self.max_wait is None else float(self.max_wait),
        )
        return AsyncSecurityClient(api=backend, transport=transport), session

    async def _get_transport(self) -> AsyncTransport:
        return (await self.get_client()).transport

    # Incidents
    async def list_incidents(
        self, query: IncidentQuery | None = None, /, **filters: Any
    ) -> AsyncGenerator[dict[str, Any], None]:
        """Incidents in the Graph shape, fetched a page at a time as you iterate (``async for``).

        Same arguments and results as :meth:`MTPHook.list_incidents
        <airflow_provider_mtp.hooks.mtp.MTPHook.list_incidents>`: an
        :class:`~airflow_provider_mtp.api.incident_query.IncidentQuery` or its fields as keywords.
        Arguments are checked before any call. To stop early, ``aclose()`` the listing (or use
        ``contextlib.aclosing``).

        :param query: the query; ``None`` to build one from ``filters``.
        :param filters: the query's fields, when no query is given.
        """
        from airflow_provider_mtp.api.incident_query import IncidentQuery

        checked = IncidentQuery.of(query, **filters)
        client = await self.get_client()
        async for incident in client.list_incidents(checked):
            yield incident

    async def get_incident(self, incident_id: str | int, *, include_alerts: bool = True) -> dict[str, Any]:
        """One incident in the Graph shape; :class:`~airflow_provider_mtp.errors.MTPNotFoundError` if unknown.

        :param incident_id: the incident id.
        :param include_alerts: embed its alerts.
        """
        client = await self.get_client()
        return await client.get_incident(str(incident_id), include_alerts=include_alerts)

    async def update_incident(self, incident_id: str | int, **changes: Any) -> dict[str, Any]:
        """Change an incident; the same keyword arguments, checks and calls as :meth:`MTPHook.update_incident
        <airflow_provider_mtp.hooks.mtp.MTPHook.update_incident>` (``status``, ``assigned_to``,
        ``classification``, ``determination``, ``tags``, ``comment``).

        :param incident_id: the incident id.
        :param changes: the fields to change, and ``comment``: a comment to add (not idempotent:
            the service adds it again if called again).
        :return: the updated incident in the Graph shape.
        :raises MTPConfigError: before any call, for an unknown field or value.
        """
        checked = incident_changes(incident_id, **changes)
        client = await self.get_client()
        return await client.update_incident(str(incident_id), checked, comment=changes.get("comment"))

    async def add_incident_comment(self, incident_id: str | int, text: str) -> list[dict[str, Any]]:
        """Add a comment; every comment of the incident afterwards.

        :param incident_id: the incident id.
        :param text: the comment.
        """
        checked_comment(incident_id, text)
        client = await self.get_client()
        return await client.add_incident_comment(str(incident_id), text)

    # Alerts
    async def list_alerts(
        self, query: AlertQuery | None = None, /, **filters: Any
    ) -> AsyncGenerator[dict[str, Any], None]:
        """Alerts in the ``alerts_v2`` shape, fetched a page at a time as you iterate (``async for``).

        Same arguments and results as :meth:`MTPHook.list_alerts
        <airflow_provider_mtp.hooks.mtp.MTPHook.list_alerts>`. To stop early, ``aclose()`` it.

        :param query: the query; ``None`` to build one from ``filters``.
        :param filters: the query's fields, when no query is given.
        """
        from airflow_provider_mtp.api.alert_query import AlertQuery

        checked = AlertQuery.of(query, **filters)
        client = await self.get_client()
        async for alert in client.list_alerts(checked):
            yield alert

    async def get_alert(self, alert_id: str, *, incident_id: str | int | None = None) -> dict[str, Any]:
        """One alert; as :meth:`MTPHook.get_alert <airflow_provider_mtp.hooks.mtp.MTPHook.get_alert>`.

        :param alert_id: the alert id.
        :param incident_id: its incident; required on the legacy API.
        """
        client = await self.get_client()
        return await client.get_alert(alert_id, incident_id=None if incident_id is None else str(incident_id))

    async def update_alert(self, alert_id: str, **changes: Any) -> dict[str, Any]:
        """Change an alert (Graph only); the same keyword arguments, checks and calls as
        :meth:`MTPHook.update_alert <airflow_provider_mtp.hooks.mtp.MTPHook.update_alert>`
        (``status``, ``classification``, ``determination``, ``assigned_to``, ``comment``).

        :param alert_id: the alert id.
        :param changes: the fields to change, and ``comment`` (not idempotent).
        :return: the updated alert.
        """
        checked = alert_changes(alert_id, **changes)
        client = await self.get_client()
        return await client.update_alert(alert_id, checked, comment=changes.get("comment"))

    async def add_alert_comment(self, alert_id: str, text: str) -> list[dict[str, Any]]:
        """Add a comment to an alert (Graph only); every comment of the alert afterwards.

        :param alert_id: the alert id.
        :param text: the comment.
        """
        checked_comment(alert_id, text, method="add_alert_comment")
        client = await self.get_client()
        return await client.add_alert_comment(alert_id, text)

    # Hunting
    async def run_hunting_query(self, query: str, *, timespan: str | None = None) -> AsyncHuntingResult:
        """Run advanced-hunting KQL; ``async for row in result.rows`` streams the rows (once).

        :param query: the KQL.
        :param timespan: Graph only: an ISO 8601 interval or duration; on the legacy API put the
            time bounds in the KQL.
        """
        client = await self.get_client()
        return await client.run_hunting_query(query, timespan=timespan)


async def _aextra(conn: Any) -> Mapping[str, Any]:
    """The connection's extras, read and masked the async way.

    ``Connection.aextra_dejson`` exists from Airflow 3.3.2; before it, ``extra_dejson`` would call
    the sync ``mask_secret`` from the event loop, so the JSON is parsed here instead.
    """
    reader = getattr(conn, "aextra_dejson", None)
    if reader is not None:
        extra: Mapping[str, Any] = await reader()
        return extra
    from airflow.sdk.log import amask_secret

    parsed = json.loads(conn.extra) if conn.extra else {}
    await amask_secret(parsed)
    return parsed if isinstance(parsed, dict) else {}
