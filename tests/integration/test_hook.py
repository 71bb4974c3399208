"""MTPHook and MTPAsyncHook against the emulator, configured the way users do: Airflow connections.

* every auth type gets a token and reads incidents, on both back ends and through both hooks;
* a process asks Entra ID once per token lifetime however many hooks, threads and triggers share
  it, and exactly once more when the token enters msal's refresh margin;
* both back ends, and both hooks, list the same incidents with the same fields and spellings;
* no secret, key, password or token reaches a log line, and Airflow's masker knows them;
* ``test_connection()`` names the missing permission or the field to fix;
* the async hook reads its connection the async way, recovers from a 401 mid-paging and retries
  what the sync transport retries.

Connections are ``AIRFLOW_CONN_*`` variables (no metadata database needed).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import re
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import aclosing
from pathlib import Path
from typing import Any

import msal
import pytest
from airflow.sdk import Connection
from airflow.sdk.exceptions import AirflowNotFoundException

from airflow_provider_mtp import auth
from airflow_provider_mtp.emulator import DefenderEmulator
from airflow_provider_mtp.errors import MTPConfigError, MTPNotFoundError, MTPThrottledError
from airflow_provider_mtp.hooks.mtp import MTPHook
from airflow_provider_mtp.hooks.mtp_async import MTPAsyncHook
from tests.integration.conftest import token_requests
from tests.integration.msal_clock import MsalClock

AUTH_TYPES = ("client_secret", "certificate", "user_password", "managed_identity", "workload_identity")
APIS = ("graph", "legacy")
CONN_ID = "mtp_hook_test"
INCIDENTS_PATH = {"graph": "/v1.0/security/incidents", "legacy": "/api/incidents"}
PAGE_SIZE = {"graph": 50, "legacy": 100}
TRANSPORT_LOGGER = "airflow_provider_mtp.api.transport"

#: Graph's spellings (defender-api.md section 5), written out here rather than taken from the code
#: under test.
GRAPH_SPELLINGS: dict[str, set[str]] = {
    "status": {"active", "inProgress", "resolved", "redirected"},
    "severity": {"unknown", "informational", "low", "medium", "high"},
    "classification": {"unknown", "falsePositive", "truePositive", "informationalExpectedActivity"},
    "determination": {
        "unknown",
        "apt",
        "malware",
        "securityPersonnel",
        "securityTesting",
        "unwantedSoftware",
        "other",
        "multiStagedAttack",
        "maliciousUserActivity",
        "compromisedAccount",
        "compromisedUser",
        "phishing",
        "lineOfBusinessApplication",
        "confirmedActivity",
        "confirmedUserActivity",
        "clean",
        "notMalicious",
        "notEnoughDataToValidate",
        "insufficientData",
    },
}
ALERT_ENUMS = ("status", "severity", "classification", "determination", "serviceSource")


# --------------------------------------------------------------------------------------------------
# Fixtures and helpers
# --------------------------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _empty_token_cache() -> Iterator[None]:
    auth.clear_token_cache()
    yield
    auth.clear_token_cache()


@pytest.fixture(autouse=True)
def _managed_identity_env(defender_emulator: DefenderEmulator, monkeypatch: pytest.MonkeyPatch) -> None:
    """What App Service sets; msal's managed identity client reads it."""
    identity = defender_emulator.info["managed_identity"]
    monkeypatch.setenv("IDENTITY_ENDPOINT", identity["identity_endpoint"])
    monkeypatch.setenv("IDENTITY_HEADER", identity["identity_header"])


@pytest.fixture
def emulator(defender_emulator: DefenderEmulator) -> Iterator[DefenderEmulator]:
    """The shared emulator with seeded data, zeroed counters and quotas, and no faults."""
    defender_emulator.reset()
    defender_emulator.clear_faults()
    yield defender_emulator
    defender_emulator.clear_faults()


@pytest.fixture
def make_hook() -> Iterator[Callable[..., MTPHook]]:
    """Builds sync hooks and closes their sessions afterwards (open keep-alives slow the emulator's exit)."""
    made: list[MTPHook] = []

    def make(conn_id: str = CONN_ID, **kwargs: Any) -> MTPHook:
        hook = MTPHook(mtp_conn_id=conn_id, **kwargs)
        made.append(hook)
        return hook

    yield make
    for hook in made:
        if "session" in vars(hook):
            hook.session.close()


