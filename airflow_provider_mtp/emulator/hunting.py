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
4. **Execution** on one DuckDB cursor owned by the engine, under a lock, DuckDB on one thread: the
   same question gets the same answer (including ties in ``top``) call after call. Each hunting
   table is a TEMP VIEW in that cursor over ``store.<table>`` filtered on the window, which lives
   in two session variables, so nothing is re-created per query. A timer interrupts DuckDB after
   ``query_timeout`` seconds.
5. **Result.** At most ``row_limit + 1`` rows are fetched (the result streams); the row limit then
   truncates or fails. Values become JSON-ready: datetimes with 7 fractional digits and ``Z``
   (written by DuckDB, which is far faster than Python), dynamic values parsed, ``NaN`` and
   ``Infinity`` as the strings Kusto writes. The serialised size (compact UTF-8 JSON of the row
   list) is checked against ``max_result_bytes``.

Each step has its module: the window in :mod:`~airflow_provider_mtp.emulator.hunting_window`,
preparation in :mod:`~airflow_provider_mtp.emulator.hunting_guards`, translation, the checks on the
SQL and DuckDB's errors in :mod:`~airflow_provider_mtp.emulator.hunting_sql`, result values in
:mod:`~airflow_provider_mtp.emulator.hunting_results`, the error type in
:mod:`~airflow_provider_mtp.emulator.hunting_errors`. This module holds the engine (execution).

Errors are :class:`HuntingError` with the HTTP status, the API code, a Kusto-style message and a
``kind``; DuckDB's own messages (which quote the generated SQL) are never passed on. Columns in
messages count from 1. Faults of the query found only while it runs (a literal that cannot be
converted, a malformed regex) are 400 ``semantic``, not 500: retrying cannot help.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import duckdb

