"""The KQL token scan: enough of Kusto's lexer to tell code from strings and comments.

Not a parser. The hunting operator uses it to tell whether a query uses a name such as
``WindowStart`` as code, and which names the query binds itself; :mod:`airflow_provider_mtp.kql`
re-exports :class:`Token`, :func:`tokenize`, :func:`referenced_names` and :func:`defined_names`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

__all__ = ["Token", "defined_names", "referenced_names", "tokenize"]


@dataclass(frozen=True)
class Token:
    """One KQL token: ``identifier``, ``string``, ``number`` or ``punctuation``.

    :param kind: the token's kind.
    :param text: its text as written.
    :param start: its offset in the query.
    """

    kind: str
    text: str
    start: int


_LINE_ENDS = "\n\r\u2028\u2029"
_IDENTIFIER = re.compile(r"[A-Za-z_$][A-Za-z0-9_]*")
_NUMBER = re.compile(r"[0-9][0-9A-Za-z_]*")


def _string_end(query: str, start: int) -> int:
    """The offset just past the string literal at ``start`` (after any ``h``/``H`` prefix).

    Follows Kusto's grammar: ``"..."``/``'...'`` with backslash escapes, ``@"..."``/``@'...'``
    with doubled quotes, and multi-line ``````...`````` / ``~~~...~~~``. An unterminated literal
    runs to the end of its line (or of the query, for the multi-line forms).
    """
    length = len(query)
    for fence in ("```", "~~~"):
        if query.startswith(fence, start):
            close = query.find(fence, start + 3)
            return length if close < 0 else close + 3
    verbatim = query[start] == "@"
    position = start + 1 if verbatim else start
    quote = query[position]
    position += 1
    while position < length:
        char = query[position]
        if char in "\n\r":
            return position
        if not verbatim and char == "\\":
            position += 2
            continue
        if char == quote:
            if verbatim and query.startswith(quote, position + 1):
                position += 2
                continue
            return position + 1
        position += 1
    return length


def _starts_string(query: str, position: int) -> bool:
    rest = query[position : position + 3]
    return rest[:1] in ("'", '"') or rest[:2] in ("@'", '@"') or rest in ("```", "~~~")


def tokenize(query: str) -> Iterator[Token]:
    """The query's tokens, without whitespace and comments.

    Not a parser: enough to tell code from strings and comments (every string form, including
    verbatim, multi-line and obfuscated ``h"..."`` literals).

    :param query: the KQL text.
    """
    position, length = 0, len(query)
    while position < length:
        char = query[position]
        if char.isspace() or char == "\ufeff":
            position += 1
            continue
        if query.startswith("//", position):
            while position < length and query[position] not in _LINE_ENDS:
                position += 1
            continue
        start = position
        if char in "hH" and _starts_string(query, position + 1):
            end = _string_end(query, position + 1)
            yield Token("string", query[start:end], start)
            position = end
            continue
        if _starts_string(query, position):
            end = _string_end(query, position)
            yield Token("string", query[start:end], start)
            position = end
            continue
        match = _IDENTIFIER.match(query, position) or None
        if match:
            yield Token("identifier", match.group(), start)
            position = match.end()
            continue
        number = _NUMBER.match(query, position)
        if number:
            yield Token("number", number.group(), start)
            position = number.end()
            continue
        width = 2 if query.startswith("..", position) else 1  # a range, not a member access
        yield Token("punctuation", query[position : position + width], start)
        position += width


def referenced_names(query: str, names: tuple[str, ...] | None = None) -> set[str]:
    """Identifiers the query uses as code (not in strings or comments, not after a ``.``).

    :param query: the KQL text.
    :param names: only report these (default: every identifier).
    """
    found: set[str] = set()
    previous: Token | None = None
    for token in tokenize(query):
        member = previous is not None and previous.text == "."
        if token.kind == "identifier" and not member and (names is None or token.text in names):
            found.add(token.text)
        previous = token
    return found


def defined_names(query: str) -> set[str]:
    """Names the query itself binds with ``let <name> =``."""
    found: set[str] = set()
    tokens = list(tokenize(query))
    for first, second, third in zip(tokens, tokens[1:], tokens[2:], strict=False):
        if first.text == "let" and second.kind == "identifier" and third.text == "=":
            found.add(second.text)
    return found
