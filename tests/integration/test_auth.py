"""auth.py against the emulator: every auth type, one token per process, the refresh margin,
eviction, AADSTS codes that name the field to fix, and no secret in any log line."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import msal
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs12

from airflow_provider_mtp import auth
from airflow_provider_mtp.api.session import ProviderSession
from airflow_provider_mtp.clouds import Cloud
from airflow_provider_mtp.emulator import DefenderEmulator
from airflow_provider_mtp.errors import MTPAuthError, MTPConfigError
from airflow_provider_mtp.settings import ConnectionSettings
from tests.integration.conftest import call, token_requests
from tests.integration.msal_clock import MsalClock, ShiftedIdentityEndpoint

AUTH_TYPES = ("client_secret", "certificate", "user_password", "managed_identity", "workload_identity")


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


def connection(
    emulator: DefenderEmulator,
    auth_type: str = "client_secret",
    *,
    api: str = "graph",
    login: str | None = None,
    password: str | None = None,
    **extra: Any,
) -> ConnectionSettings:
    """The ``mtp`` connection for one of the emulator's apps, as a user would write it."""
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
        login, password = login or emulator.client_id, password or emulator.client_secret
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
    return ConnectionSettings.from_connection(
        conn_id="mtp_test", login=login, password=password, extra=fields
    )


def source(settings: ConnectionSettings) -> auth.MsalTokenSource:
    """What a hook does: its own session, then the process-wide token source."""
    session = ProviderSession(ca_bundle=settings.ca_bundle, proxy=settings.proxy, timeout=settings.timeouts)
    return auth.get_token_source(settings, session)


def read_one_incident(emulator: DefenderEmulator, settings: ConnectionSettings, token: str) -> int:
    path = "/v1.0/security/incidents?$top=1" if settings.api == "graph" else "/api/incidents?$top=1"
    return call(emulator, "GET", path, bearer=token).status_code


# Each auth type.
@pytest.mark.parametrize("api", ["graph", "legacy"])
@pytest.mark.parametrize("auth_type", AUTH_TYPES)
def test_each_auth_type_gets_a_token_that_reads_incidents(
    defender_emulator: DefenderEmulator, auth_type: str, api: str
) -> None:
    defender_emulator.reset()
    settings = connection(defender_emulator, auth_type, api=api)
    tokens = source(settings)
    token = tokens.token()
    assert read_one_incident(defender_emulator, settings, token) == 200
    assert tokens.token() == token, "the second call is served from msal's cache"
    assert token_requests(defender_emulator) == 1


def test_system_assigned_managed_identity(defender_emulator: DefenderEmulator) -> None:
    defender_emulator.reset()
    settings = connection(defender_emulator, "managed_identity", managed_identity_client_id="")
    assert settings.managed_identity_client_id is None
    source(settings).token()
    system_id = defender_emulator.info["managed_identity"]["system_client_id"]
    assert defender_emulator.stats()["tokens_issued"] == {system_id: 1}


@pytest.mark.parametrize(
    "variant", ["pem_text", "encrypted_key", "pfx", "key_only_with_thumbprint", "separate_pem_with_chain"]
)
def test_certificate_forms(defender_emulator: DefenderEmulator, tmp_path: Path, variant: str) -> None:
    cert = defender_emulator.apps["cert"]
    pem = Path(cert["certificate_path"]).read_bytes()
    key = serialization.load_pem_private_key(pem, None)
    certificate_pem = pem[pem.index(b"-----BEGIN CERTIFICATE-----") :]
    extra: dict[str, Any] = {"certificate_path": ""}
    if variant == "pem_text":
        extra["certificate"] = pem.decode()
    elif variant == "encrypted_key":
        encrypted = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"pfx pass"),
        )
        (tmp_path / "app.pem").write_bytes(encrypted + certificate_pem)
        extra.update(certificate_path=str(tmp_path / "app.pem"), certificate_password="pfx pass")
    elif variant == "pfx":
        from cryptography import x509

        blob = pkcs12.serialize_key_and_certificates(
            b"app",
            key,  # type: ignore[arg-type]
            x509.load_pem_x509_certificate(certificate_pem),
            None,
            serialization.BestAvailableEncryption(b"pfx pass"),
        )
        (tmp_path / "app.pfx").write_bytes(blob)
        extra.update(certificate_path=str(tmp_path / "app.pfx"), certificate_password="pfx pass")
    elif variant == "key_only_with_thumbprint":
        extra.update(certificate=pem[: pem.index(b"-----BEGIN CERTIFICATE-----")].decode())
        extra["certificate_thumbprint"] = cert["certificate_thumbprint"]
    else:
        # Certificate first, an unrelated CA certificate after the key: the pair is found by its public key.
        ca = Path(defender_emulator.ca_bundle).read_bytes()
        (tmp_path / "chain.pem").write_bytes(
            certificate_pem + ca + pem[: pem.index(b"-----BEGIN CERTIFICATE-----")]
        )
        extra.update(
            certificate_path=str(tmp_path / "chain.pem"),
            certificate_thumbprint=cert["certificate_thumbprint"],
        )
    token = source(connection(defender_emulator, "certificate", **extra)).token()
    assert read_one_incident(defender_emulator, connection(defender_emulator), token) == 200


