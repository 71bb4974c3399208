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
* ``late``: a write the service applies after the client gave up. The request is read, and its
  route runs (the change is applied; its reply is thrown away) ``apply_after_s`` seconds later in
  the background. Meanwhile the reply is held: until the client gives up (a read timeout; counted
  with status ``499``), or with ``delay_s`` until then, when the connection is cut as by ``drop``.
  A client still waiting when the change is applied gets the route's reply (a slow service).
  Made for the non-idempotent writes: Graph ``POST .../comments``, legacy ``PATCH /api/incidents/{id}``.
* ``mutate``: an analyst at work. Before a matching **incident listing** (Graph
  ``GET /v1.0|beta/security/incidents``, MTP ``GET /api/incidents``) is answered, ``n`` of the
  incidents that match that request's ``$filter`` are updated (stamped with the data clock's now,
  as a PATCH would), then the request is served as usual (it may also meet another fault). The
  incidents are a random sample, in a fixed order, drawn from ``seed``: same requests, same
  updates. Each matching listing request is touched with chance ``probability`` (default 1),
  ``count`` times after ``after`` (a large ``count`` keeps it on for a long run). It never uses up
  another fault's turn, and requests to other paths are left alone. Every update is logged as
  ``{"id", "old", "new", ...}`` for ``GET /_emulator/analyst-updates``.

