"""The emulator's contract with plain HTTP clients: ready line, tokens, paging, hunting, determinism."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import msal

from airflow_provider_mtp.api.session import ProviderSession
from airflow_provider_mtp.emulator import DefenderEmulator
from tests.conftest import TEST_NOW
from tests.integration.conftest import GRAPH, MTP, call, graph_hunt, legacy_hunt, token

TOP5 = "DeviceProcessEvents | where Timestamp > ago(1d) | summarize Count = count() by DeviceName | top 5 by Count"


def test_ready_line_has_the_contract_keys(defender_emulator: DefenderEmulator) -> None:
    info = defender_emulator.info
    assert set(info) >= {
        "url",
        "ca_bundle",
        "tenant_id",
        "client_id",
        "client_secret",
        "airflow_conn",
        "apps",
    }
    assert info["url"].startswith("https://127.0.0.1:")
    assert info["url"].count("/") == 2, "url is an origin with no path"
    conn = json.loads(info["airflow_conn"])
    assert conn["conn_type"] == "mtp"
    assert conn["login"] == info["client_id"]
    assert conn["password"] == info["client_secret"]
    assert conn["extra"] == {
        "tenant_id": info["tenant_id"],
        "api": "graph",
        "api_url": info["url"],
        "login_url": info["url"],
        "ca_bundle": info["ca_bundle"],
    }
    assert {"read_only", "no_hunting"} <= set(info["apps"])


def test_cli_prints_only_the_ready_line_on_stdout() -> None:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "airflow_provider_mtp.emulator",
            "--port",
            "0",
            "--incidents",
            "3",
            "--events-per-day",
            "5",
            "--days",
            "1",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    process.terminate()
    rest, errors = process.communicate(timeout=30)
    assert json.loads(line)["url"].startswith("https://")
    assert rest == b"", "nothing but the ready line goes to stdout"
    assert b"emulator ready" in errors
    assert process.returncode == 0, "SIGTERM stops it cleanly"


def test_v2_client_credentials_token_is_a_jwt_for_the_audience(defender_emulator: DefenderEmulator) -> None:
    import jwt

    claims = jwt.decode(token(defender_emulator, GRAPH), options={"verify_signature": False})
    assert claims["aud"] == GRAPH
    assert claims["tid"] == defender_emulator.tenant_id
    assert claims["azp"] == defender_emulator.client_id
    assert "ThreatHunting.Read.All" in claims["roles"]
    assert claims["exp"] - claims["iat"] == 3599


def _graph_ids(emulator: DefenderEmulator, bearer: str) -> list[str]:
    ids: list[str] = []
    url: str | None = f"{emulator.url}/v1.0/security/incidents?$top=50"
    while url:
        page = call(emulator, "GET", url, bearer=bearer).json()
        ids += [incident["id"] for incident in page["value"]]
        url = page.get("@odata.nextLink")
    return ids


def _legacy_ids(emulator: DefenderEmulator, bearer: str) -> list[str]:
    ids: list[str] = []
    skip = 0
    while True:
        page = call(emulator, "GET", f"/api/incidents?$top=100&$skip={skip}", bearer=bearer).json()["value"]
        ids += [str(incident["incidentId"]) for incident in page]
        if len(page) < 100:
            return ids
        skip += 100


def test_graph_paging_and_legacy_paging_list_the_same_incidents(defender_emulator: DefenderEmulator) -> None:
    graph_ids = _graph_ids(defender_emulator, token(defender_emulator, GRAPH))
    legacy_ids = _legacy_ids(defender_emulator, token(defender_emulator, MTP))
    assert len(graph_ids) == 500 == len(set(graph_ids))
    assert graph_ids == legacy_ids


def test_same_hunt_same_rows_on_both_back_ends_call_after_call(defender_emulator: DefenderEmulator) -> None:
    graph_token, mtp_token = token(defender_emulator, GRAPH), token(defender_emulator, MTP)
    answers = []
    for _ in range(3):
        graph = graph_hunt(defender_emulator, graph_token, TOP5).json()
        legacy = legacy_hunt(defender_emulator, mtp_token, TOP5).json()
        assert graph["results"] == legacy["Results"]
        assert [(c["name"], c["type"]) for c in graph["schema"]] == [
            (c["Name"], c["Type"]) for c in legacy["Schema"]
        ]
        answers.append(graph["results"])
    assert len(answers[0]) == 5
    assert answers[0] == answers[1] == answers[2]
    counts = [row["Count"] for row in answers[0]]
    assert counts == sorted(counts, reverse=True)


def test_msal_gets_a_token_and_serves_the_second_from_its_cache(defender_emulator: DefenderEmulator) -> None:
    session = ProviderSession(ca_bundle=defender_emulator.ca_bundle)
    app = msal.ConfidentialClientApplication(
        defender_emulator.client_id,
        client_credential=defender_emulator.client_secret,
        authority=f"{defender_emulator.url}/{defender_emulator.tenant_id}",
        http_client=session,
        instance_discovery=False,
    )
    scopes = [f"{GRAPH}/.default"]
    first = app.acquire_token_for_client(scopes=scopes)
    assert "access_token" in first, first
    issued = defender_emulator.stats()["tokens_issued"][defender_emulator.client_id]
    second = app.acquire_token_for_client(scopes=scopes)
    assert second["access_token"] == first["access_token"]
    assert second.get("token_source") == "cache"
    assert defender_emulator.stats()["tokens_issued"][defender_emulator.client_id] == issued


def _normalised(emulator: DefenderEmulator) -> dict[str, Any]:
    graph_token, mtp_token = token(emulator, GRAPH), token(emulator, MTP)
    answers = {
        "graph": call(
            emulator, "GET", "/v1.0/security/incidents?$top=50&$expand=alerts", bearer=graph_token
        ).json(),
        "legacy": call(emulator, "GET", "/api/incidents?$top=100", bearer=mtp_token).json(),
        "hunt": graph_hunt(emulator, graph_token, TOP5).json(),
        "sample": legacy_hunt(emulator, mtp_token, "DeviceNetworkEvents | take 20").json()["Results"],
        "emails": graph_hunt(emulator, graph_token, "EmailEvents | summarize n = count() by Subject").json(),
        "ready": json.loads(json.dumps(emulator.info)),
    }
    # Key material is made afresh each start (the TLS CA and the cert app's key); the data is not.
    del answers["ready"]["apps"]["cert"]["certificate_thumbprint"]
    state_dir = os.path.dirname(emulator.ca_bundle)
    return json.loads(json.dumps(answers).replace(emulator.url, "ORIGIN").replace(state_dir, "STATE"))


def test_two_starts_with_the_same_seed_and_now_answer_identically(
    defender_emulator: DefenderEmulator,
) -> None:
    with DefenderEmulator(seed=7, now=TEST_NOW) as second:
        assert second.url != defender_emulator.url
        assert _normalised(second) == _normalised(defender_emulator)
