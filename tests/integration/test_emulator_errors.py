"""One test per error the emulator reproduces: status, code and message, in each back end's shape."""

from __future__ import annotations

import time

import jwt
import pytest
import requests

from airflow_provider_mtp.emulator import DefenderEmulator
from tests.integration.conftest import GRAPH, MTP, call, graph_hunt, legacy_hunt, token

OVER_LIMIT = "range x from 1 to 100005 step 1"


def _error(response: requests.Response) -> dict[str, str]:
    error: dict[str, str] = response.json()["error"]
    return error


@pytest.mark.parametrize("back_end", ["graph", "legacy"])
def test_bad_kql_is_a_400_that_points_at_the_problem(
    defender_emulator: DefenderEmulator, back_end: str
) -> None:
    if back_end == "graph":
        response = graph_hunt(
            defender_emulator, token(defender_emulator, GRAPH), "DeviceProcessEvents | where | x"
        )
    else:
        response = legacy_hunt(
            defender_emulator, token(defender_emulator, MTP), "DeviceProcessEvents | where | x"
        )
    assert response.status_code == 400
    error = _error(response)
    assert error["code"] == "BadRequest"
    assert "1:" in error["message"] or "line 1" in error["message"]
    assert "select" not in error["message"].lower(), "no internal SQL leaks"


def test_unknown_column_names_the_column(defender_emulator: DefenderEmulator) -> None:
    response = graph_hunt(
        defender_emulator, token(defender_emulator, GRAPH), 'DeviceProcessEvents | where FileNam == "cmd.exe"'
    )
    assert response.status_code == 400
    error = _error(response)
    assert error["code"] == "BadRequest"
    assert "FileNam" in error["message"]
    assert "Failed to resolve" in error["message"]


def test_row_limit_truncates_at_exactly_100000_by_default(defender_emulator: DefenderEmulator) -> None:
    graph = graph_hunt(defender_emulator, token(defender_emulator, GRAPH), OVER_LIMIT)
    assert graph.status_code == 200
    assert len(graph.json()["results"]) == 100_000
    legacy = legacy_hunt(defender_emulator, token(defender_emulator, MTP), OVER_LIMIT)
    assert len(legacy.json()["Results"]) == 100_000


def test_row_limit_error_behaviour_names_the_limit(strict_emulator: DefenderEmulator) -> None:
    for response in (
        graph_hunt(strict_emulator, token(strict_emulator, GRAPH), OVER_LIMIT),
        legacy_hunt(strict_emulator, token(strict_emulator, MTP), OVER_LIMIT),
    ):
        assert response.status_code == 400
        error = _error(response)
        assert error["code"] == "BadRequest"
        assert "100,000" in error["message"] or "100000" in error["message"]


def test_hunting_quota_answers_429_with_retry_after(defender_emulator: DefenderEmulator) -> None:
    defender_emulator.reset()
    graph_token, mtp_token = token(defender_emulator, GRAPH), token(defender_emulator, MTP)
    try:
        # One budget per tenant across both back ends: 45 a minute.
        statuses = [graph_hunt(defender_emulator, graph_token, "print x = 1").status_code for _ in range(30)]
        statuses += [legacy_hunt(defender_emulator, mtp_token, "print x = 1").status_code for _ in range(15)]
        assert statuses == [200] * 45
        graph = graph_hunt(defender_emulator, graph_token, "print x = 1")
        legacy = legacy_hunt(defender_emulator, mtp_token, "print x = 1")
    finally:
        defender_emulator.reset()
    assert graph.status_code == 429
    assert 1 <= int(graph.headers["Retry-After"]) <= 60
    assert _error(graph)["code"] == "TooManyRequests"
    assert legacy.status_code == 429
    assert _error(legacy)["code"] == "429"
    assert _error(legacy)["message"] == "API calls quota exceeded! maximum allowed 45 per 00:01:00"
    assert 1 <= int(legacy.headers["Retry-After"]) <= 60


def test_missing_role_is_a_403_that_names_the_role(defender_emulator: DefenderEmulator) -> None:
    graph = graph_hunt(defender_emulator, token(defender_emulator, GRAPH, app="no_hunting"), "print x = 1")
    assert graph.status_code == 403
    assert _error(graph)["code"] == "Forbidden"
    assert "ThreatHunting.Read.All" in _error(graph)["message"]
    legacy = call(
        defender_emulator,
        "PATCH",
        "/api/incidents/1000",
        bearer=token(defender_emulator, MTP, app="read_only"),
        json={"status": "Resolved"},
    )
    assert legacy.status_code == 403
    assert "Incident.ReadWrite.All" in _error(legacy)["message"]


