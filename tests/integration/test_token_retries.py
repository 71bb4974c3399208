"""Entra ID's transient failures against the emulator: retried below msal, never replayed by msal's
throttle cache, reported as the service's (not the credentials'), and waited out by triggers.

Faults go on the emulator's Entra ID routes. The token retries sleep through a recording fake
(``entra_http.DEFAULT_POLICY``) and the API transport's through its ``sleep``/``asleep``, so no
test waits for a Retry-After.
"""

from __future__ import annotations

import asyncio
import email.utils
import importlib.util
import json
import logging
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from airflow.triggers.base import TriggerEvent

from airflow_provider_mtp import auth, entra_http
from airflow_provider_mtp.api.call_rules import TransportBase
from airflow_provider_mtp.emulator import DefenderEmulator
from airflow_provider_mtp.errors import (
    MTPAuthError,
    MTPServiceError,
    MTPThrottledError,
    MTPTokenServiceError,
)
from airflow_provider_mtp.hooks.mtp import MTPHook
from airflow_provider_mtp.hooks.mtp_async import MTPAsyncHook
from airflow_provider_mtp.retrying import RetryBudget
from airflow_provider_mtp.triggers import poller
from airflow_provider_mtp.triggers.incidents import IncidentEventTrigger, IncidentTrigger

CONN_ID = "mtp_token_test"
TOKEN_ROUTE = "POST /{tenant}/oauth2/v2.0/token"
TOKEN_PATH = "/*/oauth2/v2.0/token"
ENTRA_LOGGER = "airflow_provider_mtp.entra_http"
INCIDENTS = "/v1.0/security/incidents"
DAGS = Path(__file__).parents[1] / "dags"
#: A closed window in June 2026 (no seeded incident is that old).
START, END = "2026-06-01T00:00:00.0000000Z", "2026-06-01T01:00:00.0000000Z"


class RecordingSleep:
    """Stands in for ``time.sleep`` between retries: remembers each wait, waits for none."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


class AsyncRecordingSleep(RecordingSleep):
    """The same for ``asyncio.sleep``."""

    async def __call__(self, seconds: float) -> None:  # type: ignore[override]
        self.waits.append(seconds)


@pytest.fixture(autouse=True)
def _empty_token_cache() -> Iterator[None]:
    auth.clear_token_cache()
    yield
    auth.clear_token_cache()


@pytest.fixture
def entra_sleep(monkeypatch: pytest.MonkeyPatch) -> RecordingSleep:
    """Token retries wait through this (msal applications are built after it is in place)."""
    sleep = RecordingSleep()
    monkeypatch.setattr(entra_http, "DEFAULT_POLICY", entra_http.RetryPolicy(sleep=sleep))
    return sleep


@pytest.fixture
def emulator(
    defender_emulator: DefenderEmulator, monkeypatch: pytest.MonkeyPatch
) -> Iterator[DefenderEmulator]:
    """The shared emulator with zeroed counters, no faults, and App Service's managed identity variables."""
    defender_emulator.reset()
    defender_emulator.clear_faults()
    identity = defender_emulator.info["managed_identity"]
    monkeypatch.setenv("IDENTITY_ENDPOINT", identity["identity_endpoint"])
    monkeypatch.setenv("IDENTITY_HEADER", identity["identity_header"])
    yield defender_emulator
    defender_emulator.clear_faults()


