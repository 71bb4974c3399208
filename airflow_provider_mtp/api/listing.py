"""Incident listings that cannot skip: the window is cut into pieces that each fit one page.

Offset paging (``$skip``, or a ``@odata.nextLink`` that carries one) reads a set that changes while
it is read. When an analyst updates an incident on page 1 while page 2 is fetched, the incident
leaves the window, every later incident moves up one place, and the one that moved onto page 1
is never returned. This module never pages: it asks for *pieces* of the window, each a box of
half-open ranges on ``createdDateTime`` and ``lastUpdateDateTime`` combined with the caller's
other filters, with ``$top`` at the back end's maximum and no ``$skip``. A piece whose page says
there is no more (Graph: no ``@odata.nextLink``; legacy: fewer than ``$top`` items) is complete.
A piece whose page is full is split into smaller pieces at values seen on that page, and they are
asked for in turn. Sans-I/O: :class:`ListingPlan` says which piece to ask for and learns from each
page; a back end describes each piece's request and reads its reply (:class:`IncidentPages`), and
:func:`run_listing` and :func:`arun_listing` run it with a sync or an async transport, so both
back ends and both hooks share one algorithm.

Why it cannot skip
------------------
Assume, as both APIs behave, that every change to an incident (status, owner, comment, merge,
new alert) stamps its ``lastUpdateDateTime`` with the time of the change, and that a new incident
is stamped with its creation time. Take a window whose end is not after the moment the listing
starts (every window of :class:`~airflow_provider_mtp.sensors.incidents.IncidentSensor` and
:class:`~airflow_provider_mtp.triggers.incidents.IncidentTrigger` is, as ``lag`` shifts it into
the past and a listing read before the window closed is not final). During the listing, an update
can only move an incident *out* of the window (to "now", past its end) and nothing can move in.
So an incident in the window when the listing ends was in it, with the same ``lastUpdateDateTime``
and ``createdDateTime``, during the whole listing. The pieces always partition the window (a split
cuts one box into boxes that cover it exactly; a remainder and the piece carved off it cover the
region they came from), so that incident lay in exactly one accepted piece for the whole listing,
in particular when that piece was fetched; and a piece is accepted only when the service returned
all of it on one page. So the incident was returned. The caller's other filters can only drop an
incident from a piece by its current values, and any change to them is an update that also moves
it out of the window. Nothing rests on the order of a page: order only makes the splits cheaper.

No duplicates: every item is yielded once per ``(id, lastUpdateDateTime)``. An incident updated
during the listing may be yielded twice only as two different updates (its old stamp, then its
new one if that is still in the window), and items from a page that turned out full are yielded at
once (they were in the window when read), so a caller that stops early pays one call per page.

A window reaching into the present (``updated_before`` after the start, or none at all, as
:class:`~airflow_provider_mtp.triggers.incidents.IncidentEventTrigger` asks) can gain incidents
while it is read: an incident updated during the listing jumps to the newest part of the window,
which may already have been read. The event trigger's cursor covers it: the next poll asks again
from ``lag`` before the newest update seen, and the listing takes seconds while ``lag`` is minutes.

What it costs
-------------
A window that fits one page costs one call, as before. A larger window of ``N`` incidents with
pages of ``top`` costs about ``N / (3/4 top)`` calls plus a few, against ``N / top`` for offset
paging: after the first full page, pieces are carved off the newest end of what is left, sized from
the density of the values seen so far to hold about three quarters of a page, so most pieces are
accepted on their first call. A piece that overflows costs one more call; when a carved piece
comes back less than half full, all that is left is asked for whole (it often fits: that is the
last call). As both APIs list newest first (their default order), the split of a full page just
above its oldest ``createdDateTime`` leaves an upper piece that surely fits; pages in any other
order are split at their median, and a run of incidents sharing one ``lastUpdateDateTime`` tick is
split by ``createdDateTime``. More than a page of incidents sharing
both ticks cannot be split by time at all: the listing fails with :class:`MTPServiceError` rather
than return part of them. Graph's ``$orderby`` is not used: it is undocumented, the default
order already makes the split above the oldest value exact, and both back ends then return a
window in the same order. Measured by ``bench/listing_calls.py``: a one-hour window of 500
incidents takes 18-19 calls on Graph (pages of 50) where offset paging took 10, and 9-10 on the
legacy API (pages of 100) where it took 6.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from itertools import pairwise
from typing import Any, Final, Literal, Protocol

from airflow_provider_mtp.api.request import ApiRequest
from airflow_provider_mtp.common.ticks import format_ticks, timestamp_ticks
from airflow_provider_mtp.errors import MTPServiceError

__all__ = [
    "MAX_CALLS",
    "AlertPasses",
    "IncidentPages",
    "ListingPlan",
    "Page",
    "Piece",
    "arun_alert_listing",
    "arun_listing",
    "awalk",
    "run_alert_listing",
    "run_listing",
    "walk",
]

#: The time fields a piece bounds.
Axis = Literal["createdDateTime", "lastUpdateDateTime"]

#: Axes in the order they are tried: both APIs list newest created first by default.
AXES: Final[tuple[Axis, ...]] = ("createdDateTime", "lastUpdateDateTime")

#: A run of items sharing one tick is set apart on the window's own axis first.
_TIE_AXES: Final[tuple[Axis, ...]] = ("lastUpdateDateTime", "createdDateTime")

#: Requests one listing may make before it gives up (a guard against a service that ignores the
#: range filters, or a window that keeps filling faster than it is read).
MAX_CALLS: Final = 5_000

#: A carved piece aims at this share of a page, so a little more than expected still fits.
_FILL: Final = 0.75


@dataclass(frozen=True, kw_only=True)
class Piece:
    """A box of the window: half-open ranges in 100-ns ticks; ``None`` leaves that side open.

    :param updated_from: ``lastUpdateDateTime ge`` this.
    :param updated_before: ``lastUpdateDateTime lt`` this.
    :param created_from: ``createdDateTime ge`` this.
    :param created_before: ``createdDateTime lt`` this.
    """

    updated_from: int | None = None
    updated_before: int | None = None
    created_from: int | None = None
    created_before: int | None = None

    def bounds(self, axis: Axis) -> tuple[int | None, int | None]:
        """``(from, before)`` on one axis."""
        if axis == "lastUpdateDateTime":
            return self.updated_from, self.updated_before
        return self.created_from, self.created_before

    def narrowed(self, axis: Axis, low: int | None, high: int | None) -> Piece:
        """The same box with new bounds on one axis."""
        if axis == "lastUpdateDateTime":
            return replace(self, updated_from=low, updated_before=high)
        return replace(self, created_from=low, created_before=high)

    @property
    def empty(self) -> bool:
        """No instant fits (a range ``[a, b)`` with ``a >= b``)."""
        return any(
            low is not None and high is not None and low >= high
            for low, high in (self.bounds(axis) for axis in AXES)
        )

    def holds(self, axis: Axis, ticks: int | None) -> bool:
        """Whether a value lies in the piece's range on ``axis``."""
        if ticks is None:
            return False
        low, high = self.bounds(axis)
        return (low is None or low <= ticks) and (high is None or ticks < high)

    def list_arguments(self) -> dict[str, Any]:
        """The bounds as ``list_incidents`` keywords: 7-digit OData literals, ``None`` when open."""
        return {
            "updated_from": _literal(self.updated_from),
            "updated_before": _literal(self.updated_before),
            "created_from": _literal(self.created_from),
            "created_before": _literal(self.created_before),
        }

    def describe(self) -> str:
        """``lastUpdateDateTime [a, b), createdDateTime [c, d)`` with open sides shown as ``...``."""
        parts = []
        for axis in _TIE_AXES:
            low, high = self.bounds(axis)
            if low is not None or high is not None:
                parts.append(f"{axis} [{_literal(low) or '...'}, {_literal(high) or '...'})")
        return ", ".join(parts) or "the whole listing"


