"""The ``mtp`` connection as validated, typed settings: one place that reads extras.

:class:`ConnectionSettings` is built from plain values (no Airflow import), so the client can be
tested without a DAG. Every mistake is found here, before any call, and the message names the
connection, the field, what is wrong and how to fix it. Extras are allow-listed: unknown keys are
ignored and never forwarded to a client.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from airflow_provider_mtp.clouds import CLOUDS, MTP_REGIONS, Cloud, get_cloud
from airflow_provider_mtp.common.hosts import is_loopback
from airflow_provider_mtp.errors import MTPConfigError
from airflow_provider_mtp.redact import mask_url

#: Valid ``auth_type`` values; the first is the default.
AUTH_TYPES = ("client_secret", "certificate", "user_password", "managed_identity", "workload_identity")
#: Valid ``api`` values; ``mtp`` is accepted as another name of ``legacy``.
APIS = ("graph", "legacy")
_API_ALIASES = {"graph": "graph", "legacy": "legacy", "mtp": "legacy"}

#: Proxy URL schemes refused: the async client (aiohttp) cannot use a SOCKS proxy.
SOCKS_SCHEMES = ("socks4", "socks4a", "socks5", "socks5h")
#: Prefix of the same keys as Airflow's connection form stores them.
FORM_PREFIX = "extra__mtp__"

#: Read timeout when the connection sets none: a hunt may take up to 180 s on the service side.
DEFAULT_READ_TIMEOUT_S = 200.0
#: Shortest ``comment_marker_key`` accepted: a short key can be guessed offline from one marker.
MIN_COMMENT_MARKER_KEY_CHARS = 16
#: Connect timeout ceiling: a host that does not answer in 10 s is not going to.
MAX_CONNECT_TIMEOUT_S = 10.0
#: The longest read timeout a connection may set: a hunt ends within 180 s on the service side.
MAX_TIMEOUT_S = 3600.0

# Credential fields each auth type reads; any other credential field set is a mistake worth naming.
_CREDENTIAL_FIELDS: dict[str, tuple[str, ...]] = {
    "client_secret": ("password",),
    "certificate": ("certificate", "certificate_path", "certificate_thumbprint", "certificate_password"),
    # A confidential app may use the password grant too; then it also sends its client secret.
    "user_password": ("username", "user_password", "password"),
    "managed_identity": ("managed_identity_client_id",),
    "workload_identity": ("federated_token_file",),
}
_ALL_CREDENTIAL_FIELDS = tuple(dict.fromkeys(name for names in _CREDENTIAL_FIELDS.values() for name in names))
_FIELD_LABELS = {"login": "login (Client ID)", "password": "password (Client secret)"}
# Passwords are used as typed: a space may be part of them.
_VERBATIM_FIELDS = frozenset({"user_password", "certificate_password"})
_THUMBPRINT = re.compile(r"^[0-9a-fA-F]{40}$")


@dataclass(frozen=True, kw_only=True)
class ConnectionSettings:
    """One ``mtp`` connection, validated. Build it with :meth:`from_connection`.

    :param conn_id: the Airflow connection id, for messages.
    :param client_id: the connection's login: the app's client (application) id.
    :param client_secret: the connection's password: the app's client secret.
    :param tenant_id: directory (tenant) id or verified domain.
    :param auth_type: one of :data:`AUTH_TYPES`.
    :param api: ``graph`` or ``legacy``.
    :param cloud: the Microsoft cloud every host and scope comes from.
    :param region: legacy MTP regional host (``us``, ``eu``, ``uk``, ``au``), or ``None``.
    :param certificate: PEM text holding the private key (and usually the certificate).
    :param certificate_path: path of a PEM (or PKCS#12 ``.pfx``/``.p12``) file instead.
    :param certificate_thumbprint: SHA-1 thumbprint, 40 hex digits, upper case.
    :param certificate_password: password of an encrypted key.
    :param username: user principal name for ``user_password``.
    :param user_password: that user's password.
    :param managed_identity_client_id: client id of a user-assigned identity; ``None`` is system-assigned.
    :param federated_token_file: path of the workload identity token file. For ``workload_identity``
        an empty one, login or tenant_id is read from ``AZURE_FEDERATED_TOKEN_FILE``,
        ``AZURE_CLIENT_ID`` or ``AZURE_TENANT_ID``, which the AKS webhook sets.
    :param ca_bundle: PEM bundle verifying the login and API hosts.
    :param proxy: proxy URL for token and API calls.
    :param timeout: seconds for reads (connect is capped at 10 s); ``None`` is the default.
    :param api_url: origin replacing the cloud's API host.
    :param login_url: origin replacing the cloud's login host.
    :param comment_marker_key: secret keying the comment markers of the incident operators (at
        least 16 characters); ``None`` keys them with the connection's credential secret.
    """

    conn_id: str
    client_id: str | None = None
    client_secret: str | None = field(default=None, repr=False)
    tenant_id: str | None = None
    auth_type: str = "client_secret"
    api: str = "graph"
    cloud: Cloud = field(default_factory=lambda: get_cloud("global"))
    region: str | None = None
    certificate: str | None = field(default=None, repr=False)
    certificate_path: str | None = None
    certificate_thumbprint: str | None = None
    certificate_password: str | None = field(default=None, repr=False)
    username: str | None = None
    user_password: str | None = field(default=None, repr=False)
    managed_identity_client_id: str | None = None
    federated_token_file: str | None = None
    ca_bundle: str | None = None
    # A proxy URL may carry a user and password.
    proxy: str | None = field(default=None, repr=False)
    timeout: float | None = None
    api_url: str | None = None
    login_url: str | None = None
    comment_marker_key: str | None = field(default=None, repr=False)

    @classmethod
    def from_connection(
        cls, *, conn_id: str, login: str | None, password: str | None, extra: Mapping[str, Any]
    ) -> ConnectionSettings:
        """Read and validate a connection's fields; raise :class:`MTPConfigError` naming the fix.

        :param conn_id: the connection id, quoted in every message.
        :param login: the connection's login (client id).
        :param password: the connection's password (client secret).
        :param extra: the connection's extras; keys plain or prefixed ``extra__mtp__``.
        """
        return _Reader(conn_id=conn_id, extra=extra).settings(login=login, password=password)

    @property
    def api_origin(self) -> str:
        """Origin of the API calls: ``api_url``, else the cloud's Graph root or MTP host."""
        if self.api_url:
            return self.api_url
        if self.api == "graph":
            return self.cloud.graph_root
        return self.cloud.mtp_origin(self.region)

    @property
    def login_origin(self) -> str:
        """Origin of Entra ID: ``login_url``, else the cloud's login host."""
        return self.login_url or self.cloud.login_origin

    @property
    def authority(self) -> str:
        """The msal authority, ``{login_origin}/{tenant_id}``."""
        return f"{self.login_origin}/{self.tenant_id}"

    @property
    def scope(self) -> str:
        """The application (or ``.default`` delegated) scope of the chosen API in the chosen cloud."""
        return self.cloud.graph_scope if self.api == "graph" else self.cloud.mtp_scope

    @property
    def resource(self) -> str:
        """The token audience: :attr:`scope` without ``/.default`` (managed identity asks for this)."""
        return self.scope.removesuffix("/.default")

    @property
    def timeouts(self) -> tuple[float, float]:
        """``(connect, read)`` seconds for every request."""
        read = self.timeout if self.timeout is not None else DEFAULT_READ_TIMEOUT_S
        return (min(MAX_CONNECT_TIMEOUT_S, read), read)

    @property
    def allowed_hosts(self) -> frozenset[str]:
        """Hosts (``host`` or ``host:port``, lower case) a paging link may point to: the API's own."""
        return frozenset({urlsplit(self.api_origin).netloc.lower()})

    def secrets(self) -> list[str]:
        """The secret values this connection holds, for ``mask_secret``."""
        values = [
            self.client_secret,
            self.certificate,
            self.certificate_password,
            self.user_password,
            self.comment_marker_key,
        ]
        if self.proxy:
            values.append(urlsplit(self.proxy).password)
        return [value for value in values if value]


def parse_extra(conn_id: str, extra: str | Mapping[str, Any] | None) -> dict[str, Any]:
    """A connection's ``extra`` text as a dict; :class:`MTPConfigError` if it is not a JSON object.

    Airflow's ``Connection.extra_dejson`` logs bad JSON and returns ``{}``, which would then be
    reported as the first missing field (``tenant_id is empty``). Hooks call this first, so the
    message names the real mistake. It quotes where the JSON breaks, never the text: the extra
    may hold secrets.

    :param conn_id: the connection id, for the message.
    :param extra: the connection's ``extra`` as stored (JSON text), or already a mapping.
    """
    fix = (
        "edit the connection's Extra so it holds one JSON object, such as "
        '{"tenant_id": "<directory id>", "api": "graph"}: keys and text in double quotes, a comma '
        "between pairs and none after the last"
    )
    if extra is None or isinstance(extra, Mapping):
        return dict(extra or {})
    if not extra.strip():
        return {}
    try:
        parsed = json.loads(extra)
    except json.JSONDecodeError as exc:
        # The decoder's own words, cut before any quoted character of the text.
        reason = exc.msg.partition(":")[0]
        raise MTPConfigError(
            f"Connection {conn_id!r}: extra is not a JSON object: its JSON breaks at line {exc.lineno}, "
            f"column {exc.colno} ({reason}). Fix: {fix}."
        ) from None
    if not isinstance(parsed, dict):
        raise MTPConfigError(
            f"Connection {conn_id!r}: extra is not a JSON object but a JSON {_json_kind(parsed)}. Fix: {fix}."
        )
    return parsed


def _json_kind(value: Any) -> str:
    if isinstance(value, list):
        return "list"
    if isinstance(value, str):
        return "string"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    return "number"


class _Reader:
    """Reads one connection's extras; every method raises a message that names the field.

    :param conn_id: the connection id.
    :param extra: the raw extras.
    """

    def __init__(self, *, conn_id: str, extra: Mapping[str, Any]) -> None:
        self.conn_id = conn_id
        self.extra = extra

    def error(self, field_name: str, problem: str, fix: str) -> MTPConfigError:
        label = _FIELD_LABELS.get(field_name, field_name)
        return MTPConfigError(f"Connection {self.conn_id!r}: {label} {problem}. Fix: {fix}.")

    def raw(self, name: str) -> Any:
        """The value under ``name`` or ``extra__mtp__<name>``; empty strings count as unset."""
        plain, prefixed = (
            _unset_to_none(self.extra.get(name)),
            _unset_to_none(self.extra.get(FORM_PREFIX + name)),
        )
        if plain is not None and prefixed is not None and plain != prefixed:
            raise self.error(
                name,
                f"is set twice with different values (as {name!r} and {FORM_PREFIX + name!r})",
                "keep one of the two extras",
            )
        return plain if plain is not None else prefixed

    def text(self, name: str) -> str | None:
        value = self.raw(name)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise self.error(name, f"must be text, not {type(value).__name__}", f"set {name} to a string")
        if name in _VERBATIM_FIELDS:
            return str(value)
        # Pasted values often carry a trailing newline.
        return str(value).strip() or None

    def choice(self, name: str, default: str, choices: Mapping[str, str]) -> str:
        value = (self.text(name) or default).lower()
        if value not in choices:
            valid = ", ".join(dict.fromkeys(choices))
            raise self.error(name, f"is {value!r}, which is not known", f"use one of {valid}")
        return choices[value]

    def settings(self, *, login: str | None, password: str | None) -> ConnectionSettings:
        auth_type = self.choice("auth_type", "client_secret", {name: name for name in AUTH_TYPES})
        api = self.choice("api", "graph", _API_ALIASES)
        cloud = self.cloud()
        values: dict[str, Any] = {
            name: self.text(name) for name in _ALL_CREDENTIAL_FIELDS if name != "password"
        }
        values["password"] = _unset_to_none(password.strip() if isinstance(password, str) else password)
        if auth_type == "workload_identity" and not values["federated_token_file"]:
            # The AKS workload identity webhook sets this variable in the pod.
            values["federated_token_file"] = os.environ.get("AZURE_FEDERATED_TOKEN_FILE") or None
        client_id = _unset_to_none(login.strip() if isinstance(login, str) else login)
        tenant_id = self.tenant_id()
        if auth_type == "workload_identity":
            # The AKS webhook injects the app and tenant too; the connection wins when it names them.
            client_id = client_id or os.environ.get("AZURE_CLIENT_ID") or None
            tenant_id = tenant_id or os.environ.get("AZURE_TENANT_ID") or None
        self.check_credentials(auth_type, values, client_id=client_id, tenant_id=tenant_id)
        thumbprint = self.thumbprint(values["certificate_thumbprint"])
        settings = ConnectionSettings(
            conn_id=self.conn_id,
            client_id=client_id,
            client_secret=values["password"],
            tenant_id=tenant_id,
            auth_type=auth_type,
            api=api,
            cloud=cloud,
            region=self.region(api, cloud),
            certificate=values["certificate"],
            certificate_path=values["certificate_path"],
            certificate_thumbprint=thumbprint,
            certificate_password=values["certificate_password"],
            username=values["username"],
            user_password=values["user_password"],
            managed_identity_client_id=values["managed_identity_client_id"],
            federated_token_file=values["federated_token_file"],
            ca_bundle=self.text("ca_bundle"),
            proxy=self.proxy(),
            timeout=self.timeout(),
            api_url=self.origin("api_url", loopback_http=True),
            login_url=self.origin("login_url", loopback_http=False),
            comment_marker_key=self.comment_marker_key(),
        )
        self.check_api(settings)
        return settings

    def cloud(self) -> Cloud:
        name = self.text("cloud")
        try:
            return get_cloud(name)
        except ValueError:
            raise self.error("cloud", f"is {name!r}, which is not a known cloud", _cloud_fix()) from None

    def tenant_id(self) -> str | None:
        tenant = self.text("tenant_id")
        if tenant is not None and re.search(r"[\s/?#]", tenant):
            raise self.error(
                "tenant_id",
                f"{tenant!r} contains spaces, '/', '?' or '#'",
                "use the directory (tenant) id, a GUID, or a verified domain such as contoso.onmicrosoft.com",
            )
        return tenant

    def check_credentials(
        self,
        auth_type: str,
        values: Mapping[str, str | None],
        *,
        client_id: str | None,
        tenant_id: str | None,
    ) -> None:
        """Each auth type's required fields present, other types' credential fields absent."""
        for name in _ALL_CREDENTIAL_FIELDS:
            if values.get(name) and name not in _CREDENTIAL_FIELDS[auth_type]:
                raise self.error(
                    name, f"is set, but auth_type is {auth_type!r}", f"{_stray_fix(name)}, or remove {name}"
                )
        if auth_type == "managed_identity":
            if client_id:
                raise self.error(
                    "login",
                    "is set, but managed_identity does not use it",
                    "leave login empty; for a user-assigned identity put its client id in "
                    "managed_identity_client_id",
                )
            return
        if not client_id:
            raise self.error("login", "is empty", "set it to the app registration's Application (client) ID")
        if not tenant_id:
            raise self.error(
                "tenant_id",
                "is empty",
                f"set it to the directory (tenant) id the app is registered in ({auth_type})",
            )
        if auth_type == "client_secret" and not values["password"]:
            raise self.error(
                "password",
                "is empty",
                "paste the client secret's VALUE (not its secret ID), or choose another auth_type "
                "such as certificate",
            )
        if auth_type == "certificate":
            self.check_certificate(values)
        if auth_type == "user_password":
            for name in ("username", "user_password"):
                if not values[name]:
                    raise self.error(
                        name, "is empty", "set username and user_password of the user to sign in as"
                    )
        if auth_type == "workload_identity" and not values["federated_token_file"]:
            raise self.error(
                "federated_token_file",
                "is empty and AZURE_FEDERATED_TOKEN_FILE is not set",
                "set federated_token_file to the projected service account token path "
                "(on AKS, label the pod azure.workload.identity/use=true)",
            )

    def check_certificate(self, values: Mapping[str, str | None]) -> None:
        text, path = values["certificate"], values["certificate_path"]
        if text and path:
            raise self.error(
                "certificate",
                "is given both as text and as certificate_path",
                "keep one of the two and remove the other",
            )
        if not (text or path):
            raise self.error(
                "certificate",
                "is empty and so is certificate_path",
                "paste the PEM (private key and certificate) into certificate, or set certificate_path",
            )
        if text and "-----BEGIN" not in text:
            raise self.error(
                "certificate",
                "is not PEM text (no '-----BEGIN' line)",
                "paste the PEM including its BEGIN/END lines, or put a file path in certificate_path",
            )

    def thumbprint(self, value: str | None) -> str | None:
        if value is None:
            return None
        normalised = re.sub(r"[\s:]", "", value)
        if not _THUMBPRINT.match(normalised):
            raise self.error(
                "certificate_thumbprint",
                "is not a SHA-1 thumbprint (40 hex digits)",
                "copy the thumbprint shown under Certificates & secrets, or leave it empty to compute it "
                "from the certificate",
            )
        return normalised.upper()

    def region(self, api: str, cloud: Cloud) -> str | None:
        region = self.text("region")
        if region is None:
            return None
        region = region.lower()
        if api != "legacy":
            raise self.error(
                "region", "is set, but api is 'graph'", "remove region (Graph has no regional hosts)"
            )
        if cloud.name != "global":
            raise self.error(
                "region",
                f"is set, but regional MTP hosts exist only in the global cloud, not in {cloud.name!r}",
                "remove region",
            )
        if region not in MTP_REGIONS:
            raise self.error(
                "region",
                f"is {region!r}, which is not an MTP region",
                f"use one of {', '.join(MTP_REGIONS)}, or leave it empty",
            )
        return region

    def check_api(self, settings: ConnectionSettings) -> None:
        if settings.api == "legacy" and settings.cloud.mtp_host is None:
            raise self.error(
                "api",
                f"is 'legacy', but the legacy MTP API is not offered in the {settings.cloud.name!r} cloud",
                "set api to 'graph'",
            )

    def proxy(self) -> str | None:
        proxy = self.text("proxy")
        if proxy is None:
            return None
        try:
            parts = urlsplit(proxy)
            parts.port  # noqa: B018 - raises ValueError on a bad port
        except ValueError:
            parts = None
        if parts is not None and parts.scheme.lower() in SOCKS_SCHEMES:
            # requests needs PySocks for SOCKS, and aiohttp (the triggers' client) has no SOCKS at all:
            # refused here, so a task and its trigger never disagree about the connection.
            raise self.error(
                "proxy",
                f"is a SOCKS proxy ({parts.scheme.lower()}://), which this provider does not support",
                "use an http:// or https:// proxy (http(s) proxies are supported for token and API "
                "calls alike), e.g. http://host:3128",
            )
        if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
            # Never echo the value: it may carry a password.
            raise self.error(
                "proxy",
                "is not a proxy URL",
                "use the form http://host:port with a port from 1 to 65535 (or https://); "
                "a user and password go before the host as user:password@",
            )
        return proxy

    def comment_marker_key(self) -> str | None:
        key = self.text("comment_marker_key")
        if key is not None and len(key) < MIN_COMMENT_MARKER_KEY_CHARS:
            # Never echo the value: it is a secret.
            raise self.error(
                "comment_marker_key",
                f"has {len(key)} characters, fewer than {MIN_COMMENT_MARKER_KEY_CHARS}",
                "use a random secret of at least 32 characters, e.g. from "
                "python -c 'import secrets; print(secrets.token_urlsafe(32))', or remove it",
            )
        return key

    def timeout(self) -> float | None:
        value = self.raw("timeout")
        if value is None:
            return None
        try:
            seconds = float(value) if isinstance(value, str | int | float) else math.nan
        except ValueError:
            seconds = math.nan
        # Past about 3e8 s the socket layer overflows (OverflowError); no reply is worth an hour.
        if isinstance(value, bool) or not math.isfinite(seconds) or not 0 < seconds <= MAX_TIMEOUT_S:
            shown = repr(value) if len(repr(value)) <= 40 else f"{repr(value)[:37]}..."
            raise self.error(
                "timeout",
                f"is {shown}, which is not a number of seconds above 0 and at most {MAX_TIMEOUT_S:g}",
                f"give the read timeout in seconds, e.g. 200 (the default); the range is 0 < timeout "
                f"<= {MAX_TIMEOUT_S:g}",
            )
        return seconds

    def origin(self, name: str, *, loopback_http: bool) -> str | None:
        """A validated origin (``scheme://host[:port]``) without a trailing slash."""
        value = self.text(name)
        if value is None:
            return None
        # Every message shows the value masked: a user part may hold a password.
        shown = mask_url(value)
        try:
            parts = urlsplit(value)
            parts.port  # noqa: B018 - raises ValueError on a bad port
        except ValueError:
            raise self.error(
                name, f"{shown!r} is not a URL", "use an origin such as https://host:8443"
            ) from None
        if not parts.hostname or parts.scheme not in ("http", "https"):
            raise self.error(
                name, f"{shown!r} is not an http(s) origin", "use an origin such as https://host:8443"
            )
        host = parts.netloc.rpartition("@")[2]
        if "@" in parts.netloc:
            raise self.error(
                name,
                f"{shown!r} has a user part (user:password@), which the client never sends",
                f"remove it and give only the origin, e.g. {parts.scheme}://{host}; the app's "
                "credentials belong in login and password",
            )
        if parts.path.rstrip("/") or parts.query or parts.fragment:
            raise self.error(
                name,
                f"{shown!r} has a path or query",
                f"give only the origin, e.g. {parts.scheme}://{host}; the client appends the API paths",
            )
        if parts.scheme == "http":
            if not loopback_http:
                # msal itself raises ValueError for an http authority.
                raise self.error(name, "uses plain http", "use https (msal accepts only https login hosts)")
            if not is_loopback(parts.hostname):
                raise self.error(
                    name,
                    f"uses plain http to {parts.hostname}, which is not a loopback address",
                    "use https; plain http is accepted only to 127.0.0.1, ::1 or localhost",
                )
        return f"{parts.scheme}://{parts.netloc.lower()}"


def _unset_to_none(value: Any) -> Any:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    return value


def _cloud_fix() -> str:
    return f"use one of {', '.join(CLOUDS)}"


def _stray_fix(name: str) -> str:
    owner = next(auth for auth, names in _CREDENTIAL_FIELDS.items() if name in names)
    return f"set auth_type to {owner!r} to use it"
