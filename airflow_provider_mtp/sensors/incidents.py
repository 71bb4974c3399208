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
XCom and raise the same exceptions.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseSensorOperator, PokeReturnValue
from airflow.sdk.configuration import conf
from airflow.sdk.exceptions import AirflowException, AirflowFailException, AirflowSkipException

from airflow_provider_mtp import errors
from airflow_provider_mtp.api.incident_query import FILTERS, IncidentQuery
from airflow_provider_mtp.common.utc import parse_iso, plain_utc
from airflow_provider_mtp.errors import MTPConfigError
from airflow_provider_mtp.incident_rules import (
    ON_EMPTY,
    TOO_MANY,
    decide,
    incident_summary,
    listing_query,
    match_incidents,
)
from airflow_provider_mtp.triggers.incidents import IncidentTrigger
from airflow_provider_mtp.windows import Window, resolve_window

if TYPE_CHECKING:
    from airflow.sdk import Context

    from airflow_provider_mtp.hooks.mtp import MTPHook

__all__ = ["IncidentSensor"]

#: The sensor's filter arguments, which it keeps as (templated) attributes of the same name: the
#: fields of IncidentQuery but the time bounds (the run's window sets them) and the reply's shape
#: (``include_alerts``, ``page_size``: the sensor returns summaries).


def _seconds(value: Any, *, name: str) -> timedelta | None:
    """A timedelta from a timedelta or a number of seconds (a rendered template gives a string)."""
    if value is None or value == "":
        return None
    if isinstance(value, timedelta):
        return value
    if isinstance(value, bool):
        raise MTPConfigError(f"{name} must be a timedelta or a number of seconds, got {value!r}")
    try:
        return timedelta(seconds=float(value))
    except (TypeError, ValueError):
        raise MTPConfigError(f"{name} must be a timedelta or a number of seconds, got {value!r}") from None


def _plain_times(context: Mapping[str, Any]) -> dict[str, Any]:
    """The context's run times as stdlib datetimes, for :func:`resolve_window`.

    The context holds pendulum ``DateTime`` values; once moved to the stdlib UTC tzinfo their
    arithmetic drops the time zone (``Window.shifted`` and a ``lookback`` would then fail).
    """
    dag_run = context.get("dag_run")
    logical = context.get("logical_date") or getattr(dag_run, "run_after", None)
    return {
        name: plain_utc(value) if isinstance(value, datetime) else value
        for name, value in (
            ("data_interval_start", context.get("data_interval_start")),
            ("data_interval_end", context.get("data_interval_end")),
            ("logical_date", logical),
        )
    }


def _utcnow() -> datetime:
    """The time a poke decides by (a function, so tests can move the clock)."""
    return datetime.now(UTC)


