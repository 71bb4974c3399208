"""The incident-matching rules the sensor, its trigger, the event trigger and the operators share.

Pure functions over Graph-shape incidents, with no hook and no Airflow: the sensor's ``poke()``
(sync hook, on a worker) and :class:`~airflow_provider_mtp.triggers.incidents.IncidentTrigger`
(async hook, on the triggerer) must reach the same answer from the same listing.
:func:`listing_query` says what to ask the hook for, :func:`match_incidents` picks the incidents of
a window, :func:`decide` says whether the wait is over, :func:`incident_summary` is what reaches
XCom, and :class:`UpdateCursor` is what an event trigger has fired for.

Times are compared as 100-ns ticks parsed from the strings the service sends (up to 7 fractional
digits, which Python's ``datetime`` would round to microseconds), and window bounds are sent with 7
fractional digits, so an update exactly on a boundary belongs to exactly one window.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal

from airflow_provider_mtp.common.ticks import instant_ticks, timestamp_ticks
from airflow_provider_mtp.windows import Window, format_instant

if TYPE_CHECKING:
    from airflow_provider_mtp.api.incident_query import IncidentQuery

__all__ = [
    "ON_EMPTY",
    "TOO_MANY",
    "Decision",
    "UpdateCursor",
    "decide",
    "describe_window",
    "incident_summary",
    "listing_query",
    "match_incidents",
]

#: What a sensor does when its window closed with fewer incidents than it needs.
ON_EMPTY = ("skip", "fail", "succeed")

#: ``error_type`` of the event fired when more incidents match than ``max_incidents``.
TOO_MANY = "TooManyIncidents"


def describe_window(window: Window, lag: timedelta | None = None) -> str:
    """``[start, end)`` with 7-digit bounds, and the lag it was shifted back by."""
    text = f"[{format_instant(window.start)}, {format_instant(window.end)})"
    if lag:
        text += f" (the run's window shifted back by lag {lag})"
    return text


def listing_query(
    query: IncidentQuery, *, window: Window | None = None, since: str | None = None
) -> IncidentQuery:
    """What to ask either hook's ``list_incidents`` for: ``query``'s service-side filters and the bounds.

    The filters applied after fetching (classification, tags) are left out: :func:`match_incidents`
    and :meth:`UpdateCursor.take_new` apply them after keeping each incident's latest copy, so an
    incident listed twice is judged by its latest update only (a hook filtering first would keep an
    older copy that still matched).

    :param query: the sensor's or trigger's query.
    :param window: ask for incidents last updated in it (``ge``/``lt`` bounds with 7 fractional
        digits, sent verbatim).
    :param since: or ask for incidents last updated at or after this OData datetime.
    """
    bounds: dict[str, Any] = {}
    if window is not None:
        bounds = {"updated_from": format_instant(window.start), "updated_before": format_instant(window.end)}
    elif since is not None:
        bounds = {"updated_from": since}
    return query.replace(classification=None, tags=None, **bounds)


def _id_order(incident_id: str) -> tuple[int, int, str]:
    # Numeric ids in numeric order, anything else after them in text order.
    return (0, int(incident_id), "") if incident_id.isdigit() else (1, 0, incident_id)


def match_incidents(
    incidents: Iterable[Mapping[str, Any]], *, window: Window, query: IncidentQuery
) -> list[dict[str, Any]]:
    """The incidents last updated in ``window``, deduplicated, filtered and sorted by (last update, id).

    The window is checked again here on 100-ns ticks, so the result is exactly half-open whatever
    the service does with the bounds. A listing walked page by page over changing data may return
    an incident twice; it is kept once, at its latest ``lastUpdateDateTime`` (a rerun would see
    only that one). The filters applied after fetching (:meth:`IncidentQuery.keeps
    <airflow_provider_mtp.api.incident_query.IncidentQuery.keeps>`) come last.

    :param incidents: Graph-shape incidents, as either hook lists them.
    :param window: the incident window (already shifted back by the lag).
    :param query: its classification and tag filters are applied.
    """
    start, end = instant_ticks(window.start), instant_ticks(window.end)
    latest: dict[str, tuple[int, str, Mapping[str, Any]]] = {}
    for incident in incidents:
        stamp = incident.get("lastUpdateDateTime")
        ticks = timestamp_ticks(stamp)
        if ticks is None or not start <= ticks < end:
            continue
        incident_id = str(incident.get("id"))
        known = latest.get(incident_id)
        if known is None or (ticks, str(stamp)) > known[:2]:
            latest[incident_id] = (ticks, str(stamp), incident)
    ordered = sorted(latest.values(), key=lambda item: (item[0], _id_order(str(item[2].get("id")))))
    return [dict(incident) for _, _, incident in ordered if query.keeps(incident)]


def incident_summary(incident: Mapping[str, Any]) -> dict[str, Any]:
    """What XCom and events carry about an incident: small, JSON, enough to act on or ``.expand`` over.

    ``(id, last_update)`` identifies one update of one incident: downstream tasks deduplicate on it.
    A redirected (merged) incident carries ``redirect_target``, the id of the incident it was merged
    into; the target itself is not fetched (its state would change the XCom of a rerun), and it is
    reported in its own right by the window of its own last update.
    """
    summary: dict[str, Any] = {
        "id": str(incident.get("id")),
        "title": incident.get("displayName"),
        "severity": incident.get("severity"),
        "status": incident.get("status"),
        "last_update": incident.get("lastUpdateDateTime"),
        "portal_url": incident.get("incidentWebUrl"),
    }
    target = incident.get("redirectIncidentId")
    if target not in (None, "", 0):
        summary["redirect_target"] = str(target)
    return summary


@dataclass(frozen=True)
class Decision:
    """Whether a sensor's wait is over, and the message that says why.

    :param outcome: ``wait`` (window still open, too few yet), ``success`` (enough match),
        ``empty`` (the window closed with too few: final) or ``too_many`` (more than
        ``max_incidents``: final).
    :param message: one line for the log or the error.
    :param count: how many incidents match.
    """

    outcome: Literal["wait", "success", "empty", "too_many"]
    message: str
    count: int

    @property
    def final(self) -> bool:
        return self.outcome != "wait"


def decide(
    count: int,
    *,
    window: Window,
    now: datetime,
    min_incidents: int,
    max_incidents: int | None,
    query: IncidentQuery,
    lag: timedelta | None = None,
) -> Decision:
    """The one rule of :class:`~airflow_provider_mtp.sensors.incidents.IncidentSensor`, in every mode.

    More than ``max_incidents`` is final at once (while the window is open, matches only grow).
    At least ``min_incidents`` succeeds. Otherwise the answer is final once ``now`` has reached
    the window's end, and the caller must have read the listing *after* taking ``now``, so a
    final answer never misses an update made before the window closed.

    :param count: incidents matching (after :func:`match_incidents`).
    :param window: the incident window (shifted back by the lag).
    :param now: the time taken before the listing was read.
    :param min_incidents: matches needed to succeed.
    :param max_incidents: matches allowed; ``None`` for no bound (results go to a file).
    :param query: its filters, for the messages.
    :param lag: for the messages.
    """
    where = f"updated in {describe_window(window, lag)} with {query.describe()}"
    if max_incidents is not None and count > max_incidents:
        return Decision(
            "too_many",
            f"{count} incidents {where} match, more than max_incidents={max_incidents}. Raise "
            "max_incidents, narrow the filters, or set output_path to write them to a file and "
            "return a manifest instead.",
            count,
        )
    if count >= min_incidents:
        return Decision("success", f"{count} incident(s) {where} match (needed {min_incidents}).", count)
    if now >= window.end:
        return Decision(
            "empty",
            f"{count} incident(s) {where} match, fewer than min_incidents={min_incidents}; the window "
            "has closed, so this is final.",
            count,
        )
    return Decision(
        "wait",
        f"window {describe_window(window)}: {count} incident(s) match, waiting for {min_incidents} "
        f"(the window closes in {window.end - now})",
        count,
    )


class UpdateCursor:
    """Which incident updates an event trigger has fired for: each ``(id, lastUpdateDateTime)`` once.

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
        self, incidents: Iterable[Mapping[str, Any]], *, query: IncidentQuery, now: int
    ) -> list[dict[str, Any]]:
        """The updates not fired yet (in (update time, id) order), remembered as fired.

        :param incidents: a listing from :meth:`query_from` on.
        :param query: its filters applied after fetching (classification, tags) are applied.
        :param now: the current time, ticks: a future-stamped update does not move ``high`` past it.
        """
        fresh: list[tuple[int, Mapping[str, Any]]] = []
        for incident in incidents:
            ticks = timestamp_ticks(incident.get("lastUpdateDateTime"))
            if ticks is None or ticks < self.start:
                continue
            key = (str(incident.get("id")), str(incident.get("lastUpdateDateTime")))
            if key in self.seen:
                continue
            self.seen[key] = ticks
            if query.keeps(incident):
                fresh.append((ticks, incident))
            self.high = max(self.high, min(ticks, now))
        horizon = self.query_from()
        self.seen = {key: ticks for key, ticks in self.seen.items() if ticks >= horizon}
        fresh.sort(key=lambda item: (item[0], _id_order(str(item[1].get("id")))))
        return [dict(incident) for _, incident in fresh]
