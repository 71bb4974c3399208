"""One hunting call for either API: budgets, the query on the engine's threads, and its client watched.

The event loop never waits on DuckDB: the query runs on one of the engine's threads while the
route checks every :data:`POLL_S` seconds whether the client is still there. A client that
disconnected gets its query interrupted rather than run to the end. Whatever the outcome, the
query's real CPU time is charged to the tenant's CPU budget when it ends.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import Future
from typing import Any

from fastapi import Request

from airflow_provider_mtp.emulator.audiences import Api
from airflow_provider_mtp.emulator.hunting import HuntingError, HuntingOutput, QueryControl
from airflow_provider_mtp.emulator.hunting_control import stopped_error
from airflow_provider_mtp.emulator.limits import CpuQuotaExceeded
from airflow_provider_mtp.emulator.replies import ApiError
from airflow_provider_mtp.emulator.routes.common import take_quota
from airflow_provider_mtp.emulator.state import state_of

__all__ = ["POLL_S", "hunt"]

#: How often a running query's client is looked at.
POLL_S = 0.15


async def hunt(
    request: Request, claims: dict[str, Any], api: Api, query: str, *, timespan: str | None = None
) -> HuntingOutput:
    """Run ``query`` for the caller of ``request``, as the API ``api`` answers.

    :raises ApiError: 429 over the call rate or the CPU budget; the engine's errors in API terms.
    """
    state = state_of(request)
    tenant = str(claims["tid"])
    try:
        state.quotas.cpu.check(tenant)
    except CpuQuotaExceeded as exc:
        code = "TooManyRequests" if api is Api.GRAPH else "429"
        raise ApiError(429, code, str(exc), {"Retry-After": str(exc.retry_after)}) from exc
    take_quota(request, "hunting", claims, api)
    control = QueryControl()
    running = state.hunting.submit(query, timespan=timespan, control=control)

    def charge(_: Future[HuntingOutput]) -> None:
        state.quotas.cpu.charge(tenant, control.cpu_seconds)

    running.add_done_callback(charge)
    answer = asyncio.wrap_future(running)
    try:
        while not answer.done():
            await asyncio.wait({answer}, timeout=POLL_S)
            if not answer.done() and await request.is_disconnected():
                control.stop("disconnect")
                # Interrupted at once, or dropped from the queue if it had not started.
                await asyncio.wait({answer})
    except asyncio.CancelledError:
        # Only the server's graceful shutdown running out cancels a request: stop the query and
        # answer as shut down (a 503 rather than the server's 500).
        control.stop("shutdown")
        answer.add_done_callback(_retrieved)
        raise ApiError(*_api_error(stopped_error("shutdown"))) from None
    try:
        if running.cancelled():
            raise stopped_error(control.reason or "shutdown")
        return answer.result()
    except HuntingError as exc:
        raise ApiError(*_api_error(exc)) from exc


def _api_error(error: HuntingError) -> tuple[int, str, str]:
    return error.status, error.code, error.message


def _retrieved(answer: asyncio.Future[Any]) -> None:
    """Read the outcome of an answer nobody waits for any more, so asyncio does not log it as lost."""
    if not answer.cancelled():
        answer.exception()
