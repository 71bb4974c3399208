"""KQL to DuckDB SQL: translation (cached), checks on what the SQL reads, and DuckDB errors as :class:`HuntingError`."""

from __future__ import annotations

import functools
import json
import logging
import re
from datetime import datetime
from typing import Any

import duckdb
import duckdb_kql
from antlr4.tree.Tree import ParseTree, TerminalNode
from duckdb_kql.types import kusto_type

from airflow_provider_mtp.emulator.hunting_errors import (
    RECOGNITION_ERROR,
    HuntingError,
    internal_error,
    missing_table,
    unsupported,
    walk,
)
from airflow_provider_mtp.emulator.kql_constructs import unsupported_construct
from airflow_provider_mtp.emulator.kql_functions import teach_translator
from airflow_provider_mtp.emulator.kql_operators import STAGE, plan
from airflow_provider_mtp.emulator.kql_search import SEARCH_CTE, expand_search

log = logging.getLogger(__name__)


# DuckDB words an unknown column several ways: plainly, or (when duckdb-kql projects a name onto
# itself, as in `project X` and `summarize by X`) as a reference to a not-yet-defined alias.
_MISSING_COLUMN = re.compile(
    r'(?:Referenced column|does not have a column named|^Binder Error: Column|Alias with name) "([^"]+)"'
)
_MISSING_TABLE = re.compile(r"Table with name ([^\s!]+) does not exist")
_MISSING_FUNCTION = re.compile(r"Function with name ([^\s!]+) does not exist")
_DOC_HINT = re.compile(r"\s*\([^()]*(?:\.py|docs/|wave)[^()]*\)")


def _identifier_node(tree: ParseTree, name: str) -> TerminalNode | None:
    for node in walk(tree):
        if isinstance(node, TerminalNode) and node.getText() in (name, f"['{name}']", f'["{name}"]'):
            return node
    return None


def _operator_of(node: ParseTree) -> str | None:
    """The query operator keyword (``where``, ``project``, ...) around a node, if any."""
    current = node.parentCtx if isinstance(node, TerminalNode) else node
    while current is not None:
        kind = type(current).__name__
        if kind.endswith("OperatorContext") and kind not in (
            "PipedOperatorContext",
            "AfterPipeOperatorContext",
        ):
            return str(current.start.text).lower()
        current = current.parentCtx
    return None


def _name_in_query(query: str, name: str) -> TerminalNode | None:
    try:
        tree = duckdb_kql.parse(query).tree
    except duckdb_kql.KqlError:
        return None
    return _identifier_node(tree, name) if tree is not None else None


def _binder_error(message: str, query: str) -> HuntingError:
    match = _MISSING_COLUMN.search(message)
    node = _name_in_query(query, match.group(1)) if match else None
    if match and node is not None:
        operator = _operator_of(node)
        prefix = f"'{operator}' operator: " if operator else ""
        return HuntingError(
            f"{prefix}Failed to resolve scalar expression named '{match.group(1)}'", kind="semantic"
        )
    if match and not match.group(1).startswith(("_", "mtp_")):
        return HuntingError(f"Failed to resolve scalar expression named '{match.group(1)}'", kind="semantic")
    if match:
        # The name is one duckdb-kql made up, not the author's; say what is wrong without it.
        return HuntingError("Failed to resolve a column the query refers to.", kind="semantic")
    if re.search(r"No function matches|Cannot compare|cannot be cast|type", message, re.IGNORECASE):
        return HuntingError(
            "Semantic error: a function or operator was given arguments of types it does not accept.",
            kind="semantic",
        )
    return HuntingError("Semantic error: the query cannot be evaluated against the tables.", kind="semantic")


def _catalog_error(message: str, query: str, tables: list[str]) -> HuntingError:
    table = _MISSING_TABLE.search(message)
    if table and _name_in_query(query, table.group(1)) is not None:
        return missing_table(table.group(1), tables)
    function = _MISSING_FUNCTION.search(message)
    if function and _name_in_query(query, function.group(1)) is not None:
        return HuntingError(
            f"Failed to resolve scalar expression named '{function.group(1)}'", kind="semantic"
        )
    return HuntingError("Failed to resolve an entity the query refers to.", kind="semantic")


