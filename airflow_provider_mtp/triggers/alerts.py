"""Triggers for Defender XDR alerts: ``AlertSensor``'s deferral, and an event source for ``AssetWatcher``.

The alert twins of :mod:`airflow_provider_mtp.triggers.incidents`, on the same machinery
(:mod:`airflow_provider_mtp.triggers.listing`): they list alerts (``list_alerts`` of
:class:`~airflow_provider_mtp.hooks.mtp_async.MTPAsyncHook`) instead of incidents and carry an
:class:`~airflow_provider_mtp.api.alert_query.AlertQuery` as the JSON ``query`` kwarg. On the
legacy back end, alerts come from the incidents' embedded alerts.
"""

from __future__ import annotations

from airflow_provider_mtp.alert_rules import ALERTS
from airflow_provider_mtp.triggers.listing import UpdateEventTrigger, WindowTrigger

__all__ = ["AlertEventTrigger", "AlertTrigger"]


class AlertTrigger(WindowTrigger):
    """Where a deferred :class:`~airflow_provider_mtp.sensors.alerts.AlertSensor` waits.

    Every ``poke_interval`` seconds it lists the alerts last updated in the run's window (shifted
    back by the lag) and applies the sensor's own rule; when the answer is known it fires one event
    and returns. Events:

    * ``{"status": "success" | "empty", "message", "window", "count", "alerts"}``, with ``alerts``
      (each an :func:`~airflow_provider_mtp.alert_rules.alert_summary`) when ``include_alerts``;
    * ``{"status": "error", "error_type", "message"}`` for a failed call, a bad argument, or more
      matches than ``max_alerts`` (``error_type`` ``"TooManyAlerts"``). Entra ID being down is
      waited out, not reported.

    All of its keyword arguments are JSON values: ``query`` is ``AlertQuery.to_json()`` (or the
    query itself, or its fields as keywords), and the window is two ISO 8601 strings.

    :param min_alerts: matches needed to succeed.
    :param max_alerts: matches allowed; ``None`` for no bound.
    :param include_alerts: put the summaries in the event (``False`` when the sensor writes a file).
    The other keyword arguments (``window_start``, ``window_end``, ``lag_seconds``,
    ``mtp_conn_id``, ``api``, ``query``, ``poke_interval``, ``on_empty``) are
    :class:`~airflow_provider_mtp.triggers.listing.WindowTrigger`'s.
    """

    resource = ALERTS


class AlertEventTrigger(UpdateEventTrigger):
    """One event per new or updated alert, for an ``AssetWatcher``.

    The payload is :func:`~airflow_provider_mtp.alert_rules.alert_summary` plus ``key``
    (``"<id>@<lastUpdateDateTime>"``); the trigger polls every ``poll_interval`` seconds, from
    ``start`` (default: ``lag_seconds`` before it starts running), looking ``lag_seconds`` behind the newest update
    seen for alerts that show up late, and never returns::

        from airflow.sdk import Asset, AssetWatcher

        alerts = Asset(
            "defender_high_alerts",
            watchers=[AssetWatcher(name="high", trigger=AlertEventTrigger(severity="high"))],
        )

    **At least once.** What it fired lives in memory only, so a triggerer restart fires recent
    updates again (and those made while it was down, if that was shorter than ``lag_seconds``):
    deduplicate downstream on ``(id, lastUpdateDateTime)``. An alert updated twice
    between polls fires once, for its latest update. Keep the keyword arguments constant (Airflow
    tells watchers apart by them): never pass "now" as ``start``.

    :param mtp_conn_id: the ``mtp`` connection.
    :param api: ``graph`` or ``legacy`` to override the connection's back end.
    :param query: ``AlertQuery.to_json()`` or the query; or give its fields as keywords
        (``severity="high"``, ``service_source=[...]``), checked when the trigger runs.
    :param start: first update time of interest (ISO 8601); ``None`` for ``lag_seconds`` before
        the trigger starts running.
    :param lag_seconds: ingestion delay to keep looking back over.
    :param poll_interval: seconds between polls.
    """

    resource = ALERTS
