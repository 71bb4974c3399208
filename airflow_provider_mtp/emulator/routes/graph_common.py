"""What the Graph routes (incidents and alerts) share: the API version in the path, ``@odata``
envelopes, and the JSON body."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from fastapi import Request

from airflow_provider_mtp.emulator.replies import ApiError
from airflow_provider_mtp.emulator.routes.incidents_common import Page
from airflow_provider_mtp.emulator.state import state_of


def version(request: Request) -> str:
    """``v1.0`` or ``beta``: the Graph routers are mounted under both."""
    return request.url.path.split("/")[1]


def context(request: Request, fragment: str) -> str:
    """The ``@odata.context`` of a reply: ``<origin>/<version>/$metadata#<fragment>``."""
    return f"{state_of(request).url}/{version(request)}/$metadata#{fragment}"


def listing_body(request: Request, resource: str, page: Page, *, count: bool) -> dict[str, Any]:
    """A Graph collection reply: context, ``@odata.count`` when asked, the page, and
    ``@odata.nextLink`` (the same query with ``$skip`` moved on) when more match.

    :param request: the listing request.
    :param resource: the path after the version, e.g. ``security/alerts_v2``.
    :param page: the page.
    :param count: whether ``$count=true`` was asked.
    """
    body: dict[str, Any] = {"@odata.context": context(request, resource)}
    if count:
        body["@odata.count"] = page.total
    body["value"] = page.items
    if page.has_more:
        params = dict(request.query_params)
        params["$skip"] = str(page.skip + len(page.items))
        params["$top"] = str(page.top)
        body["@odata.nextLink"] = f"{state_of(request).url}/{version(request)}/{resource}?{urlencode(params)}"
    return body


def counted(request: Request) -> bool:
    """Whether the listing asks for ``$count=true``."""
    return request.query_params.get("$count", "").lower() == "true"


async def json_object(request: Request) -> dict[str, Any]:
    """The request's JSON object body, or Graph's 400."""
    try:
        body = await request.json()
    except ValueError as exc:
        raise ApiError(400, "BadRequest", "The request body is not valid JSON.") from exc
    if not isinstance(body, dict):
        raise ApiError(400, "BadRequest", "The request body must be a JSON object.")
    return body


def comment_text(body: dict[str, Any]) -> str:
    """The text of a comment POST body (``{"@odata.type": ..., "comment": "..."}``), or Graph's 400."""
    text = body.get("comment")
    if not isinstance(text, str) or not text:
        raise ApiError(
            400, "BadRequest", "The 'comment' property is required and must be a non-empty string."
        )
    return text
