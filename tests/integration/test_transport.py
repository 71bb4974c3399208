"""The transport against the real emulator over TLS: retries, token refresh, errors, paging, links.

Faults are injected with ``/_emulator/faults``; every test that injects or counts resets the
emulator first. The retry-wait parsers are unit-tested at the end.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import random
import re
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests

from airflow_provider_mtp.api import graph, legacy
from airflow_provider_mtp.api.client import SecurityClient
from airflow_provider_mtp.api.graph import GraphSecurityApi
from airflow_provider_mtp.api.legacy import LegacyMtpApi
from airflow_provider_mtp.api.session import ProviderSession
from airflow_provider_mtp.api.transport import (
    Transport,
    backoff_wait,
    limit_kind,
    parse_duration,
    parse_reset_from_message,
    parse_retry_after,
    required_roles,
)
from airflow_provider_mtp.emulator import DefenderEmulator
from airflow_provider_mtp.errors import (
    MTPAuthError,
    MTPConfigError,
    MTPNotFoundError,
    MTPPermissionError,
    MTPQueryError,
    MTPServiceError,
    MTPThrottledError,
)
from tests.integration.conftest import GRAPH, MTP, token

TRANSPORT_LOGGER = "airflow_provider_mtp.api.transport"
INCIDENTS = "/v1.0/security/incidents"


# --------------------------------------------------------------------------------------------------
# Helpers (also used by test_back_ends.py)
# --------------------------------------------------------------------------------------------------


class EmulatorTokens:
    """A minimal TokenSource: client-credential tokens from the emulator, cached until invalidated.

    :param emulator: the emulator.
    :param audience: ``GRAPH`` or ``MTP``.
    :param app: an app name from the ready line (``read_only``, ``no_hunting``); ``None`` is the full app.
    """

    def __init__(self, *, emulator: DefenderEmulator, audience: str, app: str | None = None) -> None:
        self.emulator = emulator
        self.audience = audience
        self.app = app
        self.fetched = 0
        self.invalidated: list[str] = []
        self.handed_out: set[str] = set()
        self._token: str | None = None

    def token(self) -> str:
        if self._token is None:
            self._token = token(self.emulator, self.audience, app=self.app)
            self.fetched += 1
            self.handed_out.add(self._token)
        return self._token

    def invalidate(self, token: str) -> None:
        self.invalidated.append(token)
        if token == self._token:
            self._token = None


class RecordingSleep:
    """Stands in for ``time.sleep`` between retries: remembers each wait, waits for none.

    The emulator's faults are counted, not timed: the retry after a ``Retry-After: 1`` is answered
    the same whether a second passed or not.
    """

    def __init__(self) -> None:
        self.waits: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


#: Sessions the helpers opened; closed after each test, as open keep-alive connections would hold
#: up the emulator's graceful shutdown at the end of the session.
OPEN_SESSIONS: list[requests.Session] = []


def close_open_sessions() -> None:
    while OPEN_SESSIONS:
        OPEN_SESSIONS.pop().close()


def _opened(session: ProviderSession) -> ProviderSession:
    OPEN_SESSIONS.append(session)
    return session


def make_transport(
    emulator: DefenderEmulator,
    dialect: str = "graph",
    *,
    app: str | None = None,
    **options: Any,
) -> Transport:
    """A transport to the emulator as the hook would build it (ProviderSession, TLS, allow-list)."""
    options.setdefault("backoff_base", 0.05)
    options.setdefault("sleep", RecordingSleep())
    session = _opened(ProviderSession(ca_bundle=emulator.ca_bundle, timeout=(10.0, 180.0)))
    return Transport(
        origin=emulator.url,
        tokens=EmulatorTokens(emulator=emulator, audience=GRAPH if dialect == "graph" else MTP, app=app),
        session=session,
        identity=graph.IDENTITY if dialect == "graph" else legacy.IDENTITY,
        allowed_hosts=frozenset({urlsplit(emulator.url).netloc}),
        **options,
    )


def make_api(emulator: DefenderEmulator, dialect: str, **options: Any) -> SecurityClient:
    """A back end over a transport to the emulator, as the hook builds it."""
    transport = make_transport(emulator, dialect, **options)
    if dialect == "graph":
        return SecurityClient(api=GraphSecurityApi(), transport=transport)
    backend = LegacyMtpApi(
        portal="https://security.microsoft.com", tenant=lambda: legacy.token_tenant(transport.tokens.token())
    )
    return SecurityClient(api=backend, transport=transport)


def fresh(emulator: DefenderEmulator) -> DefenderEmulator:
    """Reset data, counters, quotas and faults, for a test that counts or injects."""
    emulator.reset()
    emulator.clear_faults()
    return emulator


def retry_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        record.getMessage()
        for record in caplog.records
        if record.name == TRANSPORT_LOGGER and record.getMessage().startswith("Retrying")
    ]


def assert_no_token_logged(caplog: pytest.LogCaptureFixture, tokens: Any) -> None:
    text = "\n".join(record.getMessage() for record in caplog.records)
    for handed_out in tokens.handed_out:
        assert handed_out not in text
        assert handed_out[-20:] not in text


@pytest.fixture
def emulator(defender_emulator: DefenderEmulator) -> Iterator[DefenderEmulator]:
    yield fresh(defender_emulator)
    defender_emulator.clear_faults()


@pytest.fixture(autouse=True)
def _close_sessions() -> Iterator[None]:
    yield
    close_open_sessions()


# --------------------------------------------------------------------------------------------------
# Retries
# --------------------------------------------------------------------------------------------------


def test_429_with_retry_after_is_waited_out(
    emulator: DefenderEmulator, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=TRANSPORT_LOGGER)
    transport = make_transport(emulator)
    emulator.inject_fault(path=INCIDENTS, method="GET", status=429, retry_after=1)

    body = transport.request_json("GET", INCIDENTS, params={"$top": 5})

    assert len(body["value"]) == 5
    waits = transport.sleep.waits  # type: ignore[attr-defined]
    assert waits
    assert 1.0 <= waits[0] <= 1.1
    assert emulator.stats()["requests"][f"GET {INCIDENTS}"] == {"429": 1, "200": 1}
    (line,) = retry_lines(caplog)
    assert re.fullmatch(
        r"Retrying GET /v1\.0/security/incidents after 429 TooManyRequests \(Retry-After 1 s\): "
        r"attempt 2/6 in 1\.\d s",
        line,
    ), line
    assert_no_token_logged(caplog, transport.tokens)


def test_three_503s_then_success(emulator: DefenderEmulator, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger=TRANSPORT_LOGGER)
    transport = make_transport(emulator)
    emulator.inject_fault(path=INCIDENTS, status=503, count=3)

    body = transport.request_json("GET", INCIDENTS, params={"$top": 1, "$filter": "severity eq 'high'"})

    assert len(body["value"]) == 1
    assert emulator.stats()["requests"][f"GET {INCIDENTS}"] == {"503": 3, "200": 1}
    lines = retry_lines(caplog)
    assert [re.search(r"attempt (\d)/6", line).group(1) for line in lines] == ["2", "3", "4"]  # type: ignore[union-attr]
    assert all("503 ServiceUnavailable" in line for line in lines)
    # The query string (filters, skip tokens) never reaches the log.
    assert not any("severity" in line or "$top" in line for line in lines)


def test_503_that_never_ends_fails_with_the_service_error(emulator: DefenderEmulator) -> None:
    transport = make_transport(emulator, max_attempts=3)
    emulator.inject_fault(path=INCIDENTS, status=503, count=5)
    with pytest.raises(MTPServiceError, match=r"kept failing \(503 ServiceUnavailable") as failure:
        transport.request_json("GET", INCIDENTS)
    assert failure.value.status == 503
    assert failure.value.request_id
    assert emulator.stats()["requests"][f"GET {INCIDENTS}"] == {"503": 3}


@pytest.mark.parametrize("kind", ["drop", "malformed"])
def test_a_dropped_or_malformed_body_is_retried(
    emulator: DefenderEmulator, caplog: pytest.LogCaptureFixture, kind: str
) -> None:
    caplog.set_level(logging.INFO, logger=TRANSPORT_LOGGER)
    transport = make_transport(emulator)
    emulator.inject_fault(path=INCIDENTS, kind=kind)

    body = transport.request_json("GET", INCIDENTS, params={"$top": 3})

    assert len(body["value"]) == 3
    assert emulator.stats()["requests"][f"GET {INCIDENTS}"] == {"200": 2}
    (line,) = retry_lines(caplog)
    assert "reply cut off or malformed" in line


def test_a_dropped_hunting_stream_is_retried_before_the_first_row(emulator: DefenderEmulator) -> None:
    api = make_api(emulator, "graph")
    emulator.inject_fault(path="/v1.0/security/runHuntingQuery", kind="drop")
    with api.run_hunting_query("range x from 1 to 5 step 1") as result:
        assert [row["x"] for row in result.rows] == [1, 2, 3, 4, 5]
    assert emulator.stats()["requests"]["POST /v1.0/security/runHuntingQuery"] == {"200": 2}


def test_a_wait_longer_than_max_wait_raises_throttled_at_once(emulator: DefenderEmulator) -> None:
    transport = make_transport(emulator, max_wait=60)
    emulator.inject_fault(path=INCIDENTS, status=429, retry_after=120)
    with pytest.raises(MTPThrottledError, match="asked to wait 120 s") as failure:
        transport.request_json("GET", INCIDENTS)
    assert failure.value.retry_after == 120
    assert transport.sleep.waits == []  # type: ignore[attr-defined]
    assert emulator.stats()["requests"][f"GET {INCIDENTS}"] == {"429": 1}


def test_legacy_quota_window_in_the_body_is_the_wait(emulator: DefenderEmulator) -> None:
    # No Retry-After: the MTP body's "maximum allowed 45 per 00:01:00" says to wait out the minute.
    transport = make_transport(emulator, "legacy", max_wait=30)
    emulator.inject_fault(path="/api/incidents", status=429)
    with pytest.raises(MTPThrottledError, match="maximum allowed 45 per 00:01:00") as failure:
        transport.request_json("GET", "/api/incidents")
    assert failure.value.retry_after == 60
    assert failure.value.code == "429"


def test_throttling_that_outlasts_the_retries(emulator: DefenderEmulator) -> None:
    transport = make_transport(emulator, max_attempts=2)
    emulator.inject_fault(path=INCIDENTS, status=429, retry_after=0, count=2)
    with pytest.raises(MTPThrottledError, match="still throttled the call after 2 attempts"):
        transport.request_json("GET", INCIDENTS)


def test_a_comment_is_not_retried_after_a_gateway_error(emulator: DefenderEmulator) -> None:
    api = make_api(emulator, "graph")
    incident_id = next(iter(api.list_incidents(page_size=1)))["id"]
    path = f"{INCIDENTS}/{incident_id}/comments"
    emulator.inject_fault(path=path, status=503)
    with pytest.raises(MTPServiceError, match="not retried, because the service may have applied it"):
        api.add_incident_comment(incident_id, "only once")
    assert emulator.stats()["requests"][f"POST {INCIDENTS}/{{incident_id}}/comments"] == {"503": 1}


def test_a_comment_is_retried_after_429_and_added_once(emulator: DefenderEmulator) -> None:
    api = make_api(emulator, "graph")
    incident_id = next(iter(api.list_incidents(page_size=1)))["id"]
    emulator.inject_fault(path=f"{INCIDENTS}/{incident_id}/comments", status=429, retry_after=0)
    comments = api.add_incident_comment(incident_id, "exactly once")
    assert [item["comment"] for item in comments].count("exactly once") == 1
    emulator.reset()


# --------------------------------------------------------------------------------------------------
# Tokens
# --------------------------------------------------------------------------------------------------


def _all_ids(api: SecurityClient, page_size: int) -> list[str]:
    return [incident["id"] for incident in api.list_incidents(page_size=page_size)]


@pytest.mark.parametrize(
    ("dialect", "path", "page_size"),
    [("graph", INCIDENTS, 50), ("legacy", "/api/incidents", 100)],
)
def test_a_401_mid_paging_refreshes_once_and_misses_nothing(
    emulator: DefenderEmulator, caplog: pytest.LogCaptureFixture, dialect: str, path: str, page_size: int
) -> None:
    caplog.set_level(logging.INFO, logger=TRANSPORT_LOGGER)
    clean = _all_ids(make_api(emulator, dialect), page_size)
    assert len(clean) > 2 * page_size, "the tenant must have more than two pages"
    pages = emulator.stats()["requests"][f"GET {path}"]["200"]
    fresh(emulator)
    api = make_api(emulator, dialect)
    # The third page's request gets a 401, as when a cached token is revoked mid-walk.
    emulator.inject_fault(path=path, method="GET", status=401, after=2)

    listed = _all_ids(api, page_size)

    assert listed == clean
    assert len(set(listed)) == len(listed)
    tokens = api.transport.tokens
    assert tokens.fetched == 2  # type: ignore[attr-defined]
    assert len(tokens.invalidated) == 1  # type: ignore[attr-defined]
    stats = emulator.stats()
    assert stats["tokens_issued"] == {emulator.client_id: 2}
    assert stats["requests"][f"GET {path}"] == {"200": pages, "401": 1}
    assert any("dropping the cached token" in record.getMessage() for record in caplog.records)
    assert_no_token_logged(caplog, tokens)


def test_a_second_401_names_the_likely_fix(emulator: DefenderEmulator) -> None:
    transport = make_transport(emulator)
    emulator.inject_fault(path=INCIDENTS, status=401, count=2)
    with pytest.raises(MTPAuthError, match="also a freshly fetched one") as failure:
        transport.request_json("GET", INCIDENTS)
    assert "graph.microsoft.com" in str(failure.value)
    assert failure.value.status == 401
    assert transport.tokens.fetched == 2  # type: ignore[attr-defined]


def test_a_token_for_the_wrong_api_is_an_auth_error(emulator: DefenderEmulator) -> None:
    # A Graph token sent to the legacy API: the classic audience mix-up.
    transport = Transport(
        origin=emulator.url,
        tokens=EmulatorTokens(emulator=emulator, audience=GRAPH),
        session=_opened(ProviderSession(ca_bundle=emulator.ca_bundle)),
        identity=legacy.IDENTITY,
    )
    with pytest.raises(MTPAuthError, match=re.escape("api.security.microsoft.com")) as failure:
        transport.request_json("GET", "/api/incidents", params={"$top": 1})
    assert "Invalid audience" in (failure.value.service_message or "")


# --------------------------------------------------------------------------------------------------
# Errors that are not retried
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dialect", ["graph", "legacy"])
def test_bad_kql_fails_at_once_with_the_apis_message(emulator: DefenderEmulator, dialect: str) -> None:
    api = make_api(emulator, dialect)
    with pytest.raises(MTPQueryError) as failure:
        api.run_hunting_query("DeviceProcessEvents | where | x")
    error = failure.value
    assert error.status == 400
    assert error.code == "BadRequest"
    assert error.service_message
    assert f'"{error.service_message}"' in str(error), "the API's explanation is quoted verbatim"
    path = "/v1.0/security/runHuntingQuery" if dialect == "graph" else "/api/advancedhunting/run"
    assert emulator.stats()["requests"][f"POST {path}"] == {"400": 1}


@pytest.mark.parametrize(
    ("dialect", "permission", "api_name"),
    [
        ("graph", "ThreatHunting.Read.All", "on Microsoft Graph"),
        ("legacy", "AdvancedHunting.Read.All", "on the Microsoft Threat Protection API (WindowsDefenderATP"),
    ],
)
def test_403_names_the_permission_and_the_api(
    emulator: DefenderEmulator, dialect: str, permission: str, api_name: str
) -> None:
    api = make_api(emulator, dialect, app="no_hunting")
    with pytest.raises(MTPPermissionError) as failure:
        api.run_hunting_query("print x = 1")
    message = str(failure.value)
    assert f"Grant the application permission {permission}" in message
    assert api_name in message
    assert "admin consent" in message
    assert failure.value.status == 403


def test_403_on_a_write_names_the_write_permission(emulator: DefenderEmulator) -> None:
    api = make_api(emulator, "graph", app="read_only")
    incident_id = next(iter(api.list_incidents(page_size=1)))["id"]
    with pytest.raises(
        MTPPermissionError, match=re.escape("SecurityIncident.ReadWrite.All on Microsoft Graph")
    ):
        api.update_incident(incident_id, {"status": "resolved"})


def test_403_without_roles_in_the_message_uses_the_callers_hint(emulator: DefenderEmulator) -> None:
    transport = make_transport(emulator)
    emulator.inject_fault(path=INCIDENTS, status=403, message="Forbidden")
    with pytest.raises(
        MTPPermissionError, match=re.escape("permission SecurityIncident.Read.All on Microsoft Graph")
    ):
        transport.request_json("GET", INCIDENTS, permission="SecurityIncident.Read.All")
    assert emulator.stats()["requests"][f"GET {INCIDENTS}"] == {"403": 1}


@pytest.mark.parametrize("dialect", ["graph", "legacy"])
def test_404_is_not_found(emulator: DefenderEmulator, dialect: str) -> None:
    api = make_api(emulator, dialect)
    with pytest.raises(MTPNotFoundError, match="not found") as failure:
        api.get_incident("987654321")
    assert failure.value.status == 404
    assert failure.value.request_id


def test_hunting_row_limit_is_a_limit_error(strict_emulator: DefenderEmulator) -> None:
    from airflow_provider_mtp.errors import MTPLimitExceededError

    api = make_api(strict_emulator, "graph")
    with pytest.raises(MTPLimitExceededError, match="row limit") as failure:
        api.run_hunting_query("range x from 1 to 100005 step 1")
    assert failure.value.limit == "rows"


# --------------------------------------------------------------------------------------------------
# Links, schemes and certificates
# --------------------------------------------------------------------------------------------------


class _Recorder(BaseHTTPRequestHandler):
    """Serves one canned JSON body and records the requests (path and Authorization)."""

    body: bytes = b"{}"
    seen: list[tuple[str, str | None]]

    def do_GET(self) -> None:
        self.seen.append((self.path, self.headers.get("Authorization")))
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


def _serve(body: dict[str, Any]) -> tuple[ThreadingHTTPServer, list[tuple[str, str | None]]]:
    seen: list[tuple[str, str | None]] = []
    handler = type("Handler", (_Recorder,), {"body": json.dumps(body).encode(), "seen": seen})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, seen


class _StaticTokens:
    def __init__(self) -> None:
        self.handed_out = {"static-token-value"}

    def token(self) -> str:
        return "static-token-value"

    def invalidate(self, token: str) -> None:
        pass


def test_a_next_link_to_another_host_is_refused_and_nothing_is_sent_there() -> None:
    elsewhere, elsewhere_seen = _serve({"value": [{"id": "stolen"}]})
    link = f"http://127.0.0.1:{elsewhere.server_port}/v1.0/security/incidents?$skiptoken=x"
    api_server, api_seen = _serve({"value": [{"id": "1"}, {"id": "2"}], "@odata.nextLink": link})
    try:
        transport = Transport(
            origin=f"http://127.0.0.1:{api_server.server_port}",
            tokens=_StaticTokens(),
            session=requests.Session(),
            identity=graph.IDENTITY,
            timeout=(5.0, 5.0),
        )
        pages = transport.iter_graph_pages(INCIDENTS, {"$top": 2})
        assert [item["id"] for item in next(pages)] == ["1", "2"]
        with pytest.raises(MTPServiceError, match=re.escape("Refused to follow @odata.nextLink")) as failure:
            next(pages)
    finally:
        elsewhere.shutdown()
        api_server.shutdown()
    assert f"127.0.0.1:{elsewhere.server_port}" in str(failure.value)
    assert "nothing was sent there" in str(failure.value)
    assert elsewhere_seen == []
    assert api_seen == [("/v1.0/security/incidents?%24top=2", "Bearer static-token-value")]


class _RecordingSession(requests.Session):
    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        self.urls.append(str(url))
        return super().request(method, url, *args, **kwargs)


def test_a_next_link_is_refused_before_any_request(defender_emulator: DefenderEmulator) -> None:
    transport = make_transport(defender_emulator)
    session = _RecordingSession()
    transport.session = session
    for link in ("https://evil.example.com/v1.0/security/incidents", "http://graph.microsoft.com/v1.0/x"):
        with pytest.raises(MTPServiceError, match=re.escape("Refused to follow @odata.nextLink")):
            transport.rules._check_next_link(link)
    # An allowed extra host passes; a port other than the allowed one does not.
    transport.rules = dataclasses.replace(
        transport.rules, allowed_hosts=frozenset({"gateway.contoso.com", "127.0.0.1:1"})
    )
    transport.rules._check_next_link("https://gateway.contoso.com/v1.0/security/incidents?$skip=50")
    with pytest.raises(MTPServiceError):
        transport.rules._check_next_link("https://127.0.0.1:2/v1.0/security/incidents")
    assert session.urls == []


def test_plain_http_is_refused_except_to_loopback() -> None:
    session = _RecordingSession()
    transport = Transport(
        origin="http://api.contoso.com", tokens=_StaticTokens(), session=session, identity=graph.IDENTITY
    )
    with pytest.raises(MTPConfigError, match=re.escape("Refused plain http to api.contoso.com")):
        transport.request("GET", INCIDENTS)
    with pytest.raises(MTPConfigError, match="Refused to send the token"):
        Transport(
            origin="https://graph.microsoft.com",
            tokens=_StaticTokens(),
            session=session,
            identity=graph.IDENTITY,
        ).request("GET", "https://evil.example.com/v1.0/security/incidents")
    assert session.urls == []


def test_certificate_checks_cannot_be_switched_off(defender_emulator: DefenderEmulator) -> None:
    session = requests.Session()
    session.verify = False
    transport = make_transport(defender_emulator)
    transport.session = session
    with pytest.raises(MTPConfigError, match="Certificate verification is switched off"):
        transport.request("GET", INCIDENTS)


def test_an_untrusted_certificate_names_ca_bundle(defender_emulator: DefenderEmulator) -> None:
    transport = make_transport(defender_emulator)
    transport.session = _opened(ProviderSession())  # the system store does not know the emulator's CA
    with pytest.raises(MTPConfigError, match="ca_bundle"):
        transport.request("GET", INCIDENTS)


# --------------------------------------------------------------------------------------------------
# Unit tests: how long to wait
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "seconds"),
    [("1", 1.0), ("0", 0.0), (" 2.5 ", 2.5), ("-3", 0.0), ("", None), (None, None), ("soon", None)],
)
def test_retry_after_seconds(header: str | None, seconds: float | None) -> None:
    assert parse_retry_after(header) == seconds


def test_retry_after_http_date() -> None:
    now = datetime(2026, 11, 20, 12, 0, 0, tzinfo=UTC)
    assert parse_retry_after(format_datetime(now + timedelta(seconds=90), usegmt=True), now=now) == 90.0
    assert parse_retry_after("Fri, 20 Nov 2026 11:59:00 GMT", now=now) == 0.0


@pytest.mark.parametrize(
    ("message", "seconds"),
    [
        ("API calls quota exceeded! maximum allowed 45 per 00:01:00", 60.0),
        ("API calls quota exceeded! maximum allowed 1500 per 01:00:00", 3600.0),
        ("quota exceeded! maximum allowed 10 per 1.00:00:00", 86400.0),
        (
            "You have exceeded processing resources allocated to this tenant. You can run queries again in 00:05:00.",
            300.0,
        ),
        ("You can run queries again in 5 seconds.", 5.0),
        ("You can run queries again in 2 minutes and 30 seconds.", 150.0),
        ("You can run queries again in 1 hour, 5 minutes.", 3900.0),
        ("You can run queries again in PT1M30S.", 90.0),
        ("You can run queries again in 500 ms.", 0.5),
        ("Too many requests.", None),
        ("You can run queries again in a few minutes.", None),
        (None, None),
    ],
)
def test_reset_time_from_the_body(message: str | None, seconds: float | None) -> None:
    assert parse_reset_from_message(message) == seconds


def test_duration_stops_at_the_first_non_duration_words() -> None:
    assert parse_duration("5 seconds, then 10 minutes later") == 5.0
    assert parse_duration("soon") is None


def test_backoff_doubles_with_equal_jitter_and_a_cap() -> None:
    rng = random.Random(7)
    for attempt, step in [(1, 1.0), (2, 2.0), (3, 4.0), (6, 30.0), (12, 30.0)]:
        wait = backoff_wait(attempt, base=1.0, cap=30.0, rng=rng)
        assert step / 2 <= wait <= step


def test_required_roles_and_limit_kinds() -> None:
    assert required_roles(
        "Missing application roles. API required roles: SecurityIncident.Read.All,SecurityIncident.ReadWrite.All, "
        "application roles: ."
    ) == ["SecurityIncident.Read.All", "SecurityIncident.ReadWrite.All"]
    assert required_roles("Forbidden") == []
    assert limit_kind("Query result exceeds the 100,000-row limit. Use summarize") == "rows"
    assert limit_kind('Result size limit exceeded. Use "summarize" to aggregate results') == "size"
    assert limit_kind("Query exceeded the timeout period.") == "timeout"
    assert limit_kind("'project' operator: Failed to resolve scalar expression named 'x'") is None
