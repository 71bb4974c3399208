"""The retry policy as one table, run against both transports with no server and no network.

Each row of :data:`MATRIX` is one reply sequence (what the service answers, attempt after
attempt), the kind of call, and what must come of it: how many requests were sent, each wait
slept between them (as bounds: backoff has equal jitter, a ``Retry-After`` gets up to
``min(1 s, 10 %)`` on top), how many tokens were handed out, and the result or error class. The
same rows run through the requests :class:`~airflow_provider_mtp.api.transport.Transport` (a
real ``requests.Session`` with a scripted adapter mounted, so urllib3's own exceptions and
responses go through requests' own code) and the aiohttp
:class:`~airflow_provider_mtp.api.transport_async.AsyncTransport` (a scripted client session),
each sending the same :class:`~airflow_provider_mtp.api.request.ApiRequest`, so ``pytest -v``
reads as the matrix: ``test_retry_matrix[503-retry-after-POST-async]``. Every row runs on both:
the two transports share one set of rules (:class:`~airflow_provider_mtp.api.call_rules.CallRules`)
and one retry loop (:mod:`airflow_provider_mtp.retrying`). The same policy is proven against the
real emulator over TLS in ``tests/integration/test_transport.py``.
"""

from __future__ import annotations

import asyncio
import io
import json
import random
import ssl
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import aiohttp
import pytest
import requests
import requests.adapters
import urllib3
import urllib3.exceptions
from aiohttp.client_reqrep import ConnectionKey
from multidict import CIMultiDict, CIMultiDictProxy

from airflow_provider_mtp.api import graph
from airflow_provider_mtp.api.request import ApiRequest
from airflow_provider_mtp.api.transport import Transport
from airflow_provider_mtp.api.transport_async import AsyncTransport
from airflow_provider_mtp.errors import (
    MTPAuthError,
    MTPError,
    MTPQueryError,
    MTPServiceError,
    MTPThrottledError,
)

ORIGIN = "https://graph.example.test"
PATH = "/v1.0/security/incidents"
HUNT_PATH = "/v1.0/security/runHuntingQuery"
KQL = "DeviceEvents | take 1"
OK_BODY = {"value": [{"id": "1"}]}
MAX_ATTEMPTS = 4
MAX_WAIT = 60.0
BACKOFF_BASE = 1.0
BACKOFF_CAP = 30.0
#: Retry-After as an HTTP date this far ahead, written when the reply is served.
DATE_AHEAD_S = 20


# --------------------------------------------------------------------------------------------------
# The table
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Reply:
    """One HTTP reply the service sends.

    :param status: the status code.
    :param body: the body: a dict is sent as JSON, a string as it is.
    :param retry_after: the ``Retry-After`` header: seconds, or ``"date"`` for an HTTP date
        :data:`DATE_AHEAD_S` ahead.
    """

    status: int
    body: Mapping[str, Any] | str = ""
    retry_after: int | str | None = None

    def encoded(self) -> tuple[dict[str, str], bytes]:
        headers = {"Content-Type": "application/json" if isinstance(self.body, Mapping) else "text/plain"}
        if self.retry_after == "date":
            headers["Retry-After"] = format_datetime(
                datetime.now(UTC) + timedelta(seconds=DATE_AHEAD_S), usegmt=True
            )
        elif self.retry_after is not None:
            headers["Retry-After"] = str(self.retry_after)
        body = json.dumps(self.body) if isinstance(self.body, Mapping) else self.body
        return headers, body.encode("utf-8")


@dataclass(frozen=True)
class Drop:
    """The connection fails: ``before`` any byte of the request left (refused), or after it was sent."""

    before: bool


OK = Reply(200, OK_BODY)
DROP_BEFORE = Drop(before=True)
DROP_AFTER = Drop(before=False)


def error(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message}}


def backoff(attempt: int) -> tuple[float, float]:
    """Bounds of the backoff after ``attempt`` failed: equal jitter, half the step fixed."""
    step = min(BACKOFF_CAP, BACKOFF_BASE * 2 ** (attempt - 1))
    return (step / 2, step)


def asked(seconds: float) -> tuple[float, float]:
    """Bounds of the wait for a ``Retry-After`` of ``seconds``: that, plus up to min(1 s, 10 %)."""
    return (seconds, seconds + min(1.0, seconds * 0.1))


#: A ``Retry-After`` date is whole seconds, made a moment before it is read: up to 2 s early.
DATE_WAIT = (DATE_AHEAD_S - 2.0, DATE_AHEAD_S + 1.0)


