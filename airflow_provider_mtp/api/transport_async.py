"""The async transport: the same calls as :mod:`~airflow_provider_mtp.api.transport`, sent with aiohttp.

Triggers poll from the triggerer's event loop, which must never block. This transport sends the
same :class:`~airflow_provider_mtp.api.request.ApiRequest` values as the sync one, in the same
retry loop (:func:`airflow_provider_mtp.retrying.aretrying`), and hands every outcome to the same
:class:`~airflow_provider_mtp.api.call_rules.CallRules`: only sending and reading differ. Tokens
come from the process-wide msal cache through ``asyncio.to_thread`` (msal is synchronous, and a
token request may wait on another thread's). A hunting reply streams: :class:`AsyncHuntingResult`
parses it chunk by chunk with the sync result's parser as ``async for`` reads the rows.
"""

from __future__ import annotations

import asyncio
import json
import logging
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from types import TracebackType
from typing import Any

import aiohttp
import yarl

from airflow_provider_mtp.api.call_rules import PendingCall, TransportBase, untrusted_certificate_error
from airflow_provider_mtp.api.models import CHUNK_SIZE, HuntingResult
from airflow_provider_mtp.api.request import ApiRequest, ReplyKind
from airflow_provider_mtp.error_replies import ReplyCutOff, ServiceError
from airflow_provider_mtp.errors import MTPError, MTPServiceError
from airflow_provider_mtp.retrying import Retryable, aretrying

__all__ = ["AsyncHuntingResult", "AsyncTransport"]

log = logging.getLogger(__name__)

#: What reading a 2xx body raises when the connection drops mid-way or the bytes are not JSON.
_BODY_ERRORS: tuple[type[BaseException], ...] = (
    ReplyCutOff,
    aiohttp.ClientPayloadError,
    aiohttp.ClientConnectionError,
    TimeoutError,
    ValueError,  # json.JSONDecodeError, UnicodeDecodeError
)


class AsyncTransport(TransportBase):
    """Authenticated, retrying HTTPS calls to one API origin, with aiohttp.

    :param client: the hook's aiohttp session.
    :param ssl_context: verifies the API host (the connection's ``ca_bundle``).
    :param proxy: proxy URL for the API calls; ``None`` leaves environment proxies in effect.
    :param asleep: how to wait between attempts (tests pass a fake).
    :param core: the origin, tokens (called on a thread), identity, allowed hosts and retry
        budget (:class:`~airflow_provider_mtp.api.call_rules.TransportBase`).
    """

    def __init__(
        self,
        *,
        client: aiohttp.ClientSession,
        ssl_context: ssl.SSLContext,
        proxy: str | None,
        asleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        **core: Any,
    ) -> None:
        super().__init__(logger=log, **core)
        self.client = client
        self.ssl_context = ssl_context
        self.proxy = proxy
        self.asleep = asleep

    async def atoken(self) -> str:
        """A token from the process-wide msal cache, fetched on a thread (msal blocks)."""
        return await asyncio.to_thread(self.tokens.token)

    async def send(self, request: ApiRequest) -> Any:
        """Send one described call with retries; its reply in the form ``request.reply`` asks for.

        ``json`` and ``body`` replies are read whole inside the retry loop; a ``hunting`` reply is
        an :class:`AsyncHuntingResult` that has read up to its first row.

        :param request: the call.
        :raises MTPError: what :class:`~airflow_provider_mtp.api.call_rules.CallRules` says the
            failure means.
        """
        if request.reply == "response":
            raise ValueError(
                "the async transport hands back json, body or hunting replies, not a raw response"
            )
        call = self.rules.pending(request)
        loop = aretrying(self.rules.budget, where=call.where, sleep=self.asleep, logger=self.rules.logger)
        try:
            return await loop(self._attempt, call, request.reply)
        except Retryable as exc:
            raise self.rules.exhausted(call, exc) from exc.__cause__

    async def close(self) -> None:
        """Close the aiohttp session."""
        await self.client.close()

    # ----------------------------------------------------------------------------------------------
    # One attempt
    # ----------------------------------------------------------------------------------------------

    async def _attempt(self, call: PendingCall, reply: ReplyKind) -> Any:
        response = await self._send_authenticated(call)
        if not 200 <= response.status < 300:
            async with response:
                self.rules.fail(call, await _service_error(response))
        try:
            if reply == "hunting":
                # The result owns the open reply from here and closes it when the rows run out.
                return await AsyncHuntingResult.from_aiohttp(response)
            async with response:
                data = await response.read()
                return _decoded(reply, data, response.headers.get("Content-Type", ""))
        except MTPError:
            response.close()
            raise
        except _BODY_ERRORS as exc:
            response.close()
            raise self.rules.cut_off(call, exc) from exc

    async def _send_authenticated(self, call: PendingCall) -> aiohttp.ClientResponse:
        token = await self.atoken()
        response = await self._send(call, token)
        if response.status != 401:
            return response
        async with response:
            self.rules.token_refused(call, await _service_error(response))
        await asyncio.to_thread(self.tokens.invalidate, token)
        response = await self._send(call, await self.atoken())
        if response.status == 401:
            async with response:
                raise self.rules.auth_error(call, await _service_error(response))
        return response

    async def _send(self, call: PendingCall, token: str) -> aiohttp.ClientResponse:
        try:
            return await self.client.request(
                call.method,
                # encoded=True: a next link is followed exactly as the service wrote it.
                yarl.URL(call.url, encoded=True),
                params=call.params,
                json=call.json,
                headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
                ssl=self.ssl_context,
                proxy=self.proxy,
                # A redirect could carry the token elsewhere; the APIs do not redirect these calls.
                allow_redirects=False,
            )
        except aiohttp.ClientConnectorCertificateError as exc:
            raise untrusted_certificate_error(call.url, type(exc).__name__) from exc
        except (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError) as exc:
            raise self.rules.connection_failure(call, exc, sent=False) from exc
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise self.rules.connection_failure(call, exc, sent=True) from exc


