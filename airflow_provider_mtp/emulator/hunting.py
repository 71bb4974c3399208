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

Errors are :class:`HuntingError` with the HTTP status, the API code, a Kusto-style message and a
``kind``; DuckDB's own messages (which quote the generated SQL) are never passed on. Columns in
messages count from 1. Faults of the query found only while it runs (a literal that cannot be
converted, a malformed regex) are 400 ``semantic``, not 500: retrying cannot help.
"""

from __future__ import annotations

import difflib
import functools
import json
import logging
import math
import re
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any, Literal

import duckdb
import duckdb_kql
from antlr4 import CommonTokenStream, InputStream, Token
from antlr4.tree.Tree import ParseTree, TerminalNode
from duckdb_kql._antlr.KqlLexer import KqlLexer
from duckdb_kql._antlr.KqlParser import KqlParser
from duckdb_kql.types import kusto_type

from airflow_provider_mtp.common.durations import InvalidDurationError, iso_duration
from airflow_provider_mtp.emulator.config import (
    HUNTING_DATA_DAYS,
    HUNTING_MAX_RESULT_BYTES,
    HUNTING_ROW_LIMIT,
    HUNTING_TIMEOUT_S,
    Clock,
)

log = logging.getLogger(__name__)

HuntingErrorKind = Literal[
    "syntax", "semantic", "unsupported", "timespan", "row_limit", "size", "timeout", "internal"
]

#: Kusto scalar type -> the ``Type`` name the hunting APIs put in ``schema``.
API_TYPE_NAMES: dict[str, str] = {
    "datetime": "DateTime",
    "string": "String",
    "long": "Int64",
    "int": "Int32",
    "bool": "Boolean",
    "real": "Double",
    "decimal": "Double",
    "dynamic": "Object",
    "guid": "Guid",
    "timespan": "TimeSpan",
}

#: The portal's messages (defender-api.md section 7).
RECOGNITION_ERROR = "A recognition error occurred."
TIMEOUT_MESSAGE = "Query exceeded the timeout period."
SIZE_MESSAGE = (
    'Result size limit exceeded. Use "summarize" to aggregate results, "project" to drop '
    'uninteresting columns, or "take" to truncate results.'
)
UNKNOWN_MESSAGE = "An unexpected error occurred during query execution. Please try again in a few minutes."
TIMESPAN_FORMS = (
    "start/end (2024-02-01T08:00:00Z/2024-02-15T08:00:00Z), duration/end (P30D/2024-02-15T08:00:00Z), "
    "start/duration (2024-02-01T08:00:00Z/P30D), duration back from now (P30D) or start only "
    "(2024-02-01T08:00:00Z); durations are ISO 8601 (P30D, PT6H, P1DT2H)"
)

_WINDOW_START_VAR = "mtp_hunting_window_start"
_WINDOW_END_VAR = "mtp_hunting_window_end"
_COLUMN_CACHE_SIZE = 512
_CAPPED_AGGREGATES = {"make_list": "list", "make_set": "set"}
_REMOTE_SOURCES = {"database", "cluster"}
#: Beyond this many alternatives ANTLR's "expecting {...}" list is noise, not help.
_MAX_EXPECTED_TOKENS = 8


@dataclass(frozen=True, kw_only=True)
class HuntingOutput:
    """One hunting answer, ready for either API's JSON.

    :param schema: ``(column, API type name)`` pairs in result order.
    :param rows: one dict per row, JSON-ready.
    :param stats: the legacy API's ``Stats`` block.
    """

    schema: list[tuple[str, str]]
    rows: list[dict[str, Any]]
    stats: dict[str, Any] = field(default_factory=dict)


class HuntingError(Exception):
    """A hunting request the service refuses.

    :param message: the service's message (``error.message``).
    :param kind: ``syntax``, ``semantic``, ``unsupported``, ``timespan``, ``row_limit``, ``size``,
        ``timeout`` or ``internal`` (the 500 for an engine failure nobody anticipated).
    :param status: HTTP status.
    :param code: the API's error code.
    """

    def __init__(
        self, message: str, *, kind: HuntingErrorKind, status: int = 400, code: str = "BadRequest"
    ) -> None:
        super().__init__(message)
        self.message = message
        self.kind = kind
        self.status = status
        self.code = code

    def __repr__(self) -> str:
        return f"HuntingError({self.status}, {self.code!r}, {self.kind!r}, {self.message!r})"


def _internal_error() -> HuntingError:
    return HuntingError(UNKNOWN_MESSAGE, kind="internal", status=500, code="InternalServerError")


# --------------------------------------------------------------------------------------------
# Timespan and window
# --------------------------------------------------------------------------------------------


def _timespan_error(value: str, why: str = "") -> HuntingError:
    detail = f" ({why})" if why else ""
    return HuntingError(
        f"Invalid Timespan '{value}'{detail}. Accepted forms: {TIMESPAN_FORMS}.", kind="timespan"
    )


def parse_duration(text: str) -> timedelta | None:
    """An ISO 8601 duration (``P30D``, ``PT6H``, ``P1DT2H30M``), or None if ``text`` is not one.

    Years count 365 days and months 30, as .NET's ``XmlConvert`` (which Graph parses Timespan
    with) reads them.

    :param text: the candidate duration.
    """
    try:
        return iso_duration(text, calendar=True)
    except InvalidDurationError:
        return None


def parse_instant(text: str) -> datetime | None:
    """An ISO 8601 date or date-time (offset-less means UTC), or None if ``text`` is not one.

    :param text: the candidate instant, e.g. ``2024-02-01T08:00:00Z`` or ``2024-02-01``.
    """
    stripped = text.strip()
    # fromisoformat reads only six fractional digits; Defender writes seven.
    stripped = re.sub(r"(\.\d{6})\d+", r"\1", stripped)
    try:
        moment = datetime.fromisoformat(stripped)
    except ValueError:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def parse_timespan(value: str, now: datetime) -> tuple[datetime, datetime]:
    """The ``[start, end)`` a Graph ``Timespan`` asks for, before the data window applies.

    :param value: one of the forms in :data:`TIMESPAN_FORMS`.
    :param now: the data clock's time, the end of the open-ended forms.
    :raises HuntingError: (400, kind ``timespan``) for anything else, or a start after the end.
    """
    parts = value.strip().split("/")
    if len(parts) == 1:
        duration = parse_duration(parts[0])
        if duration is not None:
            return now - duration, now
        start = parse_instant(parts[0])
        if start is None:
            raise _timespan_error(value)
        return start, now
    if len(parts) != 2:
        raise _timespan_error(value)
    first, second = parts
    start, end = parse_instant(first), parse_instant(second)
    first_duration, second_duration = parse_duration(first), parse_duration(second)
    if start is None and first_duration is not None and end is not None:
        start = end - first_duration
    elif end is None and second_duration is not None and start is not None:
        end = start + second_duration
    if start is None or end is None:
        raise _timespan_error(value)
    if start > end:
        raise _timespan_error(value, "the start is after the end")
    return start, end


def hunting_window(timespan: str | None, now: datetime, data_days: int) -> tuple[datetime, datetime]:
    """The half-open ``[start, end)`` a query sees: ``Timespan`` within the last ``data_days`` days.

    An absent or blank ``Timespan`` means the whole data window. An intersection that is empty
    (a ``Timespan`` wholly in the future or the distant past) gives an empty window, not an error.

    :param timespan: the Graph ``Timespan``, or None (legacy API, or Graph without one).
    :param now: the data clock's time; nothing at or after it is visible.
    :param data_days: days of data the service keeps.
    """
    data_start = now - timedelta(days=data_days)
    if timespan is None or not timespan.strip():
        return data_start, now
    start, end = parse_timespan(timespan, now)
    start, end = max(start, data_start), min(end, now)
    return (start, end) if start < end else (end, end)


# --------------------------------------------------------------------------------------------
# Preparation: parse, guard, rewrite
# --------------------------------------------------------------------------------------------


def _walk(tree: ParseTree) -> Iterator[ParseTree]:
    """Every node of the parse tree, depth first in source order."""
    stack = [tree]
    while stack:
        node = stack.pop()
        yield node
        if not isinstance(node, TerminalNode):
            stack.extend(reversed(list(node.getChildren())))


def _position(token: Token) -> str:
    # ANTLR columns are 0-based; people (and editors) count from 1.
    return f"line {token.line}, column {token.column + 1}"


def _bare_equals_error(token: Token, where: str) -> HuntingError:
    return HuntingError(
        f"Query could not be parsed at {_position(token)}: '=' {where} is an assignment, not a "
        f"comparison; use '==' to compare values. ({RECOGNITION_ERROR})",
        kind="syntax",
    )


def _unsupported(construct: str, token: Token | None = None, why: str = "") -> HuntingError:
    where = f" at {_position(token)}" if token is not None else ""
    because = f": {why}" if why else ""
    return HuntingError(f"unsupported KQL construct '{construct}'{where}{because}", kind="unsupported")


def _function_name(call: Any) -> str:
    return str(call.simpleNameReference().getText())


def _check_where(node: Any) -> None:
    predicate = node.namedExpression()
    clause = predicate.namedExpressionNameClause() if predicate is not None else None
    if clause is not None:
        keyword = node.start.text.lower()
        raise _bare_equals_error(clause.stop, f"in a '{keyword}' predicate")


def _check_argument(node: Any) -> None:
    argument = node.namedExpression()
    clause = argument.namedExpressionNameClause() if argument is not None else None
    if clause is not None:
        raise _bare_equals_error(clause.stop, "in a function argument (named arguments are not supported)")


def _check_call(node: Any) -> None:
    name = _function_name(node).lower()
    if name in _REMOTE_SOURCES:
        raise _unsupported(f"{name}()", node.start, "advanced hunting queries only the tenant's own tables")


@dataclass(frozen=True)
class _Edit:
    """Replace ``text[start:stop]`` with ``replacement``."""

    start: int
    stop: int
    replacement: str


def _cap_of(call: Any) -> int:
    arguments = call.argumentExpression()
    cap_text = arguments[1].getText()
    if not re.fullmatch(r"\d+", cap_text) or int(cap_text) < 1:
        name = _function_name(call)
        raise _unsupported(
            f"{name}(x, {cap_text})", call.start, "the size limit must be a positive integer literal"
        )
    return int(cap_text)


def _capped_column(aggregate: Any, call: Any, query: str) -> str:
    """The output column a capped ``make_list``/``make_set`` aggregate writes, as KQL source text."""
    clause = aggregate.namedExpressionNameClause()
    if clause is not None and clause.identifierOrExtendedKeywordOrEscapedName() is not None:
        name = clause.identifierOrExtendedKeywordOrEscapedName()
        return query[name.start.start : name.stop.stop + 1]
    argument = call.argumentExpression()[0]
    argument_text = argument.getText()
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", argument_text):
        raise _unsupported(
            f"{_function_name(call)}(<expression>, N)",
            call.start,
            "name the result column, e.g. Values = make_set(tolower(x), 10)",
        )
    return f"{_CAPPED_AGGREGATES[_function_name(call).lower()]}_{argument_text}"


def _direct_call(aggregate: Any) -> Any | None:
    """The function call an aggregate expression consists of, if it is nothing but that call."""
    expression = aggregate.unnamedExpression()
    for node in _walk(expression):
        if isinstance(node, KqlParser.NamedFunctionCallExpressionContext):
            same_span = node.start.start == expression.start.start and node.stop.stop == expression.stop.stop
            return node if same_span else None
    return None


def _cap_edits(summarize: Any, query: str) -> tuple[list[_Edit], set[int]]:
    """Edits that honour ``make_list(x, N)``/``make_set(x, N)`` in one ``summarize``.

    :returns: the edits, and the ids of the calls they cover.
    """
    edits: list[_Edit] = []
    handled: set[int] = set()
    slices: list[str] = []
    for aggregate in summarize.namedExpression():
        call = _direct_call(aggregate)
        if call is None or _function_name(call).lower() not in _CAPPED_AGGREGATES:
            continue
        arguments = call.argumentExpression()
        if len(arguments) != 2:
            continue
        cap = _cap_of(call)
        column = _capped_column(aggregate, call, query)
        # Drop ", N": from the end of the first argument up to the closing parenthesis.
        edits.append(_Edit(arguments[0].stop.stop + 1, arguments[1].stop.stop + 1, ""))
        slices.append(f"{column} = array_slice({column}, 0, {cap - 1})")
        handled.add(id(call))
    if slices:
        edits.append(
            _Edit(summarize.stop.stop + 1, summarize.stop.stop + 1, f" | extend {', '.join(slices)}")
        )
    return edits, handled


def _apply(query: str, edits: list[_Edit]) -> str:
    for edit in sorted(edits, key=lambda item: item.start, reverse=True):
        query = query[: edit.start] + edit.replacement + query[edit.stop :]
    return query


def _syntax_error(exc: duckdb_kql.KqlSyntaxError, query: str) -> HuntingError:
    if not exc.diagnostics:
        return HuntingError(f"Query could not be parsed. ({RECOGNITION_ERROR})", kind="syntax")
    first = exc.diagnostics[0]
    token = _token_at(query, first.span.line, first.span.column)
    if token is not None and token.type == KqlLexer.EQUAL and _in_where(query, token):
        return _bare_equals_error(token, "in a 'where' predicate")
    message = _shorten_expected(first.message)
    return HuntingError(
        f"Query could not be parsed at line {first.span.line}, column {first.span.column + 1}: "
        f"{message} ({RECOGNITION_ERROR})",
        kind="syntax",
    )


def _shorten_expected(message: str) -> str:
    match = re.search(r"expecting \{(.*)\}$", message)
    if match and match.group(1).count(",") >= _MAX_EXPECTED_TOKENS:
        return message[: match.start()].rstrip()
    return message


def _tokens(query: str) -> list[Token]:
    lexer = KqlLexer(InputStream(query))
    lexer.removeErrorListeners()
    stream = CommonTokenStream(lexer)
    stream.fill()
    return [token for token in stream.tokens if token.channel == Token.DEFAULT_CHANNEL]


def _token_at(query: str, line: int, column: int) -> Token | None:
    return next((t for t in _tokens(query) if t.line == line and t.column == column), None)


def _in_where(query: str, token: Token) -> bool:
    """Whether ``token`` sits in a ``where``/``filter`` predicate, read back to its operator."""
    tokens = _tokens(query)
    index = next(i for i, t in enumerate(tokens) if t.tokenIndex == token.tokenIndex)
    depth = 0
    for previous in reversed(tokens[:index]):
        if previous.type in (KqlLexer.CLOSEPAREN, KqlLexer.CLOSEBRACKET):
            depth += 1
        elif previous.type in (KqlLexer.OPENPAREN, KqlLexer.OPENBRACKET):
            depth = max(depth - 1, 0)
        elif depth == 0 and previous.type in (KqlLexer.BAR, KqlLexer.SEMICOLON):
            return False
        elif depth == 0 and previous.type in (KqlLexer.WHERE, KqlLexer.FILTER):
            return True
    return False


@functools.lru_cache(maxsize=512)
def prepare_query(query: str) -> str:
    """Check ``query`` for the constructs duckdb-kql gets silently wrong; return the text to translate.

    Pure and cached: the same text always prepares the same way.

    :param query: the KQL as the client sent it.
    :raises HuntingError: 400 ``syntax`` or ``unsupported``.
    """
    try:
        parsed = duckdb_kql.parse(query)
    except duckdb_kql.KqlSyntaxError as exc:
        raise _syntax_error(exc, query) from None
    if parsed.tree is None:
        raise HuntingError(
            f"Query could not be parsed at line 1, column 1: control commands are not supported in "
            f"advanced hunting. ({RECOGNITION_ERROR})",
            kind="syntax",
        )
    edits: list[_Edit] = []
    handled: set[int] = set()
    for node in _walk(parsed.tree):
        if isinstance(node, KqlParser.WhereOperatorContext):
            _check_where(node)
        elif isinstance(node, KqlParser.ArgumentExpressionContext):
            _check_argument(node)
        elif isinstance(node, KqlParser.NamedFunctionCallExpressionContext):
            _check_call(node)
        elif isinstance(node, KqlParser.SummarizeOperatorContext):
            summarize_edits, summarize_handled = _cap_edits(node, query)
            edits.extend(summarize_edits)
            handled |= summarize_handled
    for node in _walk(parsed.tree):
        if (
            isinstance(node, KqlParser.NamedFunctionCallExpressionContext)
            and _function_name(node).lower() in _CAPPED_AGGREGATES
            and len(node.argumentExpression()) > 1
            and id(node) not in handled
        ):
            raise _unsupported(
                f"{_function_name(node)}(x, N)",
                node.start,
                "a size limit is honoured only on a summarize aggregate that is the call itself",
            )
    return _apply(query, edits) if edits else query


# --------------------------------------------------------------------------------------------
# Error mapping
# --------------------------------------------------------------------------------------------

# DuckDB words an unknown column several ways: plainly, or (when duckdb-kql projects a name onto
# itself, as in `project X` and `summarize by X`) as a reference to a not-yet-defined alias.
_MISSING_COLUMN = re.compile(
    r'(?:Referenced column|does not have a column named|^Binder Error: Column|Alias with name) "([^"]+)"'
)
_MISSING_TABLE = re.compile(r"Table with name ([^\s!]+) does not exist")
_MISSING_FUNCTION = re.compile(r"Function with name ([^\s!]+) does not exist")
_DOC_HINT = re.compile(r"\s*\([^()]*(?:\.py|docs/|wave)[^()]*\)")


def _identifier_node(tree: ParseTree, name: str) -> TerminalNode | None:
    for node in _walk(tree):
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
        return _missing_table(table.group(1), tables)
    function = _MISSING_FUNCTION.search(message)
    if function and _name_in_query(query, function.group(1)) is not None:
        return HuntingError(
            f"Failed to resolve scalar expression named '{function.group(1)}'", kind="semantic"
        )
    return HuntingError("Failed to resolve an entity the query refers to.", kind="semantic")


def _translation_error(exc: Exception, tables: list[str]) -> HuntingError:
    if isinstance(exc, duckdb_kql.KqlUnsupportedError):
        span = f" at line {exc.span.line}, column {exc.span.column + 1}" if exc.span else ""
        return HuntingError(f"unsupported KQL construct '{exc.construct}'{span}", kind="unsupported")
    if isinstance(exc, duckdb_kql.KqlSyntaxError):
        return HuntingError(f"Query could not be parsed. ({RECOGNITION_ERROR})", kind="syntax")
    if isinstance(exc, duckdb_kql.KqlSchemaError):
        return _schema_error(exc, tables)
    if isinstance(exc, duckdb_kql.KqlError):
        return HuntingError(f"Semantic error: {_DOC_HINT.sub('', str(exc))}", kind="semantic")
    log.warning("duckdb-kql failed translating a hunting query", exc_info=exc)
    return _internal_error()


def _schema_error(exc: duckdb_kql.KqlSchemaError, tables: list[str]) -> HuntingError:
    hint = exc.hint or ""
    if hint.startswith("unknown table"):
        return _missing_table(exc.name, tables)
    # Hints end with advice for Python callers ("; known: [...]", "use duckdb_kql.kql()"): cut it.
    reason = re.split(r";|\s—\s|, use |; use ", _DOC_HINT.sub("", hint))[0].strip()
    because = f" ({reason})" if reason else ""
    return HuntingError(f"Failed to resolve '{exc.name}'{because}", kind="semantic")


def _missing_table(name: str, tables: list[str]) -> HuntingError:
    close = difflib.get_close_matches(name, tables, n=1, cutoff=0.6)
    hint = f" Did you mean '{close[0]}'?" if close else ""
    return HuntingError(f"Failed to resolve table expression named '{name}'.{hint}", kind="semantic")


#: Stands in for the data clock in cached translations; swapped for ``now`` on every run. Naive,
#: as duckdb-kql binds its clock (naive UTC).
_CLOCK_PLACEHOLDER = datetime(1601, 1, 1, 0, 0, 0, 424242)

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
    try:
        translated = duckdb_kql.to_sql(
            text,
            schema={table: list(columns) for table, columns in schema},
            query_now=_CLOCK_PLACEHOLDER,
            allow_write=False,
        )
    except Exception as exc:
        raise _translation_error(exc, tables) from None
    if translated.unbound:
        names = ", ".join(translated.unbound)
        raise HuntingError(f"Query parameter(s) {names} declared without a value", kind="semantic")
    return str(translated), tuple(translated.parameters.items())


def _engine_error(exc: duckdb.Error, query: str, tables: list[str]) -> HuntingError:
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
    return _internal_error()


# --------------------------------------------------------------------------------------------
# Values
# --------------------------------------------------------------------------------------------

Converter = Callable[[Any], Any]


def format_datetime(value: datetime | date) -> str:
    """``2024-03-26T09:39:50.7688640Z``: UTC, always seven fractional digits, as Defender writes them.

    :param value: aware (any zone), naive (read as UTC) or a date (midnight UTC).
    """
    if not isinstance(value, datetime):
        value = datetime(value.year, value.month, value.day, tzinfo=UTC)
    elif value.tzinfo is not None and value.utcoffset() != timedelta(0):
        value = value.astimezone(UTC)
    return (
        f"{value.year:04d}-{value.month:02d}-{value.day:02d}T{value.hour:02d}:{value.minute:02d}:"
        f"{value.second:02d}.{value.microsecond:06d}0Z"
    )


def format_timespan(value: timedelta) -> str:
    """.NET's ``[-][d.]hh:mm:ss[.fffffff]``, the way Kusto writes a timespan.

    :param value: the span.
    """
    sign = "-" if value < timedelta(0) else ""
    value = abs(value)
    hours, rest = divmod(value.seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    days = f"{value.days}." if value.days else ""
    fraction = f".{value.microseconds:06d}0" if value.microseconds else ""
    return f"{sign}{days}{hours:02d}:{minutes:02d}:{seconds:02d}{fraction}"


def _real(value: float) -> float | str:
    # JSON has no NaN or Infinity; Kusto writes them as these strings.
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return float(value)


#: How DuckDB's ``to_json`` writes a datetime inside a dynamic value (``make_set(Timestamp)``).
_JSON_DATETIME = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d{1,6})?(?:\+00)?")


def _json_datetimes(value: Any) -> Any:
    """``value`` with DuckDB-written datetimes rewritten the way Kusto writes them in dynamics."""
    if isinstance(value, str):
        if _JSON_DATETIME.fullmatch(value):
            return format_datetime(datetime.fromisoformat(value.removesuffix("+00")))
        return value
    if isinstance(value, list):
        return [_json_datetimes(item) for item in value]
    if isinstance(value, dict):
        return {key: _json_datetimes(item) for key, item in value.items()}
    return value


def _json_text(value: Any) -> Any:
    if not isinstance(value, str):
        return jsonable(value)
    try:
        # JSON has no NaN or Infinity: keep the words as strings, as Kusto writes them.
        parsed = json.loads(value, parse_constant=str)
    except ValueError:
        return value
    return _json_datetimes(parsed) if _JSON_DATETIME.search(value) else parsed


def jsonable(value: Any) -> Any:
    """Any value DuckDB hands back, as something ``json.dumps`` writes the way Kusto would.

    :param value: a scalar, list or dict from a DuckDB row.
    """
    if value is None or isinstance(value, str | bool | int):
        return value
    if isinstance(value, float):
        return _real(value)
    if isinstance(value, datetime | date):
        return format_datetime(value)
    if isinstance(value, timedelta):
        return format_timespan(value)
    if isinstance(value, Decimal):
        return _real(float(value))
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).decode("utf-8", "replace")
    if isinstance(value, dict):
        return {str(key): jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(item) for item in value]
    return str(value)


def _list_of(element: Converter | None) -> Converter:
    convert = element or jsonable
    return lambda value: [None if item is None else convert(item) for item in value]


def converter(duckdb_type: str) -> Converter | None:
    """How one result column's values become JSON-ready, or None when they already are.

    :param duckdb_type: the column's DuckDB type, e.g. ``TIMESTAMP WITH TIME ZONE``, ``JSON[]``.
    """
    name = duckdb_type.upper()
    if name.endswith("[]"):
        return _list_of(converter(name[:-2]))
    if name == "JSON":
        return _json_text
    kind = kusto_type(name)
    if kind == "datetime":
        return format_datetime
    if kind in ("real", "decimal"):
        return lambda value: _real(float(value))
    if kind in ("string", "long", "int", "bool") and name not in ("BLOB", "BIT"):
        return None
    return jsonable


def api_type(duckdb_type: str) -> str:
    """The hunting API's ``Type`` name for a DuckDB column type.

    :param duckdb_type: e.g. ``BIGINT`` -> ``Int64``, ``JSON`` -> ``Object``.
    """
    return API_TYPE_NAMES.get(kusto_type(duckdb_type), "String")


def _convert_rows(names: list[str], types: list[str], raw: list[tuple[Any, ...]]) -> list[dict[str, Any]]:
    converters = [(index, convert) for index, t in enumerate(types) if (convert := converter(t)) is not None]
    if not converters:
        return [dict(zip(names, row, strict=True)) for row in raw]
    rows = []
    for row in raw:
        values = list(row)
        for index, convert in converters:
            if values[index] is not None:
                values[index] = convert(values[index])
        rows.append(dict(zip(names, values, strict=True)))
    return rows


def _result_bytes(rows: list[dict[str, Any]]) -> int:
    return len(json.dumps(rows, ensure_ascii=False, separators=(",", ":")).encode("utf-8"))


def _cpu_time(seconds: float) -> str:
    return format_timespan(timedelta(seconds=seconds)) if seconds else "00:00:00"


def _stats(elapsed: float, cpu: float, row_count: int, size: int) -> dict[str, Any]:
    """The legacy ``Stats`` block. Only time, CPU and the dataset numbers are measured."""
    zero = {"hits": 0, "misses": 0, "total": 0}
    return {
        "ExecutionTime": round(elapsed, 7),
        "resource_usage": {
            "cache": {"memory": dict(zero), "disk": dict(zero)},
            "cpu": {"user": _cpu_time(cpu), "kernel": "00:00:00", "total cpu": _cpu_time(cpu)},
            "memory": {"peak_per_node": size},
        },
        "dataset_statistics": [{"table_row_count": row_count, "table_size": size}],
    }


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _with_text_datetimes(sql: str, names: list[str], types: list[str]) -> str:
    """``sql`` with its datetime columns written as API text by DuckDB, not Python.

    Formatting 100,000 datetimes in Python takes longer than running most queries. A projection
    over the query keeps its row order.
    """
    datetimes = [kusto_type(t) == "datetime" for t in types]
    if not any(datetimes) or len(set(names)) != len(names):
        return sql
    columns = [
        f"strftime({_quote(name)}, '%Y-%m-%dT%H:%M:%S.%f') || '0Z' AS {_quote(name)}"
        if is_datetime
        else _quote(name)
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


def _check_sources(cursor: duckdb.DuckDBPyConnection, sql: str, hunting_tables: set[str]) -> None:
    """Refuse SQL that reads anything but the hunting tables and its own CTEs.

    A KQL table name reaches DuckDB as written, so ``duckdb_tables`` or ``sqlite_master`` would
    otherwise answer with the database's internals. DuckDB's own parser says what the SQL reads.
    """
    (tree_text,) = cursor.execute("SELECT json_serialize_sql(?)", [sql]).fetchone() or ("{}",)
    tables: list[tuple[str, str, str]] = []
    functions: list[str] = []
    ctes: set[str] = set()
    _sources(json.loads(tree_text).get("statements", []), tables, functions, ctes)
    for catalog, schema, table in tables:
        if catalog or schema or (table not in hunting_tables and table not in ctes):
            raise _missing_table(table, sorted(hunting_tables))
    if functions:
        log.warning("hunting SQL calls table functions %s; refused", functions)
        raise _unsupported(f"table function {functions[0]}")


@dataclass(frozen=True, kw_only=True)
class _Fetched:
    """What DuckDB answered: column names, the query's types, the types as fetched, the rows."""

    names: list[str]
    types: list[str]
    fetched_types: list[str]
    rows: list[tuple[Any, ...]]


