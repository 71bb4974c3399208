"""Entra ID's and msal's failures as errors that name the field to fix, never a secret.

A refused credential becomes an :class:`~airflow_provider_mtp.errors.MTPAuthError` with the
AADSTS code and the connection field it points at; a token request that got no answer names the
certificate, proxy or host; a bad connection value raises
:class:`~airflow_provider_mtp.errors.MTPConfigError`. Every text from a service is scrubbed of the
connection's secrets first.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import requests

from airflow_provider_mtp.errors import MTPAuthError, MTPConfigError
from airflow_provider_mtp.redact import mask_url, mask_urls
from airflow_provider_mtp.settings import ConnectionSettings

_AADSTS = re.compile(r"AADSTS(\d+)")
# Entra's error_description inside a quoted JSON body: "AADSTS90002: Tenant '...' not found. ..."
_ENTRA_DESCRIPTION = re.compile(r"AADSTS(\d+):[^\"]*")


@dataclass(frozen=True)
class _Fix:
    field: str
    hint: str


_FIXES: Mapping[int, _Fix] = {
    7000215: _Fix(
        "password (Client secret)",
        "Entra ID rejected the client secret: paste the secret's VALUE (shown once, when it was created), "
        "not its Secret ID, and check that it has not expired",
    ),
    7000222: _Fix("password (Client secret)", "the client secret has expired: create a new one"),
    7000218: _Fix(
        "password (Client secret)",
        "the app is a confidential client: set its client secret, or allow public client flows on the app",
    ),
    700025: _Fix("password (Client secret)", "the app is a public client: remove the client secret"),
    700016: _Fix(
        "login (Client ID) or tenant_id",
        "no app with this client id is registered in this tenant: check the Application (client) ID, and "
        "that tenant_id (and cloud) is where the app is registered",
    ),
    7000112: _Fix("login (Client ID)", "the application is disabled"),
    90002: _Fix("tenant_id", "the tenant was not found: check the directory id or domain, and the cloud"),
    900023: _Fix("tenant_id", "this is not a tenant id or domain: use the Directory (tenant) ID, a GUID"),
    70011: _Fix("api or cloud", "the scope is not valid for this API and cloud: check api and cloud"),
    500011: _Fix(
        "api or cloud",
        "the API is not available in this tenant: check api and cloud (the legacy MTP API needs Microsoft "
        "Defender XDR in the tenant)",
    ),
    50126: _Fix("username or user_password", "the user name or password is wrong"),
    50034: _Fix("username", "the user does not exist in this tenant"),
    50053: _Fix("username", "the account is locked"),
    50055: _Fix("user_password", "the password has expired: change it"),
    50076: _Fix(
        "auth_type", "the user must pass MFA, which the password grant cannot: use an app credential"
    ),
    50079: _Fix(
        "auth_type", "the user must register for MFA, which the password grant cannot: use an app credential"
    ),
    65001: _Fix("the app registration", "grant (admin) consent for the delegated API permissions"),
    700027: _Fix(
        "certificate, certificate_path or certificate_thumbprint",
        "the client assertion is not signed by a certificate registered on the app: upload this certificate's "
        "public part to the app registration, or use the key of a registered one",
    ),
    700021: _Fix("login (Client ID)", "the client assertion names another app"),
    70021: _Fix(
        "federated_token_file, or the app's federated credential",
        "no federated identity credential on the app matches the token",
    ),
    700211: _Fix(
        "federated_token_file, or the app's federated credential", "the token's issuer is not trusted"
    ),
    700212: _Fix(
        "federated_token_file, or the app's federated credential", "the token's audience is not trusted"
    ),
    700213: _Fix(
        "federated_token_file, or the app's federated credential",
        "the token's subject (service account) is not trusted",
    ),
    53003: _Fix("(none: a Conditional Access policy)", "a Conditional Access policy blocked the sign-in"),
}

# When Entra gives no known AADSTS code, the auth type decides which fields to check.
_DEFAULT_FIELD = {
    "client_secret": "login (Client ID), password (Client secret) and tenant_id",
    "certificate": "login (Client ID), tenant_id and the certificate",
    "user_password": "username and user_password",
    "managed_identity": "managed_identity_client_id, and IDENTITY_ENDPOINT/IDENTITY_HEADER or IMDS on this host",
    "workload_identity": "login (Client ID), tenant_id and federated_token_file",
}


def auth_error(settings: ConnectionSettings, result: Mapping[str, Any]) -> MTPAuthError:
    """The error for msal's failure dict: the AADSTS code, the field to fix, never a secret."""
    description = _scrub(settings, str(result.get("error_description") or ""))
    codes = [int(code) for code in result.get("error_codes") or []] or [
        int(code) for code in _AADSTS.findall(description)
    ]
    number = codes[0] if codes else None
    error = str(result.get("error") or "unknown_error")
    fix = _fix_for(settings, number, error)
    code = f"AADSTS{number}" if number is not None else error
    message = (
        f"Connection {settings.conn_id!r} could not get a token ({settings.auth_type}, {settings.scope}): "
        f"{code} {error}. Fix {fix.field}: {fix.hint}."
    )
    if description:
        message += f" Entra ID said: {_first_sentences(description)}"
    return MTPAuthError(
        message,
        code=code,
        service_message=description or None,
        request_id=result.get("correlation_id") or result.get("trace_id"),
    )


