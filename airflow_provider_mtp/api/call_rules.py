"""The rules of a call to a Defender API, decided without I/O: where it may go, what a failure means.

Both transports (:mod:`~airflow_provider_mtp.api.transport` on requests,
:mod:`~airflow_provider_mtp.api.transport_async` on aiohttp) send a call and hand each outcome
here: a reply's status and body, a connection that failed before or after sending, a body cut off.
:class:`CallRules` answers with :class:`~airflow_provider_mtp.retrying.Retryable` (the retry loop
of :mod:`airflow_provider_mtp.retrying` then waits and tries again) or with the
:mod:`airflow_provider_mtp.errors` exception to raise, so both transports retry the same things,
wait the same time and fail with the same words. The API's name and the wording of its
permissions and token audience come from the back end (:class:`~airflow_provider_mtp.api.request.ApiIdentity`).

Retry policy (modelled on Airflow's dbt Cloud hook: 429, 5xx and connection errors)
-----------------------------------------------------------------------------------
Retried, with at most ``max_attempts`` attempts in all:

* **429**, and on a hunting call the one documented quota error (a message that *starts*
  ``You have exceeded processing resources allocated to this tenant.``, the CPU quota): the
  service did not act, so non-idempotent calls are retried too. The wait is the ``Retry-After``
  header (seconds or an HTTP date); else the reset time in the body (MTP's ``maximum allowed 45
  per 00:01:00`` waits out the window, ``again in <duration>`` that long); else exponential
  backoff with jitter. The body's reset time is read from these two only: any other error's text
  can quote the caller's query.
* **502, 503, 504**, and **500 with an empty message** (Graph's bare ``UnknownError``; the MTP
  docs say to retry a 500 only when it has no message): idempotent calls only, because a gateway
  error says nothing about whether the service acted. A 503 *with* ``Retry-After`` is the one
  exception: the service says it refused the work, so a comment or PATCH is retried too.
* **Connection failures**: any, for idempotent calls; for non-idempotent calls only those that
  happened before the request left (connect errors and connect timeouts).
* **Truncated or malformed 2xx bodies** (a dropped connection mid-body, a JSON decode error, a
  hunting stream cut off before its first row): idempotent calls only; a non-idempotent call
  whose reply was cut off fails and says the service may have acted.

Never retried: 400, 403, 404 and every other status. A hunting error that names a limit (rows,
result size, timeout) is not retried either: the same query hits it again.

Errors are told apart by status and error code, never by free text that may come from the
caller. Hunting errors are the exception the API forces: their codes are undocumented (a
``BadRequest`` for all of them), and their messages quote the KQL (``extraneous input '"timed
out"'``). So a hunting call (one that carries its ``query``) believes a quota or limit message
only when the message *starts* with the documented fixed text and that text is not in the query
it sent; every other 400 on it is an :class:`~airflow_provider_mtp.errors.MTPQueryError`, raised
after one request.

A wait the service asks for that is longer than ``max_wait`` is not slept at all:
:class:`~airflow_provider_mtp.errors.MTPThrottledError` is raised at once with ``retry_after``, so
a deferrable operator can wait on the triggerer instead of holding a worker slot.

A 401 is not part of the budget: the token is dropped from the cache (``tokens.invalidate``), a
new one is fetched and the call is sent once more; a second 401 is an
:class:`~airflow_provider_mtp.errors.MTPAuthError` that names the likely misconfiguration.

Every retry logs one INFO line: method, path (never the query string, never headers or tokens),
the reason, the attempt number and the wait.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass
from typing import Any, NoReturn
from urllib.parse import urljoin, urlsplit

from airflow_provider_mtp.api.request import ApiIdentity, ApiRequest
from airflow_provider_mtp.api.token_source import TokenSource
from airflow_provider_mtp.common.hosts import is_loopback
from airflow_provider_mtp.error_replies import (
    LIMIT_FIX,
    LIMIT_TEXT,
    ServiceError,
    hunting_quota_reset,
    limit_kind,
    parse_reset_from_message,
    required_roles,
)
from airflow_provider_mtp.errors import (
    MTPAuthError,
    MTPConfigError,
    MTPError,
    MTPLimitExceededError,
    MTPNotFoundError,
    MTPPermissionError,
    MTPQueryError,
    MTPServiceError,
    MTPThrottledError,
)
from airflow_provider_mtp.redact import netloc
from airflow_provider_mtp.retrying import Retryable, RetryBudget

__all__ = [
    "CallRules",
    "PendingCall",
    "TransportBase",
    "page_items",
    "short_reason",
    "untrusted_certificate_error",
]

log = logging.getLogger(__name__)

_GATEWAY_STATUSES = frozenset({502, 503, 504})


#: What a 404 adds about ids, by the kind of path.
_ID_HINTS = {
    "incidents": "incident ids are the same number on both APIs",
    "alerts": "alert ids look like da638501234567890123_393341063 and are the same on both APIs",
}


@dataclass(kw_only=True)
class PendingCall:
    """One request being made, through its retries: the request, where it goes, whether its token
    was already refreshed after a 401.

    :param request: the request.
    :param url: its absolute URL, checked by :meth:`CallRules.resolve`.
    :param refreshed: a 401 already got this call a new token.
    """

    request: ApiRequest
    url: str
    refreshed: bool = False

    @property
    def method(self) -> str:
        return self.request.method.upper()

    @property
    def params(self) -> Any:
        return self.request.params

    @property
    def json(self) -> Any:
        return self.request.json

    @property
    def idempotent(self) -> bool:
        return self.request.idempotent

    @property
    def permission(self) -> str | None:
        return self.request.permission

    @property
    def query(self) -> str | None:
        return self.request.query

    @property
    def log_path(self) -> str:
        """The path only: query strings can carry filters, skip tokens and other callers' data."""
        return urlsplit(self.url).path or "/"

    @property
    def where(self) -> str:
        """``METHOD /path``, for log lines."""
        return f"{self.method} {self.log_path}"

    @property
    def hunting(self) -> bool:
        """A hunting call: the back end said which KQL it carries."""
        return self.query is not None