@dataclass(frozen=True)
class Row:
    """One line of the matrix.

    :param name: the reply, for the test id (the method is appended).
    :param method: ``GET`` or ``POST``.
    :param idempotent: whether the call may run twice (a comment may not; a hunting read may).
    :param replies: what the service answers, attempt after attempt.
    :param sent: requests sent in all (a 401's resend included).
    :param waits: bounds of each wait slept, in order.
    :param outcome: the error class raised (exactly), or ``None`` for success.
    :param tokens: tokens handed out (a 401 drops the first and fetches a second).
    :param hunting: a hunting call (it carries its KQL): a 400 is a query error.
    """

    name: str
    method: str
    idempotent: bool
    replies: tuple[Reply | Drop, ...]
    sent: int
    waits: tuple[tuple[float, float], ...]
    outcome: type[MTPError] | None
    tokens: int = 1
    hunting: bool = False

    @property
    def id(self) -> str:
        return f"{self.name}-{self.method}"


GET, POST = "GET", "POST"
UNKNOWN_500 = error("UnknownError", "")
BUSY_503 = error("ServiceUnavailable", "The service is busy.")

MATRIX: Sequence[Row] = (
    Row("200-ok", GET, True, (OK,), 1, (), None),
    # 429: the service did not act, so every call is retried; Retry-After first, else backoff.
    Row("429-retry-after-seconds", GET, True, (Reply(429, retry_after=2), OK), 2, (asked(2),), None),
    Row("429-retry-after-http-date", GET, True, (Reply(429, retry_after="date"), OK), 2, (DATE_WAIT,), None),
    Row("429-no-retry-after", GET, True, (Reply(429, error("TooManyRequests", "Slow down")), OK), 2, (backoff(1),), None),
    Row("429-retry-after-seconds", POST, False, (Reply(429, retry_after=3), OK), 2, (asked(3),), None),
    Row(
        "429-every-time",
        GET,
        True,
        (Reply(429),) * MAX_ATTEMPTS,
        MAX_ATTEMPTS,
        (backoff(1), backoff(2), backoff(3)),
        MTPThrottledError,
    ),
    Row("429-retry-after-over-max-wait", GET, True, (Reply(429, retry_after=120),), 1, (), MTPThrottledError),
    Row("429-retry-after-over-max-wait", POST, False, (Reply(429, retry_after=120),), 1, (), MTPThrottledError),
    # 500: retried only without a message (Graph's bare UnknownError), and only when idempotent.
    Row("500-empty-body", GET, True, (Reply(500), OK), 2, (backoff(1),), None),
    Row("500-code-without-message", GET, True, (Reply(500, UNKNOWN_500), Reply(500, UNKNOWN_500), OK), 3, (backoff(1), backoff(2)), None),
    Row("500-with-message", GET, True, (Reply(500, error("InternalServerError", "Disk on fire")),), 1, (), MTPServiceError),
    Row("500-text-body", GET, True, (Reply(500, "Internal Server Error"),), 1, (), MTPServiceError),
    Row("500-empty-body", POST, False, (Reply(500),), 1, (), MTPServiceError),
    # Gateways: idempotent calls only; a 503 with Retry-After is the one exception for writes.
    Row("502", GET, True, (Reply(502), OK), 2, (backoff(1),), None),
    Row("502", POST, False, (Reply(502),), 1, (), MTPServiceError),
    Row("503-retry-after", GET, True, (Reply(503, BUSY_503, retry_after=5), OK), 2, (asked(5),), None),
    Row("503-retry-after", POST, False, (Reply(503, BUSY_503, retry_after=5), OK), 2, (asked(5),), None),
    Row("503-no-retry-after", GET, True, (Reply(503, BUSY_503), OK), 2, (backoff(1),), None),
    Row("503-no-retry-after", POST, False, (Reply(503, BUSY_503),), 1, (), MTPServiceError),
    Row("503-retry-after-over-max-wait", GET, True, (Reply(503, BUSY_503, retry_after=600),), 1, (), MTPThrottledError),
    Row("504", GET, True, (Reply(504), OK), 2, (backoff(1),), None),
    Row(
        "504-every-time",
        GET,
        True,
        (Reply(504),) * MAX_ATTEMPTS,
        MAX_ATTEMPTS,
        (backoff(1), backoff(2), backoff(3)),
        MTPServiceError,
    ),
    # Dropped connections: before sending is always safe to resend; after sending only if idempotent.
    Row("dropped-before-send", GET, True, (DROP_BEFORE, OK), 2, (backoff(1),), None),
    Row("dropped-before-send", POST, False, (DROP_BEFORE, OK), 2, (backoff(1),), None),
    Row("dropped-after-send", GET, True, (DROP_AFTER, OK), 2, (backoff(1),), None),
    Row("dropped-after-send", POST, False, (DROP_AFTER,), 1, (), MTPServiceError),
    Row(
        "dropped-every-time",
        GET,
        True,
        (DROP_BEFORE, DROP_AFTER, DROP_BEFORE, DROP_AFTER),
        MAX_ATTEMPTS,
        (backoff(1), backoff(2), backoff(3)),
        MTPServiceError,
    ),
    # 401: outside the budget; the token is dropped and the call resent once, at once.
    Row("401-once", GET, True, (Reply(401, error("InvalidAuthenticationToken", "expired")), OK), 2, (), None, tokens=2),
    Row("401-once", POST, False, (Reply(401, error("InvalidAuthenticationToken", "expired")), OK), 2, (), None, tokens=2),
    Row(
        "401-twice",
        GET,
        True,
        (Reply(401, error("InvalidAuthenticationToken", "bad audience")),) * 2,
        2,
        (),
        MTPAuthError,
        tokens=2,
    ),
    # Not retried: 4xx. A hunting 400 is the caller's KQL.
    Row("400-hunting", POST, True, (Reply(400, error("BadRequest", "Syntax error near 'take'")),), 1, (), MTPQueryError, hunting=True),
    Row("400", GET, True, (Reply(400, error("BadRequest", "Invalid filter clause")),), 1, (), MTPError),
    Row("429-retry-after-seconds-hunting", POST, True, (Reply(429, retry_after=1), OK), 2, (asked(1),), None, hunting=True),
)  # fmt: skip


