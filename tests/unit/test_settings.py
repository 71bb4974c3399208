"""ConnectionSettings: defaults per cloud and back end, prefixed keys, and every validation message."""

from __future__ import annotations

from typing import Any

import pytest

from airflow_provider_mtp.errors import MTPConfigError
from airflow_provider_mtp.settings import ConnectionSettings

TENANT = "11111111-2222-3333-4444-555555555555"
CLIENT = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"
SECRET = "s3cr3t~value-that-must-never-show"
PEM = "-----BEGIN PRIVATE KEY-----\nMIIEvQ...\n-----END PRIVATE KEY-----\n"


def settings(
    extra: dict[str, Any], *, login: str | None = CLIENT, password: str | None = SECRET
) -> ConnectionSettings:
    return ConnectionSettings.from_connection(conn_id="mtp_test", login=login, password=password, extra=extra)


def error_of(extra: dict[str, Any], **kwargs: Any) -> str:
    with pytest.raises(MTPConfigError) as caught:
        settings(extra, **kwargs)
    message = str(caught.value)
    assert message.startswith("Connection 'mtp_test': "), message
    assert "Fix: " in message, message
    return message


@pytest.fixture(autouse=True)
def _no_azure_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AZURE_FEDERATED_TOKEN_FILE", "AZURE_CLIENT_ID", "AZURE_TENANT_ID"):
        monkeypatch.delenv(name, raising=False)


# Defaults.
def test_defaults_are_client_secret_graph_global() -> None:
    result = settings({"tenant_id": TENANT})
    assert (result.auth_type, result.api, result.cloud.name) == ("client_secret", "graph", "global")
    assert result.api_origin == "https://graph.microsoft.com"
    assert result.login_origin == "https://login.microsoftonline.com"
    assert result.authority == f"https://login.microsoftonline.com/{TENANT}"
    assert result.scope == "https://graph.microsoft.com/.default"
    assert result.resource == "https://graph.microsoft.com"
    assert result.timeouts == (10.0, 200.0)
    assert result.allowed_hosts == frozenset({"graph.microsoft.com"})
    assert result.client_id == CLIENT
    assert result.client_secret == SECRET


@pytest.mark.parametrize(
    ("cloud", "api", "origin", "login", "scope"),
    [
        (
            "global",
            "legacy",
            "https://api.security.microsoft.com",
            "https://login.microsoftonline.com",
            "https://api.security.microsoft.com/.default",
        ),
        (
            "gcc",
            "graph",
            "https://graph.microsoft.com",
            "https://login.microsoftonline.com",
            "https://graph.microsoft.com/.default",
        ),
        (
            "gcc",
            "legacy",
            "https://api-gcc.security.microsoft.us",
            "https://login.microsoftonline.com",
            "https://api-gcc.security.microsoft.us/.default",
        ),
        (
            "gcc_high",
            "graph",
            "https://graph.microsoft.us",
            "https://login.microsoftonline.us",
            "https://graph.microsoft.us/.default",
        ),
        (
            "gcc_high",
            "legacy",
            "https://api-gov.security.microsoft.us",
            "https://login.microsoftonline.us",
            "https://api-gov.security.microsoft.us/.default",
        ),
        (
            "dod",
            "graph",
            "https://dod-graph.microsoft.us",
            "https://login.microsoftonline.us",
            "https://dod-graph.microsoft.us/.default",
        ),
        (
            "dod",
            "legacy",
            "https://api-gov.security.microsoft.us",
            "https://login.microsoftonline.us",
            "https://api-gov.security.microsoft.us/.default",
        ),
        (
            "china",
            "graph",
            "https://microsoftgraph.chinacloudapi.cn",
            "https://login.partner.microsoftonline.cn",
            "https://microsoftgraph.chinacloudapi.cn/.default",
        ),
    ],
)
def test_every_host_and_scope_follows_the_cloud(
    cloud: str, api: str, origin: str, login: str, scope: str
) -> None:
    result = settings({"tenant_id": TENANT, "cloud": cloud, "api": api})
    assert (result.api_origin, result.login_origin, result.scope) == (origin, login, scope)
    assert result.authority == f"{login}/{TENANT}"
    assert result.allowed_hosts == frozenset({origin.removeprefix("https://")})