@dataclass(frozen=True, kw_only=True)
class CallRules:
    """Where calls to one API origin may go and what each outcome means; shared by both transports.

    :param origin: the API origin; paths are appended to it.
    :param identity: the API's name and wording, from the back end.
    :param budget: attempts and waits.
    :param allowed_hosts: hosts besides the origin's own that links (``@odata.nextLink``) may point
        to; ``host`` allows any port, ``host:port`` that port only.
    :param logger: where the lines about retries go: the transport's module logger, so a log
        stays filterable by transport.
    """

    origin: str
    identity: ApiIdentity
    budget: RetryBudget
    allowed_hosts: frozenset[str] = frozenset()
    logger: logging.Logger = log

    def pending(self, request: ApiRequest) -> PendingCall:
        """A call about to be sent, its URL checked (:meth:`resolve`)."""
        return PendingCall(request=request, url=self.resolve(request.path))

    def next_link(self, body: Any, seen: set[str]) -> str | None:
        """The ``@odata.nextLink`` of a Graph page, checked; ``None`` on the last page.

        Shared with the async hook, so both refuse the same links with the same message.

        :param body: the page's decoded JSON.
        :param seen: links followed so far in this listing; the returned one is added.
        :raises MTPServiceError: the link points to another host or scheme, or was followed before
            (a loop).
        """
        link = body.get("@odata.nextLink") if isinstance(body, dict) else None
        if not link:
            return None
        link = urljoin(self.origin + "/", str(link))
        self._check_next_link(link)
        if link in seen:
            raise MTPServiceError(
                f"{self.identity.title} sent the same @odata.nextLink twice ({urlsplit(link).path}); stopped "
                "paging instead of looping. Narrow the listing (a time range) and run it again."
            )
        seen.add(link)
        return link

    def resolve(self, path_or_url: str) -> str:
        url = path_or_url if "://" in path_or_url else f"{self.origin}/{path_or_url.lstrip('/')}"
        self._check_scheme(url, what="the API URL")
        if not self._host_allowed(url):
            raise MTPConfigError(
                f"Refused to send the token to {netloc(url)}: it is not the API's host "
                f"({netloc(self.origin)}) nor an allowed host. Call paths under the API origin."
            )
        return url

    def _check_scheme(self, url: str, *, what: str) -> None:
        parts = urlsplit(url)
        if parts.scheme == "https":
            return
        if parts.scheme == "http" and is_loopback(parts.hostname):
            # Plain http only to this machine: a local gateway or a test server.
            return
        if parts.scheme == "http":
            raise MTPConfigError(
                f"Refused plain http to {parts.hostname} for {what}: tokens travel only over https "
                "(http is allowed to loopback addresses only). Use an https api_url."
            )
        raise MTPConfigError(f"{what} must be an https URL, got scheme {parts.scheme!r}")

    def _host_allowed(self, url: str) -> bool:
        parts = urlsplit(url)
        origin = urlsplit(self.origin)
        host = (parts.hostname or "").lower()
        same_origin = bool(origin.hostname) and (host, parts.scheme) == (
            (origin.hostname or "").lower(),
            origin.scheme,
        )
        if same_origin and _netloc(parts.scheme, host, parts.port) == _netloc(
            origin.scheme, host, origin.port
        ):
            return True
        for allowed in self.allowed_hosts:
            entry = urlsplit("//" + allowed.strip().lower())
            if entry.hostname != host:
                continue
            if entry.port is None or entry.port == (parts.port or (443 if parts.scheme == "https" else 80)):
                return True
        return False

    def _check_next_link(self, link: str) -> None:
        parts = urlsplit(link)
        allowed = ", ".join(sorted(self.allowed_hosts)) or "none"
        origin_scheme = urlsplit(self.origin).scheme
        problem = None
        if parts.scheme != "https" and not (parts.scheme == "http" and is_loopback(parts.hostname)):
            problem = f"its scheme is {parts.scheme!r}, not https"
        elif parts.scheme != origin_scheme:
            # Same host, other scheme: http where the API speaks https would send the token in clear
            # text (or, to a TLS port, fail the handshake on every retry).
            problem = f"its scheme is {parts.scheme!r} while the API is reached over {origin_scheme!r}"
        elif not self._host_allowed(link):
            problem = (
                f"its host {netloc(link)!r} is neither the API's ({netloc(self.origin)}) nor an "
                f"allowed host ({allowed})"
            )
        if problem:
            raise MTPServiceError(
                f"Refused to follow @odata.nextLink from {self.identity.name}: {problem}. The bearer token is "
                "only sent to the API's own host, so nothing was sent there. If a gateway in front of "
                "the API rewrites links, add its host to the allowed hosts."
            )

    # ----------------------------------------------------------------------------------------------
    # What a failed attempt means
    # ----------------------------------------------------------------------------------------------

    def token_refused(self, call: PendingCall, detail: ServiceError) -> None:
        """A 401: fail if the call already had a fresh token, else say that it gets one (also async)."""
        if call.refreshed:
            raise self.auth_error(call, detail)
        # A cached token can be revoked or expire early: drop it, fetch anew, try once more.
        call.refreshed = True
        self.logger.info(
            "%s %s: 401 %s; dropping the cached token and retrying once with a new one",
            call.method,
            call.log_path,
            detail.code or "Unauthorized",
        )

    def connection_failure(self, call: PendingCall, exc: BaseException, *, sent: bool) -> Exception:
        """A connection that failed: retryable, unless the call may have reached the service and
        must not run twice.

        :param call: the call.
        :param exc: what the HTTP client raised (only its kind is named).
        :param sent: whether the request may have left (not a connect error or connect timeout).
        """
        reason = short_reason(exc)
        if sent and not call.idempotent:
            return MTPServiceError(
                f"{call.method} {call.log_path}: the connection to {self.identity.name} failed after the call "
                f"was sent ({reason}). The change may have been applied: check before running it again."
            )
        return Retryable(reason, kind="connection")

    def cut_off(self, call: PendingCall, exc: BaseException) -> Exception:
        """A 2xx reply whose body ended early or is not whole JSON: retryable for idempotent calls.

        :param call: the call.
        :param exc: what reading the body raised (only its kind is named).
        """
        reason = f"reply cut off or malformed ({type(exc).__name__})"
        if not call.idempotent:
            return MTPServiceError(
                f"{call.method} {call.log_path}: the {reason} after {self.identity.name} accepted the call. "
                "The change may have been applied: check the incident before running it again (a "
                "repeated comment is added twice)."
            )
        return Retryable(reason, kind="connection")

    def fail(self, call: PendingCall, detail: ServiceError) -> NoReturn:
        """Raise the error a non-2xx reply means, or :class:`Retryable`.

        By status and code; the message is read only where the APIs leave no other way (a 429's
        reset time, and on a hunting call the documented quota and limit messages).
        """
        status, message = detail.status, detail.message
        if status == 429:
            reset = (
                detail.retry_after if detail.retry_after is not None else parse_reset_from_message(message)
            )
            self._throttled(call, detail, reset)
        if call.hunting:
            self._fail_hunting(call, detail)
        if status in _GATEWAY_STATUSES or (status == 500 and not message):
            if not call.idempotent and not (status == 503 and detail.retry_after is not None):
                raise MTPServiceError(
                    f"{call.method} {call.log_path} failed with {detail.label} {detail.quoted}; not retried, "
                    "because the service may have applied it. Check before running it again.",
                    **detail.kwargs(),
                )
            self._raise_if_too_long(call, detail, detail.retry_after)
            raise Retryable(
                _retry_reason(detail, detail.retry_after),
                kind="service",
                wait=detail.retry_after,
                detail=detail,
            )
        raise self._final_error(call, detail)

    def _fail_hunting(self, call: PendingCall, detail: ServiceError) -> None:
        """The hunting errors only a message tells apart: the CPU quota and the service limits.

        Their codes are undocumented, so each is known by its documented fixed start, and only
        when the query sent does not hold that text (a syntax error quotes the query).
        """
        quota, reset = hunting_quota_reset(detail.message, query=call.query)
        if quota:
            self._throttled(call, detail, detail.retry_after if detail.retry_after is not None else reset)
        kind = limit_kind(detail.message, query=call.query)
        if kind is not None:
            raise MTPLimitExceededError(
                f"The hunting query hit the service's {LIMIT_TEXT[kind]}: {detail.quoted}. {LIMIT_FIX[kind]}",
                limit=kind,
                **detail.kwargs(),
            )

    def _throttled(self, call: PendingCall, detail: ServiceError, wait: float | None) -> NoReturn:
        """The service throttled the call: wait ``wait`` seconds (backoff when ``None``) and retry."""
        self._raise_if_too_long(call, detail, wait)
        raise Retryable(_retry_reason(detail, wait), kind="throttled", wait=wait, detail=detail)

    def _raise_if_too_long(self, call: PendingCall, detail: ServiceError, wait: float | None) -> None:
        if wait is not None and self.budget.too_long(wait):
            raise MTPThrottledError(
                f"{self.identity.title} asked to wait {wait:.0f} s before calling {call.log_path} again "
                f"({detail.label} {detail.quoted}); that is longer than the {self.budget.max_wait:.0f} s a worker "
                "waits. Run the task later, lower its call rate, or use deferrable mode.",
                retry_after=wait,
                **detail.kwargs(),
            )

    # ----------------------------------------------------------------------------------------------
    # Errors
    # ----------------------------------------------------------------------------------------------

    def _final_error(self, call: PendingCall, detail: ServiceError) -> MTPError:
        status = detail.status
        where = f"{call.method} {call.log_path}"
        if status == 403:
            return MTPPermissionError(self._permission_text(call, detail), **detail.kwargs())
        if status == 404:
            return MTPNotFoundError(
                f"{where}: not found ({detail.label} {detail.quoted}). Check the id: it must exist in "
                f"this tenant; {_ID_HINTS['alerts' if '/alerts' in call.log_path else 'incidents']}.",
                **detail.kwargs(),
            )
        if status == 400 and call.hunting:
            return MTPQueryError(
                f"{self.identity.title} rejected the hunting query: {detail.quoted}. Fix the KQL and run it again.",
                **detail.kwargs(),
            )
        if 400 <= status < 500:
            return MTPError(
                f"{where}: {self.identity.name} rejected the request ({detail.label} {detail.quoted}). Check "
                "the arguments (filter, page size, field values).",
                **detail.kwargs(),
            )
        return MTPServiceError(
            f"{where}: {self.identity.name} failed ({detail.label} {detail.quoted}). This is on the service "
            "side; run the task again later.",
            **detail.kwargs(),
        )

    def _permission_text(self, call: PendingCall, detail: ServiceError) -> str:
        roles = required_roles(detail.message) or ([call.permission] if call.permission else [])
        head = (
            f"{self.identity.title} refused {call.method} {call.log_path} ({detail.label} {detail.quoted})."
        )
        if not roles:
            return (
                f"{head} The app or user lacks a permission for this call: check the app's API "
                f"permissions on {self.identity.name} and that an admin consented to them."
            )
        names = roles[0] if len(roles) == 1 else f"{roles[0]} (or {', '.join(roles[1:])})"
        return (
            f"{head} Grant the application permission {names} on {self.identity.permission_home} and admin consent, then let "
            "the token renew (up to an hour, or restart). With user_password sign-in, grant the "
            "delegated permission of that name instead."
        )

    def auth_error(self, call: PendingCall, detail: ServiceError) -> MTPAuthError:
        return MTPAuthError(
            f"{self.identity.title} refused the access token for {call.method} {call.log_path} ({detail.label} "
            f"{detail.quoted}), also a freshly fetched one. Check that the connection's api "
            f"({self.identity.dialect!r}) and cloud match the tenant: tokens must be for "
            f"{self.identity.token_audience}; or the app's "
            "secret, certificate or consent was revoked.",
            **detail.kwargs(),
        )

    def exhausted(self, call: PendingCall, exc: Retryable) -> MTPError:
        attempts = self.budget.attempts_text
        detail = exc.detail
        where = f"{call.method} {call.log_path}"
        if exc.kind == "throttled" and detail is not None:
            return MTPThrottledError(
                f"{where}: {self.identity.name} still throttled the call after {attempts} ({detail.label} "
                f"{detail.quoted}). Lower the call rate (hunting allows about 45 calls a minute per "
                "tenant) or use deferrable mode.",
                retry_after=exc.wait,
                **detail.kwargs(),
            )
        if detail is not None:
            return MTPServiceError(
                f"{where}: {self.identity.name} kept failing ({detail.label} {detail.quoted}) after {attempts}. "
                "This is on the service side; run the task again later (for incident listings with "
                "alerts, a smaller page size or no alerts may get through).",
                **detail.kwargs(),
            )
        return MTPServiceError(
            f"{where}: the connection to {self.identity.name} kept failing ({exc.reason}) after {attempts}. "
            "Check the network, proxy and api_url, then run the task again."
        )


