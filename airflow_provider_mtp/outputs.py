"""Hunting results as files: row writers (JSON Lines, CSV, Parquet) and their safe placement.

Rows stream from the service into a writer, one at a time; nothing holds a whole result.

Formats, chosen by the output's extension (or named explicitly):

* **JSON Lines** (``.jsonl``, ``.ndjson``, ``.json``): one JSON object per row, values exactly as
  the service sent them (datetimes as ISO 8601 text with all 7 fractional digits, dynamic values
  as JSON).
* **CSV** (``.csv``): a header of column names, then one line per row: datetimes as the
  service's ISO 8601 text (UTC, ``Z``, 7 digits), ``true``/``false``, numbers as Python writes
  them (``NaN``, ``Infinity`` as the service sends them), dynamic values as compact JSON, null as
  an empty field.
* **Parquet** (``.parquet``, needs ``pyarrow``): Kusto types become Arrow types (see
  :data:`ARROW_TYPES`). ``DateTime`` is ``timestamp[us, UTC]``: the Parquet timestamp every
  reader (Spark, BigQuery, Athena, DuckDB, pandas) takes. Kusto counts 100 ns ticks, so a 7th
  fractional digit is dropped (truncated, so a value never moves past its window's end); use JSON
  Lines or CSV for the exact text. ``TimeSpan`` stays Kusto's text (``1.02:03:04.5000000``): Arrow
  durations reach most readers as bare integers. ``Object`` (dynamic) is JSON text. The Kusto
  schema is kept in the file's metadata (``kusto_schema``).

Placement (:class:`OutputTarget`): a local path or any ``ObjectStoragePath`` URI
(``file://``, ``s3://``, ``gs://``, ``abfs://`` ...). Pieces are written as part files under
``<output>.parts/<token>/`` on the same storage, then moved (one part) or concatenated through a
temporary file in the output's folder and moved into place, so the final path never holds a
partial file. Parts survive a deferral, together with a copy of the hunt's progress record
(``progress.json``), so a resumed task (perhaps on another worker) continues where it stopped.

:meth:`OutputTarget.check` refuses, before any hunt spends quota, an output the task could not
write: a storage scheme whose filesystem package is not installed (the message names the package
and the Airflow provider), a path that is an existing folder, and a local folder that cannot be
created or written. It writes nothing (a probe folder it makes is removed at once).
"""

from __future__ import annotations

import abc
import csv
import io
import json
import logging
import math
import os
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, BinaryIO

from airflow_provider_mtp.errors import MTPConfigError

if TYPE_CHECKING:
    import pyarrow as pa
    from airflow.sdk import ObjectStoragePath

log = logging.getLogger(__name__)

#: Extension -> format.
FORMATS_BY_EXTENSION = {
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "jsonl",
    ".csv": "csv",
    ".parquet": "parquet",
}
#: Format -> the extension its part files get.
EXTENSIONS = {"jsonl": ".jsonl", "csv": ".csv", "parquet": ".parquet"}

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

#: URI scheme -> (the fsspec package, the Airflow provider) ObjectStoragePath needs to write there.
STORAGE_PACKAGES = {
    "s3": ("s3fs", "apache-airflow-providers-amazon"),
    "s3a": ("s3fs", "apache-airflow-providers-amazon"),
    "s3n": ("s3fs", "apache-airflow-providers-amazon"),
    "gs": ("gcsfs", "apache-airflow-providers-google"),
    "gcs": ("gcsfs", "apache-airflow-providers-google"),
    "abfs": ("adlfs", "apache-airflow-providers-microsoft-azure"),
    "abfss": ("adlfs", "apache-airflow-providers-microsoft-azure"),
    "az": ("adlfs", "apache-airflow-providers-microsoft-azure"),
    "adl": ("adlfs", "apache-airflow-providers-microsoft-azure"),
}
_LOCAL_SCHEMES = ("", "file", "local")

Schema = Sequence[Mapping[str, str]]


