"""The emulated directory: registered apps, their permissions, and the tokens Entra ID issues.

Tokens are real RS256 JWTs signed with a key made at start, so clients can decode them as they
would Entra's and the API routes can check signature, audience, expiry and roles.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from airflow_provider_mtp.emulator.audiences import Api, audience_api
from airflow_provider_mtp.emulator.replies import EntraError

GRAPH_ALL_ROLES = (
    "SecurityIncident.ReadWrite.All",
    "SecurityAlert.ReadWrite.All",
    "ThreatHunting.Read.All",
)
MTP_ALL_ROLES = ("Incident.ReadWrite.All", "AdvancedHunting.Read.All")
#: Delegated permissions (``scp``) the user app is consented for, per API.
GRAPH_DELEGATED = ("SecurityIncident.ReadWrite.All", "SecurityAlert.ReadWrite.All", "ThreatHunting.Read.All")
MTP_DELEGATED = ("Incident.ReadWrite", "AdvancedHunting.Read")
#: The tenant's verified domain; accepted wherever the tenant id is.
TENANT_DOMAIN = "emulator.onmicrosoft.com"
#: The audience Entra requires in a federated (workload identity) token.
FEDERATION_AUDIENCE = "api://AzureADTokenExchange"
#: The Kubernetes service account the workload app trusts, as AKS names it in ``sub``.
WORKLOAD_SUBJECT = "system:serviceaccount:airflow:airflow-worker"
#: Lifetime of the federated token file; a kubelet would rotate it hourly, the emulator writes it once.
FEDERATED_TOKEN_LIFETIME_S = 24 * 3600
#: Scopes msal adds to every user request; they name no API.
OIDC_SCOPES = frozenset({"openid", "profile", "offline_access", "email"})


@dataclass(frozen=True, kw_only=True)
class RegisteredCertificate:
    """The public half of an app's certificate credential.

    :param public_key: verifies the client assertion's signature.
    :param sha1_thumbprint: hex, upper case, as the portal shows it (``x5t``).
    :param sha256_thumbprint: hex, lower case (``x5t#S256``, msal's default since 1.35).
    """

    public_key: rsa.RSAPublicKey
    sha1_thumbprint: str
    sha256_thumbprint: str

    def matches(self, header: Mapping[str, Any]) -> bool:
        """Whether the assertion's ``x5t`` or ``x5t#S256`` header names this certificate.

        RFC 7515 says base64url without padding, but msal keeps the ``=`` (``_encode_thumbprint``
        in msal/oauth2cli/assertion.py), and Entra accepts both.
        """
        wanted = {
            "x5t": _b64url(bytes.fromhex(self.sha1_thumbprint)),
            "x5t#S256": _b64url(bytes.fromhex(self.sha256_thumbprint)),
        }
        return any(str(header.get(name, "")).rstrip("=") == value for name, value in wanted.items())


@dataclass(frozen=True, kw_only=True)
class DirectoryUser:
    """A member of the emulated tenant who can sign in with a password.

    :param username: the user principal name.
    :param password: the password the password grant checks.
    :param object_id: the user's object id (``oid``, ``client_info.uid``).
    :param display_name: the ``name`` claim.
    """

    username: str
    password: str
    object_id: str
    display_name: str


@dataclass(frozen=True, kw_only=True)
class App:
    """One app registration in the emulated tenant.

    :param name: short name used in the ready line's ``apps`` map.
    :param client_id: the application (client) id.
    :param client_secret: the secret of a confidential client; ``None`` for a public client.
    :param roles: application permissions granted per API.
    :param description: what the app is for, shown in the ready line.
    :param public_client: a public client (no credential; the password and refresh grants only).
    :param certificate: the registered certificate a client assertion must be signed with.
    :param federated_subject: the ``sub`` of federated tokens this app trusts (workload identity).
    :param delegated: delegated permissions (``scp``) consented per API, for user sign-in.
    :param ready_extra: more ready-line keys: credential file paths, the user to sign in as.
    """

    name: str
    client_id: str
    client_secret: str | None
    roles: Mapping[Api, tuple[str, ...]]
    description: str = ""
    public_client: bool = False
    certificate: RegisteredCertificate | None = None
    federated_subject: str | None = None
    delegated: Mapping[Api, tuple[str, ...]] = field(default_factory=dict)
    ready_extra: Mapping[str, str] = field(default_factory=dict)

    def ready_entry(self) -> dict[str, Any]:
        entry: dict[str, Any] = {"client_id": self.client_id}
        # Apps that sign in with something else do not list an empty secret.
        if self.client_secret is not None or not (
            self.public_client or self.certificate or self.federated_subject
        ):
            entry["client_secret"] = self.client_secret
        entry.update(self.ready_extra)
        entry["roles"] = {api.value: list(roles) for api, roles in self.roles.items()}
        if self.delegated:
            entry["scopes"] = {api.value: list(scopes) for api, scopes in self.delegated.items()}
        entry["description"] = self.description
        return entry


class TokenError(Exception):
    """A bearer token the API must refuse with 401; the message says why."""


@dataclass(kw_only=True)
class Directory:
    """The tenant's identity side: apps, the signing key, and counters of issued tokens.

    :param tenant_id: the directory (tenant) id.
    :param apps: registered apps by client id.
    :param token_lifetime: ``expires_in`` of issued tokens, seconds.
    :param issuer_origin: the login origin written into ``iss``.
    :param users: users who can sign in with a password, by lower-case user name.
    :param managed_identities: managed identities by client id, served at ``/msi/token``.
    :param system_identity_id: client id of the system-assigned identity among them.
    :param identity_header: the ``X-IDENTITY-HEADER`` secret the managed identity endpoint wants.
    """

    tenant_id: str
    apps: dict[str, App]
    token_lifetime: int
    issuer_origin: str
    _key: rsa.RSAPrivateKey = field(default_factory=lambda: rsa.generate_private_key(65537, 2048))
    tokens_issued: dict[str, int] = field(default_factory=dict)
    users: dict[str, DirectoryUser] = field(default_factory=dict)
    managed_identities: dict[str, App] = field(default_factory=dict)
    system_identity_id: str | None = None
    identity_header: str | None = None
    _refresh_tokens: dict[str, tuple[str, str]] = field(default_factory=dict)

    @property
    def public_key_pem(self) -> bytes:
        return self._key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def issue(
        self, app: App, audience: str, *, version: str = "2.0", extra: Mapping[str, Any] | None = None
    ) -> str:
        """Sign an app-only access token for ``audience`` and count it.

        :param app: the calling app.
        :param audience: the resource the token is for (a Graph root or an MTP host).
        :param version: ``2.0`` or ``1.0``: the token format of the endpoint that issued it.
        :param extra: more claims, e.g. ``scp`` and ``upn`` for delegated tokens.
        """
        now = int(time.time())
        api = audience_api(audience)
        claims: dict[str, Any] = {
            "aud": audience,
            "iss": f"{self.issuer_origin}/{self.tenant_id}/v2.0"
            if version == "2.0"
            else f"https://sts.windows.net/{self.tenant_id}/",
            "iat": now,
            "nbf": now,
            "exp": now + self.token_lifetime,
            "tid": self.tenant_id,
            "oid": str(uuid.uuid5(uuid.NAMESPACE_URL, app.client_id)),
            "sub": str(uuid.uuid5(uuid.NAMESPACE_URL, app.client_id)),
            "uti": uuid.uuid4().hex,
            "ver": version,
            "roles": list(app.roles.get(api, ())) if api else [],
        }
        claims["azp" if version == "2.0" else "appid"] = app.client_id
        if extra:
            claims.update(extra)
        self.tokens_issued[app.client_id] = self.tokens_issued.get(app.client_id, 0) + 1
        return jwt.encode(claims, self._key, algorithm="RS256")

    def verify(self, token: str, *, api: Api) -> dict[str, Any]:
        """Return the claims of a valid token for ``api`` or raise :class:`TokenError`."""
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                self._key.public_key(),
                algorithms=["RS256"],
                options={"verify_aud": False, "require": ["exp", "aud", "tid"]},
                leeway=0,
            )
        except jwt.ExpiredSignatureError as exc:
            raise TokenError("Lifetime validation failed, the token is expired.") from exc
        except jwt.InvalidTokenError as exc:
            raise TokenError("Access token validation failure. Invalid signature or format.") from exc
        if audience_api(str(claims.get("aud", ""))) is not api:
            raise TokenError(f"Access token validation failure. Invalid audience: {claims.get('aud')}.")
        if claims.get("tid") != self.tenant_id:
            raise TokenError("Access token validation failure. Unknown tenant.")
        return claims

    def reset_counters(self) -> None:
        self.tokens_issued.clear()

    # User sign-in (password and refresh token grants).
    def find_user(self, username: str | None) -> DirectoryUser | None:
        return self.users.get((username or "").lower())

    def user_claims(self, user: DirectoryUser, scp: Iterable[str]) -> dict[str, Any]:
        """Claims that make an access token delegated: who signed in and what they consented to."""
        return {
            "scp": " ".join(scp),
            "upn": user.username,
            "unique_name": user.username,
            "name": user.display_name,
            "oid": user.object_id,
            "sub": user.object_id,
            "roles": [],
        }

    def refresh_token(self, app: App, user: DirectoryUser) -> str:
        """An opaque refresh token bound to the app and the user."""
        token = secrets.token_urlsafe(48)
        self._refresh_tokens[token] = (app.client_id, user.username.lower())
        return token

    def redeem_refresh_token(self, token: str | None, app: App) -> DirectoryUser:
        """The user a refresh token was issued to, or Entra's ``invalid_grant``."""
        holder = self._refresh_tokens.get(token or "")
        if holder is None or holder[0] != app.client_id:
            raise EntraError(
                400,
                "invalid_grant",
                9002313,
                "Invalid request. Request is malformed or invalid: the refresh token is not valid.",
            )
        user = self.users[holder[1]]
        return user

    def id_token(self, app: App, user: DirectoryUser) -> str:
        """A signed OpenID Connect id token; msal decodes it (without verifying) to name the account."""
        now = int(time.time())
        claims = {
            "aud": app.client_id,
            "iss": f"{self.issuer_origin}/{self.tenant_id}/v2.0",
            "iat": now,
            "nbf": now,
            "exp": now + self.token_lifetime,
            "name": user.display_name,
            "oid": user.object_id,
            "preferred_username": user.username,
            "sub": user.object_id,
            "tid": self.tenant_id,
            "ver": "2.0",
        }
        return jwt.encode(claims, self._key, algorithm="RS256")

    def client_info(self, user: DirectoryUser) -> str:
        """base64url JSON ``{"uid", "utid"}``: msal builds its account (home account id) from it."""
        return _b64url(json.dumps({"uid": user.object_id, "utid": self.tenant_id}).encode())

    # Client assertions (certificate and workload identity).
    @property
    def federation_issuer(self) -> str:
        """``iss`` of the federated tokens the emulator writes, like a cluster's OIDC issuer."""
        return f"{self.issuer_origin}/kubernetes-oidc"

    def federated_token(self, subject: str, *, lifetime: int = FEDERATED_TOKEN_LIFETIME_S) -> str:
        """A projected service account token as Kubernetes would write it for workload identity."""
        now = int(time.time())
        claims = {
            "aud": [FEDERATION_AUDIENCE],
            "iss": self.federation_issuer,
            "sub": subject,
            "iat": now,
            "nbf": now,
            "exp": now + lifetime,
        }
        return jwt.encode(claims, self._key, algorithm="RS256", headers={"kid": "emulator-oidc"})

    def verify_federated_token(self, app: App, assertion: str) -> None:
        """Accept a federated token for ``app`` or raise the AADSTS error Entra would."""
        try:
            claims = jwt.decode(
                assertion,
                self._key.public_key(),
                algorithms=["RS256"],
                options={"verify_aud": False, "verify_iss": False, "require": ["exp", "iss", "sub"]},
            )
        except jwt.ExpiredSignatureError:
            raise EntraError(
                400, "invalid_client", 700024, "Client assertion is not within its valid time range."
            ) from None
        except jwt.InvalidTokenError:
            raise EntraError(
                401,
                "invalid_client",
                700027,
                "Client assertion failed signature validation: the federated token is not signed by a "
                "trusted issuer.",
            ) from None
        if claims["iss"] != self.federation_issuer:
            raise EntraError(
                400,
                "invalid_client",
                700211,
                f"No matching federated identity record found for presented assertion issuer '{claims['iss']}'.",
            )
        if claims["sub"] != app.federated_subject:
            raise EntraError(
                400,
                "invalid_client",
                700213,
                f"No matching federated identity record found for presented assertion subject '{claims['sub']}'.",
            )
        audiences = claims.get("aud")
        if FEDERATION_AUDIENCE not in (audiences if isinstance(audiences, list) else [audiences]):
            raise EntraError(
                400,
                "invalid_client",
                700212,
                f"No matching federated identity record found for presented assertion audience '{audiences}'.",
            )

    def verify_certificate_assertion(self, app: App, assertion: str, token_endpoints: Iterable[str]) -> None:
        """Accept a certificate-signed client assertion (RFC 7523) for ``app`` or raise Entra's error.

        :param app: the app; its registered certificate must have signed the assertion.
        :param assertion: the compact JWT from ``client_assertion``.
        :param token_endpoints: the ``aud`` values accepted: this token endpoint's URLs.
        """
        assert app.certificate is not None
        try:
            header = jwt.get_unverified_header(assertion)
        except jwt.InvalidTokenError:
            raise EntraError(400, "invalid_client", 50027, "JWT token is invalid or malformed.") from None
        if not app.certificate.matches(header):
            raise EntraError(
                401,
                "invalid_client",
                700027,
                "Client assertion failed signature validation. The certificate with the thumbprint in the "
                f"assertion's x5t or x5t#S256 header is not registered on application '{app.client_id}'.",
            )
        try:
            jwt.decode(
                assertion,
                app.certificate.public_key,
                algorithms=["RS256", "PS256"],
                audience=list(token_endpoints),
                issuer=app.client_id,
                options={"require": ["exp", "aud", "iss", "sub"]},
            )
        except jwt.ExpiredSignatureError:
            raise EntraError(
                400, "invalid_client", 700024, "Client assertion is not within its valid time range."
            ) from None
        except jwt.InvalidSignatureError:
            raise EntraError(
                401,
                "invalid_client",
                700027,
                "Client assertion failed signature validation: key was found, but use of the key to "
                "verify the signature failed.",
            ) from None
        except jwt.InvalidAudienceError:
            raise EntraError(
                401,
                "invalid_client",
                700027,
                "Client assertion contains an invalid audience claim; it must be the token endpoint URL.",
            ) from None
        except jwt.InvalidTokenError as exc:
            raise EntraError(
                401, "invalid_client", 700027, f"Client assertion failed validation: {exc}."
            ) from None
        if jwt.decode(assertion, options={"verify_signature": False}).get("sub") != app.client_id:
            raise EntraError(
                401,
                "invalid_client",
                700021,
                "Client assertion application identifier doesn't match 'client_id'.",
            )

    # Managed identities (App Service style endpoint).
    def managed_identity(self, client_id: str | None) -> App | None:
        """The identity a managed identity request names: user-assigned by client id, else system-assigned."""
        return self.managed_identities.get(client_id or self.system_identity_id or "")

    def managed_identity_ready_entry(self, url: str) -> dict[str, Any]:
        """How to point msal's managed identity client at the emulator (``IDENTITY_ENDPOINT``, ``IDENTITY_HEADER``)."""
        user_assigned = next(
            (
                app.client_id
                for app in self.managed_identities.values()
                if app.client_id != self.system_identity_id
            ),
            None,
        )
        return {
            "identity_endpoint": f"{url}/msi/token",
            "identity_header": self.identity_header,
            "client_id": user_assigned,
            "system_client_id": self.system_identity_id,
        }


def granted(claims: Mapping[str, Any]) -> set[str]:
    """Permissions a token carries: application ``roles`` or delegated ``scp``."""
    roles = set(claims.get("roles") or ())
    roles.update(str(claims.get("scp") or "").split())
    return roles


def missing_roles(claims: Mapping[str, Any], any_of: Iterable[str]) -> bool:
    """True when the token carries none of ``any_of``."""
    return not (granted(claims) & set(any_of))


def derived_id(seed: int, name: str) -> str:
    """A GUID that is the same for the same seed and name, so restarts keep their credentials."""
    return str(uuid.uuid5(uuid.NAMESPACE_DNS, f"{name}.seed{seed}.emulator.airflow-provider-mtp"))


def derived_secret(seed: int, name: str) -> str:
    """A client secret, stable per seed. The emulator's secrets guard nothing; they must only be right."""
    digest = hashlib.sha256(f"secret:{seed}:{name}".encode()).hexdigest()
    return f"emu~{digest[:36]}"


def default_apps(seed: int) -> dict[str, App]:
    """The apps every run registers: one with every permission, a read-only one, one without
    hunting, one without the alert permissions (``SecurityAlert.*``)."""
    apps = [
        App(
            name="full",
            client_id=derived_id(seed, "full"),
            client_secret=derived_secret(seed, "full"),
            roles={Api.GRAPH: GRAPH_ALL_ROLES, Api.MTP: MTP_ALL_ROLES},
            description="every Graph and MTP permission the provider uses",
        ),
        App(
            name="read_only",
            client_id=derived_id(seed, "read_only"),
            client_secret=derived_secret(seed, "read_only"),
            roles={
                Api.GRAPH: ("SecurityIncident.Read.All", "SecurityAlert.Read.All", "ThreatHunting.Read.All"),
                Api.MTP: ("Incident.Read.All", "AdvancedHunting.Read.All"),
            },
            description="reads incidents and alerts, and hunts; cannot update incidents or alerts",
        ),
        App(
            name="no_hunting",
            client_id=derived_id(seed, "no_hunting"),
            client_secret=derived_secret(seed, "no_hunting"),
            roles={
                Api.GRAPH: ("SecurityIncident.ReadWrite.All", "SecurityAlert.ReadWrite.All"),
                Api.MTP: ("Incident.ReadWrite.All",),
            },
            description="incidents and alerts; lacks ThreatHunting.Read.All and AdvancedHunting.Read.All",
        ),
        App(
            name="no_alerts",
            client_id=derived_id(seed, "no_alerts"),
            client_secret=derived_secret(seed, "no_alerts"),
            roles={
                Api.GRAPH: ("SecurityIncident.ReadWrite.All", "ThreatHunting.Read.All"),
                Api.MTP: MTP_ALL_ROLES,
            },
            description="incidents and hunting; lacks SecurityAlert.Read.All and SecurityAlert.ReadWrite.All",
        ),
    ]
    return {app.client_id: app for app in apps}


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()
