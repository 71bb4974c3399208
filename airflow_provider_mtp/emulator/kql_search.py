"""``search`` and ``find`` over the hunting tables: a union of the tables, each filtered.

Both need the tables' columns, so they are expanded at translation (where the schema is known),
not in query preparation. ``search`` becomes SQL (one term match per row over the string columns
joined, rather than one per column, which made a query over every table take seconds); ``find``
becomes a KQL ``union``. ``search "term"`` is Kusto's ``where * has "term"`` over every string
column of every table (``in (...)`` narrows the tables; ``kind=case_sensitive`` uses ``has_cs``;
``"term*"``, ``"*term"`` and ``"*term*"`` use ``hasprefix``, ``hassuffix`` and ``contains``); the
result starts with ``$table``. ``find [in (...)] where <predicate> [project ...]`` keeps the tables
that have every column the predicate names; its result is ``source_``, then the projected columns,
or else the predicate's columns and ``pack_``, a bag of the row's other non-empty columns.
"""

from __future__ import annotations

import functools
import re
from typing import Any

import duckdb_kql
from duckdb_kql._antlr.KqlParser import KqlParser
from duckdb_kql.translate.functions import term_match_sql

from airflow_provider_mtp.emulator.hunting_errors import missing_table, unsupported
from airflow_provider_mtp.emulator.kql_text import (
    Edit,
    apply_edits,
    first,
    identifier,
    nodes,
    same_span,
    source,
    string_literal,
    string_value,
)

SchemaKey = tuple[tuple[str, tuple[str, ...]], ...]

#: Kusto column types that ``search`` looks into.
_SEARCHED_KINDS = {"string", "dynamic"}


@functools.lru_cache(maxsize=1)
def _kinds() -> dict[str, dict[str, str]]:
    from airflow_provider_mtp.emulator.schema import table_schemas

    return {table: dict(columns) for table, columns in table_schemas().items()}


def _string_columns(table: str, columns: tuple[str, ...]) -> list[str]:
    kinds = _kinds().get(table, {})
    return [column for column in columns if kinds.get(column, "string") in _SEARCHED_KINDS]


def _tables_in(clause: Any, schema: dict[str, tuple[str, ...]]) -> list[str]:
    if clause is None:
        return sorted(schema)
    tables: list[str] = []
    for item in clause.findOperatorSource():
        name = item.getText()
        if "*" in name:
            pattern = re.compile(re.escape(name).replace(r"\*", ".*"))
            tables.extend(table for table in sorted(schema) if pattern.fullmatch(table))
        elif name in schema:
            tables.append(name)
        else:
            raise missing_table(name, sorted(schema))
    return tables


def _case_renames(tables: list[str], schema: dict[str, tuple[str, ...]]) -> dict[str, dict[str, str]]:
    """Columns whose names differ only in case from an earlier table's: ``{table: {column: new name}}``.

    Kusto keeps ``Isp`` and ``ISP`` apart in a union; DuckDB cannot, so the later one becomes
    ``ISP_<table>``.
    """
    seen: dict[str, str] = {}
    renames: dict[str, dict[str, str]] = {}
    for table in tables:
        for column in schema[table]:
            known = seen.setdefault(column.lower(), column)
            if known != column:
                renames.setdefault(table, {})[column] = f"{column}_{table}"
    return renames


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _term_sql(haystack: str, term: str, case_sensitive: bool) -> str:
    lead = trail = True
    if len(term) > 1 and term.startswith("*") and term.endswith("*"):
        term, lead, trail = term[1:-1], False, False
    elif term.endswith("*"):
        term, trail = term[:-1], False
    elif term.startswith("*"):
        term, lead = term[1:], False
    if not lead and not trail:
        like = "LIKE" if case_sensitive else "ILIKE"
        escaped = term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_").replace("'", "''")
        return f"({haystack} {like} '%{escaped}%' ESCAPE '\\')"
    needle = "'" + term.replace("'", "''") + "'"
    return term_match_sql(haystack, needle, case_sensitive=case_sensitive, lead=lead, trail=trail)


