"""A caller's raw OData ``$filter`` clause, checked so that it cannot widen the filter it joins.

The listings AND a raw ``odata_filter`` with the clauses they build (status, owner, the time
window) by wrapping it in parentheses: ``... and (<odata_filter>)``. Wrapping contains the clause
only if its parentheses balance outside string literals: ``1 eq 1) or (1 eq 1`` would close the
wrapper early and turn the whole filter into ``(... and (1 eq 1) or (1 eq 1)``, which matches
every incident. A value from a trigger form or a template can hold exactly that.

:func:`checked_odata_filter` reads the text the way an OData parser does (string literals in
single quotes, a quote doubled inside one; parentheses elsewhere) and refuses a clause whose
parentheses go below depth 0, do not return to 0 at its end, or that leaves a string open. It does
not check the clause's meaning; the service does, and answers a bad one with a 400.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from airflow_provider_mtp.errors import MTPConfigError

__all__ = ["Segment", "checked_odata_filter", "rename_fields", "segments"]


@dataclass(frozen=True)
class Segment:
    """A run of a filter's text: a whole string literal (quotes included) or the text between them.

    :param text: the characters.
    :param literal: ``True`` for a string literal.
    :param position: 0-based offset of its first character.
    """

    text: str
    literal: bool
    position: int


def segments(text: str, *, name: str = "odata_filter") -> list[Segment]:
    """Split a filter into string literals and the text around them.

    :param text: the filter.
    :param name: the argument's name, for the error message.
    :raises MTPConfigError: a string literal is not closed.
    """
    found: list[Segment] = []
    index, start = 0, 0
    while index < len(text):
        if text[index] != "'":
            index += 1
            continue
        if start < index:
            found.append(Segment(text[start:index], False, start))
        opening, index = index, index + 1
        while True:
            if index >= len(text):
                raise MTPConfigError(
                    f"{name} has a string literal that is never closed (the quote at position {opening}): "
                    f"{text!r}. Close it with a single quote, and write a quote inside a string as two "
                    "quotes ('O''Brien')."
                )
            if text.startswith("''", index):
                index += 2
            elif text[index] == "'":
                index += 1
                break
            else:
                index += 1
        found.append(Segment(text[opening:index], True, opening))
        start = index
    if start < len(text):
        found.append(Segment(text[start:], False, start))
    return found


def checked_odata_filter(text: object, *, name: str = "odata_filter") -> str | None:
    """The clause, stripped, once it is sure to stay inside the parentheses it is wrapped in.

    :param text: the caller's clause; ``None``, ``""`` and blanks mean no clause.
    :param name: the argument's name, for the error message.
    :return: the stripped clause, or ``None``.
    :raises MTPConfigError: not a string, a parenthesis closed before it was opened, one left
        open, or a string literal left open; the message says which and where.
    """
    if text is None:
        return None
    if not isinstance(text, str):
        raise MTPConfigError(f"{name} must be a string (an OData $filter clause), got {type(text).__name__}")
    clause = text.strip()
    if not clause:
        return None
    depth = 0
    for segment in segments(clause, name=name):
        if segment.literal:
            continue
        for offset, char in enumerate(segment.text):
            if char == "(":
                depth += 1
            elif char == ")":
                depth -= 1
                if depth < 0:
                    raise MTPConfigError(
                        f"{name} closes a parenthesis it never opened (position {segment.position + offset}) "
                        f"in {clause!r}. It is ANDed with the other filters inside parentheses, so it "
                        "must be one balanced clause: fix or remove the extra ')'."
                    )
    if depth:
        raise MTPConfigError(
            f"{name} leaves {depth} parenthes{'is' if depth == 1 else 'es'} open in {clause!r}. It is "
            "ANDed with the other filters inside parentheses, so it must be one balanced clause: add "
            "the missing ')'."
        )
    return clause


def rename_fields(text: str, names: Mapping[str, str], *, name: str = "odata_filter") -> str:
    """Rename whole-word field names outside string literals (``'lastUpdateDateTime'`` stays as is).

    :param text: the filter.
    :param names: old name to new name.
    :param name: the argument's name, for the error message.
    :raises MTPConfigError: a string literal is not closed.
    """
    if not names:
        return text
    pattern = re.compile(r"\b(" + "|".join(re.escape(old) for old in names) + r")\b")
    return "".join(
        segment.text if segment.literal else pattern.sub(lambda m: names[m.group(1)], segment.text)
        for segment in segments(text, name=name)
    )
