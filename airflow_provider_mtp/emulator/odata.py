"""The subset of OData the emulator's incident and alert listings understand: ``$filter``, ``$orderby``,
``$top`` and ``$skip``.

``$filter`` grammar (keywords case-insensitive; ``+`` between tokens counts as a space, because
clients send ``lastUpdateTime+ge+2020-...`` and some stacks leave the ``+`` undecoded)::

    filter     := or_expr
    or_expr    := and_expr ("or" and_expr)*
    and_expr   := unary ("and" unary)*
    unary      := "not" unary | "(" or_expr ")" | comparison
    comparison := FIELD ("eq" | "ne" | "gt" | "ge" | "lt" | "le") literal
    literal    := 'string' (quote doubled inside) | Namespace.EnumType'member'
                | datetime (unquoted, 0-7 fractional digits, Z or +hh:mm) | integer | null

Datetimes compare as integer 100-ns ticks, exactly: ``datetime.fromisoformat`` would drop the
7th fractional digit, and a watermark one tick off re-reads or loses the boundary incident
(defender-api.md sections 10 and 11); :func:`airflow_provider_mtp.common.ticks.odata_ticks` reads
them. Strings and enums compare case-insensitively.

Every malformed input raises :class:`ODataError`, whose message names the problem and the
0-based position in the text; the routes wrap it in each back end's 400 body.
"""

from __future__ import annotations

import functools
import operator
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal

from airflow_provider_mtp.common.ticks import InvalidTimestampError, odata_ticks

__all__ = [
    "FieldKind",
    "ODataError",
    "Predicate",
    "TopLimitError",
    "parse_filter",
    "parse_orderby",
    "parse_skip",
    "parse_top",
]

#: How a filterable field's values compare: strings and enums case-insensitively (enums only
#: with ``eq``/``ne``), datetimes as ticks, integers as numbers.
FieldKind = Literal["string", "enum", "datetime", "integer"]

#: A parsed ``$filter``: true when the row matches.
Predicate = Callable[[Mapping[str, Any]], bool]


