"""Fault injection: make the next matching calls fail the way real services and networks do.

A test registers faults with ``POST /_emulator/faults`` (or ``DefenderEmulator.inject_fault``);
the :class:`InjectFaults` middleware answers matching requests **before any route runs**, so an
injected failure never has a side effect (no comment added, no quota used). Faults match in the
order they were added; each is used ``count`` times, after letting ``after`` matching requests
through, then disappears.

Kinds:

* ``status``: answer ``status`` in the back end's own error shape (Graph, MTP or Entra, by path),
  with ``Retry-After`` when ``retry_after`` is given. With only ``delay_s``, the request waits
  and then goes to its route (a slow service).
* ``drop``: send ``200`` and the headers, part of a JSON body, then close the connection: the
  client sees a body cut off mid-stream.
* ``malformed``: a complete ``200`` whose body is JSON cut short.

The emulator's own ``/_emulator`` routes are never faulted.
"""

from __future__ import annotations

import asyncio
import fnmatch
import http
import json
import threading
import uuid
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote

from starlette.routing import Match
from starlette.types import ASGIApp, Receive, Scope, Send

from airflow_provider_mtp.emulator.state import EmulatorState

__all__ = ["KINDS", "Fault", "FaultRegistry", "InjectFaults", "registry_of"]

KINDS = ("status", "drop", "malformed")

#: Bytes a ``drop`` fault sends before closing, and the length it announces.
_DROP_SENT = (
    b'{"@odata.context":"https://graph.microsoft.com/v1.0/$metadata#security/incidents","value":[{"id":"'
)
_DROP_ANNOUNCED = 1_000_000
_MALFORMED = b'{"value":[{"id":"1","displayName":"cut'

# Codes and messages per status, as each service spells them (defender-api.md section 9).
_GRAPH_CODES = {
    400: ("BadRequest", "Bad request."),
    401: ("InvalidAuthenticationToken", "Access token validation failure."),
    403: ("Forbidden", "Missing application roles."),
    404: ("NotFound", "Resource not found."),
    429: ("TooManyRequests", "Too many requests."),
    500: ("UnknownError", ""),
    502: ("BadGateway", "Bad gateway."),
    503: ("ServiceUnavailable", "Service unavailable."),
    504: ("GatewayTimeout", "Gateway timeout."),
}
_LEGACY_CODES = {
    400: ("BadRequest", "Bad request."),
    401: ("Unauthorized", "Unauthorized request - reason of failure: injected fault"),
    403: ("Forbidden", "Forbidden"),
    404: ("ResourceNotFound", "Resource was not found"),
    429: ("429", "API calls quota exceeded! maximum allowed 45 per 00:01:00"),
    500: ("InternalServerError", ""),
    502: ("BadGateway", "Bad gateway."),
    503: ("ServiceUnavailable", "Service unavailable."),
    504: ("GatewayTimeout", "Gateway timeout."),
}
_ENTRA_ERRORS = {400: "invalid_request", 401: "invalid_client", 429: "temporarily_unavailable"}


class FaultSpecError(ValueError):
    """A fault specification the emulator cannot use; the message names the field."""


