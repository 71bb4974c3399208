"""AlertSensor: wait for Defender XDR alerts updated in the run's window.

The alert twin of :class:`~airflow_provider_mtp.sensors.incidents.IncidentSensor`, on the same
machinery (:class:`~airflow_provider_mtp.sensors.listing.ListingSensor`): the same window, ``lag``,
tiling, modes, ``on_empty`` and output, over ``list_alerts`` and an
:class:`~airflow_provider_mtp.api.alert_query.AlertQuery`. On the legacy back end (no alerts
endpoint) the hook lists the alerts embedded in the incidents, by each alert's own update time.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from airflow_provider_mtp.alert_rules import ALERTS
from airflow_provider_mtp.api.alert_query import ALERT_FILTERS
from airflow_provider_mtp.sensors.listing import ListingSensor
from airflow_provider_mtp.triggers.alerts import AlertTrigger

__all__ = ["AlertSensor"]


class AlertSensor(ListingSensor):
    """Wait until enough alerts were updated in the run's window; return their summaries.

    **Window.** An alert matches when its own ``lastUpdateDateTime`` lies in ``[window.start -
    lag, window.end - lag)``; the window is ``start``/``end`` when given, else the run's data
    interval, else ``lookback`` up to the run's time. Bounds carry 7 fractional digits and are
    checked again on 100-ns ticks: an update exactly on a boundary goes to the later window, so
    consecutive runs of a data-interval schedule (``CronDataIntervalTimetable``,
    ``DeltaDataIntervalTimetable``) report each ``(id, lastUpdateDateTime)`` once. An alert
    updated again later moves to the later run (the API shows only the latest state).

    **Answer.** Success as soon as ``min_alerts`` match; once the shifted window has closed with
    fewer, ``on_empty`` decides: ``skip`` (default), ``fail`` (no retries: it would ask the same
    question) or ``succeed`` (returns what matched, maybe nothing). More than ``max_alerts`` fails
    at once, saying to raise it or set ``output_path``.

    **XCom.** A list of :func:`~airflow_provider_mtp.alert_rules.alert_summary` dicts (``id``,
    ``incidentId``, ``title``, ``severity``, ``status``, ``classification``, ``determination``,
    ``serviceSource``, ``detectionSource``, ``assignedTo``, ``createdDateTime``,
    ``lastUpdateDateTime``, ``alertWebUrl``) sorted by (last update, id), ready for ``.expand``.
    With ``output_path`` the whole alerts (Graph ``alerts_v2`` shape, evidence included) go to
    that file as JSON Lines and the XCom is ``{"path", "rows", "window": {"start", "end"}}``.

    **Modes.** ``mode="poke"``, ``mode="reschedule"`` and ``deferrable=True`` (waiting in
    :class:`~airflow_provider_mtp.triggers.alerts.AlertTrigger`) give the same XCom and the same
    errors.

    **Filters** (templated; strings in either API's spelling, or the enums of
    :mod:`airflow_provider_mtp.enums`: ``AlertStatus``, ``Severity``, ``ServiceSource``,
    ``DetectionSource``, ``Classification``, ``Determination``):

    :param status: ``new``, ``inProgress``, ``resolved`` (one or several).
    :param severity: ``informational``, ``low``, ``medium``, ``high``.
    :param service_source: the product that raised the alert (``microsoftDefenderForEndpoint``, ...).
    :param detection_source: the detector (``antivirus``, ...); applied after fetching.
    :param classification: ``truePositive``, ``falsePositive``, ``informationalExpectedActivity``,
        ``unknown``.
    :param determination: e.g. ``malware``, ``phishing``, ``securityTesting``.
    :param assigned_to: the assignee's user principal name.
    :param incident_id: only the alerts of this incident; applied after fetching.
    :param odata_filter: a raw Graph ``$filter`` clause for ``alerts_v2``, ANDed to the others
        (the legacy API refuses one).
    :param mtp_conn_id: the ``mtp`` connection (templated).
    :param api: ``graph`` or ``legacy`` to override the connection's back end.
    :param start: explicit window start (datetime or ISO 8601, templated); needs ``end``.
    :param end: explicit window end, excluded (templated).
    :param lookback: window length for runs without a data interval (timedelta or seconds).
    :param lag: how far the window is shifted back (default 5 minutes).
    :param min_alerts: matches needed to succeed (at least 1).
    :param on_empty: ``skip``, ``fail`` or ``succeed``.
    :param max_alerts: most summaries in XCom (default 200; ignored with ``output_path``).
    :param output_path: local path or object storage URI for a JSON Lines file (templated).
    :param deferrable: wait on the triggerer.
    :param poke_interval: seconds (or a timedelta) between polls.
    :param mode: ``poke`` or ``reschedule``.
    """

    resource = ALERTS
    trigger_class = AlertTrigger
    ui_color = "#d13438"

    min_alerts: int
    max_alerts: int

    def __init__(
        self,
        *,
        status: str | Sequence[str] | None = None,
        severity: str | Sequence[str] | None = None,
        service_source: str | Sequence[str] | None = None,
        detection_source: str | Sequence[str] | None = None,
        classification: str | Sequence[str] | None = None,
        determination: str | Sequence[str] | None = None,
        assigned_to: str | None = None,
        incident_id: str | int | None = None,
        odata_filter: str | None = None,
        min_alerts: int = 1,
        max_alerts: int = 200,
        **kwargs: Any,
    ) -> None:
        given = locals()  # the filter arguments, named once: by the query's list of its filters
        filters = {name: given[name] for name in ALERT_FILTERS}
        super().__init__(filters=filters, minimum=min_alerts, maximum=max_alerts, **kwargs)
