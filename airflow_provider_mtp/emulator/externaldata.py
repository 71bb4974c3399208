"""``externaldata`` without a network: URLs a test registers, served from files or text.

The emulator never fetches anything. A query's ``externaldata (schema) [ "url" ] with (...)``
becomes ``datatable (schema) [ ... ]`` holding the rows of the content registered for that URL,
parsed by the ``format`` Kusto would use (``csv`` by default, ``tsv``, ``scsv``, ``psv``, ``txt``
one line per row, ``json``/``multijson`` one object per line, columns by name), with
``ignoreFirstRecord``. Any other URL is refused with a 400 naming it.

Registration: ``--externaldata-dir DIR`` reads ``DIR/externaldata.json`` (``{"url": "file"}``,
files relative to ``DIR``); the admin route ``POST /_emulator/externaldata`` takes
``{"url": ..., "content": ...}`` or ``{"url": ..., "file": ...}``.
"""

from __future__ import annotations

import csv
import io
import json
import re
import threading
from pathlib import Path
from typing import Any

import duckdb_kql
from duckdb_kql._antlr.KqlParser import KqlParser

from airflow_provider_mtp.emulator.hunting_errors import HuntingError, position
from airflow_provider_mtp.emulator.kql_text import (
    Edit,
    apply_edits,
    nodes,
    source,
    string_literal,
    string_value,
)

INDEX_FILE = "externaldata.json"
#: Rows one externaldata source may hold: the rows become a literal in the query text.
MAX_ROWS = 50_000
_DELIMITERS = {"csv": ",", "tsv": "\t", "tsve": "\t", "scsv": ";", "psv": "|", "sohsv": "\x01"}


class ExternalDataError(ValueError):
    """A registration that cannot be used (unknown file, bad index)."""