def use_connection(
    monkeypatch: pytest.MonkeyPatch,
    emulator: DefenderEmulator,
    auth_type: str = "client_secret",
    *,
    password: str | None = None,
    **extra: Any,
) -> str:
    """Define ``CONN_ID`` for one of the emulator's apps; its id."""
    apps = emulator.apps
    fields: dict[str, Any] = {
        "tenant_id": emulator.tenant_id,
        "auth_type": auth_type,
        "api": "graph",
        "api_url": emulator.url,
        "login_url": emulator.url,
        "ca_bundle": emulator.ca_bundle,
    }
    login: str | None = None
    if auth_type == "client_secret":
        login, password = emulator.client_id, password or emulator.client_secret
    elif auth_type == "user_password":
        login = apps["user"]["client_id"]
        fields.update(username=apps["user"]["username"], user_password=apps["user"]["password"])
    elif auth_type == "managed_identity":
        fields["managed_identity_client_id"] = emulator.info["managed_identity"]["client_id"]
    fields.update(extra)
    conn = {"conn_type": "mtp", "login": login, "password": password, "extra": fields}
    monkeypatch.setenv(f"AIRFLOW_CONN_{CONN_ID.upper()}", json.dumps(conn))
    return CONN_ID


def client_of(emulator: DefenderEmulator, auth_type: str) -> str:
    return {
        "client_secret": emulator.client_id,
        "user_password": emulator.apps["user"]["client_id"],
        "managed_identity": emulator.info["managed_identity"]["client_id"],
    }[auth_type]


def http_date(seconds_ahead: float) -> str:
    """A ``Retry-After`` HTTP date this far ahead of the wall clock."""
    return email.utils.format_datetime(datetime.now(UTC) + timedelta(seconds=seconds_ahead), usegmt=True)


def assert_waited(wait: float, asked: float, *, made: float) -> None:
    """``wait`` honours a ``Retry-After`` of ``asked`` seconds whose header was made at ``made``.

    An HTTP date has whole seconds (up to one less), and the time since it was made (a token
    request, a busy machine) is already waited; the transport's jitter adds up to a second.

    :param made: ``time.monotonic()`` when the header value was made.
    """
    elapsed = time.monotonic() - made
    assert asked - 1 - elapsed - 0.05 <= wait <= asked + 1, (wait, asked, elapsed)


def calls(emulator: DefenderEmulator, route: str = TOKEN_ROUTE) -> dict[str, int]:
    """Requests to one route by status; a faulted request counts under its fault's status."""
    counts: dict[str, int] = emulator.stats()["requests"].get(route, {})
    return counts


def first_incident(conn_id: str) -> dict[str, Any]:
    """What a task does: a new hook, one listing page; its session closed afterwards."""
    hook = MTPHook(mtp_conn_id=conn_id)
    try:
        return next(iter(hook.list_incidents(page_size=1)))
    finally:
        hook.session.close()


def retry_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == ENTRA_LOGGER and r.getMessage().startswith("Retrying")
    ]


def assert_clean(texts: list[str], emulator: DefenderEmulator) -> None:
    """No secret, no query string and no token request body in what was logged or raised."""
    joined = "\n".join(texts)
    for secret in (emulator.client_secret, emulator.apps["user"]["password"], "client_secret=", "grant_type"):
        assert secret not in joined
    assert "?" not in joined


