"""Advanced hunting for the emulator: KQL over the tenant's tables, run by duckdb-kql on DuckDB.

One call of :meth:`HuntingEngine.run` goes through five steps:

1. **Window.** The Graph ``Timespan`` (or none) becomes a half-open window ``[start, end)``,
   intersected with the data window of the last ``data_days`` days ending at the data clock's
   ``now``. Rows at or after ``now`` are never visible.
2. **Preparation** (cached per query text). The query is parsed, then checked for what duckdb-kql
   would otherwise answer silently wrong (kql-subset.md section 3):

   * a bare ``=`` as a ``where``/``filter`` predicate (``where X = 1`` returns every row) is a
     syntax error telling the author to use ``==``;
   * a *named argument* in a function call (``countif(X = 1)``, ``iff(a = 1, ...)``,
     ``f(b = 3, a = 10)``) is refused the same way: duckdb-kql drops the names and uses the values
     positionally, so these answered wrongly without an error;
   * ``make_list(x, N)`` / ``make_set(x, N)`` ignore ``N`` in duckdb-kql. The cap is honoured by
     rewriting the call to the one-argument form followed, right after that ``summarize``, by
     ``| extend C = array_slice(C, 0, N - 1)``. Doing it in the query rather than on the final
     result keeps the cap right when a later operator reads the column. Forms that cannot be
     rewritten (the call nested in an expression, an unnamed column over an expression, a cap
     that is not a positive integer literal) get a 400 naming the construct;
   * ``database()`` / ``cluster()`` references (they would reach the unfiltered tables) and
     control commands (``.show ...``, ``.set-or-replace ...``) are refused.
3. **Translation** with duckdb-kql (cached per text), ``now()``/``ago()`` pinned to the data
   clock, writes disabled. The first time a SQL text runs, DuckDB's parser checks that it reads
   only hunting tables and its own CTEs: a KQL table name reaches DuckDB as written, and
   ``duckdb_tables`` or ``sqlite_master`` would otherwise answer with the database's internals.
4. **Execution**, up to ``max_concurrent`` queries at a time, each on its own DuckDB cursor taken
   from the engine's pool (a caller past the bound waits for one). DuckDB runs on one thread per
   query: the same question gets the same answer (including ties in ``top``) call after call,
   whatever else runs. Each hunting table is a TEMP VIEW in each cursor over ``store.<table>``
   filtered on the window, which lives in two session variables of that cursor, so nothing is
   re-created per query. A query is interrupted (DuckDB ``interrupt()``) once ``query_timeout``
   seconds pass, or when its :class:`~airflow_provider_mtp.emulator.hunting_control.QueryControl`
   is stopped (its client went away, the emulator shuts down).
5. **Result.** At most ``row_limit + 1`` rows are fetched (the result streams); the row limit then
   truncates or fails. Values become JSON-ready: datetimes with 7 fractional digits and ``Z``
   (written by DuckDB, which is far faster than Python), dynamic values parsed, ``NaN`` and
   ``Infinity`` as the strings Kusto writes. The serialised size (compact UTF-8 JSON of the row
   list) is checked against ``max_result_bytes``.

Each step has its module: the window in :mod:`~airflow_provider_mtp.emulator.hunting_window`,
preparation in :mod:`~airflow_provider_mtp.emulator.hunting_guards`, translation, the checks on the
SQL and DuckDB's errors in :mod:`~airflow_provider_mtp.emulator.hunting_sql`, result values in
:mod:`~airflow_provider_mtp.emulator.hunting_results`, the error type in
:mod:`~airflow_provider_mtp.emulator.hunting_errors`, stopping queries, the counters and the worker
threads in :mod:`~airflow_provider_mtp.emulator.hunting_control`. This module holds the engine
(execution).

Errors are :class:`HuntingError` with the HTTP status, the API code, a Kusto-style message and a
``kind``; DuckDB's own messages (which quote the generated SQL) are never passed on. Columns in
messages count from 1. Faults of the query found only while it runs (a literal that cannot be
converted, a malformed regex) are 400 ``semantic``, not 500: retrying cannot help.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import duckdb

from airflow_provider_mtp.emulator.config import (
    HUNTING_DATA_DAYS,
    HUNTING_MAX_CONCURRENT,
    HUNTING_MAX_RESULT_BYTES,
    HUNTING_ROW_LIMIT,
    HUNTING_TIMEOUT_S,
    Clock,
)
from airflow_provider_mtp.emulator.externaldata import ExternalData
from airflow_provider_mtp.emulator.hunting_control import (
    DaemonThreadPool,
    HuntingCounters,
    QueryControl,
    stopped_error,
)
from airflow_provider_mtp.emulator.hunting_errors import (
    SIZE_MESSAGE,
    HuntingError,
    HuntingErrorKind,
)
from airflow_provider_mtp.emulator.hunting_guards import prepare_query
from airflow_provider_mtp.emulator.hunting_results import (
    Fetched,
    HuntingOutput,
    api_type,
    convert_rows,
    format_datetime,
    format_timespan,
    jsonable,
    query_stats,
    result_bytes,
)
from airflow_provider_mtp.emulator.hunting_sql import (
    CLOCK_PLACEHOLDER,
    check_sources,
    engine_error,
    quote_name,
    translate,
    with_text_datetimes,
)
from airflow_provider_mtp.emulator.hunting_window import hunting_window, parse_timespan
from airflow_provider_mtp.emulator.kql_functions import install as install_functions

__all__ = [
    "HuntingEngine",
    "HuntingError",
    "HuntingErrorKind",
    "HuntingOutput",
    "QueryControl",
    "format_datetime",
    "format_timespan",
    "hunting_window",
    "jsonable",
    "parse_timespan",
    "prepare_query",
    "translate",
]

log = logging.getLogger(__name__)


_WINDOW_START_VAR = "mtp_hunting_window_start"
_WINDOW_END_VAR = "mtp_hunting_window_end"
_COLUMN_CACHE_SIZE = 512


#: How often a query waiting for a cursor looks whether it was stopped.
_SLOT_POLL_S = 0.1


@dataclass
class _PooledCursor:
    """A cursor with its TEMP VIEWs, and the engine generation (see :meth:`HuntingEngine.refresh`) it was made in."""

    cursor: duckdb.DuckDBPyConnection
    generation: int


class HuntingEngine:
    """KQL over the tables in DuckDB schema ``store``, answered the way Defender's hunting API does.

    :param con: the connection holding ``store.<table>`` (made by ``duckdb_kql.connect()``).
    :param clock: the data clock: ``now()``/``ago()`` and the data window read it.
    :param row_limit_behaviour: past ``row_limit`` rows, ``truncate`` or ``error``.
    :param query_timeout: seconds a query may run in DuckDB before it fails with a timeout.
    :param max_result_bytes: cap on the serialised rows (compact UTF-8 JSON).
    :param row_limit: most rows one answer holds.
    :param data_days: days of data visible, ending at ``now``.
    :param max_concurrent: queries running at once, each on its own cursor; more wait for one.

    Thread-safe. The list of tables (and their columns) is read on the first query that finds
    any; call :meth:`refresh` after creating more. :meth:`submit` runs a query on the engine's
    own daemon threads (as many as ``max_concurrent``); :meth:`close` stops every query.
    """

    def __init__(
        self,
        con: duckdb.DuckDBPyConnection,
        *,
        clock: Clock,
        row_limit_behaviour: str = "truncate",
        query_timeout: float = HUNTING_TIMEOUT_S,
        max_result_bytes: int = HUNTING_MAX_RESULT_BYTES,
        row_limit: int = HUNTING_ROW_LIMIT,
        data_days: int = HUNTING_DATA_DAYS,
        max_concurrent: int = HUNTING_MAX_CONCURRENT,
    ) -> None:
        if max_concurrent < 1:
            raise ValueError(f"max_concurrent must be at least 1, not {max_concurrent}")
        if row_limit_behaviour not in ("truncate", "error"):
            raise ValueError(
                f"row_limit_behaviour must be 'truncate' or 'error', not {row_limit_behaviour!r}"
            )
        self._con = con
        self._clock = clock
        self._row_limit_behaviour = row_limit_behaviour
        self._query_timeout = query_timeout
        self._max_result_bytes = max_result_bytes
        self._row_limit = row_limit
        self._data_days = data_days
        self._lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(max_concurrent)
        self._idle_cursors: list[_PooledCursor] = []
        self._generation = 0
        self._active: set[QueryControl] = set()
        self._active_lock = threading.Lock()
        self._closed = False
        self._counters = HuntingCounters(max_concurrent=max_concurrent)
        self._pool = DaemonThreadPool(max_concurrent, "hunting")
        self._schema: dict[str, list[str]] = {}
        self._schema_key: tuple[tuple[str, tuple[str, ...]], ...] = ()
        self._cache_lock = threading.Lock()
        self._column_cache: OrderedDict[str, tuple[list[str], list[str]]] = OrderedDict()
        #: What ``externaldata`` URLs serve (no network).
        self.externaldata = ExternalData()
        # hash() and other KQL functions the translator lacks, as SQL macros every cursor sees.
        install_functions(con)

    @property
    def lock(self) -> threading.Lock:
        """Guards the connection the engine was given: hold it to use that connection (to change rows).

        Queries run on their own cursors without it; DuckDB keeps each query's snapshot whole.
        """
        return self._lock

    @property
    def tables(self) -> list[str]:
        """The hunting tables queries can read (known after the first query)."""
        return sorted(self._schema)

    def run(
        self, query: str, *, timespan: str | None = None, control: QueryControl | None = None
    ) -> HuntingOutput:
        """Run one hunting query on the caller's thread.

        :param query: the KQL.
        :param timespan: the Graph ``Timespan`` (None: the whole data window).
        :param control: stops the query from another thread; holds its CPU and wall time after.
        :raises HuntingError: for anything the service would refuse, and for a stopped query.
        """
        control = control or QueryControl()
        self._track(control)
        started, cpu_started = time.perf_counter(), time.thread_time()
        failed = True
        try:
            output = self._run(query, timespan, control, started, cpu_started)
            failed = False
            return output
        finally:
            control.cpu_seconds = time.thread_time() - cpu_started
            control.elapsed_seconds = time.perf_counter() - started
            self._untrack(control)
            reason = control.reason if failed else None
            self._counters.ended(reason=reason, refused=failed, cpu_seconds=control.cpu_seconds)

    def _run(
        self, query: str, timespan: str | None, control: QueryControl, started: float, cpu_started: float
    ) -> HuntingOutput:
        now = self._clock.now()
        start, end = hunting_window(timespan, now, self._data_days)
        text = self.externaldata.expand(prepare_query(query))
        with self._cursor_for(control) as cursor:
            # Translation needs the tables, which the first cursor reads.
            sql, parameters = self._translate(text, now)
            fetched = self._execute(cursor, sql, parameters, (start, end), query, control)
        rows = convert_rows(fetched.names, fetched.fetched_types, self._limit_rows(fetched.rows))
        size = result_bytes(rows)
        if size > self._max_result_bytes:
            raise HuntingError(SIZE_MESSAGE, kind="size")
        elapsed = time.perf_counter() - started
        log.debug("hunting query: %d rows, %d bytes in %.1f ms", len(rows), size, elapsed * 1000)
        return HuntingOutput(
            schema=[(name, api_type(t)) for name, t in zip(fetched.names, fetched.types, strict=True)],
            rows=rows,
            stats=query_stats(elapsed, time.thread_time() - cpu_started, len(rows), size),
        )

    def submit(
        self, query: str, *, timespan: str | None = None, control: QueryControl | None = None
    ) -> Future[HuntingOutput]:
        """:meth:`run` on one of the engine's threads; the future fails with :class:`HuntingError` as ``run`` raises.

        While all threads are busy the query waits in their queue (counted as ``waiting``); stopping
        ``control`` then cancels the future: the query never runs. The threads are daemons: a query
        DuckDB does not let go of never keeps the process alive.
        """
        control = control or QueryControl()

        def start() -> HuntingOutput:
            control.dequeue()
            self._counters.add("waiting", -1)
            return self.run(query, timespan=timespan, control=control)

        def dropped(future: Future[HuntingOutput]) -> None:
            if future.cancelled():
                self._untrack(control)
                self._counters.add("waiting", -1)
                self._counters.ended(reason=control.reason or "shutdown", refused=True, cpu_seconds=0.0)

        self._track(control)
        self._counters.add("waiting")
        try:
            future = self._pool.submit(start)
        except RuntimeError:
            self._untrack(control)
            self._counters.add("waiting", -1)
            future = Future()
            future.set_exception(stopped_error("shutdown"))
            return future
        future.add_done_callback(dropped)
        control.queue(future)
        return future

    def close(self) -> None:
        """Stop every query, running or waiting, and refuse new ones (as shut down)."""
        with self._active_lock:
            self._closed = True
            active = list(self._active)
        for control in active:
            control.stop("shutdown")
        self._pool.shutdown()
        log.info("hunting engine closed; %d queries stopped", len(active))

    def wait_idle(self, timeout: float) -> bool:
        """Wait until no query runs or waits, at most ``timeout`` seconds; whether none does."""
        deadline = time.monotonic() + timeout
        while True:
            with self._active_lock:
                if not self._active:
                    return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.02)

    def _track(self, control: QueryControl) -> None:
        """Know ``control`` until its query ends, so :meth:`close` can stop it; stop it if closed."""
        with self._active_lock:
            self._active.add(control)
            closed = self._closed
        if closed:
            control.stop("shutdown")

    def _untrack(self, control: QueryControl) -> None:
        with self._active_lock:
            self._active.discard(control)

    def stats(self) -> dict[str, Any]:
        """The counters ``/_emulator/stats`` shows under ``hunting``."""
        return self._counters.snapshot()

    def reset_stats(self) -> None:
        """Zero the counters of ended queries."""
        self._counters.reset()

    @contextlib.contextmanager
    def _cursor_for(self, control: QueryControl) -> Iterator[duckdb.DuckDBPyConnection]:
        """A cursor of the pool for one query, waiting while ``max_concurrent`` queries hold one."""
        self._counters.add("waiting")
        try:
            while not self._slots.acquire(timeout=_SLOT_POLL_S):
                control.raise_if_stopped()
        finally:
            self._counters.add("waiting", -1)
        try:
            control.raise_if_stopped()
            pooled = self._take_cursor()
            self._counters.add("running")
            try:
                yield pooled.cursor
            finally:
                self._counters.add("running", -1)
                self._give_back(pooled)
        finally:
            self._slots.release()

    def _take_cursor(self) -> _PooledCursor:
        with self._lock:
            while self._idle_cursors:
                pooled = self._idle_cursors.pop()
                if pooled.generation == self._generation:
                    return pooled
                pooled.cursor.close()
            return self._new_cursor()

    def _give_back(self, pooled: _PooledCursor) -> None:
        with self._lock:
            if pooled.generation == self._generation:
                self._idle_cursors.append(pooled)
                return
        pooled.cursor.close()

    def _new_cursor(self) -> _PooledCursor:
        """A cursor with one window-filtered TEMP VIEW per ``store`` table (under the lock)."""
        cursor = self._con.cursor()
        cursor.execute("SET TimeZone='UTC'")
        # One thread: parallel aggregation and sorting may order rows (and ties) differently per run.
        cursor.execute("SET threads=1")
        cursor.execute(f"SET VARIABLE {_WINDOW_START_VAR} = NULL::TIMESTAMPTZ")
        cursor.execute(f"SET VARIABLE {_WINDOW_END_VAR} = NULL::TIMESTAMPTZ")
        schema = self._store_schema(cursor)
        for table, columns in schema.items():
            cursor.execute(self._view_sql(table, "Timestamp" in columns))
        key = tuple((table, tuple(columns)) for table, columns in schema.items())
        if key != self._schema_key:
            log.debug("hunting engine ready over %d tables", len(schema))
            self._schema, self._schema_key = schema, key
            with self._cache_lock:
                self._column_cache.clear()
        # No tables yet (hunting before the tenant is loaded): this cursor is not kept.
        return _PooledCursor(cursor, self._generation if schema else -1)

    def refresh(self) -> None:
        """Re-read the ``store`` tables on the next query, after tables were created or altered.

        Cursors in use are dropped when their query ends.
        """
        with self._lock:
            self._generation += 1
            idle, self._idle_cursors = self._idle_cursors, []
        for pooled in idle:
            pooled.cursor.close()

    @staticmethod
    def _store_schema(cursor: duckdb.DuckDBPyConnection) -> dict[str, list[str]]:
        rows = cursor.execute(
            "SELECT table_name, column_name FROM information_schema.columns "
            "WHERE table_schema = 'store' AND table_catalog = current_database() "
            "ORDER BY table_name, ordinal_position"
        ).fetchall()
        schema: dict[str, list[str]] = {}
        for table, column in rows:
            schema.setdefault(table, []).append(column)
        return schema

    @staticmethod
    def _view_sql(table: str, has_timestamp: bool) -> str:
        quoted = quote_name(table)
        window = (
            f" WHERE \"Timestamp\" >= getvariable('{_WINDOW_START_VAR}')"
            f" AND \"Timestamp\" < getvariable('{_WINDOW_END_VAR}')"
            if has_timestamp
            else ""
        )
        return f"CREATE OR REPLACE TEMP VIEW {quoted} AS SELECT * FROM store.{quoted}{window}"

    def _translate(self, text: str, now: datetime) -> tuple[str, dict[str, Any]]:
        sql, parameters = translate(text, self._schema_key)
        # The cached translation holds a placeholder where the data clock goes.
        clock = now.astimezone(UTC).replace(tzinfo=None)
        return sql, {name: clock if value == CLOCK_PLACEHOLDER else value for name, value in parameters}

    def _execute(
        self,
        cursor: duckdb.DuckDBPyConnection,
        sql: str,
        parameters: dict[str, Any],
        window: tuple[datetime, datetime],
        query: str,
        control: QueryControl,
    ) -> Fetched:
        cursor.execute(f"SET VARIABLE {_WINDOW_START_VAR} = ?::TIMESTAMPTZ", [window[0]])
        cursor.execute(f"SET VARIABLE {_WINDOW_END_VAR} = ?::TIMESTAMPTZ", [window[1]])
        try:
            with control.watching(cursor, self._query_timeout):
                control.raise_if_stopped()
                names, types = self._columns(cursor, sql, parameters)
                result = cursor.execute(with_text_datetimes(sql, names, types), parameters or None)
                fetched_types = [str(column[1]) for column in result.description or []]
                raw = result.fetchmany(self._row_limit + 1)
        except duckdb.Error as exc:
            if control.reason is not None:
                raise stopped_error(control.reason) from None
            raise engine_error(exc, query, sorted(self._schema)) from None
        finally:
            # Rows past the limit stay unread; drop them rather than hold the result open.
            cursor.abort()
        # Stopped as it ended: counted and answered as stopped, whatever DuckDB managed.
        control.raise_if_stopped()
        return Fetched(names=names, types=types, fetched_types=fetched_types, rows=raw)

    def _columns(
        self, cursor: duckdb.DuckDBPyConnection, sql: str, parameters: dict[str, Any]
    ) -> tuple[list[str], list[str]]:
        """The result's column names and DuckDB types, checked and bound once per SQL text.

        The types depend on the SQL alone (the tables are fixed once the engine is ready), and
        binding a statement costs a few milliseconds: a simple query is not much more.
        """
        with self._cache_lock:
            known = self._column_cache.get(sql)
            if known is not None:
                self._column_cache.move_to_end(sql)
                return known
        check_sources(cursor, sql, set(self._schema))
        relation = cursor.sql(sql, params=parameters or None)
        known = list(relation.columns), [str(t) for t in relation.types]
        with self._cache_lock:
            self._column_cache[sql] = known
            if len(self._column_cache) > _COLUMN_CACHE_SIZE:
                self._column_cache.popitem(last=False)
        return known

    def _limit_rows(self, raw: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
        if len(raw) <= self._row_limit:
            return raw
        if self._row_limit_behaviour == "error":
            raise HuntingError(
                f'Query result exceeds the {self._row_limit:,}-row limit. Use "summarize" to aggregate '
                f'results or "take" to truncate them.',
                kind="row_limit",
            )
        return raw[: self._row_limit]