def test_mtp_is_another_name_of_legacy_and_values_are_case_insensitive() -> None:
    assert settings({"tenant_id": TENANT, "api": "MTP"}).api == "legacy"
    assert settings({"tenant_id": TENANT, "api": "Legacy", "cloud": "GCC_High"}).cloud.name == "gcc_high"


def test_region_picks_the_regional_legacy_host_and_keeps_the_audience() -> None:
    result = settings({"tenant_id": TENANT, "api": "legacy", "region": "EU"})
    assert result.region == "eu"
    assert result.api_origin == "https://eu.api.security.microsoft.com"
    assert result.scope == "https://api.security.microsoft.com/.default"
    assert result.allowed_hosts == frozenset({"eu.api.security.microsoft.com"})


def test_api_url_and_login_url_replace_the_cloud_hosts() -> None:
    result = settings(
        {"tenant_id": TENANT, "api_url": "https://127.0.0.1:8443/", "login_url": "https://Login.Example:9443"}
    )
    assert result.api_origin == "https://127.0.0.1:8443"
    assert result.login_origin == "https://login.example:9443"
    assert result.authority == f"https://login.example:9443/{TENANT}"
    assert result.allowed_hosts == frozenset({"127.0.0.1:8443"})
    # The scope still names the cloud's API: the emulator and gateways expect real audiences.
    assert result.scope == "https://graph.microsoft.com/.default"


@pytest.mark.parametrize(
    "host",
    [
        "http://127.0.0.1:8080",
        "http://localhost:8080",
        "http://[::1]:8080",
        # The transport always allowed it; the settings now agree (one rule: common/hosts.py).
        "http://ip6-localhost:8080",
    ],
)
def test_plain_http_api_url_is_accepted_to_loopback(host: str) -> None:
    assert settings({"tenant_id": TENANT, "api_url": host}).api_origin == host


def test_timeout_sets_read_and_caps_connect() -> None:
    assert settings({"tenant_id": TENANT, "timeout": "30"}).timeouts == (10.0, 30.0)
    assert settings({"tenant_id": TENANT, "timeout": 4}).timeouts == (4.0, 4.0)


# Prefixed and empty keys.
def test_form_prefixed_keys_are_read() -> None:
    result = settings(
        {
            "extra__mtp__tenant_id": TENANT,
            "extra__mtp__api": "legacy",
            "extra__mtp__cloud": "gcc",
            "extra__mtp__proxy": "http://proxy.internal:3128",
            "extra__mtp__ca_bundle": "/etc/ssl/corp.pem",
            "extra__mtp__timeout": "45",
        }
    )
    assert (result.tenant_id, result.api, result.cloud.name) == (TENANT, "legacy", "gcc")
    assert result.proxy == "http://proxy.internal:3128"
    assert result.ca_bundle == "/etc/ssl/corp.pem"
    assert result.timeouts == (10.0, 45.0)


def test_empty_strings_are_unset_and_same_values_twice_are_fine() -> None:
    result = settings(
        {
            "tenant_id": TENANT,
            "extra__mtp__tenant_id": TENANT,
            "api": "",
            "extra__mtp__cloud": "  ",
            "region": "",
            "certificate": "",
            "proxy": "",
            "timeout": "",
        }
    )
    assert (result.api, result.cloud.name, result.region, result.proxy, result.timeout) == (
        "graph",
        "global",
        None,
        None,
        None,
    )


def test_unknown_extras_are_ignored_and_not_kept() -> None:
    result = settings(
        {"tenant_id": TENANT, "verify": False, "scope": "https://evil/.default", "headers": {"x": 1}}
    )
    assert not hasattr(result, "verify")
    assert "evil" not in repr(result)
    assert result.scope == "https://graph.microsoft.com/.default"


