"""What a service's error reply says: its fields, how long it asks us to wait, which limit it names.

Shared by every HTTP client of the provider (the Defender API transports and the Entra ID client
under msal), so all of them read a reply the same way. Pure: no I/O (the one exception,
:meth:`ServiceError.from_response`, reads a ``requests`` reply that is already there).

Messages are read only where the APIs leave no other way: a 429's reset time (MTP's ``maximum
allowed 45 per 00:01:00``, the hunting quota's ``again in <duration>``), and on a hunting call the
documented quota and limit messages, believed only when they *start* the message and are not in
the query sent (a syntax error quotes the query).
"""

from __future__ import annotations

import email.utils
import http.client
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import requests
import urllib3.exceptions

from airflow_provider_mtp.common.durations import leading_iso_duration


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


#: The service limits a hunting error names, in words, and how to get under each.
LIMIT_TEXT = {"rows": "row limit (100,000 rows)", "size": "result size cap", "timeout": "time limit"}
LIMIT_FIX = {
    "rows": "Narrow the time window, filter earlier, or summarize/take to return fewer rows.",
    "size": "Project fewer columns, summarize, or take fewer rows.",
    "timeout": "Narrow the time window or filter earlier so the query runs in under 3 minutes.",
}
