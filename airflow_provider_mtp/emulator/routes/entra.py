"""Entra ID: OpenID discovery, the token endpoints and a managed identity endpoint (defender-api.md 1).

Grants: client credentials with a secret, a certificate-signed assertion or a federated token
(workload identity), on the v2 and the v1 endpoint; the password grant and the refresh token grant
for a public client; and the App Service managed identity endpoint msal calls when
``IDENTITY_ENDPOINT`` and ``IDENTITY_HEADER`` are set. ``tokens_issued`` counts successful grants only.
"""

from __future__ import annotations

import base64
import binascii
import re
import time
from typing import Any
from urllib.parse import unquote_plus

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from airflow_provider_mtp.emulator.audiences import audience_api
from airflow_provider_mtp.emulator.identity import OIDC_SCOPES, TENANT_DOMAIN, App, DirectoryUser
from airflow_provider_mtp.emulator.replies import EntraError
from airflow_provider_mtp.emulator.state import EmulatorState, state_of

router = APIRouter(tags=["Entra ID"])

_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_DOMAIN = re.compile(r"^[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$")
JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
#: App Service's managed identity API version, the one msal sends.
MSI_API_VERSION = "2019-08-01"
#: Delegated scopes without a resource prefix name Microsoft Graph, as in Entra.
_GRAPH_ROOT = "https://graph.microsoft.com"

# TENANT_DOMAIN now lives in identity; it stays importable from here.
__all__ = ["TENANT_DOMAIN", "router"]


def check_tenant(state: EmulatorState, tenant: str) -> None:
    """Raise Entra's error for a malformed or unknown tenant in the authority path."""
    if tenant in (state.directory.tenant_id, TENANT_DOMAIN):
        return
    if not (_GUID.match(tenant) or _DOMAIN.match(tenant)):
        raise EntraError(
            400,
            "invalid_request",
            900023,
            f"Specified tenant identifier '{tenant}' is neither a valid DNS name, nor a valid external domain.",
        )
    raise EntraError(
        400,
        "invalid_tenant",
        90002,
        f"Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and are signing "
        "into the correct cloud.",
    )


def find_app(state: EmulatorState, client_id: str | None) -> App:
    app = state.directory.apps.get(client_id or "")
    if app is None:
        raise EntraError(
            400,
            "unauthorized_client",
            700016,
            f"Application with identifier '{client_id}' was not found in the directory "
            f"'{state.directory.tenant_id}'.",
        )
    return app


def resource_from_scope(scope: str | None) -> str:
    """The audience of an app-only ``<resource>/.default`` scope, or Entra's error."""
    scopes = [item for item in (scope or "").split() if item not in {"openid", "profile", "offline_access"}]
    if len(scopes) != 1 or not scopes[0].endswith("/.default"):
        raise EntraError(
            400,
            "invalid_scope",
            70011,
            f"The provided value for the input parameter 'scope' is not valid. The scope '{scope}' is not "
            "valid. The scope for a client credential flow must be the resource identifier (application "
            "ID URI) suffixed with /.default.",
        )
    return resource_or_error(scopes[0].removesuffix("/.default"))


def resource_or_error(resource: str) -> str:
    if audience_api(resource) is None:
        raise EntraError(
            400,
            "invalid_resource",
            500011,
            f"The resource principal named {resource} was not found in the tenant. This can happen if the "
            "application has not been installed by the administrator of the tenant.",
        )
    return resource.rstrip("/")


def check_secret(app: App, secret: str | None) -> None:
    if app.client_secret is None or secret != app.client_secret:
        raise EntraError(
            401,
            "invalid_client",
            7000215,
            "Invalid client secret provided. Ensure the secret being sent in the request is the client "
            f"secret value, not the client secret ID, for a secret added to app '{app.client_id}'.",
        )


