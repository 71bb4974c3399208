"""The row writers of hunting results: JSON Lines, CSV and Parquet (formats described in
:mod:`airflow_provider_mtp.outputs`, which places the files).

Each writer gathers its output and writes it to its stream in large pieces: a storage file's
``write()`` can cost microseconds of bookkeeping per call (Airflow's ``ObjectStoragePath``
wrapper runs its lineage collector on each), which one call per row multiplies by the rows.
"""

from __future__ import annotations

import abc
import csv
import io
import json
import math
import operator
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, BinaryIO

from airflow_provider_mtp.errors import MTPConfigError

if TYPE_CHECKING:
    import pyarrow as pa

Schema = Sequence[Mapping[str, str]]

#: Kusto type (as the APIs name it) -> Arrow type name; anything else is ``string``.
ARROW_TYPES = {
    "DateTime": "timestamp[us, tz=UTC]",
    "Int64": "int64",
    "Int32": "int32",
    "Double": "float64",
    "Boolean": "bool",
    "String": "string",
    "Guid": "string",
    "TimeSpan": "string",
    "Object": "string",
}

#: Rows buffered per Parquet row group.
PARQUET_BATCH_ROWS = 20_000

# --------------------------------------------------------------------------------------------------
# Writers
# --------------------------------------------------------------------------------------------------


#: Characters of text a writer gathers before one write to its stream.
TEXT_BUFFER_CHARS = 1024 * 1024
#: Bytes gathered before one write to the storage's file (see :meth:`OutputTarget.write_part`).
STORAGE_BUFFER_BYTES = 1024 * 1024

_compact = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


class RowWriter(abc.ABC):
    """Writes rows of one result to a binary stream; :meth:`close` finishes the file.

    :param stream: an open binary stream; the writer does not close it.
    :param schema: the result's ``[{"name", "type"}]``.
    """

    def __init__(self, stream: BinaryIO, schema: Schema) -> None:
        self.stream = stream
        self.schema = [dict(column) for column in schema]
        self.names = [column["name"] for column in self.schema]
        self.rows = 0

    @abc.abstractmethod
    def write(self, row: Mapping[str, Any], text: str | None = None) -> None:
        """Write one row (a dict as the service sent it).

        :param row: the row.
        :param text: the row's JSON text as the service sent it, when known (JSON Lines copies it).
        """

    def close(self) -> None:  # noqa: B027 - most formats have nothing to finish
        """Finish the file (footers, buffers); the stream stays open."""


class JsonLinesWriter(RowWriter):
    """One JSON object per line, UTF-8: the row's text as the service sent it, else compact JSON.

    A text holding a line break (a service that pretty-prints) is encoded again instead, so a
    line never holds a raw line break. Lines are gathered and written in large pieces.
    """

    def __init__(self, stream: BinaryIO, schema: Schema) -> None:
        super().__init__(stream, schema)
        self._lines: list[str] = []
        self._chars = 0

    def write(self, row: Mapping[str, Any], text: str | None = None) -> None:
        if text is None or "\n" in text or "\r" in text:
            text = _compact(row)
        self._lines.append(text)
        self.rows += 1
        self._chars += len(text)
        if self._chars >= TEXT_BUFFER_CHARS:
            self._flush()

    def _flush(self) -> None:
        if self._lines:
            self._lines.append("")
            self.stream.write("\n".join(self._lines).encode())
            self._lines, self._chars = [], 0

    def close(self) -> None:
        self._flush()


#: Types csv.writer already writes as a CSV file of this module should hold them.
_CSV_PLAIN = frozenset({str, int, type(None)})
#: Kusto types whose values :func:`_csv_cell` converts (booleans, doubles, dynamic values).
_CSV_TYPED = frozenset({"Boolean", "Double", "Object"})


def _csv_cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, float):
        return repr(value)
    return value


