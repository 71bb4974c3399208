"""The HTTP client msal is given: Entra ID's calls retried below msal, failures never handed to it.

Every call msal makes for a token goes through :class:`EntraHttpClient`: the token ``POST``, the
OpenID configuration and instance discovery ``GET``, home realm discovery (``userrealm``) and the
managed identity endpoint's ``GET``. It retries what the API transport retries, with the same
budget (:data:`MAX_ATTEMPTS` attempts, waits up to :data:`MAX_WAIT_S`):

* **429**, waiting ``Retry-After`` (seconds or an HTTP date) or, without one, backoff with jitter;
* **500, 502, 503, 504** (``Retry-After`` honoured when sent). A token request is safe to repeat:
  a token issued twice harms nothing;
* **dropped connections** (reset or closed mid-reply, a body cut off), **timeouts** (connect and
  read; the read timeout is the connection's ``timeout``), and a ``2xx`` whose JSON is cut short.

Not retried, because they are configuration: a TLS certificate that does not verify
(``ca_bundle``), a proxy that refuses, a host that cannot be resolved or refuses connections
(``login_url``, ``cloud``). Those, and every ``4xx``, go to msal as today, so Entra's AADSTS codes
still name the field to fix.

Why below msal, and why a failure is raised rather than returned: msal 1.39 wraps its
``http_client`` in ``msal.throttled_http_client.ThrottledHttpClient`` (``ManagedIdentityClient``
in its own ``_ThrottledHttpClient``), which stores a ``429``/``5xx`` reply (or any reply with
``Retry-After``) for ``Retry-After`` seconds (5 s without one, up to an hour) and replays it,
without a request, to every later caller with the same URL, client and scope. The provider shares
one msal application per credential per process, so one stored ``503`` failed every hook and
trigger of that connection. This client never returns a status of 500 or more, nor a 429: after
the last attempt it raises :class:`EntraUnavailable` (a ``requests.RequestException``, which msal
lets through, and with which msal still falls back to a cached token that is aging but valid), so
the throttle cache never holds a failure and the next caller asks Entra ID again.

Each retry logs one INFO line with the method, host and path: never the query string, the body,
the headers or a token (the user name in a ``userrealm`` path is masked).
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import requests
import urllib3.exceptions

from airflow_provider_mtp.error_replies import ServiceError
from airflow_provider_mtp.errors import MTPTokenServiceError
from airflow_provider_mtp.retrying import Retryable, RetryBudget, retrying

log = logging.getLogger(__name__)

#: Attempts in all and the longest wait slept, as the API transport's defaults (``Transport``).
MAX_ATTEMPTS = RetryBudget.max_attempts
MAX_WAIT_S = RetryBudget.max_wait
_RETRIED_STATUSES = frozenset({500, 502, 503, 504})


@dataclass(frozen=True, kw_only=True)
class RetryPolicy:
    """How Entra ID calls are retried.

    :param max_attempts: attempts in all, the first included.
    :param max_wait: the longest wait slept between attempts; a longer ``Retry-After`` fails at once.
    :param backoff_base: the first backoff step, seconds (doubles per attempt).
    :param backoff_cap: the largest backoff step, seconds.
    :param sleep: how to wait (tests pass a fake).
    :param rng: random source for jitter.
    """

    max_attempts: int = MAX_ATTEMPTS
    max_wait: float = MAX_WAIT_S
    backoff_base: float = RetryBudget.backoff_base
    backoff_cap: float = RetryBudget.backoff_cap
    sleep: Callable[[float], None] = time.sleep
    rng: random.Random | None = None

    @property
    def budget(self) -> RetryBudget:
        """Attempts and waits, as every client of the provider counts them."""
        return RetryBudget(
            max_attempts=self.max_attempts,
            max_wait=self.max_wait,
            backoff_base=self.backoff_base,
            backoff_cap=self.backoff_cap,
            rng=self.rng,
        )


#: The policy of clients built without one (msal applications are built on first use): tests
#: replace it with one that sleeps for no time.
DEFAULT_POLICY = RetryPolicy()


class EntraUnavailable(requests.RequestException):
    """Entra ID (or the managed identity endpoint) kept failing, or asked for too long a wait.

    :param method: the HTTP method.
    :param where: host and path of the call (no query string).
    :param reason: the last failure, for the message.
    :param attempts: attempts made.
    :param managed_identity: the call went to the managed identity endpoint, not Entra ID.
    :param detail: the last error reply, if there was one.
    :param retry_after: the wait asked for when it was longer than the policy's ``max_wait``.
    :param throttled: the last failure was a 429.
    :param max_wait: the longest wait the client sleeps, for the message.
    """

    def __init__(
        self,
        *,
        method: str,
        where: str,
        reason: str,
        attempts: int,
        managed_identity: bool,
        detail: ServiceError | None = None,
        retry_after: float | None = None,
        throttled: bool = False,
        max_wait: float = MAX_WAIT_S,
    ) -> None:
        super().__init__(f"{method} {where}: {reason} after {attempts} attempt(s)")
        self.method = method
        self.where = where
        self.reason = reason
        self.attempts = attempts
        self.managed_identity = managed_identity
        self.detail = detail
        self.retry_after = retry_after
        self.throttled = throttled
        self.max_wait = max_wait

    def error(self, *, conn_id: str, auth_type: str, scrub: Callable[[str], str]) -> MTPTokenServiceError:
        """The task's error: which service was unavailable, after how many attempts, and to run later.

        :param conn_id: the connection, named in the message.
        :param auth_type: its auth type, named in the message.
        :param scrub: removes secrets from the service's own words.
        """
        host, _, path = self.where.partition("/")
        service = f"the managed identity endpoint ({host})" if self.managed_identity else f"Entra ID ({host})"
        if self.detail is None:
            said = self.reason
        else:
            message = scrub(self.detail.message or "").split(" Trace ID:")[0].strip()[:300]
            said = self.detail.label + (f' "{message}"' if message else "")
        call = f"{self.method} /{path}"
        plural = "s" if self.attempts != 1 else ""
        if self.retry_after is not None:
            what = (
                f"asked to wait {self.retry_after:.0f} s before the next token request ({call}: {said}); "
                f"that is longer than the {self.max_wait:.0f} s a token request waits"
            )
        elif self.throttled:
            what = f"throttled the token requests ({call}: {said}) after {self.attempts} attempt{plural}"
        else:
            what = f"was unavailable ({call}: {said}) after {self.attempts} attempt{plural}"
        kwargs: dict[str, Any] = self.detail.kwargs() if self.detail is not None else {}
        if kwargs.get("service_message"):
            kwargs["service_message"] = scrub(str(kwargs["service_message"]))
        return MTPTokenServiceError(
            f"Connection {conn_id!r} could not get a token ({auth_type}): {service} {what}. This is on "
            "the service's side, not a problem with the connection's settings or credentials: run the "
            "task again later.",
            retry_after=self.retry_after,
            **kwargs,
        )


class EntraHttpClient:
    """msal's ``http_client``: ``get``, ``post`` and ``close``, with retries, through the hook's session.

    Also puts back the ``login_url`` port that msal drops: msal keeps the authority's host name
    without its port (``canonicalize`` in msal/authority.py) and builds the home realm discovery URL
    from it (``Authority.user_realm_discovery``, ``https://{instance}/common/userrealm/...``), so
    with ``login_url=https://127.0.0.1:8443`` the password grant would ask port 443. Other URLs
    (from the OpenID configuration) keep theirs.

    :param session: the session that sends the requests (verification, proxy and timeout pinned).
    :param login_origin: the ``login_url``, when it names a port to put back.
    :param managed_identity: the calls go to the managed identity endpoint (named in messages).
    :param policy: the retry budget; ``None`` takes :data:`DEFAULT_POLICY` as it is now.
    """

    def __init__(
        self,
        *,
        session: requests.Session,
        login_origin: str | None = None,
        managed_identity: bool = False,
        policy: RetryPolicy | None = None,
    ) -> None:
        self.session = session
        self.login_origin = login_origin
        self.managed_identity = managed_identity
        self.policy = policy or DEFAULT_POLICY

    def get(self, url: str, **kwargs: Any) -> requests.Response:
        """msal's ``GET``: discovery documents, home realm, the managed identity endpoint."""
        return self._send("GET", url, kwargs)

    def post(self, url: str, **kwargs: Any) -> requests.Response:
        """msal's ``POST``: the token endpoint."""
        return self._send("POST", url, kwargs)

    def close(self) -> None:
        """The session belongs to the hook; msal must not close it."""

    def _send(self, method: str, url: str, kwargs: dict[str, Any]) -> requests.Response:
        url = self._restore_port(url)
        where = _where(url)
        policy = self.policy
        loop = retrying(policy.budget, where=f"{method} {where}", sleep=policy.sleep, logger=log)
        try:
            response: requests.Response = loop(self._attempt, method, url, where, kwargs)
        except Retryable as exc:
            raise self._unavailable(method, where, exc, attempts=policy.max_attempts) from exc.__cause__
        return response

    def _attempt(self, method: str, url: str, where: str, kwargs: dict[str, Any]) -> requests.Response:
        try:
            response = self.session.request(method, url, **kwargs)
        except (requests.exceptions.SSLError, requests.exceptions.ProxyError):
            raise  # configuration: ca_bundle, proxy
        except requests.exceptions.ConnectTimeout as exc:
            raise Retryable(_short(exc), kind="connection") from exc
        except requests.exceptions.ConnectionError as exc:
            if _never_connected(exc):
                raise  # the host does not resolve or refuses: login_url, cloud
            raise Retryable(_short(exc), kind="connection") from exc
        except (
            requests.exceptions.Timeout,
            requests.exceptions.ChunkedEncodingError,
            requests.exceptions.ContentDecodingError,
        ) as exc:
            raise Retryable(_short(exc), kind="connection") from exc
        status = response.status_code
        if status == 429 or status >= 500:
            detail = ServiceError.from_response(response)
            if status != 429 and status not in _RETRIED_STATUSES:
                # Not worth retrying, and never to be handed to msal's throttle cache.
                raise self._unavailable(
                    method, where, Retryable(detail.label, kind="service", detail=detail), attempts=1
                )
            wait = detail.retry_after
            if wait is not None and wait > self.policy.max_wait:
                raise EntraUnavailable(
                    method=method,
                    where=where,
                    reason=detail.label,
                    attempts=1,
                    managed_identity=self.managed_identity,
                    detail=detail,
                    retry_after=wait,
                    throttled=status == 429,
                    max_wait=self.policy.max_wait,
                )
            reason = detail.label + (f" (Retry-After {wait:g} s)" if wait is not None else "")
            raise Retryable(
                reason, kind="throttled" if status == 429 else "service", wait=wait, detail=detail
            )
        if 200 <= status < 300 and "json" in response.headers.get("Content-Type", "").lower():
            try:
                json.loads(response.content)
            except ValueError as exc:  # json.JSONDecodeError, UnicodeDecodeError
                response.close()
                raise Retryable(
                    f"reply cut off or malformed ({type(exc).__name__})", kind="connection"
                ) from exc
        return response

    def _unavailable(self, method: str, where: str, exc: Retryable, *, attempts: int) -> EntraUnavailable:
        return EntraUnavailable(
            method=method,
            where=where,
            reason=exc.reason,
            attempts=attempts,
            managed_identity=self.managed_identity,
            detail=exc.detail,
            throttled=exc.kind == "throttled",
        )

    def _restore_port(self, url: str) -> str:
        if not self.login_origin:
            return url
        origin = urlsplit(self.login_origin)
        parts = urlsplit(url)
        if (
            origin.port is not None
            and parts.scheme == "https"
            and parts.port is None
            and (parts.hostname or "").lower() == (origin.hostname or "").lower()
        ):
            return urlunsplit(parts._replace(netloc=origin.netloc))
        return url


def _where(url: str) -> str:
    """Host and path, for log lines and messages: no query string, and no user name."""
    parts = urlsplit(url)
    path = parts.path or "/"
    head, marker, _ = path.partition("/userrealm/")
    if marker:
        path = f"{head}{marker}***"
    return f"{parts.hostname or ''}{f':{parts.port}' if parts.port else ''}{path}"


def _never_connected(exc: requests.exceptions.ConnectionError) -> bool:
    """The host did not resolve or refused the connection: a wrong host or port, not a blip."""
    reason = getattr(exc.args[0], "reason", None) if exc.args else None
    return isinstance(reason, urllib3.exceptions.NewConnectionError)


def _short(exc: BaseException) -> str:
    """An exception's kind, and for urllib3's wrapped ones the underlying kind: never the URL."""
    inner = getattr(exc.args[0], "reason", None) if exc.args else None
    return f"{type(exc).__name__}: {type(inner).__name__}" if inner is not None else type(exc).__name__