def token_reply(state: EmulatorState, app: App, resource: str, *, v1: bool = False) -> dict[str, Any]:
    lifetime = state.directory.token_lifetime
    token = state.directory.issue(app, resource, version="1.0" if v1 else "2.0")
    if v1:
        # v1 sends numbers as strings and an absolute expiry (defender-api.md section 1.4).
        now = int(time.time())
        return {
            "token_type": "Bearer",
            "expires_in": str(lifetime),
            "ext_expires_in": str(lifetime),
            "expires_on": str(now + lifetime),
            "not_before": str(now),
            "resource": resource,
            "access_token": token,
        }
    return {"token_type": "Bearer", "expires_in": lifetime, "ext_expires_in": lifetime, "access_token": token}


@router.get("/{tenant}/v2.0/.well-known/openid-configuration")
def openid_configuration(tenant: str, request: Request) -> dict[str, Any]:
    state = state_of(request)
    check_tenant(state, tenant)
    base = f"{state.url}/{tenant}"
    return {
        "issuer": f"{state.url}/{state.directory.tenant_id}/v2.0",
        "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
        "token_endpoint": f"{base}/oauth2/v2.0/token",
        "device_authorization_endpoint": f"{base}/oauth2/v2.0/devicecode",
        "jwks_uri": f"{base}/discovery/v2.0/keys",
        "response_types_supported": ["code", "id_token", "token"],
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "token_endpoint_auth_methods_supported": [
            "client_secret_post",
            "private_key_jwt",
            "client_secret_basic",
        ],
        "tenant_region_scope": "EU",
        "cloud_instance_name": "emulator",
    }


@router.get("/common/discovery/instance")
def instance_discovery(request: Request) -> dict[str, Any]:
    """Answered for clients that did not turn msal's instance discovery off."""
    host = request.url.netloc
    return {
        "tenant_discovery_endpoint": f"{state_of(request).url}/common/v2.0/.well-known/openid-configuration",
        "api-version": "1.1",
        "metadata": [{"preferred_network": host, "preferred_cache": host, "aliases": [host]}],
    }


async def form_fields(request: Request) -> dict[str, str]:
    form = await request.form()
    return {key: str(value) for key, value in form.items()}


def basic_secret(request: Request, client_id: str | None) -> str | None:
    """The secret of ``Authorization: Basic`` (client_secret_basic), if it names this client."""
    scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        user, _, secret = base64.b64decode(encoded).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return unquote_plus(secret) if unquote_plus(user) == client_id else None


def token_endpoints(state: EmulatorState, tenant: str) -> list[str]:
    """Every URL of this tenant's token endpoints: the ``aud`` a client assertion may carry."""
    tenants = dict.fromkeys([tenant, state.directory.tenant_id, TENANT_DOMAIN])
    return [f"{state.url}/{name}/oauth2/{path}" for name in tenants for path in ("v2.0/token", "token")]


def authenticate_client(
    state: EmulatorState, app: App, fields: dict[str, str], request: Request, tenant: str
) -> None:
    """Check the client's credential: none for a public client, else an assertion or the secret."""
    assertion = fields.get("client_assertion")
    secret = fields.get("client_secret") or basic_secret(request, app.client_id)
    if app.public_client:
        if assertion or secret:
            raise EntraError(
                400,
                "invalid_request",
                700025,
                "Client is public so neither 'client_assertion' nor 'client_secret' should be presented.",
            )
        return
    if assertion:
        if fields.get("client_assertion_type") != JWT_BEARER:
            raise EntraError(
                400, "invalid_request", 90014, f"The field 'client_assertion_type' must be '{JWT_BEARER}'."
            )
        if app.certificate is not None:
            state.directory.verify_certificate_assertion(app, assertion, token_endpoints(state, tenant))
        elif app.federated_subject is not None:
            state.directory.verify_federated_token(app, assertion)
        else:
            raise EntraError(
                401,
                "invalid_client",
                700027,
                f"Client assertion failed signature validation: application '{app.client_id}' has no "
                "certificate or federated credential registered.",
            )
        return
    if app.client_secret is None:
        raise EntraError(
            401,
            "invalid_client",
            7000218,
            "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
        )
    check_secret(app, secret)


