"""Moves bytes between a back end and one Defender API: tokens, retries, errors, paging.

The transport knows nothing of incidents. It adds the bearer token, retries what is safe to
retry, turns failures into the :mod:`airflow_provider_mtp.errors` family with messages that name
the fix. Its two pagers (``@odata.nextLink`` and ``$skip``) are for collections that do not
change while they are read; windowed incident listings never offset-page
(:mod:`airflow_provider_mtp.api.listing`).

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
* **Truncated or malformed 2xx bodies** (``ChunkedEncodingError``, ``IncompleteRead``, a JSON
  decode error, a hunting stream cut off before its first row): idempotent calls only; a
  non-idempotent call whose reply was cut off fails and says the service may have acted.

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

import email.utils
import http.client
import json
import logging
import random
import re
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, NoReturn, TypeVar
from urllib.parse import urljoin, urlsplit

import requests
import tenacity
import urllib3.exceptions

from airflow_provider_mtp.api.token_source import TokenSource
from airflow_provider_mtp.common.durations import leading_iso_duration
from airflow_provider_mtp.common.hosts import is_loopback
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

log = logging.getLogger(__name__)

Dialect = Literal["graph", "legacy"]
T = TypeVar("T")

_API_NAMES: dict[str, str] = {"graph": "Microsoft Graph", "legacy": "the Microsoft Threat Protection API"}
_GATEWAY_STATUSES = frozenset({502, 503, 504})


class ReplyCutOff(Exception):
    """A 2xx reply body ended early or is not valid JSON; raised by consumers to ask for a retry.

    :param message: what was wrong with the body.
    """


#: What reading a 2xx body raises when the connection drops or the bytes are not whole JSON.
BODY_ERRORS: tuple[type[BaseException], ...] = (
    ReplyCutOff,
    requests.exceptions.ChunkedEncodingError,
    requests.exceptions.ContentDecodingError,
    requests.exceptions.ConnectionError,
    http.client.IncompleteRead,
    urllib3.exceptions.HTTPError,
    ValueError,  # json.JSONDecodeError and requests' JSONDecodeError
)


# --------------------------------------------------------------------------------------------------
# How long the service asks us to wait
# --------------------------------------------------------------------------------------------------

_TIMESPAN = r"(?:(\d+)\.)?(\d{1,2}):(\d{2}):(\d{2}(?:\.\d+)?)"
_MTP_WINDOW_RE = re.compile(r"maximum allowed\s+\d+\s+per\s+" + _TIMESPAN, re.IGNORECASE)
_AGAIN_IN_RE = re.compile(r"again in\s+(.+)", re.IGNORECASE)
_TIMESPAN_RE = re.compile(r"^\s*" + _TIMESPAN)
_UNIT_RE = re.compile(
    r"(\d+(?:\.\d+)?)\s*(milliseconds?|ms|days?|d|hours?|hrs?|h|minutes?|mins?|m|seconds?|secs?|s)\b",
    re.IGNORECASE,
)
_UNIT_SECONDS = {"ms": 0.001, "mi": 0.001, "d": 86400.0, "h": 3600.0, "m": 60.0, "s": 1.0}


def _timespan_seconds(match: re.Match[str]) -> float:
    days, hours, minutes, seconds = match.groups()
    return int(days or 0) * 86400.0 + int(hours) * 3600.0 + int(minutes) * 60.0 + float(seconds)


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: delta seconds or an HTTP date.

    :param value: the header value; ``None`` or unreadable gives ``None``.
    :param now: the current time, for HTTP dates (default: the wall clock).
    :return: seconds, never negative; ``None`` when the header says nothing usable.
    """
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def parse_duration(text: str) -> float | None:
    """Seconds in a duration at the start of ``text``.

    Accepts a .NET time span (``00:05:00``, ``1.00:00:00``), ISO 8601 (``PT5M``) and words
    (``5 seconds``, ``2 minutes and 30 seconds``, ``1h 5m``).

    :param text: the text, e.g. what follows ``again in``.
    :return: seconds, or ``None`` when no duration leads the text.
    """
    span = _TIMESPAN_RE.match(text)
    if span:
        return _timespan_seconds(span)
    iso = leading_iso_duration(text)
    if iso is not None:
        return iso.total_seconds()
    total, found, position = 0.0, False, 0
    for unit in _UNIT_RE.finditer(text):
        # Only a run of "<n> <unit>" pairs joined by spaces, commas or "and" counts as one duration.
        gap = text[position : unit.start()].strip(" ,").lower()
        if found and gap not in ("", "and"):
            break
        if not found and gap:
            break
        name = unit.group(2).lower()
        key = "ms" if name.startswith(("ms", "milli")) else name[0]
        total += float(unit.group(1)) * _UNIT_SECONDS[key]
        found, position = True, unit.end()
    return total if found else None


