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

msal's client credential for each auth type is built in :mod:`airflow_provider_mtp.auth_credentials`
and Entra ID's failures are worded in :mod:`airflow_provider_mtp.auth_errors`; their public names
are importable from here as before.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import secrets
import threading
from typing import Any

import msal
import requests

from airflow_provider_mtp import __version__
from airflow_provider_mtp.auth_credentials import FederatedTokenFile as FederatedTokenFile
from airflow_provider_mtp.auth_credentials import certificate_credential as certificate_credential
from airflow_provider_mtp.auth_credentials import client_credential
from airflow_provider_mtp.auth_errors import _scrub, auth_error, discovery_error, network_error
from airflow_provider_mtp.entra_http import EntraHttpClient, EntraUnavailable
from airflow_provider_mtp.errors import MTPConfigError
from airflow_provider_mtp.redact import mask_secrets
from airflow_provider_mtp.settings import ConnectionSettings

log = logging.getLogger(__name__)

#: Scopes msal adds to user requests itself and refuses to be given (``_decorate_scope``).
_RESERVED_SCOPES = frozenset({"openid", "profile", "offline_access"})
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
