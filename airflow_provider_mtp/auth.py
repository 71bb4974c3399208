"""Credentials to access tokens with msal, through one token cache per process.

A process keeps one msal application per (authority, client, credential, cloud, auth type, CA
bundle, proxy) in a registry guarded by a lock. Every hook, thread and trigger of the process that
uses the same connection settings shares that application and its token cache, so a triggerer
running 1,000 sensors asks Entra ID once per token lifetime, not 1,000 times. Async code calls
:meth:`MsalTokenSource.token` through ``asyncio.to_thread``.

msal serves a cached token while it has more than 300 s left (``expires_in < 5*60`` in
``ClientApplication._acquire_token_silent_from_cache_and_possibly_refresh_it`` and in
``ManagedIdentityClient.acquire_token_for_client``), so a token is renewed about five minutes
before it expires with nothing extra here. A token the API refuses with 401 is dropped with
:meth:`MsalTokenSource.invalidate` and the next call fetches a new one. msal's requests go through
:class:`~airflow_provider_mtp.entra_http.EntraHttpClient`, which retries Entra ID's transient
failures and raises instead of letting msal's throttle cache replay one to every hook.

Secrets never reach a log line or an exception: applications are keyed by an HMAC of the
credential under a key made at process start, Entra's messages are scrubbed, and every token and
connection secret goes through Airflow's ``mask_secret``.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import re
import secrets
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msal
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs12

from airflow_provider_mtp import __version__
from airflow_provider_mtp.entra_http import EntraHttpClient, EntraUnavailable
from airflow_provider_mtp.errors import MTPAuthError, MTPConfigError
from airflow_provider_mtp.redact import mask_secrets, mask_url, mask_urls
from airflow_provider_mtp.settings import ConnectionSettings

log = logging.getLogger(__name__)

#: Scopes msal adds to user requests itself and refuses to be given (``_decorate_scope``).
_RESERVED_SCOPES = frozenset({"openid", "profile", "offline_access"})
_AADSTS = re.compile(r"AADSTS(\d+)")
# Entra's error_description inside a quoted JSON body: "AADSTS90002: Tenant '...' not found. ..."
_ENTRA_DESCRIPTION = re.compile(r"AADSTS(\d+):[^\"]*")
_PEM_PRIVATE_KEY = re.compile(
    rb"-----BEGIN ((?:RSA |EC |ENCRYPTED )?PRIVATE KEY)-----.+?-----END \1-----", re.DOTALL
)
# Keyed per process, so an application key never equals a plain hash of a secret.
_FINGERPRINT_KEY = secrets.token_bytes(32)

_registry: dict[tuple[str, ...], _SharedApp] = {}
_registry_lock = threading.Lock()


def get_token_source(settings: ConnectionSettings, session: requests.Session) -> MsalTokenSource:
    """The token source for a connection, backed by this process's shared msal application.

    No I/O happens here; the application is built on the first :meth:`MsalTokenSource.token`.

    :param settings: the validated connection.
    :param session: the hook's session. The first hook that needs an application lends it its
        session (msal's ``http_client``); later hooks with the same key reuse that application and
        session. That is safe because the key holds everything a session is configured from
        (``ca_bundle``, ``proxy``), except the timeout: token calls use the first hook's.
    """
    key = application_key(settings)
    with _registry_lock:
        shared = _registry.get(key)
        if shared is None:
            shared = _registry[key] = _SharedApp(session=session)
    return MsalTokenSource(shared=shared, settings=settings)


def clear_token_cache() -> None:
    """Forget every msal application and cached token of this process.

    For tests (each test starts with an empty cache) and for a process that must drop credentials;
    hooks keep working and build new applications on their next call.
    """
    with _registry_lock:
        _registry.clear()


def application_key(settings: ConnectionSettings) -> tuple[str, ...]:
    """What makes two connections share an msal application; secrets enter only as an HMAC."""
    return (
        settings.auth_type,
        settings.cloud.name,
        settings.authority if settings.auth_type != "managed_identity" else "",
        settings.client_id or "",
        _credential_fingerprint(settings),
        settings.ca_bundle or "",
        _fingerprint(settings.proxy or ""),
    )


class MsalTokenSource:
    """A hook's view of a shared msal application: tokens for its connection's API.

    Implements :class:`airflow_provider_mtp.api.base.TokenSource`.

    :param shared: the process-wide application for this connection's key.
    :param settings: the connection; decides the scope and names fields in errors.
    """

    def __init__(self, *, shared: _SharedApp, settings: ConnectionSettings) -> None:
        self._shared = shared
        self._settings = settings

    def token(self) -> str:
        """A valid access token, from msal's cache while it has more than 300 s left."""
        settings = self._settings
        result = self._shared.acquire(settings)
        if "access_token" not in result:
            raise auth_error(settings, result)
        token = str(result["access_token"])
        if result.get("token_source") == "cache":
            log.debug("served a token for %s from the cache (%s)", settings.scope, settings.auth_type)
        else:
            # Mask before the token can reach any log line (headers, reprs, tracebacks); user flows
            # also carry a refresh token and an id token, credentials as well.
            mask_secrets(
                [token, *(str(result[key]) for key in ("refresh_token", "id_token") if result.get(key))]
            )
            log.info(
                "acquired a token for %s (%s), expires in %s s",
                settings.scope,
                settings.auth_type,
                result.get("expires_in"),
            )
        return token

    def invalidate(self, token: str) -> None:
        """Drop ``token`` from msal's cache (after a 401), so the next :meth:`token` fetches anew."""
        if self._shared.evict(token):
            log.info("dropped a refused token for %s from the cache", self._settings.scope)


class _SharedApp:
    """One msal application and its token cache, shared by every hook with the same key.

    :param session: the session msal sends its requests through.
    """

    def __init__(self, *, session: requests.Session) -> None:
        self.session = session
        self.cache = msal.TokenCache()
        # One caller at a time talks to msal: concurrent first calls would each miss the cache
        # and each ask Entra for a token. A cache hit holds the lock for microseconds.
        self.lock = threading.Lock()
        self._client: Any = None
        # user_password: requested scope -> the permissions Entra granted for it (see _acquire_for_user).
        self._granted: dict[str, list[str]] = {}

    def acquire(self, settings: ConnectionSettings) -> dict[str, Any]:
        """msal's result dict (a token or an error); network and discovery failures raise."""
        with self.lock:
            try:
                if self._client is None:
                    self._client = self._build(settings)
                return self._acquire(settings)
            except MTPConfigError:
                raise
            except EntraUnavailable as exc:
                # Not a credential problem: say the service was down, not which field to fix.
                raise exc.error(
                    conn_id=settings.conn_id,
                    auth_type=settings.auth_type,
                    scrub=lambda text: _scrub(settings, text),
                ) from None
            except requests.RequestException as exc:
                raise network_error(settings, exc) from None
            except (ValueError, msal.exceptions.MsalError) as exc:
                raise discovery_error(settings, exc) from None

    def evict(self, token: str) -> bool:
        with self.lock:
            # Collect first: search() is a generator over the dict that remove_at() changes.
            matches = [
                entry
                for entry in self.cache.search(msal.TokenCache.CredentialType.ACCESS_TOKEN)
                if hmac.compare_digest(str(entry.get("secret", "")), token)
            ]
            for entry in matches:
                self.cache.remove_at(entry)
            return bool(matches)

    def _build(self, settings: ConnectionSettings) -> Any:
        mask_secrets(settings.secrets())
        if settings.auth_type == "managed_identity":
            identity: msal.ManagedIdentity = (
                msal.UserAssignedManagedIdentity(client_id=settings.managed_identity_client_id)
                if settings.managed_identity_client_id
                else msal.SystemAssignedManagedIdentity()
            )
            # The identity endpoint comes from IDENTITY_ENDPOINT/IDENTITY_HEADER (App Service) or IMDS;
            # the header is a credential for that endpoint.
            mask_secrets([os.environ.get("IDENTITY_HEADER", "")])
            return msal.ManagedIdentityClient(
                identity, http_client=_msal_http_client(settings, self.session), token_cache=self.cache
            )
        options: dict[str, Any] = {
            "authority": settings.authority,
            "http_client": _msal_http_client(settings, self.session),
            "token_cache": self.cache,
            "app_name": "airflow-provider-mtp",
            "app_version": __version__,
        }
        if settings.login_url:
            # A gateway or the emulator is no well-known authority; do not ask the global cloud about it.
            options["instance_discovery"] = False
        if settings.auth_type == "user_password" and not settings.client_secret:
            return msal.PublicClientApplication(settings.client_id, **options)
        return msal.ConfidentialClientApplication(
            settings.client_id, client_credential=client_credential(settings), **options
        )

    def _acquire(self, settings: ConnectionSettings) -> dict[str, Any]:
        if settings.auth_type == "managed_identity":
            result: dict[str, Any] = self._client.acquire_token_for_client(resource=settings.resource)
        elif settings.auth_type == "user_password":
            result = self._acquire_for_user(settings)
        else:
            result = self._client.acquire_token_for_client(scopes=[settings.scope])
        return result

    def _acquire_for_user(self, settings: ConnectionSettings) -> dict[str, Any]:
        """The cached account's token, refreshed if need be; the password grant only without one.

        msal's ``acquire_token_by_username_password`` never reads the cache, so the cache goes
        first. Entra answers ``<resource>/.default`` with the permissions it granted, and msal files
        the token under those: the cache lookup asks for them, or it would miss every time.
        """
        scope = settings.scope
        account = _account(self._client, settings.username or "")
        result: dict[str, Any] | None = None
        if account is not None:
            silent = self._client.acquire_token_silent(self._granted.get(scope, [scope]), account=account)
            result = dict(silent) if silent else None
        if result is None:
            result = dict(
                self._client.acquire_token_by_username_password(
                    settings.username, settings.user_password, scopes=[scope]
                )
            )
        # A reply from Entra (password or refresh token grant) says what it granted; a cache hit does not.
        if "access_token" in result and result.get("scope"):
            granted = [item for item in str(result["scope"]).split() if item not in _RESERVED_SCOPES]
            self._granted[scope] = granted or [scope]
        return result


def _account(client: msal.ClientApplication, username: str) -> dict[str, Any] | None:
    # get_accounts(username=...) logs a warning whenever it finds none, which is every first call.
    for account in client.get_accounts():
        if str(account.get("username", "")).lower() == username.lower():
            return dict(account)
    return None


def _msal_http_client(settings: ConnectionSettings, session: requests.Session) -> Any:
    # Service Fabric's managed identity needs the requests.Session itself (msal derives a
    # certificate-pinning session from it); that one path goes without retries.
    if settings.auth_type == "managed_identity" and os.environ.get("IDENTITY_SERVER_THUMBPRINT"):
        return session
    return EntraHttpClient(
        session=session,
        login_origin=settings.login_url,
        managed_identity=settings.auth_type == "managed_identity",
    )


# Credentials.
def client_credential(settings: ConnectionSettings) -> str | dict[str, Any]:
    """msal's ``client_credential`` for a confidential client of this auth type."""
    if settings.auth_type == "certificate":
        return certificate_credential(settings)
    if settings.auth_type == "workload_identity":
        return {"client_assertion": FederatedTokenFile(settings=settings)}
    return settings.client_secret or ""


class FederatedTokenFile:
    """msal's ``client_assertion`` callable: the federated token, read fresh on every token request.

    The kubelet rotates the projected token in place, so it is never kept.

    :param settings: the connection; names the file and the connection in errors.
    """

    def __init__(self, *, settings: ConnectionSettings) -> None:
        self._settings = settings

    def __call__(self) -> str:
        path = self._settings.federated_token_file or ""
        try:
            token = Path(path).read_text().strip()
        except OSError as exc:
            raise _config_error(
                self._settings,
                "federated_token_file",
                f"{path!r} cannot be read ({exc.strerror})",
                "point it at the projected service account token (AZURE_FEDERATED_TOKEN_FILE on AKS)",
            ) from None
        if not token:
            raise _config_error(
                self._settings, "federated_token_file", f"{path!r} is empty", "check the token projection"
            )
        # It is a bearer credential for Entra ID, like the tokens it buys.
        mask_secrets([token])
        return token


@dataclass(frozen=True)
class _KeyAndCertificate:
    key: rsa.RSAPrivateKey
    certificate: x509.Certificate | None


def certificate_credential(settings: ConnectionSettings) -> dict[str, Any]:
    """msal's certificate ``client_credential``: the decrypted key and, when present, the certificate.

    With the certificate, msal computes the SHA-256 thumbprint itself, signs PS256 and sends
    ``x5c`` (msal 1.35+, ``ClientApplication._build_client``). Without it the SHA-1
    ``certificate_thumbprint`` is used (RS256, ``x5t``).
    """
    loaded = _load_key_and_certificate(settings)
    credential: dict[str, Any] = {"private_key": loaded.key}
    if loaded.certificate is None:
        if not settings.certificate_thumbprint:
            raise _config_error(
                settings,
                _certificate_field(settings),
                "holds a private key but no certificate, and certificate_thumbprint is empty",
                "append the certificate (its BEGIN CERTIFICATE block) or set certificate_thumbprint",
            )
        credential["thumbprint"] = settings.certificate_thumbprint
        return credential
    sha1 = loaded.certificate.fingerprint(hashes.SHA1()).hex().upper()
    if settings.certificate_thumbprint and settings.certificate_thumbprint != sha1:
        raise _config_error(
            settings,
            "certificate_thumbprint",
            f"is {settings.certificate_thumbprint}, but the certificate's SHA-1 thumbprint is {sha1}",
            "correct it or leave it empty to use the certificate's",
        )
    credential["public_certificate"] = loaded.certificate.public_bytes(serialization.Encoding.PEM).decode()
    return credential


def _certificate_field(settings: ConnectionSettings) -> str:
    return "certificate" if settings.certificate else "certificate_path"


def _load_key_and_certificate(settings: ConnectionSettings) -> _KeyAndCertificate:
    name = _certificate_field(settings)
    if settings.certificate:
        data = settings.certificate.encode()
    else:
        path = settings.certificate_path or ""
        try:
            data = Path(path).read_bytes()
        except OSError as exc:
            raise _config_error(
                settings,
                name,
                f"{path!r} cannot be read ({exc.strerror})",
                "check the path and its permissions",
            ) from None
    password = settings.certificate_password.encode() if settings.certificate_password else None
    if b"-----BEGIN" not in data:
        return _load_pkcs12(settings, name, data, password)
    return _load_pem(settings, name, data, password)


def _load_pem(
    settings: ConnectionSettings, name: str, data: bytes, password: bytes | None
) -> _KeyAndCertificate:
    match = _PEM_PRIVATE_KEY.search(data)
    if match is None:
        raise _config_error(
            settings,
            name,
            "has no private key (no BEGIN PRIVATE KEY block)",
            "use the PEM with the private key; the certificate alone cannot sign",
        )
    block = match.group(0)
    mask_secrets([block.decode(errors="replace")])
    encrypted = b"ENCRYPTED" in block
    try:
        key = serialization.load_pem_private_key(block, password if encrypted else None)
    except TypeError:
        raise _config_error(
            settings,
            "certificate_password",
            "is empty, but the private key is encrypted",
            "set certificate_password",
        ) from None
    except ValueError:
        if encrypted:
            raise _config_error(
                settings, "certificate_password", "does not decrypt the private key", "set the key's password"
            ) from None
        raise _config_error(
            settings, name, "holds a private key that cannot be parsed", "export it again"
        ) from None
    certificates = []
    if b"BEGIN CERTIFICATE" in data:
        try:
            certificates = x509.load_pem_x509_certificates(data)
        except ValueError:
            raise _config_error(
                settings, name, "holds a certificate that cannot be parsed", "export it again"
            ) from None
    return _pair(settings, name, key, certificates)


def _load_pkcs12(
    settings: ConnectionSettings, name: str, data: bytes, password: bytes | None
) -> _KeyAndCertificate:
    try:
        key, certificate, extra = pkcs12.load_key_and_certificates(data, password)
    except ValueError:
        raise _config_error(
            settings,
            name,
            "is neither PEM nor a PKCS#12 file that certificate_password opens",
            "give a PEM with the private key, or a .pfx with its password in certificate_password",
        ) from None
    if key is None:
        raise _config_error(
            settings, name, "has no private key", "export the certificate with its private key"
        )
    return _pair(settings, name, key, [cert for cert in (certificate, *extra) if cert is not None])


def _pair(
    settings: ConnectionSettings, name: str, key: Any, certificates: Iterable[x509.Certificate]
) -> _KeyAndCertificate:
    """The key with the certificate that holds its public key (a chain may hold others)."""
    if not isinstance(key, rsa.RSAPrivateKey):
        raise _config_error(
            settings, name, "holds a non-RSA key", "Entra ID certificate credentials need an RSA key"
        )
    public = _public_der(key.public_key())
    certificates = list(certificates)
    for certificate in certificates:
        if _public_der(certificate.public_key()) == public:
            return _KeyAndCertificate(key=key, certificate=certificate)
    if certificates:
        raise _config_error(
            settings,
            name,
            "holds a certificate that does not belong to its private key",
            "pair the right key and certificate",
        )
    return _KeyAndCertificate(key=key, certificate=None)


def _public_der(public_key: Any) -> bytes:
    der: bytes = public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return der


# Fingerprints.
def _fingerprint(*parts: str) -> str:
    message = "\0".join(parts).encode()
    return hmac.new(_FINGERPRINT_KEY, message, hashlib.sha256).hexdigest()


def _credential_fingerprint(settings: ConnectionSettings) -> str:
    auth_type = settings.auth_type
    if auth_type == "certificate":
        # A rotated file at the same path must not keep serving the old key.
        return _fingerprint(
            settings.certificate or "",
            settings.certificate_path or "",
            _file_version(settings.certificate_path),
            settings.certificate_thumbprint or "",
            settings.certificate_password or "",
        )
    if auth_type == "user_password":
        return _fingerprint(
            (settings.username or "").lower(), settings.user_password or "", settings.client_secret or ""
        )
    if auth_type == "managed_identity":
        return _fingerprint(
            settings.managed_identity_client_id or "",
            os.environ.get("IDENTITY_ENDPOINT", ""),
            os.environ.get("IDENTITY_HEADER", ""),
        )
    if auth_type == "workload_identity":
        # The file is read on every token request, so its path is the credential.
        return _fingerprint(settings.federated_token_file or "")
    return _fingerprint(settings.client_secret or "")


def _file_version(path: str | None) -> str:
    if not path:
        return ""
    try:
        status = os.stat(path)
    except OSError:
        return "missing"
    return f"{status.st_mtime_ns}:{status.st_size}"


# Errors.
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
