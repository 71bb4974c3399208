"""The sensor of any listed resource (incidents, alerts): wait for records updated in the run's window.

:class:`ListingSensor` holds everything :class:`~airflow_provider_mtp.sensors.incidents.IncidentSensor`
and :class:`~airflow_provider_mtp.sensors.alerts.AlertSensor` share: the run's window (explicit
``start``/``end``, else the data interval, else ``lookback``; see :mod:`airflow_provider_mtp.windows`)
shifted back by ``lag``, the one rule (:func:`~airflow_provider_mtp.listing_rules.decide`) over the
one matching function (:func:`~airflow_provider_mtp.listing_rules.match_updates`) in every mode, the
deferral to the resource's trigger, ``on_empty``, and the XCom or the JSON Lines file. A subclass
names its :class:`~airflow_provider_mtp.listing_rules.Resource`, its trigger class and its filter
arguments.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime, timedelta
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from airflow.sdk import BaseSensorOperator, PokeReturnValue
from airflow.sdk.configuration import conf
from airflow.sdk.exceptions import AirflowException, AirflowFailException, AirflowSkipException

from airflow_provider_mtp import errors
from airflow_provider_mtp.common.utc import parse_iso, plain_utc
from airflow_provider_mtp.errors import MTPConfigError
from airflow_provider_mtp.listing_rules import ON_EMPTY, Resource, WindowQuestion
from airflow_provider_mtp.windows import Window, resolve_window

if TYPE_CHECKING:
    from airflow.sdk import Context

    from airflow_provider_mtp.api.query_base import ListingQuery
    from airflow_provider_mtp.hooks.mtp import MTPHook
    from airflow_provider_mtp.triggers.listing import WindowTrigger

__all__ = ["ListingSensor"]

#: The window arguments every listing sensor templates.
WINDOW_FIELDS = ("start", "end", "lookback")


def seconds(value: Any, *, name: str) -> timedelta | None:
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
    """The time a poke decides by."""
    return datetime.now(UTC)


def _whole_number(value: Any, *, name: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a whole number of at least 1, got {value!r}")


class ListingSensor(BaseSensorOperator):
    """The shared machinery of the incident and alert sensors (see theirs for the arguments).

    :param filters: the subclass's filter arguments by name, kept as (templated) attributes of the
        same name; the resource's query is built from them at run time.
    :param minimum: the subclass's ``min_<kind>s``, kept under that name.
    :param maximum: the subclass's ``max_<kind>s``, kept under that name.
    """

    #: The resource listed, and the trigger a deferred sensor waits in; set by each subclass.
    resource: ClassVar[Resource]
    trigger_class: ClassVar[type[WindowTrigger]]
    ui_color = "#0078d4"

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        resource = cls.__dict__.get("resource")
        if resource is not None and "template_fields" not in cls.__dict__:
            # Templated: the window, every filter of the resource's query, the output, the connection.
            cls.template_fields = (
                *WINDOW_FIELDS,
                *resource.query_class.FILTER_FIELDS,
                "output_path",
                "mtp_conn_id",
            )

    def __init__(
        self,
        *,
        filters: Mapping[str, Any],
        minimum: int,
        maximum: int,
        mtp_conn_id: str = "mtp_default",
        api: str | None = None,
        start: datetime | str | None = None,
        end: datetime | str | None = None,
        lookback: timedelta | float | str | None = None,
        lag: timedelta | float = timedelta(minutes=5),
        on_empty: str = "skip",
        output_path: str | None = None,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        poke_interval: timedelta | float = 60,
        mode: str = "poke",
        **kwargs: Any,
    ) -> None:
        super().__init__(poke_interval=poke_interval, mode=mode, **kwargs)
        min_name, max_name = self.resource.min_name, self.resource.max_name
        if on_empty not in ON_EMPTY:
            raise ValueError(f"on_empty must be one of {', '.join(ON_EMPTY)}, got {on_empty!r}")
        _whole_number(minimum, name=min_name)
        _whole_number(maximum, name=max_name)
        if output_path is None and maximum < minimum:
            raise ValueError(
                f"{max_name} ({maximum}) is below {min_name} ({minimum}): the sensor could never succeed."
            )
        lag_delta = seconds(lag, name="lag") or timedelta(0)
        if lag_delta < timedelta(0):
            raise ValueError(f"lag must not be negative, got {lag!r}")
        self.mtp_conn_id = mtp_conn_id
        self.api = api
        for name, value in filters.items():
            setattr(self, name, value)
        self.start = start
        self.end = end
        self.lookback = lookback
        self.lag = lag_delta
        setattr(self, min_name, minimum)
        self.on_empty = on_empty
        setattr(self, max_name, maximum)
        self.output_path = output_path
        self.deferrable = deferrable

    @property
    def _minimum(self) -> int:
        return int(getattr(self, self.resource.min_name))

    @property
    def _maximum(self) -> int | None:
        """The bound on matches; none when they go to a file."""
        return None if self.output_path else int(getattr(self, self.resource.max_name))

    @cached_property
    def hook(self) -> MTPHook:
        """The sync hook, built on first use (never at DAG parse time)."""
        from airflow_provider_mtp.hooks.mtp import MTPHook

        return MTPHook(mtp_conn_id=self.mtp_conn_id, api=self.api)

    def _now(self) -> datetime:
        return _utcnow()

    # The question -------------------------------------------------------------------------------

    def _query(self) -> ListingQuery:
        """The sensor's filters as one query (checked, values normalised); the window adds the bounds."""
        query_class = self.resource.query_class
        return query_class.build(**{name: getattr(self, name) for name in query_class.FILTER_FIELDS})

    def _run_window(self, context: Context) -> Window:
        """The run's window (before the lag shift); a sensor needs one."""
        sensor = self.resource.sensor
        try:
            window = resolve_window(
                _plain_times(context),
                start=self.start,
                end=self.end,
                lookback=seconds(self.lookback, name="lookback"),
            )
        except ValueError as exc:
            raise MTPConfigError(f"{sensor} {self.task_id!r}: {exc}") from None
        if window is None:
            raise MTPConfigError(
                f"{sensor} {self.task_id!r} has no window: this run has an empty data interval "
                "(manual runs, and timedelta or cron schedules with Airflow's defaults). Set lookback "
                "(e.g. timedelta(hours=1)), or start and end, or use a schedule with data intervals."
            )
        return Window(plain_utc(window.start), plain_utc(window.end))

    def _question(self, query: ListingQuery, window: Window) -> WindowQuestion:
        return WindowQuestion(self.resource, query, window, self._minimum, self._maximum, self.lag)

    def _check(self, query: ListingQuery, window: Window) -> WindowQuestion:
        """Check every argument the service will see against the rules of the back end in use
        (the connection's, or ``api``), before any call to it; the question to ask."""
        question = self._question(query, window)
        self.resource.hook_method(self.hook, "check")(question.asked())
        return question

    def _listing(self, question: WindowQuestion) -> Iterable[Mapping[str, Any]]:
        """The hook's listing for the question's window (an iterator: read once)."""
        listing: Iterable[Mapping[str, Any]] = self.resource.hook_method(self.hook, "list")(question.asked())
        return listing

    # Poke and deferral --------------------------------------------------------------------------

    def poke(self, context: Context) -> PokeReturnValue:
        question = self._check(self._query(), self._run_window(context).shifted(-self.lag))
        # Taken before the listing: a listing read after the window closed is complete.
        now = self._now()
        matches, decision = question.answer(self._listing(question), now=now)
        self.log.info("%s", decision.message)
        if not decision.final:
            return PokeReturnValue(is_done=False)
        if decision.outcome == "too_many":
            raise AirflowFailException(decision.message)
        value = self._conclude(
            decision.outcome,
            decision.message,
            lambda: self._value(matches=matches, summaries=None, window=question.window),
        )
        return PokeReturnValue(is_done=True, xcom_value=value)

    def execute(self, context: Context) -> Any:
        if not self.deferrable:
            return super().execute(context)
        query = self._query()
        run_window = self._run_window(context)
        self._check(query, run_window.shifted(-self.lag))
        window = run_window.as_dict()
        resource = self.resource
        trigger_kwargs: dict[str, Any] = {
            resource.min_name: self._minimum,
            resource.max_name: self._maximum,
            f"include_{resource.plural}": not self.output_path,
        }
        self.defer(
            trigger=self.trigger_class(
                window_start=window["start"],
                window_end=window["end"],
                lag_seconds=self.lag.total_seconds(),
                mtp_conn_id=self.mtp_conn_id,
                api=self.api,
                poke_interval=self.poke_interval,
                on_empty=self.on_empty,
                query=query.to_json(),
                **trigger_kwargs,
            ),
            method_name="execute_complete",
            timeout=timedelta(seconds=self.timeout),
        )

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> Any:
        """Resume after the trigger fired: the same result or error as ``poke()``.

        :raises AirflowException: no event, an unknown status, an ``error`` event (as the error
            class the trigger saw, with its message) or a malformed one.
        """
        sensor = self.resource.sensor
        if not isinstance(event, Mapping) or event.get("status") not in ("success", "empty", "error"):
            raise AirflowException(f"{sensor} {self.task_id!r} got an unexpected trigger event: {event!r}")
        message = str(event.get("message") or "")
        if event["status"] == "error":
            raise _error_from_event(self.resource, event)
        try:
            window = Window(
                parse_iso(str(event["window"]["start"])),
                parse_iso(str(event["window"]["end"])),
            )
            summaries = None if self.output_path else list(event[self.resource.plural])
        except (KeyError, TypeError, ValueError) as exc:
            raise AirflowException(
                f"{sensor} {self.task_id!r} got a malformed trigger event ({type(exc).__name__}: "
                f"{exc}): {event!r}"
            ) from None

        def value() -> Any:
            # With output_path the event carries no summaries: list the window again, here.
            if not self.output_path:
                return self._value(matches=None, summaries=summaries, window=window)
            question = self._question(self._query(), window)
            return self._value(
                matches=question.matches(self._listing(question)), summaries=None, window=window
            )

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
            self.log.info("Wrote %d %s(s) to %s", len(matches), self.resource.kind, path)
            return {"path": path, "rows": len(matches), "window": window.as_dict()}
        if summaries is None:
            assert matches is not None
            summaries = [self.resource.summary(record) for record in matches]
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


def _error_from_event(resource: Resource, event: Mapping[str, Any]) -> Exception:
    """The exception an ``error`` event stands for: the class ``poke()`` would have raised."""
    message = str(event.get("message") or f"the {resource.kind} trigger failed without a message")
    error_type = str(event.get("error_type") or "")
    if error_type == resource.too_many:
        return AirflowFailException(message)
    cls = getattr(errors, error_type, None)
    if isinstance(cls, type) and issubclass(cls, errors.MTPError):
        try:
            return cls(message)
        except TypeError:  # classes with required extra arguments
            return errors.MTPError(message)
    return AirflowException(f"The {resource.kind} trigger failed: {error_type or 'error'}: {message}")


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