from airflow_provider_mtp.emulator.config import (
    HUNTING_DATA_DAYS,
    HUNTING_MAX_RESULT_BYTES,
    HUNTING_ROW_LIMIT,
    HUNTING_TIMEOUT_S,
    Clock,
)
from airflow_provider_mtp.emulator.hunting_errors import (
    SIZE_MESSAGE,
    TIMEOUT_MESSAGE,
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

__all__ = [
    "HuntingEngine",
    "HuntingError",
    "HuntingErrorKind",
    "HuntingOutput",
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


@dataclass
class _Watchdog:
    """Interrupts the cursor once ``timeout`` passes, unless the query finished first."""

    cursor: duckdb.DuckDBPyConnection
    timeout: float
    fired: bool = False
    _done: bool = False
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _timer: threading.Timer | None = None

    def __enter__(self) -> _Watchdog:
        self._timer = threading.Timer(self.timeout, self._fire)
        self._timer.daemon = True
        self._timer.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        # Under the lock, so an interrupt can never land on the engine's next query.
        with self._lock:
            self._done = True
        if self._timer is not None:
            self._timer.cancel()

    def _fire(self) -> None:
        with self._lock:
            if not self._done:
                self.fired = True
                self.cursor.interrupt()


class HuntingEngine:
    """KQL over the tables in DuckDB schema ``store``, answered the way Defender's hunting API does.

    :param con: the connection holding ``store.<table>`` (made by ``duckdb_kql.connect()``).
    :param clock: the data clock: ``now()``/``ago()`` and the data window read it.
    :param row_limit_behaviour: past ``row_limit`` rows, ``truncate`` or ``error``.
    :param query_timeout: seconds a query may run in DuckDB before it fails with a timeout.
    :param max_result_bytes: cap on the serialised rows (compact UTF-8 JSON).
    :param row_limit: most rows one answer holds.
    :param data_days: days of data visible, ending at ``now``.

    Thread-safe: queries run one at a time on one cursor. The list of tables (and their columns)
    is read on the first query that finds any; call :meth:`refresh` after creating more.
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
    ) -> None:
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
        self._cursor: duckdb.DuckDBPyConnection | None = None
        self._schema: dict[str, list[str]] = {}
        self._schema_key: tuple[tuple[str, tuple[str, ...]], ...] = ()
        self._column_cache: OrderedDict[str, tuple[list[str], list[str]]] = OrderedDict()

    @property
    def lock(self) -> threading.Lock:
        """The lock queries run under: hold it to change the tables between two queries."""
        return self._lock

    @property
    def tables(self) -> list[str]:
        """The hunting tables queries can read (known after the first query)."""
        return sorted(self._schema)

    def run(self, query: str, *, timespan: str | None = None) -> HuntingOutput:
        """Run one hunting query.

        :param query: the KQL.
        :param timespan: the Graph ``Timespan`` (None: the whole data window).
        :raises HuntingError: for anything the service would refuse.
        """
        started, cpu_started = time.perf_counter(), time.thread_time()
        now = self._clock.now()
        start, end = hunting_window(timespan, now, self._data_days)
        text = prepare_query(query)
        with self._lock:
            self._ready()
        # Translation is pure Python: other callers may use DuckDB meanwhile.
        sql, parameters = self._translate(text, now)
        with self._lock:
            fetched = self._execute(self._ready(), sql, parameters, (start, end), query)
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

    def _ready(self) -> duckdb.DuckDBPyConnection:
        """The engine's cursor, with one window-filtered TEMP VIEW per ``store`` table."""
        if self._cursor is not None:
            return self._cursor
        cursor = self._con.cursor()
        cursor.execute("SET TimeZone='UTC'")
        # One thread: parallel aggregation and sorting may order rows (and ties) differently per run.
        cursor.execute("SET threads=1")
        cursor.execute(f"SET VARIABLE {_WINDOW_START_VAR} = NULL::TIMESTAMPTZ")
        cursor.execute(f"SET VARIABLE {_WINDOW_END_VAR} = NULL::TIMESTAMPTZ")
        schema = self._store_schema(cursor)
        for table, columns in schema.items():
            cursor.execute(self._view_sql(table, "Timestamp" in columns))
        log.debug("hunting engine ready over %d tables", len(schema))
        self._schema = schema
        self._schema_key = tuple((table, tuple(columns)) for table, columns in schema.items())
        self._column_cache.clear()
        # No tables yet (hunting before the tenant is loaded): try again next time.
        if schema:
            self._cursor = cursor
        return cursor

    def refresh(self) -> None:
        """Re-read the ``store`` tables on the next query, after tables were created or altered."""
        with self._lock:
            if self._cursor is not None:
                self._cursor.close()
            self._cursor = None

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
    ) -> Fetched:
        cursor.execute(f"SET VARIABLE {_WINDOW_START_VAR} = ?::TIMESTAMPTZ", [window[0]])
        cursor.execute(f"SET VARIABLE {_WINDOW_END_VAR} = ?::TIMESTAMPTZ", [window[1]])
        watchdog = _Watchdog(cursor, self._query_timeout)
        try:
            with watchdog:
                names, types = self._columns(cursor, sql, parameters)
                result = cursor.execute(with_text_datetimes(sql, names, types), parameters or None)
                fetched_types = [str(column[1]) for column in result.description or []]
                raw = result.fetchmany(self._row_limit + 1)
        except duckdb.Error as exc:
            if watchdog.fired:
                raise HuntingError(TIMEOUT_MESSAGE, kind="timeout") from None
            raise engine_error(exc, query, sorted(self._schema)) from None
        finally:
            # Rows past the limit stay unread; drop them rather than hold the result open.
            cursor.abort()
        if watchdog.fired:
            raise HuntingError(TIMEOUT_MESSAGE, kind="timeout")
        return Fetched(names=names, types=types, fetched_types=fetched_types, rows=raw)

    def _columns(
        self, cursor: duckdb.DuckDBPyConnection, sql: str, parameters: dict[str, Any]
    ) -> tuple[list[str], list[str]]:
        """The result's column names and DuckDB types, checked and bound once per SQL text.

        The types depend on the SQL alone (the tables are fixed once the engine is ready), and
        binding a statement costs a few milliseconds: a simple query is not much more.
        """
        known = self._column_cache.get(sql)
        if known is not None:
            self._column_cache.move_to_end(sql)
            return known
        check_sources(cursor, sql, set(self._schema))
        relation = cursor.sql(sql, params=parameters or None)
        known = list(relation.columns), [str(t) for t in relation.types]
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