def test_msal_drops_the_authority_port_for_user_realm_discovery() -> None:
    """Why auth.py restores the login_url port: msal keeps only the host name (msal/authority.py)."""
    from msal.authority import canonicalize

    assert canonicalize("https://127.0.0.1:8443/tenant")[1] == "127.0.0.1"


# One token per process.
@pytest.mark.parametrize("auth_type", AUTH_TYPES)
def test_thousand_calls_from_several_hooks_and_four_threads_make_one_token_request(
    defender_emulator: DefenderEmulator, auth_type: str
) -> None:
    defender_emulator.reset()
    # Five hooks: five sessions and five settings objects built from the same connection.
    sources = [source(connection(defender_emulator, auth_type)) for _ in range(5)]
    start = threading.Barrier(4)

    def work(worker: int) -> set[str]:
        start.wait()  # All four threads hit the empty cache together.
        return {sources[(worker + call) % len(sources)].token() for call in range(240)}

    with ThreadPoolExecutor(max_workers=4) as pool:
        tokens = set().union(*pool.map(work, range(4)))

    async def from_triggers() -> set[str]:
        results = await asyncio.gather(*(asyncio.to_thread(sources[n % 5].token) for n in range(40)))
        return set(results)

    tokens |= asyncio.run(from_triggers())
    assert len(tokens) == 1
    assert token_requests(defender_emulator) == 1


def test_graph_and_legacy_share_the_application_with_one_token_each(
    defender_emulator: DefenderEmulator,
) -> None:
    defender_emulator.reset()
    graph, legacy = source(connection(defender_emulator)), source(connection(defender_emulator, api="legacy"))
    for _ in range(50):
        graph.token()
        legacy.token()
    assert graph.token() != legacy.token()
    assert token_requests(defender_emulator) == 2
    discovery = defender_emulator.stats()["requests"]["GET /{tenant}/v2.0/.well-known/openid-configuration"]
    assert discovery == {"200": 1}, "one msal application for both back ends"


def test_different_credentials_never_share_an_application(defender_emulator: DefenderEmulator) -> None:
    defender_emulator.reset()
    full = source(connection(defender_emulator))
    read_only_app = defender_emulator.apps["read_only"]
    read_only = source(
        connection(
            defender_emulator, login=read_only_app["client_id"], password=read_only_app["client_secret"]
        )
    )
    assert full.token() != read_only.token()
    assert token_requests(defender_emulator) == 2