class TransportBase:
    """What both transports hold: the origin, the token source and the rules of their calls.

    :param origin: the API origin (``https://graph.microsoft.com``, an MTP host, the emulator);
        paths are appended to it.
    :param tokens: hands out bearer tokens for this API.
    :param identity: the API's name and wording for messages, from the back end
        (:data:`airflow_provider_mtp.api.graph.IDENTITY`, :data:`airflow_provider_mtp.api.legacy.IDENTITY`).
    :param allowed_hosts: hosts besides the origin's own that links (``@odata.nextLink``) may point
        to; ``host`` allows any port, ``host:port`` that port only.
    :param max_attempts: attempts in all, the first included.
    :param max_wait: the longest wait slept between attempts; a longer wait asked for by the
        service raises :class:`~airflow_provider_mtp.errors.MTPThrottledError` at once.
    :param backoff_base: the first backoff step, seconds (doubles per attempt).
    :param backoff_cap: the largest backoff step, seconds.
    :param rng: random source for jitter.
    :param logger: the transport's module logger, for the lines about retries.
    """

    def __init__(
        self,
        *,
        origin: str,
        tokens: TokenSource,
        identity: ApiIdentity,
        allowed_hosts: frozenset[str] = frozenset(),
        # The one budget every client of the provider has (the Entra ID client's too).
        max_attempts: int = RetryBudget.max_attempts,
        max_wait: float = RetryBudget.max_wait,
        backoff_base: float = RetryBudget.backoff_base,
        backoff_cap: float = RetryBudget.backoff_cap,
        rng: random.Random | None = None,
        logger: logging.Logger = log,
    ) -> None:
        self.origin = origin.rstrip("/")
        self.tokens = tokens
        budget = RetryBudget(
            max_attempts=max_attempts,
            max_wait=max_wait,
            backoff_base=backoff_base,
            backoff_cap=backoff_cap,
            rng=rng,
        )
        self.rules = CallRules(
            origin=self.origin, identity=identity, allowed_hosts=allowed_hosts, budget=budget, logger=logger
        )

    @property
    def identity(self) -> ApiIdentity:
        """The API this transport talks to, as messages name it."""
        return self.rules.identity

    @property
    def max_wait(self) -> float:
        """The longest wait slept between attempts."""
        return self.rules.budget.max_wait


