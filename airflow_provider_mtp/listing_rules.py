"""The matching rules of the sensors and triggers, for any listed resource (incidents, alerts).

Pure functions over Graph-shape records, with no hook and no Airflow: a sensor's ``poke()`` (sync
hook, on a worker) and its trigger (async hook, on the triggerer) must reach the same answer from
the same listing. What differs between incidents and alerts (the query class, which filters are
applied after fetching, the summary, the names in messages) is one :class:`Resource`;
:mod:`airflow_provider_mtp.incident_rules` and :mod:`airflow_provider_mtp.alert_rules` each hold
one and the names their users import.

:func:`listing_query` says what to ask the hook for, :func:`match_updates` picks the records of a
window, :func:`decide` says whether the wait is over, and :class:`UpdateCursor` is what an event
trigger has fired for.

Times are compared as 100-ns ticks parsed from the strings the service sends (up to 7 fractional
digits, which Python's ``datetime`` would round to microseconds), and window bounds are sent with 7
fractional digits, so an update exactly on a boundary belongs to exactly one window.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from airflow_provider_mtp.common.ticks import instant_ticks, timestamp_ticks
from airflow_provider_mtp.windows import Window, format_instant

if TYPE_CHECKING:
    from airflow_provider_mtp.api.query_base import ListingQuery

    Q = TypeVar("Q", bound=ListingQuery)

__all__ = [
    "ON_EMPTY",
    "Decision",
    "Resource",
    "UpdateCursor",
    "WindowQuestion",
    "decide",
    "describe_window",
    "listing_query",
    "match_updates",
]

#: What a sensor does when its window closed with fewer matches than it needs.
ON_EMPTY = ("skip", "fail", "succeed")


@dataclass(frozen=True)
class Resource:
    """What the shared sensor, triggers and rules need to know about one listed resource.

    :param kind: ``incident`` or ``alert``: messages, and the hooks' method names
        (``list_<kind>s``, ``check_<kind>_query``).
    :param query_class: the query the sensor builds and the triggers carry as JSON.
    :param local_filters: query fields applied after fetching, to each record's latest copy; left
        out of what the hook is asked for (see :func:`listing_query`).
    :param summary: what XCom and events carry about one record.
    :param stamp_key: the summary's key holding the record's last update time (event keys).
    """

    kind: str
    query_class: type[ListingQuery]
    local_filters: tuple[str, ...]
    summary: Callable[[Mapping[str, Any]], dict[str, Any]]
    stamp_key: str

    @property
    def plural(self) -> str:
        return f"{self.kind}s"

    @property
    def too_many(self) -> str:
        """``error_type`` of the event fired when more match than allowed (``TooManyIncidents``)."""
        return f"TooMany{self.plural.capitalize()}"

    @property
    def sensor(self) -> str:
        """The sensor's class name, for messages (``IncidentSensor``)."""
        return f"{self.kind.capitalize()}Sensor"

    def hook_method(self, hook: Any, verb: str) -> Any:
        """The hook's ``list_<kind>s`` (``verb="list"``) or ``check_<kind>_query`` (``"check"``)."""
        return getattr(hook, f"list_{self.plural}" if verb == "list" else f"check_{self.kind}_query")

    @property
    def min_name(self) -> str:
        """The sensors' and triggers' argument for the matches needed (``min_incidents``); the
        one for the matches allowed is ``max_<kind>s``."""
        return f"min_{self.plural}"

    @property
    def max_name(self) -> str:
        return f"max_{self.plural}"

    def event_key(self, summary: Mapping[str, Any]) -> str:
        """``<id>@<last update>``: what downstream tasks deduplicate an event trigger's events on."""
        return f"{summary['id']}@{summary[self.stamp_key]}"


def describe_window(window: Window, lag: timedelta | None = None) -> str:
    """``[start, end)`` with 7-digit bounds, and the lag it was shifted back by."""
    text = f"[{format_instant(window.start)}, {format_instant(window.end)})"
    if lag:
        text += f" (the run's window shifted back by lag {lag})"
    return text