# Refresh margin.
def test_a_token_inside_the_refresh_margin_is_renewed_once(
    short_lived_emulator: DefenderEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    emulator = short_lived_emulator
    identity = emulator.info["managed_identity"]
    clock = MsalClock(monkeypatch)
    with ShiftedIdentityEndpoint(emulator=emulator, clock=clock) as endpoint:
        monkeypatch.setenv("IDENTITY_ENDPOINT", endpoint.url)
        monkeypatch.setenv("IDENTITY_HEADER", identity["identity_header"])
        emulator.reset()
        kinds = ("client_secret", "user_password", "managed_identity")
        sources = {kind: source(connection(emulator, kind)) for kind in kinds}
        first = {kind: tokens.token() for kind, tokens in sources.items()}
        clock.advance(5)
        assert {kind: tokens.token() for kind, tokens in sources.items()} == first, "355 s left: cached"
        assert token_requests(emulator) == 3
        # msal treats a token with less than 300 s left as expired: 61 s into a 360 s lifetime.
        clock.advance(56)
        second = {kind: tokens.token() for kind, tokens in sources.items()}
        assert all(second[kind] != first[kind] for kind in kinds)
        assert {kind: tokens.token() for kind, tokens in sources.items()} == second, "the new token is cached"
    assert token_requests(emulator) == 6, "exactly one more per credential"
    requests = emulator.stats()["requests"]
    assert requests["POST /{tenant}/oauth2/v2.0/token"] == {"200": 4}
    # The user's token was renewed with the refresh token: the password grant (which starts with
    # home realm discovery) ran once.
    assert requests["GET /common/userrealm/{username}"] == {"200": 1}


# Eviction.
@pytest.mark.parametrize("auth_type", AUTH_TYPES)
def test_invalidate_makes_the_next_call_fetch_a_new_token(
    defender_emulator: DefenderEmulator, auth_type: str
) -> None:
    defender_emulator.reset()
    first_hook, second_hook = (
        source(connection(defender_emulator, auth_type)),
        source(connection(defender_emulator, auth_type)),
    )
    refused = first_hook.token()
    second_hook.invalidate("a-token-that-was-never-issued")
    assert first_hook.token() == refused
    second_hook.invalidate(refused)
    fresh = first_hook.token()
    assert fresh != refused, "one hook's 401 evicts the token for every hook of the process"
    assert second_hook.token() == fresh
    assert token_requests(defender_emulator) == 2


# Failures name the field to fix.
def auth_failure(settings: ConnectionSettings) -> str:
    with pytest.raises(MTPAuthError) as caught:
        source(settings).token()
    message = str(caught.value)
    for secret in settings.secrets():
        assert secret not in message
    return message


def test_wrong_secret_names_the_client_secret_value(defender_emulator: DefenderEmulator) -> None:
    message = auth_failure(connection(defender_emulator, password="not-the-secret-value"))
    assert "AADSTS7000215" in message
    assert "Fix password (Client secret)" in message
    assert "VALUE" in message
    assert "Entra ID said: AADSTS7000215: Invalid client secret provided." in message
    assert "Trace ID" not in message


@pytest.mark.parametrize(
    ("overrides", "code", "field"),
    [
        ({"login": "11111111-1111-1111-1111-111111111111"}, "AADSTS700016", "login (Client ID) or tenant_id"),
        ({"tenant_id": "00000000-0000-0000-0000-000000000000"}, "AADSTS90002", "Fix tenant_id"),
        ({"tenant_id": "not_a_tenant"}, "AADSTS900023", "Fix tenant_id"),
    ],
)
def test_app_and_tenant_failures(
    defender_emulator: DefenderEmulator, overrides: dict[str, Any], code: str, field: str
) -> None:
    message = auth_failure(connection(defender_emulator, **overrides))
    assert code in message
    assert field in message


def test_unknown_resource_names_api_and_cloud(defender_emulator: DefenderEmulator) -> None:
    wrong = Cloud(
        name="global",
        login_host="login.microsoftonline.com",
        graph_root="https://api.securitycenter.microsoft.com",
        mtp_host=None,
        portal="https://security.microsoft.com",
    )
    message = auth_failure(dataclasses.replace(connection(defender_emulator), cloud=wrong))
    assert "AADSTS500011" in message
    assert "Fix api or cloud" in message


def test_wrong_user_password_names_the_user_fields(defender_emulator: DefenderEmulator) -> None:
    message = auth_failure(connection(defender_emulator, "user_password", user_password="wrong password"))
    assert "AADSTS50126" in message
    assert "Fix username or user_password" in message


def test_unregistered_certificate_names_the_certificate(defender_emulator: DefenderEmulator) -> None:
    message = auth_failure(connection(defender_emulator, "certificate", login=defender_emulator.client_id))
    # The secret-only app has no certificate registered: Entra says so with 700027.
    assert "AADSTS700027" in message
    assert "Fix certificate, certificate_path or certificate_thumbprint" in message


def test_forged_federated_token_names_the_token_file(
    defender_emulator: DefenderEmulator, tmp_path: Path
) -> None:
    genuine = Path(defender_emulator.apps["workload"]["federated_token_file"]).read_text()
    (tmp_path / "token").write_text(genuine[:-4] + "AAAA")
    message = auth_failure(
        connection(defender_emulator, "workload_identity", federated_token_file=str(tmp_path / "token"))
    )
    assert "AADSTS700027" in message
    assert "Fix federated_token_file" in message


def test_managed_identity_failures(
    defender_emulator: DefenderEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    unknown = auth_failure(
        connection(
            defender_emulator,
            "managed_identity",
            managed_identity_client_id="22222222-2222-2222-2222-222222222222",
        )
    )
    assert "managed_identity_client_id" in unknown
    assert "No User Assigned or Delegated Managed Identity found" in unknown
    monkeypatch.setenv("IDENTITY_HEADER", "wrong-header")
    auth.clear_token_cache()
    assert "managed_identity_client_id" in auth_failure(connection(defender_emulator, "managed_identity"))


def test_unreachable_login_host_names_the_fields(defender_emulator: DefenderEmulator) -> None:
    message = auth_failure(connection(defender_emulator, login_url="https://127.0.0.1:9"))
    assert "could not get a token" in message
    assert "login_url, cloud or proxy" in message


def test_untrusted_login_host_names_ca_bundle(defender_emulator: DefenderEmulator, tmp_path: Path) -> None:
    import trustme

    other_ca = tmp_path / "other-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(other_ca))
    message = auth_failure(connection(defender_emulator, ca_bundle=str(other_ca)))
    assert "Fix ca_bundle" in message


@pytest.mark.parametrize(
    ("aadsts", "error", "auth_type", "field"),
    [
        (70011, "invalid_scope", "client_secret", "Fix api or cloud"),
        (7000222, "invalid_client", "client_secret", "Fix password (Client secret)"),
        (700024, "invalid_client", "certificate", "Fix (this host's clock)"),
        (700024, "invalid_client", "workload_identity", "Fix federated_token_file"),
        (700213, "invalid_client", "workload_identity", "Fix federated_token_file"),
        (50076, "invalid_grant", "user_password", "Fix auth_type"),
        (65001, "invalid_grant", "user_password", "Fix the app registration"),
        (None, "invalid_grant", "user_password", "Fix username and user_password"),
        (None, "unauthorized_client", "client_secret", "Fix login (Client ID) or tenant_id"),
    ],
)
def test_error_table(
    defender_emulator: DefenderEmulator, aadsts: int | None, error: str, auth_type: str, field: str
) -> None:
    settings = connection(defender_emulator, auth_type)
    result: dict[str, Any] = {
        "error": error,
        "error_description": f"AADSTS{aadsts}: text." if aadsts else "text.",
    }
    if aadsts:
        result["error_codes"] = [aadsts]
    failure = auth.auth_error(settings, result)
    assert field in str(failure)
    assert failure.code == (f"AADSTS{aadsts}" if aadsts else error)


def test_service_message_echoing_a_secret_is_scrubbed(defender_emulator: DefenderEmulator) -> None:
    settings = connection(defender_emulator)
    secret = str(settings.client_secret)
    failure = auth.auth_error(
        settings, {"error": "invalid_client", "error_description": f"AADSTS7000215: got {secret}."}
    )
    assert secret not in str(failure)
    assert secret not in (failure.service_message or "")


# Certificate problems are configuration errors, found before any token request.
def certificate_error(emulator: DefenderEmulator, **extra: Any) -> str:
    with pytest.raises(MTPConfigError) as caught:
        source(connection(emulator, "certificate", **extra)).token()
    return str(caught.value)


def test_certificate_configuration_errors(defender_emulator: DefenderEmulator, tmp_path: Path) -> None:
    pem = Path(defender_emulator.apps["cert"]["certificate_path"]).read_bytes()
    key = serialization.load_pem_private_key(pem, None)
    cert_pem = pem[pem.index(b"-----BEGIN CERTIFICATE-----") :]
    encrypted = tmp_path / "encrypted.pem"
    encrypted.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"right"),
        )
        + cert_pem
    )
    (tmp_path / "cert-only.pem").write_bytes(cert_pem)
    key_only = pem[: pem.index(b"-----BEGIN CERTIFICATE-----")]
    defender_emulator.reset()
    cases = {
        "certificate_path '/nonexistent/app.pem' cannot be read": {
            "certificate_path": "/nonexistent/app.pem"
        },
        "certificate_password does not decrypt": {
            "certificate_path": str(encrypted),
            "certificate_password": "wrong",
        },
        "certificate_password is empty, but the private key is encrypted": {
            "certificate_path": str(encrypted)
        },
        "certificate_path has no private key": {"certificate_path": str(tmp_path / "cert-only.pem")},
        "holds a private key but no certificate, and certificate_thumbprint is empty": {
            "certificate_path": "",
            "certificate": key_only.decode(),
        },
        "certificate_thumbprint is 00000000": {"certificate_thumbprint": "00" * 20},
    }
    for expected, extra in cases.items():
        message = certificate_error(defender_emulator, **extra)
        assert expected in message, message
        assert "Fix: " in message
    assert token_requests(defender_emulator) == 0


