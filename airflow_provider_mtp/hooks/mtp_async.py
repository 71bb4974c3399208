"""MTPAsyncHook: the incident listing for triggers, on aiohttp, with the process's token cache.

A trigger polls from the triggerer's event loop, which must never block. This hook does the
same calls as :class:`~airflow_provider_mtp.hooks.mtp.MTPHook` with aiohttp, and shares with it
everything that is not I/O, so both hooks ask the same questions and fail the same way:

* the connection is read with ``BaseHook.aget_connection`` and ``Connection.aextra_dejson``
  (the sync accessors deadlock inside an event loop before Airflow 3.3.2) and validated by
  :class:`~airflow_provider_mtp.settings.ConnectionSettings`;
* tokens come from the same process-wide msal cache (:func:`airflow_provider_mtp.auth.get_token_source`),
  called through ``asyncio.to_thread``: msal is synchronous, and a token request may wait on
  another thread's;
* query parameters, paths and the legacy-to-Graph mapping come from ``api/graph.py``,
  ``api/legacy.py`` and ``api/mapping.py``;
* URL checks, retry rules and waits, and the error messages come from
  :class:`~airflow_provider_mtp.api.transport.Transport`, which :class:`_AsyncTransport` extends
  with an aiohttp request loop.
"""

from __future__ import annotations

import asyncio
import json
import ssl
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import aiohttp
import tenacity
import yarl
from airflow.sdk import BaseHook

from airflow_provider_mtp.api import graph, legacy, mapping
from airflow_provider_mtp.api.listing import Page, Piece, awalk
from airflow_provider_mtp.api.session import USER_AGENT, ssl_context
from airflow_provider_mtp.api.transport import (
    PendingCall,
    Retryable,
    ServiceError,
    Transport,
    untrusted_certificate_error,
)
from airflow_provider_mtp.errors import MTPConfigError
from airflow_provider_mtp.off_loop import import_module

if TYPE_CHECKING:
    import requests

    from airflow_provider_mtp.api.incident_query import IncidentQuery
    from airflow_provider_mtp.settings import ConnectionSettings

#: What reading a 2xx body raises when the connection drops mid-way or the bytes are not JSON.
_BODY_ERRORS: tuple[type[BaseException], ...] = (
    aiohttp.ClientPayloadError,
    aiohttp.ClientConnectionError,
    TimeoutError,
    ValueError,  # json.JSONDecodeError, UnicodeDecodeError
)