class IncidentSensor(BaseSensorOperator):
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

    template_fields: Sequence[str] = (
        "start",
        "end",
        "lookback",
        *FILTERS,
        "output_path",
        "mtp_conn_id",
    )
    ui_color = "#0078d4"

    def __init__(
        self,
        *,
        mtp_conn_id: str = "mtp_default",
        api: str | None = None,
        status: str | Sequence[str] | None = None,
        severity: str | Sequence[str] | None = None,
        assigned_to: str | None = None,
        classification: str | Sequence[str] | None = None,
        tags: str | Sequence[str] | None = None,
        odata_filter: str | None = None,
        start: datetime | str | None = None,
        end: datetime | str | None = None,
        lookback: timedelta | float | str | None = None,
        lag: timedelta | float = timedelta(minutes=5),
        min_incidents: int = 1,
        on_empty: str = "skip",
        max_incidents: int = 200,
        output_path: str | None = None,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        poke_interval: timedelta | float = 60,
        mode: str = "poke",
        **kwargs: Any,
    ) -> None:
        super().__init__(poke_interval=poke_interval, mode=mode, **kwargs)
        if on_empty not in ON_EMPTY:
            raise ValueError(f"on_empty must be one of {', '.join(ON_EMPTY)}, got {on_empty!r}")
        if isinstance(min_incidents, bool) or not isinstance(min_incidents, int) or min_incidents < 1:
            raise ValueError(f"min_incidents must be a whole number of at least 1, got {min_incidents!r}")
        if isinstance(max_incidents, bool) or not isinstance(max_incidents, int) or max_incidents < 1:
            raise ValueError(f"max_incidents must be a whole number of at least 1, got {max_incidents!r}")
        if output_path is None and max_incidents < min_incidents:
            raise ValueError(
                f"max_incidents ({max_incidents}) is below min_incidents ({min_incidents}): the sensor "
                "could never succeed."
            )
        lag_delta = _seconds(lag, name="lag") or timedelta(0)
        if lag_delta < timedelta(0):
            raise ValueError(f"lag must not be negative, got {lag!r}")
        self.mtp_conn_id = mtp_conn_id
        self.api = api
        self.status = status
        self.severity = severity
        self.assigned_to = assigned_to
        self.classification = classification
        self.tags = tags
        self.odata_filter = odata_filter
        self.start = start
        self.end = end
        self.lookback = lookback
        self.lag = lag_delta
        self.min_incidents = min_incidents
        self.on_empty = on_empty
        self.max_incidents = max_incidents
        self.output_path = output_path
        self.deferrable = deferrable

    @cached_property
    def hook(self) -> MTPHook:
        """The sync hook, built on first use (never at DAG parse time)."""
        from airflow_provider_mtp.hooks.mtp import MTPHook

        return MTPHook(mtp_conn_id=self.mtp_conn_id, api=self.api)

    # The question -------------------------------------------------------------------------------

    def _query(self) -> IncidentQuery:
        """The sensor's filters as one query (checked, values normalised); the window adds the bounds."""
        return IncidentQuery.build(**{name: getattr(self, name) for name in FILTERS})

    def _run_window(self, context: Context) -> Window:
        """The run's window (before the lag shift); a sensor needs one."""
        try:
            window = resolve_window(
                _plain_times(context),
                start=self.start,
                end=self.end,
                lookback=_seconds(self.lookback, name="lookback"),
            )
        except ValueError as exc:
            raise MTPConfigError(f"IncidentSensor {self.task_id!r}: {exc}") from None
        if window is None:
            raise MTPConfigError(
                f"IncidentSensor {self.task_id!r} has no window: this run has an empty data interval "
                "(manual runs, and timedelta or cron schedules with Airflow's defaults). Set lookback "
                "(e.g. timedelta(hours=1)), or start and end, or use a schedule with data intervals."
            )
        return Window(plain_utc(window.start), plain_utc(window.end))

    def _check(self, query: IncidentQuery, window: Window) -> None:
        """Check every argument the service will see against the rules of the back end in use
        (the connection's, or ``api``), before any call to it."""
        self.hook.check_incident_query(listing_query(query, window=window))

    def _list(self, query: IncidentQuery, window: Window) -> list[dict[str, Any]]:
        listing = self.hook.list_incidents(listing_query(query, window=window))
        return match_incidents(listing, window=window, query=query)

    # Poke and deferral --------------------------------------------------------------------------

    def poke(self, context: Context) -> PokeReturnValue:
        query = self._query()
        window = self._run_window(context).shifted(-self.lag)
        self._check(query, window)
        # Taken before the listing: a listing read after the window closed is complete.
        now = _utcnow()
        matches = self._list(query, window)
        decision = decide(
            len(matches),
            window=window,
            now=now,
            min_incidents=self.min_incidents,
            max_incidents=None if self.output_path else self.max_incidents,
            query=query,
            lag=self.lag,
        )
        self.log.info("%s", decision.message)
        if not decision.final:
            return PokeReturnValue(is_done=False)
        if decision.outcome == "too_many":
            raise AirflowFailException(decision.message)
        value = self._conclude(
            decision.outcome,
            decision.message,
            lambda: self._value(matches=matches, summaries=None, window=window),
        )
        return PokeReturnValue(is_done=True, xcom_value=value)

    def execute(self, context: Context) -> Any:
        if not self.deferrable:
            return super().execute(context)
        query = self._query()
        run_window = self._run_window(context)
        self._check(query, run_window.shifted(-self.lag))
        window = run_window.as_dict()
        self.defer(
            trigger=IncidentTrigger(
                window_start=window["start"],
                window_end=window["end"],
                lag_seconds=self.lag.total_seconds(),
                mtp_conn_id=self.mtp_conn_id,
                api=self.api,
                min_incidents=self.min_incidents,
                max_incidents=None if self.output_path else self.max_incidents,
                include_incidents=not self.output_path,
                poke_interval=self.poke_interval,
                on_empty=self.on_empty,
                query=query.to_json(),
            ),
            method_name="execute_complete",
            timeout=timedelta(seconds=self.timeout),
        )

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> Any:
        """Resume after :class:`IncidentTrigger` fired: the same result or error as ``poke()``.

        :raises AirflowException: no event, an unknown status, an ``error`` event (as the error
            class the trigger saw, with its message) or a malformed one.
        """
        if not isinstance(event, Mapping) or event.get("status") not in ("success", "empty", "error"):
            raise AirflowException(
                f"IncidentSensor {self.task_id!r} got an unexpected trigger event: {event!r}"
            )
        message = str(event.get("message") or "")
        if event["status"] == "error":
            raise _error_from_event(event)
        try:
            window = Window(
                parse_iso(str(event["window"]["start"])),
                parse_iso(str(event["window"]["end"])),
            )
            summaries = None if self.output_path else list(event["incidents"])
        except (KeyError, TypeError, ValueError) as exc:
            raise AirflowException(
                f"IncidentSensor {self.task_id!r} got a malformed trigger event ({type(exc).__name__}: "
                f"{exc}): {event!r}"
            ) from None

        def value() -> Any:
            # With output_path the event carries no incidents: list the window again, here.
            matches = self._list(self._query(), window) if self.output_path else None
            return self._value(matches=matches, summaries=summaries, window=window)

        return self._conclude(str(event["status"]), message, value)

    # The result ---------------------------------------------------------------------------------

    def _value(
        self,
        *,
        matches: list[dict[str, Any]] | None,
        summaries: list[dict[str, Any]] | None,
        window: Window,
    ) -> Any:
        """The XCom: the summaries, or with ``output_path`` the manifest of the file written."""
        if self.output_path:
            assert matches is not None
            path = _write_json_lines(self.output_path, matches)
            self.log.info("Wrote %d incident(s) to %s", len(matches), path)
            return {"path": path, "rows": len(matches), "window": window.as_dict()}
        if summaries is None:
            assert matches is not None
            summaries = [incident_summary(incident) for incident in matches]
        return summaries

    def _conclude(self, outcome: str, message: str, value: Callable[[], Any]) -> Any:
        """``success`` returns ``value()``; a final ``empty`` does what ``on_empty`` says."""
        if outcome != "success":
            if self.on_empty == "skip":
                raise AirflowSkipException(message)
            if self.on_empty == "fail":
                raise AirflowFailException(message)
            self.log.info("on_empty='succeed': returning what matched")
        return value()


