"""Operators duckdb-kql lacks, run as SQL around the translation of the query before them.

``project-reorder``, ``make-series`` and ``evaluate bag_unpack`` shape the *result*, so they can
run as a DuckDB ``SELECT`` over the SQL duckdb-kql writes for the rest of the query:

* ``project-reorder A, B*`` anywhere in the query's last pipeline: a later ``project``,
  ``summarize``, ``distinct``... decides the columns anyway (the reorder is dropped); otherwise the
  order it sets survives the operators after it, so it is applied last (``COLUMNS`` by name).
* ``make-series Agg [default=d], ... on T from F to E step S [by G, ...]`` as the last operator:
  duckdb-kql runs ``summarize Agg by G, bin``; the SQL around fills the missing bins with the
  default and builds one array per aggregate, plus the array of bin starts.
* ``evaluate bag_unpack(col [, prefix])`` as the last operator: DuckDB's ``PIVOT`` makes one column
  per key (sorted by name, as Kusto does) in place of ``col``.

:func:`plan` returns the KQL to translate and the SQL wrappers to apply to its translation.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import duckdb_kql
from duckdb_kql._antlr.KqlParser import KqlParser

from airflow_provider_mtp.emulator.hunting_errors import unsupported
from airflow_provider_mtp.emulator.kql_text import Edit, apply_edits, nodes, source, string_value

Wrapper = Callable[[str], str]

#: Operators whose output columns do not depend on the input's column order.
_RESHAPERS = (
    KqlParser.ProjectOperatorContext,
    KqlParser.SummarizeOperatorContext,
    KqlParser.DistinctOperatorContext,
    KqlParser.CountOperatorContext,
    KqlParser.MakeSeriesOperatorContext,
    KqlParser.ProjectKeepOperatorContext,
    KqlParser.GetSchemaOperatorContext,
    KqlParser.TopNestedOperatorContext,
)
_TRAILING_IGNORED = (KqlParser.RenderOperatorContext,)


@dataclass
class Plan:
    """What to translate, and the SQL that finishes it.

    :param text: the KQL up to and including the operator run in SQL.
    :param wrappers: SQL around the translation of ``text`` (innermost first).
    :param rest: the KQL after that operator, reading :data:`STAGE`; None if nothing follows.
    :param outer: SQL around the whole (the ``project-reorder`` moved to the end).
    :param label: the SQL-run operator, in KQL terms, for error messages.
    :param ctes: ``(name, KQL)`` of helper tables the wrappers read (``make-series``' range).
    """

    text: str
    wrappers: list[Wrapper] = field(default_factory=list)
    rest: str | None = None
    outer: list[Wrapper] = field(default_factory=list)
    label: str = ""
    ctes: list[tuple[str, str]] = field(default_factory=list)

    def join(self, head_sql: str, rest_sql: str | None, cte_sqls: list[str] | None = None) -> str:
        """The whole query's SQL from the translations of :attr:`text`, :attr:`rest` and :attr:`ctes`."""
        sql = head_sql
        for wrapper in self.wrappers:
            sql = wrapper(sql)
        if rest_sql is not None:
            sql = f"WITH {STAGE} AS ({sql}) SELECT * FROM ({rest_sql}) AS mtp_rest"
        for wrapper in self.outer:
            sql = wrapper(sql)
        if cte_sqls:
            helpers = ", ".join(
                f"{name} AS ({cte_sql})" for (name, _), cte_sql in zip(self.ctes, cte_sqls, strict=True)
            )
            sql = f"WITH {helpers} SELECT * FROM ({sql}) AS mtp_all"
        return sql


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _sql_string(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _last_pipeline(tree: Any) -> Any | None:
    statements = [node for node in nodes(tree, KqlParser.QueryStatementContext)]
    if not statements:
        return None
    expression = statements[-1].expression()
    pipe = expression.getChild(0) if expression is not None else None
    return pipe if isinstance(pipe, KqlParser.PipeExpressionContext) else None


def _operator(piped: Any) -> Any:
    return piped.afterPipeOperator().getChild(0)


def _name_pattern(reference: Any) -> str:
    text = reference.getText()
    if text.startswith("[") and text.endswith("]"):
        value = string_value(text[1:-1])
        return re.escape(value if value is not None else text)
    return ".*".join(re.escape(part) for part in text.split("*"))


def _reorder_wrapper(patterns: list[str]) -> Wrapper:
    def wrap(sql: str) -> str:
        columns: list[str] = []
        for index, pattern in enumerate(patterns):
            earlier = "|".join(patterns[:index])
            condition = f"regexp_full_match(c, {_sql_string(pattern)})"
            if earlier:
                condition += f" AND NOT regexp_full_match(c, {_sql_string(earlier)})"
            columns.append(f"COLUMNS(lambda c: {condition})")
        rest = f"COLUMNS(lambda c: NOT regexp_full_match(c, {_sql_string('|'.join(patterns))}))"
        return f"SELECT {', '.join(columns)}, {rest} FROM ({sql}) AS mtp_reordered"

    return wrap


def _reorders(tree: Any, pipe: Any | None, text: str) -> tuple[list[Edit], list[Wrapper]]:
    operators = list(pipe.pipedOperator()) if pipe is not None else []
    in_pipeline = {id(_operator(piped)) for piped in operators}
    for node in nodes(tree, KqlParser.ProjectReorderOperatorContext):
        if id(node) not in in_pipeline:
            raise unsupported(
                "project-reorder", node.start, "it runs here only in the query's last pipeline", valid=True
            )
    edits: list[Edit] = []
    wrappers: list[Wrapper] = []
    for index, piped in enumerate(operators):
        node = _operator(piped)
        if not isinstance(node, KqlParser.ProjectReorderOperatorContext):
            continue
        edits.append(Edit(piped.start.start, piped.stop.stop + 1, ""))
        later = [_operator(after) for after in operators[index + 1 :]]
        if any(isinstance(after, _RESHAPERS) for after in later):
            continue
        if any(isinstance(after, KqlParser.ProjectRenameOperatorContext) for after in later):
            raise unsupported(
                "project-reorder",
                node.start,
                "it runs here only when no project-rename follows it",
                valid=True,
            )
        expressions = node.projectReorderExpression()
        if any(expression.getChildCount() > 1 for expression in expressions):
            raise unsupported(
                "project-reorder ... asc/desc", node.start, "list the columns in the order wanted", valid=True
            )
        wrappers.append(
            _reorder_wrapper(
                [_name_pattern(expression.simpleOrWildcardedNameReference()) for expression in expressions]
            )
        )
    return edits, wrappers


# --------------------------------------------------------------------------------------------
# make-series
# --------------------------------------------------------------------------------------------


def _aggregate_name(aggregate: Any) -> str:
    """The column Kusto names an aggregate: its given name, ``count_``, or ``<function>_<column>``."""
    named = aggregate.namedExpressionNameClause()
    if named is not None:
        return str(named.getText()).rstrip("=").strip()
    match = re.fullmatch(r"(\w+)\((.*)\)", aggregate.getText(), re.S)
    if match is None:
        return "Column1"
    function, argument = match.groups()
    if function in ("countif", "dcountif", "sumif", "avgif") or not re.fullmatch(r"\w*", argument):
        argument = ""
    function = {"make_list": "list", "make_set": "set", "count": "count"}.get(function, function)
    return f"{function}_{argument}" if function != "count" else "count_"


def _default_sql(clause: Any) -> str:
    if clause is None:
        return "0"
    text = clause.namedExpression().getText()
    if re.fullmatch(r"-?\d+(\.\d+)?", text):
        return text
    if text.lower() in ("real(null)", "double(null)", "long(null)", "int(null)", "dynamic(null)"):
        return "NULL"
    if text.lower() in ("real(nan)", "double(nan)"):
        return "CAST('NaN' AS DOUBLE)"
    raise unsupported(
        f"make-series ... default={text}", clause.start, "use a number or real(null) as default", valid=True
    )


def _series_aggregates(node: Any, text: str) -> list[tuple[str, str, Any]]:
    """``(column, aggregate KQL, default clause)`` for each aggregate of a ``make-series``.

    The grammar reads a first ``Name = f(x)`` as the operator parameter ``Name=f`` followed by an
    aggregate ``(x)``; the two are put back together here.
    """
    items: list[tuple[str, str, Any]] = []
    pending: tuple[str, str] | None = None
    for child in node.getChildren():
        if isinstance(child, KqlParser.RelaxedQueryOperatorParameterContext):
            match = re.fullmatch(r"([A-Za-z_]\w*)\s*=\s*([A-Za-z_]\w*)", source(text, child))
            if match and match.group(1).lower() != "kind":
                pending = (match.group(1), match.group(2))
        elif isinstance(child, KqlParser.MakeSeriesOperatorAggregationContext):
            expression = child.namedExpression()
            clause = expression.namedExpressionNameClause()
            if pending is not None and source(text, expression).lstrip().startswith("("):
                name, kql = pending[0], pending[1] + source(text, expression)
            elif clause is not None:
                name = str(clause.getText()).rstrip("=").strip()
                kql = source(text, expression.unnamedExpression())
            else:
                name, kql = _aggregate_name(expression), source(text, expression)
            pending = None
            items.append((name, kql, child.makeSeriesOperatorExpressionDefaultClause()))
    return items


def _make_series(node: Any, piped: Any, text: str, lets: str) -> tuple[Edit, Wrapper, tuple[str, str]]:
    range_clause = node.makeSeriesOperatorFromToStepClause()
    if range_clause is None or range_clause.FROM() is None or range_clause.TO() is None:
        raise unsupported(
            "make-series", node.start, "it runs here with 'on T from start to end step s'", valid=True
        )
    start, end, step = (source(text, expression) for expression in range_clause.namedExpression())
    axis = source(text, node.makeSeriesOperatorOnClause().namedExpression())
    if not re.fullmatch(r"[A-Za-z_]\w*", axis):
        raise unsupported(
            "make-series ... on <expression>", node.start, "name a datetime column after 'on'", valid=True
        )
    aggregates = _series_aggregates(node, text)
    names = [name for name, _, _ in aggregates]
    defaults = [_default_sql(default) for _, _, default in aggregates]
    by_clause = node.makeSeriesOperatorByClause()
    groups = [source(text, expression) for expression in by_clause.namedExpression()] if by_clause else []
    group_names = []
    for group in groups:
        match = re.fullmatch(r"\s*([A-Za-z_]\w*)\s*(=.*)?", group, re.S)
        if match is None:
            raise unsupported(
                "make-series ... by <expression>",
                node.start,
                "name each group: by G = <expression>",
                valid=True,
            )
        group_names.append(match.group(1))
    summarized = ", ".join(f"{_kql_name(name)} = {kql}" for name, kql, _ in aggregates)
    keys = ", ".join([*groups, f"mtp_bin = tolong(({axis} - ({start})) / ({step}))"])
    kql = f"| where {axis} >= ({start}) and {axis} < ({end}) | summarize {summarized} by {keys}"
    parameters = " ".join(parameter.getText().lower() for parameter in node.relaxedQueryOperatorParameter())
    nonempty = "kind=nonempty" in parameters and not groups
    wrapper = _series_wrapper(group_names, names, defaults, axis, nonempty)
    bounds = f"{lets}print mtp_from = ({start}), mtp_to = ({end}), mtp_step = ({step})"
    return Edit(piped.start.start, piped.stop.stop + 1, kql), wrapper, (_RANGE, bounds)


def _kql_name(name: str) -> str:
    return name if re.fullmatch(r"[A-Za-z_]\w*", name) else "['" + name + "']"


_RANGE = "mtp_range"


def _series_wrapper(
    groups: list[str], names: list[str], defaults: list[str], axis: str, nonempty: bool
) -> Wrapper:
    def wrap(sql: str) -> str:
        keys = [_quote(group) for group in groups]
        joins = " AND ".join([f"s.{key} IS NOT DISTINCT FROM g.{key}" for key in keys] + ["s.mtp_bin = b.i"])
        series = [
            f"to_json(list(coalesce(s.{_quote(name)}, {default}) ORDER BY b.i)) AS {_quote(name)}"
            for name, default in zip(names, defaults, strict=True)
        ]
        stamp = "strftime(r.mtp_from + b.i * r.mtp_step, '%Y-%m-%dT%H:%M:%S.%f') || '0Z'"
        select = ", ".join(
            [
                *(f"g.{key} AS {key}" for key in keys),
                *series,
                f"to_json(list({stamp} ORDER BY b.i)) AS {_quote(axis)}",
            ]
        )
        group_by = ", ".join([*(f"g.{key}" for key in keys), "r.mtp_from", "r.mtp_step"])
        groups_sql = (
            f"SELECT DISTINCT {', '.join(keys)} FROM mtp_series"
            if keys
            else "SELECT DISTINCT 1 AS mtp_one FROM mtp_series"
        )
        if nonempty:
            groups_sql = "SELECT 1 AS mtp_one"
        bins = "SELECT unnest(range(0, CAST(ceil(epoch_us(r.mtp_to - r.mtp_from) / epoch_us(r.mtp_step)) AS BIGINT))) AS i"
        order = ", ".join(f"g.{key}" for key in keys) or "r.mtp_from"
        return (
            f"WITH mtp_series AS ({sql}), mtp_groups AS ({groups_sql}) "
            f"SELECT {select} FROM mtp_groups AS g CROSS JOIN {_RANGE} AS r CROSS JOIN LATERAL ({bins}) AS b "
            f"LEFT JOIN mtp_series AS s ON {joins} GROUP BY {group_by} ORDER BY {order}"
        )

    return wrap


# --------------------------------------------------------------------------------------------
# evaluate bag_unpack
# --------------------------------------------------------------------------------------------


#: OutputSchema type -> how a JSON slot becomes a typed column.
_SLOT_TYPES = {
    "string": "json_extract_string({0}, {1})",
    "long": "TRY_CAST(json_extract_string({0}, {1}) AS BIGINT)",
    "int": "TRY_CAST(json_extract_string({0}, {1}) AS INTEGER)",
    "real": "TRY_CAST(json_extract_string({0}, {1}) AS DOUBLE)",
    "double": "TRY_CAST(json_extract_string({0}, {1}) AS DOUBLE)",
    "bool": "TRY_CAST(json_extract_string({0}, {1}) AS BOOLEAN)",
    "boolean": "TRY_CAST(json_extract_string({0}, {1}) AS BOOLEAN)",
    "datetime": "TRY_CAST(json_extract_string({0}, {1}) AS TIMESTAMPTZ)",
    "guid": "json_extract_string({0}, {1})",
    "dynamic": "json_extract({0}, {1})",
}


@dataclass(frozen=True)
class _Unpack:
    column: str
    prefix: str = ""
    ignored: tuple[str, ...] = ()
    schema: tuple[tuple[str, str], ...] | None = None


def _bag_unpack_arguments(plugin: Any, text: str, node: Any) -> _Unpack:
    positional: list[str] = []
    named: dict[str, str] = {}
    for argument in plugin.argumentExpression():
        expression = argument.namedExpression()
        clause = expression.namedExpressionNameClause()
        value = source(text, expression.unnamedExpression())
        if clause is not None:
            named[clause.getText().rstrip("=").strip().lower()] = value
        else:
            positional.append(value)
    order = ["column", "outputcolumnprefix", "columnsconflict", "ignoredproperties"]
    values = dict(zip(order, positional, strict=False)) | named
    column = values.get("column", "")
    prefix = string_value(values["outputcolumnprefix"]) if "outputcolumnprefix" in values else ""
    conflict = string_value(values["columnsconflict"]) if "columnsconflict" in values else "error"
    ignored = _string_list(values["ignoredproperties"]) if "ignoredproperties" in values else []
    if not re.fullmatch(r"[A-Za-z_]\w*", column) or prefix is None or ignored is None or conflict != "error":
        raise unsupported(
            "evaluate bag_unpack",
            node.start,
            "it runs here as bag_unpack(Column [, 'prefix'] [, ignoredProperties=dynamic([...])]), "
            "without columnsConflict",
            valid=True,
        )
    return _Unpack(column, prefix, tuple(ignored))


def _string_list(text: str) -> list[str] | None:
    match = re.fullmatch(r"\s*dynamic\s*\(\s*\[(.*)\]\s*\)\s*", text, re.S)
    if match is None:
        return None
    items = [item.strip() for item in match.group(1).split(",") if item.strip()]
    values = [string_value(item) for item in items]
    return None if any(value is None for value in values) else [str(value) for value in values]


def _bag_unpack(node: Any, piped: Any, text: str) -> tuple[Edit, Wrapper]:
    call = node.functionCallExpression()
    plugin = call.getChild(0)
    name = (
        plugin.simpleNameReference().getText() if hasattr(plugin, "simpleNameReference") else call.getText()
    )
    if name.lower() != "bag_unpack":
        raise unsupported(
            f"evaluate {name}", node.start, "the only plugin run here is bag_unpack", valid=True
        )
    unpack = _bag_unpack_arguments(plugin, text, node)
    clause = node.evaluateOperatorSchemaClause()
    if clause is not None:
        columns = tuple(
            (declaration.parameterName().getText(), declaration.scalarType().getText().lower())
            for declaration in clause.rowSchema().rowSchemaColumnDeclaration()
        )
        if any(kind not in _SLOT_TYPES for _, kind in columns):
            raise unsupported(
                "evaluate bag_unpack(...) : (schema)", node.start, "a timespan slot", valid=True
            )
        unpack = _Unpack(unpack.column, unpack.prefix, unpack.ignored, columns)
    wrapper = _schema_unpack_wrapper(unpack) if unpack.schema is not None else _unpack_wrapper(unpack)
    return Edit(piped.start.start, piped.stop.stop + 1, ""), wrapper


def _json_path(key: str) -> str:
    return _sql_string('$."' + key.replace('"', '\\"') + '"')


def _schema_unpack_wrapper(unpack: _Unpack) -> Wrapper:
    """With an OutputSchema the columns are known: only those, typed, in that order (Kusto's rule)."""

    def wrap(sql: str) -> str:
        bag = f"CAST({_quote(unpack.column)} AS JSON)"
        columns = []
        for name, kind in unpack.schema or ():
            key = name[len(unpack.prefix) :] if unpack.prefix and name.startswith(unpack.prefix) else name
            columns.append(f"{_SLOT_TYPES[kind].format(bag, _json_path(key))} AS {_quote(name)}")
        return f"SELECT {', '.join(columns)} FROM ({sql}) AS mtp_bag"

    return wrap


def _unpack_wrapper(unpack: _Unpack) -> Wrapper:
    def wrap(sql: str) -> str:
        bag = f"CAST(s.{_quote(unpack.column)} AS JSON)"
        keys = f"CASE WHEN json_type({bag}) = 'OBJECT' THEN json_keys({bag}) ELSE [] END"
        skip = (
            " WHERE k.key NOT IN (" + ", ".join(_sql_string(key) for key in unpack.ignored) + ")"
            if unpack.ignored
            else ""
        )
        # Rows whose bag is empty keep a NULL key; PIVOT drops that column but keeps the row.
        return (
            f"WITH mtp_bag AS (SELECT *, row_number() OVER () AS mtp_row FROM ({sql})), "
            f"mtp_pairs AS (SELECT s.* EXCLUDE ({_quote(unpack.column)}), {_sql_string(unpack.prefix)} || k.key AS mtp_key, "
            f"{bag} -> ('$.\"' || k.key || '\"') AS mtp_value FROM mtp_bag AS s "
            f"LEFT JOIN LATERAL (SELECT unnest({keys}) AS key) AS k ON true{skip}) "
            f"SELECT * EXCLUDE (mtp_row) FROM (PIVOT mtp_pairs ON mtp_key USING any_value(mtp_value)) ORDER BY mtp_row"
        )

    return wrap


_SPLIT = "\x00mtp-split\x00"
#: The name the rest of the pipeline reads the SQL-run operator's output under.
STAGE = "mtp_stage"


def _final(
    tree: Any, pipe: Any | None, text: str, lets: str
) -> tuple[list[Edit], list[Wrapper], str, list[tuple[str, str]]]:
    """``make-series`` and ``evaluate``: one per query, in its last pipeline; the rest reads its output."""
    operators = list(pipe.pipedOperator()) if pipe is not None else []
    in_pipeline = {id(_operator(piped)): piped for piped in operators}
    found: list[Any] = []
    for kind in (KqlParser.MakeSeriesOperatorContext, KqlParser.EvaluateOperatorContext):
        for node in nodes(tree, kind):
            label = "make-series"
            if kind is KqlParser.EvaluateOperatorContext:
                label = f"evaluate {node.functionCallExpression().getText().split('(')[0]}"
            if id(node) not in in_pipeline or found:
                raise unsupported(
                    label, node.start, "it runs here once per query, in its last pipeline", valid=True
                )
            found.append(node)
    if not found:
        return [], [], "", []
    node = found[0]
    piped = in_pipeline[id(node)]
    ctes: list[tuple[str, str]] = []
    if isinstance(node, KqlParser.MakeSeriesOperatorContext):
        edit, wrapper, cte = _make_series(node, piped, text, lets)
        ctes.append(cte)
    else:
        edit, wrapper = _bag_unpack(node, piped, text)
    label = "make-series" if isinstance(node, KqlParser.MakeSeriesOperatorContext) else "evaluate bag_unpack"
    return [Edit(edit.start, edit.stop, edit.replacement + _SPLIT)], [wrapper], label, ctes


def plan(text: str) -> Plan:
    """The KQL duckdb-kql is given for ``text`` and the SQL wrappers that finish it.

    :param text: prepared KQL (``search``/``find`` already expanded).
    :raises HuntingError: 400 ``unsupported`` for the forms of these operators that do not run.
    """
    lowered = text.lower()
    if "project-reorder" not in lowered and "make-series" not in lowered and "evaluate" not in lowered:
        return Plan(text)
    tree = duckdb_kql.parse(text).tree
    if tree is None:
        return Plan(text)
    pipe = _last_pipeline(tree)
    # What follows the SQL-run operator, and its helper tables, may read the query's let
    # statements: they come along (all sit before the last statement).
    statements = nodes(tree, KqlParser.QueryStatementContext)
    lets = text[: statements[-1].start.start] if statements else ""
    final_edits, final_wrappers, label, ctes = _final(tree, pipe, text, lets)
    reorder_edits, reorder_wrappers = _reorders(tree, pipe, text)
    edited = apply_edits(text, final_edits + reorder_edits)
    head, _, rest = edited.partition(_SPLIT)
    rest = rest.strip().rstrip(";")
    return Plan(
        head, final_wrappers, f"{lets}{STAGE} {rest}" if rest else None, reorder_wrappers, label, ctes
    )
