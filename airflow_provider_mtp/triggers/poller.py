"""Coalesced polling: the deferred sensors of one connection list once per round, not once each.

A triggerer may hold hundreds of deferred ``IncidentSensor`` / ``AlertSensor`` waits. Polling each
on its own costs one listing per trigger per poll: 1,000 requests every 5 s against a legacy
incident budget of 50 calls a minute. Here every :class:`~airflow_provider_mtp.triggers.listing.WindowTrigger`
of the same connection, back end and resource hands its question to one :class:`Poller` per event
loop. A *round* gathers the triggers that are due (each asks when its own ``poke_interval`` has
passed), lists what they need once, and hands each its share of the records; each trigger then
applies its own rules (:class:`~airflow_provider_mtp.listing_rules.WindowQuestion`) exactly as
when it lists alone, so it fires the same event.

What a round lists, per group of triggers whose other service-side fields are equal
(``odata_filter``, creation bounds, ``include_alerts``, ``page_size``):

* the union of their windows, as few ``[start, end)`` ranges as cover it exactly (overlapping or
  touching windows are one range), each listed once by the planner of
  :mod:`airflow_provider_mtp.api.listing`;
* the enum filters and the assignee (incidents: ``status``, ``severity``, ``assigned_to``; alerts:
  those and ``service_source``, ``classification``, ``determination``) that all of them share are
  sent to the service; where they differ, the round lists without that filter and each trigger's
  values are applied to the records here, compared as the service compares them (enums in the
  Graph spelling, any case; the assignee exactly).

Each trigger's query is first checked by the back end on its own (so a bad value is its own error
event, with no call). A listing error goes to every trigger the round served, each handling it as
it does alone (an Entra ID outage is waited out, anything else is an error event); a trigger
cancelled mid-round just leaves, and the round goes on for the others.

A round starts once every trigger of the poller has asked, or when the first one to ask has waited
:data:`GATHER_SHARE` of the shortest poke interval among them (at most :data:`GATHER_SECONDS`;
:data:`GATHER_SECONDS` while a trigger that just started has not asked yet):
triggers served together sleep their interval from the same moment, so triggers of the same
interval stay in one round.

Coalescing is on by default; set ``AIRFLOW_MTP_COALESCED_POLLING=false`` in the triggerer's
environment (or :data:`COALESCING` to ``False``) for the old behaviour: one listing per trigger
per poll.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import weakref
from bisect import bisect_left
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from airflow_provider_mtp.common.ticks import timestamp_ticks

if TYPE_CHECKING:
    from airflow_provider_mtp.api.query_base import ListingQuery
    from airflow_provider_mtp.hooks.mtp_async import MTPAsyncHook
    from airflow_provider_mtp.listing_rules import Resource

__all__ = [
    "COALESCE_ENV",
    "COALESCING",
    "GATHER_SECONDS",
    "GATHER_SHARE",
    "Member",
    "Poller",
    "coalescing",
    "poller_for",
]

log = logging.getLogger(__name__)

#: The environment variable that turns coalescing off (``false``, ``0``, ``off``, ``no``).
COALESCE_ENV = "AIRFLOW_MTP_COALESCED_POLLING"
#: ``True`` / ``False`` overrides the environment variable; ``None`` reads it.
COALESCING: bool | None = None
#: The longest a round waits for the triggers due about now, once the first has asked (seconds).
GATHER_SECONDS = 1.0
#: ... and at most this share of the shortest poke interval among those waiting.
GATHER_SHARE = 0.2

#: The query fields a round may list without and apply here instead, and the record field each
#: is compared with (Graph shape).
LOCAL_ENUMS: dict[str, dict[str, str]] = {
    "incident": {"status": "status", "severity": "severity", "assigned_to": "assignedTo"},
    "alert": {
        "assigned_to": "assignedTo",
        "status": "status",
        "severity": "severity",
        "service_source": "serviceSource",
        "classification": "classification",
        "determination": "determination",
    },
}


def coalescing() -> bool:
    """Whether window triggers share one listing per round (:data:`COALESCING`, else the variable)."""
    if COALESCING is not None:
        return COALESCING
    return os.environ.get(COALESCE_ENV, "true").strip().casefold() not in {"false", "0", "off", "no"}


@dataclass(eq=False)
class Member:
    """One trigger's place in a poller, from :meth:`Poller.join` to :meth:`leave`."""

    poller: Poller
    asked_once: bool = False
    gone: bool = False

    async def listing(self, hook: MTPAsyncHook, asked: ListingQuery, interval: float) -> list[dict[str, Any]]:
        """:meth:`Poller.listing` for this trigger."""
        return await self.poller.listing(self, hook, asked, interval)

    def leave(self) -> None:
        """The trigger is done (answered, failed or cancelled); idempotent."""
        if not self.gone:
            self.gone = True
            self.poller.leave(self)