def parse_reset_from_message(message: str | None) -> float | None:
    """Seconds until a quota resets, read from a **429**'s error message.

    * MTP: ``API calls quota exceeded! maximum allowed 45 per 00:01:00`` gives the window (60 s):
      waiting it out is the only safe reading, as the body does not say when the window started.
    * Hunting CPU quota: ``You can run queries again in <duration>.``

    Only a 429's body is read this way (a 429 never quotes the caller's query); for the CPU quota
    on another status see :func:`hunting_quota_reset`.

    :param message: the service's error message.
    :return: seconds, or ``None`` when the message names no reset time.
    """
    if not message:
        return None
    window = _MTP_WINDOW_RE.search(message)
    if window:
        return _timespan_seconds(window)
    again = _AGAIN_IN_RE.search(message)
    if again:
        return parse_duration(again.group(1))
    return None


def backoff_wait(attempt: int, *, base: float, cap: float, rng: random.Random | None = None) -> float:
    """Exponential backoff with "equal jitter": half the step fixed, half random.

    The fixed half keeps a floor under the wait (full jitter can retry at once); the random half
    spreads out many workers that failed together.

    :param attempt: the attempt that just failed, from 1.
    :param base: the first step, seconds.
    :param cap: the largest step, seconds.
    :param rng: random source (tests pass a seeded one).
    """
    step = min(cap, base * 2 ** max(0, attempt - 1))
    return step / 2 + (rng or random).uniform(0, step / 2)


# --------------------------------------------------------------------------------------------------
# Error bodies
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class ServiceError:
    """What an error reply says, in either back end's shape.

    :param status: the HTTP status.
    :param code: ``error.code`` (Graph may send ``""``).
    :param message: ``error.message``, unchanged.
    :param request_id: Graph's ``request-id`` header or ``innerError``, or MTP's ``target``.
    :param retry_after: the ``Retry-After`` header, seconds.
    """

    status: int
    code: str | None
    message: str | None
    request_id: str | None
    retry_after: float | None

    @classmethod
    def from_response(cls, response: requests.Response) -> ServiceError:
        """Read (and close) an error reply; a body that is not the usual JSON is kept as text."""
        try:
            text = response.text
        except BODY_ERRORS:
            text = ""
        finally:
            response.close()
        return cls.from_reply(status=response.status_code, headers=response.headers, text=text)

    @classmethod
    def from_reply(cls, *, status: int, headers: Mapping[str, str], text: str) -> ServiceError:
        """An error reply already read, from any HTTP client (the async hook uses aiohttp).

        :param status: the HTTP status.
        :param headers: the reply's headers, looked up case-insensitively.
        :param text: the decoded body; ``""`` if it could not be read.
        """
        code: str | None = None
        message: str | None = None
        request_id = headers.get("request-id") or headers.get("x-ms-request-id")
        try:
            body = json.loads(text) if text else None
        except ValueError:
            body = None
        error = body.get("error") if isinstance(body, dict) else None
        if isinstance(error, dict):
            code = None if error.get("code") is None else str(error.get("code"))
            message = None if error.get("message") is None else str(error.get("message"))
            inner = error.get("innerError") or error.get("innererror")
            if not request_id and isinstance(inner, dict):
                request_id = inner.get("request-id") or inner.get("requestId")
            if not request_id and error.get("target"):
                request_id = str(error["target"])
        elif isinstance(error, str):  # OAuth-style {"error": "...", "error_description": "..."}
            code, message = error, str(body.get("error_description") or "") if isinstance(body, dict) else ""
        elif text.strip():
            message = text.strip()[:500]
        return cls(
            status=status,
            code=code,
            message=message,
            request_id=request_id,
            retry_after=parse_retry_after(headers.get("Retry-After")),
        )

    @property
    def label(self) -> str:
        """``429 TooManyRequests`` or ``500`` when there is no code."""
        return f"{self.status} {self.code}" if self.code else str(self.status)

    @property
    def quoted(self) -> str:
        """The service's message in quotes, or a note that it sent none."""
        return f'"{self.message}"' if self.message else "(no message)"

    def kwargs(self) -> dict[str, Any]:
        """The fields every :class:`MTPError` carries."""
        return {
            "status": self.status,
            "code": self.code,
            "service_message": self.message,
            "request_id": self.request_id,
        }