class CsvWriter(RowWriter):
    """RFC 4180 CSV (``\\r\\n`` line ends, quotes where needed), UTF-8, with a header line."""

    def __init__(self, stream: BinaryIO, schema: Schema) -> None:
        super().__init__(stream, schema)
        self._lines: list[str] = []
        self._csv = csv.writer(_LineSink(self._lines))
        self._values = operator.itemgetter(*self.names) if len(self.names) > 1 else None
        # The columns whose type says their values need converting: done by position, so a row
        # costs a call per such cell, not one per cell.
        self._typed = [i for i, column in enumerate(self.schema) if column["type"] in _CSV_TYPED]
        self._csv.writerow(self.names)

    @staticmethod
    def header(schema: Schema) -> bytes:
        """The exact bytes of the header line for ``schema``."""
        buffer = io.StringIO(newline="")
        csv.writer(buffer).writerow([column["name"] for column in schema])
        return buffer.getvalue().encode()

    def write(self, row: Mapping[str, Any], text: str | None = None) -> None:
        values: list[Any]
        try:
            values = list(self._values(row)) if self._values is not None else [row.get(self.names[0])]
        except (KeyError, IndexError):
            values = [row.get(name) for name in self.names]
        for index in self._typed:
            values[index] = _csv_cell(values[index])
        if not _CSV_PLAIN.issuperset(map(type, values)):
            # A value of an unexpected type (a bool in a String column): convert them all.
            values = [value if type(value) in _CSV_PLAIN else _csv_cell(value) for value in values]
        self._csv.writerow(values)
        self.rows += 1
        if len(self._lines) >= 4096:
            self._flush()

    def _flush(self) -> None:
        if self._lines:
            self.stream.write("".join(self._lines).encode())
            self._lines.clear()

    def close(self) -> None:
        self._flush()


class _LineSink:
    """What :class:`CsvWriter`'s ``csv.writer`` writes to: ``write`` is the list's own ``append``
    (csv calls it once per row; a Python method there would cost a call per row).

    :param lines: the list the lines go to.
    """

    def __init__(self, lines: list[str]) -> None:
        self.write = lines.append


def _pyarrow() -> Any:
    try:
        import pyarrow
        import pyarrow.compute
        import pyarrow.parquet
    except ImportError:
        raise MTPConfigError(
            "Writing .parquet needs pyarrow: install it (pip install pyarrow) or write .jsonl or .csv"
        ) from None
    return pyarrow


def arrow_schema(schema: Schema) -> pa.Schema:
    """The Arrow schema a Parquet output of ``schema`` gets (Kusto types in field metadata)."""
    pa = _pyarrow()
    types = {
        "DateTime": pa.timestamp("us", tz="UTC"),
        "Int64": pa.int64(),
        "Int32": pa.int32(),
        "Double": pa.float64(),
        "Boolean": pa.bool_(),
    }
    fields = [
        pa.field(
            column["name"], types.get(column["type"], pa.string()), metadata={"kusto_type": column["type"]}
        )
        for column in schema
    ]
    return pa.schema(fields, metadata={"kusto_schema": json.dumps([dict(column) for column in schema])})


def _datetime_value(value: Any) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    # fromisoformat (3.11+) reads "Z" and drops digits past the 6th: truncation, as documented.
    return datetime.fromisoformat(str(value))


def _double_value(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, str):
        return float(value.replace("Infinity", "inf"))
    return float(value)