# --------------------------------------------------------------------------------------------------
# One transient failure: retried, the call succeeds, one token issued
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fault", "reason", "asked"),
    [
        pytest.param({"status": 503}, "503 temporarily_unavailable", None, id="503"),
        pytest.param(
            {"status": 429, "retry_after": 7},
            "429 temporarily_unavailable (Retry-After 7 s)",
            7.0,
            id="429-seconds",
        ),
        pytest.param(
            {"status": 429, "retry_after": "date+30"},
            "429 temporarily_unavailable (Retry-After",
            30.0,
            id="429-http-date",
        ),
        pytest.param({"status": 500}, "500 temporarily_unavailable", None, id="500"),
        pytest.param({"status": 502}, "502 temporarily_unavailable", None, id="502"),
        pytest.param({"status": 504}, "504 temporarily_unavailable", None, id="504"),
        pytest.param({"kind": "drop"}, "ChunkedEncodingError", None, id="drop"),
        pytest.param(
            {"kind": "malformed"}, "reply cut off or malformed (JSONDecodeError)", None, id="malformed"
        ),
        # Past the connection's 1 s read timeout; the 504 it would send at last is never read.
        pytest.param({"delay_s": 2.5, "status": 504}, "ReadTimeout", None, id="slow"),
    ],
)
def test_one_transient_token_failure_is_retried_and_one_token_issued(
    emulator: DefenderEmulator,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    entra_sleep: RecordingSleep,
    fault: dict[str, Any],
    reason: str,
    asked: float | None,
) -> None:
    caplog.set_level(logging.INFO, logger=ENTRA_LOGGER)
    conn_id = use_connection(monkeypatch, emulator, timeout=1)
    made = time.monotonic()
    if fault.get("retry_after") == "date+30":
        fault = {**fault, "retry_after": http_date(30)}
    emulator.inject_fault(path=TOKEN_PATH, method="POST", **fault)

    incident = first_incident(conn_id)

    assert incident["id"]
    assert emulator.stats()["tokens_issued"] == {emulator.client_id: 1}, "the failed request issued nothing"
    if "status" in fault and "delay_s" not in fault:
        assert calls(emulator) == {str(fault["status"]): 1, "200": 1}
    lines = retry_lines(caplog)
    assert len(lines) == 1 == len(entra_sleep.waits)
    host = emulator.url.removeprefix("https://")
    assert lines[0].startswith(f"Retrying POST {host}/{emulator.tenant_id}/oauth2/v2.0/token after {reason}")
    assert "attempt 2/6" in lines[0]
    if asked is not None:
        assert_waited(entra_sleep.waits[0], asked, made=made)
    assert_clean(lines, emulator)


@pytest.mark.parametrize(
    ("auth_type", "path", "route"),
    [
        pytest.param(
            "client_secret",
            "/*/v2.0/.well-known/openid-configuration",
            "GET /{tenant}/v2.0/.well-known/openid-configuration",
            id="openid-configuration",
        ),
        pytest.param(
            "user_password", "/common/userrealm/*", "GET /common/userrealm/{username}", id="userrealm"
        ),
        pytest.param("user_password", TOKEN_PATH, TOKEN_ROUTE, id="password-grant"),
        pytest.param("managed_identity", "/msi/token", "GET /msi/token", id="managed-identity"),
    ],
)
@pytest.mark.parametrize("fault", [{"status": 503}, {"kind": "drop"}], ids=["503", "drop"])
def test_every_entra_call_is_retried(
    emulator: DefenderEmulator,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    entra_sleep: RecordingSleep,
    auth_type: str,
    path: str,
    route: str,
    fault: dict[str, Any],
) -> None:
    caplog.set_level(logging.INFO, logger=ENTRA_LOGGER)
    conn_id = use_connection(monkeypatch, emulator, auth_type)
    emulator.inject_fault(path=path, **fault)

    assert first_incident(conn_id)["id"]

    assert emulator.stats()["tokens_issued"] == {client_of(emulator, auth_type): 1}
    assert sum(calls(emulator, route).values()) == 2, "one failure, one retry"
    lines = retry_lines(caplog)
    assert len(lines) == 1 == len(entra_sleep.waits)
    assert emulator.apps["user"]["username"] not in lines[0], "the user name in a userrealm path is masked"
    assert_clean(lines, emulator)


# --------------------------------------------------------------------------------------------------
# Retries run out: the service's error, and nothing for msal to replay
# --------------------------------------------------------------------------------------------------