def _decoded(reply: ReplyKind, data: bytes, content_type: str) -> Any:
    if reply == "json":
        return json.loads(data)
    # "body": as the sync transport's call() replies: JSON decoded, other text as text, None if empty.
    if not data:
        return None
    if "json" in content_type.lower():
        return json.loads(data)
    return data.decode("utf-8", errors="replace")


async def _service_error(response: aiohttp.ClientResponse) -> ServiceError:
    """An error reply as the sync transport reads it; a body that cannot be read counts as empty."""
    try:
        text = await response.text(errors="replace")
    except _BODY_ERRORS:
        text = ""
    return ServiceError.from_reply(status=response.status, headers=response.headers, text=text)


class _AsyncRows:
    """``async for row in result.rows``: resumable, and an error (not silence) after the end."""

    def __init__(self, *, result: AsyncHuntingResult) -> None:
        self._result = result

    def __aiter__(self) -> _AsyncRows:
        if self._result.exhausted:
            raise RuntimeError(
                "AsyncHuntingResult.rows streams from the reply and can be read only once; it was "
                "already read to the end (or the result was closed). Keep the rows or run the query again."
            )
        return self

    async def __anext__(self) -> dict[str, Any]:
        return await self._result._anext_row()


class AsyncHuntingResult(HuntingResult):
    """A hunting result for async code: ``schema``, ``stats`` and ``async for row in result.rows``.

    The reply is parsed by :class:`~airflow_provider_mtp.api.models.HuntingResult`'s parser as the
    rows are read, chunk by chunk from aiohttp: the document never sits in memory whole. Both
    services send the schema (and the legacy ``Stats``) before the rows, so they are known once
    the result is built; a reply that put them after the rows would show them only after the rows
    were read. Close it with :meth:`aclose` or ``async with`` to drop rows not read.
    """

    def __init__(self, *, response: aiohttp.ClientResponse, chunk_size: int = CHUNK_SIZE) -> None:
        super().__init__(response=None, chunk_size=chunk_size)
        self._aresponse: aiohttp.ClientResponse | None = response
        self._achunks: AsyncIterator[bytes] = response.content.iter_chunked(chunk_size)
        self._eof = False
        self._arows = _AsyncRows(result=self)

    @classmethod
    async def from_aiohttp(
        cls, response: aiohttp.ClientResponse, *, chunk_size: int = CHUNK_SIZE
    ) -> AsyncHuntingResult:
        """Start parsing a 2xx hunting reply: reads up to the first row (or the end).

        :param response: the open reply, body unread.
        :param chunk_size: bytes read per parser step.
        :raises ReplyCutOff: the body ended early or is not JSON (the reply is closed).
        """
        result = cls(response=response, chunk_size=chunk_size)
        try:
            while not result._pending and not result._eof:
                await result._afeed()
        except BaseException:
            result.close()
            raise
        return result

    @property
    def schema(self) -> list[dict[str, str]]:
        """The columns, ``[{"name": ..., "type": ...}]`` in result order (as read so far)."""
        return list(self._schema or [])

    @property
    def stats(self) -> dict[str, Any] | None:
        """The legacy API's ``Stats`` (Graph sends none), as read so far."""
        return self._stats

    @property
    def rows(self) -> _AsyncRows:  # type: ignore[override]
        """The rows as dicts, streamed: ``async for row in result.rows`` (once)."""
        return self._arows

    async def aclose(self) -> None:
        """Close the reply; rows not read yet are dropped."""
        self.close()

    async def __aenter__(self) -> AsyncHuntingResult:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    async def _anext_row(self) -> dict[str, Any]:
        # Reading has begun: from now on a read-out reply is exhausted (as HuntingResult._next_row
        # does); before it, an empty result must still be iterable once.
        self._given_rows = None
        while not self._pending:
            if self._eof or self._closed:
                self.close()
                raise StopAsyncIteration
            try:
                await self._afeed()
            except ReplyCutOff as exc:
                self.close()
                raise MTPServiceError(
                    f"The hunting reply was cut off after {self.rows_read} rows ({exc}). The rows before "
                    "were delivered; run the query again to get all of them."
                ) from exc
        self.rows_read += 1
        return self._pending.popleft()[0]

    async def _afeed(self) -> None:
        try:
            chunk = await anext(self._achunks, None)
        except (aiohttp.ClientError, OSError, TimeoutError, ValueError) as exc:
            raise ReplyCutOff(f"the connection dropped: {type(exc).__name__}") from exc
        self._parse(chunk)

    def _release(self) -> None:
        response, self._aresponse = self._aresponse, None
        if response is not None:
            response.close()