def _translation_error(
    exc: Exception, tables: list[str], text: str, original: str | None = None
) -> HuntingError:
    if isinstance(exc, duckdb_kql.KqlUnsupportedError):
        span = (exc.span.line, exc.span.column) if exc.span else None
        kind, _, called = exc.construct.rpartition(":")
        found = _name_in_query(text, called) if span is None and kind in ("function", "aggregate") else None
        if found is not None:
            # The engine gives no place for a function; the name's first use is it.
            span = (found.symbol.line, found.symbol.column)
        error = unsupported_construct(exc.construct, exc.hint, span, text, original)
        name = exc.construct.rpartition(":")[2]
        node = _name_in_query(text, name) if error.kind == "semantic" else None
        operator = _operator_of(node) if node is not None else None
        if operator and error.message.startswith("Failed to resolve"):
            return HuntingError(f"'{operator}' operator: {error.message}", kind="semantic")
        return error
    if isinstance(exc, duckdb_kql.KqlSyntaxError):
        return HuntingError(f"Query could not be parsed. ({RECOGNITION_ERROR})", kind="syntax")
    if isinstance(exc, duckdb_kql.KqlSchemaError):
        return _schema_error(exc, tables)
    if isinstance(exc, duckdb_kql.KqlError):
        return HuntingError(f"Semantic error: {_DOC_HINT.sub('', str(exc))}", kind="semantic")
    log.warning("duckdb-kql failed translating a hunting query", exc_info=exc)
    return internal_error()


def _schema_error(exc: duckdb_kql.KqlSchemaError, tables: list[str]) -> HuntingError:
    hint = exc.hint or ""
    if hint.startswith("unknown table"):
        return missing_table(exc.name, tables)
    # Hints end with advice for Python callers ("; known: [...]", "use duckdb_kql.kql()"): cut it.
    reason = re.split(r";|\s—\s|, use |; use ", _DOC_HINT.sub("", hint))[0].strip()
    because = f" ({reason})" if reason else ""
    return HuntingError(f"Failed to resolve '{exc.name}'{because}", kind="semantic")


#: Stands in for the data clock in cached translations; swapped for ``now`` on every run. Naive,
#: as duckdb-kql binds its clock (naive UTC).
CLOCK_PLACEHOLDER = datetime(1601, 1, 1, 0, 0, 0, 424242)

SchemaKey = tuple[tuple[str, tuple[str, ...]], ...]


@functools.lru_cache(maxsize=512)
def translate(text: str, schema: SchemaKey) -> tuple[str, tuple[tuple[str, Any], ...]]:
    """DuckDB SQL and its parameters for prepared KQL, the clock left as a placeholder.

    Cached: translation is pure-Python ANTLR work (5 to 35 ms) and clients repeat their queries.
    duckdb-kql binds the pinned clock as a parameter rather than writing it into the SQL, so one
    translation serves every ``now``; a ``set query_now`` in the query keeps its own value.

    :param text: KQL from :func:`prepare_query`.
    :param schema: ``(table, columns)`` pairs of the tables queries can read.
    :raises HuntingError: 400 ``syntax``/``semantic``/``unsupported``; 500 for a translator crash.
    """
    tables = [table for table, _ in schema]
    teach_translator()
    expanded, searches = expand_search(text, schema)
    planned = plan(expanded)
    original = getattr(text, "original", text)
    head = _to_sql(planned.text, schema, tables, planned.label, original)
    rest = (
        _to_sql(planned.rest, schema, tables, planned.label, original) if planned.rest is not None else None
    )
    helpers = [_to_sql(kql, schema, tables, planned.label, original) for _, kql in planned.ctes]
    parameters = dict(head.parameters)
    # Every part binds the same clock parameter, with the same value.
    for part in [rest, *helpers]:
        if part is not None:
            parameters.update(part.parameters)
    sql = planned.join(
        str(head), str(rest) if rest is not None else None, [str(helper) for helper in helpers]
    )
    if searches:
        ctes = ", ".join(f"{name} AS ({search_sql})" for name, search_sql in searches)
        sql = f"WITH {ctes} SELECT * FROM ({sql}) AS mtp_searched"
    return sql, tuple(parameters.items())


def _to_sql(
    text: str, schema: SchemaKey, tables: list[str], label: str = "", original: str | None = None
) -> Any:
    try:
        translated = duckdb_kql.to_sql(
            text,
            schema={table: list(columns) for table, columns in schema},
            query_now=CLOCK_PLACEHOLDER,
            allow_write=False,
        )
    except duckdb_kql.KqlSchemaError as exc:
        if exc.name.startswith(SEARCH_CTE):
            label = "search"
        if exc.name == STAGE or exc.name.startswith(SEARCH_CTE):
            raise unsupported(
                f"{label} | join",
                why=f"after {label}, join, lookup, union and a named mv-expand do not run here "
                "(they need its output columns before the query runs)",
                valid=True,
            ) from None
        raise _translation_error(exc, tables, text, original) from None
    except Exception as exc:
        raise _translation_error(exc, tables, text, original) from None
    if translated.unbound:
        names = ", ".join(translated.unbound)
        raise HuntingError(f"Query parameter(s) {names} declared without a value", kind="semantic")
    return translated