@dataclass(eq=False)
class _Ask:
    """One trigger's question in a round."""

    hook: MTPAsyncHook
    asked: ListingQuery
    interval: float
    future: asyncio.Future[list[dict[str, Any]]]


@dataclass(frozen=True)
class _Range:
    """``[start, end)`` in ticks, with the literals sent for its bounds."""

    start: int
    end: int
    start_literal: str
    end_literal: str


@dataclass(eq=False)
class Poller:
    """The rounds of one connection's, back end's and resource's window triggers in one loop.

    :param key: ``(conn_id, api, kind)``.
    :param resource: what is listed.
    """

    key: tuple[str, str | None, str]
    resource: Resource
    members: int = 0
    #: Members that have not asked yet (a round waits up to GATHER_SECONDS for them).
    newcomers: int = 0
    pending: list[_Ask] = field(default_factory=list)
    #: The last rounds' listings made through the hooks, one per range and group (each may take
    #: several requests: the emulator's stats count those); kept short, a poller may live for weeks.
    rounds: deque[int] = field(default_factory=lambda: deque(maxlen=100))
    #: Rounds run so far.
    rounds_done: int = 0
    _runner: asyncio.Task[None] | None = None
    _arrived: asyncio.Event = field(default_factory=asyncio.Event)

    def join(self) -> Member:
        """A trigger starts: call it before anything awaits, so that triggers started together
        are all known to the first round."""
        self.members += 1
        self.newcomers += 1
        return Member(self)

    def leave(self, member: Member) -> None:
        self.members -= 1
        if not member.asked_once:
            self.newcomers -= 1
        self._arrived.set()
        if self.members <= 0:
            table = _POLLERS.get(asyncio.get_running_loop())
            if table is not None and table.get(self.key) is self:
                del table[self.key]

    async def listing(
        self, member: Member, hook: MTPAsyncHook, asked: ListingQuery, interval: float
    ) -> list[dict[str, Any]]:
        """The records of the next round that ``asked`` needs (a superset of its own listing).

        :param member: the asking trigger's :meth:`join`.
        :param hook: the trigger's hook (opened here; a round lists through one of its members').
        :param asked: what the trigger would list alone (:meth:`WindowQuestion.asked`).
        :param interval: the trigger's poke interval (how long a round may gather).
        :raises Exception: the back end refusing ``asked``, or the round's listing error.
        """
        # Checked alone first: a bad value is this trigger's error, before any call.
        client = await hook.get_client()
        getattr(client.api, f"{self.resource.kind}_listing")(asked)
        if not member.asked_once:
            member.asked_once = True
            self.newcomers -= 1
        ask = _Ask(hook, asked, interval, asyncio.get_running_loop().create_future())
        self.pending.append(ask)
        self._arrived.set()
        if self._runner is None or self._runner.done():
            self._runner = asyncio.get_running_loop().create_task(self._run(), name=f"mtp-poller-{self.key}")
        # Cancelling the trigger cancels its future only; the round goes on for the others.
        return await ask.future

    async def _run(self) -> None:
        while self.pending:
            await self._gather()
            batch, self.pending = [ask for ask in self.pending if not ask.future.done()], []
            if not batch:
                continue
            calls = 0
            try:
                for group in _groups(self.resource, batch):
                    calls += await self._serve(group)
            except Exception as exc:
                # A bug here must not leave the triggers waiting forever: each fails with it.
                log.exception("Coalesced polling round failed")
                _fail(batch, exc)
            self.rounds.append(calls)
            self.rounds_done += 1

    async def _gather(self) -> None:
        loop = asyncio.get_running_loop()
        start = loop.time()
        due = min(GATHER_SECONDS, GATHER_SHARE * min(a.interval for a in self.pending))
        while len(self.pending) < self.members:
            # Triggers just started (a triggerer loading a batch) get the longest wait.
            remaining = start + (GATHER_SECONDS if self.newcomers > 0 else due) - loop.time()
            if remaining <= 0:
                return
            self._arrived.clear()
            try:
                await asyncio.wait_for(self._arrived.wait(), remaining)
            except TimeoutError:
                return

    async def _serve(self, group: list[_Ask]) -> int:
        """List the group's union once; hand each ask its records. Returns the listings made."""
        base, local = _common(self.resource, group)
        calls = 0
        records: list[dict[str, Any]] = []
        try:
            hook = next((ask.hook for ask in group if not ask.future.done()), group[0].hook)
            lister = self.resource.hook_method(hook, "list")
            for span in _union([ask.asked for ask in group]):
                query = base.replace(updated_from=span.start_literal, updated_before=span.end_literal)
                calls += 1
                records.extend([record async for record in lister(query)])
        except asyncio.CancelledError:
            for ask in group:
                ask.future.cancel()
            raise
        except Exception as exc:
            _fail(group, exc)
            return calls
        # Sorted by update time once, so each ask gets the records of its own window by bisection
        # (its rules drop the others anyway): 1,000 asks do not each scan the whole union. The sort
        # is stable: records of one tick keep the listing's order, which the rules' deduplication
        # of equal stamps relies on.
        stamped = sorted(
            (
                (ticks, record)
                for record in records
                if (ticks := timestamp_ticks(record.get("lastUpdateDateTime"))) is not None
            ),
            key=lambda item: item[0],
        )
        stamps = [ticks for ticks, _ in stamped]
        for ask in group:
            if not ask.future.done():
                span = _span(ask.asked)
                share = [
                    r for _, r in stamped[bisect_left(stamps, span.start) : bisect_left(stamps, span.end)]
                ]
                keep = local(ask)
                ask.future.set_result(share if keep is None else [r for r in share if keep(r)])
        return calls