def _text_value(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _object_value(value: Any) -> str | None:
    return None if value is None else _compact(value)


_CONVERTERS = {
    "DateTime": _datetime_value,
    "Double": _double_value,
    "Object": _object_value,
    "Int64": lambda value: value,
    "Int32": lambda value: value,
    "Boolean": lambda value: value,
}


#: Rows held as Python objects before they become Arrow arrays (a row group gathers them as Arrow).
ARROW_CHUNK_ROWS = 2048
#: Kusto types whose values Arrow takes as the service sends them (tried first; see _array).
_AS_SENT = frozenset({"Int64", "Int32", "Boolean", "Double", "String", "Guid", "TimeSpan"})


class ParquetWriter(RowWriter):
    """Parquet with Kusto types mapped to Arrow types, :data:`PARQUET_BATCH_ROWS` rows per row group.

    Rows become Arrow arrays every :data:`ARROW_CHUNK_ROWS` rows, so a row group waits in Arrow's
    compact form, not as Python objects. A column is handed to Arrow as sent when Arrow takes it
    (text, numbers, booleans; ``DateTime`` text parsed by Arrow); only a column Arrow refuses
    goes through the Python converters, with the same result.
    """

    def __init__(self, stream: BinaryIO, schema: Schema, *, batch_rows: int = PARQUET_BATCH_ROWS) -> None:
        super().__init__(stream, schema)
        self._pa = _pyarrow()
        self.arrow_schema = arrow_schema(self.schema)
        self._writer = self._pa.parquet.ParquetWriter(stream, self.arrow_schema)
        self._kinds = [column["type"] for column in self.schema]
        self._held: list[Mapping[str, Any]] = []
        self._batches: list[pa.RecordBatch] = []
        self._batched = 0
        self._batch_rows = batch_rows

    def write(self, row: Mapping[str, Any], text: str | None = None) -> None:
        self._held.append(row)
        self.rows += 1
        if len(self._held) >= min(ARROW_CHUNK_ROWS, self._batch_rows - self._batched):
            self._convert()
            if self._batched >= self._batch_rows:
                self._flush()

    def _convert(self) -> None:
        """The rows held become one Arrow record batch."""
        if not self._held:
            return
        rows, self._held = self._held, []
        arrays = [
            self._array([row.get(name) for row in rows], kind, field)
            for name, kind, field in zip(self.names, self._kinds, self.arrow_schema, strict=True)
        ]
        self._batches.append(self._pa.RecordBatch.from_arrays(arrays, schema=self.arrow_schema))
        self._batched += len(rows)

    def _array(self, values: list[Any], kind: str, field: pa.Field) -> pa.Array:
        pa = self._pa
        try:
            if kind in _AS_SENT:
                return pa.array(values, type=field.type)
            if kind == "DateTime":
                return self._timestamps(values, field)
        except (TypeError, ValueError, pa.ArrowException):
            pass  # e.g. "NaN" text in a Double column, a datetime object: the converters know them
        convert = _CONVERTERS.get(kind, _text_value)
        try:
            return pa.array([convert(value) for value in values], type=field.type)
        except (TypeError, ValueError, pa.ArrowException) as exc:
            raise MTPConfigError(
                f"Column {field.name!r} ({kind}) holds a value Parquet "
                f"cannot store as {field.type}: {type(exc).__name__}: {exc}. Write .jsonl or .csv instead."
            ) from exc

    def _timestamps(self, values: list[Any], field: pa.Field) -> pa.Array:
        """ISO 8601 text parsed by Arrow, to the nanosecond, then truncated to the microsecond.

        :raises ValueError: a value Arrow cannot take, or one before 1970 (where truncating an
            integer goes the other way in time than dropping digits does): the converter decides.
        """
        pa = self._pa
        nanoseconds = pa.array(values, type=pa.string()).cast(pa.timestamp("ns", tz="UTC"))
        earliest = pa.compute.min(nanoseconds.cast(pa.int64())).as_py()
        if earliest is not None and earliest < 0:
            raise ValueError("a timestamp before 1970")
        return nanoseconds.cast(field.type, safe=False)

    def _flush(self) -> None:
        self._convert()
        if self._batches:
            table = self._pa.Table.from_batches(self._batches, schema=self.arrow_schema)
            self._writer.write_table(table, row_group_size=self._batch_rows)
            self._batches, self._batched = [], 0

    def close(self) -> None:
        self._flush()
        self._writer.close()


def open_writer(fmt: str, stream: BinaryIO, schema: Schema) -> RowWriter:
    """A writer of format ``fmt`` on ``stream``."""
    if fmt == "jsonl":
        return JsonLinesWriter(stream, schema)
    if fmt == "csv":
        return CsvWriter(stream, schema)
    if fmt == "parquet":
        return ParquetWriter(stream, schema)
    raise MTPConfigError(f"Unknown output format {fmt!r}")