def listing_query(
    resource: Resource, query: Q, *, window: Window | None = None, since: str | None = None
) -> Q:
    """What to ask either hook's listing for: ``query``'s service-side filters and the bounds.

    The filters applied after fetching (``resource.local_filters``) are left out:
    :func:`match_updates` and :meth:`UpdateCursor.take_new` apply them after keeping each record's
    latest copy, so a record listed twice is judged by its latest update only (a hook filtering
    first would keep an older copy that still matched).

    :param resource: which filters are applied after fetching.
    :param query: the sensor's or trigger's query.
    :param window: ask for records last updated in it (``ge``/``lt`` bounds with 7 fractional
        digits, sent verbatim).
    :param since: or ask for records last updated at or after this OData datetime.
    """
    bounds: dict[str, Any] = {}
    if window is not None:
        bounds = {"updated_from": format_instant(window.start), "updated_before": format_instant(window.end)}
    elif since is not None:
        bounds = {"updated_from": since}
    return query.replace(**dict.fromkeys(resource.local_filters), **bounds)


def _id_order(record_id: str) -> tuple[int, int, str]:
    # Numeric ids in numeric order, anything else after them in text order.
    return (0, int(record_id), "") if record_id.isdigit() else (1, 0, record_id)


def _keeps(query: Any, record: Mapping[str, Any]) -> bool:
    # Each query's keeps() applies the filters its resource leaves to after fetching.
    return bool(query.keeps(record))


def match_updates(
    records: Iterable[Mapping[str, Any]], *, window: Window, query: ListingQuery
) -> list[dict[str, Any]]:
    """The records last updated in ``window``, deduplicated, filtered and sorted by (last update, id).

    The window is checked again here on 100-ns ticks, so the result is exactly half-open whatever
    the service does with the bounds. A listing walked page by page over changing data may return
    a record twice; it is kept once, at its latest ``lastUpdateDateTime`` (a rerun would see only
    that one). The filters applied after fetching (the query's ``keeps``) come last.

    :param records: Graph-shape incidents or alerts, as either hook lists them.
    :param window: the window (already shifted back by the lag).
    :param query: its after-fetch filters are applied.
    """
    start, end = instant_ticks(window.start), instant_ticks(window.end)
    latest: dict[str, tuple[int, str, Mapping[str, Any]]] = {}
    for record in records:
        stamp = record.get("lastUpdateDateTime")
        ticks = timestamp_ticks(stamp)
        if ticks is None or not start <= ticks < end:
            continue
        record_id = str(record.get("id"))
        known = latest.get(record_id)
        if known is None or (ticks, str(stamp)) > known[:2]:
            latest[record_id] = (ticks, str(stamp), record)
    ordered = sorted(latest.values(), key=lambda item: (item[0], _id_order(str(item[2].get("id")))))
    return [dict(record) for _, _, record in ordered if _keeps(query, record)]


@dataclass(frozen=True)
class Decision:
    """Whether a sensor's wait is over, and the message that says why.

    :param outcome: ``wait`` (window still open, too few yet), ``success`` (enough match),
        ``empty`` (the window closed with too few: final) or ``too_many`` (more than the
        maximum: final).
    :param message: one line for the log or the error.
    :param count: how many records match.
    """

    outcome: Literal["wait", "success", "empty", "too_many"]
    message: str
    count: int

    @property
    def final(self) -> bool:
        return self.outcome != "wait"


def decide(
    resource: Resource,
    count: int,
    *,
    window: Window,
    now: datetime,
    minimum: int,
    maximum: int | None,
    query: ListingQuery,
    lag: timedelta | None = None,
) -> Decision:
    """The one rule of the sensors, in every mode.

    More than ``maximum`` is final at once (while the window is open, matches only grow). At least
    ``minimum`` succeeds. Otherwise the answer is final once ``now`` has reached the window's end,
    and the caller must have read the listing *after* taking ``now``, so a final answer never
    misses an update made before the window closed.

    :param resource: its names, for the messages.
    :param count: records matching (after :func:`match_updates`).
    :param window: the window (shifted back by the lag).
    :param now: the time taken before the listing was read.
    :param minimum: matches needed to succeed.
    :param maximum: matches allowed; ``None`` for no bound (results go to a file).
    :param query: its filters, for the messages.
    :param lag: for the messages.
    """
    kind, plural = resource.kind, resource.plural
    where = f"updated in {describe_window(window, lag)} with {query.describe()}"
    if maximum is not None and count > maximum:
        return Decision(
            "too_many",
            f"{count} {plural} {where} match, more than {resource.max_name}={maximum}. Raise "
            f"{resource.max_name}, narrow the filters, or set output_path to write them to a file and "
            "return a manifest instead.",
            count,
        )
    if count >= minimum:
        return Decision("success", f"{count} {kind}(s) {where} match (needed {minimum}).", count)
    if now >= window.end:
        return Decision(
            "empty",
            f"{count} {kind}(s) {where} match, fewer than {resource.min_name}={minimum}; the window "
            "has closed, so this is final.",
            count,
        )
    return Decision(
        "wait",
        f"window {describe_window(window)}: {count} {kind}(s) match, waiting for {minimum} "
        f"(the window closes in {window.end - now})",
        count,
    )