def test_entra_down_past_the_retries_is_a_service_error_and_never_replayed(
    emulator: DefenderEmulator,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    entra_sleep: RecordingSleep,
) -> None:
    """The issue's case: 503 with Retry-After 20. msal alone stored it and failed every hook for 20 s."""
    caplog.set_level(logging.INFO, logger=ENTRA_LOGGER)
    conn_id = use_connection(monkeypatch, emulator)
    emulator.inject_fault(path=TOKEN_PATH, status=503, retry_after=20, count=6)

    with pytest.raises(MTPTokenServiceError) as failure:
        first_incident(conn_id)

    message = str(failure.value)
    host = emulator.url.removeprefix("https://")
    assert f"Entra ID ({host}) was unavailable" in message
    assert "503 temporarily_unavailable" in message
    assert "after 6 attempts" in message
    assert "run the task again later" in message
    assert "Fix" not in message, "not blamed on the configuration"
    assert "tenant_id" not in message
    assert not isinstance(failure.value, MTPAuthError), "not a credential error"
    assert isinstance(failure.value, MTPServiceError)
    assert failure.value.status == 503
    assert calls(emulator) == {"503": 6}
    assert len(entra_sleep.waits) == 5
    assert all(20 <= wait <= 21 for wait in entra_sleep.waits), "Retry-After is honoured"
    assert len(retry_lines(caplog)) == 5

    # Entra is healthy again: the next caller of the process asks it at once, and gets a token.
    assert first_incident(conn_id)["id"]
    assert calls(emulator) == {"503": 6, "200": 1}
    assert len(entra_sleep.waits) == 5, "no wait: nothing was replayed from msal's throttle cache"
    assert emulator.stats()["tokens_issued"] == {emulator.client_id: 1}
    assert_clean([message, *retry_lines(caplog)], emulator)


def test_managed_identity_endpoint_down_past_the_retries_names_that_endpoint(
    emulator: DefenderEmulator, monkeypatch: pytest.MonkeyPatch, entra_sleep: RecordingSleep
) -> None:
    conn_id = use_connection(monkeypatch, emulator, "managed_identity")
    emulator.inject_fault(path="/msi/token", status=500, count=6)

    with pytest.raises(MTPTokenServiceError) as failure:
        first_incident(conn_id)

    host = emulator.url.removeprefix("https://")
    assert f"the managed identity endpoint ({host}) was unavailable (GET /msi/token: 500" in str(
        failure.value
    )
    assert "after 6 attempts" in str(failure.value)
    assert "managed_identity_client_id" not in str(failure.value), "no field blamed"
    assert calls(emulator, "GET /msi/token") == {"500": 6}
    assert first_incident(conn_id)["id"], "not replayed"


def test_entra_throttling_past_the_retries_says_throttled(
    emulator: DefenderEmulator, monkeypatch: pytest.MonkeyPatch, entra_sleep: RecordingSleep
) -> None:
    conn_id = use_connection(monkeypatch, emulator)
    emulator.inject_fault(path=TOKEN_PATH, status=429, count=6)

    with pytest.raises(MTPTokenServiceError) as failure:
        first_incident(conn_id)

    message = str(failure.value)
    assert "throttled the token requests" in message
    assert "after 6 attempts" in message
    assert "refused the credentials" not in message
    assert "Fix" not in message
    assert calls(emulator) == {"429": 6}
    assert len(entra_sleep.waits) == 5, "no Retry-After: backoff"
    assert first_incident(conn_id)["id"], "not replayed"


@pytest.mark.parametrize("form", ["seconds", "http-date"])
def test_a_token_retry_after_longer_than_the_longest_wait_fails_at_once_with_the_right_figure(
    emulator: DefenderEmulator, monkeypatch: pytest.MonkeyPatch, entra_sleep: RecordingSleep, form: str
) -> None:
    conn_id = use_connection(monkeypatch, emulator)
    retry_after: int | str = 7200 if form == "seconds" else http_date(7200)
    emulator.inject_fault(path=TOKEN_PATH, status=429, retry_after=retry_after)

    with pytest.raises(MTPTokenServiceError) as failure:
        first_incident(conn_id)

    assert failure.value.retry_after is not None
    assert 7190 <= failure.value.retry_after <= 7200
    assert "asked to wait 7" in str(failure.value)
    assert "longer than the 60 s a token request waits" in str(failure.value)
    assert calls(emulator) == {"429": 1}
    assert entra_sleep.waits == []
    assert first_incident(conn_id)["id"], "not replayed for two hours"


