"""Error replies in each service's own shape (defender-api.md sections 1.4 and 9)."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse


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
