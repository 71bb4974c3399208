"""KQL that Kusto runs and duckdb-kql does not, rewritten into KQL that duckdb-kql runs the same way.

Each rewrite is a source-text edit found on the parse tree (never a text regex: names, operators
and string literals look alike as text). They run before translation, in
:func:`~airflow_provider_mtp.emulator.hunting_guards.prepare_query`:

* the deprecated spellings Kusto still accepts (:data:`ALIASES`: ``makeset`` -> ``make_set``,
  ``parsejson`` -> ``parse_json``, ...);
* ``pack_array(<literals>)`` becomes ``dynamic([...])``: duckdb-kql builds ``pack_array`` per row
  with a type switch per element, and ``has_any`` over it cost about 2 ms per row per term;
* ``between (d .. timespan)`` means ``between (d .. d + timespan)`` in Kusto;
* ``count(x)`` (an argument to ``count``) counts the rows where ``x`` is not null;
* ``hash(x[, mod])`` calls the xxhash64 macros of :mod:`~airflow_provider_mtp.emulator.kql_functions`;
* ``extract_json(path, text[, typeof(T)])`` becomes a ``parse_json`` path, and ``extract(...,
  typeof(T))`` a conversion of ``extract(...)``;
* ``let`` functions with a tabular body are inlined at each call as a ``let`` table.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import duckdb_kql
from duckdb_kql._antlr.KqlParser import KqlParser

from airflow_provider_mtp.emulator.hunting_errors import HuntingError, unsupported
from airflow_provider_mtp.emulator.kql_functions import HASH, HASH_MOD
from airflow_provider_mtp.emulator.kql_text import (
    Edit,
    apply_edits,
    first,
    nodes,
    same_span,
    source,
    span_edit,
    string_literal,
    string_value,
)

#: Deprecated function names Kusto still accepts -> the current name (Kusto documentation: each
#: function's "Deprecated aliases"). Only aliases whose current name the engine runs are listed.
ALIASES: dict[str, str] = {
    "makeset": "make_set",
    "makelist": "make_list",
    "parsejson": "parse_json",
    "toobject": "parse_json",
    "extractjson": "extract_json",
    "todate": "todatetime",
    "totime": "totimespan",
}

#: ``typeof(T)`` -> the conversion Kusto applies for a typed ``extract``/``extract_json``.
_CONVERSIONS = {
    "string": "tostring",
    "int": "toint",
    "long": "tolong",
    "real": "todouble",
    "double": "todouble",
    "decimal": "todouble",
    "bool": "tobool",
    "boolean": "tobool",
    "datetime": "todatetime",
    "date": "todatetime",
    "timespan": "totimespan",
    "time": "totimespan",
    "guid": "toguid",
    "dynamic": "todynamic",
}

_LITERALS = (
    KqlParser.StringLiteralExpressionContext,
    KqlParser.LongLiteralExpressionContext,
    KqlParser.RealLiteralExpressionContext,
    KqlParser.BooleanLiteralExpressionContext,
)
_MAX_PASSES = 16


def _name(call: Any) -> str:
    return str(call.simpleNameReference().getText())


def _literal(argument: Any) -> Any | None:
    """The literal node an argument consists of, if it is nothing but one literal."""
    literal = first(argument, KqlParser.UnsignedLiteralExpressionContext)
    if literal is None or not same_span(literal, argument):
        return None
    inner = literal.getChild(0)
    return inner if isinstance(inner, _LITERALS) else None


def _dynamic_element(text: str, literal: Any) -> str:
    if isinstance(literal, KqlParser.StringLiteralExpressionContext):
        value = string_value(text)
        return string_literal(value) if value is not None else text
    return text


def _call_edits(tree: Any, text: str) -> list[Edit]:
    edits: list[Edit] = []
    for call in nodes(tree, KqlParser.NamedFunctionCallExpressionContext):
        name = _name(call).lower()
        arguments = call.argumentExpression()
        if name in ALIASES and ALIASES[name] != name:
            edits.append(span_edit(call.simpleNameReference(), ALIASES[name]))
        elif name == "pack_array" and arguments:
            literals = [_literal(argument) for argument in arguments]
            if all(literal is not None for literal in literals):
                elements = ", ".join(
                    _dynamic_element(source(text, argument), literal)
                    for argument, literal in zip(arguments, literals, strict=True)
                )
                edits.append(span_edit(call, f"dynamic([{elements}])"))
        elif name == "hash" and len(arguments) in (1, 2):
            edits.append(span_edit(call.simpleNameReference(), HASH if len(arguments) == 1 else HASH_MOD))
        elif name in ("extract_json", "extractjson"):
            edits.append(span_edit(call, _extract_json(call, text)))
        elif name == "extract" and len(arguments) == 4:
            conversion = _typeof_conversion(arguments[3], call)
            inner = ", ".join(source(text, argument) for argument in arguments[:3])
            edits.append(span_edit(call, f"{conversion}(extract({inner}))"))
    return edits


def _typeof_conversion(argument: Any, call: Any) -> str:
    match = re.fullmatch(r"typeof\((\w+)\)", argument.getText(), re.IGNORECASE)
    conversion = _CONVERSIONS.get(match.group(1).lower()) if match else None
    if conversion is None:
        raise unsupported(
            f"{_name(call)}() with a type argument", argument.start, "use typeof(<scalar type>)"
        )
    return conversion


def _extract_json(call: Any, text: str) -> str:
    """``extract_json("$.a.b[0]", s[, typeof(T)])`` as ``T(parse_json(s)["a"]["b"][0])``."""
    arguments = call.argumentExpression()
    if len(arguments) not in (2, 3):
        raise unsupported(
            f"{_name(call)}()", call.start, "it takes a JSON path, a text and optionally typeof(T)"
        )
    path = string_value(source(text, arguments[0]))
    steps = _json_path(path) if path is not None else None
    if steps is None:
        raise unsupported(
            f"{_name(call)}()", call.start, "the JSON path must be a literal such as '$.a.b[0]'"
        )
    conversion = _typeof_conversion(arguments[2], call) if len(arguments) == 3 else "tostring"
    return f"{conversion}(parse_json({source(text, arguments[1])}){''.join(steps)})"


def _json_path(path: str) -> list[str] | None:
    if not path.startswith("$"):
        return None
    steps: list[str] = []
    for match in re.finditer(
        r"\.([^.\[\]]+)|\[(\d+)\]|\[\s*'([^']*)'\s*\]|\[\s*\"([^\"]*)\"\s*\]|(.)", path[1:]
    ):
        key, index, quoted, double, other = match.groups()
        if other is not None:
            return None
        if index is not None:
            steps.append(f"[{index}]")
        else:
            steps.append(f"[{string_literal(key or quoted or double or '')}]")
    return steps


def _timespan_lets(tree: Any) -> set[str]:
    """Names bound by ``let name = <timespan literal>``."""
    names: set[str] = set()
    for declaration in nodes(tree, KqlParser.LetVariableDeclarationContext):
        literal = first(declaration, KqlParser.UnsignedLiteralExpressionContext)
        value = declaration.expression()
        if (
            literal is not None
            and value is not None
            and same_span(literal, value)
            and isinstance(literal.getChild(0), KqlParser.TimeSpanLiteralExpressionContext)
        ):
            names.add(declaration.identifierOrKeywordOrEscapedName().getText())
    return names


def _is_timespan(expression: Any, timespans: set[str]) -> bool:
    literal = first(expression, KqlParser.UnsignedLiteralExpressionContext)
    if literal is not None and same_span(literal, expression):
        return isinstance(literal.getChild(0), KqlParser.TimeSpanLiteralExpressionContext)
    call = first(expression, KqlParser.NamedFunctionCallExpressionContext)
    if call is not None and same_span(call, expression):
        return _name(call).lower() in ("timespan", "totimespan", "time")
    return bool(expression.getText() in timespans)


def _between_edits(tree: Any, text: str) -> list[Edit]:
    edits: list[Edit] = []
    timespans = _timespan_lets(tree)
    for between in nodes(tree, KqlParser.BetweenEqualityExpressionContext):
        low, high = between.invocationExpression(0), between.invocationExpression(1)
        if _is_timespan(high, timespans) and not _is_timespan(low, timespans):
            edits.append(span_edit(high, f"(({source(text, low)}) + ({source(text, high)}))"))
    return edits


def _count_edits(tree: Any, text: str) -> list[Edit]:
    """``count(x)`` -> ``countif(isnotnull(x))``, named ``count_x`` as Kusto names it."""
    aggregates = [
        aggregate
        for node in nodes(tree, KqlParser.SummarizeOperatorContext)
        for aggregate in node.namedExpression()
    ]
    series = [
        aggregate.namedExpression()
        for aggregate in nodes(tree, KqlParser.MakeSeriesOperatorAggregationContext)
    ]
    edits: list[Edit] = []
    for aggregate in aggregates + series:
        for call in nodes(aggregate, KqlParser.CountExpressionContext):
            argument = call.namedExpression()
            if argument is None:
                continue
            # In make-series the count is a sum of ones: its arrays then default to 0 like count().
            template = "sum(iff(isnotnull({0}), 1, 0))" if aggregate in series else "countif(isnotnull({0}))"
            replacement = template.format(source(text, argument))
            named = aggregate.namedExpressionNameClause() is not None
            if not named and same_span(call, aggregate):
                column = argument.getText()
                suffix = column if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", column) else ""
                replacement = f"count_{suffix} = {replacement}"
            edits.append(span_edit(call, replacement))
    return edits


# --------------------------------------------------------------------------------------------
# let functions with a tabular body
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Parameter:
    name: str
    default: str | None
    tabular: bool


def _parameters(declaration: Any, text: str) -> list[_Parameter]:
    listing = declaration.letFunctionParameterList()
    if listing is None:
        return []
    parameters: list[_Parameter] = []
    for parameter in listing.getChildren():
        if isinstance(parameter, KqlParser.TabularParameterContext):
            parameters.append(_Parameter(parameter.parameterName().getText(), None, True))
        elif isinstance(parameter, KqlParser.ScalarParameterContext):
            default = parameter.scalarParameterDefault()
            default_text = source(text, default)[1:].strip() if default is not None else None
            parameters.append(_Parameter(parameter.parameterName().getText(), default_text, False))
    return parameters


def _tabular_body(body: Any, names: set[str]) -> bool:
    """Whether a function body is a table: a pipeline, or a tabular source such as a table name."""
    expression = body.expression()
    if expression is None:
        return False
    text = expression.getText()
    head = expression.getChild(0)
    if isinstance(head, KqlParser.PipeExpressionContext) and head.pipedOperator():
        return True
    match = re.match(r"\(*([A-Za-z_][A-Za-z0-9_]*)", text)
    if match is None:
        return False
    word = match.group(1)
    if word.lower() in ("union", "datatable", "range", "print", "externaldata", "find", "search"):
        return True
    return bool(re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", text)) and word not in names


def _inline_one(tree: Any, text: str) -> str | None:
    """The query with its first tabular ``let`` function inlined, or None if there is none."""
    statements = nodes(tree, KqlParser.StatementContext)
    for index, statement in enumerate(statements):
        declaration = first(statement, KqlParser.LetFunctionDeclarationContext)
        if declaration is None or not same_span(declaration, statement):
            continue
        body = declaration.letFunctionBody()
        parameters = _parameters(declaration, text)
        scalars = {parameter.name for parameter in parameters if not parameter.tabular}
        if not _tabular_body(body, scalars):
            continue
        name = declaration.identifierOrKeywordOrEscapedName().getText()
        if any(
            _name(call) == name
            for invoke in nodes(tree, KqlParser.InvokeOperatorContext)
            for call in nodes(invoke, KqlParser.NamedFunctionCallExpressionContext)
        ):
            # `T | invoke f()`: duckdb-kql runs functions over a piped table itself.
            continue
        if body.letFunctionBodyStatement():
            raise unsupported(
                f"let {name} = (...) {{ let ...; ... }}",
                declaration.start,
                "a tabular function body with its own let statements",
                valid=True,
            )
        return _inline(text, statements[index:], declaration, name, parameters)
    return None


def _unparenthesised(text: str) -> str:
    stripped = text.strip()
    return stripped[1:-1] if stripped.startswith("(") and stripped.endswith(")") else stripped


def _calls(statement: Any, name: str) -> list[tuple[Any, list[str] | None]]:
    """Each use of ``name`` in a statement: a call with its arguments, or a bare name (None)."""
    uses: list[tuple[Any, list[str] | None]] = []
    called: set[int] = set()
    for call in nodes(statement, KqlParser.NamedFunctionCallExpressionContext):
        if _name(call) == name:
            uses.append((call, [argument for argument in call.argumentExpression()]))
            called.add(id(call.simpleNameReference()))
    for reference in nodes(statement, KqlParser.SimpleNameReferenceContext):
        if reference.getText() == name and id(reference) not in called:
            uses.append((reference, None))
    return uses


def _inline(
    text: str, statements: list[Any], declaration: Any, name: str, parameters: list[_Parameter]
) -> str:
    body = declaration.letFunctionBody().expression()
    body_text = source(text, body)
    by_name = {parameter.name: parameter for parameter in parameters}
    references = [
        reference
        for reference in nodes(body, KqlParser.SimpleNameReferenceContext)
        if reference.getText() in by_name
    ]
    edits = [span_edit(declaration, f"let mtp_fn_{name} = 0")]
    counter = 0
    for statement in statements[1:]:
        lets: list[str] = []
        for use, argument_nodes in _calls(statement, name):
            arguments = [source(text, argument) for argument in argument_nodes or []]
            if len(arguments) > len(parameters):
                raise unsupported(f"{name}()", use.start, f"{name} takes {len(parameters)} argument(s)")
            counter += 1
            alias = f"mtp_fn_{name}_{counter}"
            values: dict[str, str] = {}
            for position, parameter in enumerate(parameters):
                value = arguments[position] if position < len(arguments) else parameter.default
                if value is None:
                    raise unsupported(f"{name}()", use.start, f"the argument '{parameter.name}' has no value")
                if parameter.tabular:
                    table = f"{alias}_{parameter.name}"
                    lets.append(f"let {table} = {_unparenthesised(value)};\n")
                    values[parameter.name] = table
                else:
                    values[parameter.name] = f"({value})"
            inner = [
                Edit(
                    reference.start.start - body.start.start,
                    reference.stop.stop + 1 - body.start.start,
                    values[reference.getText()],
                )
                for reference in references
            ]
            lets.append(f"let {alias} = {apply_edits(body_text, inner)};\n")
            edits.append(span_edit(use, alias))
        if lets:
            edits.append(Edit(statement.start.start, statement.start.start, "".join(lets)))
    return apply_edits(text, edits)


def _parse(text: str) -> Any:
    try:
        tree = duckdb_kql.parse(text).tree
    except duckdb_kql.KqlSyntaxError:
        # A rewrite produced text the grammar refuses: a bug here, not in the user's query.
        raise HuntingError(
            "Query could not be prepared for the engine (an internal rewrite failed).",
            kind="internal",
            status=500,
            code="InternalServerError",
        ) from None
    return tree


def rewrite(text: str, tree: Any) -> str:
    """``text`` with every rewrite of this module applied.

    :param text: the query as the client sent it (already checked by the guards).
    :param tree: its parse tree.
    """
    for _ in range(_MAX_PASSES):
        inlined = _inline_one(tree, text)
        if inlined is None:
            break
        text, tree = inlined, _parse(inlined)
    for _ in range(_MAX_PASSES):
        edits = _call_edits(tree, text) + _between_edits(tree, text) + _count_edits(tree, text)
        if not edits:
            break
        text = apply_edits(text, _outermost(edits))
        tree = _parse(text)
    return text


def _outermost(edits: list[Edit]) -> list[Edit]:
    """Drop edits nested in another edit's span; the next pass applies them to the rewritten text."""
    kept: list[Edit] = []
    for edit in sorted(edits, key=lambda item: (item.start, -item.stop)):
        if kept and edit.start < kept[-1].stop and edit.stop <= kept[-1].stop and edit.start != edit.stop:
            continue
        kept.append(edit)
    return kept
