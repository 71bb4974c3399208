"""Triggers for Defender XDR incidents: the sensor's deferral, and an event source for ``AssetWatcher``.

:class:`IncidentTrigger` is where a deferred :class:`~airflow_provider_mtp.sensors.incidents.IncidentSensor`
waits: it polls the incident listing with :class:`~airflow_provider_mtp.hooks.mtp_async.MTPAsyncHook`
on the triggerer's event loop and fires one event when the sensor's question has an answer.
:class:`IncidentEventTrigger` starts DAG runs from new or updated incidents (``AssetWatcher``).

Both carry which incidents they want as one
:class:`~airflow_provider_mtp.api.incident_query.IncidentQuery`, serialised as its JSON form in the
``query`` kwarg. The rules they apply (:func:`~airflow_provider_mtp.incident_rules.match_incidents`,
:func:`~airflow_provider_mtp.incident_rules.decide`, ...) live in
:mod:`airflow_provider_mtp.incident_rules`, shared with the sensor's ``poke()``.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from airflow.triggers.base import BaseEventTrigger, BaseTrigger, TriggerEvent

from airflow_provider_mtp.api.incident_query import IncidentQuery
from airflow_provider_mtp.common.ticks import TICKS_PER_SECOND, instant_ticks, ticks_instant
from airflow_provider_mtp.common.utc import parse_iso
from airflow_provider_mtp.errors import (
    MTPConfigError,
    MTPServiceError,
    MTPThrottledError,
    MTPTokenServiceError,
)
from airflow_provider_mtp.incident_rules import (
    TOO_MANY,
    Decision,
    UpdateCursor,
    decide,
    describe_window,
    incident_summary,
    listing_query,
    match_incidents,
)
from airflow_provider_mtp.off_loop import import_module
from airflow_provider_mtp.windows import Window, format_instant

if TYPE_CHECKING:
    from airflow_provider_mtp.hooks.mtp_async import MTPAsyncHook

__all__ = ["IncidentEventTrigger", "IncidentTrigger"]

# --------------------------------------------------------------------------------------------------
# IncidentTrigger
# --------------------------------------------------------------------------------------------------


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _parse_instant(value: str, *, name: str) -> datetime:
    try:
        when = parse_iso(value)
    except (AttributeError, ValueError):
        raise MTPConfigError(f"{name} must be an ISO 8601 time, got {value!r}") from None
    if when.tzinfo is None:
        raise MTPConfigError(f"{name} needs a time zone, got {value!r}")
    return when


def error_event(exc: BaseException) -> TriggerEvent:
    """The event for a failed poll: the error's class name and message (never a traceback or a secret)."""
    return TriggerEvent({"status": "error", "error_type": type(exc).__name__, "message": str(exc)})


#: The keywords a trigger takes as filters: the fields of IncidentQuery.
_QUERY_FIELDS = frozenset(field.name for field in dataclasses.fields(IncidentQuery))


def _query_json(
    query: Mapping[str, Any] | IncidentQuery | None, filters: Mapping[str, Any], *, trigger: str
) -> dict[str, Any]:
    """A trigger's ``query`` kwarg: ``query`` (JSON form or the object) with ``filters`` folded in.

    ``filters`` are :class:`IncidentQuery` fields given as keywords: what users write
    (``IncidentEventTrigger(severity="high")``), and what a trigger row serialised before the
    ``query`` kwarg holds (``status``, ``severity``, ... as six kwargs), which Airflow passes back to
    ``__init__``. Values are only stored: they are checked when the trigger runs, where a bad one
    becomes an error event, because the triggerer fails a trigger whose ``__init__`` raises only on a
    ``TypeError`` (anything else would stop it loading the other triggers).

    :raises TypeError: a keyword that is no field of the query, or a ``query`` of the wrong type.
    """
    unknown = sorted(set(filters) - _QUERY_FIELDS)
    if unknown:
        raise TypeError(
            f"{trigger}() got unexpected keyword argument(s) {', '.join(map(repr, unknown))}; the "
            f"filters are the fields of IncidentQuery: {', '.join(sorted(_QUERY_FIELDS))}"
        )
    if isinstance(query, IncidentQuery):
        return {**query.to_json(), **filters}
    if query is not None and not isinstance(query, Mapping):
        raise TypeError(f"{trigger}() takes query as IncidentQuery.to_json(), got {type(query).__name__}")
    return {**(query or {}), **filters}