def test_expired_token_is_a_401(strict_emulator: DefenderEmulator) -> None:
    graph_token, mtp_token = token(strict_emulator, GRAPH), token(strict_emulator, MTP)
    assert call(strict_emulator, "GET", "/v1.0/security/incidents", bearer=graph_token).status_code == 200
    # The strict emulator's tokens live 2 s on its wall clock (a separate process): wait until
    # both have just turned expired, at most 2 s, rather than a fixed margin past the lifetime.
    expires = max(
        jwt.decode(bearer, options={"verify_signature": False})["exp"] for bearer in (graph_token, mtp_token)
    )
    time.sleep(max(0.0, expires - time.time() + 0.05))
    graph = call(strict_emulator, "GET", "/v1.0/security/incidents", bearer=graph_token)
    assert graph.status_code == 401
    assert _error(graph)["code"] == "InvalidAuthenticationToken"
    assert "expired" in _error(graph)["message"]
    legacy = call(strict_emulator, "GET", "/api/incidents", bearer=mtp_token)
    assert legacy.status_code == 401
    assert _error(legacy)["code"] == "Unauthorized"
    assert "expired" in _error(legacy)["message"]


def test_token_for_the_other_api_is_a_401(defender_emulator: DefenderEmulator) -> None:
    response = call(defender_emulator, "GET", "/api/incidents", bearer=token(defender_emulator, GRAPH))
    assert response.status_code == 401
    assert "audience" in _error(response)["message"].lower()


def test_unknown_incident_is_a_404(defender_emulator: DefenderEmulator) -> None:
    graph = call(
        defender_emulator, "GET", "/v1.0/security/incidents/999999999", bearer=token(defender_emulator, GRAPH)
    )
    assert graph.status_code == 404
    assert _error(graph)["code"] == "NotFound"
    assert "999999999" in _error(graph)["message"]
    legacy = call(defender_emulator, "GET", "/api/incidents/999999999", bearer=token(defender_emulator, MTP))
    assert legacy.status_code == 404
    assert _error(legacy)["code"] == "ResourceNotFound"


def test_bad_filter_is_a_400(defender_emulator: DefenderEmulator) -> None:
    graph = call(
        defender_emulator,
        "GET",
        "/v1.0/security/incidents",
        bearer=token(defender_emulator, GRAPH),
        params={"$filter": "colour eq 'red'"},
    )
    assert graph.status_code == 400
    assert _error(graph)["code"] == "BadRequest"
    assert "colour" in _error(graph)["message"]
    legacy = call(
        defender_emulator,
        "GET",
        "/api/incidents",
        bearer=token(defender_emulator, MTP),
        params={"$filter": "severity eq 'High'"},
    )
    assert legacy.status_code == 400
    assert _error(legacy)["code"] == "ODataError"
    assert "severity" in _error(legacy)["message"]


def test_top_over_the_graph_maximum_is_graphs_400(defender_emulator: DefenderEmulator) -> None:
    response = call(
        defender_emulator, "GET", "/v1.0/security/incidents?$top=100", bearer=token(defender_emulator, GRAPH)
    )
    assert response.status_code == 400
    assert _error(response)["message"] == (
        "The query specified in the URI is not valid. The limit of '50' for Top query has been exceeded. "
        "The value from the incoming request is '100'."
    )


def test_wrong_secret_gets_entras_error_body(defender_emulator: DefenderEmulator) -> None:
    issued_before = defender_emulator.stats()["tokens_issued"].get(defender_emulator.client_id, 0)
    response = requests.post(
        f"{defender_emulator.url}/{defender_emulator.tenant_id}/oauth2/v2.0/token",
        data={
            "grant_type": "client_credentials",
            "client_id": defender_emulator.client_id,
            "client_secret": "not-the-secret",
            "scope": f"{GRAPH}/.default",
        },
        verify=defender_emulator.ca_bundle,
        timeout=30,
    )
    assert response.status_code == 401
    body = response.json()
    assert body["error"] == "invalid_client"
    assert body["error_codes"] == [7000215]
    assert body["error_description"].startswith("AADSTS7000215: Invalid client secret provided.")
    assert defender_emulator.stats()["tokens_issued"].get(defender_emulator.client_id, 0) == issued_before


@pytest.mark.parametrize(
    ("tenant", "scope", "client", "error", "code"),
    [
        ("not a tenant!", f"{GRAPH}/.default", None, "invalid_request", 900023),
        ("00000000-0000-0000-0000-000000000000", f"{GRAPH}/.default", None, "invalid_tenant", 90002),
        (None, f"{GRAPH}/SecurityIncident.Read.All", None, "invalid_scope", 70011),
        (None, "https://api.securitycenter.microsoft.com/.default", None, "invalid_resource", 500011),
        (None, f"{GRAPH}/.default", "11111111-1111-1111-1111-111111111111", "unauthorized_client", 700016),
    ],
)
def test_other_token_failures_get_their_aadsts_codes(
    defender_emulator: DefenderEmulator,
    tenant: str | None,
    scope: str,
    client: str | None,
    error: str,
    code: int,
) -> None:
    response = requests.post(
        f"{defender_emulator.url}/{tenant or defender_emulator.tenant_id}/oauth2/v2.0/token",
        data={
            "grant_type": "client_credentials",
            "client_id": client or defender_emulator.client_id,
            "client_secret": defender_emulator.client_secret,
            "scope": scope,
        },
        verify=defender_emulator.ca_bundle,
        timeout=30,
    )
    assert response.status_code == 400
    body = response.json()
    assert (body["error"], body["error_codes"]) == (error, [code])
    assert body["error_description"].startswith(f"AADSTS{code}: ")
