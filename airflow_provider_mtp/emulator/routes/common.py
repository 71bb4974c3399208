"""What every API route does first: check the bearer token, the permission and the quota."""

from __future__ import annotations

from typing import Any

from fastapi import Request

from airflow_provider_mtp.emulator.audiences import Api
from airflow_provider_mtp.emulator.identity import TokenError, granted, missing_roles
from airflow_provider_mtp.emulator.limits import QuotaExceeded
from airflow_provider_mtp.emulator.replies import ApiError
from airflow_provider_mtp.emulator.state import state_of


def authorize(request: Request, api: Api, any_of: tuple[str, ...]) -> dict[str, Any]:
    """The token's claims, or the service's 401 or 403.

    :param request: the incoming request.
    :param api: the API the route belongs to; a token for the other one is refused.
    :param any_of: permissions of which the token needs one.
    """
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise unauthorized(api, "Access token is empty.")
    try:
        claims = state_of(request).directory.verify(token.strip(), api=api)
    except TokenError as exc:
        raise unauthorized(api, str(exc)) from exc
    if missing_roles(claims, any_of):
        have = ",".join(sorted(granted(claims)))
        raise ApiError(
            403,
            "Forbidden",
            f"Missing application roles. API required roles: {','.join(any_of)}, application roles: {have}.",
        )
    return claims


def unauthorized(api: Api, reason: str) -> ApiError:
    if api is Api.GRAPH:
        return ApiError(401, "InvalidAuthenticationToken", reason)
    return ApiError(401, "Unauthorized", f"Unauthorized request - reason of failure: {reason}")


def take_quota(request: Request, budget: str, claims: dict[str, Any], api: Api) -> None:
    """Use one call of ``budget`` or answer 429 the way each back end does."""
    try:
        state_of(request).quotas.take(budget, str(claims["tid"]))
    except QuotaExceeded as exc:
        headers = {"Retry-After": str(exc.retry_after)}
        if api is Api.GRAPH:
            raise ApiError(429, "TooManyRequests", f"Too many requests. {exc}", headers) from exc
        raise ApiError(429, "429", str(exc), headers) from exc


def caller_name(claims: dict[str, Any]) -> str:
    """How the portal names the author of a change: the user, or ``API-App:<client id>``."""
    user = claims.get("upn") or claims.get("preferred_username")
    if user:
        return str(user)
    return f"API-App:{claims.get('azp') or claims.get('appid')}"