def test_a_wrong_secret_is_not_retried_and_keeps_its_aadsts_message(
    emulator: DefenderEmulator,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    entra_sleep: RecordingSleep,
) -> None:
    caplog.set_level(logging.INFO, logger=ENTRA_LOGGER)
    conn_id = use_connection(monkeypatch, emulator, password="not-the-secret-value")

    with pytest.raises(MTPAuthError) as failure:
        first_incident(conn_id)

    assert not isinstance(failure.value, MTPTokenServiceError)
    assert "AADSTS7000215" in str(failure.value)
    assert "Fix password (Client secret)" in str(failure.value)
    assert calls(emulator) == {"401": 1}
    assert entra_sleep.waits == []
    assert retry_lines(caplog) == []


def test_entra_retries_use_the_api_transports_budget() -> None:
    policy = entra_http.RetryPolicy()
    assert policy.budget == RetryBudget()
    defaults = TransportBase.__init__.__kwdefaults__ or {}
    assert (policy.max_attempts, policy.max_wait, policy.backoff_base, policy.backoff_cap) == (
        defaults["max_attempts"],
        defaults["max_wait"],
        defaults["backoff_base"],
        defaults["backoff_cap"],
    )


# --------------------------------------------------------------------------------------------------
# Retry-After as an HTTP date, on the API path too
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("form", ["seconds", "http-date"])
def test_api_retry_after_in_both_forms_on_the_sync_hook(
    emulator: DefenderEmulator, monkeypatch: pytest.MonkeyPatch, form: str
) -> None:
    conn_id = use_connection(monkeypatch, emulator)
    sleep = RecordingSleep()
    hook = MTPHook(mtp_conn_id=conn_id)
    hook.client.transport.sleep = sleep  # type: ignore[attr-defined]
    try:
        made = time.monotonic()
        emulator.inject_fault(
            path=INCIDENTS, status=429, retry_after=30 if form == "seconds" else http_date(30)
        )
        assert next(iter(hook.list_incidents(page_size=1)))["id"]
        assert len(sleep.waits) == 1
        assert_waited(sleep.waits[0], 30, made=made)

        emulator.inject_fault(
            path=INCIDENTS, status=429, retry_after=7200 if form == "seconds" else http_date(7200)
        )
        with pytest.raises(MTPThrottledError) as throttled:
            next(iter(hook.list_incidents(page_size=1)))
    finally:
        hook.session.close()
    assert throttled.value.retry_after is not None
    assert 7190 <= throttled.value.retry_after <= 7200
    assert "asked to wait 7" in str(throttled.value)


@pytest.mark.asyncio
@pytest.mark.parametrize("form", ["seconds", "http-date"])
async def test_api_retry_after_in_both_forms_on_the_async_hook(
    emulator: DefenderEmulator, monkeypatch: pytest.MonkeyPatch, form: str
) -> None:
    conn_id = use_connection(monkeypatch, emulator)
    sleep = AsyncRecordingSleep()
    async with MTPAsyncHook(mtp_conn_id=conn_id) as hook:
        (await hook._get_transport()).asleep = sleep
        made = time.monotonic()
        emulator.inject_fault(
            path=INCIDENTS, status=429, retry_after=30 if form == "seconds" else http_date(30)
        )
        assert await anext(hook.list_incidents(page_size=1))
        assert len(sleep.waits) == 1
        assert_waited(sleep.waits[0], 30, made=made)

        emulator.inject_fault(
            path=INCIDENTS, status=429, retry_after=7200 if form == "seconds" else http_date(7200)
        )
        with pytest.raises(MTPThrottledError) as throttled:
            await anext(hook.list_incidents(page_size=1))
    assert throttled.value.retry_after is not None
    assert 7190 <= throttled.value.retry_after <= 7200


# --------------------------------------------------------------------------------------------------
# A task run, and triggers
# --------------------------------------------------------------------------------------------------