@dataclass(kw_only=True)
class Fault:
    """One registered fault.

    :param path: glob over the request path (``*`` also crosses ``/``), e.g. ``/v1.0/security/incidents*``.
    :param method: only this method; ``None`` for any.
    :param query: glob over the decoded query string; ``None`` for any.
    :param count: how many matching requests fail.
    :param after: matching requests let through before the first failure.
    :param kind: ``status``, ``drop`` or ``malformed``.
    :param status: the status of a ``status`` fault.
    :param retry_after: ``Retry-After`` header value (seconds, or an HTTP date as a string).
    :param delay_s: seconds to wait before answering (or before passing on).
    :param code: override the error code.
    :param message: override the error message.
    """

    path: str
    method: str | None = None
    query: str | None = None
    count: int = 1
    after: int = 0
    kind: str = "status"
    status: int | None = None
    retry_after: float | str | None = None
    delay_s: float = 0.0
    code: str | None = None
    message: str | None = None

    @classmethod
    def from_spec(cls, spec: Any) -> Fault:
        """Validate a JSON spec.

        :raises FaultSpecError: an unknown key or a bad value.
        """
        if not isinstance(spec, dict):
            raise FaultSpecError('A fault is a JSON object such as {"path": "/v1.0/*", "status": 503}.')
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(spec) - known)
        if unknown:
            raise FaultSpecError(f"Unknown fault field {unknown[0]!r}; known: {', '.join(sorted(known))}.")
        path = spec.get("path")
        if not isinstance(path, str) or not path.startswith(("/", "*")):
            raise FaultSpecError(
                "'path' is required: a glob over the request path, starting with '/' or '*'."
            )
        fault = cls(**spec)
        if fault.kind not in KINDS:
            raise FaultSpecError(f"'kind' must be one of {', '.join(KINDS)}, not {fault.kind!r}.")
        for name in ("count", "after"):
            value = getattr(fault, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < (1 if name == "count" else 0):
                raise FaultSpecError(
                    f"'{name}' must be a whole number of at least {1 if name == 'count' else 0}."
                )
        if fault.status is not None and (
            isinstance(fault.status, bool)
            or not isinstance(fault.status, int)
            or not 100 <= fault.status <= 599
        ):
            raise FaultSpecError("'status' must be an HTTP status between 100 and 599.")
        if not isinstance(fault.delay_s, int | float) or fault.delay_s < 0:
            raise FaultSpecError("'delay_s' must be a number of seconds, 0 or more.")
        if fault.kind == "status" and fault.status is None and not fault.delay_s:
            raise FaultSpecError(
                "A 'status' fault needs 'status' (or only 'delay_s', to slow the route down)."
            )
        if fault.method is not None:
            fault.method = str(fault.method).upper()
        return fault

    def matches(self, method: str, path: str, query: str) -> bool:
        if self.method is not None and self.method != method.upper():
            return False
        if not fnmatch.fnmatchcase(path, self.path):
            return False
        return self.query is None or fnmatch.fnmatchcase(query, self.query)

    def to_json(self) -> dict[str, Any]:
        return {key: value for key, value in asdict(self).items() if value is not None}


class FaultRegistry:
    """The faults still to fire, in order; shared by the middleware and the admin routes."""

    def __init__(self) -> None:
        self._faults: list[Fault] = []
        self._lock = threading.Lock()

    def add(self, *specs: Any) -> list[Fault]:
        """Validate every spec, then append them all (none when one is wrong).

        :raises FaultSpecError: a spec is wrong; the message names the field.
        """
        faults = [Fault.from_spec(spec) for spec in specs]
        with self._lock:
            self._faults.extend(faults)
        return faults

    def take(self, method: str, path: str, query: str) -> Fault | None:
        """The fault to apply to this request (using one of its count), or ``None``."""
        with self._lock:
            for fault in self._faults:
                if not fault.matches(method, path, query):
                    continue
                if fault.after:
                    # This request passes; the fault waits for a later one.
                    fault.after -= 1
                    return None
                fault.count -= 1
                if fault.count <= 0:
                    self._faults.remove(fault)
                return fault
        return None

    def pending(self) -> list[dict[str, Any]]:
        """Faults still registered, with their remaining ``count`` and ``after``."""
        with self._lock:
            return [fault.to_json() for fault in self._faults]

    def clear(self) -> int:
        """Drop every fault; how many there were."""
        with self._lock:
            dropped = len(self._faults)
            self._faults.clear()
        return dropped


def registry_of(state: EmulatorState) -> FaultRegistry:
    """The run's registry, kept in ``state.extras`` (created on first use)."""
    registry = state.extras.get("faults")
    if not isinstance(registry, FaultRegistry):
        registry = state.extras["faults"] = FaultRegistry()
    return registry


class InjectFaults:
    """ASGI middleware applying registered faults before routing.

    Add it inside the request counter, so faulted requests are counted under their route.

    :param app: the wrapped app.
    :param registry: the faults.
    """

    def __init__(self, app: ASGIApp, registry: FaultRegistry) -> None:
        self.app = app
        self.registry = registry

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith("/_emulator"):
            await self.app(scope, receive, send)
            return
        query = unquote(scope.get("query_string", b"").decode("latin-1"))
        fault = self.registry.take(scope["method"], scope["path"], query)
        if fault is None:
            await self.app(scope, receive, send)
            return
        if fault.delay_s:
            await asyncio.sleep(fault.delay_s)
        if fault.kind == "status" and fault.status is None:
            await self.app(scope, receive, send)
            return
        _name_route(scope)
        # Read the request as a server does before it answers: an unread body leaves the
        # connection in a state that holds up the server's shutdown.
        await _drain(receive)
        if fault.kind == "drop":
            await _drop(send)
        elif fault.kind == "malformed":
            await _reply(send, 200, _MALFORMED, {})
        else:
            assert fault.status is not None
            await _error_reply(scope, send, fault)


def _name_route(scope: Scope) -> None:
    """Set ``scope["route"]`` as routing would, so the counter files the request under its route."""
    app = scope.get("app")
    routes = getattr(getattr(app, "router", None), "routes", [])
    partial = None
    for route in routes:
        match, _ = route.matches(scope)
        if match is Match.FULL:
            scope["route"] = route
            return
        if match is Match.PARTIAL and partial is None:
            partial = route
    if partial is not None:
        scope["route"] = partial


async def _drain(receive: Receive) -> None:
    while True:
        message = await receive()
        if message["type"] != "http.request" or not message.get("more_body", False):
            return


async def _reply(send: Send, status: int, body: bytes, headers: dict[str, str]) -> None:
    raw_headers = [
        (b"content-type", b"application/json; charset=utf-8"),
        (b"content-length", str(len(body)).encode()),
        *((name.lower().encode(), value.encode()) for name, value in headers.items()),
    ]
    await send({"type": "http.response.start", "status": status, "headers": raw_headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})


async def _drop(send: Send) -> None:
    headers = [
        (b"content-type", b"application/json; charset=utf-8"),
        (b"content-length", str(_DROP_ANNOUNCED).encode()),
        (b"request-id", str(uuid.uuid4()).encode()),
    ]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": _DROP_SENT, "more_body": True})
    # Returning with the body incomplete makes the server close the connection mid-body.


async def _error_reply(scope: Scope, send: Send, fault: Fault) -> None:
    assert fault.status is not None
    status = fault.status
    request_id = str(uuid.uuid4())
    headers = {"request-id": request_id}
    for name, value in scope.get("headers", []):
        if name == b"client-request-id":
            headers["client-request-id"] = value.decode("latin-1")
    if fault.retry_after is not None:
        retry_after = fault.retry_after
        if isinstance(retry_after, float) and retry_after.is_integer():
            retry_after = int(retry_after)
        headers["Retry-After"] = str(retry_after)
    path: str = scope["path"]
    body: dict[str, Any]
    if "/oauth2/" in path:
        error = _ENTRA_ERRORS.get(status, "invalid_request" if status < 500 else "temporarily_unavailable")
        description = fault.message or f"AADSTS90000: injected fault ({status})."
        body = {"error": fault.code or error, "error_description": description, "error_codes": [90000]}
    else:
        table = _LEGACY_CODES if path.startswith("/api/") else _GRAPH_CODES
        default_code, default_message = table.get(status, (_phrase(status), _phrase(status) + "."))
        code = default_code if fault.code is None else fault.code
        message = default_message if fault.message is None else fault.message
        if path.startswith("/api/"):
            body = {"error": {"code": code, "message": message, "target": f"|{request_id}."}}
        else:
            inner = {
                "date": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S"),
                "request-id": request_id,
                "client-request-id": headers.get("client-request-id", str(uuid.uuid4())),
            }
            body = {"error": {"code": code, "message": message, "innerError": inner}}
    await _reply(send, status, json.dumps(body).encode(), headers)


def _phrase(status: int) -> str:
    try:
        return http.HTTPStatus(status).phrase.replace(" ", "")
    except ValueError:
        return "Error"
