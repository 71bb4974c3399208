"""The triggers of any listed resource (incidents, alerts): a deferred sensor's wait, and an
event source for ``AssetWatcher``.

:class:`WindowTrigger` is where a deferred sensor waits: it polls the resource's listing with
:class:`~airflow_provider_mtp.hooks.mtp_async.MTPAsyncHook` on the triggerer's event loop and fires
one event when the sensor's question has an answer. :class:`UpdateEventTrigger` fires an event per
new or updated record. Subclasses (:mod:`~airflow_provider_mtp.triggers.incidents`,
:mod:`~airflow_provider_mtp.triggers.alerts`) name their
:class:`~airflow_provider_mtp.listing_rules.Resource` and their keyword arguments; the rules they
apply live in :mod:`airflow_provider_mtp.listing_rules`, shared with the sensors' ``poke()``.

The window triggers of one connection share one listing per poll round
(:mod:`~airflow_provider_mtp.triggers.poller`); each still applies its own rules to it.

Both carry which records they want as one query (``IncidentQuery``, ``AlertQuery``), serialised
as its JSON form in the ``query`` kwarg.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, ClassVar

from airflow.triggers.base import BaseEventTrigger, BaseTrigger, TriggerEvent

from airflow_provider_mtp.common.ticks import TICKS_PER_SECOND, instant_ticks, ticks_instant
from airflow_provider_mtp.common.utc import parse_iso
from airflow_provider_mtp.errors import (
    MTPConfigError,
    MTPServiceError,
    MTPThrottledError,
    MTPTokenServiceError,
)
from airflow_provider_mtp.listing_rules import (
    Decision,
    Resource,
    UpdateCursor,
    WindowQuestion,
    describe_window,
    listing_query,
)
from airflow_provider_mtp.off_loop import import_module
from airflow_provider_mtp.triggers.poller import Member, coalescing, poller_for
from airflow_provider_mtp.windows import Window, format_instant

if TYPE_CHECKING:
    from airflow_provider_mtp.api.query_base import ListingQuery
    from airflow_provider_mtp.hooks.mtp_async import MTPAsyncHook

__all__ = ["UpdateEventTrigger", "WindowTrigger", "error_event"]


def _utcnow() -> datetime:
    return datetime.now(UTC)


def parse_instant(value: str, *, name: str) -> datetime:
    """An aware datetime from an ISO 8601 kwarg.

    :raises MTPConfigError: not a time, or no time zone.
    """
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


def query_json(
    query_class: type[ListingQuery],
    query: Mapping[str, Any] | ListingQuery | None,
    filters: Mapping[str, Any],
    *,
    trigger: str,
) -> dict[str, Any]:
    """A trigger's ``query`` kwarg: ``query`` (JSON form or the object) with ``filters`` folded in.

    ``filters`` are fields of ``query_class`` given as keywords: what users write
    (``IncidentEventTrigger(severity="high")``), and what an incident trigger row serialised
    before the ``query`` kwarg holds (six filter kwargs), which Airflow passes back to
    ``__init__``. Values are only stored: they are checked when the trigger runs, where a bad one
    becomes an error event, because the triggerer fails a trigger whose ``__init__`` raises only on a
    ``TypeError`` (anything else would stop it loading the other triggers).

    :raises TypeError: a keyword that is no field of the query, or a ``query`` of the wrong type.
    """
    fields = frozenset(field.name for field in dataclasses.fields(query_class))  # type: ignore[arg-type]
    unknown = sorted(set(filters) - fields)
    if unknown:
        raise TypeError(
            f"{trigger}() got unexpected keyword argument(s) {', '.join(map(repr, unknown))}; the "
            f"filters are the fields of {query_class.__name__}: {', '.join(sorted(fields))}"
        )
    if isinstance(query, query_class):
        return {**query.to_json(), **filters}
    if query is not None and not isinstance(query, Mapping):
        raise TypeError(
            f"{trigger}() takes query as {query_class.__name__}.to_json(), got {type(query).__name__}"
        )
    return {**(query or {}), **filters}


async def async_hook(conn_id: str, api: str | None) -> MTPAsyncHook:
    """A new async hook; its module is imported off the event loop the first time."""
    module = await import_module("airflow_provider_mtp.hooks.mtp_async")
    hook: MTPAsyncHook = module.MTPAsyncHook(mtp_conn_id=conn_id, api=api)
    return hook


def transient(exc: BaseException) -> bool:
    """Failures an event trigger waits out (the hook already retried them) instead of dying on.

    Entra ID being unavailable is one (:class:`~airflow_provider_mtp.errors.MTPTokenServiceError` is
    an ``MTPServiceError``); a credential error (``MTPAuthError``) is not.
    """
    import aiohttp

    return isinstance(exc, MTPServiceError | MTPThrottledError | aiohttp.ClientError | TimeoutError)


class _Polling:
    """The hook, the clock and the pause between polls (the last two as methods a subclass may
    route elsewhere)."""

    mtp_conn_id: str
    api: str | None

    async def _hook(self) -> MTPAsyncHook:
        return await async_hook(self.mtp_conn_id, self.api)

    def _now(self) -> datetime:
        return _utcnow()

    async def _sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


async def _listing(hook: MTPAsyncHook, resource: Resource, query: ListingQuery) -> list[dict[str, Any]]:
    """One whole listing through the hook's ``list_<kind>s`` async generator."""
    return [record async for record in resource.hook_method(hook, "list")(query)]