The emulator's own ``/_emulator`` routes are never faulted.
"""

from __future__ import annotations

import asyncio
import fnmatch
import http
import json
import random
import re
import threading
import uuid
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, unquote

from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from airflow_provider_mtp.emulator.state import EmulatorState

__all__ = ["KINDS", "Fault", "FaultRegistry", "InjectFaults", "registry_of"]

KINDS = ("status", "drop", "malformed", "late", "mutate")

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
#: The incident listings a ``mutate`` fault acts on (any other path it matches is left alone).
_LISTING_PATH = re.compile(r"^/(?:v1\.0|beta)/security/incidents/?$|^/api/incidents/?$")
#: ``lastModifiedBy`` of the incidents a ``mutate`` fault updates.
ANALYST = "analyst@emulator"


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
    :param apply_after_s: ``late`` only: seconds after the request arrived when its route runs.
    :param n: ``mutate`` only: incidents updated per touched listing request.
    :param probability: ``mutate`` only: chance that a matching listing request is touched.
    :param seed: ``mutate`` only: seed of the draws (which requests, which incidents).
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
    apply_after_s: float | None = None
    n: int = 1
    probability: float = 1.0
    seed: int = 0

    def __post_init__(self) -> None:
        # Not a field: the draws of a ``mutate`` fault, repeatable from its seed (checked in from_spec).
        self._rng = random.Random(self.seed if isinstance(self.seed, int) else 0)

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
        if isinstance(fault.n, bool) or not isinstance(fault.n, int) or fault.n < 1:
            raise FaultSpecError("'n' must be a whole number of at least 1 (incidents per request).")
        if (
            isinstance(fault.probability, bool)
            or not isinstance(fault.probability, int | float)
            or not 0 < fault.probability <= 1
        ):
            raise FaultSpecError("'probability' must be a number above 0 and at most 1.")
        if isinstance(fault.seed, bool) or not isinstance(fault.seed, int):
            raise FaultSpecError("'seed' must be a whole number.")
        fault._rng = random.Random(fault.seed)
        if fault.kind == "late" and (
            isinstance(fault.apply_after_s, bool)
            or not isinstance(fault.apply_after_s, int | float)
            or fault.apply_after_s < 0
        ):
            raise FaultSpecError(
                "A 'late' fault needs 'apply_after_s': seconds, 0 or more, until the change applies."
            )
        if fault.kind != "late" and fault.apply_after_s is not None:
            raise FaultSpecError("'apply_after_s' is for 'late' faults only.")
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
        data = {key: value for key, value in asdict(self).items() if value is not None}
        if self.kind != "mutate":
            for key in ("n", "probability", "seed"):
                data.pop(key, None)
        return data


class FaultRegistry:
    """The faults still to fire, in order; shared by the middleware and the admin routes."""

    def __init__(self) -> None:
        self._faults: list[Fault] = []
        self._lock = threading.Lock()
        #: Every update a ``mutate`` fault made, in order (``GET /_emulator/analyst-updates``).
        self.analyst_updates: list[dict[str, Any]] = []
        # Held from choosing incidents to logging their updates: concurrent listings touch in turn.
        self._mutating = threading.Lock()

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
                if fault.kind == "mutate" or not fault.matches(method, path, query):
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

    def take_mutations(self, method: str, path: str, query: str) -> list[Fault]:
        """The ``mutate`` faults touching this request (each using one of its count), in order."""
        if not _LISTING_PATH.match(path):
            return []
        chosen = []
        with self._lock:
            for fault in list(self._faults):
                if fault.kind != "mutate" or not fault.matches(method, path, query):
                    continue
                if fault.after:
                    fault.after -= 1
                    continue
                if fault.probability < 1 and fault._rng.random() >= fault.probability:
                    continue
                fault.count -= 1
                if fault.count <= 0:
                    self._faults.remove(fault)
                chosen.append(fault)
        return chosen

    def mutate(self, state: EmulatorState, fault: Fault, path: str, raw_query: str) -> list[dict[str, Any]]:
        """Update ``fault.n`` incidents matching the listing's ``$filter``, as an analyst would; logged.

        :param state: the run, for its incident store and data clock.
        :param fault: the ``mutate`` fault (its seed draws the incidents).
        :param path: the listing's path, which says whose ``$filter`` dialect it is.
        :param raw_query: the request's query string, still URL-encoded.
        :return: the updates made: ``{"id", "old", "new", "path", "filter", "at"}`` (``at``: wall clock).
        """
        from airflow_provider_mtp.emulator import odata
        from airflow_provider_mtp.emulator.routes import graph, legacy

        text = dict(parse_qsl(raw_query, keep_blank_values=True)).get("$filter") or ""
        is_legacy = path.startswith("/api/")
        fields: Mapping[str, Any] = legacy.FILTER_FIELDS if is_legacy else graph.FILTER_FIELDS
        view = legacy._filter_view if is_legacy else (lambda row: row)
        try:
            predicate = odata.parse_filter(text, fields=fields) if text else None
        except odata.ODataError:
            # The route answers the bad filter with its 400; an analyst has nothing to touch.
            return []
        made = []
        with self._mutating:
            matching = state.incidents.select(
                None if predicate is None else (lambda row: predicate(view(row))),
                [("lastUpdateDateTime", False)],
            )
            picked = sorted(fault._rng.sample(range(len(matching)), min(fault.n, len(matching))))
            for index in picked:
                old = matching[index]
                updated = state.incidents.update(old["id"], {}, author=ANALYST)
                if updated is None:
                    continue
                made.append(
                    {
                        "id": old["id"],
                        "old": old["lastUpdateDateTime"],
                        "new": updated["lastUpdateDateTime"],
                        "path": path,
                        "filter": text,
                        # Wall-clock time, so a test can tell which caller's listing it happened in.
                        "at": datetime.now(UTC).isoformat(),
                    }
                )
            self.analyst_updates.extend(made)
        return made

    def drain_analyst_updates(self) -> list[dict[str, Any]]:
        """The logged analyst updates, and forget them (none is lost to a concurrent listing)."""
        with self._mutating:
            updates = list(self.analyst_updates)
            self.analyst_updates.clear()
        return updates

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
        # The ``late`` faults' pending applies: the loop keeps only weak references to tasks.
        self._late: set[asyncio.Task[list[Message]]] = set()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith("/_emulator"):
            await self.app(scope, receive, send)
            return
        raw_query = scope.get("query_string", b"").decode("latin-1")
        query = unquote(raw_query)
        mutations = self.registry.take_mutations(scope["method"], scope["path"], query)
        if mutations:
            state: EmulatorState = scope["app"].state.emulator
            for mutation in mutations:
                self.registry.mutate(state, mutation, scope["path"], raw_query)
        fault = self.registry.take(scope["method"], scope["path"], query)
        if fault is None:
            await self.app(scope, receive, send)
            return
        if fault.kind == "late":
            await self._apply_late(scope, receive, send, fault)
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

    async def _apply_late(self, scope: Scope, receive: Receive, send: Send, fault: Fault) -> None:
        """A ``late`` fault: the route runs in the background later; the reply waits or never comes."""
        _name_route(scope)
        body = await _read_body(receive)
        assert fault.apply_after_s is not None
        applying = asyncio.create_task(_run_later(self.app, dict(scope), body, fault.apply_after_s))
        self._late.add(applying)
        applying.add_done_callback(self._late.discard)
        gone = asyncio.create_task(_until_disconnect(receive))
        timer = asyncio.create_task(asyncio.sleep(fault.delay_s)) if fault.delay_s else None
        waiting: set[asyncio.Future[Any]] = {applying, gone} | ({timer} if timer else set())
        done, _ = await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
        for task in (gone, timer):
            if task is not None and not task.done():
                task.cancel()
        if applying in done and applying.exception() is None:
            for message in applying.result():
                await send(message)
        elif timer is not None and timer in done:
            await _drop(send)
        else:
            # The client is gone: nothing reaches the wire, but the request counter sees 499
            # ("client closed request") instead of a made-up server error.
            await send({"type": "http.response.start", "status": 499, "headers": []})


async def _read_body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return b"".join(chunks)
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


async def _until_disconnect(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


async def _run_later(app: ASGIApp, scope: Scope, body: bytes, delay: float) -> list[Message]:
    """Run ``app`` on a request already read, ``delay`` seconds from now; the messages it sent."""
    await asyncio.sleep(delay)
    sent: list[Message] = []
    delivered = False

    async def replay() -> Message:
        nonlocal delivered
        if delivered:
            return {"type": "http.disconnect"}
        delivered = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def keep(message: Message) -> None:
        sent.append(message)

    await app(scope, replay, keep)
    return sent


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