class MTPAsyncHook(BaseHook):
    """Defender XDR incidents for triggers and other async code; the twin of ``MTPHook``.

    Lists and reads incidents in the Graph shape on either back end, with the same arguments,
    retries and errors as :class:`~airflow_provider_mtp.hooks.mtp.MTPHook`. One aiohttp session
    per hook, opened on first use; close it with :meth:`close` or ``async with``.

    :param mtp_conn_id: the ``mtp`` connection to use.
    :param api: ``graph`` or ``legacy`` to override the connection's back end.
    """

    conn_name_attr = "mtp_conn_id"
    default_conn_name = "mtp_default"
    conn_type = "mtp"
    hook_name = "Microsoft Defender XDR"

    def __init__(
        self, *, mtp_conn_id: str = default_conn_name, api: str | None = None, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.mtp_conn_id = mtp_conn_id
        self.api = api
        self._settings: ConnectionSettings | None = None
        self._transport: _AsyncTransport | None = None
        self._tenant_id: str | None = None
        # Built on first use: two coroutines starting together must not open two sessions.
        self._opening: asyncio.Lock | None = None

    async def __aenter__(self) -> MTPAsyncHook:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the hook's sessions; the next call opens new ones."""
        transport, self._transport = self._transport, None
        if transport is not None:
            await transport.client.close()
            # The requests session only carries msal's token calls; it holds no open I/O of ours.
            transport.session.close()

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

    async def _get_transport(self) -> _AsyncTransport:
        if self._transport is None:
            if self._opening is None:
                self._opening = asyncio.Lock()
            async with self._opening:
                if self._transport is None:
                    self._transport = await self._open_transport()
        return self._transport

    async def _open_transport(self) -> _AsyncTransport:
        from airflow_provider_mtp.api.session import ProviderSession

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
        connect, read = settings.timeouts
        client = aiohttp.ClientSession(
            headers={"User-Agent": USER_AGENT},
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=connect, sock_read=read),
            # Like requests: proxies from the environment apply unless the connection names one.
            trust_env=True,
        )
        return _AsyncTransport(
            client=client,
            ssl_context=context,
            proxy=settings.proxy,
            origin=settings.api_origin,
            tokens=tokens,
            session=session,
            dialect="graph" if settings.api == "graph" else "legacy",
            allowed_hosts=settings.allowed_hosts,
            timeout=settings.timeouts,
        )

    async def _tenant(self, transport: _AsyncTransport) -> str | None:
        """The directory id for legacy incidents: the token's ``tid``, as the sync hook reads it."""
        if self._tenant_id is None:
            self._tenant_id = legacy.token_tenant(await transport.atoken())
        return self._tenant_id

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
        arguments = checked.to_json()
        for local in ("classification", "tags"):
            arguments.pop(local)
        settings = await self.get_settings()
        # The same pieces as the sync back ends ask for (api/listing.py): never offset paging.
        if settings.api == "graph":
            listing = graph.IncidentListing.build(**arguments)
            transport = await self._get_transport()
            path = graph.security_path("incidents")

            async def graph_page(piece: Piece) -> Page:
                body = await transport.aget_json(
                    path, params=listing.params(piece), permission=graph.READ_PERMISSION
                )
                return listing.page(body, path)

            async for incident in awalk(listing.plan(), graph_page):
                if checked.keeps(incident):
                    yield incident
            return
        legacy_listing = legacy.incident_list_query(**arguments)
        transport = await self._get_transport()
        tenant_id = await self._tenant(transport)

        def to_graph(item: Mapping[str, Any]) -> dict[str, Any]:
            return mapping.incident_to_graph(
                item, tenant_id=tenant_id, portal=settings.cloud.portal, include_alerts=legacy_listing.include_alerts
            )

        async def legacy_page(piece: Piece) -> Page:
            body = await transport.aget_json(
                legacy.INCIDENTS_PATH, params=legacy_listing.piece_params(piece), permission=legacy.READ_PERMISSION
            )
            return legacy_listing.page(body, to_graph)

        async for incident in awalk(legacy_listing.plan(), legacy_page):
            # Filtered after the plan saw the whole page: whether a piece fits is the raw page's length.
            if legacy_listing.keeps(incident) and checked.keeps(incident):
                yield incident

    async def get_incident(self, incident_id: str | int, *, include_alerts: bool = True) -> dict[str, Any]:
        """One incident in the Graph shape; :class:`~airflow_provider_mtp.errors.MTPNotFoundError` if unknown.

        :param incident_id: the incident id.
        :param include_alerts: embed its alerts.
        """
        transport = await self._get_transport()
        if transport.dialect == "graph":
            body = await transport.aget_json(
                graph.incident_path(incident_id),
                params={"$expand": "alerts"} if include_alerts else None,
                permission=graph.READ_PERMISSION,
            )
            return graph.normalised_incident(body)
        body = await transport.aget_json(
            f"{legacy.INCIDENTS_PATH}/{legacy.legacy_id(incident_id)}", permission=legacy.READ_PERMISSION
        )
        return mapping.incident_to_graph(
            body,
            tenant_id=await self._tenant(transport),
            portal=(await self.get_settings()).cloud.portal,
            include_alerts=include_alerts,
        )