def _literal(ticks: int | None) -> str | None:
    return None if ticks is None else format_ticks(ticks)


@dataclass(frozen=True)
class Page:
    """One piece's reply: its items in the Graph shape, and whether the service has more.

    :param items: every incident on the page (before any filter applied after fetching).
    :param more: Graph sent ``@odata.nextLink``; the legacy API filled ``$top``.
    """

    items: Sequence[Mapping[str, Any]]
    more: bool


@dataclass(frozen=True)
class _Region:
    """Part of the window still to read.

    :param piece: its box.
    :param axis: the axis to carve pieces along, from its newest end; ``None`` asks for it whole.
    :param density: incidents per tick along ``axis`` near its newest end, as last seen.
    """

    piece: Piece
    axis: Axis | None = None
    density: float = 0.0


class ListingPlan:
    """Which piece to ask for next, and what a page teaches: the I/O-free heart of a listing.

    Call :meth:`next_piece`, fetch that piece's single page, hand it to :meth:`receive` (which
    returns the items not returned before), until :meth:`next_piece` returns ``None``.

    :param window: the caller's time bounds (open sides ``None``).
    :param page_size: ``$top`` of every request.
    :param max_calls: requests allowed before the listing fails.
    """

    def __init__(self, *, window: Piece, page_size: int, max_calls: int = MAX_CALLS) -> None:
        self.window = window
        self.page_size = page_size
        self.max_calls = max_calls
        self.calls = 0
        self._target = max(1, int(page_size * _FILL))
        # A stack: the newest part of the window is on top and read first.
        self._pending: list[_Region] = [] if window.empty else [_Region(window)]
        self._asked: Piece | None = None
        # The remainder a carved piece came from, and the carved width, to learn the density.
        self._carved: tuple[_Region, int] | None = None
        self._yielded: set[tuple[str, str]] = set()

    # Asking --------------------------------------------------------------------------------------

    def next_piece(self) -> Piece | None:
        """The piece to fetch next; ``None`` when the whole window has been read.

        :raises MTPServiceError: :attr:`max_calls` requests were made without finishing.
        """
        if self._asked is not None:
            raise RuntimeError("receive() the page of the piece asked for before asking for another")
        if not self._pending:
            return None
        if self.calls >= self.max_calls:
            raise MTPServiceError(
                f"The incident listing of {self.window.describe()} made {self.calls} requests without "
                f"reading the whole window ({len(self._pending)} parts left); stopped rather than "
                "return part of it. Narrow the window or the filters, or check that the service "
                "honours the createdDateTime and lastUpdateDateTime filters."
            )
        self._asked = self._carve(self._pending.pop())
        self.calls += 1
        return self._asked

    def _carve(self, region: _Region) -> Piece:
        """The region whole, or a piece off its newest end sized to fit a page (the rest stays)."""
        piece, axis = region.piece, region.axis
        if axis is None or region.density <= 0:
            return piece
        low, high = piece.bounds(axis)
        if high is None:
            return piece
        width = max(1, int(self._target / region.density))
        if low is not None and high - low <= width + width // 4:
            return piece
        cut = high - width
        remainder = _Region(piece.narrowed(axis, low, cut), axis, region.density)
        self._pending.append(remainder)
        self._carved = (remainder, width)
        return piece.narrowed(axis, cut, high)

    # Learning ------------------------------------------------------------------------------------

    def receive(self, page: Page) -> list[dict[str, Any]]:
        """Take the page of the piece last asked for; the items not returned before.

        :param page: the reply.
        :raises MTPServiceError: a full page that no time range can split (more than a page of
            incidents sharing both timestamps, or a service that ignores the range filters).
        """
        piece, self._asked = self._asked, None
        if piece is None:
            raise RuntimeError("receive() called without a piece asked for")
        carved, self._carved = self._carved, None
        if page.more:
            self._split(piece, page.items)
        elif carved is not None:
            self._learn(piece, page.items, *carved)
        return self._new(page.items)

    def _new(self, items: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
        fresh = []
        for item in items:
            key = (str(item.get("id")), str(item.get("lastUpdateDateTime")))
            if key not in self._yielded:
                self._yielded.add(key)
                fresh.append(dict(item))
        return fresh

    def _learn(
        self, piece: Piece, items: Sequence[Mapping[str, Any]], remainder: _Region, width: int
    ) -> None:
        """A carved piece fitted: size the next one from how full it was."""
        if not self._pending or self._pending[-1] is not remainder or remainder.axis is None:
            return
        count = sum(1 for item in items if piece.holds(remainder.axis, _ticks(item, remainder.axis)))
        if count * 2 < self._target:
            # The window thins out here: ask for all that is left; if it fits, that is the end.
            self._pending[-1] = _Region(remainder.piece)
        else:
            self._pending[-1] = replace(remainder, density=count / width)

    def _split(self, piece: Piece, items: Sequence[Mapping[str, Any]]) -> None:
        """Cut a piece whose page was full into pieces that cover it exactly."""
        values = {axis: [_ticks(item, axis) for item in items] for axis in AXES}
        inside: dict[Axis, list[int]] = {
            axis: [v for v in values[axis] if v is not None and piece.holds(axis, v)] for axis in AXES
        }
        # Newest first on an axis: the page holds the top of the piece on it, so everything above
        # its oldest value was on the page and the upper piece fits for sure.
        for axis in AXES:
            seen = inside[axis]
            if len(seen) > 1 and min(seen) < max(seen) and _descending(values[axis]):
                oldest = min(seen)
                density = len(seen) / (max(seen) - oldest + 1)
                self._push_lower(_Region(_below(piece, axis, oldest + 1), axis, density))
                self._pending.append(_Region(_above(piece, axis, oldest + 1)))
                return
        # Any other order: halve at the median of what the page shows.
        for axis in AXES:
            seen = sorted(inside[axis])
            if len(seen) > 1 and seen[0] < seen[-1]:
                cut = seen[len(seen) // 2]
                if cut == seen[0]:
                    cut = next(value for value in seen if value > seen[0])
                self._push_lower(_Region(_below(piece, axis, cut)))
                self._pending.append(_Region(_above(piece, axis, cut)))
                return
        # Every item shown shares one tick on each axis: set that tick apart from the rest.
        for axis in _TIE_AXES:
            if not inside[axis]:
                continue
            tick = inside[axis][0]
            low, high = piece.bounds(axis)
            for cut in (tick, tick + 1):
                if (low is None or low < cut) and (high is None or cut < high):
                    self._push_lower(_Region(_below(piece, axis, cut)))
                    self._pending.append(_Region(_above(piece, axis, cut)))
                    return
        raise MTPServiceError(self._unsplittable(piece, items, inside))

    def _push_lower(self, region: _Region) -> None:
        """Push the lower part of a split, joined with the remainder below it when they touch."""
        if self._pending and region.axis is not None:
            below = self._pending[-1]
            joined = _joined(below.piece, region.piece, region.axis)
            if joined is not None:
                self._pending[-1] = replace(region, piece=joined)
                return
        self._pending.append(region)

    def _unsplittable(
        self, piece: Piece, items: Sequence[Mapping[str, Any]], inside: Mapping[Axis, list[int]]
    ) -> str:
        if not any(inside.values()):
            return (
                f"The incident listing asked for {piece.describe()} and got a full page of "
                f"{len(items)} incidents none of which lies in that range: the service seems to ignore "
                "the createdDateTime/lastUpdateDateTime filter. Stopped rather than return part of the "
                "window; report this to Microsoft with the request id, or list without a window."
            )
        sample = items[0]
        return (
            f"More than {self.page_size} incidents share lastUpdateDateTime "
            f"{sample.get('lastUpdateDateTime')} and createdDateTime {sample.get('createdDateTime')}, "
            f"so no time range can split them into pages ({piece.describe()}). Stopped rather than "
            "return part of them; narrow the listing with status, severity, assigned_to or "
            "odata_filter."
        )


def _ticks(item: Mapping[str, Any], axis: Axis) -> int | None:
    return timestamp_ticks(item.get(axis))


def _descending(values: Sequence[int | None]) -> bool:
    known = [value for value in values if value is not None]
    return all(a >= b for a, b in pairwise(known))


def _below(piece: Piece, axis: Axis, cut: int) -> Piece:
    return piece.narrowed(axis, piece.bounds(axis)[0], cut)


def _above(piece: Piece, axis: Axis, cut: int) -> Piece:
    return piece.narrowed(axis, cut, piece.bounds(axis)[1])


def _joined(lower: Piece, upper: Piece, axis: Axis) -> Piece | None:
    """One box for two that touch on ``axis`` (``lower`` ends where ``upper`` starts) and match elsewhere."""
    if lower.bounds(axis)[1] is None or lower.bounds(axis)[1] != upper.bounds(axis)[0]:
        return None
    if any(lower.bounds(other) != upper.bounds(other) for other in AXES if other != axis):
        return None
    return upper.narrowed(axis, lower.bounds(axis)[0], upper.bounds(axis)[1])


# Drivers ------------------------------------------------------------------------------------------


def walk(plan: ListingPlan, fetch: Callable[[Piece], Page]) -> Iterator[dict[str, Any]]:
    """Run a plan with a blocking fetch; items as each page arrives.

    :param plan: the plan.
    :param fetch: asks the service for one piece's single page.
    """
    while (piece := plan.next_piece()) is not None:
        yield from plan.receive(fetch(piece))


async def awalk(
    plan: ListingPlan, fetch: Callable[[Piece], Awaitable[Page]]
) -> AsyncIterator[dict[str, Any]]:
    """Run a plan with an async fetch; items as each page arrives.

    :param plan: the plan.
    :param fetch: asks the service for one piece's single page.
    """
    while (piece := plan.next_piece()) is not None:
        for item in plan.receive(await fetch(piece)):
            yield item


class IncidentPages(Protocol):
    """A back end's description of one incident listing: what to ask for each piece, how to read it."""

    def plan(self) -> ListingPlan:
        """A fresh plan over the listing's window."""

    def request(self, piece: Piece) -> ApiRequest:
        """The request for one piece's single page."""

    def page(self, body: Any) -> Page:
        """One decoded reply as the plan's page (items in the Graph shape, none filtered out yet)."""

    def keeps(self, incident: Mapping[str, Any]) -> bool:
        """Whether an incident passes the filters applied after fetching."""


def run_listing(listing: IncidentPages, send: Callable[[ApiRequest], Any]) -> Iterator[dict[str, Any]]:
    """A listing's incidents with a sync ``send`` (a transport's), a page at a time as you iterate.

    :param listing: the back end's description.
    :param send: sends one request and returns its decoded reply.
    """
    for incident in walk(listing.plan(), lambda piece: listing.page(send(listing.request(piece)))):
        # Filtered after the plan saw the whole page: whether a piece fits is the raw page's length.
        if listing.keeps(incident):
            yield incident


async def arun_listing(
    listing: IncidentPages, send: Callable[[ApiRequest], Awaitable[Any]]
) -> AsyncIterator[dict[str, Any]]:
    """The same listing with an async ``send``.

    :param listing: the back end's description.
    :param send: sends one request and returns its decoded reply.
    """

    async def fetch(piece: Piece) -> Page:
        return listing.page(await send(listing.request(piece)))

    async for incident in awalk(listing.plan(), fetch):
        if listing.keeps(incident):
            yield incident


# Alerts -------------------------------------------------------------------------------------------


class AlertPasses(Protocol):
    """A back end's description of an alert listing: the listings to run, and the alerts of each item.

    Graph lists ``alerts_v2`` itself (one listing whose items are the alerts); the legacy API has
    no alerts endpoint, so its listings are incident listings and each incident's embedded alerts
    are filtered. A second pass may re-read what changed while the first ran.
    """

    def listings(self) -> Iterator[IncidentPages]:
        """The listings to run in turn (a generator may decide the next once the previous is read)."""

    def alerts(self, item: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
        """The alerts of one listed item that the query asks for."""


def run_alert_listing(passes: AlertPasses, send: Callable[[ApiRequest], Any]) -> Iterator[dict[str, Any]]:
    """An alert listing with a sync ``send``: each ``(id, lastUpdateDateTime)`` once over all passes.

    :param passes: the back end's description.
    :param send: sends one request and returns its decoded reply.
    """
    seen: set[tuple[Any, Any]] = set()
    for listing in passes.listings():
        for item in run_listing(listing, send):
            yield from _unseen(passes.alerts(item), seen)


async def arun_alert_listing(
    passes: AlertPasses, send: Callable[[ApiRequest], Awaitable[Any]]
) -> AsyncIterator[dict[str, Any]]:
    """The same alert listing with an async ``send``.

    :param passes: the back end's description.
    :param send: sends one request and returns its decoded reply.
    """
    seen: set[tuple[Any, Any]] = set()
    for listing in passes.listings():
        async for item in arun_listing(listing, send):
            for alert in _unseen(passes.alerts(item), seen):
                yield alert


def _unseen(alerts: Iterator[dict[str, Any]], seen: set[tuple[Any, Any]]) -> Iterator[dict[str, Any]]:
    for alert in alerts:
        key = (alert.get("id"), alert.get("lastUpdateDateTime"))
        if key not in seen:
            seen.add(key)
            yield alert