class ODataError(ValueError):
    """A query option the emulator cannot accept; the message is the 400 body's text.

    :param message: what is wrong and where.
    :param position: 0-based offset into the option's text, when one applies.
    """

    def __init__(self, message: str, position: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.position = position


class TopLimitError(ODataError):
    """``$top`` above the back end's maximum, with Graph's exact message.

    :param limit: the largest accepted ``$top``.
    :param value: the value as the request sent it.
    """

    def __init__(self, limit: int, value: int | str) -> None:
        super().__init__(
            "The query specified in the URI is not valid. "
            f"The limit of '{limit}' for Top query has been exceeded. "
            f"The value from the incoming request is '{value}'."
        )
        self.limit = limit
        self.value = value


# --------------------------------------------------------------------------------------------------
# Tokens
# --------------------------------------------------------------------------------------------------

_TokenKind = Literal["name", "string", "datetime", "integer", "(", ")", ",", "end"]

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*")
# Loose on purpose: the shape is checked by odata_ticks, which says what is wrong with it.
_DATETIME = re.compile(r"\d{4}-\d{2}-\d{2}(?:[Tt][0-9:.]*)?(?:[Zz]|[+-]\d{2}:\d{2})?", re.ASCII)
_INTEGER = re.compile(r"-?\d+", re.ASCII)
_SEPARATORS = " \t\r\n+"
_PUNCTUATION: Final[dict[str, _TokenKind]] = {"(": "(", ")": ")", ",": ","}
_NUMERIC_TOKENS: Final[tuple[tuple[_TokenKind, re.Pattern[str]], ...]] = (
    ("datetime", _DATETIME),
    ("integer", _INTEGER),
)


@dataclass(frozen=True)
class _Token:
    """One lexeme.

    :param kind: the token kind.
    :param text: the source text of the token.
    :param position: 0-based offset of its first character.
    :param value: a string literal's content, quotes removed.
    """

    kind: _TokenKind
    text: str
    position: int
    value: str | None = None

    def is_word(self, *words: str) -> bool:
        return self.kind == "name" and self.text.casefold() in words

    def describe(self) -> str:
        if self.kind == "end":
            return "the end of the text"
        return self.text if self.kind == "string" else f"'{self.text}'"


class _Lexer:
    """Splits an option's text into tokens; separators are whitespace and ``+``."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.position = 0

    def tokens(self) -> list[_Token]:
        found: list[_Token] = []
        while True:
            token = self._next()
            found.append(token)
            if token.kind == "end":
                return found

    def _next(self) -> _Token:
        text = self.text
        while self.position < len(text) and text[self.position] in _SEPARATORS:
            self.position += 1
        start = self.position
        if start == len(text):
            return _Token("end", "", start)
        char = text[start]
        if char in _PUNCTUATION:
            self.position += 1
            return _Token(_PUNCTUATION[char], char, start)
        if char == "'":
            return self._string(start, start)
        for kind, pattern in _NUMERIC_TOKENS:
            match = pattern.match(text, start)
            if match:
                return self._finish(kind, start, match.end())
        match = _NAME.match(text, start)
        if match:
            if text.startswith("'", match.end()):
                # Namespace.EnumType'member', OData's typed enum literal.
                return self._string(start, match.end())
            return self._finish("name", start, match.end())
        raise _error("Syntax error", text, start, f"character '{char}' is not valid")

    def _finish(self, kind: _TokenKind, start: int, end: int) -> _Token:
        # "5abc" or "2024-05-01T00:00:00Zfoo" must not split silently into two tokens.
        if end < len(self.text) and (self.text[end].isalnum() or self.text[end] in "_.:-"):
            raise _error("Syntax error", self.text, end, f"character '{self.text[end]}' is not valid")
        self.position = end
        return _Token(kind, self.text[start:end], start)

    def _string(self, start: int, quote: int) -> _Token:
        text, index, content = self.text, quote + 1, []
        while index < len(text):
            if text[index] != "'":
                content.append(text[index])
                index += 1
            elif text.startswith("''", index):
                content.append("'")
                index += 2
            else:
                self.position = index + 1
                return self._finish_string(start, "".join(content))
        raise ODataError(f"There is an unterminated string literal at position {quote} in '{text}'.", quote)

    def _finish_string(self, start: int, content: str) -> _Token:
        end = self.position
        if end < len(self.text) and (self.text[end].isalnum() or self.text[end] == "_"):
            raise _error("Syntax error", self.text, end, f"character '{self.text[end]}' is not valid")
        return _Token("string", self.text[start:end], start, content)


def _error(problem: str, text: str, position: int, detail: str | None = None) -> ODataError:
    """``<problem> at position <n> in '<text>'[: <detail>].``"""
    message = f"{problem} at position {position} in '{text}'"
    return ODataError(f"{message}: {detail}." if detail else f"{message}.", position)


# --------------------------------------------------------------------------------------------------
# $filter
# --------------------------------------------------------------------------------------------------

_COMPARATORS: Final[dict[str, Callable[[Any, Any], bool]]] = {
    "eq": operator.eq,
    "ne": operator.ne,
    "gt": operator.gt,
    "ge": operator.ge,
    "lt": operator.lt,
    "le": operator.le,
}
_EDM_TYPES: Final[dict[str, str]] = {
    "string": "Edm.String",
    "enum": "Edm.Enum",
    "datetime": "Edm.DateTimeOffset",
    "integer": "Edm.Int64",
}
_LITERAL_KINDS: Final[dict[str, FieldKind]] = {
    "string": "string",
    "datetime": "datetime",
    "integer": "integer",
}


#: Row timestamps repeat from call to call (the store's incidents): each text is read once.
_row_ticks: Final = functools.lru_cache(maxsize=1 << 16)(odata_ticks)


class _Incomparable:
    """A row value of the wrong type (a store bug, or a field another back end fills differently)."""


_INCOMPARABLE: Final = _Incomparable()


def _comparable(value: Any, kind: FieldKind) -> Any:
    """The row's value in the form its literal takes: ticks, casefolded text or an integer."""
    if value is None:
        return None
    if kind == "datetime" and isinstance(value, str):
        return _row_ticks(value)
    if kind in ("string", "enum") and isinstance(value, str):
        return value.casefold()
    if kind == "integer" and isinstance(value, int) and not isinstance(value, bool):
        return value
    return _INCOMPARABLE


@dataclass(frozen=True)
class _Comparison:
    field: str
    kind: FieldKind
    op: str
    literal: Any  # ticks, casefolded text, an integer, or None for ``null``

    def __call__(self, row: Mapping[str, Any]) -> bool:
        value = _comparable(row.get(self.field), self.kind)
        if value is None or self.literal is None:
            # OData: null equals only null, and is neither greater nor less than anything.
            both_null = value is None and self.literal is None
            if self.op == "eq":
                return both_null
            if self.op == "ne":
                return not both_null
            return False
        if value is _INCOMPARABLE:
            return self.op == "ne"
        return _COMPARATORS[self.op](value, self.literal)


@dataclass(frozen=True)
class _And:
    left: Predicate
    right: Predicate

    def __call__(self, row: Mapping[str, Any]) -> bool:
        return self.left(row) and self.right(row)


@dataclass(frozen=True)
class _Or:
    left: Predicate
    right: Predicate

    def __call__(self, row: Mapping[str, Any]) -> bool:
        return self.left(row) or self.right(row)


@dataclass(frozen=True)
class _Not:
    operand: Predicate

    def __call__(self, row: Mapping[str, Any]) -> bool:
        return not self.operand(row)


class _Parser:
    """Recursive descent over the token list; one method per grammar rule."""

    def __init__(self, text: str, fields: Mapping[str, FieldKind]) -> None:
        self.text = text
        self.fields = fields
        self.tokens = _Lexer(text).tokens()
        self.index = 0

    @property
    def current(self) -> _Token:
        return self.tokens[self.index]

    def advance(self) -> _Token:
        token = self.tokens[self.index]
        self.index = min(self.index + 1, len(self.tokens) - 1)
        return token

    def error(self, problem: str, token: _Token, detail: str | None = None) -> ODataError:
        return _error(problem, self.text, token.position, detail)

    def expect_end(self) -> None:
        if self.current.kind != "end":
            detail = f"unexpected {self.current.describe()} after a complete expression"
            raise self.error("Syntax error", self.current, detail)

    # filter := or_expr
    def filter(self) -> Predicate:
        predicate = self.or_expr()
        self.expect_end()
        return predicate

    def or_expr(self) -> Predicate:
        predicate = self.and_expr()
        while self.current.is_word("or"):
            self.advance()
            predicate = _Or(predicate, self.and_expr())
        return predicate

    def and_expr(self) -> Predicate:
        predicate = self.unary()
        while self.current.is_word("and"):
            self.advance()
            predicate = _And(predicate, self.unary())
        return predicate

    def unary(self) -> Predicate:
        if self.current.is_word("not"):
            self.advance()
            return _Not(self.unary())
        if self.current.kind == "(":
            self.advance()
            predicate = self.or_expr()
            if self.current.kind != ")":
                raise self.error("')' or operator expected", self.current, f"found {self.current.describe()}")
            self.advance()
            return predicate
        return self.comparison()

    def comparison(self) -> Predicate:
        field_token = self.current
        if field_token.kind != "name":
            raise self.error("Expression expected", field_token, f"found {field_token.describe()}")
        self.advance()
        if self.current.kind == "(":
            raise self.error(f"Function '{field_token.text}' is not supported", field_token)
        field = self.resolve_field(field_token)
        op_token = self.advance()
        op = op_token.text.casefold()
        if op_token.kind != "name" or op not in _COMPARATORS:
            raise self.error(
                f"Comparison operator expected after '{field_token.text}'",
                op_token,
                f"found {op_token.describe()}; the operators are eq, ne, gt, ge, lt, le",
            )
        kind = self.fields[field]
        if kind == "enum" and op not in ("eq", "ne"):
            raise self.error(
                f"Operator '{op}' is not supported on enum property '{field}'", op_token, "use eq or ne"
            )
        return _Comparison(field, kind, op, self.literal(field, kind, op))

    def resolve_field(self, token: _Token) -> str:
        if token.text in self.fields:
            return token.text
        # Graph resolves property names case-insensitively.
        for field in self.fields:
            if field.casefold() == token.text.casefold():
                return field
        raise self.error(
            f"Could not find a property named '{token.text}'",
            token,
            f"the properties are {', '.join(self.fields)}",
        )

    def literal(self, field: str, kind: FieldKind, op: str) -> Any:
        token = self.advance()
        if token.is_word("null"):
            return None
        literal_kind = _LITERAL_KINDS.get(token.kind)
        if literal_kind is None:
            raise self.error(f"Literal expected after '{op}'", token, f"found {token.describe()}")
        qualified_enum = token.kind == "string" and token.text[0] != "'"
        compatible = literal_kind == kind or (literal_kind == "string" and kind == "enum")
        if not compatible or (qualified_enum and kind != "enum"):
            found = "Edm.Enum" if qualified_enum else _EDM_TYPES[literal_kind]
            raise self.error(
                f"Incompatible types for operator '{op}'",
                token,
                f"property '{field}' is {_EDM_TYPES[kind]}, the literal {token.text} is {found}",
            )
        return self.literal_value(token, literal_kind)

    def literal_value(self, token: _Token, literal_kind: FieldKind) -> Any:
        if literal_kind == "datetime":
            try:
                return odata_ticks(token.text)
            except InvalidTimestampError as exc:
                raise self.error(f"Invalid datetime literal '{token.text}'", token, exc.reason) from exc
        if literal_kind == "integer":
            return int(token.text)
        return (token.value or "").casefold()


def parse_filter(text: str, *, fields: Mapping[str, FieldKind]) -> Predicate:
    """Parse ``$filter`` into a predicate over rows (mappings keyed by field name).

    :param text: the option's value, URL-decoded.
    :param fields: the filterable fields and how each compares.
    :raises ODataError: bad syntax, an unknown field, a literal of the wrong type, trailing text.
    """
    return _Parser(text, fields).filter()


# --------------------------------------------------------------------------------------------------
# $orderby, $top, $skip
# --------------------------------------------------------------------------------------------------


def parse_orderby(text: str, *, fields: Mapping[str, FieldKind]) -> list[tuple[str, bool]]:
    """Parse ``$orderby`` into ``(field, descending)`` pairs, first key first.

    :param text: the option's value, e.g. ``lastUpdateDateTime asc, createdDateTime desc``.
    :param fields: the fields that may be sorted on.
    :raises ODataError: bad syntax, an unknown or repeated field.
    """
    parser = _Parser(text, fields)
    order: list[tuple[str, bool]] = []
    while True:
        token = parser.current
        if token.kind != "name":
            raise parser.error("Property name expected", token, f"found {token.describe()}")
        parser.advance()
        field = parser.resolve_field(token)
        if any(field == seen for seen, _ in order):
            raise parser.error(f"Duplicate property named '{field}' is not supported in $orderby", token)
        descending = False
        if parser.current.is_word("asc", "desc"):
            descending = parser.advance().text.casefold() == "desc"
        order.append((field, descending))
        if parser.current.kind != ",":
            parser.expect_end()
            return order
        parser.advance()


_NON_NEGATIVE = re.compile(r"[0-9]+")


def _non_negative(text: str, option: str) -> int:
    if not _NON_NEGATIVE.fullmatch(text):
        raise ODataError(
            f"Invalid value '{text}' for {option} query option found. "
            f"The {option} query option requires a non-negative integer value."
        )
    return int(text)


def parse_top(text: str | None, *, maximum: int, default: int, clamp: bool = False) -> int:
    """Parse ``$top``.

    :param text: the option's value; ``None`` when absent.
    :param maximum: the back end's largest page.
    :param default: the page size when ``$top`` is absent.
    :param clamp: answer a value over ``maximum`` with ``maximum`` instead of an error (Graph
        ``alerts_v2`` clamps; incidents reject).
    :raises ODataError: not a non-negative integer.
    :raises TopLimitError: over ``maximum`` and not ``clamp``.
    """
    if text is None:
        return default
    value = _non_negative(text, "$top")
    if value > maximum:
        if clamp:
            return maximum
        raise TopLimitError(maximum, text)
    return value


def parse_skip(text: str | None, *, default: int = 0) -> int:
    """Parse ``$skip``.

    :param text: the option's value; ``None`` when absent.
    :param default: the offset when ``$skip`` is absent.
    :raises ODataError: not a non-negative integer.
    """
    return default if text is None else _non_negative(text, "$skip")