# Auth types.
def test_certificate_settings() -> None:
    result = settings(
        {
            "tenant_id": TENANT,
            "auth_type": "certificate",
            "certificate_path": "/secrets/app.pem",
            "certificate_thumbprint": "aa:bb:cc:dd:ee:ff:00:11:22:33:44:55:66:77:88:99:aa:bb:cc:dd",
            "certificate_password": " pass phrase ",
        },
        password=None,
    )
    assert result.certificate_thumbprint == "AABBCCDDEEFF00112233445566778899AABBCCDD"
    assert result.certificate_password == " pass phrase ", "passwords are kept as typed"
    assert result.secrets() == [" pass phrase "]


def test_user_password_settings_with_and_without_a_client_secret() -> None:
    public = settings(
        {"tenant_id": TENANT, "auth_type": "user_password", "username": "a@b.com", "user_password": "pw pw"},
        password=None,
    )
    assert (public.username, public.user_password, public.client_secret) == ("a@b.com", "pw pw", None)
    confidential = settings(
        {"tenant_id": TENANT, "auth_type": "user_password", "username": "a@b.com", "user_password": "pw"}
    )
    assert confidential.client_secret == SECRET


def test_managed_identity_needs_no_client_or_tenant() -> None:
    system = settings({"auth_type": "managed_identity"}, login=None, password=None)
    assert (system.client_id, system.tenant_id, system.managed_identity_client_id) == (None, None, None)
    user = settings(
        {"auth_type": "managed_identity", "managed_identity_client_id": CLIENT, "api": "legacy"},
        login="",
        password="",
    )
    assert user.managed_identity_client_id == CLIENT
    assert user.resource == "https://api.security.microsoft.com"


def test_workload_identity_reads_the_aks_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AZURE_FEDERATED_TOKEN_FILE", "/var/run/secrets/azure/tokens/azure-identity-token")
    monkeypatch.setenv("AZURE_CLIENT_ID", CLIENT)
    monkeypatch.setenv("AZURE_TENANT_ID", TENANT)
    result = settings({"auth_type": "workload_identity"}, login=None, password=None)
    assert result.federated_token_file == "/var/run/secrets/azure/tokens/azure-identity-token"
    assert (result.client_id, result.tenant_id) == (CLIENT, TENANT)
    explicit = settings(
        {
            "auth_type": "workload_identity",
            "federated_token_file": "/tok",
            "tenant_id": "contoso.onmicrosoft.com",
        },
        login="other",
        password=None,
    )
    assert (explicit.federated_token_file, explicit.client_id, explicit.tenant_id) == (
        "/tok",
        "other",
        "contoso.onmicrosoft.com",
    )


# Secrets.
def test_no_secret_in_repr_and_secrets_lists_them() -> None:
    result = settings(
        {
            "tenant_id": TENANT,
            "auth_type": "user_password",
            "username": "analyst@contoso.com",
            "user_password": "hunter2-password",
            "proxy": "http://proxyuser:proxy-pass-123@proxy.internal:3128",
        }
    )
    text = repr(result) + str(result)
    for secret in (SECRET, "hunter2-password", "proxy-pass-123"):
        assert secret not in text
    assert "analyst@contoso.com" in text, "non-secret fields stay visible for debugging"
    assert sorted(result.secrets()) == sorted([SECRET, "hunter2-password", "proxy-pass-123"])
    cert = settings({"tenant_id": TENANT, "auth_type": "certificate", "certificate": PEM}, password=None)
    assert "MIIEvQ" not in repr(cert)
    assert cert.secrets() == [PEM.strip()]


def test_settings_are_frozen_and_keyword_only() -> None:
    result = settings({"tenant_id": TENANT})
    with pytest.raises(AttributeError):
        result.tenant_id = "other"  # type: ignore[misc]
    with pytest.raises(TypeError):
        ConnectionSettings("mtp_test")  # type: ignore[call-arg]