@dataclass(frozen=True)
class WindowQuestion:
    """What a sensor asks about one window, the same in ``poke()`` and in its trigger.

    :param resource: what is listed.
    :param query: the sensor's filters.
    :param window: the window (shifted back by the lag).
    :param minimum: matches needed to succeed.
    :param maximum: matches allowed; ``None`` for no bound.
    :param lag: the shift, for messages.
    """

    resource: Resource
    query: ListingQuery
    window: Window
    minimum: int
    maximum: int | None
    lag: timedelta | None = None

    def asked(self) -> ListingQuery:
        """What to hand the hook's listing (:func:`listing_query` for the window)."""
        return listing_query(self.resource, self.query, window=self.window)

    def matches(self, listing: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """The window's records of a listing of :meth:`asked` (:func:`match_updates`)."""
        return match_updates(listing, window=self.window, query=self.query)

    def answer(
        self, listing: Iterable[Mapping[str, Any]], *, now: datetime
    ) -> tuple[list[dict[str, Any]], Decision]:
        """The matches and the :func:`decide` verdict; ``now`` was taken before the listing was read."""
        found = self.matches(listing)
        verdict = decide(
            self.resource,
            len(found),
            window=self.window,
            now=now,
            minimum=self.minimum,
            maximum=self.maximum,
            query=self.query,
            lag=self.lag,
        )
        return found, verdict


class UpdateCursor:
    """Which updates an event trigger has fired for: each ``(id, lastUpdateDateTime)`` once.

    Keeps the latest update time seen (``high``, never past the clock) and the keys seen within
    ``lag`` of it; every poll asks again from ``high - lag`` (never before ``start``), so an
    update that shows up late, stamped up to ``lag`` before newer ones, is still caught. With
    ``lag`` 0 this is the classic watermark: the latest time plus the ids seen at it.

    :param start: first update time of interest, 100-ns ticks.
    :param lag: how far behind the latest update to keep looking, 100-ns ticks.
    """

    def __init__(self, *, start: int, lag: int) -> None:
        self.start = start
        self.lag = lag
        self.high = start
        self.seen: dict[tuple[str, str], int] = {}

    def query_from(self) -> int:
        """Ticks to ask from (``ge``)."""
        return max(self.start, self.high - self.lag)

    def take_new(
        self, records: Iterable[Mapping[str, Any]], *, query: ListingQuery, now: int
    ) -> list[dict[str, Any]]:
        """The updates not fired yet (in (update time, id) order), remembered as fired.

        :param records: a listing from :meth:`query_from` on.
        :param query: its filters applied after fetching (the query's ``keeps``) are applied.
        :param now: the current time, ticks: a future-stamped update does not move ``high`` past it.
        """
        fresh: list[tuple[int, Mapping[str, Any]]] = []
        for record in records:
            ticks = timestamp_ticks(record.get("lastUpdateDateTime"))
            if ticks is None or ticks < self.start:
                continue
            key = (str(record.get("id")), str(record.get("lastUpdateDateTime")))
            if key in self.seen:
                continue
            self.seen[key] = ticks
            if _keeps(query, record):
                fresh.append((ticks, record))
            self.high = max(self.high, min(ticks, now))
        horizon = self.query_from()
        self.seen = {key: ticks for key, ticks in self.seen.items() if ticks >= horizon}
        fresh.sort(key=lambda item: (item[0], _id_order(str(item[1].get("id")))))
        return [dict(record) for _, record in fresh]