_ROLES_RE = re.compile(r"required roles:\s*(.+?)(?:,\s*application roles|\.\s*$|$)", re.IGNORECASE)
#: The hunting limit errors, by the documented fixed start of their message (defender-api.md
#: section 7; the MDE sister API's result-size message; the emulator's row-limit message). The
#: real API's codes for them are undocumented, so the text is all there is; anchored at the start,
#: because a message that quotes the query (a syntax error) starts with the service's own words.
_LIMITS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("timeout", re.compile(r"\s*(Query exceeded the timeout period)\b", re.IGNORECASE)),
    ("size", re.compile(r"\s*(Result size limit exceeded)\b", re.IGNORECASE)),
    ("size", re.compile(r"\s*(Query execution has exceeded the allowed result size)\b", re.IGNORECASE)),
    ("rows", re.compile(r"\s*(Query result exceeds the [\d,.]+[- ]row limit)\b", re.IGNORECASE)),
)
#: The one documented quota error that is not a 429: the hunting CPU quota (section 7).
_CPU_QUOTA_RE = re.compile(
    r"\s*(You have exceeded processing resources allocated to this tenant)\b\.?"
    r"(?:\s*You can run queries again in\s+(.*))?",
    re.IGNORECASE | re.DOTALL,
)
_SPACES_RE = re.compile(r"\s+")


def _in_query(text: str, query: str | None) -> bool:
    """True when the service's ``text`` also occurs in the query sent: it may be the caller's words."""
    if not query:
        return False
    return _SPACES_RE.sub(" ", text).casefold() in _SPACES_RE.sub(" ", query).casefold()


def limit_kind(message: str | None, *, query: str | None = None) -> str | None:
    """``rows``, ``size`` or ``timeout`` when a hunting error is a service limit's.

    :param message: the service's error message; it must start with the limit's documented text.
    :param query: the KQL that was sent: a message whose limit text the query holds is not
        believed (the service may be quoting the query).
    """
    if not message:
        return None
    for kind, pattern in _LIMITS:
        match = pattern.match(message)
        if match and not _in_query(match.group(1), query):
            return kind
    return None


def hunting_quota_reset(message: str | None, *, query: str | None = None) -> tuple[bool, float | None]:
    """Whether a hunting error is the CPU quota's, and the seconds until it resets if it says.

    The message must start with the documented ``You have exceeded processing resources allocated
    to this tenant.``; the reset time is the ``You can run queries again in <duration>`` right
    after it.

    :param message: the service's error message.
    :param query: the KQL that was sent: a message whose quota text the query holds is not believed.
    :return: ``(is the quota error, seconds or None)``.
    """
    match = _CPU_QUOTA_RE.match(message or "")
    if match is None or _in_query(match.group(1), query):
        return False, None
    return True, parse_duration(match.group(2)) if match.group(2) else None