# --------------------------------------------------------------------------------------------------
# Fakes: tokens, clocks, and one scripted server per transport
# --------------------------------------------------------------------------------------------------


class CountingTokens:
    """A TokenSource that hands out ``token-1``, ``token-2``... and forgets one when invalidated."""

    def __init__(self) -> None:
        self.issued = 0
        self.invalidated: list[str] = []
        self._current: str | None = None

    def token(self) -> str:
        if self._current is None:
            self.issued += 1
            self._current = f"token-{self.issued}"
        return self._current

    def invalidate(self, token: str) -> None:
        self.invalidated.append(token)
        if token == self._current:
            self._current = None


@dataclass
class Script:
    """The replies still to send, and the ``(method, bearer token)`` of every request received."""

    replies: list[Reply | Drop]
    received: list[tuple[str, str]] = field(default_factory=list)

    def next(self, method: str, authorization: str) -> Reply | Drop:
        self.received.append((method, authorization.removeprefix("Bearer ")))
        assert self.replies, f"request {len(self.received)} was not in the script"
        return self.replies.pop(0)


class ScriptedAdapter(requests.adapters.HTTPAdapter):
    """requests' own adapter with the network cut out: urllib3 responses and errors from a script."""

    def __init__(self, script: Script) -> None:
        super().__init__()
        self.script = script

    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> requests.Response:
        reply = self.script.next(str(request.method), str(request.headers["Authorization"]))
        if isinstance(reply, Drop) and reply.before:
            # What HTTPAdapter raises for a refused connection: MaxRetryError around NewConnectionError.
            refused = urllib3.exceptions.NewConnectionError(None, "Connection refused")  # type: ignore[arg-type]
            raise requests.exceptions.ConnectionError(
                urllib3.exceptions.MaxRetryError(None, request.url, refused),  # type: ignore[arg-type]
                request=request,
            )
        if isinstance(reply, Drop):
            # And for a peer that closed the connection after reading the request.
            raise requests.exceptions.ConnectionError(
                urllib3.exceptions.ProtocolError("Connection aborted.", ConnectionResetError(104, "reset")),
                request=request,
            )
        headers, body = reply.encoded()
        raw = urllib3.HTTPResponse(
            body=io.BytesIO(body), headers=headers, status=reply.status, preload_content=False
        )
        return self.build_response(request, raw)


class ScriptedAiohttpResponse:
    """What ``AsyncTransport`` reads of an ``aiohttp.ClientResponse``."""

    def __init__(self, reply: Reply) -> None:
        headers, self._body = reply.encoded()
        self.status = reply.status
        self.headers = CIMultiDictProxy(CIMultiDict(headers))

    async def read(self) -> bytes:
        return self._body

    async def text(self, errors: str = "strict") -> str:
        return self._body.decode("utf-8", errors)

    async def __aenter__(self) -> ScriptedAiohttpResponse:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        return None

    def close(self) -> None:
        return None