def _error_from_event(event: Mapping[str, Any]) -> Exception:
    """The exception an ``error`` event stands for: the class ``poke()`` would have raised."""
    message = str(event.get("message") or "the incident trigger failed without a message")
    error_type = str(event.get("error_type") or "")
    if error_type == TOO_MANY:
        return AirflowFailException(message)
    cls = getattr(errors, error_type, None)
    if isinstance(cls, type) and issubclass(cls, errors.MTPError):
        try:
            return cls(message)
        except TypeError:  # classes with required extra arguments
            return errors.MTPError(message)
    return AirflowException(f"The incident trigger failed: {error_type or 'error'}: {message}")


def _write_json_lines(path: str, records: Iterable[Mapping[str, Any]]) -> str:
    """Write ``records`` as JSON Lines to a temporary name beside ``path``, then move it into place.

    :param path: a local path or an object storage URI (``s3://...``, ``file://...``).
    :return: the path written.
    """
    name = f".{uuid.uuid4().hex}.tmp"
    if "://" in path:
        from airflow.sdk import ObjectStoragePath

        target = ObjectStoragePath(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        temporary = target.parent / (target.name + name)
        with temporary.open("w") as handle:
            for record in records:
                handle.write(json.dumps(record, ensure_ascii=False) + "\n")
        temporary.rename(target)
        return str(target)
    local = Path(path)
    local.parent.mkdir(parents=True, exist_ok=True)
    scratch = local.with_name(local.name + name)
    try:
        with scratch.open("w", encoding="utf-8") as handle:
            for record in records:
                handle.write(json.dumps(record, ensure_ascii=False) + "\n")
        os.replace(scratch, local)
    finally:
        scratch.unlink(missing_ok=True)
    return str(local)