def required_roles(message: str | None) -> list[str]:
    """Permissions named by ``... API required roles: A,B, application roles: ...``."""
    match = _ROLES_RE.search(message or "")
    if not match:
        return []
    return [role.strip() for role in match.group(1).split(",") if role.strip()]


# --------------------------------------------------------------------------------------------------
# The transport
# --------------------------------------------------------------------------------------------------


class Retryable(Exception):
    """One failed attempt that may be retried.

    :param reason: what failed, for the log line (no query strings, no secrets).
    :param kind: ``throttled``, ``service`` or ``connection``: which error to raise when retries run out.
    :param wait: the wait the service asked for, seconds; ``None`` means backoff.
    :param detail: the error reply, if there was one.
    """

    def __init__(
        self, reason: str, *, kind: str, wait: float | None = None, detail: ServiceError | None = None
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.kind = kind
        self.wait = wait
        self.detail = detail


def retry_wait(
    state: tenacity.RetryCallState,
    *,
    max_wait: float,
    backoff_base: float,
    backoff_cap: float,
    rng: random.Random | None = None,
) -> float:
    """tenacity's wait before the next attempt, for the API transports and the Entra ID client.

    The wait the failed attempt asked for (:attr:`Retryable.wait`: ``Retry-After`` or a quota's
    reset time), with a little jitter on top so that workers throttled together do not come back
    in the same instant, never past ``max_wait``; :func:`backoff_wait` when it asked for none.

    :param state: tenacity's state after the failed attempt.
    :param max_wait: the longest wait, seconds.
    :param backoff_base: the first backoff step, seconds.
    :param backoff_cap: the largest backoff step, seconds.
    :param rng: random source for jitter.
    """
    exc = state.outcome.exception() if state.outcome else None
    asked = exc.wait if isinstance(exc, Retryable) else None
    if asked is None:
        return backoff_wait(state.attempt_number, base=backoff_base, cap=backoff_cap, rng=rng)
    jitter = (rng or random).uniform(0, min(1.0, asked * 0.1))
    return min(max_wait, asked + jitter)


@dataclass(kw_only=True)
class PendingCall:
    """One request being made, through its retries: what to send and how to treat a failure."""

    method: str
    url: str
    params: Mapping[str, Any] | None
    json: Any
    idempotent: bool
    permission: str | None
    consume: Callable[[requests.Response], Any]
    refreshed: bool = False
    #: The KQL a hunting call carries, set by the back end: it makes a 400 a query error, and
    #: service text it holds is not believed to be the service's own.
    query: str | None = None

    @property
    def log_path(self) -> str:
        """The path only: query strings can carry filters, skip tokens and other callers' data."""
        return urlsplit(self.url).path or "/"

    @property
    def hunting(self) -> bool:
        """A hunting call: the back end said which KQL it carries."""
        return self.query is not None


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


def _netloc(scheme: str, host: str, port: int | None) -> str:
    default = 443 if scheme == "https" else 80
    return f"{host}:{port or default}"


class Transport:
    """Authenticated, retrying HTTPS calls to one API origin.

    :param origin: the API origin (``https://graph.microsoft.com``, an MTP host, the emulator);
        paths are appended to it.
    :param tokens: hands out bearer tokens for this API.
    :param session: the hook's session (verification, proxy and timeouts pinned; see
        :class:`~airflow_provider_mtp.api.session.ProviderSession`).
    :param dialect: ``graph`` or ``legacy``: which API the messages name.
    :param allowed_hosts: hosts besides the origin's own that links (``@odata.nextLink``) may point
        to; ``host`` allows any port, ``host:port`` that port only.
    :param timeout: per-request ``(connect, read)`` seconds; ``None`` leaves the session's default.
    :param max_attempts: attempts in all, the first included.
    :param max_wait: the longest wait slept between attempts; a longer wait asked for by the
        service raises :class:`MTPThrottledError` at once.
    :param backoff_base: the first backoff step, seconds (doubles per attempt).
    :param backoff_cap: the largest backoff step, seconds.
    :param sleep: how to wait (tests pass a fake).
    :param rng: random source for jitter.
    """

    def __init__(
        self,
        *,
        origin: str,
        tokens: TokenSource,
        session: requests.Session,
        dialect: Dialect,
        allowed_hosts: frozenset[str] = frozenset(),
        timeout: float | tuple[float, float] | None = None,
        max_attempts: int = 6,
        max_wait: float = 60.0,
        backoff_base: float = 1.0,
        backoff_cap: float = 30.0,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self.origin = origin.rstrip("/")
        self.tokens = tokens
        self.session = session
        self.dialect = dialect
        self.allowed_hosts = allowed_hosts
        self.timeout = timeout
        self.max_attempts = max_attempts
        self.max_wait = max_wait
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self.sleep = sleep
        self.rng = rng

    @property
    def api_name(self) -> str:
        """The API's name mid-sentence: ``Microsoft Graph``, ``the Microsoft Threat Protection API``."""
        return _API_NAMES.get(self.dialect, self.dialect)

    @property
    def api_title(self) -> str:
        """The API's name at the start of a sentence."""
        return _capitalised(self.api_name)

    # ----------------------------------------------------------------------------------------------
    # Public calls
    # ----------------------------------------------------------------------------------------------

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
        """Send one call with retries; a 2xx reply, or an :class:`MTPError`.

        :param method: HTTP method.
        :param path_or_url: a path under the origin, or an absolute URL on an allowed host.
        :param params: query parameters.
        :param json: a JSON body.
        :param stream: leave the body unread (the caller must close the response); otherwise the
            body is read inside the retry loop, so a reply cut off mid-way is retried.
        :param idempotent: ``False`` for calls that must not run twice (a comment); see the module
            docstring for what is still retried.
        :param permission: the permission the call needs, named in a 403's message when the
            service does not name one.
        """
        return self.fetch(
            method,
            path_or_url,
            consume=_keep_open if stream else _read_body,
            params=params,
            json=json,
            idempotent=idempotent,
            permission=permission,
        )

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
        return self.fetch(
            method,
            path_or_url,
            consume=_read_json,
            params=params,
            json=json,
            idempotent=idempotent,
            permission=permission,
        )

    def fetch(
        self,
        method: str,
        path_or_url: str,
        *,
        consume: Callable[[requests.Response], T],
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        idempotent: bool = True,
        permission: str | None = None,
        query: str | None = None,
    ) -> T:
        """The general form: ``consume`` reads a 2xx reply inside the retry loop.

        ``consume`` gets the response with its body unread. Whatever it raises from
        :data:`BODY_ERRORS` (raise :class:`ReplyCutOff` for your own checks) counts as a reply cut
        off, and is retried for idempotent calls. It owns the response: close it or hand it on.

        :param consume: turns the response into the result.
        :param method: see :meth:`request`.
        :param path_or_url: see :meth:`request`.
        :param params: see :meth:`request`.
        :param json: see :meth:`request`.
        :param idempotent: see :meth:`request`.
        :param permission: see :meth:`request`.
        :param query: for a hunting call, the KQL it sends: a 400 is then a
            :class:`~airflow_provider_mtp.errors.MTPQueryError`, and quota or limit text in an
            error is believed only when the query does not hold it.
        """
        call = PendingCall(
            method=method.upper(),
            url=self._resolve(path_or_url),
            params=params,
            json=json,
            idempotent=idempotent,
            permission=permission,
            consume=consume,
            query=query,
        )
        retrying = tenacity.Retrying(
            stop=tenacity.stop_after_attempt(self.max_attempts),
            wait=self._wait,
            retry=tenacity.retry_if_exception_type(Retryable),
            before_sleep=lambda state: self._log_retry(call, state),
            sleep=self.sleep,
            reraise=True,
        )
        try:
            result: T = retrying(self._attempt, call)
        except Retryable as exc:
            raise self._exhausted(call, exc) from exc.__cause__
        return result

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
            url, page_params = self.next_link(body, seen), None

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
                f"{self.api_title} sent the same @odata.nextLink twice ({urlsplit(link).path}); stopped "
                "paging instead of looping. Narrow the listing (a time range) and run it again."
            )
        seen.add(link)
        return link

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
    # URLs
    # ----------------------------------------------------------------------------------------------

    def _resolve(self, path_or_url: str) -> str:
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
                f"Refused to follow @odata.nextLink from {self.api_name}: {problem}. The bearer token is "
                "only sent to the API's own host, so nothing was sent there. If a gateway in front of "
                "the API rewrites links, add its host to the allowed hosts."
            )

    # ----------------------------------------------------------------------------------------------
    # One attempt
    # ----------------------------------------------------------------------------------------------

    def _attempt(self, call: PendingCall) -> Any:
        response = self._send_authenticated(call)
        if not 200 <= response.status_code < 300:
            detail = ServiceError.from_response(response)
            # An error's traceback keeps this frame alive, and a response left in it pins its
            # socket open (urllib3 holds a reference) until the garbage collector runs.
            del response
            self._fail(call, detail)
        try:
            return call.consume(response)
        except MTPError:
            response.close()
            del response
            raise
        except BODY_ERRORS as exc:
            response.close()
            del response
            reason = f"reply cut off or malformed ({type(exc).__name__})"
            if not call.idempotent:
                raise MTPServiceError(
                    f"{call.method} {call.log_path}: the {reason} after {self.api_name} accepted the call. "
                    "The change may have been applied: check the incident before running it again (a "
                    "repeated comment is added twice)."
                ) from exc
            raise Retryable(reason, kind="connection") from exc
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
        self._token_refused(call, detail)
        self.tokens.invalidate(token)
        retried = self._send(call, self.tokens.token())
        if retried.status_code == 401:
            detail = ServiceError.from_response(retried)
            del retried
            raise self._auth_error(call, detail)
        return retried

    def _token_refused(self, call: PendingCall, detail: ServiceError) -> None:
        """A 401: fail if the call already had a fresh token, else say that it gets one (also async)."""
        if call.refreshed:
            raise self._auth_error(call, detail)
        # A cached token can be revoked or expire early: drop it, fetch anew, try once more.
        call.refreshed = True
        log.info(
            "%s %s: 401 %s; dropping the cached token and retrying once with a new one",
            call.method,
            call.log_path,
            detail.code or "Unauthorized",
        )

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
                raise untrusted_certificate_error(call.url, _short(exc)) from exc
            raise self._connection_failure(call, exc, sent=False) from exc
        except requests.exceptions.ConnectTimeout as exc:
            raise self._connection_failure(call, exc, sent=False) from exc
        except requests.exceptions.ConnectionError as exc:
            raise self._connection_failure(call, exc, sent=not _before_send(exc)) from exc
        except requests.exceptions.Timeout as exc:  # read timeout: the service may be working on it
            raise self._connection_failure(call, exc, sent=True) from exc

    def _connection_failure(self, call: PendingCall, exc: Exception, *, sent: bool) -> Exception:
        reason = _short(exc)
        if sent and not call.idempotent:
            return MTPServiceError(
                f"{call.method} {call.log_path}: the connection to {self.api_name} failed after the call "
                f"was sent ({reason}). The change may have been applied: check before running it again."
            )
        return Retryable(reason, kind="connection")

    def _fail(self, call: PendingCall, detail: ServiceError) -> None:
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
                f"The hunting query hit the service's {_LIMIT_TEXT[kind]}: {detail.quoted}. {_LIMIT_FIX[kind]}",
                limit=kind,
                **detail.kwargs(),
            )

    def _throttled(self, call: PendingCall, detail: ServiceError, wait: float | None) -> NoReturn:
        """The service throttled the call: wait ``wait`` seconds (backoff when ``None``) and retry."""
        self._raise_if_too_long(call, detail, wait)
        raise Retryable(_retry_reason(detail, wait), kind="throttled", wait=wait, detail=detail)

    def _raise_if_too_long(self, call: PendingCall, detail: ServiceError, wait: float | None) -> None:
        if wait is not None and wait > self.max_wait:
            raise MTPThrottledError(
                f"{self.api_title} asked to wait {wait:.0f} s before calling {call.log_path} again "
                f"({detail.label} {detail.quoted}); that is longer than the {self.max_wait:.0f} s a worker "
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
                "this tenant; incident ids are the same number on both APIs.",
                **detail.kwargs(),
            )
        if status == 400 and call.hunting:
            return MTPQueryError(
                f"{self.api_title} rejected the hunting query: {detail.quoted}. Fix the KQL and run it again.",
                **detail.kwargs(),
            )
        if 400 <= status < 500:
            return MTPError(
                f"{where}: {self.api_name} rejected the request ({detail.label} {detail.quoted}). Check "
                "the arguments (filter, page size, field values).",
                **detail.kwargs(),
            )
        return MTPServiceError(
            f"{where}: {self.api_name} failed ({detail.label} {detail.quoted}). This is on the service "
            "side; run the task again later.",
            **detail.kwargs(),
        )

    def _permission_text(self, call: PendingCall, detail: ServiceError) -> str:
        roles = required_roles(detail.message) or ([call.permission] if call.permission else [])
        head = f"{self.api_title} refused {call.method} {call.log_path} ({detail.label} {detail.quoted})."
        if not roles:
            return (
                f"{head} The app or user lacks a permission for this call: check the app's API "
                f"permissions on {self.api_name} and that an admin consented to them."
            )
        names = roles[0] if len(roles) == 1 else f"{roles[0]} (or {', '.join(roles[1:])})"
        if self.dialect == "legacy":
            where = "the Microsoft Threat Protection API (WindowsDefenderATP is a different API)"
        else:
            where = "Microsoft Graph"
        return (
            f"{head} Grant the application permission {names} on {where} and admin consent, then let "
            "the token renew (up to an hour, or restart). With user_password sign-in, grant the "
            "delegated permission of that name instead."
        )

    def _auth_error(self, call: PendingCall, detail: ServiceError) -> MTPAuthError:
        if self.dialect == "legacy":
            audience = "https://api.security.microsoft.com (not the WindowsDefenderATP audience api.securitycenter.microsoft.com)"
        else:
            audience = "the cloud's Graph host, e.g. https://graph.microsoft.com"
        return MTPAuthError(
            f"{self.api_title} refused the access token for {call.method} {call.log_path} ({detail.label} "
            f"{detail.quoted}), also a freshly fetched one. Check that the connection's api "
            f"({self.dialect!r}) and cloud match the tenant: tokens must be for {audience}; or the app's "
            "secret, certificate or consent was revoked.",
            **detail.kwargs(),
        )

    def _exhausted(self, call: PendingCall, exc: Retryable) -> MTPError:
        attempts = f"{self.max_attempts} attempt{'s' if self.max_attempts != 1 else ''}"
        detail = exc.detail
        where = f"{call.method} {call.log_path}"
        if exc.kind == "throttled" and detail is not None:
            return MTPThrottledError(
                f"{where}: {self.api_name} still throttled the call after {attempts} ({detail.label} "
                f"{detail.quoted}). Lower the call rate (hunting allows about 45 calls a minute per "
                "tenant) or use deferrable mode.",
                retry_after=exc.wait,
                **detail.kwargs(),
            )
        if detail is not None:
            return MTPServiceError(
                f"{where}: {self.api_name} kept failing ({detail.label} {detail.quoted}) after {attempts}. "
                "This is on the service side; run the task again later (for incident listings with "
                "alerts, a smaller page size or no alerts may get through).",
                **detail.kwargs(),
            )
        return MTPServiceError(
            f"{where}: the connection to {self.api_name} kept failing ({exc.reason}) after {attempts}. "
            "Check the network, proxy and api_url, then run the task again."
        )

    # ----------------------------------------------------------------------------------------------
    # tenacity hooks
    # ----------------------------------------------------------------------------------------------

    def _wait(self, state: tenacity.RetryCallState) -> float:
        return retry_wait(
            state,
            max_wait=self.max_wait,
            backoff_base=self.backoff_base,
            backoff_cap=self.backoff_cap,
            rng=self.rng,
        )

    def _log_retry(self, call: PendingCall, state: tenacity.RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        reason = exc.reason if isinstance(exc, Retryable) else type(exc).__name__
        wait = state.next_action.sleep if state.next_action else 0.0
        log.info(
            "Retrying %s %s after %s: attempt %d/%d in %.1f s",
            call.method,
            call.log_path,
            reason,
            state.attempt_number + 1,
            self.max_attempts,
            wait,
        )


_LIMIT_TEXT = {"rows": "row limit (100,000 rows)", "size": "result size cap", "timeout": "time limit"}
_LIMIT_FIX = {
    "rows": "Narrow the time window, filter earlier, or summarize/take to return fewer rows.",
    "size": "Project fewer columns, summarize, or take fewer rows.",
    "timeout": "Narrow the time window or filter earlier so the query runs in under 3 minutes.",
}


def _retry_reason(detail: ServiceError, wait: float | None) -> str:
    if detail.retry_after is not None:
        return f"{detail.label} (Retry-After {detail.retry_after:g} s)"
    if wait is not None:
        return f"{detail.label} (quota resets in {wait:g} s)"
    return detail.label


def _capitalised(text: str) -> str:
    return text[:1].upper() + text[1:]


def untrusted_certificate_error(url: str, reason: str) -> MTPConfigError:
    """The server's TLS certificate did not verify: the fix is the connection's ``ca_bundle``.

    :param url: the URL called (only its host and port are named).
    :param reason: the failure's kind, never its full text (it can quote the URL).
    """
    return MTPConfigError(
        f"The TLS certificate of {netloc(url)} was not trusted ({reason}). "
        "Set the connection's ca_bundle to the PEM bundle that signs it."
    )


def _before_send(exc: requests.exceptions.ConnectionError) -> bool:
    """True when the connection failed before any byte of the request left (safe to resend)."""
    reason = getattr(exc.args[0], "reason", None) if exc.args else None
    return isinstance(reason, urllib3.exceptions.NewConnectionError | urllib3.exceptions.ConnectTimeoutError)


def _short(exc: BaseException) -> str:
    """An exception's kind, and for urllib3's wrapped ones the underlying kind: never the URL."""
    inner = getattr(exc.args[0], "reason", None) if exc.args else None
    return f"{type(exc).__name__}: {type(inner).__name__}" if inner is not None else type(exc).__name__


def page_items(body: Any, url: str) -> list[dict[str, Any]]:
    """The ``value`` list of an OData page, or an error saying the reply is not one."""
    if not isinstance(body, dict) or not isinstance(body.get("value"), list):
        raise MTPServiceError(
            f"The reply to GET {urlsplit(url).path} is not an OData collection (no 'value' list)."
        )
    return list(body["value"])