class ExternalData:
    """The URL -> content table ``externaldata`` reads. Thread-safe."""

    def __init__(self) -> None:
        self._content: dict[str, str] = {}
        self._lock = threading.Lock()
        #: The ``--externaldata-dir`` folder: the only place files are read from.
        self.folder: Path | None = None

    def register(self, url: str, content: str) -> None:
        """Serve ``content`` for ``url``.

        :param url: the URL exactly as queries write it.
        :param content: the text the URL holds.
        """
        if not url:
            raise ExternalDataError("the URL is empty")
        with self._lock:
            self._content[url] = content

    def register_file(self, url: str, name: str) -> None:
        """Serve the text of the file ``name`` of the ``--externaldata-dir`` folder for ``url``.

        Only files inside that folder are read: the admin routes have no authentication, so a path
        elsewhere (``/etc/...``, ``../...``) would let anyone who reaches the emulator read the
        host's files through ``externaldata``.

        :raises ExternalDataError: no folder was given, the name leaves it, or the file cannot be read.
        """
        if self.folder is None:
            raise ExternalDataError(
                "files are read only from --externaldata-dir, and the emulator was started without it; "
                'send the text instead: {"url": ..., "content": ...}'
            )
        folder = self.folder.resolve()
        path = (folder / name).resolve()
        if not path.is_relative_to(folder):
            raise ExternalDataError(
                f"{name!r} is not a file of the --externaldata-dir folder; name one inside it"
            )
        try:
            self.register(url, path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise ExternalDataError(
                f"cannot read {name!r} in the --externaldata-dir folder: {exc.strerror}"
            ) from None

    def load_dir(self, folder: Path) -> int:
        """Register every ``url -> file`` of ``folder/externaldata.json``; returns how many."""
        index = folder / INDEX_FILE
        try:
            mapping = json.loads(index.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ExternalDataError(f"cannot read {index}: {exc}") from None
        if not isinstance(mapping, dict) or not all(isinstance(v, str) for v in mapping.values()):
            raise ExternalDataError(f"{index} must be a JSON object of URL -> file name")
        self.folder = folder
        for url, name in mapping.items():
            self.register_file(url, name)
        return len(mapping)

    @property
    def urls(self) -> list[str]:
        with self._lock:
            return sorted(self._content)

    def content(self, url: str) -> str | None:
        with self._lock:
            return self._content.get(url)

    def expand(self, text: str) -> str:
        """``text`` with each ``externaldata`` source replaced by a ``datatable`` of its rows.

        :raises HuntingError: 400 for a URL nobody registered or content that does not parse.
        """
        if "external" not in text.lower():
            return text
        tree = duckdb_kql.parse(text).tree
        if tree is None:
            return text
        edits = [
            Edit(node.start.start, node.stop.stop + 1, self._datatable(node, text))
            for node in nodes(tree, KqlParser.ExternalDataExpressionContext)
        ]
        return apply_edits(text, edits) if edits else text

    def _datatable(self, node: Any, text: str) -> str:
        schema = node.rowSchema()
        columns = [
            (column.parameterName().getText(), column.scalarType().getText().lower())
            for column in schema.rowSchemaColumnDeclaration()
        ]
        urls = [string_value(source(text, literal)) or "" for literal in node.stringLiteralExpression()]
        properties = _properties(node, text)
        fmt = properties.get("format", "csv").lower()
        if fmt not in _DELIMITERS and fmt not in ("txt", "json", "multijson"):
            raise HuntingError(
                f"'externaldata' at {position(node.start)} with format {fmt!r} is valid KQL that this "
                "emulator does not run: use csv, tsv, scsv, psv, txt, json or multijson.",
                kind="unsupported",
            )
        rows: list[list[Any]] = []
        for url in urls:
            content = self.content(url)
            if content is None:
                raise HuntingError(
                    f"'externaldata' at {position(node.start)}: the emulator has no network access and no "
                    f"content registered for {url!r}; register it with --externaldata-dir or "
                    "POST /_emulator/externaldata.",
                    kind="semantic",
                )
            rows.extend(_rows(content, properties, [name for name, _ in columns], node))
        if len(rows) > MAX_ROWS:
            raise HuntingError(
                f"'externaldata' at {position(node.start)}: more than {MAX_ROWS} rows.", kind="semantic"
            )
        values = ", ".join(
            _literal(value, kind) for row in rows for value, (_, kind) in zip(row, columns, strict=True)
        )
        return f"datatable ({source(text, schema)[1:-1]}) [{values}]"


def _properties(node: Any, text: str) -> dict[str, str]:
    clause = node.externalDataWithClause()
    found: dict[str, str] = {}
    if clause is None:
        return found
    for item in clause.getChildren():
        if isinstance(item, KqlParser.ExternalDataWithClausePropertyContext):
            raw = source(text, item).split("=", 1)
            value = raw[1].strip() if len(raw) > 1 else ""
            unquoted = string_value(value)
            found[raw[0].strip().lower()] = unquoted if unquoted is not None else value
    return found


def _rows(content: str, properties: dict[str, str], names: list[str], node: Any) -> list[list[Any]]:
    fmt = properties.get("format", "csv").lower()
    skip = properties.get("ignorefirstrecord", "false").lower() == "true"
    if fmt == "txt":
        lines = content.splitlines()
        rows: list[list[Any]] = [[line] + [None] * (len(names) - 1) for line in lines]
    elif fmt in ("json", "multijson"):
        rows = []
        for line in content.splitlines():
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except ValueError:
                raise HuntingError(
                    f"'externaldata' at {position(node.start)}: a line is not a JSON object.", kind="semantic"
                ) from None
            rows.append([record.get(name) if isinstance(record, dict) else None for name in names])
    elif fmt in _DELIMITERS:
        reader = csv.reader(io.StringIO(content), delimiter=_DELIMITERS[fmt])
        rows = [list(row) for row in reader if row]
    else:
        raise HuntingError(
            f"'externaldata' at {position(node.start)}: format {fmt!r} is valid KQL that this emulator does "
            "not run: use csv, tsv, scsv, psv, txt, json or multijson.",
            kind="unsupported",
        )
    if skip:
        rows = rows[1:]
    return [(row + [None] * len(names))[: len(names)] for row in rows]


_NULLS = {
    "int": "int(null)",
    "long": "long(null)",
    "real": "real(null)",
    "double": "real(null)",
    "bool": "bool(null)",
    "boolean": "bool(null)",
    "datetime": "datetime(null)",
    "timespan": "timespan(null)",
    "dynamic": "dynamic(null)",
    "guid": "guid(null)",
    "decimal": "real(null)",
}


def _literal(value: Any, kind: str) -> str:
    """One value as a KQL literal of the column's type; empty or unparsable values are null."""
    if kind == "string":
        return string_literal("" if value is None else str(value))
    if value is None or (isinstance(value, str) and not value.strip()):
        return _NULLS.get(kind, "dynamic(null)")
    text = value if isinstance(value, str) else json.dumps(value)
    text = text.strip()
    if kind in ("int", "long") and re.fullmatch(r"-?\d+", text):
        return f"{kind}({text})"
    if kind in ("real", "double", "decimal") and re.fullmatch(r"-?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?", text):
        return f"real({text})"
    if kind in ("bool", "boolean") and text.lower() in ("true", "false", "1", "0"):
        return "true" if text.lower() in ("true", "1") else "false"
    if kind == "datetime" and re.fullmatch(r"[\d\-:T .Z+/]+", text):
        return f"datetime({text})"
    if kind == "timespan" and re.fullmatch(r"[\d\-:.dhms]+", text):
        return f"timespan({text})"
    if kind == "guid" and re.fullmatch(r"[0-9a-fA-F\-]{36}", text):
        return f"guid({text})"
    if kind == "dynamic":
        try:
            json.loads(text)
            return f"dynamic({text})"
        except ValueError:
            return f"dynamic({string_literal(text)})"
    return _NULLS.get(kind, "dynamic(null)")
