r"""Hunting results as files: row writers (JSON Lines, CSV, Parquet) and their safe placement.

Rows stream from the service into a writer, one at a time; nothing holds a whole result. The
writers (in :mod:`airflow_provider_mtp.row_writers`) gather their output and write it in pieces
of about 1 MiB, never one storage call per row.

Formats, chosen by the output's extension (or named explicitly):

* **JSON Lines** (``.jsonl``, ``.ndjson``, ``.json``): one JSON object per row, values exactly as
  the service sent them (datetimes as ISO 8601 text with all 7 fractional digits, dynamic values
  as JSON). Each line is the row's JSON **text as the service sent it**, copied, not decoded and
  encoded again, then ``\n``. Defender (and the emulator) send compact JSON with UTF-8 text, so
  a line is byte for byte ``json.dumps(row, ensure_ascii=False, separators=(",", ":"))``: it
  differs from plain ``json.dumps(row)`` only in having no space after ``,`` and ``:`` and
  non-ASCII text as UTF-8 rather than ``\uXXXX``; keys keep the service's order. Whatever else
  a service's text holds is kept as sent too: spacing inside a one-line row, its escapes
  (``\u00e9``, ``\/``), its number spelling (``1.50``, ``1E3``; integers of any size stay
  exact), a repeated key. A row whose text holds a raw line break (a service that
  pretty-prints) is encoded again instead, as the compact ``json.dumps`` above, so a line never
  holds a raw ``\r`` or ``\n``. As with ``json.dumps(ensure_ascii=False)``, U+2028 and U+2029 in
  text stay raw (JSON Lines readers split on ``\n`` only; Python's ``str.splitlines`` would split
  there too: read with ``for line in file``). Rows given in hand (not from a reply) are written
  as that compact ``json.dumps``. Checked by ``tests/integration/test_hunting_jsonl_fast_path.py``.
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

import io
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, BinaryIO

from airflow_provider_mtp.errors import MTPConfigError

# The writers live in row_writers; their names stay importable from here, where they were.
from airflow_provider_mtp.row_writers import (
    ARROW_TYPES as ARROW_TYPES,
)
from airflow_provider_mtp.row_writers import (
    PARQUET_BATCH_ROWS,
    STORAGE_BUFFER_BYTES,
    CsvWriter,
    _pyarrow,
    arrow_schema,
    open_writer,
)
from airflow_provider_mtp.row_writers import (
    JsonLinesWriter as JsonLinesWriter,
)
from airflow_provider_mtp.row_writers import (
    ParquetWriter as ParquetWriter,
)
from airflow_provider_mtp.row_writers import (
    RowWriter as RowWriter,
)

if TYPE_CHECKING:
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

        The file gets one ``write()`` per :data:`STORAGE_BUFFER_BYTES`, never one per row.

        :param part: the part's path.
        :param schema: the result's schema.
        :param rows: an iterable of row dicts, or of ``(row, text)`` pairs
            (:attr:`~airflow_provider_mtp.api.models.HuntingResult.rows_with_text`), where
            ``text`` is the row's JSON as the service sent it (or ``None``).
        :param on_row: called with the running count after each row (may raise to stop).
        """
        self._make_folder(part.parent)
        with part.open("wb") as storage:
            stream = io.BufferedWriter(_Unbuffered(storage), STORAGE_BUFFER_BYTES)
            writer = open_writer(self.format, stream, schema)
            write = writer.write
            for item in rows:
                if type(item) is tuple:
                    write(*item)
                else:
                    write(item)
                if on_row is not None:
                    on_row(writer.rows)
            writer.close()
            stream.flush()
            stream.detach()
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


class _Unbuffered(io.RawIOBase):
    """A storage file as the raw layer under an ``io.BufferedWriter``: the buffer gathers small
    writes (a CSV line, a Parquet page header) into one call to the storage.

    :param stream: the open storage file; flushing or detaching leaves it open.
    """

    def __init__(self, stream: BinaryIO) -> None:
        super().__init__()
        self._stream = stream
        self._position = 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        written = len(data)
        self._stream.write(bytes(data))
        self._position += written
        return written

    def tell(self) -> int:
        return self._position


def _remove(path: ObjectStoragePath) -> None:
    try:
        if path.exists():
            path.unlink()
    except OSError as exc:
        log.debug("could not remove %s: %s", path, exc)
