"""The sync transport: sends :class:`~airflow_provider_mtp.api.request.ApiRequest` values with requests.

It adds the bearer token, runs each call in the one retry loop (:func:`airflow_provider_mtp.retrying.retrying`)
and hands every outcome to :class:`~airflow_provider_mtp.api.call_rules.CallRules`, which decides
(without I/O, the same way for the async transport) whether to retry, how long to wait and which
error to raise; the retry policy is documented there. It knows nothing of incidents or of either
API's wording: the back end describes the call and names the API.

Its two pagers (``@odata.nextLink`` and ``$skip``) are for collections that do not change while
they are read; windowed incident listings never offset-page (:mod:`airflow_provider_mtp.api.listing`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any, TypeVar

import requests
import urllib3.exceptions

from airflow_provider_mtp.api.call_rules import (
    PendingCall,
    TransportBase,
    page_items,
    short_reason,
    untrusted_certificate_error,
)
from airflow_provider_mtp.api.models import HuntingResult
from airflow_provider_mtp.api.request import ApiRequest, ReplyKind
from airflow_provider_mtp.error_replies import (
    BODY_ERRORS,
    ReplyCutOff,
    ServiceError,
    hunting_quota_reset,
    limit_kind,
    parse_duration,
    parse_reset_from_message,
    parse_retry_after,
    required_roles,
)
from airflow_provider_mtp.errors import MTPConfigError, MTPError
from airflow_provider_mtp.retrying import Retryable, backoff_wait, retrying

# Re-exported: these lived here before the rules moved to call_rules and error_replies.
__all__ = [
    "BODY_ERRORS",
    "PendingCall",
    "ReplyCutOff",
    "Retryable",
    "ServiceError",
    "Transport",
    "backoff_wait",
    "hunting_quota_reset",
    "limit_kind",
    "page_items",
    "parse_duration",
    "parse_reset_from_message",
    "parse_retry_after",
    "required_roles",
    "untrusted_certificate_error",
]

log = logging.getLogger(__name__)

T = TypeVar("T")


class Transport(TransportBase):
    """Authenticated, retrying HTTPS calls to one API origin, with requests.

    :param session: the hook's session (verification, proxy and timeouts pinned; see
        :class:`~airflow_provider_mtp.api.session.ProviderSession`).
    :param timeout: per-request ``(connect, read)`` seconds; ``None`` leaves the session's default.
    :param sleep: how to wait (tests pass a fake).
    :param core: the origin, tokens, identity, allowed hosts and retry budget
        (:class:`~airflow_provider_mtp.api.call_rules.TransportBase`).
    """

    def __init__(
        self,
        *,
        session: requests.Session,
        timeout: float | tuple[float, float] | None = None,
        sleep: Callable[[float], None] = time.sleep,
        **core: Any,
    ) -> None:
        super().__init__(logger=log, **core)
        self.session = session
        self.timeout = timeout
        self.sleep = sleep

    # ----------------------------------------------------------------------------------------------
    # Public calls
    # ----------------------------------------------------------------------------------------------

    def send(self, request: ApiRequest) -> Any:
        """Send one described call with retries; its reply in the form ``request.reply`` asks for.

        :param request: the call.
        :raises MTPError: what :class:`~airflow_provider_mtp.api.call_rules.CallRules` says the
            failure means.
        """
        return self.fetch_request(request, consume=_CONSUMERS[request.reply])

    def fetch_request(self, request: ApiRequest, *, consume: Callable[[requests.Response], T]) -> T:
        """The general form of :meth:`send`: ``consume`` reads a 2xx reply inside the retry loop.

        ``consume`` gets the response with its body unread. Whatever it raises from
        :data:`~airflow_provider_mtp.error_replies.BODY_ERRORS` (raise
        :class:`~airflow_provider_mtp.error_replies.ReplyCutOff` for your own checks) counts as a
        reply cut off, and is retried for idempotent calls. It owns the response: close it or hand
        it on.

        :param request: the call.
        :param consume: turns the response into the result.
        """
        call = self.rules.pending(request)
        loop = retrying(self.rules.budget, where=call.where, sleep=self.sleep, logger=self.rules.logger)
        try:
            result: T = loop(self._attempt, call, consume)
        except Retryable as exc:
            raise self.rules.exhausted(call, exc) from exc.__cause__
        return result

    def request(
        self,
        method: str,
        path_or_url: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        stream: bool = False,
        idempotent: bool = True,
        permission: str | None = None,
    ) -> requests.Response:
        """Send one call with retries; a 2xx reply, or an :class:`~airflow_provider_mtp.errors.MTPError`.

        :param method: HTTP method.
        :param path_or_url: a path under the origin, or an absolute URL on an allowed host.
        :param params: query parameters.
        :param json: a JSON body.
        :param stream: leave the body unread (the caller must close the response); otherwise the
            body is read inside the retry loop, so a reply cut off mid-way is retried.
        :param idempotent: ``False`` for calls that must not run twice (a comment).
        :param permission: the permission the call needs, named in a 403's message when the
            service does not name one.
        """
        request = ApiRequest(
            method=method,
            path=path_or_url,
            params=params,
            json=json,
            idempotent=idempotent,
            permission=permission,
            reply="response",
        )
        return self.fetch_request(request, consume=_keep_open if stream else _read_body)

    def request_json(
        self,
        method: str,
        path_or_url: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        idempotent: bool = True,
        permission: str | None = None,
    ) -> Any:
        """Like :meth:`request`, returning the decoded JSON body; a truncated body is retried."""
        return self.send(
            ApiRequest(
                method=method,
                path=path_or_url,
                params=params,
                json=json,
                idempotent=idempotent,
                permission=permission,
            )
        )

    def iter_graph_pages(
        self, path: str, params: Mapping[str, Any] | None = None, *, permission: str | None = None
    ) -> Iterator[list[dict[str, Any]]]:
        """Pages of a Graph collection, following ``@odata.nextLink`` verbatim.

        A link to a host that is neither the origin's nor in ``allowed_hosts``, or in another
        scheme than the origin's, is refused before anything is sent to it (the bearer token would
        go with it). Incident listings do not page this way: a next link pages by offset, which
        skips incidents updated while the listing runs (see :mod:`airflow_provider_mtp.api.listing`).

        :param path: the collection's path (or URL) for the first page.
        :param params: query parameters of the first page; next links carry their own.
        :param permission: the permission named in a 403.
        :return: each page's ``value`` list, one page at a time.
        """
        url: str | None = path
        page_params: Mapping[str, Any] | None = params
        seen: set[str] = set()
        while url is not None:
            body = self.request_json("GET", url, params=page_params, permission=permission)
            yield page_items(body, url)
            url, page_params = self.rules.next_link(body, seen), None

    def iter_skip_pages(
        self,
        path: str,
        params: Mapping[str, Any] | None = None,
        *,
        page_size: int = 100,
        permission: str | None = None,
    ) -> Iterator[list[dict[str, Any]]]:
        """Pages of a collection walked with ``$top`` and ``$skip`` until a short page.

        Only for collections that do not change while they are read: on one that does, an item
        leaving an early page shifts a later one out of sight. Incident listings use
        :mod:`airflow_provider_mtp.api.listing` instead.

        :param path: the collection's path.
        :param params: query parameters besides ``$top`` and ``$skip``.
        :param page_size: ``$top``; a page shorter than this is the last.
        :param permission: the permission named in a 403.
        :return: each page's ``value`` list, one page at a time.
        """
        if page_size < 1:
            raise MTPConfigError(f"page_size must be at least 1, got {page_size}")
        skip = 0
        while True:
            page_params = {**(params or {}), "$top": page_size, "$skip": skip}
            body = self.request_json("GET", path, params=page_params, permission=permission)
            items = page_items(body, path)
            yield items
            if len(items) < page_size:
                return
            skip += len(items)

    # ----------------------------------------------------------------------------------------------
    # One attempt
    # ----------------------------------------------------------------------------------------------

    def _attempt(self, call: PendingCall, consume: Callable[[requests.Response], T]) -> T:
        response = self._send_authenticated(call)
        if not 200 <= response.status_code < 300:
            detail = ServiceError.from_response(response)
            # An error's traceback keeps this frame alive, and a response left in it pins its
            # socket open (urllib3 holds a reference) until the garbage collector runs.
            del response
            self.rules.fail(call, detail)
        try:
            return consume(response)
        except MTPError:
            response.close()
            del response
            raise
        except BODY_ERRORS as exc:
            response.close()
            del response
            raise self.rules.cut_off(call, exc) from exc
        except BaseException:
            response.close()
            del response
            raise

    def _send_authenticated(self, call: PendingCall) -> requests.Response:
        token = self.tokens.token()
        response = self._send(call, token)
        if response.status_code != 401:
            return response
        detail = ServiceError.from_response(response)
        del response  # see _attempt: not to be pinned by a traceback
        self.rules.token_refused(call, detail)
        self.tokens.invalidate(token)
        retried = self._send(call, self.tokens.token())
        if retried.status_code == 401:
            detail = ServiceError.from_response(retried)
            del retried
            raise self.rules.auth_error(call, detail)
        return retried

    def _send(self, call: PendingCall, token: str) -> requests.Response:
        if getattr(self.session, "verify", True) is False:
            raise MTPConfigError(
                "Certificate verification is switched off on the session; refusing to send a token. "
                "Point ca_bundle at the PEM bundle that signs the server's certificate instead."
            )
        try:
            return self.session.request(
                call.method,
                call.url,
                params=call.params,
                json=call.json,
                headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
                timeout=self.timeout,
                stream=True,
                # A redirect could carry the token elsewhere; the APIs do not redirect these calls.
                allow_redirects=False,
            )
        except requests.exceptions.SSLError as exc:
            if "certificate" in str(exc).lower():
                raise untrusted_certificate_error(call.url, short_reason(exc)) from exc
            raise self.rules.connection_failure(call, exc, sent=False) from exc
        except requests.exceptions.ConnectTimeout as exc:
            raise self.rules.connection_failure(call, exc, sent=False) from exc
        except requests.exceptions.ConnectionError as exc:
            raise self.rules.connection_failure(call, exc, sent=not _before_send(exc)) from exc
        except requests.exceptions.Timeout as exc:  # read timeout: the service may be working on it
            raise self.rules.connection_failure(call, exc, sent=True) from exc


def _read_body(response: requests.Response) -> requests.Response:
    # Reading inside the retry loop makes a body cut off mid-way a retryable failure.
    _ = response.content
    return response


def _keep_open(response: requests.Response) -> requests.Response:
    return response


def _read_json(response: requests.Response) -> Any:
    try:
        return response.json()
    finally:
        response.close()


def _reply_body(response: requests.Response) -> Any:
    """A 2xx reply's body: JSON decoded, other text as text, ``None`` if empty."""
    try:
        if not response.content:
            return None
        if "json" in response.headers.get("Content-Type", "").lower():
            return response.json()
        return response.text
    finally:
        response.close()


_CONSUMERS: dict[ReplyKind, Callable[[requests.Response], Any]] = {
    "json": _read_json,
    "body": _reply_body,
    "hunting": HuntingResult.from_response,
    "response": _read_body,
}


def _before_send(exc: requests.exceptions.ConnectionError) -> bool:
    """True when the connection failed before any byte of the request left (safe to resend)."""
    reason = getattr(exc.args[0], "reason", None) if exc.args else None
    return isinstance(reason, urllib3.exceptions.NewConnectionError | urllib3.exceptions.ConnectTimeoutError)