def engine_error(exc: duckdb.Error, query: str, tables: list[str]) -> HuntingError:
    log.debug("DuckDB refused a hunting query: %s", exc)
    if isinstance(exc, duckdb.BinderException):
        return _binder_error(str(exc), query)
    if isinstance(exc, duckdb.CatalogException):
        return _catalog_error(str(exc), query, tables)
    # The query's own fault (Kusto refuses these too), so not the 500's "try again in a few minutes".
    if isinstance(exc, duckdb.ConversionException | duckdb.TypeMismatchException):
        return HuntingError(
            "Semantic error: a value cannot be converted to the type it is compared with or used as; "
            "check literals against the column types.",
            kind="semantic",
        )
    if isinstance(exc, duckdb.InvalidInputException | duckdb.OutOfRangeException):
        return HuntingError(
            "Semantic error: a function was given an invalid argument (such as a malformed regular "
            "expression) or a value out of range.",
            kind="semantic",
        )
    log.warning("DuckDB failed running a hunting query: %s", exc)
    if isinstance(exc, duckdb.OutOfMemoryException):
        return HuntingError(
            "Query stopped due to excessive resource consumption.",
            kind="internal",
            status=500,
            code="InternalServerError",
        )
    return internal_error()


def quote_name(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def with_text_datetimes(sql: str, names: list[str], types: list[str]) -> str:
    """``sql`` with its datetime columns written as API text by DuckDB, not Python.

    Formatting 100,000 datetimes in Python takes longer than running most queries. A projection
    over the query keeps its row order.
    """
    datetimes = [kusto_type(t) == "datetime" for t in types]
    if not any(datetimes) or len(set(names)) != len(names):
        return sql
    columns = [
        f"strftime({quote_name(name)}, '%Y-%m-%dT%H:%M:%S.%f') || '0Z' AS {quote_name(name)}"
        if is_datetime
        else quote_name(name)
        for name, is_datetime in zip(names, datetimes, strict=True)
    ]
    return f"SELECT {', '.join(columns)} FROM ({sql}) AS mtp_hunting_result"


def _sources(node: Any, tables: list[tuple[str, str, str]], functions: list[str], ctes: set[str]) -> None:
    """Collect the table references, table functions and CTE names of DuckDB's parse tree."""
    if isinstance(node, list):
        for item in node:
            _sources(item, tables, functions, ctes)
        return
    if not isinstance(node, dict):
        return
    if node.get("type") == "BASE_TABLE":
        tables.append((node.get("catalog_name", ""), node.get("schema_name", ""), node.get("table_name", "")))
    elif node.get("type") == "TABLE_FUNCTION":
        functions.append(str(node.get("function", {}).get("function_name", "?")))
    for entry in (node.get("cte_map") or {}).get("map", []):
        ctes.add(entry.get("key", ""))
    for value in node.values():
        _sources(value, tables, functions, ctes)


def check_sources(cursor: duckdb.DuckDBPyConnection, sql: str, hunting_tables: set[str]) -> None:
    """Refuse SQL that reads anything but the hunting tables and its own CTEs.

    A KQL table name reaches DuckDB as written, so ``duckdb_tables`` or ``sqlite_master`` would
    otherwise answer with the database's internals. DuckDB's own parser says what the SQL reads.
    """
    rows = cursor.execute("SELECT json_serialize_sql(?)", [sql]).fetchall()
    # fetchall, not fetchone: an unfinished result blocks the binding of a PIVOT, which runs a query.
    (tree_text,) = rows[0] if rows else ("{}",)
    tables: list[tuple[str, str, str]] = []
    functions: list[str] = []
    ctes: set[str] = set()
    _sources(json.loads(tree_text).get("statements", []), tables, functions, ctes)
    for catalog, schema, table in tables:
        if catalog or schema or (table not in hunting_tables and table not in ctes):
            raise missing_table(table, sorted(hunting_tables))
    if functions:
        log.warning("hunting SQL calls table functions %s; refused", functions)
        raise unsupported(f"table function {functions[0]}")