class ScriptedAiohttpClient:
    """Stands in for the hook's ``aiohttp.ClientSession``: replies and errors from a script."""

    def __init__(self, script: Script) -> None:
        self.script = script

    async def request(self, method: str, url: Any, *, headers: Mapping[str, str], **kwargs: Any) -> Any:
        reply = self.script.next(method, headers["Authorization"])
        if isinstance(reply, Drop) and reply.before:
            key = ConnectionKey("graph.example.test", 443, True, True, None, None, None, None)
            raise aiohttp.ClientConnectorError(key, ConnectionRefusedError(111, "Connection refused"))
        if isinstance(reply, Drop):
            raise aiohttp.ServerDisconnectedError()
        return ScriptedAiohttpResponse(reply)

    async def close(self) -> None:
        return None


def transport_options(tokens: CountingTokens) -> dict[str, Any]:
    return {
        "origin": ORIGIN,
        "tokens": tokens,
        "identity": graph.IDENTITY,
        "max_attempts": MAX_ATTEMPTS,
        "max_wait": MAX_WAIT,
        "backoff_base": BACKOFF_BASE,
        "backoff_cap": BACKOFF_CAP,
        "rng": random.Random(9),
    }


def request_of(row: Row) -> ApiRequest:
    """The call a row makes: a hunting POST carrying its KQL, a comment-like POST, or a GET."""
    if row.hunting:
        return ApiRequest(
            method=row.method, path=HUNT_PATH, json={"Query": KQL}, idempotent=row.idempotent, query=KQL
        )
    return ApiRequest(
        method=row.method,
        path=PATH,
        json={"comment": "x"} if row.method == POST else None,
        idempotent=row.idempotent,
    )


def run_sync(row: Row, script: Script, tokens: CountingTokens, waits: list[float]) -> Any:
    session = requests.Session()
    session.mount("https://", ScriptedAdapter(script))
    transport = Transport(session=session, sleep=waits.append, **transport_options(tokens))
    with session:
        return transport.send(request_of(row))


def run_async(row: Row, script: Script, tokens: CountingTokens, waits: list[float]) -> Any:
    async def asleep(seconds: float) -> None:
        waits.append(seconds)

    async def call() -> Any:
        transport = AsyncTransport(
            client=ScriptedAiohttpClient(script),  # type: ignore[arg-type]
            ssl_context=ssl.create_default_context(),
            proxy=None,
            asleep=asleep,
            **transport_options(tokens),
        )
        return await transport.send(request_of(row))

    return asyncio.run(call())


RUNNERS = {"sync": run_sync, "async": run_async}


def render_matrix() -> str:
    """The table as Markdown: ``python -m tests.unit.test_retry_matrix`` prints it."""

    def waits(row: Row) -> str:
        return ", ".join(f"{low:g}-{high:g} s" for low, high in row.waits) or "none"

    lines = [
        "| reply | method | idempotent | requests | waits | tokens | result |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in MATRIX:
        result = row.outcome.__name__ if row.outcome else "200, body returned"
        lines.append(
            f"| {row.name} | {row.method} | {'yes' if row.idempotent else 'no'} | {row.sent} | {waits(row)} "
            f"| {row.tokens} | {result} |"
        )
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------------
# The test
# --------------------------------------------------------------------------------------------------


def test_the_matrix_names_each_reply_and_method_once() -> None:
    ids = [row.id for row in MATRIX]
    assert len(ids) == len(set(ids)), sorted({name for name in ids if ids.count(name) > 1})
    assert len(render_matrix().splitlines()) == len(MATRIX) + 2


@pytest.mark.parametrize("kind", sorted(RUNNERS), ids=str)
@pytest.mark.parametrize("row", MATRIX, ids=lambda row: row.id)
def test_retry_matrix(row: Row, kind: str) -> None:
    script = Script(replies=list(row.replies))
    tokens = CountingTokens()
    waits: list[float] = []

    result: Any = None
    raised: BaseException | None = None
    try:
        result = RUNNERS[kind](row, script, tokens, waits)
    except MTPError as exc:
        raised = exc

    if row.outcome is None:
        assert raised is None, f"expected success, got {raised!r}"
        assert result == OK_BODY
    else:
        assert type(raised) is row.outcome, f"expected {row.outcome.__name__}, got {raised!r}"
    assert len(script.received) == row.sent, "requests sent"
    assert not script.replies, "every scripted reply was asked for"
    assert {method for method, _ in script.received} == {row.method}
    assert len(waits) == len(row.waits), f"waits slept: {waits}"
    for slept, (low, high) in zip(waits, row.waits, strict=True):
        assert low <= slept <= high, f"waited {slept:.3f} s, expected {low}..{high} s"
    assert tokens.issued == row.tokens, "tokens handed out"
    if row.tokens == 2:
        # The refused token was dropped and the resend carried the new one.
        assert tokens.invalidated == ["token-1"]
        assert [token for _, token in script.received] == ["token-1", "token-2"]
    else:
        assert tokens.invalidated == []


if __name__ == "__main__":
    print(render_matrix())