def output_format(path: str, explicit: str | None = None) -> str:
    """``jsonl``, ``csv`` or ``parquet``: ``explicit`` if given, else from the path's extension.

    :param path: the output path or URI.
    :param explicit: a format name (``json`` and ``ndjson`` mean JSON Lines).
    :raises MTPConfigError: unknown format or extension.
    """
    if explicit:
        name = explicit.strip().lower().lstrip(".")
        name = {"json": "jsonl", "ndjson": "jsonl", "jsonlines": "jsonl"}.get(name, name)
        if name not in EXTENSIONS:
            raise MTPConfigError(f"output_format {explicit!r} is not one of jsonl, csv, parquet")
        return name
    lowered = path.lower()
    for extension, name in FORMATS_BY_EXTENSION.items():
        if lowered.endswith(extension):
            return name
    raise MTPConfigError(
        f"Cannot tell the output format of {path!r}: end it with .jsonl, .csv or .parquet, or set output_format"
    )


# --------------------------------------------------------------------------------------------------
# Writers
# --------------------------------------------------------------------------------------------------


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
    def write(self, row: Mapping[str, Any]) -> None:
        """Write one row (a dict as the service sent it)."""

    def close(self) -> None:  # noqa: B027 - most formats have nothing to finish
        """Finish the file (footers, buffers); the stream stays open."""


class JsonLinesWriter(RowWriter):
    """One compact JSON object per line, UTF-8."""

    def write(self, row: Mapping[str, Any]) -> None:
        self.stream.write(json.dumps(row, ensure_ascii=False, separators=(",", ":")).encode() + b"\n")
        self.rows += 1


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
        self._text = io.TextIOWrapper(stream, encoding="utf-8", newline="", write_through=True)
        self._csv = csv.writer(self._text)
        self._csv.writerow(self.names)

    @staticmethod
    def header(schema: Schema) -> bytes:
        """The exact bytes of the header line for ``schema``."""
        buffer = io.StringIO(newline="")
        csv.writer(buffer).writerow([column["name"] for column in schema])
        return buffer.getvalue().encode()

    def write(self, row: Mapping[str, Any]) -> None:
        self._csv.writerow([_csv_cell(row.get(name)) for name in self.names])
        self.rows += 1

    def close(self) -> None:
        self._text.flush()
        self._text.detach()


def _pyarrow() -> Any:
    try:
        import pyarrow
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
    return None if value is None else json.dumps(value, ensure_ascii=False, separators=(",", ":"))


_CONVERTERS = {
    "DateTime": _datetime_value,
    "Double": _double_value,
    "Object": _object_value,
    "Int64": lambda value: value,
    "Int32": lambda value: value,
    "Boolean": lambda value: value,
}


class ParquetWriter(RowWriter):
    """Parquet with Kusto types mapped to Arrow types, :data:`PARQUET_BATCH_ROWS` rows per row group."""

    def __init__(self, stream: BinaryIO, schema: Schema, *, batch_rows: int = PARQUET_BATCH_ROWS) -> None:
        super().__init__(stream, schema)
        self._pa = _pyarrow()
        self.arrow_schema = arrow_schema(self.schema)
        self._writer = self._pa.parquet.ParquetWriter(stream, self.arrow_schema)
        self._converters = [_CONVERTERS.get(column["type"], _text_value) for column in self.schema]
        self._columns: list[list[Any]] = [[] for _ in self.schema]
        self._batch_rows = batch_rows

    def write(self, row: Mapping[str, Any]) -> None:
        for column, name in zip(self._columns, self.names, strict=True):
            column.append(row.get(name))
        self.rows += 1
        if len(self._columns[0] if self._columns else ()) >= self._batch_rows:
            self._flush()

    def _flush(self) -> None:
        if not self._columns or not self._columns[0]:
            return
        arrays = []
        for values, convert, field in zip(self._columns, self._converters, self.arrow_schema, strict=True):
            try:
                arrays.append(self._pa.array([convert(value) for value in values], type=field.type))
            except (TypeError, ValueError, self._pa.ArrowException) as exc:
                raise MTPConfigError(
                    f"Column {field.name!r} ({field.metadata[b'kusto_type'].decode()}) holds a value Parquet "
                    f"cannot store as {field.type}: {type(exc).__name__}: {exc}. Write .jsonl or .csv instead."
                ) from exc
        self._writer.write_batch(self._pa.RecordBatch.from_arrays(arrays, schema=self.arrow_schema))
        self._columns = [[] for _ in self.schema]

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