def _search_sql(node: Any, text: str, schema: dict[str, tuple[str, ...]]) -> str:
    """The SQL of ``search [kind=...] [in (...)] "term"``: one filtered SELECT per table, by name."""
    predicate = node.unnamedExpression()
    kind = " ".join(parameter.getText().lower() for parameter in node.relaxedQueryOperatorParameter())
    case_sensitive = "case_sensitive" in kind
    term = string_value(source(text, predicate)) if predicate is not None else None
    literal = first(predicate, KqlParser.StringLiteralExpressionContext) if predicate is not None else None
    if term is None or literal is None or not same_span(literal, predicate):
        raise unsupported(
            "search <predicate>",
            node.start,
            'only a single search term runs here, as in: search "term" or search in (T1, T2) "term"',
            valid=True,
        )
    tables = _tables_in(node.searchOperatorInClause(), schema)
    renames = _case_renames(tables, schema)
    arms = []
    for table in tables:
        columns = _string_columns(table, schema[table])
        # One match over all the string columns joined by a character that is never part of a
        # term: the same rows as `C1 has t or C2 has t ...`, at a fraction of the cost.
        joined = "concat_ws(chr(1), " + ", ".join(f"CAST({_quote(c)} AS VARCHAR)" for c in columns) + ")"
        where = _term_sql(joined, term, case_sensitive) if columns else "FALSE"
        renamed = renames.get(table, {})
        projection = ", ".join(f"{_quote(c)} AS {_quote(renamed.get(c, c))}" for c in schema[table])
        arms.append(
            f'SELECT {_sql_string(table)} AS "$table", {projection} FROM {_quote(table)} WHERE {where}'
        )
    if not arms:
        return 'SELECT CAST(NULL AS VARCHAR) AS "$table" WHERE FALSE'
    return " UNION ALL BY NAME ".join(f"({arm})" for arm in arms)


def _sql_string(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _referenced(predicate: Any, columns: set[str]) -> list[str]:
    names: list[str] = []
    for reference in nodes(predicate, KqlParser.SimpleNameReferenceContext):
        name = reference.getText()
        if name in columns and name not in names:
            names.append(name)
    return names


def _find(node: Any, text: str, schema: dict[str, tuple[str, ...]]) -> str:
    where = node.findOperatorParametersWhereClause()
    if where is None or node.findOperatorProjectSmartClause() or node.findOperatorProjectAwayClause():
        raise unsupported(
            "find",
            node.start,
            "this emulator runs find [in (T1, T2)] where <predicate> [project ...]",
            valid=True,
        )
    in_clause = where.findOperatorInClause()
    predicate = node.unnamedExpression()
    every = {column for columns in schema.values() for column in columns}
    referenced = _referenced(predicate, every)
    tables = [
        table
        for table in (_tables_in(in_clause, schema) if in_clause is not None else sorted(schema))
        if all(column in schema[table] for column in referenced)
    ]
    project = node.findOperatorProjectClause()
    projected = [item.getText() for item in project.findOperatorProjectExpression()] if project else None
    arms = []
    for table in tables:
        columns = schema[table]
        if projected is not None:
            chosen = [
                f"{identifier(name)} = {identifier(name) if name in columns else 'dynamic(null)'}"
                for name in projected
            ]
        else:
            others = [column for column in columns if column not in referenced]
            bag = ", ".join(f"{string_literal(column)}, {identifier(column)}" for column in others)
            chosen = [identifier(name) for name in referenced] + [f"pack_ = bag_pack({bag})"]
        arms.append(
            f"({table} | where {source(text, predicate)} | project source_ = {string_literal(table)}, "
            f"{', '.join(chosen)})"
        )
    if not arms:
        return "print source_ = '' | take 0"
    return f"union {', '.join(arms)}"


#: The CTE a ``search`` source's rows are read from (``mtp_search_1``, ``mtp_search_2``...).
SEARCH_CTE = "mtp_search"


def expand_search(text: str, schema_key: SchemaKey) -> tuple[str, list[tuple[str, str]]]:
    """``text`` with each ``search``/``find`` source replaced.

    ``find`` becomes the ``union`` it stands for; ``search`` becomes a name whose rows SQL gives.

    :param text: prepared KQL.
    :param schema_key: ``(table, columns)`` pairs of the hunting tables.
    :returns: the KQL, and ``(name, SQL)`` of each ``search`` source.
    """
    lowered = text.lower()
    if "search" not in lowered and "find" not in lowered:
        return text, []
    tree = duckdb_kql.parse(text).tree
    if tree is None:
        return text, []
    schema = dict(schema_key)
    edits: list[Edit] = []
    searches: list[tuple[str, str]] = []
    for node in nodes(tree, KqlParser.SearchOperatorContext):
        if not _is_source(node):
            raise unsupported("T | search", node.start, "search runs here only as a source", valid=True)
        name = f"{SEARCH_CTE}_{len(searches) + 1}"
        searches.append((name, _search_sql(node, text, schema)))
        edits.append(Edit(node.start.start, node.stop.stop + 1, name))
    for node in nodes(tree, KqlParser.FindOperatorContext):
        if not _is_source(node):
            raise unsupported("T | find", node.start, "find runs here only as a source", valid=True)
        edits.append(Edit(node.start.start, node.stop.stop + 1, _find(node, text, schema)))
    return (apply_edits(text, edits) if edits else text), searches


def _is_source(node: Any) -> bool:
    parent = node.parentCtx
    while parent is not None:
        if isinstance(parent, KqlParser.PipedOperatorContext):
            return False
        if isinstance(parent, KqlParser.StatementContext):
            return True
        parent = parent.parentCtx
    return True
