"""RunHuntingQueryOperator: advanced hunting tied to the run's time window, results to XCom or storage."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any, ClassVar

from airflow.sdk import BaseOperator, conf
from airflow.sdk.exceptions import AirflowException, TaskDeferred

from airflow_provider_mtp import kql
from airflow_provider_mtp.errors import (
    MTPConfigError,
    MTPLimitExceededError,
    MTPThrottledError,
)
from airflow_provider_mtp.hunting_link import MAX_URL_LENGTH
from airflow_provider_mtp.hunting_plan import DonePiece, HuntProgress, Piece, query_sha256, task_token
from airflow_provider_mtp.links import DefenderHuntingLink, hunting_portal_url
from airflow_provider_mtp.operators.hunting_checks import HuntQueryChecks
from airflow_provider_mtp.operators.hunting_outputs import HuntOutputs

# The throttling constants stay importable from here, where they were.
from airflow_provider_mtp.operators.hunting_throttling import (
    DEFAULT_THROTTLE_WAIT_S as DEFAULT_THROTTLE_WAIT_S,
)
from airflow_provider_mtp.operators.hunting_throttling import MAX_THROTTLE_DEFER_S as MAX_THROTTLE_DEFER_S
from airflow_provider_mtp.operators.hunting_throttling import THROTTLING_XCOM_KEY as THROTTLING_XCOM_KEY
from airflow_provider_mtp.operators.hunting_throttling import HuntThrottling
from airflow_provider_mtp.windows import resolve_window

if TYPE_CHECKING:
    import jinja2
    from airflow.sdk import Context

    from airflow_provider_mtp.hooks.mtp import MTPHook
    from airflow_provider_mtp.outputs import OutputTarget

__all__ = ["HUNTING_ROW_LIMIT", "RunHuntingQueryOperator"]

#: Defender's row limit: a result of exactly this many rows is taken as truncated.
HUNTING_ROW_LIMIT = 100_000
#: What ``split_validity`` accepts: check the query, or take the author's word for it.
SPLIT_VALIDITIES = ("checked", "rows_independent")

_LIMIT_NAMES = {
    "rows": "row limit (100,000 rows)",
    "size": "result size cap (50 MB)",
    "timeout": "time limit (3 minutes per query)",
}


class _Truncated(Exception):
    """A piece hit a service limit (or returned exactly the row limit)."""

    def __init__(self, limit: str, cause: MTPLimitExceededError | None = None) -> None:
        super().__init__(limit)
        self.limit = limit
        self.cause = cause


class RunHuntingQueryOperator(HuntQueryChecks, HuntThrottling, HuntOutputs, BaseOperator):
    """Run a Defender XDR advanced-hunting query over the run's time window.

    **The window.** Half-open ``[start, end)``, by the rule shared with the incident sensor
    (:mod:`airflow_provider_mtp.windows`): explicit ``start``/``end``; else a non-empty data
    interval; else ``lookback`` ending at the run's time; else no window (the service's own last
    30 days). The query gets it as two KQL bindings placed before it, on both back ends::

        let WindowStart = datetime(2026-11-01T00:00:00.0000000Z);
        let WindowEnd = datetime(2026-11-02T00:00:00.0000000Z);
        DeviceProcessEvents | where Timestamp >= WindowStart and Timestamp < WindowEnd

    and on Graph also as the request's ``Timespan``. A query given a window that never uses
    ``WindowStart``/``WindowEnd`` gets a warning (on the legacy API it would search 30 days).
    Re-running a run sends exactly the same text, so it gets the same ``query_sha256``.

    **Parameters.** Untrusted values (``params`` from the trigger form) go in
    ``query_parameters``, never into the query text: each becomes ``let <name> = <literal>;``
    before the query, typed as ``parameter_types`` declares (``string`` by default; see
    :mod:`airflow_provider_mtp.kql`). A value such as ``x" | union * | take 1 //`` is matched as
    plain text. For authors who template KQL themselves, the Jinja filters of
    :data:`~airflow_provider_mtp.kql.KQL_FILTERS` (``kql_string``, ``kql_datetime``, ``kql_list``
    ...) are available in this operator's templates.

    **Results.** With ``output_path``, rows stream to a file (JSON Lines, CSV or Parquet; see
    :mod:`airflow_provider_mtp.outputs`) that appears whole or not at all, and XCom gets a
    manifest ``{"path", "rows", "schema", "window": {"start", "end"} | None, "query_sha256"}``
    (hash of the whole window's query as sent, bindings included), plus ``"pieces"`` (each
    piece's window, rows and hash) when ``split_on_limit`` is on. Without it, XCom gets the rows
    (a list of dicts) if there are at most ``max_xcom_rows``; more fail the task, saying to set
    ``output_path``. Give an ``outlets=[Asset(...)]`` per output path to schedule downstream DAGs
    on new results; the asset event's ``extra`` carries the path, row count, window and hash.

    **The row limit.** Defender returns at most 100,000 rows, by truncating silently or by
    failing. A result of exactly 100,000 rows is taken as truncated, and so are the row-limit,
    result-size and timeout errors. By default the task then fails and names the limit. With
    ``split_on_limit=True`` the window is cut in two and each half run in turn (recursively, at
    most ``max_splits`` times deep), the pieces appended in time order, one log line per piece.
    Splitting is valid only when each row depends on nothing outside its own piece of the window:
    filters and projections (``where``, ``project``, ``extend``, ``mv-expand``, ``parse``) and
    joins on the same timestamps are fine; aggregation across the window (``summarize`` over the
    whole window, ``dcount`` across time, ``top``, ``take``, ``distinct``, ``arg_max``), ``join``
    against events outside the piece and ``ago()``/``now()`` are not: their pieces do not add up to
    the whole (a query ending in ``take 100000`` would take 100,000 rows per piece). The query must
    use ``WindowStart`` and ``WindowEnd``. Before any call, the task refuses such a query
    (:class:`~airflow_provider_mtp.errors.MTPConfigError` naming what it found): after a ``|``,
    ``take``, ``limit``, ``top``, ``top-nested``, ``top-hitters``, ``distinct``, ``count``,
    ``sample``, ``sample-distinct``, ``serialize``, ``make-series``, ``reduce``, ``scan``,
    ``partition``, ``facet``, an ``evaluate`` plugin other than ``bag_unpack``/``ipv4_lookup``/
    ``ipv6_lookup``, a ``summarize`` whose ``by`` has neither ``Timestamp`` nor
    ``bin(Timestamp, ...)``, a ``join`` whose ``on`` does not name ``Timestamp``; anywhere,
    ``row_number()``, ``row_cumsum()``, ``row_rank_*()``, ``row_window_session()``, ``prev()``,
    ``next()`` and ``toscalar()`` (see :func:`airflow_provider_mtp.kql.window_dependent_parts`;
    strings and comments do not count). A ``summarize ... by bin(Timestamp, 1h)`` passes, but a
    bin that a piece's edge cuts comes back as two rows, one per piece. An author who knows the
    rows are independent of the window anyway sets ``split_validity="rows_independent"``.

    **Throttling.** The client waits out short ``429`` waits itself (up to
    ``throttle_max_wait``). A longer wait fails the task with
    :class:`~airflow_provider_mtp.errors.MTPThrottledError`, or with ``deferrable=True`` defers it
    until the quota resets, freeing the worker slot, at most ``max_throttle_deferrals`` times per
    task try; the next throttling then fails the task with an ``MTPThrottledError`` that says how
    many times and how long it waited. Only throttling defers: a query error (whatever the KQL's
    text) fails the task at once, also after a resume. The resumed task (perhaps on another worker)
    continues with the unfinished window: pieces already done stay as part files next to the
    output (``<output_path>.parts/<token>/``), their list travels in the deferral (and is saved
    there as ``progress.json``), so no row is written twice. Without ``output_path`` the rows so
    far (at most ``max_xcom_rows``) travel in the deferral too.

    **The portal link.** "Open in advanced hunting" opens, in the Defender portal of the
    connection's cloud (``tid=<tenant>`` as on incident links), the exact text the task sent for
    its whole window: bound parameters, window bindings and query, the text the manifest's
    ``query_sha256`` hashes. A hunt split into pieces links that whole-window text, not a piece's.
    The task pushes the link before its first call (XCom key ``hunting_url``), so a failed hunt
    has it too. The portal takes no separate ``Timespan``: what limits the rows there is the
    window in the text, so a query filtering on ``WindowStart``/``WindowEnd`` shows the task's
    rows (on Graph the narrower of ``Timespan`` and the query's own filter wins, and they are the
    same window). The editor's time range is set to ``month``, its widest (the 30 days hunting
    keeps), so it never cuts the window short, even when the link is opened days later. A query
    that never uses the window names (the task warns) shows the last 30 days there, as on the
    legacy API. A link over :data:`~airflow_provider_mtp.hunting_link.MAX_URL_LENGTH` characters
    is not made; the task log says so in one line, with its length.

    :param query: the KQL, or the path of a ``.kql`` file (templated). Use ``WindowStart`` and
        ``WindowEnd`` for the window and the ``query_parameters`` names for values.
    :param mtp_conn_id: the ``mtp`` connection (templated).
    :param api: ``graph`` or ``legacy`` to override the connection's back end.
    :param start: explicit window start, a datetime or ISO 8601 text with a zone (templated);
        needs ``end``.
    :param end: explicit window end, excluded (templated); needs ``start``.
    :param lookback: the window's length when the data interval is empty (manual runs, cron
        schedules without ``create_cron_data_intervals``, ``dags test``); it ends at the run's
        logical date, else its ``run_after``.
    :param query_parameters: name -> value, bound as typed ``let`` literals before the query
        (templated: ``{"device": "{{ params.device }}"}``). Names must be KQL identifiers and not
        ``WindowStart``/``WindowEnd``.
    :param parameter_types: name -> kind for ``query_parameters``: ``string`` (the default),
        ``datetime``, ``timespan``, ``long``, ``int``, ``real`` (``number``), ``bool``, ``dynamic``,
        ``list`` or ``list[<kind>]``.
    :param output_path: where to write the rows (templated): an absolute local path or an
        ``ObjectStoragePath`` URI (``file:///...``, ``s3://bucket/...``, ``s3://conn_id@bucket/...``).
        Parent folders are created; an existing file is replaced.
    :param output_format: ``jsonl``, ``csv`` or ``parquet``; by default from ``output_path``'s
        extension (``.jsonl``/``.ndjson``/``.json``, ``.csv``, ``.parquet``).
    :param max_xcom_rows: most rows returned through XCom without ``output_path``.
    :param split_on_limit: split the window when a piece hits the row limit, size cap or time
        limit (see above for when this is valid).
    :param split_validity: ``checked`` (the default): with ``split_on_limit``, refuse a query whose
        rows depend on the whole window (``take``, ``top``, ``summarize`` without a time bin...);
        ``rows_independent``: the author vouches that every row depends only on its own piece, and
        the query is split unchecked.
    :param max_splits: how many times a window may be halved (depth): 8 allows pieces of 1/256 of
        the window. A piece still over the limit at that depth fails the task.
    :param deferrable: wait out long throttling on the triggerer instead of failing. Defaults to
        ``[operators] default_deferrable``.
    :param throttle_max_wait: the longest ``Retry-After`` (seconds) the worker sleeps through
        itself; a longer one fails the task or, with ``deferrable``, defers it. ``None`` keeps the
        client's default (60 s).
    :param max_throttle_deferrals: with ``deferrable``, the most times one try of the task defers
        on throttling (10 by default; 0 never defers); past it the task fails with
        :class:`~airflow_provider_mtp.errors.MTPThrottledError` (Airflow's ``retries`` then apply).
    :param kwargs: passed to :class:`~airflow.sdk.BaseOperator` (``outlets``, ``retries``, ...).
    """

    template_fields: Sequence[str] = (
        "query",
        "start",
        "end",
        "query_parameters",
        "output_path",
        "mtp_conn_id",
    )
    template_ext: Sequence[str] = (".kql",)
    template_fields_renderers: ClassVar[dict[str, str]] = {"query_parameters": "json"}
    operator_extra_links = (DefenderHuntingLink(),)
    ui_color = "#e3ecf8"

    def __init__(
        self,
        *,
        query: str,
        mtp_conn_id: str = "mtp_default",
        api: str | None = None,
        start: datetime | str | None = None,
        end: datetime | str | None = None,
        lookback: timedelta | None = None,
        query_parameters: Mapping[str, Any] | None = None,
        parameter_types: Mapping[str, str] | None = None,
        output_path: str | None = None,
        output_format: str | None = None,
        max_xcom_rows: int = 1000,
        split_on_limit: bool = False,
        split_validity: str = "checked",
        max_splits: int = 8,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        throttle_max_wait: float | None = None,
        max_throttle_deferrals: int = 10,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.query = query
        self.mtp_conn_id = mtp_conn_id
        self.api = api
        self.start = start
        self.end = end
        self.lookback = lookback
        self.query_parameters = dict(query_parameters or {})
        self.parameter_types = dict(parameter_types or {})
        self.output_path = output_path
        self.output_format = output_format
        self.max_xcom_rows = max_xcom_rows
        self.split_on_limit = split_on_limit
        self.split_validity = split_validity
        self.max_splits = max_splits
        self.deferrable = deferrable
        self.throttle_max_wait = throttle_max_wait
        self.max_throttle_deferrals = max_throttle_deferrals
        # Checks without I/O, so a mistake shows when the DAG is parsed.
        if lookback is not None and not isinstance(lookback, timedelta):
            raise MTPConfigError(f"lookback must be a timedelta, got {type(lookback).__name__}")
        for name, kind in self.parameter_types.items():
            kql.normalise_kind(kind)
            kql.validate_name(name, what="parameter_types")
        if isinstance(max_xcom_rows, bool) or not isinstance(max_xcom_rows, int) or max_xcom_rows < 0:
            raise MTPConfigError(f"max_xcom_rows must be a whole number of at least 0, got {max_xcom_rows!r}")
        if isinstance(max_splits, bool) or not isinstance(max_splits, int) or max_splits < 0:
            raise MTPConfigError(f"max_splits must be a whole number of at least 0, got {max_splits!r}")
        if split_validity not in SPLIT_VALIDITIES:
            raise MTPConfigError(
                f"split_validity must be one of {', '.join(map(repr, SPLIT_VALIDITIES))}, got "
                f"{split_validity!r}: 'checked' refuses queries whose rows depend on the whole window, "
                "'rows_independent' says you know they do not"
            )
        if (
            isinstance(max_throttle_deferrals, bool)
            or not isinstance(max_throttle_deferrals, int)
            or max_throttle_deferrals < 0
        ):
            raise MTPConfigError(
                f"max_throttle_deferrals must be a whole number of at least 0, got {max_throttle_deferrals!r}"
            )
        if output_format is not None:
            from airflow_provider_mtp.outputs import output_format as check_format

            check_format("", output_format)

    @cached_property
    def hook(self) -> MTPHook:
        """The hook, built on first use (never at DAG parse time)."""
        from airflow_provider_mtp.hooks.mtp import MTPHook

        return MTPHook(mtp_conn_id=self.mtp_conn_id, api=self.api, max_wait=self.throttle_max_wait)

    # ----------------------------------------------------------------------------------------------
    # Templates: the KQL filters are always available here
    # ----------------------------------------------------------------------------------------------

    def render_template(
        self,
        content: Any,
        context: Context,
        jinja_env: jinja2.Environment | None = None,
        seen_oids: set[int] | None = None,
    ) -> Any:
        """Render one templated value with the KQL filters (``kql_string``, ...) available.

        Every templated field of a plain or a mapped task is rendered through this public method;
        a DAG's own filters of the same names win.
        """
        if jinja_env is None:
            jinja_env = self.get_template_env()
        for name, function in kql.KQL_FILTERS.items():
            jinja_env.filters.setdefault(name, function)
        return super().render_template(content, context, jinja_env, seen_oids)

    # ----------------------------------------------------------------------------------------------
    # Execution
    # ----------------------------------------------------------------------------------------------

    def execute(self, context: Context) -> Any:
        """Run the hunt; the manifest (with ``output_path``) or the rows, for XCom."""
        progress = self._plan(context)
        return self._hunt(context, progress)

    def execute_complete(self, context: Context, event: Any = None, progress: Any = None) -> Any:
        """Resume after a throttling deferral: run what is left of the window.

        :param context: the task context.
        :param event: the trigger's event: the moment the wait ended.
        :param progress: the hunt's progress record from the deferral.
        """
        if event is None:
            raise AirflowException("The hunting task resumed without a trigger event; run it again.")
        if isinstance(event, Mapping) and event.get("status") == "error":
            raise AirflowException(f"The wait before resuming the hunt failed: {event.get('message', event)}")
        if not isinstance(event, datetime | str):
            raise AirflowException(f"The hunting task resumed with an unexpected event: {event!r}")
        target, token = self._target, task_token(context)
        if progress is None and target is not None and token is not None:
            # The deferral's kwargs did not come back (Airflow 3.3's dag.test() drops them):
            # the copy saved next to the part files has the same record.
            progress = target.load_checkpoint(token)
        if progress is None:
            self.log.warning("The hunt's progress did not survive the deferral; running the whole hunt again")
            fresh = self._plan(context)
            self._restore_throttling(context, fresh)
            return self._hunt(context, fresh)
        try:
            state = HuntProgress.from_json(progress)
        except ValueError as exc:
            raise AirflowException(f"Cannot resume the hunt: {exc}. Clear the task to run it again.") from exc
        self.log.info(
            "Resuming the hunt after throttling: %d piece(s) done, %d to go",
            len(state.done),
            len(state.pending),
        )
        return self._hunt(context, state)

    def _plan(self, context: Context) -> HuntProgress:
        query = self.query if isinstance(self.query, str) else ""
        if not query.strip():
            raise MTPConfigError("query is empty: give the KQL or the path of a .kql file")
        try:
            window = resolve_window(context, start=self.start, end=self.end, lookback=self.lookback)
        except ValueError as exc:
            raise MTPConfigError(f"Cannot tell the hunting window: {exc}") from exc
        parameters = kql.bind(self.query_parameters, self.parameter_types)
        self._check_window_names(query, window)
        self._check_split_validity(query)
        if self._target is not None:
            self._target.check()  # before any hunt: a path it cannot write must not cost quota
        progress = HuntProgress.start(
            parameters=parameters,
            query=query,
            window=window,
            to_xcom=not self.output_path,
            token=task_token(context),
        )
        if self._target is not None:
            self._target.clean(progress.token)  # what an earlier, failed try left behind
        self.log.info(
            "Hunting over %s; query sha256 %s",
            window.label() if window else "the service's default window (last 30 days)",
            progress.query_sha256,
        )
        self._persist_link(context, progress)
        return progress

    def _persist_link(self, context: Context, progress: HuntProgress) -> None:
        """Push the "Open in advanced hunting" link of the whole window's text (see the class doc)."""
        text = progress.text_for(progress.window)
        url = hunting_portal_url(self.hook.settings, text)
        if url is not None:
            DefenderHuntingLink.persist(context, url)
            return
        full = hunting_portal_url(self.hook.settings, text, max_length=None) or ""
        self.log.info(
            "No 'Open in advanced hunting' link: the query as sent (%s characters) makes a link of %s "
            "characters, over the %s a link may have (proxies refuse longer URLs); paste the query "
            "into the portal's advanced-hunting editor instead",
            f"{len(text):,}",
            f"{len(full):,}",
            f"{MAX_URL_LENGTH:,}",
        )

    @cached_property
    def _graph(self) -> bool:
        return self.hook.settings.api == "graph"

    def _hunt(self, context: Context, progress: HuntProgress) -> Any:
        target = self._target
        try:
            while progress.pending:
                self._run_next(context, progress, target)
            return self._finish(context, progress, target)
        except TaskDeferred:
            raise  # the part files are the resumed task's
        except BaseException:
            if target is not None:
                target.clean(progress.token)
            raise
        finally:
            self._close_connections()

    def _close_connections(self) -> None:
        """Close the hook's pooled HTTPS connections (if it made any): the task is done with them."""
        if "hook" in vars(self):  # a hook this task built (a cached_property), not one built now
            self.hook.close()

    def _run_next(self, context: Context, progress: HuntProgress, target: OutputTarget | None) -> None:
        piece = progress.pending[0]
        try:
            done = self._run_piece(progress, piece, target)
        except MTPThrottledError as exc:
            self._defer_or_raise(context, progress, exc)
        except MTPLimitExceededError as exc:
            self._split(progress, piece, _Truncated(exc.limit, exc))
            return
        except _Truncated as exc:
            self._split(progress, piece, exc)
            return
        progress.pending.pop(0)
        progress.done.append(done)
        if self.split_on_limit:
            self.log.info(
                "window %d/%d %s: %s rows",
                len(progress.done),
                len(progress.done) + len(progress.pending),
                piece.window.label() if piece.window else "",
                f"{done.rows:,}",
            )
        else:
            self.log.info(
                "%s: %s rows", piece.window.label() if piece.window else "default window", f"{done.rows:,}"
            )

    def _run_piece(self, progress: HuntProgress, piece: Piece, target: OutputTarget | None) -> DonePiece:
        text = progress.text_for(piece.window)
        timespan = piece.window.timespan if piece.window is not None and self._graph else None
        result = self.hook.run_hunting_query(text, timespan=timespan)
        with result:
            schema = result.schema
            self._check_schema(progress, schema, target)
            if target is None:
                rows = self._collect_rows(progress, result)
                count = len(rows)
                part_uri = None
            else:
                part = target.part(progress.token, progress.next_part)
                progress.next_part += 1
                count = target.write_part(
                    part, schema, result.rows_with_text, on_row=self._progress_logger(piece)
                )
                part_uri = str(part)
                if count >= HUNTING_ROW_LIMIT:
                    self._remove_part(part)
        if count >= HUNTING_ROW_LIMIT:
            raise _Truncated("rows")
        if target is None and progress.rows is not None:
            progress.rows.extend(rows)
        return DonePiece(window=piece.window, rows=count, query_sha256=query_sha256(text), part=part_uri)

    def _split(self, progress: HuntProgress, piece: Piece, truncated: _Truncated) -> None:
        limit = _LIMIT_NAMES.get(truncated.limit, truncated.limit)
        where = piece.window.label() if piece.window else "the default window"
        if not self.split_on_limit:
            detail = (
                f" ({truncated.cause.service_message})"
                if truncated.cause and truncated.cause.service_message
                else ""
            )
            returned = (
                f"returned {HUNTING_ROW_LIMIT:,} rows, Defender's {limit}, so it is probably truncated"
                if truncated.cause is None
                else f"hit Defender's {limit}{detail}"
            )
            raise MTPLimitExceededError(
                f"The hunt over {where} {returned}. Set split_on_limit=True to split the window into "
                "pieces that fit (valid when rows do not depend on the window's edges), or narrow the "
                "window or the query.",
                limit=truncated.limit,
            ) from truncated.cause
        if piece.window is None or piece.depth >= self.max_splits:
            raise MTPLimitExceededError(
                f"The piece {where} still hit Defender's {limit} after {piece.depth} split(s) "
                f"(max_splits={self.max_splits}). Raise max_splits, shorten the schedule's interval, "
                "or filter or project more in the query.",
                limit=truncated.limit,
            ) from truncated.cause
        try:
            first, second = piece.window.halves()
        except ValueError as exc:
            raise MTPLimitExceededError(
                f"The piece {where} hit Defender's {limit}: {exc}.", limit=truncated.limit
            ) from exc
        self.log.info(
            "window %s hit the %s; splitting it in two (depth %d of at most %d)",
            where,
            limit,
            piece.depth + 1,
            self.max_splits,
        )
        progress.pending[0:1] = [Piece(first, piece.depth + 1), Piece(second, piece.depth + 1)]
