"""Small helpers on KQL source text shared by the query rewrites: edits, literals, parse-tree lookups."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from antlr4.tree.Tree import ParseTree, TerminalNode

from airflow_provider_mtp.emulator.hunting_errors import walk


@dataclass(frozen=True)
class Edit:
    """Replace ``text[start:stop]`` with ``replacement``."""

    start: int
    stop: int
    replacement: str


def apply_edits(text: str, edits: Iterable[Edit]) -> str:
    """``text`` with non-overlapping ``edits`` applied (from the end, so offsets stay valid)."""
    for edit in sorted(edits, key=lambda item: (item.start, item.stop), reverse=True):
        text = text[: edit.start] + edit.replacement + text[edit.stop :]
    return text


def source(text: str, node: Any) -> str:
    """The exact source text a parse-tree node spans (``getText`` drops the whitespace)."""
    return text[node.start.start : node.stop.stop + 1]


def span_edit(node: Any, replacement: str) -> Edit:
    return Edit(node.start.start, node.stop.stop + 1, replacement)


def nodes(tree: ParseTree, kind: type) -> list[Any]:
    return [node for node in walk(tree) if isinstance(node, kind)]


def first(tree: ParseTree, kind: type) -> Any | None:
    return next((node for node in walk(tree) if isinstance(node, kind)), None)


def same_span(a: Any, b: Any) -> bool:
    return bool(a.start.start == b.start.start and a.stop.stop == b.stop.stop)


def terminals(tree: ParseTree) -> list[TerminalNode]:
    return [node for node in walk(tree) if isinstance(node, TerminalNode)]


_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", '"': '"', "'": "'", "0": "\0"}


def string_value(literal: str) -> str | None:
    """The value of one KQL string literal (``"a\\tb"``, ``'x'``, ``@"C:\\"``, ``h"..."``), or None."""
    text = literal.strip()
    if text[:1] in "hH" and text[1:2] in ('"', "'", "@"):
        text = text[1:]
    if text.startswith("@") and len(text) >= 3 and text[1] in "\"'" and text[-1] == text[1]:
        quote = text[1]
        return text[2:-1].replace(quote * 2, quote)
    if len(text) >= 2 and text[0] in "\"'" and text[-1] == text[0]:
        return re.sub(r"\\(.)", lambda m: _ESCAPES.get(m.group(1), m.group(1)), text[1:-1], flags=re.S)
    return None


def string_literal(value: str) -> str:
    """A KQL double-quoted literal for ``value`` (JSON escaping is valid KQL escaping)."""
    return json.dumps(value, ensure_ascii=False)


def identifier(name: str) -> str:
    """``name`` as a KQL name: bare when it is a plain identifier, else ``['...']``."""
    if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
        return name
    return "['" + name.replace("\\", "\\\\").replace("'", "\\'") + "']"


class Prepared(str):
    """Prepared KQL that remembers the query the client sent, to place errors in that text."""

    original: str

    def __new__(cls, text: str, original: str) -> Prepared:
        prepared = super().__new__(cls, text)
        prepared.original = original
        return prepared