def test_missing_federated_token_file_is_a_configuration_error(defender_emulator: DefenderEmulator) -> None:
    with pytest.raises(MTPConfigError, match="federated_token_file '/nonexistent/token' cannot be read"):
        source(
            connection(defender_emulator, "workload_identity", federated_token_file="/nonexistent/token")
        ).token()


# Masking and logs.
def test_every_new_token_and_connection_secret_is_masked(
    defender_emulator: DefenderEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    import airflow.sdk.log

    masked: list[str] = []
    monkeypatch.setattr(airflow.sdk.log, "mask_secret", lambda value, name=None: masked.append(value))
    settings = connection(defender_emulator, "user_password", password=None)
    tokens = source(settings)
    token = tokens.token()
    tokens.token()
    assert masked.count(token) == 1, "masked once, when acquired"
    assert settings.user_password in masked


def secrets_in_caches() -> set[str]:
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
    defender_emulator: DefenderEmulator, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    caplog.set_level(logging.DEBUG)
    logging.getLogger("msal").setLevel(logging.DEBUG)
    defender_emulator.reset()
    apps = defender_emulator.apps
    forbidden = {
        defender_emulator.client_secret,
        apps["user"]["password"],
        defender_emulator.info["managed_identity"]["identity_header"],
        Path(apps["workload"]["federated_token_file"]).read_text().strip(),
    }
    key_lines = Path(apps["cert"]["certificate_path"]).read_text().split("-----BEGIN CERTIFICATE-----")[0]
    forbidden.update(line for line in key_lines.splitlines() if line and not line.startswith("-----"))
    for auth_type in AUTH_TYPES:
        for api in ("graph", "legacy"):
            tokens = source(connection(defender_emulator, auth_type, api=api))
            first = tokens.token()
            forbidden.add(first)
            tokens.invalidate(first)
            forbidden.add(tokens.token())
        forbidden |= secrets_in_caches()
    for bad in (
        connection(defender_emulator, password="wrong-secret-value-123"),
        connection(defender_emulator, "user_password", user_password="wrong-user-password-456"),
    ):
        forbidden.update(bad.secrets())
        with pytest.raises(MTPAuthError):
            source(bad).token()
    out, err = capfd.readouterr()
    records = caplog.records
    assert any("acquired a token" in record.getMessage() for record in records)
    assert any(record.name.startswith("msal") for record in records), "msal's own debug lines were captured"
    text = "\n".join(
        [record.getMessage() for record in records]
        + [str(record.args) for record in records]
        + [caplog.text, out, err]
    )
    leaked = sorted(secret[:12] + "..." for secret in forbidden if secret and secret in text)
    assert not leaked, f"secrets in the logs: {leaked}"
