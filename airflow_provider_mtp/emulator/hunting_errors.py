"""The hunting engine's error, its Kusto-style messages, and the parse-tree helpers that place an error in the query."""

from __future__ import annotations

import difflib
from collections.abc import Iterator
from typing import Literal

from antlr4 import Token
from antlr4.tree.Tree import ParseTree, TerminalNode

HuntingErrorKind = Literal[
    "syntax", "semantic", "unsupported", "timespan", "row_limit", "size", "timeout", "internal", "cancelled"
]


#: The portal's messages (defender-api.md section 7).
RECOGNITION_ERROR = "A recognition error occurred."
TIMEOUT_MESSAGE = "Query exceeded the timeout period."
SIZE_MESSAGE = (
    'Result size limit exceeded. Use "summarize" to aggregate results, "project" to drop '
    'uninteresting columns, or "take" to truncate results.'
)
UNKNOWN_MESSAGE = "An unexpected error occurred during query execution. Please try again in a few minutes."


class HuntingError(Exception):
    """A hunting request the service refuses.

    :param message: the service's message (``error.message``).
    :param kind: ``syntax``, ``semantic``, ``unsupported``, ``timespan``, ``row_limit``, ``size``,
        ``timeout``, ``internal`` (the 500 for an engine failure nobody anticipated) or ``cancelled``
        (stopped because its client went away or the emulator is shutting down).
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


def internal_error() -> HuntingError:
    return HuntingError(UNKNOWN_MESSAGE, kind="internal", status=500, code="InternalServerError")


def walk(tree: ParseTree) -> Iterator[ParseTree]:
    """Every node of the parse tree, depth first in source order."""
    stack = [tree]
    while stack:
        node = stack.pop()
        yield node
        if not isinstance(node, TerminalNode):
            stack.extend(reversed(list(node.getChildren())))


def position(token: Token) -> str:
    # ANTLR columns are 0-based; people (and editors) count from 1.
    return f"line {token.line}, column {token.column + 1}"


#: The sentence that tells valid KQL the emulator does not run from a query Kusto refuses too.
NOT_RUN = "is valid KQL that this emulator does not run"


def unsupported(
    construct: str, token: Token | None = None, why: str = "", *, valid: bool = False
) -> HuntingError:
    """400 ``unsupported`` naming a KQL construct, where it is, and why.

    :param construct: the construct in KQL terms (``project-reorder``, ``evaluate bag_unpack``).
    :param token: where it starts, for the line and column.
    :param why: what to do instead, or what part of the construct runs.
    :param valid: the construct is valid KQL (Kusto runs it): say so.
    """
    where = f" at {position(token)}" if token is not None else ""
    because = f": {why}" if why else ""
    if valid:
        return HuntingError(f"'{construct}'{where} {NOT_RUN}{because}.", kind="unsupported")
    return HuntingError(f"unsupported KQL construct '{construct}'{where}{because}", kind="unsupported")


def missing_table(name: str, tables: list[str]) -> HuntingError:
    close = difflib.get_close_matches(name, tables, n=1, cutoff=0.6)
    hint = f" Did you mean '{close[0]}'?" if close else ""
    return HuntingError(f"Failed to resolve table expression named '{name}'.{hint}", kind="semantic")