# Every validation error names the field and the fix.
@pytest.mark.parametrize(
    ("extra", "kwargs", "expected"),
    [
        pytest.param({}, {}, ["tenant_id is empty", "directory (tenant) id"], id="no-tenant"),
        pytest.param(
            {"tenant_id": TENANT},
            {"login": None},
            ["login (Client ID) is empty", "Application (client) ID"],
            id="no-login",
        ),
        pytest.param(
            {"tenant_id": TENANT},
            {"password": ""},
            ["password (Client secret) is empty", "VALUE (not its secret ID)"],
            id="no-secret",
        ),
        pytest.param(
            {"tenant_id": TENANT, "auth_type": "kerberos"},
            {},
            [
                "auth_type is 'kerberos'",
                "client_secret, certificate, user_password, managed_identity, workload_identity",
            ],
            id="unknown-auth-type",
        ),
        pytest.param(
            {"tenant_id": TENANT, "api": "mde"}, {}, ["api is 'mde'", "graph, legacy, mtp"], id="unknown-api"
        ),
        pytest.param(
            {"tenant_id": TENANT, "cloud": "mooncake"},
            {},
            ["cloud is 'mooncake'", "global, gcc, gcc_high, dod, china"],
            id="unknown-cloud",
        ),
        pytest.param(
            {"tenant_id": TENANT, "region": "eu"},
            {},
            ["region is set, but api is 'graph'", "remove region"],
            id="region-with-graph",
        ),
        pytest.param(
            {"tenant_id": TENANT, "api": "legacy", "region": "jp"},
            {},
            ["region is 'jp'", "us, eu, uk, au"],
            id="unknown-region",
        ),
        pytest.param(
            {"tenant_id": TENANT, "api": "legacy", "cloud": "gcc_high", "region": "us"},
            {},
            ["only in the global cloud, not in 'gcc_high'"],
            id="region-outside-global",
        ),
        pytest.param(
            {"tenant_id": TENANT, "api": "legacy", "cloud": "china"},
            {},
            [
                "api is 'legacy', but the legacy MTP API is not offered in the 'china' cloud",
                "set api to 'graph'",
            ],
            id="legacy-in-china",
        ),
        pytest.param(
            {"tenant_id": TENANT, "api_url": "http://api.example.com"},
            {},
            ["api_url uses plain http to api.example.com", "127.0.0.1"],
            id="http-api-url",
        ),
        pytest.param(
            {"tenant_id": TENANT, "login_url": "http://127.0.0.1:8080"},
            {},
            ["login_url uses plain http", "msal accepts only https"],
            id="http-login-url",
        ),
        pytest.param(
            {"tenant_id": TENANT, "api_url": "https://gw.example.com/v1.0"},
            {},
            ["api_url 'https://gw.example.com/v1.0' has a path", "https://gw.example.com"],
            id="api-url-path",
        ),
        pytest.param(
            {"tenant_id": TENANT, "login_url": "ftp://login.example"},
            {},
            ["login_url 'ftp://login.example' is not an http(s) origin"],
            id="login-url-scheme",
        ),
        pytest.param(
            {"tenant_id": TENANT, "api_url": "https://host:99999"},
            {},
            ["api_url 'https://host:99999' is not a URL"],
            id="bad-port",
        ),
        pytest.param(
            {"tenant_id": TENANT, "timeout": "soon"}, {}, ["timeout is 'soon'", "seconds"], id="bad-timeout"
        ),
        pytest.param({"tenant_id": TENANT, "timeout": 0}, {}, ["timeout is 0"], id="zero-timeout"),
        pytest.param(
            {"tenant_id": TENANT, "proxy": "proxy.internal:3128"},
            {},
            ["proxy is not a proxy URL", "http://host:port"],
            id="bad-proxy",
        ),
        pytest.param(
            {"tenant_id": "contoso tenant"},
            {},
            ["tenant_id 'contoso tenant' contains spaces"],
            id="bad-tenant",
        ),
        pytest.param(
            {"tenant_id": TENANT, "extra__mtp__tenant_id": "other"},
            {},
            ["tenant_id is set twice with different values", "extra__mtp__tenant_id"],
            id="twice",
        ),
        pytest.param({"tenant_id": ["a"]}, {}, ["tenant_id must be text, not list"], id="not-text"),
        pytest.param(
            {"tenant_id": TENANT, "auth_type": "certificate"},
            {"password": None},
            ["certificate is empty and so is certificate_path", "paste the PEM"],
            id="cert-missing",
        ),
        pytest.param(
            {
                "tenant_id": TENANT,
                "auth_type": "certificate",
                "certificate": PEM,
                "certificate_path": "/a.pem",
            },
            {"password": None},
            ["certificate is given both as text and as certificate_path", "keep one"],
            id="cert-twice",
        ),
        pytest.param(
            {"tenant_id": TENANT, "auth_type": "certificate", "certificate": "MIIEvQ..."},
            {"password": None},
            ["certificate is not PEM text", "certificate_path"],
            id="cert-not-pem",
        ),
        pytest.param(
            {
                "tenant_id": TENANT,
                "auth_type": "certificate",
                "certificate": PEM,
                "certificate_thumbprint": "abc",
            },
            {"password": None},
            ["certificate_thumbprint is not a SHA-1 thumbprint (40 hex digits)"],
            id="bad-thumbprint",
        ),
        pytest.param(
            {"tenant_id": TENANT, "auth_type": "certificate", "certificate": PEM},
            {},
            [
                "password (Client secret) is set, but auth_type is 'certificate'",
                "set auth_type to 'client_secret'",
            ],
            id="secret-with-cert",
        ),
        pytest.param(
            {"tenant_id": TENANT, "certificate_path": "/a.pem"},
            {},
            ["certificate_path is set, but auth_type is 'client_secret'", "set auth_type to 'certificate'"],
            id="cert-with-secret",
        ),
        pytest.param(
            {"tenant_id": TENANT, "auth_type": "user_password", "username": "a@b.com"},
            {"password": None},
            ["user_password is empty", "username and user_password"],
            id="no-user-password",
        ),
        pytest.param(
            {"tenant_id": TENANT, "auth_type": "user_password", "user_password": "x"},
            {"password": None},
            ["username is empty"],
            id="no-username",
        ),
        pytest.param(
            {"auth_type": "managed_identity"},
            {"password": None},
            ["login (Client ID) is set, but managed_identity does not use it", "managed_identity_client_id"],
            id="mi-with-login",
        ),
        pytest.param(
            {"auth_type": "managed_identity"},
            {"login": None},
            ["password (Client secret) is set, but auth_type is 'managed_identity'"],
            id="mi-with-secret",
        ),
        pytest.param(
            {"tenant_id": TENANT, "managed_identity_client_id": CLIENT},
            {},
            ["managed_identity_client_id is set, but auth_type is 'client_secret'"],
            id="mi-id-stray",
        ),
        pytest.param(
            {"tenant_id": TENANT, "auth_type": "workload_identity"},
            {"password": None},
            ["federated_token_file is empty and AZURE_FEDERATED_TOKEN_FILE is not set"],
            id="no-token-file",
        ),
    ],
)
def test_validation_messages_name_the_field_and_the_fix(
    extra: dict[str, Any], kwargs: dict[str, Any], expected: list[str]
) -> None:
    message = error_of(extra, **kwargs)
    for part in expected:
        assert part in message, f"{part!r} not in {message!r}"