async def _async_hook(conn_id: str, api: str | None) -> MTPAsyncHook:
    """A new async hook; its module is imported off the event loop the first time."""
    module = await import_module("airflow_provider_mtp.hooks.mtp_async")
    hook: MTPAsyncHook = module.MTPAsyncHook(mtp_conn_id=conn_id, api=api)
    return hook


class IncidentTrigger(BaseTrigger):
    """Waits, on the triggerer, for the answer of a deferred ``IncidentSensor``.

    Polls the incidents last updated in the window every ``poke_interval`` seconds with
    :class:`~airflow_provider_mtp.hooks.mtp_async.MTPAsyncHook`, applies the same rule as the
    sensor's ``poke()`` (:func:`~airflow_provider_mtp.incident_rules.match_incidents`,
    :func:`~airflow_provider_mtp.incident_rules.decide`) and fires one event:

    * ``{"status": "success" | "empty", "message", "window", "count", "incidents"}``; ``incidents``
      (summaries, see :func:`~airflow_provider_mtp.incident_rules.incident_summary`) only with
      ``include_incidents``;
    * ``{"status": "error", "error_type", "message"}`` when the service failed, the arguments are
      wrong, or more than ``max_incidents`` match (``error_type``
      :data:`~airflow_provider_mtp.incident_rules.TOO_MANY`).

    The sensor's ``on_empty`` is applied by the sensor to the ``empty`` event, so both modes raise
    the same way.

    :param window_start: the run's window start (ISO 8601), before the lag shift.
    :param window_end: the run's window end (ISO 8601, excluded), before the lag shift.
    :param lag_seconds: how far back the window is shifted, for ingestion delay.
    :param mtp_conn_id: the ``mtp`` connection.
    :param api: ``graph`` or ``legacy`` to override the connection's back end.
    :param query: which incidents: :meth:`IncidentQuery.to_json()
        <airflow_provider_mtp.api.incident_query.IncidentQuery.to_json>` (the window sets its
        ``updated_*`` bounds).
    :param min_incidents: matches needed to succeed.
    :param max_incidents: matches allowed; ``None`` for no bound.
    :param include_incidents: put the summaries in the event (``False`` when the sensor writes a
        file, which it lists again on the worker).
    :param poke_interval: seconds between polls.
    :param on_empty: the sensor's choice for a closed window with too few matches (in messages).
    :param filters: the query's fields as keywords, folded into ``query``: how a trigger serialised
        before the ``query`` kwarg existed (six filter kwargs) is rebuilt.
    """

    def __init__(
        self,
        *,
        window_start: str,
        window_end: str,
        lag_seconds: float = 300.0,
        mtp_conn_id: str = "mtp_default",
        api: str | None = None,
        query: Mapping[str, Any] | IncidentQuery | None = None,
        min_incidents: int = 1,
        max_incidents: int | None = 200,
        include_incidents: bool = True,
        poke_interval: float = 60.0,
        on_empty: str = "skip",
        **filters: Any,
    ) -> None:
        super().__init__()
        self.window_start = window_start
        self.window_end = window_end
        self.lag_seconds = lag_seconds
        self.mtp_conn_id = mtp_conn_id
        self.api = api
        self.query = _query_json(query, filters, trigger=type(self).__name__)
        self.min_incidents = min_incidents
        self.max_incidents = max_incidents
        self.include_incidents = include_incidents
        self.poke_interval = poke_interval
        self.on_empty = on_empty

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "window_start": self.window_start,
                "window_end": self.window_end,
                "lag_seconds": self.lag_seconds,
                "mtp_conn_id": self.mtp_conn_id,
                "api": self.api,
                "query": self.query,
                "min_incidents": self.min_incidents,
                "max_incidents": self.max_incidents,
                "include_incidents": self.include_incidents,
                "poke_interval": self.poke_interval,
                "on_empty": self.on_empty,
            },
        )

    @property
    def lag(self) -> timedelta:
        return timedelta(seconds=self.lag_seconds)

    @property
    def incident_window(self) -> Window:
        """The window incidents are matched in: the run's window shifted back by the lag."""
        window = Window(
            _parse_instant(self.window_start, name="window_start"),
            _parse_instant(self.window_end, name="window_end"),
        )
        return window.shifted(-self.lag)

    async def _hook(self) -> MTPAsyncHook:
        return await _async_hook(self.mtp_conn_id, self.api)

    async def run(self) -> AsyncIterator[TriggerEvent]:
        """Poll until the answer is known, fire one event, return; the hook is closed on every exit."""
        hook = await self._hook()
        try:
            event = await self._wait(hook)
        finally:
            # Also on cancellation (task cleared, triggerer stopping): the session must not leak.
            await hook.close()
        yield event

    async def _wait(self, hook: MTPAsyncHook) -> TriggerEvent:
        try:
            window = self.incident_window
            query = IncidentQuery.from_json(self.query)
            asked = listing_query(query, window=window)
            self.log.info(
                "Waiting for %d incident(s) updated in %s with %s",
                self.min_incidents,
                describe_window(window, self.lag),
                query.describe(),
            )
            while True:
                # Taken before the listing: a listing read after the window closed is complete.
                now = _utcnow()
                try:
                    listing = [incident async for incident in hook.list_incidents(asked)]
                except MTPTokenServiceError as exc:
                    # Entra ID down or throttling would end every deferred sensor of the connection
                    # at once; the next poll asks again. Credential errors still end the wait.
                    self.log.warning(
                        "Could not get a token (%s); trying again in %s s", exc, self.poke_interval
                    )
                    await asyncio.sleep(self.poke_interval)
                    continue
                matches = match_incidents(listing, window=window, query=query)
                decision = decide(
                    len(matches),
                    window=window,
                    now=now,
                    min_incidents=self.min_incidents,
                    max_incidents=self.max_incidents,
                    query=query,
                    lag=self.lag,
                )
                if decision.final:
                    return self._event(decision, matches, window)
                self.log.info("%s", decision.message)
                await asyncio.sleep(self.poke_interval)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self.log.error("Incident trigger failed: %s: %s", type(exc).__name__, exc)
            return error_event(exc)

    def _event(self, decision: Decision, matches: list[dict[str, Any]], window: Window) -> TriggerEvent:
        self.log.info("%s", decision.message)
        if decision.outcome == "too_many":
            return TriggerEvent({"status": "error", "error_type": TOO_MANY, "message": decision.message})
        payload: dict[str, Any] = {
            "status": "success" if decision.outcome == "success" else "empty",
            "message": decision.message,
            "window": window.as_dict(),
            "count": decision.count,
        }
        if decision.outcome == "empty":
            payload["on_empty"] = self.on_empty
        if self.include_incidents:
            payload["incidents"] = [incident_summary(incident) for incident in matches]
        return TriggerEvent(payload)