def concatenate(fmt: str, parts: Sequence[ObjectStoragePath], target: BinaryIO, schema: Schema) -> None:
    """Write the parts, in order, as one file of format ``fmt`` (every part has ``schema``)."""
    if fmt == "parquet":
        pa = _pyarrow()
        writer = pa.parquet.ParquetWriter(target, arrow_schema(schema))
        try:
            for part in parts:
                with part.open("rb") as stream:
                    for batch in pa.parquet.ParquetFile(stream).iter_batches(batch_size=PARQUET_BATCH_ROWS):
                        writer.write_batch(batch)
        finally:
            writer.close()
        return
    header = CsvWriter.header(schema) if fmt == "csv" else b""
    for index, part in enumerate(parts):
        with part.open("rb") as stream:
            if header:
                head = stream.read(len(header))
                if head != header:
                    raise MTPConfigError(f"Part file {part} does not start with the expected CSV header")
                if index == 0:
                    target.write(head)
            shutil.copyfileobj(stream, target, 1024 * 1024)


# --------------------------------------------------------------------------------------------------
# Placement
# --------------------------------------------------------------------------------------------------


class OutputTarget:
    """Where a result goes, and its part files and temporary file on the same storage.

    :param uri: a local absolute path or an ``ObjectStoragePath`` URI.
    :param fmt: ``jsonl``, ``csv`` or ``parquet`` (default: from the extension).
    """

    def __init__(self, uri: str, fmt: str | None = None) -> None:
        from airflow.sdk import ObjectStoragePath

        text = str(uri).strip()
        if not text:
            raise MTPConfigError("output_path is empty")
        if "://" not in text and not os.path.isabs(text):
            raise MTPConfigError(
                f"output_path {text!r} is relative: give an absolute path or a URI (file:///..., s3://...); "
                "a worker's working directory is not predictable"
            )
        self.format = output_format(text, fmt)
        self.path = ObjectStoragePath(text)
        self.uri = str(self.path)

    @property
    def extension(self) -> str:
        return EXTENSIONS[self.format]

    @property
    def local(self) -> bool:
        """True for a path on this machine's file system (a plain path or ``file://``)."""
        return self.path.protocol in _LOCAL_SCHEMES

    def check(self) -> None:
        """Refuse, before any hunt, an output this worker cannot write; writes nothing.

        :raises MTPConfigError: the scheme's filesystem package or provider is missing; the path
            is an existing folder; the local folder cannot be created or written.
        """
        self._filesystem()
        if self.local:
            self._check_local_folder()
            return
        try:
            is_folder = self.path.is_dir()
        except OSError as exc:  # credentials, network: the write itself will say
            log.debug("could not check whether %s is a folder: %s", self.uri, exc)
            return
        if is_folder:
            raise self._is_folder_error()

    def _filesystem(self) -> Any:
        """The path's filesystem, loaded now (ObjectStoragePath loads it on first use)."""
        try:
            return self.path.fs
        except (ImportError, ValueError) as exc:
            scheme = self.path.protocol
            package, provider = STORAGE_PACKAGES.get(scheme, (None, None))
            if package is None:
                install = (
                    f"install the Airflow provider that registers the {scheme}:// filesystem, with its "
                    "fsspec package"
                )
            else:
                install = f"install {package} and the Airflow provider {provider} (pip install {provider} {package})"
            raise MTPConfigError(
                f"output_path {self.uri!r} is on {scheme}:// storage, which this worker cannot write: "
                f"{install} on every worker, or write to a local path. ({type(exc).__name__}: {exc})"
            ) from exc

    def _is_folder_error(self) -> MTPConfigError:
        return MTPConfigError(
            f"output_path {self.uri!r} is an existing folder: give the path of a file in it, such as "
            f"{self.uri.rstrip('/')}/hunt{self.extension}"
        )

    def _check_local_folder(self) -> None:
        path = self.path.path
        if os.path.isdir(path):
            raise self._is_folder_error()
        folder = os.path.dirname(path) or os.sep
        existing = folder
        while not os.path.lexists(existing):
            existing = os.path.dirname(existing)
        if not os.path.isdir(existing):
            raise self._folder_error(folder, f"{existing} is a file, not a folder")
        try:
            # Permissions, read-only mounts and special file systems all show in one real attempt.
            os.rmdir(tempfile.mkdtemp(prefix=".mtp-check-", dir=existing))
        except OSError as exc:
            raise self._folder_error(folder, f"{type(exc).__name__}: {exc.strerror or exc}") from exc

    def _folder_error(self, folder: str, reason: str) -> MTPConfigError:
        return MTPConfigError(
            f"output_path {self.uri!r}: its folder {folder} cannot be created or written ({reason}). "
            "Choose a folder the worker's user can write, or create it with write permission for that user."
        )

    def _make_folder(self, folder: ObjectStoragePath) -> None:
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise self._folder_error(str(folder), f"{type(exc).__name__}: {exc.strerror or exc}") from exc

    def parts_root(self) -> ObjectStoragePath:
        """``<output>.parts``: every attempt's part files live under it."""
        return self.path.parent / f"{self.path.name}.parts"

    def parts_dir(self, token: str) -> ObjectStoragePath:
        """``<output>.parts/<token>``: the part files of one run of the task."""
        return self.parts_root() / token

    def part(self, token: str, number: int) -> ObjectStoragePath:
        """Part file ``number`` of run ``token``."""
        return self.parts_dir(token) / f"{number:05d}{self.extension}"

    def write_part(self, part: ObjectStoragePath, schema: Schema, rows: Any, *, on_row: Any = None) -> int:
        """Stream ``rows`` into the part file; how many were written.

        :param part: the part's path.
        :param schema: the result's schema.
        :param rows: an iterable of row dicts.
        :param on_row: called with the running count after each row (may raise to stop).
        """
        self._make_folder(part.parent)
        with part.open("wb") as stream:
            writer = open_writer(self.format, stream, schema)
            for row in rows:
                writer.write(row)
                if on_row is not None:
                    on_row(writer.rows)
            writer.close()
        return writer.rows

    def publish(self, parts: Sequence[ObjectStoragePath], schema: Schema, token: str) -> None:
        """Put the parts in place as the output, never leaving a partial file at the final path."""
        self._make_folder(self.path.parent)
        if self.local and os.path.isdir(self.path.path):
            raise self._is_folder_error()  # made while the hunt ran; a move would go inside it
        if not parts:
            parts = [self.part(token, 0)]
            self.write_part(parts[0], schema, ())
        if len(parts) == 1:
            parts[0].move(self.path)
            return
        temporary = self.path.parent / f".{self.path.name}.{token}.tmp"
        try:
            with temporary.open("wb") as target:
                concatenate(self.format, parts, target, schema)
            temporary.move(self.path)
        except BaseException:
            _remove(temporary)
            raise

    def checkpoint(self, token: str) -> ObjectStoragePath:
        """``<output>.parts/<token>/progress.json``: the hunt's progress, saved before a deferral."""
        return self.parts_dir(token) / "progress.json"

    def save_checkpoint(self, token: str, progress: Mapping[str, Any]) -> None:
        """Save a progress record next to the part files (written whole, then moved into place)."""
        path = self.checkpoint(token)
        self._make_folder(path.parent)
        temporary = path.parent / "progress.json.tmp"
        temporary.write_bytes(json.dumps(progress).encode())
        temporary.move(path)

    def load_checkpoint(self, token: str) -> Any:
        """The saved progress record, or ``None`` when there is none."""
        path = self.checkpoint(token)
        try:
            return json.loads(path.read_bytes())
        except (FileNotFoundError, ValueError):
            return None

    def clean(self, token: str) -> None:
        """Remove run ``token``'s part files, and ``<output>.parts`` if nothing else is left in it."""
        directory = self.parts_dir(token)
        try:
            if directory.exists():
                for child in directory.iterdir():
                    _remove(child)
                directory.rmdir()
            root = self.parts_root()
            if root.exists() and not any(root.iterdir()):
                root.rmdir()
        except OSError as exc:  # object stores without directories, permissions: leave them
            log.debug("could not remove part files under %s: %s", directory, exc)


def _remove(path: ObjectStoragePath) -> None:
    try:
        if path.exists():
            path.unlink()
    except OSError as exc:
        log.debug("could not remove %s: %s", path, exc)
