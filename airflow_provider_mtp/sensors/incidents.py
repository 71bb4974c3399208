"""IncidentSensor: wait for Defender XDR incidents updated in the run's window.

The sensor's window is the run's window (explicit ``start``/``end``, else the data interval, else
``lookback``; see :mod:`airflow_provider_mtp.windows`) shifted back by ``lag``, the time an update
may take to show up in the API. Incidents whose ``lastUpdateDateTime`` falls in that half-open
window match. Consecutive runs of an interval schedule tile time with no gap and no overlap, so an
update lands in exactly one run, provided it is still the incident's last update when that run
reads the window (the API only shows the latest state: an incident updated again later moves to
the later run's window, and a rerun of the earlier run no longer reports it).

``mode="poke"``, ``mode="reschedule"`` and ``deferrable=True`` ask one
:class:`~airflow_provider_mtp.api.incident_query.IncidentQuery` (checked once against the back end
in use) and apply one rule (:func:`~airflow_provider_mtp.incident_rules.decide`) to one matching
function (:func:`~airflow_provider_mtp.incident_rules.match_incidents`), so they return the same
XCom and raise the same exceptions. The machinery is :class:`~airflow_provider_mtp.sensors.listing.ListingSensor`,
shared with :class:`~airflow_provider_mtp.sensors.alerts.AlertSensor`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from airflow_provider_mtp.api.incident_query import FILTERS
from airflow_provider_mtp.incident_rules import INCIDENTS
from airflow_provider_mtp.sensors.listing import ListingSensor
from airflow_provider_mtp.triggers.incidents import IncidentTrigger

__all__ = ["IncidentSensor"]


def _utcnow() -> datetime:
    """The time a poke decides by (a function, so tests can move the clock)."""
    return datetime.now(UTC)


class IncidentSensor(ListingSensor):
    """Wait until enough incidents were updated in the run's window; return their summaries.

    **Window.** Incidents whose ``lastUpdateDateTime`` falls in ``[window.start - lag,
    window.end - lag)``, where the window is ``start``/``end`` if given, else the run's data
    interval, else ``lookback`` ending at the run's time. The bounds are sent as ``ge``/``lt`` with
    7 fractional digits and checked again on 100-ns ticks, so an update exactly on a boundary
    belongs to the later window only. Use a schedule with real data intervals
    (``CronDataIntervalTimetable``, ``DeltaDataIntervalTimetable``; with Airflow 3.3's defaults a
    ``timedelta``, ``@hourly`` or cron schedule gives zero-width ones) for consecutive runs that
    tile time; manual runs need ``lookback`` or ``start``/``end``.

    **Answer.** The sensor succeeds as soon as ``min_incidents`` match. Once the shifted window
    end has passed and fewer match, the answer is final and ``on_empty`` decides: ``skip``
    (default) skips the task, ``fail`` fails it with an error naming the window and filters (no
    retries: retrying asks the same question), ``succeed`` returns what matched (possibly
    nothing). While the window is still open the sensor keeps poking. A success before the window
    closed returns the matches seen so far.

    **XCom.** A list of incident summaries ``{"id", "title", "severity", "status",
    "last_update", "portal_url"}`` sorted by (last update, id), ready for ``.expand``; at most
    ``max_incidents`` (more fails, saying to raise it or set ``output_path``). An incident listed
    twice (updated while the list was paged) is reported once, at its latest update. Downstream
    tasks can deduplicate on ``(id, last_update)``. A redirected (merged) incident carries
    ``redirect_target``, the id of the incident it was merged into; the target is not fetched (its
    summary would make reruns differ) and appears in the run whose window holds its own last update.

    With ``output_path``, every matching incident (Graph shape) is written there as JSON Lines and
    the XCom is a manifest ``{"path", "rows", "window": {"start", "end"}}`` instead, with no bound.

    **Modes.** ``mode="poke"`` and ``mode="reschedule"`` poke on a worker; ``deferrable=True``
    waits in :class:`~airflow_provider_mtp.triggers.incidents.IncidentTrigger` on the triggerer
    (it defers at once, without a first poke on the worker). All three apply the same rule and
    return the same XCom and errors. With ``output_path`` the deferred sensor lists the window
    again on the worker to write the file.

    **Values.** ``status``, ``severity`` and ``classification`` take strings in either API's
    spelling or the enums of :mod:`airflow_provider_mtp.enums` (``severity=Severity.HIGH``).

    :param mtp_conn_id: the ``mtp`` connection (templated).
    :param api: ``graph`` or ``legacy`` to override the connection's back end.
    :param status: one status or several (``active``, ``inProgress``, ``resolved``, ``redirected``),
        filtered by the service.
    :param severity: one severity or several (``informational``, ``low``, ``medium``, ``high``);
        filtered by the service on Graph, after fetching on the legacy API.
    :param assigned_to: the assignee's user principal name, filtered by the service.
    :param classification: one classification or several (``truePositive``, ``falsePositive``,
        ``informationalExpectedActivity``, ``unknown``); filtered after fetching on both back ends.
    :param tags: incidents carrying at least one of these tags (custom or system tags, any case);
        filtered after fetching on both back ends.
    :param odata_filter: a raw ``$filter`` clause ANDed to the others. It is specific to the back
        end it is written for (Graph field names; the legacy API knows only ``lastUpdateTime``,
        ``createdTime``, ``status`` and ``assignedTo``).
    :param start: explicit window start (datetime or ISO 8601, templated); needs ``end``.
    :param end: explicit window end, excluded (templated); needs ``start``.
    :param lookback: window length ending at the run's time when the run has no data interval
        (timedelta or seconds, templated).
    :param lag: how far the window is shifted back, for ingestion delay (timedelta or seconds).
    :param min_incidents: matches needed to succeed (at least 1).
    :param on_empty: ``skip``, ``fail`` or ``succeed`` when the window closed with fewer matches.
    :param max_incidents: most summaries returned in XCom; more fails (ignored with ``output_path``).
    :param output_path: write the matches to this local path or object storage URI as JSON Lines
        and return a manifest (templated).
    :param deferrable: wait on the triggerer instead of a worker.
    :param poke_interval: seconds (or a timedelta) between polls, in every mode.
    :param mode: ``poke`` or ``reschedule`` (when not deferrable).
    """

    resource = INCIDENTS
    trigger_class = IncidentTrigger

    min_incidents: int
    max_incidents: int

    def __init__(
        self,
        *,
        status: str | Sequence[str] | None = None,
        severity: str | Sequence[str] | None = None,
        assigned_to: str | None = None,
        classification: str | Sequence[str] | None = None,
        tags: str | Sequence[str] | None = None,
        odata_filter: str | None = None,
        min_incidents: int = 1,
        max_incidents: int = 200,
        **kwargs: Any,
    ) -> None:
        given = locals()  # the filter arguments, named once: by the query's list of its filters
        filters = {name: given[name] for name in FILTERS}
        super().__init__(filters=filters, minimum=min_incidents, maximum=max_incidents, **kwargs)

    def _now(self) -> datetime:
        # This module's clock, which tests move.
        return _utcnow()
