"""Unknown routes and wrong methods answer in the shape of the API the path belongs to (issue 10).

Graph paths get Graph's ``{"error": {"code", "message", "innerError"}}``, ``/api/`` paths the MTP
API's ``{"error": {"code", "message", "target"}}``, anything else a Graph-shaped body that says where
each API lives; never FastAPI's ``{"detail": "Not Found"}``. A 405 carries ``Allow``.
"""

from __future__ import annotations

from typing import Any

import pytest
import requests

from airflow_provider_mtp.emulator import DefenderEmulator
from tests.integration.conftest import GRAPH, MTP, call, token


def graph_error(reply: requests.Response) -> dict[str, Any]:
    body = reply.json()
    assert set(body) == {"error"}, body
    assert set(body["error"]) == {"code", "message", "innerError"}, body
    assert set(body["error"]["innerError"]) == {"date", "request-id", "client-request-id"}
    assert reply.headers["request-id"] == body["error"]["innerError"]["request-id"]
    error: dict[str, Any] = body["error"]
    return error


def legacy_error(reply: requests.Response) -> dict[str, Any]:
    body = reply.json()
    assert set(body) == {"error"}, body
    assert set(body["error"]) == {"code", "message", "target"}, body
    assert body["error"]["target"].startswith("|")
    error: dict[str, Any] = body["error"]
    return error


@pytest.mark.parametrize(
    ("path", "segment"),
    [
        ("/v1.0/security/alerts_v3", "alerts_v3"),
        ("/beta/security/incidents/1/tasks", "tasks"),
        ("/v1.0/securty/incidents", "securty"),
        ("/v1.0/security/incidents/1/comments/2", "2"),
    ],
)
def test_an_unknown_graph_path_is_a_graph_404_naming_the_segment(
    defender_emulator: DefenderEmulator, path: str, segment: str
) -> None:
    reply = call(defender_emulator, "GET", path, bearer=token(defender_emulator, GRAPH))
    assert reply.status_code == 404
    assert reply.headers["content-type"] == "application/json"
    error = graph_error(reply)
    assert error["code"] == "ResourceNotFound"
    assert error["message"].startswith(f"Resource not found for the segment '{segment}'. The routes under /")
    assert "GET|PATCH /" in error["message"], "lists the routes that are there"


def test_an_unknown_legacy_path_is_an_mtp_404(defender_emulator: DefenderEmulator) -> None:
    reply = call(defender_emulator, "GET", "/api/machines", bearer=token(defender_emulator, MTP))
    assert reply.status_code == 404
    error = legacy_error(reply)
    assert error["code"] == "NotFound"
    assert error["message"].startswith(
        "Resource not found for the segment 'machines'. The routes under /api are: "
    )
    assert "POST /api/advancedhunting/run" in error["message"]


@pytest.mark.parametrize("path", ["/security/incidents", "/v2.0/security/incidents", "/"])
def test_a_path_outside_every_api_says_where_they_are(defender_emulator: DefenderEmulator, path: str) -> None:
    reply = requests.get(f"{defender_emulator.url}{path}", verify=defender_emulator.ca_bundle, timeout=30)
    assert reply.status_code == 404
    error = graph_error(reply)
    assert error["code"] == "ResourceNotFound"
    assert error["message"].startswith(
        f"No route GET {path} on this emulator: the Graph security API is under /v1.0"
    )
    assert "the MTP API under /api" in error["message"]


def test_a_method_a_graph_route_does_not_take_is_a_graph_405(defender_emulator: DefenderEmulator) -> None:
    reply = call(
        defender_emulator, "DELETE", "/v1.0/security/incidents/1", bearer=token(defender_emulator, GRAPH)
    )
    assert reply.status_code == 405
    assert reply.headers["Allow"] == "GET, PATCH"
    error = graph_error(reply)
    assert error == {
        **error,
        "code": "MethodNotAllowed",
        "message": "The HTTP method 'DELETE' is not allowed on /v1.0/security/incidents/1; it takes GET, PATCH.",
    }
    listing = call(defender_emulator, "POST", "/beta/security/incidents", bearer="x", json={})
    assert listing.status_code == 405
    assert listing.headers["Allow"] == "GET"
    assert graph_error(listing)["code"] == "MethodNotAllowed"


def test_a_method_a_legacy_route_does_not_take_is_an_mtp_405(defender_emulator: DefenderEmulator) -> None:
    reply = call(defender_emulator, "GET", "/api/advancedhunting/run", bearer=token(defender_emulator, MTP))
    assert reply.status_code == 405
    assert reply.headers["Allow"] == "POST"
    error = legacy_error(reply)
    assert error["code"] == "MethodNotAllowed"
    assert (
        error["message"] == "The HTTP method 'GET' is not allowed on /api/advancedhunting/run; it takes POST."
    )


def test_a_get_on_the_token_endpoint_is_entras_aadsts900561(defender_emulator: DefenderEmulator) -> None:
    url = f"{defender_emulator.url}/{defender_emulator.tenant_id}/oauth2/v2.0/token"
    reply = requests.get(url, verify=defender_emulator.ca_bundle, timeout=30)
    assert reply.status_code == 400
    body = reply.json()
    assert body["error"] == "invalid_request"
    assert body["error_codes"] == [900561]
    assert body["error_description"].startswith(
        "AADSTS900561: The endpoint only accepts POST, OPTIONS requests. Received a GET request."
    )


def test_known_routes_still_answer_their_own_errors(defender_emulator: DefenderEmulator) -> None:
    """The fallback only takes what no route answered: a missing incident is still the route's 404."""
    graph = call(
        defender_emulator, "GET", "/v1.0/security/incidents/999999", bearer=token(defender_emulator, GRAPH)
    )
    assert graph.status_code == 404
    assert graph_error(graph) == {
        **graph_error(graph),
        "code": "NotFound",
        "message": "Incident 999999 was not found.",
    }
    legacy = call(defender_emulator, "GET", "/api/incidents/999999", bearer=token(defender_emulator, MTP))
    assert legacy_error(legacy)["code"] == "ResourceNotFound"
    stats = defender_emulator.stats()["requests"]
    assert stats.get("GET /v1.0/security/incidents/{incident_id}", {}).get("404", 0) >= 1