def _netloc(scheme: str, host: str, port: int | None) -> str:
    default = 443 if scheme == "https" else 80
    return f"{host}:{port or default}"


def _retry_reason(detail: ServiceError, wait: float | None) -> str:
    if detail.retry_after is not None:
        return f"{detail.label} (Retry-After {detail.retry_after:g} s)"
    if wait is not None:
        return f"{detail.label} (quota resets in {wait:g} s)"
    return detail.label


def untrusted_certificate_error(url: str, reason: str) -> MTPConfigError:
    """The server's TLS certificate did not verify: the fix is the connection's ``ca_bundle``.

    :param url: the URL called (only its host and port are named).
    :param reason: the failure's kind, never its full text (it can quote the URL).
    """
    return MTPConfigError(
        f"The TLS certificate of {netloc(url)} was not trusted ({reason}). "
        "Set the connection's ca_bundle to the PEM bundle that signs it."
    )


def page_items(body: Any, url: str) -> list[dict[str, Any]]:
    """The ``value`` list of an OData page, or an error saying the reply is not one."""
    if not isinstance(body, dict) or not isinstance(body.get("value"), list):
        raise MTPServiceError(
            f"The reply to GET {urlsplit(url).path} is not an OData collection (no 'value' list)."
        )
    return list(body["value"])


def short_reason(exc: BaseException) -> str:
    """An exception's kind, and for urllib3's wrapped ones the underlying kind: never the URL."""
    inner = getattr(exc.args[0], "reason", None) if exc.args else None
    return f"{type(exc).__name__}: {type(inner).__name__}" if inner is not None else type(exc).__name__