def _transient(exc: BaseException) -> bool:
    """Failures an event trigger waits out (the hook already retried them) instead of dying on.

    Entra ID being unavailable is one (:class:`~airflow_provider_mtp.errors.MTPTokenServiceError` is
    an ``MTPServiceError``); a credential error (``MTPAuthError``) is not.
    """
    import aiohttp

    return isinstance(exc, MTPServiceError | MTPThrottledError | aiohttp.ClientError | TimeoutError)


class IncidentEventTrigger(BaseEventTrigger):
    """Fires an event per new or updated incident: the source of an ``AssetWatcher``.

    Polls every ``poll_interval`` seconds for incidents last updated at or after ``start``
    (default: when the trigger starts running) and fires one event per update, in update order,
    with the payload of :func:`~airflow_provider_mtp.incident_rules.incident_summary` plus ``key``
    (``"<id>@<last_update>"``). It never returns. Example::

        from airflow.sdk import Asset, AssetWatcher

        incidents = Asset(
            "defender_incidents",
            watchers=[AssetWatcher(name="high", trigger=IncidentEventTrigger(severity="high"))],
        )

    **Delivery is at least once.** The cursor
    (:class:`~airflow_provider_mtp.incident_rules.UpdateCursor`) lives in memory: Airflow
    keeps no cursor for event triggers, so after a triggerer restart (or a move to another
    triggerer) polling starts again from ``start`` and updates already fired fire again.
    Downstream tasks must deduplicate on ``(id, last_update)`` (the ``key``). An incident updated
    twice between polls fires once, for its latest update. (Airflow 3.3 hands event triggers of
    watched assets an ``asset_state_store``; the cursor is not kept there, because a cursor saved
    right after an event is yielded may be ahead of that event being stored, which would turn
    at-least-once into at-most-once after a crash.)

    The keyword arguments identify the trigger (Airflow hashes them to tell watchers apart): keep
    them constant; in particular do not pass "now" as ``start``.

    :param mtp_conn_id: the ``mtp`` connection.
    :param api: ``graph`` or ``legacy`` to override the connection's back end.
    :param query: which incidents, as :meth:`IncidentQuery.to_json()
        <airflow_provider_mtp.api.incident_query.IncidentQuery.to_json>` (or the query itself).
    :param start: first update time of interest (ISO 8601); ``None`` for the trigger's start.
    :param lag_seconds: how long after an update's timestamp it may still show up (ingestion
        delay); each poll looks back this far behind the newest update seen.
    :param poll_interval: seconds between polls.
    :param filters: the query's fields as keywords (``severity="high"``, ``status=[...]``,
        ``tags``, ...; see :class:`~airflow_provider_mtp.api.incident_query.IncidentQuery`), folded
        into ``query``; checked when the trigger runs.
    """

    def __init__(
        self,
        *,
        mtp_conn_id: str = "mtp_default",
        api: str | None = None,
        query: Mapping[str, Any] | IncidentQuery | None = None,
        start: str | None = None,
        lag_seconds: float = 300.0,
        poll_interval: float = 60.0,
        **filters: Any,
    ) -> None:
        super().__init__()
        self.mtp_conn_id = mtp_conn_id
        self.api = api
        self.query = _query_json(query, filters, trigger=type(self).__name__)
        self.start = start
        self.lag_seconds = lag_seconds
        self.poll_interval = poll_interval

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "mtp_conn_id": self.mtp_conn_id,
                "api": self.api,
                "query": self.query,
                "start": self.start,
                "lag_seconds": self.lag_seconds,
                "poll_interval": self.poll_interval,
            },
        )

    async def _hook(self) -> MTPAsyncHook:
        return await _async_hook(self.mtp_conn_id, self.api)

    async def run(self) -> AsyncIterator[TriggerEvent]:
        """Poll forever, firing an event per new update; the hook is closed when the trigger stops."""
        query = IncidentQuery.from_json(self.query)
        start = _parse_instant(self.start, name="start") if self.start else _utcnow()
        cursor = UpdateCursor(start=instant_ticks(start), lag=int(self.lag_seconds * TICKS_PER_SECOND))
        self.log.info(
            "Watching incidents updated from %s with %s (at-least-once: deduplicate on (id, last_update))",
            format_instant(start),
            query.describe(),
        )
        hook = await self._hook()
        try:
            while True:
                # Rounded down to the microsecond: asks a little more, never less.
                since = format_instant(ticks_instant(cursor.query_from()))
                try:
                    listing = [
                        incident async for incident in hook.list_incidents(listing_query(query, since=since))
                    ]
                except Exception as exc:
                    if not _transient(exc):
                        raise
                    self.log.warning(
                        "Listing incidents failed (%s: %s); trying again in %s s",
                        type(exc).__name__,
                        exc,
                        self.poll_interval,
                    )
                else:
                    fresh = cursor.take_new(listing, query=query, now=instant_ticks(_utcnow()))
                    if fresh:
                        self.log.info("%d new incident update(s) since %s", len(fresh), since)
                    for incident in fresh:
                        summary = incident_summary(incident)
                        summary["key"] = f"{summary['id']}@{summary['last_update']}"
                        yield TriggerEvent(summary)
                await asyncio.sleep(self.poll_interval)
        finally:
            await hook.close()