def connection_json(
    emulator: DefenderEmulator,
    auth_type: str = "client_secret",
    *,
    api: str = "graph",
    app: str | None = None,
    login: str | None = None,
    password: str | None = None,
    **extra: Any,
) -> str:
    """An ``AIRFLOW_CONN_*`` value for one of the emulator's apps, as a user would write it.

    :param app: for ``client_secret``, another app of the ready line (``read_only``, ``no_hunting``).
    """
    apps = emulator.apps
    fields: dict[str, Any] = {
        "tenant_id": emulator.tenant_id,
        "auth_type": auth_type,
        "api": api,
        "api_url": emulator.url,
        "login_url": emulator.url,
        "ca_bundle": emulator.ca_bundle,
    }
    if auth_type == "client_secret":
        owner = (
            apps[app] if app else {"client_id": emulator.client_id, "client_secret": emulator.client_secret}
        )
        login, password = login or owner["client_id"], password or owner["client_secret"]
    elif auth_type == "certificate":
        login = login or apps["cert"]["client_id"]
        fields["certificate_path"] = apps["cert"]["certificate_path"]
    elif auth_type == "user_password":
        login = login or apps["user"]["client_id"]
        fields.update(username=apps["user"]["username"], user_password=apps["user"]["password"])
    elif auth_type == "managed_identity":
        fields["managed_identity_client_id"] = emulator.info["managed_identity"]["client_id"]
    elif auth_type == "workload_identity":
        login = login or apps["workload"]["client_id"]
        fields["federated_token_file"] = apps["workload"]["federated_token_file"]
    fields.update(extra)
    return json.dumps({"conn_type": "mtp", "login": login, "password": password, "extra": fields})


def use_connection(
    monkeypatch: pytest.MonkeyPatch,
    emulator: DefenderEmulator,
    auth_type: str = "client_secret",
    *,
    conn_id: str = CONN_ID,
    **options: Any,
) -> str:
    """Define the connection for this test; its id."""
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", connection_json(emulator, auth_type, **options))
    return conn_id


def client_of(emulator: DefenderEmulator, auth_type: str) -> str:
    """The client id Entra ID issues tokens to for an auth type."""
    apps = emulator.apps
    return {
        "client_secret": emulator.client_id,
        "certificate": apps["cert"]["client_id"],
        "user_password": apps["user"]["client_id"],
        "managed_identity": emulator.info["managed_identity"]["client_id"],
        "workload_identity": apps["workload"]["client_id"],
    }[auth_type]


def api_requests(emulator: DefenderEmulator) -> dict[str, dict[str, int]]:
    """Calls to the Graph and MTP APIs (not Entra ID), by route and status."""
    return {
        route: counts
        for route, counts in emulator.stats()["requests"].items()
        if route.startswith(("GET /v1.0/", "GET /api/", "POST /v1.0/", "POST /api/", "PATCH "))
    }


def listing_requests(emulator: DefenderEmulator, api: str) -> int:
    """Successful listing requests so far: the pieces a listing asked for (api/listing.py)."""
    return int(api_requests(emulator).get(f"GET {INCIDENTS_PATH[api]}", {}).get("200", 0))


async def alist(conn_id: str, *, limit: int | None = None, **filters: Any) -> list[dict[str, Any]]:
    """What a trigger does: its own async hook, one listing (the first ``limit`` items), then close."""
    async with MTPAsyncHook(mtp_conn_id=conn_id) as hook, aclosing(hook.list_incidents(**filters)) as listing:
        found = []
        async for incident in listing:
            found.append(incident)
            if len(found) == limit:
                break
        return found


def through_legacy(field: str, value: Any) -> Any:
    """A Graph value as the legacy API reports it: MTP has no ``notMalicious``, only ``Clean``."""
    return "clean" if field == "determination" and value == "notMalicious" else value