def test_errors_never_echo_a_secret() -> None:
    message = error_of({"tenant_id": TENANT, "proxy": "proxy-user:proxy-secret-9@proxy:3128"})
    assert "proxy-secret-9" not in message
    message = error_of(
        {"tenant_id": TENANT, "extra__mtp__user_password": "pw-one", "user_password": "pw-two"}, password=None
    )
    assert "pw-one" not in message
    assert "pw-two" not in message


def test_config_error_is_a_value_error_and_an_mtp_error() -> None:
    from airflow_provider_mtp.errors import MTPError

    with pytest.raises(MTPConfigError) as caught:
        settings({})
    assert isinstance(caught.value, ValueError)
    assert isinstance(caught.value, MTPError)


# Issue 8, bad input: a timeout out of range, extras that are not a JSON object, URLs with a password.
@pytest.mark.parametrize(
    "value",
    [1e12, "1e12", 3600.5, -5, 0.0, "nan", float("inf"), "-inf", True, [30], {"read": 30}],
    ids=repr,
)
def test_timeout_outside_0_to_3600_seconds_names_the_range(value: Any) -> None:
    message = error_of({"tenant_id": TENANT, "timeout": value})
    assert "timeout is " in message, message
    assert "0 < timeout <= 3600" in message, message
    assert "give the read timeout in seconds" in message, message