class WindowTrigger(_Polling, BaseTrigger):
    """Waits, on the triggerer, for the answer of a deferred sensor (the base of ``IncidentTrigger``
    and ``AlertTrigger``; see theirs for the events).

    Polls the records last updated in the window every ``poke_interval`` seconds, applies the same
    rule as the sensor's ``poke()`` and fires one event: ``success`` / ``empty`` (with the window,
    the count and, with ``include``, the summaries under the resource's plural), or ``error`` (the
    service failed, the arguments are wrong, or more than ``maximum`` match: ``error_type`` the
    resource's ``too_many``). A token service outage is waited out: the next poll asks again.

    :param window_start: the run's window start (ISO 8601), before the lag shift.
    :param window_end: the run's window end (ISO 8601, excluded), before the lag shift.
    :param lag_seconds: how far back the window is shifted, for ingestion delay.
    :param mtp_conn_id: the ``mtp`` connection.
    :param api: ``graph`` or ``legacy`` to override the connection's back end.
    :param query: which records: the query's ``to_json()`` (the window sets its ``updated_*``
        bounds).
    :param poke_interval: seconds between polls.
    :param on_empty: the sensor's choice for a closed window with too few matches (in messages).
    :param filters: ``min_<kind>s`` (matches needed to succeed, default 1), ``max_<kind>s``
        (matches allowed, default 200; ``None`` for no bound), ``include_<kind>s`` (put the
        summaries in the event, default true), and the query's fields as keywords, folded into
        ``query``.
    """

    #: The resource listed; set by each subclass.
    resource: ClassVar[Resource]

    def __init__(
        self,
        *,
        window_start: str,
        window_end: str,
        lag_seconds: float = 300.0,
        mtp_conn_id: str = "mtp_default",
        api: str | None = None,
        query: Mapping[str, Any] | ListingQuery | None = None,
        poke_interval: float = 60.0,
        on_empty: str = "skip",
        **filters: Any,
    ) -> None:
        super().__init__()
        # The resource's own names (min_incidents, max_alerts, include_alerts, ...) come with the
        # filters; what is left are the query's fields.
        resource = self.resource
        self.minimum: int = filters.pop(resource.min_name, 1)
        self.maximum: int | None = filters.pop(resource.max_name, 200)
        self.include: bool = filters.pop(f"include_{resource.plural}", True)
        self.window_start = window_start
        self.window_end = window_end
        self.lag_seconds = lag_seconds
        self.mtp_conn_id = mtp_conn_id
        self.api = api
        self.query = query_json(resource.query_class, query, filters, trigger=type(self).__name__)
        self.poke_interval = poke_interval
        self.on_empty = on_empty

    def serialize(self) -> tuple[str, dict[str, Any]]:
        plural = self.resource.plural
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "window_start": self.window_start,
                "window_end": self.window_end,
                "lag_seconds": self.lag_seconds,
                "mtp_conn_id": self.mtp_conn_id,
                "api": self.api,
                "query": self.query,
                self.resource.min_name: self.minimum,
                self.resource.max_name: self.maximum,
                f"include_{plural}": self.include,
                "poke_interval": self.poke_interval,
                "on_empty": self.on_empty,
            },
        )

    @property
    def lag(self) -> timedelta:
        return timedelta(seconds=self.lag_seconds)

    @property
    def shifted_window(self) -> Window:
        """The window records are matched in: the run's window shifted back by the lag."""
        window = Window(
            parse_instant(self.window_start, name="window_start"),
            parse_instant(self.window_end, name="window_end"),
        )
        return window.shifted(-self.lag)

    async def run(self) -> AsyncIterator[TriggerEvent]:
        """Poll until the answer is known, fire one event, return; the hook is closed on every exit."""
        # The connection's window triggers list together, once per round (triggers/poller.py),
        # unless coalescing is off. Joined before the first await: triggers started together are
        # all known to the first round.
        member = poller_for(self.mtp_conn_id, self.api, self.resource).join() if coalescing() else None
        try:
            hook = await self._hook()
            try:
                event = await self._wait(hook, member)
            finally:
                # Also on cancellation (task cleared, triggerer stopping): the session must not leak.
                await hook.close()
        finally:
            if member is not None:
                member.leave()
        yield event

    async def _wait(self, hook: MTPAsyncHook, member: Member | None = None) -> TriggerEvent:
        resource = self.resource
        try:
            query = resource.query_class.from_json(self.query)
            question = WindowQuestion(
                resource, query, self.shifted_window, self.minimum, self.maximum, self.lag
            )
            asked = question.asked()
            self.log.info(
                "Waiting for %d %s(s) updated in %s with %s",
                self.minimum,
                resource.kind,
                describe_window(question.window, self.lag),
                query.describe(),
            )
            while True:
                # Taken before the listing: a listing read after the window closed is complete.
                now = self._now()
                try:
                    if member is None:
                        listing = await _listing(hook, resource, asked)
                    else:
                        listing = await member.listing(hook, asked, self.poke_interval)
                except MTPTokenServiceError as exc:
                    # Entra ID down or throttling would end every deferred sensor of the connection
                    # at once; the next poll asks again. Credential errors still end the wait.
                    self.log.warning(
                        "Could not get a token (%s); trying again in %s s", exc, self.poke_interval
                    )
                    await self._sleep(self.poke_interval)
                    continue
                matches, decision = question.answer(listing, now=now)
                if decision.final:
                    return self._event(decision, matches, question.window)
                self.log.info("%s", decision.message)
                # Not held through the sleep: a thousand waiting triggers would each keep their
                # records (and copies of the matches) between polls.
                del listing, matches
                await self._sleep(self.poke_interval)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self.log.error("%s trigger failed: %s: %s", resource.kind.capitalize(), type(exc).__name__, exc)
            return error_event(exc)

    def _event(self, decision: Decision, matches: list[dict[str, Any]], window: Window) -> TriggerEvent:
        self.log.info("%s", decision.message)
        if decision.outcome == "too_many":
            return TriggerEvent(
                {"status": "error", "error_type": self.resource.too_many, "message": decision.message}
            )
        payload: dict[str, Any] = {
            "status": "success" if decision.outcome == "success" else "empty",
            "message": decision.message,
            "window": window.as_dict(),
            "count": decision.count,
        }
        if decision.outcome == "empty":
            payload["on_empty"] = self.on_empty
        if self.include:
            payload[self.resource.plural] = [self.resource.summary(record) for record in matches]
        return TriggerEvent(payload)