class RecordingSleep:
    """Stands in for ``asyncio.sleep`` between retries: remembers each wait, waits for none."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


# --------------------------------------------------------------------------------------------------
# Every auth type
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("api", APIS)
@pytest.mark.parametrize("auth_type", AUTH_TYPES)
def test_each_auth_type_reads_incidents_through_both_hooks(
    emulator: DefenderEmulator,
    monkeypatch: pytest.MonkeyPatch,
    make_hook: Callable[..., MTPHook],
    auth_type: str,
    api: str,
) -> None:
    conn_id = use_connection(monkeypatch, emulator, auth_type, api=api)
    hook = make_hook(conn_id)

    listed = list(itertools.islice(hook.list_incidents(page_size=5), 5))
    incident = hook.get_incident(listed[0]["id"])
    from_trigger = asyncio.run(alist(conn_id, page_size=5, limit=5))

    assert len(listed) == 5
    assert all(isinstance(item["id"], str) and item["tenantId"] == emulator.tenant_id for item in listed)
    assert incident["id"] == listed[0]["id"]
    assert from_trigger == listed, "the async hook read the same incidents with the same connection"
    stats = emulator.stats()
    assert stats["tokens_issued"] == {client_of(emulator, auth_type): 1}, "one token for both hooks"
    assert token_requests(emulator) == 1
    assert stats["requests"][f"GET {INCIDENTS_PATH[api]}"] == {"200": 2}


# --------------------------------------------------------------------------------------------------
# One token per process
# --------------------------------------------------------------------------------------------------


def test_thousand_calls_from_eight_hooks_in_four_threads_make_one_token_request(
    emulator: DefenderEmulator, monkeypatch: pytest.MonkeyPatch, make_hook: Callable[..., MTPHook]
) -> None:
    conn_id = use_connection(monkeypatch, emulator)
    incident_id = next(iter(make_hook(conn_id).list_incidents(page_size=1)))["id"]
    auth.clear_token_cache()
    emulator.reset()
    # Two hooks per thread, as two tasks of one worker process would each build their own.
    hooks = [[make_hook(conn_id) for _ in range(2)] for _ in range(4)]
    start = threading.Barrier(4)

    def work(worker: int) -> set[str]:
        start.wait()  # All four threads meet the empty cache together.
        return {
            hooks[worker][call % 2].get_incident(incident_id, include_alerts=False)["id"]
            for call in range(250)
        }

    with ThreadPoolExecutor(max_workers=4) as pool:
        seen = set().union(*pool.map(work, range(4)))

    assert seen == {incident_id}
    assert api_requests(emulator) == {"GET /v1.0/security/incidents/{incident_id}": {"200": 1000}}
    assert emulator.stats()["tokens_issued"] == {emulator.client_id: 1}
    assert token_requests(emulator) == 1


def test_a_token_inside_msals_refresh_margin_is_renewed_exactly_once(
    short_lived_emulator: DefenderEmulator,
    monkeypatch: pytest.MonkeyPatch,
    make_hook: Callable[..., MTPHook],
) -> None:
    emulator = short_lived_emulator
    emulator.reset()
    clock = MsalClock(monkeypatch)
    conn_id = use_connection(monkeypatch, emulator)
    hook = make_hook(conn_id)
    incident_id = next(iter(hook.list_incidents(page_size=1)))["id"]
    clock.advance(5)
    for _ in range(5):
        hook.get_incident(incident_id)
    assert token_requests(emulator) == 1, "355 s left: the cached token is used"

    # msal serves a cached token only while it has more than 300 s left: 60 s of a 360 s lifetime.
    clock.advance(56)
    hook.get_incident(incident_id)
    assert token_requests(emulator) == 2
    for _ in range(5):
        make_hook(conn_id).get_incident(incident_id)
    assert [incident["id"] for incident in asyncio.run(alist(conn_id))]
    assert token_requests(emulator) == 2, "the renewed token is cached for every hook, sync and async"


# --------------------------------------------------------------------------------------------------
# One shape on both back ends and both hooks
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("include_alerts", [False, True])
def test_same_ids_fields_and_enum_spellings_on_both_back_ends_and_both_hooks(
    emulator: DefenderEmulator,
    monkeypatch: pytest.MonkeyPatch,
    make_hook: Callable[..., MTPHook],
    include_alerts: bool,
) -> None:
    listings: dict[str, list[dict[str, Any]]] = {}
    for api in APIS:
        conn_id = use_connection(monkeypatch, emulator, api=api, conn_id=f"mtp_{api}")
        listings[api] = list(make_hook(conn_id).list_incidents(include_alerts=include_alerts))
        listings[f"{api}, async"] = asyncio.run(alist(conn_id, include_alerts=include_alerts))
    graph, legacy = listings["graph"], listings["legacy"]

    assert listings["graph, async"] == graph
    assert listings["legacy, async"] == legacy
    assert len(graph) > 2 * PAGE_SIZE["legacy"], "several pages on both back ends"
    assert [incident["id"] for incident in graph] == [incident["id"] for incident in legacy]
    for g, m in zip(graph, legacy, strict=True):
        assert set(g) == set(m), set(g) ^ set(m)
        assert {field: through_legacy(field, g[field]) for field in GRAPH_SPELLINGS} == {
            field: m[field] for field in GRAPH_SPELLINGS
        }
        assert ("alerts" in g) is include_alerts
        for ga, ma in zip(g.get("alerts", []), m.get("alerts", []), strict=True):
            assert set(ga) == set(ma), set(ga) ^ set(ma)
            assert {key: through_legacy(key, ga[key]) for key in ALERT_ENUMS} == {
                key: ma[key] for key in ALERT_ENUMS
            }
    for field, spellings in GRAPH_SPELLINGS.items():
        used = {incident[field] for incident in graph + legacy}
        assert used <= spellings, used - spellings
        assert len(used) > 1, f"the tenant exercises several {field} values"


# --------------------------------------------------------------------------------------------------
# Secrets and logs
# --------------------------------------------------------------------------------------------------


def _tokens_in_caches() -> set[str]:
    """Every token msal holds in this process: access, refresh and id tokens."""
    found: set[str] = set()
    for shared in auth._registry.values():
        for kind in (
            msal.TokenCache.CredentialType.ACCESS_TOKEN,
            msal.TokenCache.CredentialType.REFRESH_TOKEN,
            msal.TokenCache.CredentialType.ID_TOKEN,
        ):
            found.update(str(entry["secret"]) for entry in shared.cache.search(kind))
    return found


def test_no_secret_key_password_or_token_in_any_log_line(
    emulator: DefenderEmulator,
    monkeypatch: pytest.MonkeyPatch,
    make_hook: Callable[..., MTPHook],
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    from airflow.sdk.log import redact

    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="msal")
    apps = emulator.apps
    # Connection secrets, and the federated token (a bearer credential for Entra ID).
    secrets = {
        emulator.client_secret,
        apps["user"]["password"],
        Path(apps["workload"]["federated_token_file"]).read_text().strip(),
    }
    # Set by the platform, not the connection: must not be logged, but is Airflow's to mask or not.
    identity_header = emulator.info["managed_identity"]["identity_header"]
    key_block = Path(apps["cert"]["certificate_path"]).read_text().split("-----BEGIN CERTIFICATE-----")[0]
    key_lines = {line for line in key_block.splitlines() if line.strip() and not line.startswith("-----")}
    access_tokens: set[str] = set()
    cached_tokens: set[str] = set()
    messages: list[str] = []

    for auth_type in AUTH_TYPES:
        for api in APIS:
            conn_id = use_connection(
                monkeypatch, emulator, auth_type, api=api, conn_id=f"mtp_{auth_type}_{api}"
            )
            hook = make_hook(conn_id)
            access_tokens.add(hook.tokens.token())
            # The API refuses the cached token once: the hook drops it and fetches another.
            emulator.inject_fault(path=INCIDENTS_PATH[api], method="GET", status=401)
            incident = next(iter(hook.list_incidents(page_size=2)))
            hook.get_incident(incident["id"])
            access_tokens.add(hook.tokens.token())
            asyncio.run(alist(conn_id, page_size=2, limit=2))
            messages.append(hook.test_connection()[1])
        # Refresh and id tokens too (user_password): nothing logs them either.
        cached_tokens |= _tokens_in_caches()
    for auth_type, wrong in (
        ("client_secret", {"password": "wrong-secret-value-123"}),
        ("user_password", {"user_password": "wrong-user-password-456"}),
    ):
        conn_id = use_connection(monkeypatch, emulator, auth_type, conn_id=f"mtp_wrong_{auth_type}", **wrong)
        secrets |= set(wrong.values())
        ok, message = make_hook(conn_id).test_connection()
        assert not ok
        messages.append(message)

    out, err = capfd.readouterr()
    records = caplog.records
    assert any("acquired a token" in record.getMessage() for record in records)
    assert any("dropping the cached token" in record.getMessage() for record in records)
    assert any(record.name.startswith("msal") for record in records), "msal's own debug lines were captured"
    text = "\n".join(
        [record.getMessage() for record in records]
        + [str(record.args) for record in records]
        + [caplog.text, out, err, *messages]
    )
    forbidden = secrets | key_lines | access_tokens | cached_tokens | {identity_header}
    leaked = sorted(value[:12] + "..." for value in forbidden if value and value in text)
    assert not leaked, f"secrets in the logs: {leaked}"
    # Airflow's masker knows every access token and connection secret, so task logs would hide them.
    assert len(access_tokens) >= 2 * len(AUTH_TYPES) * len(APIS), "a new token after each 401"
    for value in access_tokens | secrets:
        assert value not in str(redact(f"Authorization: Bearer {value}"))


# --------------------------------------------------------------------------------------------------
# test_connection()
# --------------------------------------------------------------------------------------------------


def test_max_wait_bounds_the_throttling_wait_the_hook_sleeps_through(
    emulator: DefenderEmulator, monkeypatch: pytest.MonkeyPatch, make_hook: Callable[..., MTPHook]
) -> None:
    conn_id = use_connection(monkeypatch, emulator)
    emulator.inject_fault(path="/v1.0/security/runHuntingQuery", status=429, retry_after=30, count=2)
    with pytest.raises(MTPThrottledError) as throttled:
        make_hook(conn_id, max_wait=5).run_hunting_query("print x = 1")
    assert throttled.value.retry_after == 30
    assert api_requests(emulator)["POST /v1.0/security/runHuntingQuery"] == {"429": 1}


@pytest.mark.parametrize("api", APIS)
@pytest.mark.parametrize("auth_type", AUTH_TYPES)
def test_connection_with_every_permission_reports_none_missing(
    emulator: DefenderEmulator,
    monkeypatch: pytest.MonkeyPatch,
    make_hook: Callable[..., MTPHook],
    auth_type: str,
    api: str,
) -> None:
    ok, message = make_hook(use_connection(monkeypatch, emulator, auth_type, api=api)).test_connection()
    assert ok, message
    assert "read incidents" in message
    assert "Missing" not in message


@pytest.mark.parametrize(
    ("app", "api", "missing", "granted"),
    [
        ("read_only", "graph", "SecurityIncident.ReadWrite.All", "ThreatHunting.Read.All"),
        ("read_only", "legacy", "Incident.ReadWrite.All", "AdvancedHunting.Read.All"),
        ("no_hunting", "graph", "ThreatHunting.Read.All", "SecurityIncident.ReadWrite.All"),
        ("no_hunting", "legacy", "AdvancedHunting.Read.All", "Incident.ReadWrite.All"),
    ],
)
def test_connection_names_the_missing_permission(
    emulator: DefenderEmulator,
    monkeypatch: pytest.MonkeyPatch,
    make_hook: Callable[..., MTPHook],
    app: str,
    api: str,
    missing: str,
    granted: str,
) -> None:
    ok, message = make_hook(use_connection(monkeypatch, emulator, api=api, app=app)).test_connection()
    assert ok, message
    assert f"Missing permissions: {missing}" in message
    assert granted not in message
    assert "admin consent" in message


def test_connection_with_a_wrong_secret_names_the_code_and_the_field(
    emulator: DefenderEmulator, monkeypatch: pytest.MonkeyPatch, make_hook: Callable[..., MTPHook]
) -> None:
    conn_id = use_connection(monkeypatch, emulator, password="not-the-secret-value")
    ok, message = make_hook(conn_id).test_connection()
    assert not ok
    assert "AADSTS7000215" in message
    assert "password (Client secret)" in message
    assert "not-the-secret-value" not in message
    assert api_requests(emulator) == {}, "no API call without a token"


def test_connection_with_an_unknown_tenant_names_tenant_id(
    emulator: DefenderEmulator, monkeypatch: pytest.MonkeyPatch, make_hook: Callable[..., MTPHook]
) -> None:
    conn_id = use_connection(monkeypatch, emulator, tenant_id="00000000-0000-0000-0000-000000000000")
    ok, message = make_hook(conn_id).test_connection()
    assert not ok
    assert "AADSTS90002" in message
    assert "Fix tenant_id" in message


# --------------------------------------------------------------------------------------------------
# The async hook
# --------------------------------------------------------------------------------------------------


@pytest.mark.asyncio
@pytest.mark.parametrize("api", APIS)
async def test_async_get_incident_and_its_errors_match_the_sync_hook(
    emulator: DefenderEmulator, monkeypatch: pytest.MonkeyPatch, make_hook: Callable[..., MTPHook], api: str
) -> None:
    conn_id = use_connection(monkeypatch, emulator, api=api)
    sync = make_hook(conn_id)
    incident_id = await asyncio.to_thread(lambda: next(iter(sync.list_incidents(page_size=1)))["id"])
    expected = await asyncio.to_thread(sync.get_incident, incident_id)
    with pytest.raises(MTPNotFoundError) as sync_missing:
        await asyncio.to_thread(sync.get_incident, "999999")

    async with MTPAsyncHook(mtp_conn_id=conn_id) as hook:
        assert await hook.get_incident(incident_id) == expected
        assert await hook.get_incident(int(incident_id), include_alerts=False) == {
            key: value for key, value in expected.items() if key != "alerts"
        }
        with pytest.raises(MTPNotFoundError) as missing:
            await hook.get_incident("999999")
        with pytest.raises(MTPConfigError, match="Invalid severity 'urgent'"):
            await anext(hook.list_incidents(severity="urgent"))

    # The same message (request ids aside, which are per call) and the same details.
    assert missing.value.args == sync_missing.value.args
    assert (missing.value.status, missing.value.code) == (sync_missing.value.status, sync_missing.value.code)


@pytest.mark.asyncio
async def test_200_concurrent_async_listings_make_one_token_request(
    emulator: DefenderEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    conn_id = use_connection(monkeypatch, emulator)
    filters = {"severity": "low", "page_size": 20}
    expected = [incident["id"] for incident in await alist(conn_id, **filters)]
    assert len(expected) > filters["page_size"], "each listing takes several requests"
    pages = listing_requests(emulator, "graph")
    auth.clear_token_cache()
    emulator.reset()
    # One hook per trigger, as a triggerer running 200 sensors has.
    hooks = [MTPAsyncHook(mtp_conn_id=conn_id) for _ in range(200)]

    async def listing(hook: MTPAsyncHook) -> list[str]:
        async with hook:
            return [incident["id"] async for incident in hook.list_incidents(**filters)]

    listings = await asyncio.gather(*(listing(hook) for hook in hooks))

    assert all(ids == expected for ids in listings)
    assert token_requests(emulator) == 1
    assert api_requests(emulator) == {"GET /v1.0/security/incidents": {"200": 200 * pages}}


@pytest.mark.asyncio
@pytest.mark.parametrize("api", APIS)
async def test_async_listing_recovers_from_a_401_mid_paging(
    emulator: DefenderEmulator, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, api: str
) -> None:
    caplog.set_level(logging.INFO, logger=TRANSPORT_LOGGER)
    conn_id = use_connection(monkeypatch, emulator, api=api)
    clean = await alist(conn_id)
    assert len(clean) > 2 * PAGE_SIZE[api], "the tenant must have more than two pages"
    pages = listing_requests(emulator, api)
    auth.clear_token_cache()
    emulator.reset()
    # The third page's request gets a 401, as when a cached token is revoked mid-walk.
    emulator.inject_fault(path=INCIDENTS_PATH[api], method="GET", status=401, after=2)

    listed = await alist(conn_id)

    assert listed == clean, "no incident missed or repeated"
    stats = emulator.stats()
    assert stats["tokens_issued"] == {emulator.client_id: 2}, "one refresh"
    assert stats["requests"][f"GET {INCIDENTS_PATH[api]}"] == {"200": pages, "401": 1}
    refreshes = [
        record.getMessage() for record in caplog.records if "dropping the cached token" in record.getMessage()
    ]
    assert refreshes == [
        f"GET {INCIDENTS_PATH[api]}: 401 {'InvalidAuthenticationToken' if api == 'graph' else 'Unauthorized'}; dropping the cached token and retrying once with a new one"
    ]


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("fault", "reason"),
    [
        ({"status": 429, "retry_after": 7}, "429 TooManyRequests (Retry-After 7 s)"),
        ({"status": 503, "count": 3}, "503 ServiceUnavailable"),
        ({"kind": "drop"}, "reply cut off or malformed (ClientPayloadError)"),
        ({"kind": "malformed"}, "reply cut off or malformed (JSONDecodeError)"),
    ],
)
async def test_async_listing_retries_what_the_sync_transport_retries(
    emulator: DefenderEmulator,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    fault: dict[str, Any],
    reason: str,
) -> None:
    caplog.set_level(logging.INFO, logger=TRANSPORT_LOGGER)
    conn_id = use_connection(monkeypatch, emulator)
    filters = {"severity": "low", "page_size": 10}
    clean = await alist(conn_id, **filters)
    assert len(clean) > filters["page_size"]
    # The second page fails.
    emulator.inject_fault(path=INCIDENTS_PATH["graph"], method="GET", after=1, **fault)
    sleep = RecordingSleep()

    async with MTPAsyncHook(mtp_conn_id=conn_id) as hook:
        (await hook._get_transport()).asleep = sleep
        listed = [incident async for incident in hook.list_incidents(**filters)]

    assert listed == clean
    retries = [record.getMessage() for record in caplog.records if record.getMessage().startswith("Retrying")]
    assert len(retries) == fault.get("count", 1) == len(sleep.waits)
    assert all(f"GET /v1.0/security/incidents after {reason}: attempt" in line for line in retries), retries
    if "retry_after" in fault:
        assert fault["retry_after"] <= sleep.waits[0] <= fault["retry_after"] + 1, "Retry-After is honoured"


@pytest.mark.asyncio
async def test_async_hook_reads_the_connection_without_sync_accessors(
    emulator: DefenderEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    conn_id = use_connection(monkeypatch, emulator, api="legacy")

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("sync connection access inside the event loop")

    monkeypatch.setattr(MTPAsyncHook, "get_connection", classmethod(refuse))
    monkeypatch.setattr(Connection, "extra_dejson", property(refuse))
    hook = MTPAsyncHook(mtp_conn_id=conn_id)
    settings = await hook.get_settings()
    assert (settings.api, settings.auth_type, settings.tenant_id) == (
        "legacy",
        "client_secret",
        emulator.tenant_id,
    )
    async with hook:
        assert [incident["id"] async for incident in hook.list_incidents(page_size=100, severity="low")]


@pytest.mark.asyncio
async def test_async_hook_does_no_io_until_used_and_names_unusable_settings(
    emulator: DefenderEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    hook = MTPAsyncHook(mtp_conn_id="mtp_not_defined")  # nothing is looked up yet
    with pytest.raises(AirflowNotFoundException):
        await hook.get_incident("1")
    conn_id = use_connection(monkeypatch, emulator, proxy="socks5://127.0.0.1:1080")
    with pytest.raises(MTPConfigError, match="proxy is a SOCKS proxy"):
        await anext(MTPAsyncHook(mtp_conn_id=conn_id).list_incidents())
    conn_id = use_connection(monkeypatch, emulator, ca_bundle="/nonexistent/ca.pem")
    with pytest.raises(MTPConfigError, match=re.escape("ca_bundle '/nonexistent/ca.pem' does not exist")):
        await MTPAsyncHook(mtp_conn_id=conn_id).get_incident("1")
    assert api_requests(emulator) == {}
    assert token_requests(emulator) == 0