def test_a_task_succeeds_through_a_503_a_429_and_a_drop_with_one_token(
    emulator: DefenderEmulator, airflow_db: None, monkeypatch: pytest.MonkeyPatch, entra_sleep: RecordingSleep
) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_MTP_DEFAULT", emulator.airflow_conn)
    target = emulator.put_incidents({"displayName": "tag me", "customTags": ["kept"]})[0]
    # One token request meets all three in turn, then gets through.
    emulator.inject_fault(path=TOKEN_PATH, status=503)
    emulator.inject_fault(path=TOKEN_PATH, status=429, retry_after=3)
    emulator.inject_fault(path=TOKEN_PATH, kind="drop")
    spec = importlib.util.spec_from_file_location(
        "mtp_test_dag_incidents_token_faults", DAGS / "incidents_token_faults.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)

    run = module.dag.test(run_conf={"incident_id": target["id"], "tag": "checked"})

    assert str(run.state) == "success"
    stats = emulator.stats()
    assert stats["tokens_issued"] == {emulator.client_id: 1}
    assert calls(emulator) == {"503": 1, "429": 1, "200": 2}, "the drop counts as a 200 cut short"
    assert len(entra_sleep.waits) == 3
    assert 3 <= entra_sleep.waits[1] <= 4, "the 429's Retry-After"
    hook = MTPHook()
    try:
        assert hook.get_incident(target["id"], include_alerts=False)["customTags"] == ["kept", "checked"]
    finally:
        hook.session.close()


def window_trigger(**kwargs: Any) -> IncidentTrigger:
    return IncidentTrigger(window_start=START, window_end=END, lag_seconds=0, poke_interval=0.1, **kwargs)


@pytest.mark.parametrize(("coalesced", "listings"), [(True, 1), (False, 200)])
def test_200_triggers_in_one_loop_survive_a_burst_of_token_503s(
    emulator: DefenderEmulator,
    monkeypatch: pytest.MonkeyPatch,
    entra_sleep: RecordingSleep,
    coalesced: bool,
    listings: int,
) -> None:
    """Seven 503s in a row: one more than a token request's six attempts; with coalesced polling
    the whole round waits the outage out and then lists once."""
    monkeypatch.setattr(poller, "COALESCING", coalesced)
    # The retry round gathers the 200 waits for up to 1 s (their 0.1 s poke interval would give
    # 0.02 s, less than 200 triggers logging a warning each take on a slow machine).
    monkeypatch.setattr(poller, "GATHER_SHARE", 10.0)
    monkeypatch.setenv("AIRFLOW_CONN_MTP_DEFAULT", emulator.airflow_conn)
    emulator.put_incidents({"displayName": "shared", "lastUpdateDateTime": "2026-06-01T00:30:00Z"})
    emulator.inject_fault(path=TOKEN_PATH, status=503, count=7)
    triggers = [window_trigger() for _ in range(200)]

    async def scenario() -> list[TriggerEvent]:
        return list(await asyncio.gather(*(anext(trigger.run()) for trigger in triggers)))

    events = asyncio.run(scenario())

    assert len(events) == 200
    assert {event.payload["status"] for event in events} == {"success"}
    assert {event.payload["incidents"][0]["title"] for event in events} == {"shared"}
    stats = emulator.stats()
    assert stats["tokens_issued"] == {emulator.client_id: 1}
    assert calls(emulator) == {"503": 7, "200": 1}
    assert stats["requests"][f"GET {INCIDENTS}"] == {"200": listings}
    # The first caller's six attempts failed; the next one's first failed and its second got through.
    assert len(entra_sleep.waits) == 6


def test_a_credential_error_still_ends_the_trigger(
    emulator: DefenderEmulator, monkeypatch: pytest.MonkeyPatch, entra_sleep: RecordingSleep
) -> None:
    conn = json.loads(emulator.airflow_conn)
    conn["password"] = "not-the-secret-value"
    monkeypatch.setenv("AIRFLOW_CONN_MTP_DEFAULT", json.dumps(conn))

    event = asyncio.run(anext(window_trigger().run()))

    assert event.payload["status"] == "error"
    assert event.payload["error_type"] == "MTPAuthError"
    assert "AADSTS7000215" in event.payload["message"]
    assert calls(emulator) == {"401": 1}


def test_event_trigger_waits_out_a_token_outage_longer_than_the_retries(
    strict_emulator: DefenderEmulator, monkeypatch: pytest.MonkeyPatch, entra_sleep: RecordingSleep
) -> None:
    """Tokens of this emulator live 2 s, so every poll asks Entra ID: the outage hits mid-run."""
    emulator = strict_emulator
    emulator.reset()
    emulator.clear_faults()
    monkeypatch.setenv("AIRFLOW_CONN_MTP_DEFAULT", emulator.airflow_conn)
    trigger = IncidentEventTrigger(tags="outage", poll_interval=0.1, lag_seconds=60)
    events: list[dict[str, Any]] = []

    def put(name: str) -> None:
        # Stamped by the emulator's clock: set it to now, after the trigger started.
        emulator.set_clock(datetime.now(UTC).isoformat())
        emulator.put_incidents({"displayName": name, "customTags": ["outage"]})

    def token_calls() -> dict[str, int]:
        return calls(emulator)

    async def until(condition: Any, what: str) -> None:
        for _ in range(400):
            if await asyncio.to_thread(condition):
                return
            await asyncio.sleep(0.05)
        raise AssertionError(f"gave up waiting for {what}")

    async def scenario() -> None:
        async def consume() -> None:
            async for event in trigger.run():
                events.append(event.payload)

        task = asyncio.create_task(consume())
        await until(lambda: token_calls().get("200", 0) >= 1, "the first poll")
        await asyncio.to_thread(put, "before")
        await until(lambda: len(events) >= 1, "the first event")
        # Eight 503s: a whole poll's six attempts fail, then the next poll gets through.
        await asyncio.to_thread(emulator.inject_fault, path=TOKEN_PATH, status=503, count=8)
        await until(lambda: token_calls().get("503", 0) == 8, "the outage")
        await asyncio.to_thread(put, "after")
        await until(lambda: len(events) >= 2, "an event after the outage")
        assert not task.done(), "the trigger is still running"
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    asyncio.run(scenario())
    assert [event["title"] for event in events] == ["before", "after"]
    assert calls(emulator)["503"] == 8


# --------------------------------------------------------------------------------------------------
# Configuration problems are not retried
# --------------------------------------------------------------------------------------------------


def test_a_login_host_that_refuses_or_an_untrusted_certificate_is_not_retried(
    emulator: DefenderEmulator, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, entra_sleep: RecordingSleep
) -> None:
    import trustme

    conn_id = use_connection(monkeypatch, emulator, login_url="https://127.0.0.1:9")
    with pytest.raises(MTPAuthError, match="Fix login_url, cloud or proxy"):
        first_incident(conn_id)

    other_ca = tmp_path / "other-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(other_ca))
    auth.clear_token_cache()
    conn_id = use_connection(monkeypatch, emulator, ca_bundle=str(other_ca))
    with pytest.raises(MTPAuthError, match="Fix ca_bundle"):
        first_incident(conn_id)
    assert entra_sleep.waits == []


def test_service_fabric_managed_identity_gets_the_session_msal_requires(
    emulator: DefenderEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """msal derives a certificate-pinning session from a requests.Session there, and refuses anything else."""
    from airflow_provider_mtp.api.session import ProviderSession
    from airflow_provider_mtp.settings import ConnectionSettings

    conn = json.loads(emulator.airflow_conn)
    settings = ConnectionSettings.from_connection(
        conn_id="mtp_sf",
        login=None,
        password=None,
        extra={**conn["extra"], "auth_type": "managed_identity"},
    )
    session = ProviderSession()
    assert isinstance(auth._msal_http_client(settings, session), entra_http.EntraHttpClient)
    monkeypatch.setenv("IDENTITY_SERVER_THUMBPRINT", "0" * 40)
    assert auth._msal_http_client(settings, session) is session
