"""Which parts of a KQL query make its rows depend on the whole time window.

A query whose rows depend on every row of the window (``take``, ``summarize`` without a time
group, ``row_number()``...) gives other rows when the window runs in pieces, so the hunting
operator refuses to split it. :mod:`airflow_provider_mtp.kql` re-exports
:func:`window_dependent_parts` and its tables.
"""

from __future__ import annotations

import itertools

from airflow_provider_mtp.kql_tokens import Token, tokenize

__all__ = ["ROW_PLUGINS", "TIME_COLUMNS", "WINDOW_FUNCTIONS", "WINDOW_OPERATORS", "window_dependent_parts"]

#: Tabular operators (after a ``|``) whose rows depend on every row of their input, so a window
#: run in pieces does not give the whole window's rows: the first N, a sample, one row per
#: distinct value, counts, row numbers, series and groups over the window.
WINDOW_OPERATORS = frozenset(
    {
        "take",
        "limit",
        "top",
        "top-nested",
        "top-hitters",
        "distinct",
        "count",
        "sample",
        "sample-distinct",
        "serialize",
        "make-series",
        "reduce",
        "scan",
        "partition",
        "facet",
    }
)
#: Functions whose value depends on other rows of the input (order, neighbours, a scalar of all).
WINDOW_FUNCTIONS = frozenset(
    {
        "row_number",
        "row_cumsum",
        "row_rank_dense",
        "row_rank_min",
        "row_window_session",
        "prev",
        "next",
        "toscalar",
    }
)
#: ``evaluate`` plugins that work row by row; every other plugin looks at all its input.
ROW_PLUGINS = frozenset({"bag_unpack", "ipv4_lookup", "ipv6_lookup"})
#: The time column of Defender's hunting tables (``TimeGenerated`` in the unified portal).
TIME_COLUMNS = ("Timestamp", "TimeGenerated")
#: Functions of a time column that group by time (a row's group is fixed by its own time).
_TIME_BINS = frozenset({"bin", "bin_at", "floor", "startofday", "startofweek", "startofmonth", "startofyear"})
_OPEN, _CLOSE = "([{", ")]}"


def _operator_at(tokens: list[Token], index: int) -> tuple[str, int]:
    """The operator name starting at ``tokens[index]`` (``top-nested``: joined) and the index after it."""
    name, position = tokens[index].text, index + 1
    while (
        position + 1 < len(tokens)
        and tokens[position].text == "-"
        and tokens[position + 1].kind == "identifier"
        and tokens[position].start == tokens[position - 1].start + len(tokens[position - 1].text)
        and tokens[position + 1].start == tokens[position].start + 1
    ):
        name += "-" + tokens[position + 1].text
        position += 2
    return name, position


def _clause(tokens: list[Token], start: int) -> list[tuple[Token, int]]:
    """The tokens of the operator clause from ``start`` to the next ``|``/``;`` at its own level,
    each with its nesting depth relative to the clause."""
    clause: list[tuple[Token, int]] = []
    depth = 0
    for token in tokens[start:]:
        if token.kind == "punctuation" and token.text in _CLOSE:
            if depth == 0:
                break
            depth -= 1
        elif depth == 0 and token.kind == "punctuation" and token.text in ("|", ";"):
            break
        clause.append((token, depth))
        if token.kind == "punctuation" and token.text in _OPEN:
            depth += 1
    return clause


def _after_keyword(clause: list[tuple[Token, int]], keyword: str) -> list[tuple[Token, int]] | None:
    for position, (token, depth) in enumerate(clause):
        if depth == 0 and token.kind == "identifier" and token.text == keyword:
            return clause[position + 1 :]
    return None


def _groups_by_time(clause: list[tuple[Token, int]], time_columns: tuple[str, ...]) -> bool:
    """True when a ``summarize`` clause's ``by`` holds the time column, bare or binned."""
    by = _after_keyword(clause, "by")
    if by is None:
        return False
    for position, (token, depth) in enumerate(by):
        if token.text not in time_columns or token.kind != "identifier":
            continue
        if depth == 0:
            return True
        # bin(Timestamp, 1h): the column is the first argument of a time-bin function.
        if (
            depth == 1
            and position >= 2
            and by[position - 1][0].text == "("
            and by[position - 2][0].text in _TIME_BINS
        ):
            return True
    return False


def _joins_on_time(clause: list[tuple[Token, int]], time_columns: tuple[str, ...]) -> bool:
    on = _after_keyword(clause, "on")
    return on is not None and any(
        token.kind == "identifier" and token.text in time_columns for token, _ in on
    )


def _line(query: str, token: Token) -> int:
    return query.count("\n", 0, token.start) + 1


def window_dependent_parts(query: str, *, time_columns: tuple[str, ...] = TIME_COLUMNS) -> list[str]:
    """What in ``query`` makes its rows depend on the whole window, so it cannot run in pieces.

    Found (in code only: strings and comments are skipped by :func:`tokenize`):

    * after a ``|``: the operators of :data:`WINDOW_OPERATORS`; ``summarize`` unless its ``by``
      holds the time column (``by Timestamp`` or ``by bin(Timestamp, 1h)``); ``join`` unless its
      ``on`` names the time column; ``evaluate`` with a plugin not in :data:`ROW_PLUGINS`;
    * anywhere: calls of :data:`WINDOW_FUNCTIONS` (``row_number()``, ``prev()``, ``toscalar()``...).

    Filters and projections (``where``, ``project``, ``extend``, ``parse``, ``mv-expand``),
    ``union``, ``lookup`` and ``order by`` are row by row. Not a parser: a query the check cannot
    see into (a stored function) passes.

    :param query: the KQL text.
    :param time_columns: the names of the column the window filters on.
    :return: one description per finding, such as ``take (line 4)``, in query order.
    """
    tokens = list(tokenize(query))
    found: list[str] = []
    for index, token in enumerate(tokens):
        following = tokens[index + 1] if index + 1 < len(tokens) else None
        previous = tokens[index - 1] if index else None
        if (
            token.kind == "identifier"
            and token.text in WINDOW_FUNCTIONS
            and following is not None
            and following.text == "("
            and (previous is None or previous.text != ".")
        ):
            found.append(f"{token.text}() (line {_line(query, token)})")
            continue
        if token.text != "|" or following is None or following.kind != "identifier":
            continue
        name, after = _operator_at(tokens, index + 1)
        where = f"line {_line(query, following)}"
        clause = _clause(tokens, after)
        if name in WINDOW_OPERATORS:
            found.append(f"{name} ({where})")
        elif name == "summarize" and not _groups_by_time(clause, time_columns):
            found.append(
                f"summarize without a by {time_columns[0]} or by bin({time_columns[0]}, ...) ({where})"
            )
        elif name == "join" and not _joins_on_time(clause, time_columns):
            found.append(f"join not on {time_columns[0]} ({where})")
        elif name == "evaluate":
            # The plugin is the call: evaluate [hint.x = y] plugin(args).
            plugin = next(
                (
                    item.text
                    for (item, depth), (after_item, _) in itertools.pairwise(clause)
                    if depth == 0 and item.kind == "identifier" and after_item.text == "("
                ),
                "",
            )
            if plugin not in ROW_PLUGINS:
                found.append(f"evaluate {plugin} ({where})")
    return found
