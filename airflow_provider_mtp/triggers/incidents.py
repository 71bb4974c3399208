"""Triggers for Defender XDR incidents: the sensor's deferral, and an event source for ``AssetWatcher``.

:class:`IncidentTrigger` is where a deferred :class:`~airflow_provider_mtp.sensors.incidents.IncidentSensor`
waits: it polls the incident listing with :class:`~airflow_provider_mtp.hooks.mtp_async.MTPAsyncHook`
on the triggerer's event loop and fires one event when the sensor's question has an answer.
:class:`IncidentEventTrigger` starts DAG runs from new or updated incidents (``AssetWatcher``).

Both carry which incidents they want as one
:class:`~airflow_provider_mtp.api.incident_query.IncidentQuery`, serialised as its JSON form in the
``query`` kwarg. The polling is :mod:`airflow_provider_mtp.triggers.listing`'s, shared with the
alert triggers; the rules it applies (:func:`~airflow_provider_mtp.incident_rules.match_incidents`,
:func:`~airflow_provider_mtp.incident_rules.decide`, ...) are shared with the sensor's ``poke()``.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from airflow_provider_mtp.incident_rules import INCIDENTS
from airflow_provider_mtp.triggers.listing import UpdateEventTrigger, WindowTrigger, error_event
from airflow_provider_mtp.windows import Window

__all__ = ["IncidentEventTrigger", "IncidentTrigger", "error_event"]


def _utcnow() -> datetime:
    return datetime.now(UTC)


class _ThisModuleClock:
    """The clock and the pause between polls read through this module's ``_utcnow`` and
    ``asyncio``: the names tests and the reliability week move to run a day in seconds."""

    def _now(self) -> datetime:
        return _utcnow()

    async def _sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


class IncidentTrigger(_ThisModuleClock, WindowTrigger):
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

    resource = INCIDENTS

    @property
    def incident_window(self) -> Window:
        """The window incidents are matched in: the run's window shifted back by the lag."""
        return self.shifted_window


class IncidentEventTrigger(_ThisModuleClock, UpdateEventTrigger):
    """Fires an event per new or updated incident: the source of an ``AssetWatcher``.

    Polls every ``poll_interval`` seconds for incidents last updated at or after ``start``
    (default: ``lag_seconds`` before the trigger starts running) and fires one event per update, in update order,
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
    triggerer) polling starts again from ``start`` (by default one ``lag_seconds`` before the
    restart) and updates already fired fire again; updates made while no triggerer ran fire then,
    unless the outage lasted longer than ``lag_seconds`` (raise it, or pass a fixed ``start``, if
    triggerers may stay down longer). Downstream tasks must deduplicate on ``(id, last_update)``
    (the ``key``). An incident updated
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
    :param start: first update time of interest (ISO 8601); ``None`` for ``lag_seconds`` before
        the trigger starts running.
    :param lag_seconds: how long after an update's timestamp it may still show up (ingestion
        delay); each poll looks back this far behind the newest update seen.
    :param poll_interval: seconds between polls.
    :param filters: the query's fields as keywords (``severity="high"``, ``status=[...]``,
        ``tags``, ...; see :class:`~airflow_provider_mtp.api.incident_query.IncidentQuery`), folded
        into ``query``; checked when the trigger runs.
    """

    resource = INCIDENTS