class UpdateEventTrigger(_Polling, BaseEventTrigger):
    """Fires an event per new or updated record: the source of an ``AssetWatcher`` (the base of
    ``IncidentEventTrigger`` and ``AlertEventTrigger``; see theirs for the guarantees).

    Polls every ``poll_interval`` seconds for records last updated at or after ``start`` (default:
    ``lag_seconds`` before the trigger starts running) and fires one event per update, in update order, with the
    resource's summary plus ``key`` (``"<id>@<last update>"``), at least once
    (:class:`~airflow_provider_mtp.listing_rules.UpdateCursor` in memory). It never returns.
    Failures the hook already retried (:func:`transient`) are waited out; others end it.

    :param mtp_conn_id: the ``mtp`` connection.
    :param api: ``graph`` or ``legacy`` to override the connection's back end.
    :param query: which records, as the query's ``to_json()`` (or the query itself).
    :param start: first update time of interest (ISO 8601); ``None`` for ``lag_seconds`` before
        the trigger starts running.
    :param lag_seconds: how long after an update's timestamp it may still show up (ingestion
        delay); each poll looks back this far behind the newest update seen.
    :param poll_interval: seconds between polls.
    :param filters: the query's fields as keywords, folded into ``query``; checked when the
        trigger runs.
    """

    #: The resource listed; set by each subclass.
    resource: ClassVar[Resource]

    def __init__(
        self,
        *,
        mtp_conn_id: str = "mtp_default",
        api: str | None = None,
        query: Mapping[str, Any] | ListingQuery | None = None,
        start: str | None = None,
        lag_seconds: float = 300.0,
        poll_interval: float = 60.0,
        **filters: Any,
    ) -> None:
        super().__init__()
        self.mtp_conn_id = mtp_conn_id
        self.api = api
        self.query = query_json(self.resource.query_class, query, filters, trigger=type(self).__name__)
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

    async def run(self) -> AsyncIterator[TriggerEvent]:
        """Poll forever, firing an event per new update; the hook is closed when the trigger stops."""
        resource = self.resource
        query = resource.query_class.from_json(self.query)
        # Without a start, look back one lag: a restarted triggerer (or a watcher moved to another
        # one) then refires the updates of its outage, as long as the outage was shorter than the lag.
        start = (
            parse_instant(self.start, name="start")
            if self.start
            else self._now() - timedelta(seconds=self.lag_seconds)
        )
        cursor = UpdateCursor(start=instant_ticks(start), lag=int(self.lag_seconds * TICKS_PER_SECOND))
        self.log.info(
            "Watching %s updated from %s with %s (at-least-once: deduplicate on (id, %s))",
            resource.plural,
            format_instant(start),
            query.describe(),
            resource.stamp_key,
        )
        hook = await self._hook()
        try:
            while True:
                # Rounded down to the microsecond: asks a little more, never less.
                since = format_instant(ticks_instant(cursor.query_from()))
                try:
                    listing = await _listing(hook, resource, listing_query(resource, query, since=since))
                except Exception as exc:
                    if not transient(exc):
                        raise
                    self.log.warning(
                        "Listing %s failed (%s: %s); trying again in %s s",
                        resource.plural,
                        type(exc).__name__,
                        exc,
                        self.poll_interval,
                    )
                else:
                    fresh = cursor.take_new(listing, query=query, now=instant_ticks(self._now()))
                    if fresh:
                        self.log.info("%d new %s update(s) since %s", len(fresh), resource.kind, since)
                    for record in fresh:
                        summary = resource.summary(record)
                        summary["key"] = resource.event_key(summary)
                        yield TriggerEvent(summary)
                await self._sleep(self.poll_interval)
        finally:
            await hook.close()
