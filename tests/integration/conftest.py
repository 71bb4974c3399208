"""Emulators shared by the integration tests, and small HTTP helpers."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests

from airflow_provider_mtp.emulator import DefenderEmulator
from tests.conftest import TEST_NOW

#: The emulator's token routes, as its request counters name them.
TOKEN_ROUTES = ("POST /{tenant}/oauth2/v2.0/token", "GET /msi/token")

GRAPH = "https://graph.microsoft.com"
MTP = "https://api.security.microsoft.com"


@pytest.fixture(scope="session")
def defender_emulator_options() -> dict[str, Any]:
    return {"seed": 7, "now": TEST_NOW}


@pytest.fixture(scope="session")
def strict_emulator() -> Iterator[DefenderEmulator]:
    """A small tenant with short-lived tokens and hunts over the row limit failing."""
    with DefenderEmulator(
        seed=11,
        now=TEST_NOW,
        incidents=20,
        days=3,
        events_per_day=50,
        token_lifetime=2,
        row_limit_behaviour="error",
    ) as emulator:
        yield emulator


@pytest.fixture(scope="module")
def short_lived_emulator() -> Iterator[DefenderEmulator]:
    """Tokens that live 360 s: 60 s before msal's 300 s refresh margin.

    msal's clock in the tests is the wall clock plus an offset they move, so the 60 s leave room
    for a slow machine between fetching a token and asking for it again.
    """
    with DefenderEmulator(
        seed=5, now=TEST_NOW, incidents=3, days=1, events_per_day=5, token_lifetime=360
    ) as emulator:
        yield emulator


def token_requests(emulator: DefenderEmulator) -> int:
    """Tokens issued; every token request succeeded."""
    stats = emulator.stats()
    asked = sum(count for route in TOKEN_ROUTES for count in stats["requests"].get(route, {}).values())
    issued = sum(stats["tokens_issued"].values())
    assert issued == asked, f"{asked - issued} token requests failed"
    return issued


def token(emulator: DefenderEmulator, audience: str, *, app: str | None = None) -> str:
    """A v2 client-credentials token from the emulator, with plain requests."""
    client_id, secret = emulator.client_id, emulator.client_secret
    if app is not None:
        client_id, secret = emulator.apps[app]["client_id"], emulator.apps[app]["client_secret"]
    reply = requests.post(
        f"{emulator.url}/{emulator.tenant_id}/oauth2/v2.0/token",
        data={
            "grant_type": "client_credentials",
            "client_id": client_id,
            "client_secret": secret,
            "scope": f"{audience}/.default",
        },
        verify=emulator.ca_bundle,
        timeout=30,
    )
    reply.raise_for_status()
    return str(reply.json()["access_token"])


def call(
    emulator: DefenderEmulator,
    method: str,
    path_or_url: str,
    *,
    bearer: str,
    **kwargs: Any,
) -> requests.Response:
    url = path_or_url if path_or_url.startswith("https://") else f"{emulator.url}{path_or_url}"
    return requests.request(
        method,
        url,
        headers={"Authorization": f"Bearer {bearer}"},
        verify=emulator.ca_bundle,
        timeout=120,
        **kwargs,
    )


def graph_hunt(emulator: DefenderEmulator, bearer: str, query: str, **body: Any) -> requests.Response:
    return call(
        emulator, "POST", "/v1.0/security/runHuntingQuery", bearer=bearer, json={"Query": query, **body}
    )


def legacy_hunt(emulator: DefenderEmulator, bearer: str, query: str) -> requests.Response:
    return call(emulator, "POST", "/api/advancedhunting/run", bearer=bearer, json={"Query": query})
