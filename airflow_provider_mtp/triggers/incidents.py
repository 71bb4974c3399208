"""Triggers for Defender XDR incidents: the sensor's deferral, and an event source for ``AssetWatcher``.

:class:`IncidentTrigger` is where a deferred :class:`~airflow_provider_mtp.sensors.incidents.IncidentSensor`
waits: it polls the incident listing with :class:`~airflow_provider_mtp.hooks.mtp_async.MTPAsyncHook`
on the triggerer's event loop and fires one event when the sensor's question has an answer.
:class:`IncidentEventTrigger` starts DAG runs from new or updated incidents (``AssetWatcher``).

The matching rules live here too, as pure functions, because the sensor's ``poke()`` (sync hook,
on a worker) and :meth:`IncidentTrigger.run` (async hook, on the triggerer) must reach the same
answer from the same listing: :func:`match_incidents` picks the incidents of a window,
:func:`decide` says whether the wait is over, :func:`incident_summary` is what reaches XCom.

Times are compared as 100-ns ticks parsed from the strings the service sends (up to 7 fractional
digits, which Python's ``datetime`` would round to microseconds), and window bounds are sent with 7
fractional digits, so an update exactly on a boundary belongs to exactly one window.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal

from airflow.triggers.base import BaseEventTrigger, BaseTrigger, TriggerEvent

from airflow_provider_mtp.api.raw_filter import checked_odata_filter
from airflow_provider_mtp.common.ticks import TICKS_PER_SECOND, instant_ticks, ticks_instant, timestamp_ticks
from airflow_provider_mtp.common.utc import parse_iso
from airflow_provider_mtp.errors import (
    MTPConfigError,
    MTPServiceError,
    MTPThrottledError,
    MTPTokenServiceError,
)
from airflow_provider_mtp.off_loop import import_module
from airflow_provider_mtp.windows import Window, format_instant

if TYPE_CHECKING:
    from airflow_provider_mtp.hooks.mtp_async import MTPAsyncHook

__all__ = [
    "ON_EMPTY",
    "TOO_MANY",
    "Decision",
    "IncidentEventTrigger",
    "IncidentFilters",
    "IncidentTrigger",
    "UpdateCursor",
    "decide",
    "describe_window",
    "incident_summary",
    "match_incidents",
]

#: What a sensor does when its window closed with fewer incidents than it needs.
ON_EMPTY = ("skip", "fail", "succeed")

#: ``error_type`` of the event fired when more incidents match than ``max_incidents``.
TOO_MANY = "TooManyIncidents"

# --------------------------------------------------------------------------------------------------
# Times (100-ns ticks: common/ticks.py, shared with the listing planner)
# --------------------------------------------------------------------------------------------------


def describe_window(window: Window, lag: timedelta | None = None) -> str:
    """``[start, end)`` with 7-digit bounds, and the lag it was shifted back by."""
    text = f"[{format_instant(window.start)}, {format_instant(window.end)})"
    if lag:
        text += f" (the run's window shifted back by lag {lag})"
    return text


# --------------------------------------------------------------------------------------------------
# Filters
# --------------------------------------------------------------------------------------------------


def _names(value: str | Sequence[str] | None, *, name: str) -> tuple[str, ...] | None:
    if value is None or value == "":
        return None
    values = [value] if isinstance(value, str) else list(value)
    if not all(isinstance(item, str) and item.strip() for item in values):
        raise MTPConfigError(f"{name} must be a string or a list of non-blank strings, got {value!r}")
    return tuple(item.strip() for item in values) or None


@dataclass(frozen=True, kw_only=True)
class IncidentFilters:
    """Which incidents a sensor or trigger wants, besides the time window.

    ``status``, ``severity``, ``assigned_to`` and ``odata_filter`` go to the service (the hook
    checks enum values before the first call). ``classification`` and ``tags`` are applied to
    each incident after it arrives, on both back ends alike: the legacy API cannot filter them,
    and Graph cannot filter tags.

    :param status: any of these statuses.
    :param severity: any of these severities.
    :param assigned_to: the assignee, exactly.
    :param classification: any of these classifications (either API's spelling, any case).
    :param tags: incidents carrying at least one of these tags (custom or system, any case).
    :param odata_filter: a raw ``$filter`` clause for the back end in use, ANDed with the others
        inside parentheses: its own must balance outside string literals.
    """

    status: tuple[str, ...] | None = None
    severity: tuple[str, ...] | None = None
    assigned_to: str | None = None
    classification: tuple[str, ...] | None = None
    tags: tuple[str, ...] | None = None
    odata_filter: str | None = None

    @classmethod
    def build(
        cls,
        *,
        status: str | Sequence[str] | None = None,
        severity: str | Sequence[str] | None = None,
        assigned_to: str | None = None,
        classification: str | Sequence[str] | None = None,
        tags: str | Sequence[str] | None = None,
        odata_filter: str | None = None,
    ) -> IncidentFilters:
        """Filters from operator arguments (one value or a list each), checked.

        :raises MTPConfigError: a value of the wrong type, an unknown classification, or an
            ``odata_filter`` that could escape its parentheses.
        """
        from airflow_provider_mtp.api.mapping import CLASSIFICATION

        classes = _names(classification, name="classification")
        if classes is not None:
            try:
                classes = tuple(CLASSIFICATION.require_graph(value) for value in classes)
            except ValueError as exc:
                raise MTPConfigError(str(exc)) from None
        if assigned_to is not None and not isinstance(assigned_to, str):
            raise MTPConfigError(f"assigned_to must be a string, got {assigned_to!r}")
        # Balanced parentheses, closed strings: checked here so a sensor or trigger fails before any call.
        odata_filter = checked_odata_filter(odata_filter)
        return cls(
            status=_names(status, name="status"),
            severity=_names(severity, name="severity"),
            assigned_to=assigned_to,
            classification=classes,
            tags=_names(tags, name="tags"),
            odata_filter=odata_filter,
        )

    def list_arguments(self, window: Window | None = None) -> dict[str, Any]:
        """Keyword arguments for ``list_incidents`` of either hook: the service-side filters and the window.

        Bounds are strings with 7 fractional digits, which the hooks send verbatim (``ge``/``lt``).
        """
        arguments: dict[str, Any] = {
            "status": list(self.status) if self.status else None,
            "severity": list(self.severity) if self.severity else None,
            "assigned_to": self.assigned_to,
            "odata_filter": self.odata_filter,
        }
        if window is not None:
            arguments["updated_from"] = format_instant(window.start)
            arguments["updated_before"] = format_instant(window.end)
        return arguments

    def keeps(self, incident: Mapping[str, Any]) -> bool:
        """Whether an incident passes the filters applied after fetching (classification, tags)."""
        if self.classification is not None and incident.get("classification") not in self.classification:
            return False
        if self.tags is not None:
            wanted = {tag.casefold() for tag in self.tags}
            carried = [*(incident.get("customTags") or ()), *(incident.get("systemTags") or ())]
            if not any(isinstance(tag, str) and tag.casefold() in wanted for tag in carried):
                return False
        return True

    def to_json(self) -> dict[str, Any]:
        """The filters as JSON values (lists, strings, ``None``), for trigger kwargs."""
        return {
            "status": list(self.status) if self.status else None,
            "severity": list(self.severity) if self.severity else None,
            "assigned_to": self.assigned_to,
            "classification": list(self.classification) if self.classification else None,
            "tags": list(self.tags) if self.tags else None,
            "odata_filter": self.odata_filter,
        }

    def describe(self) -> str:
        """``status=active, severity=high|medium`` or ``no filters``, for messages."""
        parts = []
        for name, value in self.to_json().items():
            if value is None:
                continue
            parts.append(f"{name}={'|'.join(value) if isinstance(value, list) else value}")
        return ", ".join(parts) if parts else "no filters"


# --------------------------------------------------------------------------------------------------
# Matching and deciding (pure: shared by IncidentSensor.poke and IncidentTrigger.run)
# --------------------------------------------------------------------------------------------------


def _id_order(incident_id: str) -> tuple[int, int, str]:
    # Numeric ids in numeric order, anything else after them in text order.
    return (0, int(incident_id), "") if incident_id.isdigit() else (1, 0, incident_id)


def match_incidents(
    incidents: Iterable[Mapping[str, Any]], *, window: Window, filters: IncidentFilters
) -> list[dict[str, Any]]:
    """The incidents last updated in ``window``, deduplicated, filtered and sorted by (last update, id).

    The window is checked again here on 100-ns ticks, so the result is exactly half-open whatever
    the service does with the bounds. A listing walked page by page over changing data may return
    an incident twice; it is kept once, at its latest ``lastUpdateDateTime`` (a rerun would see
    only that one). The filters applied after fetching come last.

    :param incidents: Graph-shape incidents, as either hook lists them.
    :param window: the incident window (already shifted back by the lag).
    :param filters: the classification and tag filters to apply.
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
    return [dict(incident) for _, _, incident in ordered if filters.keeps(incident)]


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
    filters: IncidentFilters,
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
    :param filters: for the messages.
    :param lag: for the messages.
    """
    where = f"updated in {describe_window(window, lag)} with {filters.describe()}"
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


async def _async_hook(conn_id: str, api: str | None) -> MTPAsyncHook:
    """A new async hook; its module is imported off the event loop the first time."""
    module = await import_module("airflow_provider_mtp.hooks.mtp_async")
    hook: MTPAsyncHook = module.MTPAsyncHook(mtp_conn_id=conn_id, api=api)
    return hook


class IncidentTrigger(BaseTrigger):
    """Waits, on the triggerer, for the answer of a deferred ``IncidentSensor``.

    Polls the incidents last updated in the window every ``poke_interval`` seconds with
    :class:`~airflow_provider_mtp.hooks.mtp_async.MTPAsyncHook`, applies the same rule as the
    sensor's ``poke()`` (:func:`match_incidents`, :func:`decide`) and fires one event:

    * ``{"status": "success" | "empty", "message", "window", "count", "incidents"}``; ``incidents``
      (summaries, see :func:`incident_summary`) only with ``include_incidents``;
    * ``{"status": "error", "error_type", "message"}`` when the service failed, the arguments are
      wrong, or more than ``max_incidents`` match (``error_type`` :data:`TOO_MANY`).

    The sensor's ``on_empty`` is applied by the sensor to the ``empty`` event, so both modes raise
    the same way.

    :param window_start: the run's window start (ISO 8601), before the lag shift.
    :param window_end: the run's window end (ISO 8601, excluded), before the lag shift.
    :param lag_seconds: how far back the window is shifted, for ingestion delay.
    :param mtp_conn_id: the ``mtp`` connection.
    :param api: ``graph`` or ``legacy`` to override the connection's back end.
    :param status: see :class:`IncidentFilters`.
    :param severity: see :class:`IncidentFilters`.
    :param assigned_to: see :class:`IncidentFilters`.
    :param classification: see :class:`IncidentFilters`.
    :param tags: see :class:`IncidentFilters`.
    :param odata_filter: see :class:`IncidentFilters`.
    :param min_incidents: matches needed to succeed.
    :param max_incidents: matches allowed; ``None`` for no bound.
    :param include_incidents: put the summaries in the event (``False`` when the sensor writes a
        file, which it lists again on the worker).
    :param poke_interval: seconds between polls.
    :param on_empty: the sensor's choice for a closed window with too few matches (in messages).
    """

    def __init__(
        self,
        *,
        window_start: str,
        window_end: str,
        lag_seconds: float = 300.0,
        mtp_conn_id: str = "mtp_default",
        api: str | None = None,
        status: list[str] | None = None,
        severity: list[str] | None = None,
        assigned_to: str | None = None,
        classification: list[str] | None = None,
        tags: list[str] | None = None,
        odata_filter: str | None = None,
        min_incidents: int = 1,
        max_incidents: int | None = 200,
        include_incidents: bool = True,
        poke_interval: float = 60.0,
        on_empty: str = "skip",
    ) -> None:
        super().__init__()
        self.window_start = window_start
        self.window_end = window_end
        self.lag_seconds = lag_seconds
        self.mtp_conn_id = mtp_conn_id
        self.api = api
        self.status = status
        self.severity = severity
        self.assigned_to = assigned_to
        self.classification = classification
        self.tags = tags
        self.odata_filter = odata_filter
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
                "status": self.status,
                "severity": self.severity,
                "assigned_to": self.assigned_to,
                "classification": self.classification,
                "tags": self.tags,
                "odata_filter": self.odata_filter,
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

    def _filters(self) -> IncidentFilters:
        return IncidentFilters.build(
            status=self.status,
            severity=self.severity,
            assigned_to=self.assigned_to,
            classification=self.classification,
            tags=self.tags,
            odata_filter=self.odata_filter,
        )

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
            filters = self._filters()
            self.log.info(
                "Waiting for %d incident(s) updated in %s with %s",
                self.min_incidents,
                describe_window(window, self.lag),
                filters.describe(),
            )
            while True:
                # Taken before the listing: a listing read after the window closed is complete.
                now = _utcnow()
                try:
                    listing = [
                        incident async for incident in hook.list_incidents(**filters.list_arguments(window))
                    ]
                except MTPTokenServiceError as exc:
                    # Entra ID down or throttling would end every deferred sensor of the connection
                    # at once; the next poll asks again. Credential errors still end the wait.
                    self.log.warning(
                        "Could not get a token (%s); trying again in %s s", exc, self.poke_interval
                    )
                    await asyncio.sleep(self.poke_interval)
                    continue
                matches = match_incidents(listing, window=window, filters=filters)
                decision = decide(
                    len(matches),
                    window=window,
                    now=now,
                    min_incidents=self.min_incidents,
                    max_incidents=self.max_incidents,
                    filters=filters,
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


# --------------------------------------------------------------------------------------------------
# IncidentEventTrigger
# --------------------------------------------------------------------------------------------------


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
        self, incidents: Iterable[Mapping[str, Any]], *, filters: IncidentFilters, now: int
    ) -> list[dict[str, Any]]:
        """The updates not fired yet (in (update time, id) order), remembered as fired.

        :param incidents: a listing from :meth:`query_from` on.
        :param filters: the filters applied after fetching.
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
            if filters.keeps(incident):
                fresh.append((ticks, incident))
            self.high = max(self.high, min(ticks, now))
        horizon = self.query_from()
        self.seen = {key: ticks for key, ticks in self.seen.items() if ticks >= horizon}
        fresh.sort(key=lambda item: (item[0], _id_order(str(item[1].get("id")))))
        return [dict(incident) for _, incident in fresh]


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
    with the payload of :func:`incident_summary` plus ``key`` (``"<id>@<last_update>"``). It never
    returns. Example::

        from airflow.sdk import Asset, AssetWatcher

        incidents = Asset(
            "defender_incidents",
            watchers=[AssetWatcher(name="high", trigger=IncidentEventTrigger(severity="high"))],
        )

    **Delivery is at least once.** The cursor (:class:`UpdateCursor`) lives in memory: Airflow
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
    :param status: see :class:`IncidentFilters`.
    :param severity: see :class:`IncidentFilters`.
    :param assigned_to: see :class:`IncidentFilters`.
    :param classification: see :class:`IncidentFilters`.
    :param tags: see :class:`IncidentFilters`.
    :param odata_filter: see :class:`IncidentFilters`.
    :param start: first update time of interest (ISO 8601); ``None`` for the trigger's start.
    :param lag_seconds: how long after an update's timestamp it may still show up (ingestion
        delay); each poll looks back this far behind the newest update seen.
    :param poll_interval: seconds between polls.
    """

    def __init__(
        self,
        *,
        mtp_conn_id: str = "mtp_default",
        api: str | None = None,
        status: str | list[str] | None = None,
        severity: str | list[str] | None = None,
        assigned_to: str | None = None,
        classification: str | list[str] | None = None,
        tags: str | list[str] | None = None,
        odata_filter: str | None = None,
        start: str | None = None,
        lag_seconds: float = 300.0,
        poll_interval: float = 60.0,
    ) -> None:
        super().__init__()
        self.mtp_conn_id = mtp_conn_id
        self.api = api
        self.status = status
        self.severity = severity
        self.assigned_to = assigned_to
        self.classification = classification
        self.tags = tags
        self.odata_filter = odata_filter
        self.start = start
        self.lag_seconds = lag_seconds
        self.poll_interval = poll_interval

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "mtp_conn_id": self.mtp_conn_id,
                "api": self.api,
                "status": self.status,
                "severity": self.severity,
                "assigned_to": self.assigned_to,
                "classification": self.classification,
                "tags": self.tags,
                "odata_filter": self.odata_filter,
                "start": self.start,
                "lag_seconds": self.lag_seconds,
                "poll_interval": self.poll_interval,
            },
        )

    async def _hook(self) -> MTPAsyncHook:
        return await _async_hook(self.mtp_conn_id, self.api)

    async def run(self) -> AsyncIterator[TriggerEvent]:
        """Poll forever, firing an event per new update; the hook is closed when the trigger stops."""
        filters = IncidentFilters.build(
            status=self.status,
            severity=self.severity,
            assigned_to=self.assigned_to,
            classification=self.classification,
            tags=self.tags,
            odata_filter=self.odata_filter,
        )
        start = _parse_instant(self.start, name="start") if self.start else _utcnow()
        cursor = UpdateCursor(start=instant_ticks(start), lag=int(self.lag_seconds * TICKS_PER_SECOND))
        self.log.info(
            "Watching incidents updated from %s with %s (at-least-once: deduplicate on (id, last_update))",
            format_instant(start),
            filters.describe(),
        )
        hook = await self._hook()
        try:
            while True:
                # Rounded down to the microsecond: asks a little more, never less.
                since = format_instant(ticks_instant(cursor.query_from()))
                try:
                    listing = [
                        incident
                        async for incident in hook.list_incidents(
                            **filters.list_arguments(), updated_from=since
                        )
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
                    fresh = cursor.take_new(listing, filters=filters, now=instant_ticks(_utcnow()))
                    if fresh:
                        self.log.info("%d new incident update(s) since %s", len(fresh), since)
                    for incident in fresh:
                        summary = incident_summary(incident)
                        summary["key"] = f"{summary['id']}@{summary['last_update']}"
                        yield TriggerEvent(summary)
                await asyncio.sleep(self.poll_interval)
        finally:
            await hook.close()
