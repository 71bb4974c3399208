"""Query preparation: parse the KQL, refuse what duckdb-kql would answer silently wrong, cap ``make_list``/``make_set``."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Any

import duckdb_kql
from antlr4 import CommonTokenStream, InputStream, Token
from duckdb_kql._antlr.KqlLexer import KqlLexer
from duckdb_kql._antlr.KqlParser import KqlParser

from airflow_provider_mtp.emulator.hunting_errors import (
    RECOGNITION_ERROR,
    HuntingError,
    position,
    unsupported,
    walk,
)
from airflow_provider_mtp.emulator.kql_rewrites import rewrite
from airflow_provider_mtp.emulator.kql_text import Prepared

_CAPPED_AGGREGATES = {"make_list": "list", "make_set": "set"}
_REMOTE_SOURCES = {"database", "cluster"}
#: Beyond this many alternatives ANTLR's "expecting {...}" list is noise, not help.
_MAX_EXPECTED_TOKENS = 8


def _bare_equals_error(token: Token, where: str) -> HuntingError:
    return HuntingError(
        f"Query could not be parsed at {position(token)}: '=' {where} is an assignment, not a "
        f"comparison; use '==' to compare values. ({RECOGNITION_ERROR})",
        kind="syntax",
    )


def _function_name(call: Any) -> str:
    return str(call.simpleNameReference().getText())


def _check_where(node: Any) -> None:
    predicate = node.namedExpression()
    clause = predicate.namedExpressionNameClause() if predicate is not None else None
    if clause is not None:
        keyword = node.start.text.lower()
        raise _bare_equals_error(clause.stop, f"in a '{keyword}' predicate")


def _check_argument(node: Any) -> None:
    parent = node.parentCtx
    while parent is not None and not isinstance(parent, KqlParser.EvaluateOperatorContext):
        parent = parent.parentCtx
    if parent is not None:
        # Plugins take named parameters (bag_unpack(d, ignoredProperties=...)); they check their own.
        return
    argument = node.namedExpression()
    clause = argument.namedExpressionNameClause() if argument is not None else None
    if clause is not None:
        raise _bare_equals_error(clause.stop, "in a function argument (named arguments are not supported)")


def _check_call(node: Any) -> None:
    name = _function_name(node).lower()
    if name in _REMOTE_SOURCES:
        raise unsupported(f"{name}()", node.start, "advanced hunting queries only the tenant's own tables")


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
        raise unsupported(
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
        raise unsupported(
            f"{_function_name(call)}(<expression>, N)",
            call.start,
            "name the result column, e.g. Values = make_set(tolower(x), 10)",
        )
    return f"{_CAPPED_AGGREGATES[_function_name(call).lower()]}_{argument_text}"


def _direct_call(aggregate: Any) -> Any | None:
    """The function call an aggregate expression consists of, if it is nothing but that call."""
    expression = aggregate.unnamedExpression()
    for node in walk(expression):
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
    for node in walk(parsed.tree):
        if isinstance(node, KqlParser.WhereOperatorContext):
            _check_where(node)
        elif isinstance(node, KqlParser.ArgumentExpressionContext):
            _check_argument(node)
        elif isinstance(node, KqlParser.NamedFunctionCallExpressionContext):
            _check_call(node)
    text = rewrite(query, parsed.tree)
    tree = parsed.tree if text == query else duckdb_kql.parse(text).tree
    edits: list[_Edit] = []
    handled: set[int] = set()
    for node in walk(tree):
        if isinstance(node, KqlParser.SummarizeOperatorContext):
            summarize_edits, summarize_handled = _cap_edits(node, text)
            edits.extend(summarize_edits)
            handled |= summarize_handled
    for node in walk(tree):
        if (
            isinstance(node, KqlParser.NamedFunctionCallExpressionContext)
            and _function_name(node).lower() in _CAPPED_AGGREGATES
            and len(node.argumentExpression()) > 1
            and id(node) not in handled
        ):
            raise unsupported(
                f"{_function_name(node)}(x, N)",
                node.start,
                "a size limit is honoured only on a summarize aggregate that is the call itself",
            )
    prepared = _apply(text, edits) if edits else text
    return prepared if prepared == query else Prepared(prepared, query)