def test_timeout_of_exactly_an_hour_is_accepted() -> None:
    assert settings({"tenant_id": TENANT, "timeout": 3600}).timeouts == (10.0, 3600.0)
    assert settings({"tenant_id": TENANT, "timeout": "0.5"}).timeouts == (0.5, 0.5)


@pytest.mark.parametrize("name", ["api_url", "login_url"])
def test_url_with_user_and_password_is_refused_with_the_password_masked(name: str) -> None:
    message = error_of({"tenant_id": TENANT, name: "https://gw-user:Gw-Pa55@word!@gw.example.com:8443"})
    assert f"{name} 'https://***@gw.example.com:8443' has a user part" in message, message
    assert "give only the origin, e.g. https://gw.example.com:8443" in message, message
    for secret in ("Gw-Pa55", "word!", "gw-user"):
        assert secret not in message, message


@pytest.mark.parametrize(
    "value",
    ["https://u:Tok-99@host:99999", "ftp://u:Tok-99@login.example", "https://u:Tok-99@gw.example.com/v1.0"],
)
def test_every_url_message_masks_the_user_part(value: str) -> None:
    message = error_of({"tenant_id": TENANT, "api_url": value})
    assert "Tok-99" not in message, message
    assert "***@" in message, message


def test_extra_that_is_not_json_names_where_it_breaks_and_never_quotes_it() -> None:
    from airflow_provider_mtp.settings import parse_extra

    text = '{\n  "tenant_id": "t",\n  "user_password": "Hunter-2-secret",\n  "api": graph\n}'
    with pytest.raises(MTPConfigError) as caught:
        parse_extra("mtp_test", text)
    message = str(caught.value)
    assert message.startswith("Connection 'mtp_test': extra is not a JSON object"), message
    assert "line 4, column 10" in message, message
    assert "Fix: edit the connection's Extra so it holds one JSON object" in message, message
    assert "Hunter-2-secret" not in message
    assert '"api": graph' not in message


@pytest.mark.parametrize(
    ("text", "kind"), [("[1, 2]", "list"), ('"tenant"', "string"), ("null", "null"), ("3", "number")]
)
def test_extra_that_is_json_but_not_an_object_is_refused(text: str, kind: str) -> None:
    from airflow_provider_mtp.settings import parse_extra

    with pytest.raises(MTPConfigError, match=f"extra is not a JSON object but a JSON {kind}. Fix: "):
        parse_extra("mtp_test", text)


def test_extra_object_empty_text_and_mappings_are_read() -> None:
    from airflow_provider_mtp.settings import parse_extra

    assert parse_extra("mtp_test", '{"tenant_id": "t"}') == {"tenant_id": "t"}
    assert parse_extra("mtp_test", "  ") == {}
    assert parse_extra("mtp_test", None) == {}
    assert parse_extra("mtp_test", {"api": "legacy"}) == {"api": "legacy"}


@pytest.mark.parametrize(
    "proxy", ["http://u:Pw-Proxy-1@proxy:99999", "http://u:Pw-Proxy-1@[::1", "u:Pw-Proxy-1@proxy:3128"]
)
def test_a_proxy_that_is_not_a_url_is_refused_without_echoing_it(proxy: str) -> None:
    message = error_of({"tenant_id": TENANT, "proxy": proxy})
    assert "proxy is not a proxy URL" in message, message
    assert "Pw-Proxy-1" not in message, message


def test_a_proxy_with_a_user_and_password_is_accepted_and_its_password_masked() -> None:
    result = settings({"tenant_id": TENANT, "proxy": "http://u:Pw-Proxy-1@proxy.corp:3128"})
    assert result.proxy == "http://u:Pw-Proxy-1@proxy.corp:3128"
    assert "Pw-Proxy-1" in result.secrets()
    assert "Pw-Proxy-1" not in repr(result)