def _fix_for(settings: ConnectionSettings, number: int | None, error: str) -> _Fix:
    auth_type = settings.auth_type
    if auth_type == "workload_identity" and number in (700024, 700027, 50027):
        # The assertion is the federated token itself, not something signed with a certificate.
        return _Fix(
            "federated_token_file",
            "Entra ID refused the federated token (expired, not signed by the trusted issuer, or not a token): "
            "check that the file is the projected service account token and is being refreshed",
        )
    if number == 700024:
        return _Fix(
            "(this host's clock)", "the client assertion is outside its validity window: sync the clock"
        )
    if number is not None and number in _FIXES:
        return _FIXES[number]
    if auth_type == "managed_identity":
        return _Fix(
            _DEFAULT_FIELD[auth_type],
            "the managed identity endpoint refused: check that the identity is assigned to this resource",
        )
    if error in ("invalid_scope", "invalid_resource"):
        return _FIXES[70011]
    if error == "unauthorized_client":
        return _FIXES[700016]
    return _Fix(_DEFAULT_FIELD[auth_type], "Entra ID refused the credentials")


def network_error(settings: ConnectionSettings, exc: requests.RequestException) -> MTPAuthError:
    """A token request that got no answer: the certificate, the proxy or the host is wrong."""
    if isinstance(exc, requests.exceptions.SSLError):
        fix = "ca_bundle: the login host's TLS certificate did not verify; set ca_bundle to the PEM of its CA"
    elif isinstance(exc, requests.exceptions.ProxyError):
        fix = "proxy: the proxy refused or could not be reached"
    else:
        fix = "login_url, cloud or proxy: the login host could not be reached"
    return MTPAuthError(
        f"Connection {settings.conn_id!r} could not get a token ({settings.auth_type}) from "
        f"{_login_target(settings)}: {type(exc).__name__}. Fix {fix}. Detail: {_scrub(settings, str(exc))[:400]}"
    )


def discovery_error(settings: ConnectionSettings, exc: Exception) -> MTPAuthError:
    """msal raised instead of answering: usually the authority's OpenID configuration failed.

    msal replaces the discovery error (which quotes Entra's body, AADSTS code included) with a
    generic one (``Authority.__init__`` in msal/authority.py); the original is its ``__context__``.
    """
    text = _scrub(settings, str(exc))
    chained = " ".join(_scrub(settings, str(cause)) for cause in _causes(exc))
    said = _ENTRA_DESCRIPTION.search(chained)
    if said:
        fix = _fix_for(settings, int(said.group(1)), "")
        code = f"AADSTS{said.group(1)}"
        description = _first_sentences(said.group(0))
        return MTPAuthError(
            f"Connection {settings.conn_id!r} could not get a token ({settings.auth_type}, "
            f"{settings.authority}): {code}. Fix {fix.field}: {fix.hint}. Entra ID said: {description}",
            code=code,
            service_message=description,
        )
    fields = (
        _DEFAULT_FIELD["managed_identity"]
        if settings.auth_type == "managed_identity"
        else ("tenant_id, login_url or cloud")
    )
    return MTPAuthError(
        f"Connection {settings.conn_id!r} could not get a token ({settings.auth_type}) from "
        f"{_login_target(settings)}. Fix {fields}: msal said {text[:400]}"
    )


def _causes(exc: BaseException) -> list[BaseException]:
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in chain:
        chain.append(current)
        current = current.__cause__ or current.__context__
    return chain


def _login_target(settings: ConnectionSettings) -> str:
    if settings.auth_type == "managed_identity":
        return mask_url(os.environ.get("IDENTITY_ENDPOINT") or "the managed identity endpoint (IMDS)")
    return mask_url(settings.authority)


def _config_error(settings: ConnectionSettings, field_name: str, problem: str, fix: str) -> MTPConfigError:
    return MTPConfigError(f"Connection {settings.conn_id!r}: {field_name} {problem}. Fix: {fix}.")


def _scrub(settings: ConnectionSettings, text: str) -> str:
    """``text`` with every connection secret replaced, in case a service echoes one."""
    for secret in settings.secrets():
        text = text.replace(secret, "***")
    # A library's message may quote a URL with its user part (a proxy's, an endpoint's).
    return mask_urls(text)


def _first_sentences(description: str) -> str:
    # Entra appends trace and correlation ids and a timestamp; the request id carries them.
    return description.split(" Trace ID:")[0].strip()[:500]