def delegated_scopes(app: App, scope: str | None) -> tuple[str, list[str]]:
    """The resource and the delegated permissions a user request gets, or Entra's error.

    ``<resource>/.default`` grants everything consented for that resource; named permissions must
    each be consented. Permissions without a resource prefix are Graph's.
    """
    requested = [item for item in (scope or "").split() if item not in OIDC_SCOPES]
    pairs = [item.rpartition("/")[::2] if "/" in item else (_GRAPH_ROOT, item) for item in requested]
    resources = {resource.rstrip("/") for resource, _ in pairs}
    if len(resources) != 1:
        raise EntraError(
            400,
            "invalid_scope",
            70011,
            f"The provided value for the input parameter 'scope' is not valid. The scope '{scope}' must name "
            "exactly one resource.",
        )
    resource = resource_or_error(resources.pop())
    api = audience_api(resource)
    consented = app.delegated.get(api, ()) if api else ()
    names = [name for _, name in pairs]
    granted = list(consented) if ".default" in names else names
    missing = [name for name in granted if name not in consented]
    if missing or not granted:
        raise EntraError(
            400,
            "invalid_grant",
            65001,
            f"The user or administrator has not consented to use the application with ID '{app.client_id}'. "
            f"Permissions not consented: {', '.join(missing) or resource}. Send an interactive authorization "
            "request for this user and resource.",
        )
    return resource, granted


def user_token_reply(
    state: EmulatorState, app: App, user: DirectoryUser, resource: str, granted: list[str]
) -> dict[str, Any]:
    """A delegated reply: tokens plus ``client_info`` and ``id_token``, so msal caches an account."""
    directory = state.directory
    lifetime = directory.token_lifetime
    return {
        "token_type": "Bearer",
        # Entra lists the granted permissions, not the .default that asked for them.
        "scope": " ".join(f"{resource}/{name}" for name in granted),
        "expires_in": lifetime,
        "ext_expires_in": lifetime,
        "access_token": directory.issue(app, resource, extra=directory.user_claims(user, granted)),
        "refresh_token": directory.refresh_token(app, user),
        "id_token": directory.id_token(app, user),
        "client_info": directory.client_info(user),
    }


def password_grant(state: EmulatorState, app: App, fields: dict[str, str]) -> dict[str, Any]:
    directory = state.directory
    username = fields.get("username", "")
    user = directory.find_user(username)
    if user is None:
        raise EntraError(
            400,
            "invalid_grant",
            50034,
            f"The user account {username} does not exist in the {directory.tenant_id} directory. To sign into "
            "this application, the account must be added to the directory.",
        )
    if fields.get("password") != user.password:
        raise EntraError(
            400, "invalid_grant", 50126, "Error validating credentials due to invalid username or password."
        )
    resource, granted = delegated_scopes(app, fields.get("scope"))
    return user_token_reply(state, app, user, resource, granted)


def refresh_grant(state: EmulatorState, app: App, fields: dict[str, str]) -> dict[str, Any]:
    user = state.directory.redeem_refresh_token(fields.get("refresh_token"), app)
    resource, granted = delegated_scopes(app, fields.get("scope"))
    return user_token_reply(state, app, user, resource, granted)


def unsupported_grant(grant: str | None) -> EntraError:
    return EntraError(
        400, "unsupported_grant_type", 70003, f"The app requested an unsupported grant type '{grant}'."
    )


