"""Listing plumbing both back ends (and the alert listing) share: OData options -> a page of the store."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from fastapi import Request

from airflow_provider_mtp.emulator import odata
from airflow_provider_mtp.emulator.replies import ApiError


@dataclass(frozen=True)
class Page:
    """One page of a listing.

    :param items: the incidents on this page (Graph shape; read-only below the top level).
    :param total: how many match the filter, when counted.
    :param skip: the offset of this page.
    :param top: the page size asked for.
    :param has_more: whether matching incidents follow this page.
    """

    items: list[dict[str, Any]]
    total: int | None
    skip: int
    top: int
    has_more: bool


def odata_failure(exc: odata.ODataError, *, legacy: bool) -> ApiError:
    if legacy:
        return ApiError(400, "ODataError", f"Invalid OData URI query {str(exc).rstrip('.')}.")
    if isinstance(exc, odata.TopLimitError):
        return ApiError(400, "", str(exc))
    return ApiError(400, "BadRequest", f"Invalid filter clause: {exc}")


@dataclass(frozen=True)
class Options:
    """A listing's OData query options, read.

    :param predicate: the ``$filter``, over the rows the filter sees; ``None`` without one.
    :param orderby: ``(field, descending)`` pairs; ``None`` for the default order.
    :param skip: ``$skip``.
    :param top: ``$top``, or the default page size.
    """

    predicate: odata.Predicate | None
    orderby: list[tuple[str, bool]] | None
    skip: int
    top: int


def options_of(
    request: Request,
    *,
    fields: Mapping[str, Any],
    max_top: int,
    default_top: int,
    legacy: bool,
    allow_orderby: bool,
    clamp_top: bool = False,
) -> Options:
    """Read ``$filter``, ``$orderby``, ``$skip`` and ``$top``, or raise the back end's 400.

    :param request: carries the OData query options.
    :param fields: filterable fields and their kinds, by the back end's names.
    :param max_top: the largest ``$top`` the back end accepts.
    :param default_top: the page size without ``$top``.
    :param legacy: write errors in the MTP shape.
    :param allow_orderby: honour ``$orderby`` (Graph) or ignore it (MTP, undocumented there).
    :param clamp_top: answer a ``$top`` over ``max_top`` with ``max_top`` pages (``alerts_v2``)
        instead of a 400 (incidents).
    """
    params = request.query_params
    try:
        predicate = odata.parse_filter(params["$filter"], fields=fields) if params.get("$filter") else None
        orderby = None
        if allow_orderby and params.get("$orderby"):
            # Only the time fields sort (defender-api.md section 3.1: e.g. lastUpdateDateTime asc).
            time_fields = {name: kind for name, kind in fields.items() if kind == "datetime"}
            orderby = odata.parse_orderby(params["$orderby"], fields=time_fields)
        top = odata.parse_top(params.get("$top"), maximum=max_top, default=default_top, clamp=clamp_top)
        skip = odata.parse_skip(params.get("$skip"))
    except odata.ODataError as exc:
        raise odata_failure(exc, legacy=legacy) from exc
    return Options(predicate=predicate, orderby=orderby, skip=skip, top=top)


def page_of(
    request: Request,
    *,
    fields: Mapping[str, Any],
    view: Any,
    max_top: int,
    default_top: int,
    legacy: bool,
    allow_orderby: bool,
    alerts: bool,
    count: bool,
    transform: Callable[[Mapping[str, Any]], dict[str, Any]] | None = None,
) -> Page:
    """Apply ``$filter``, ``$orderby``, ``$skip`` and ``$top`` to the store.

    :param request: carries the OData query options.
    :param fields: filterable fields and their kinds, by the back end's names.
    :param view: maps a Graph-shape incident to the row the filter sees (the back end's names).
    :param max_top: the largest ``$top`` the back end accepts.
    :param default_top: the page size without ``$top``.
    :param legacy: write errors in the MTP shape.
    :param allow_orderby: honour ``$orderby`` (Graph) or ignore it (MTP, undocumented there).
    :param alerts: the items carry their alerts (else no ``alerts`` key, and none are copied).
    :param count: count every match (``$count=true``); else a filtered listing stops after the page.
    :param transform: makes each item from the Graph-shape incident (e.g. the MTP shape); kept per
        incident version by the store.
    """
    from airflow_provider_mtp.emulator.state import state_of

    options = options_of(
        request,
        fields=fields,
        max_top=max_top,
        default_top=default_top,
        legacy=legacy,
        allow_orderby=allow_orderby,
    )
    predicate = options.predicate
    found = state_of(request).incidents.page(
        None if predicate is None else (lambda row: predicate(view(row))),
        options.orderby,
        skip=options.skip,
        top=options.top,
        alerts=alerts,
        count=count,
        transform=transform,
    )
    return Page(items=found.items, total=found.total, skip=options.skip, top=options.top, has_more=found.more)
