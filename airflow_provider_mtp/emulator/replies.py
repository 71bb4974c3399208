"""Error replies in each service's own shape (defender-api.md sections 1.4 and 9)."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from http import HTTPStatus
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException


class ApiError(Exception):
    """An API failure; the handler writes it in the Graph or the MTP shape, by the route it hit.

    :param status: HTTP status.
    :param code: the service's error code (``Forbidden``, ``BadRequest``, ...).
    :param message: the service's message.
    :param headers: extra response headers (``Retry-After``).
    """

    def __init__(
        self, status: int, code: str, message: str, headers: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = dict(headers or {})


class EntraError(Exception):
    """A token endpoint failure with Entra's body.

    :param status: HTTP status (400, or 401 for a wrong client secret).
    :param error: the OAuth error (``invalid_client``, ``invalid_scope``, ...).
    :param code: the AADSTS number.
    :param description: the text after ``AADSTS<code>: ``.
    """

    def __init__(self, status: int, error: str, code: int, description: str) -> None:
        super().__init__(f"AADSTS{code}: {description}")
        self.status = status
        self.error = error
        self.code = code
        self.description = description


def request_ids(request: Request) -> tuple[str, str]:
    """The request id the reply carries and the client's own id, echoed as Graph does."""
    client_id = request.headers.get("client-request-id") or str(uuid.uuid4())
    return str(uuid.uuid4()), client_id


def is_legacy(request: Request) -> bool:
    return request.url.path.startswith("/api/")


async def api_error_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return api_error_reply(request, exc)


def api_error_reply(request: Request, exc: ApiError) -> JSONResponse:
    """``exc`` in the MTP shape under ``/api/``, else in Graph's."""
    request_id, client_request_id = request_ids(request)
    if is_legacy(request):
        body: dict[str, Any] = {
            "error": {"code": exc.code, "message": exc.message, "target": f"|{request_id}."}
        }
    else:
        body = {
            "error": {
                "code": exc.code,
                "message": exc.message,
                "innerError": {
                    "date": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S"),
                    "request-id": request_id,
                    "client-request-id": client_request_id,
                },
            }
        }
    headers = {"request-id": request_id, "client-request-id": client_request_id, **exc.headers}
    return JSONResponse(body, status_code=exc.status, headers=headers)


async def entra_error_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, EntraError)
    return entra_error_reply(exc)


def entra_error_reply(exc: EntraError) -> JSONResponse:
    """``exc`` in Entra ID's OAuth error shape."""
    trace_id, correlation_id = str(uuid.uuid4()), str(uuid.uuid4())
    now = datetime.now(UTC)
    body = {
        "error": exc.error,
        "error_description": (
            f"AADSTS{exc.code}: {exc.description} Trace ID: {trace_id} Correlation ID: {correlation_id} "
            f"Timestamp: {now.strftime('%Y-%m-%d %H:%M:%SZ')}"
        ),
        "error_codes": [exc.code],
        "timestamp": now.strftime("%Y-%m-%d %H:%M:%SZ"),
        "trace_id": trace_id,
        "correlation_id": correlation_id,
    }
    return JSONResponse(body, status_code=exc.status)


async def http_error_handler(request: Request, exc: Exception) -> JSONResponse:
    """Starlette's own failures (no such route, a method the route does not take) in the API's shape.

    Not FastAPI's ``{"detail": "Not Found"}``: clients of either API read ``error.code`` and
    ``error.message``. 404 names the path, its first segment no route knows, and the routes there
    are; 405 names the methods the path takes (also in ``Allow``).
    """
    assert isinstance(exc, StarletteHTTPException)
    routes = _route_table(request)
    if exc.status_code == 404:
        error = ApiError(
            404, "NotFound" if is_legacy(request) else "ResourceNotFound", _not_found(request, routes)
        )
    elif exc.status_code == 405:
        path = request.url.path
        matched = [(template, methods) for template, methods in routes if _matches(template, path)]
        if any(template.endswith(_TOKEN_ENDPOINTS) for template, _ in matched):
            # What Entra ID answers a GET on its token endpoint, in its own shape (msal reads it).
            return entra_error_reply(
                EntraError(
                    400,
                    "invalid_request",
                    900561,
                    f"The endpoint only accepts POST, OPTIONS requests. Received a {request.method} request.",
                )
            )
        allowed = sorted({method for _, methods in matched for method in methods})
        error = ApiError(
            405,
            "MethodNotAllowed",
            f"The HTTP method '{request.method}' is not allowed on {request.url.path}; "
            f"it takes {', '.join(allowed) or 'no method'}.",
            {"Allow": ", ".join(allowed)},
        )
    else:
        error = ApiError(exc.status_code, _status_code_name(exc.status_code), str(exc.detail), exc.headers)
    return api_error_reply(request, error)


#: Entra ID's token endpoints, whose wrong-method answer is Entra's own (AADSTS900561).
_TOKEN_ENDPOINTS = ("/oauth2/v2.0/token", "/oauth2/token")

#: Where each API lives at the emulator's origin, for a 404 outside all of them.
_API_ROOTS = (
    "the Graph security API is under /v1.0/security and /beta/security, the MTP API under /api, "
    "Entra ID under /{tenant}/oauth2, and the emulator's own routes under /_emulator"
)


def _status_code_name(status: int) -> str:
    """``BadRequest`` for 400: the services' codes are the status phrases without spaces."""
    try:
        return HTTPStatus(status).phrase.replace(" ", "")
    except ValueError:
        return str(status)


def _route_table(request: Request) -> list[tuple[str, set[str]]]:
    """``(path template, methods)`` of every route the app serves, one entry per template."""
    table: dict[str, set[str]] = {}
    for route in request.app.routes:
        template, methods = getattr(route, "path", None), getattr(route, "methods", None)
        if isinstance(template, str) and methods:
            table.setdefault(template, set()).update(methods)
    return list(table.items())


def _segments(path: str) -> list[str]:
    return [part for part in path.split("/") if part]


def _known_prefix(template: str, path: str) -> int:
    """How many of ``path``'s leading segments ``template`` matches (``{name}`` matches any one)."""
    matched = 0
    for want, have in zip(_segments(template), _segments(path), strict=False):
        if want != have and not (want.startswith("{") and want.endswith("}")):
            break
        matched += 1
    return matched


def _matches(template: str, path: str) -> bool:
    return _known_prefix(template, path) == len(_segments(template)) == len(_segments(path))


def _not_found(request: Request, routes: list[tuple[str, set[str]]]) -> str:
    path = request.url.path
    segments = _segments(path)
    root = f"/{segments[0]}" if segments else "/"
    # Only the routes of the API the path is in: /v1.0, /beta, /api or /_emulator.
    family = [(template, methods) for template, methods in routes if template.startswith(f"{root}/")]
    if not family or root not in ("/v1.0", "/beta", "/api", "/_emulator"):
        return f"No route {request.method} {path} on this emulator: {_API_ROOTS}."
    known = max(_known_prefix(template, path) for template, _ in family)
    where = (
        f"Resource not found for the segment '{segments[known]}'"
        if known < len(segments)
        else (f"Resource not found for the path '{path}'")
    )
    served = ", ".join(f"{'|'.join(sorted(methods))} {template}" for template, methods in family)
    return f"{where}. The routes under {root} are: {served}."