@router.post("/{tenant}/oauth2/v2.0/token")
async def token_v2(tenant: str, request: Request) -> JSONResponse:
    state = state_of(request)
    check_tenant(state, tenant)
    fields = await form_fields(request)
    grant = fields.get("grant_type")
    if grant not in ("client_credentials", "password", "refresh_token"):
        raise unsupported_grant(grant)
    app = find_app(state, fields.get("client_id"))
    authenticate_client(state, app, fields, request, tenant)
    if grant == "password":
        return JSONResponse(password_grant(state, app, fields))
    if grant == "refresh_token":
        return JSONResponse(refresh_grant(state, app, fields))
    if app.public_client:
        raise EntraError(
            400,
            "unauthorized_client",
            700016,
            f"Application '{app.client_id}' is a public client; the client credentials grant needs a "
            "confidential client.",
        )
    resource = resource_from_scope(fields.get("scope"))
    return JSONResponse(token_reply(state, app, resource))


@router.post("/{tenant}/oauth2/token")
async def token_v1(tenant: str, request: Request) -> JSONResponse:
    """The v1 endpoint: ``resource=`` instead of ``scope=``; numbers as strings, absolute ``expires_on``."""
    state = state_of(request)
    check_tenant(state, tenant)
    fields = await form_fields(request)
    grant = fields.get("grant_type")
    if grant != "client_credentials":
        raise unsupported_grant(grant)
    app = find_app(state, fields.get("client_id"))
    authenticate_client(state, app, fields, request, tenant)
    if not fields.get("resource"):
        raise EntraError(
            400,
            "invalid_request",
            900144,
            "The request body must contain the following parameter: 'resource'.",
        )
    resource = resource_or_error(fields["resource"])
    return JSONResponse(token_reply(state, app, resource, v1=True))


@router.get("/common/userrealm/{username}")
def user_realm(username: str) -> dict[str, Any]:
    """Home realm discovery msal runs before the password grant: ``Managed`` means no WS-Trust."""
    domain = username.rpartition("@")[2].lower()
    return {
        "ver": "1.0",
        "account_type": "Managed" if domain == TENANT_DOMAIN else "Unknown",
        "domain_name": domain,
        "cloud_instance_name": "microsoftonline.com",
        "cloud_audience_urn": "urn:federation:MicrosoftOnline",
    }


def msi_error(status: int, message: str) -> JSONResponse:
    """App Service's error shape; msal turns it into ``{"error": "invalid_scope", ...}``."""
    return JSONResponse({"statusCode": status, "message": message}, status_code=status)


@router.get("/msi/token")
async def managed_identity_token(request: Request) -> JSONResponse:
    """App Service's managed identity endpoint (``IDENTITY_ENDPOINT``): a token for the identity."""
    state = state_of(request)
    directory = state.directory
    if not directory.identity_header:
        return msi_error(404, "No managed identity is configured in this emulator run.")
    if request.headers.get("x-identity-header") != directory.identity_header:
        return msi_error(401, "The X-IDENTITY-HEADER header is missing or wrong.")
    params = request.query_params
    if params.get("api-version") != MSI_API_VERSION:
        return msi_error(400, f"api-version must be {MSI_API_VERSION}.")
    if params.get("mi_res_id") or params.get("object_id"):
        return msi_error(400, "This emulator identifies user-assigned identities by client_id only.")
    identity = directory.managed_identity(params.get("client_id"))
    if identity is None:
        return msi_error(
            400,
            "No User Assigned or Delegated Managed Identity found for specified ClientId/ResourceId/PrincipalId.",
        )
    resource = (params.get("resource") or "").rstrip("/")
    if audience_api(resource) is None:
        return msi_error(
            400,
            f"AADSTS500011: The resource principal named {resource or '(none)'} was not found in the tenant "
            f"named {directory.tenant_id}.",
        )
    token = directory.issue(identity, resource, version="1.0")
    return JSONResponse(
        {
            "access_token": token,
            # App Service sends the absolute expiry, as a string, and no expires_in.
            "expires_on": str(int(time.time()) + directory.token_lifetime),
            "resource": resource,
            "token_type": "Bearer",
            "client_id": identity.client_id,
        }
    )