def _fail(asks: list[_Ask], exc: Exception) -> None:
    """Hand ``exc`` to every ask still waiting (each trigger handles it as when alone)."""
    for ask in asks:
        if not ask.future.done():
            ask.future.set_exception(exc)
            # Retrieved here: the ask may be cancelled before its trigger reads it.
            ask.future.exception()


def _server_key(resource: Resource, asked: ListingQuery) -> str:
    cleared = dict.fromkeys(LOCAL_ENUMS[resource.kind])
    data = asked.replace(**cleared, updated_from=None, updated_before=None).to_json()
    return json.dumps(data, sort_keys=True)


def _groups(resource: Resource, batch: list[_Ask]) -> list[list[_Ask]]:
    groups: dict[str, list[_Ask]] = {}
    for ask in batch:
        groups.setdefault(_server_key(resource, ask.asked), []).append(ask)
    return list(groups.values())


def _common(
    resource: Resource, group: list[_Ask]
) -> tuple[ListingQuery, Callable[[_Ask], Callable[[Mapping[str, Any]], bool] | None]]:
    """The query the group lists with (shared enum filters kept) and each ask's local filter."""
    from airflow_provider_mtp.api import mapping

    fields = LOCAL_ENUMS[resource.kind]
    shared: dict[str, Any] = {}
    differing: list[str] = []
    for name in fields:
        values = {getattr(ask.asked, name) for ask in group}
        if len(values) == 1:
            shared[name] = values.pop()
        else:
            differing.append(name)
    base = group[0].asked.replace(**shared, **dict.fromkeys(differing))
    tables = {"status": mapping.INCIDENT_STATUS if resource.kind == "incident" else mapping.ALERT_STATUS}

    def local(ask: _Ask) -> Callable[[Mapping[str, Any]], bool] | None:
        wanted: list[tuple[str, frozenset[str]]] = []
        exact: list[tuple[str, str]] = []
        for name in differing:
            values = getattr(ask.asked, name)
            if values is None:
                continue
            if name == "assigned_to":
                # The service compares the assignee exactly (``assignedTo eq '...'``).
                exact.append((fields[name], values))
                continue
            table = tables.get(name) or getattr(mapping, name.upper())
            wanted.append((fields[name], frozenset(str(table.to_graph(v)).casefold() for v in values)))
        if not wanted and not exact:
            return None

        def keep(record: Mapping[str, Any]) -> bool:
            for key, allowed in wanted:
                value = record.get(key)
                if not isinstance(value, str) or value.casefold() not in allowed:
                    return False
            return all(record.get(key) == value for key, value in exact)

        return keep

    return base, local


def _span(query: ListingQuery) -> _Range:
    """A window trigger's window: the query's ``updated_*`` bounds, always both."""
    bounds = query.to_json()
    start_literal, end_literal = str(bounds["updated_from"]), str(bounds["updated_before"])
    start, end = timestamp_ticks(start_literal), timestamp_ticks(end_literal)
    if start is None or end is None:
        raise ValueError(f"a window has two bounds, got {start_literal!r}, {end_literal!r}")
    return _Range(start, end, start_literal, end_literal)


def _union(queries: list[ListingQuery]) -> list[_Range]:
    """The windows' union as the fewest ranges that cover it exactly (touching windows join)."""
    spans = [_span(query) for query in queries]
    spans.sort(key=lambda span: (span.start, span.end))
    merged: list[_Range] = []
    for span in spans:
        if merged and span.start <= merged[-1].end:
            last = merged[-1]
            if span.end > last.end:
                merged[-1] = _Range(last.start, span.end, last.start_literal, span.end_literal)
            continue
        merged.append(span)
    return merged


_POLLERS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[tuple[str, str | None, str], Poller]] = (
    weakref.WeakKeyDictionary()
)


def poller_for(conn_id: str, api: str | None, resource: Resource) -> Poller:
    """The running loop's poller for a connection, back end override and resource (made on first use)."""
    loop = asyncio.get_running_loop()
    table = _POLLERS.get(loop)
    if table is None:
        table = _POLLERS[loop] = {}
    key = (conn_id, api, resource.kind)
    poller = table.get(key)
    if poller is None:
        poller = table[key] = Poller(key=key, resource=resource)
    return poller