# --------------------------------------------------------------------------------------------
# The engine
# --------------------------------------------------------------------------------------------


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
        rows = _convert_rows(fetched.names, fetched.fetched_types, self._limit_rows(fetched.rows))
        size = _result_bytes(rows)
        if size > self._max_result_bytes:
            raise HuntingError(SIZE_MESSAGE, kind="size")
        elapsed = time.perf_counter() - started
        log.debug("hunting query: %d rows, %d bytes in %.1f ms", len(rows), size, elapsed * 1000)
        return HuntingOutput(
            schema=[(name, api_type(t)) for name, t in zip(fetched.names, fetched.types, strict=True)],
            rows=rows,
            stats=_stats(elapsed, time.thread_time() - cpu_started, len(rows), size),
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
        quoted = _quote(table)
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
        return sql, {name: clock if value == _CLOCK_PLACEHOLDER else value for name, value in parameters}

    def _execute(
        self,
        cursor: duckdb.DuckDBPyConnection,
        sql: str,
        parameters: dict[str, Any],
        window: tuple[datetime, datetime],
        query: str,
    ) -> _Fetched:
        cursor.execute(f"SET VARIABLE {_WINDOW_START_VAR} = ?::TIMESTAMPTZ", [window[0]])
        cursor.execute(f"SET VARIABLE {_WINDOW_END_VAR} = ?::TIMESTAMPTZ", [window[1]])
        watchdog = _Watchdog(cursor, self._query_timeout)
        try:
            with watchdog:
                names, types = self._columns(cursor, sql, parameters)
                result = cursor.execute(_with_text_datetimes(sql, names, types), parameters or None)
                fetched_types = [str(column[1]) for column in result.description or []]
                raw = result.fetchmany(self._row_limit + 1)
        except duckdb.Error as exc:
            if watchdog.fired:
                raise HuntingError(TIMEOUT_MESSAGE, kind="timeout") from None
            raise _engine_error(exc, query, sorted(self._schema)) from None
        finally:
            # Rows past the limit stay unread; drop them rather than hold the result open.
            cursor.abort()
        if watchdog.fired:
            raise HuntingError(TIMEOUT_MESSAGE, kind="timeout")
        return _Fetched(names=names, types=types, fetched_types=fetched_types, rows=raw)

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
        _check_sources(cursor, sql, set(self._schema))
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