class _AsyncTransport(Transport):
    """The sync transport's rules with an aiohttp request loop: the reads a trigger needs.

    URL and ``@odata.nextLink`` checks, the retry predicate, the waits (``Retry-After``, quota
    reset in the body, backoff with jitter), the 401 refresh and every error message are the
    inherited ones; only sending and reading differ. Only idempotent ``GET`` calls are offered:
    writes happen on workers, through the sync hook.

    :param client: the hook's aiohttp session.
    :param ssl_context: verifies the API host (the connection's ``ca_bundle``).
    :param proxy: proxy URL for the API calls; ``None`` leaves environment proxies in effect.
    :param asleep: how to wait between attempts (tests pass a fake).
    :param kwargs: :class:`~airflow_provider_mtp.api.transport.Transport`'s arguments; its
        ``session`` is the one msal sends token requests through.
    """

    def __init__(
        self,
        *,
        client: aiohttp.ClientSession,
        ssl_context: ssl.SSLContext,
        proxy: str | None,
        asleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.client = client
        self.ssl_context = ssl_context
        self.proxy = proxy
        self.asleep = asleep

    async def atoken(self) -> str:
        """A token from the process-wide msal cache, fetched on a thread (msal blocks)."""
        return await asyncio.to_thread(self.tokens.token)

    async def aget_json(
        self, path_or_url: str, *, params: Mapping[str, Any] | None = None, permission: str | None = None
    ) -> Any:
        """``GET`` with retries; the decoded JSON body, or an :class:`~airflow_provider_mtp.errors.MTPError`.

        :param path_or_url: a path under the origin, or an absolute URL on an allowed host.
        :param params: query parameters.
        :param permission: the permission named in a 403 when the service names none.
        """
        call = PendingCall(
            method="GET",
            url=self._resolve(path_or_url),
            params=params,
            json=None,
            idempotent=True,
            permission=permission,
            consume=_read_by_aiohttp,
        )
        retrying = tenacity.AsyncRetrying(
            stop=tenacity.stop_after_attempt(self.max_attempts),
            wait=self._wait,
            retry=tenacity.retry_if_exception_type(Retryable),
            before_sleep=lambda state: self._log_retry(call, state),
            sleep=self.asleep,
            reraise=True,
        )
        try:
            return await retrying(self._aattempt, call)
        except Retryable as exc:
            raise self._exhausted(call, exc) from exc.__cause__

    async def _aattempt(self, call: PendingCall) -> Any:
        response = await self._asend_authenticated(call)
        async with response:
            if not 200 <= response.status < 300:
                self._fail(call, await _service_error(response))
            try:
                return json.loads(await response.read())
            except _BODY_ERRORS as exc:
                # Every call here is a GET: a reply cut off mid-way is safe to ask for again.
                raise Retryable(
                    f"reply cut off or malformed ({type(exc).__name__})", kind="connection"
                ) from exc

    async def _asend_authenticated(self, call: PendingCall) -> aiohttp.ClientResponse:
        token = await self.atoken()
        response = await self._asend(call, token)
        if response.status != 401:
            return response
        async with response:
            self._token_refused(call, await _service_error(response))
        await asyncio.to_thread(self.tokens.invalidate, token)
        response = await self._asend(call, await self.atoken())
        if response.status == 401:
            async with response:
                raise self._auth_error(call, await _service_error(response))
        return response

    async def _asend(self, call: PendingCall, token: str) -> aiohttp.ClientResponse:
        try:
            return await self.client.request(
                call.method,
                # encoded=True: a next link is followed exactly as the service wrote it.
                yarl.URL(call.url, encoded=True),
                params=call.params,
                headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
                ssl=self.ssl_context,
                proxy=self.proxy,
                # A redirect could carry the token elsewhere; the APIs do not redirect these calls.
                allow_redirects=False,
            )
        except aiohttp.ClientConnectorCertificateError as exc:
            raise untrusted_certificate_error(call.url, type(exc).__name__) from exc
        except (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError) as exc:
            raise self._connection_failure(call, exc, sent=False) from exc
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise self._connection_failure(call, exc, sent=True) from exc


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


async def _service_error(response: aiohttp.ClientResponse) -> ServiceError:
    """An error reply as the sync transport reads it; a body that cannot be read counts as empty."""
    try:
        text = await response.text(errors="replace")
    except _BODY_ERRORS:
        text = ""
    return ServiceError.from_reply(status=response.status, headers=response.headers, text=text)


def _read_by_aiohttp(response: requests.Response) -> Any:
    """A sync transport's ``consume``; never called here, as the async loop reads replies itself."""
    raise NotImplementedError("the async transport reads replies with aiohttp")
