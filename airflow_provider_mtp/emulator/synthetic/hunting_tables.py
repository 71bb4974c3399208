"""The hunting tables in DuckDB: create them empty, and append JSON-like rows (``insert_rows``)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import duckdb

from airflow_provider_mtp.emulator.schema import DUCKDB_TYPES, table_schemas


def create_tables(con: duckdb.DuckDBPyConnection) -> None:
    """Create every hunting table, empty, in schema ``store``, columns in documented order.

    :param con: the DuckDB connection (from ``duckdb_kql.connect()``).
    """
    con.execute("CREATE SCHEMA IF NOT EXISTS store")
    for table, columns in table_schemas().items():
        body = ", ".join(f'"{name}" {DUCKDB_TYPES[kusto]}' for name, kusto in columns)
        con.execute(f'CREATE TABLE IF NOT EXISTS store."{table}" ({body})')


def insert_rows(con: duckdb.DuckDBPyConnection, table: str, rows: Sequence[Mapping[str, Any]]) -> int:
    """Append JSON-like rows to a hunting table and return how many were added.

    Missing columns are NULL. Datetime columns take ISO 8601 strings (``Z`` and up to 7 fractional
    digits) or datetimes (naive ones are UTC). Dicts and lists are stored as JSON text; a string for
    a ``dynamic`` column is kept if it is JSON, else stored as a JSON string.

    :param con: the DuckDB connection holding schema ``store``.
    :param table: the hunting table, spelt as documented (``DeviceProcessEvents``).
    :param rows: one mapping per row, column name to value.
    :raises ValueError: unknown table or column, or a value the column's type cannot take.
    """
    schemas = table_schemas()
    if table not in schemas:
        raise ValueError(f"unknown table '{table}'; hunting tables are: {', '.join(sorted(schemas))}")
    types = dict(schemas[table])
    rows = list(rows)
    if not rows:
        return 0
    # Insert only the columns some row names; DuckDB fills the rest with NULL.
    used = _used_columns(table, types, rows)
    keys = [f"c{position}" for position in range(len(used))]
    payload = [
        {
            key: _cell(table, name, types[name], row.get(name), index)
            for key, name in zip(keys, used, strict=True)
        }
        for index, row in enumerate(rows)
    ]
    # One JSON document of text cells, cast per column in SQL: far faster than VALUES or
    # executemany, which DuckDB binds statement by statement.
    structure = json.dumps([{key: "VARCHAR" for key in keys}])
    casts = ", ".join(
        f"CAST(r.{key} AS {DUCKDB_TYPES[types[name]]})" for key, name in zip(keys, used, strict=True)
    )
    names = ", ".join(f'"{name}"' for name in used)
    try:
        con.execute(
            f'INSERT INTO store."{table}" ({names}) SELECT {casts} FROM (SELECT unnest(from_json(?::JSON, ?)) AS r)',
            [json.dumps(payload), structure],
        )
    except duckdb.Error as exc:
        raise ValueError(f"cannot insert into {table}: {exc}") from exc
    return len(rows)


def _used_columns(table: str, types: Mapping[str, str], rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """Columns named by any row, in documented order; an unknown name is an error."""
    named: set[str] = set()
    for index, row in enumerate(rows):
        if not isinstance(row, Mapping):
            raise ValueError(f"row {index} for table {table} is not an object")
        named.update(row)
    unknown = sorted(named - set(types))
    if unknown:
        noun = "column" if len(unknown) == 1 else "columns"
        raise ValueError(f"unknown {noun} {', '.join(map(repr, unknown))} in table {table}")
    return [name for name in types if name in named] or [next(iter(types))]


def _cell(table: str, column: str, kusto: str, value: Any, index: int) -> str | None:
    """One value as the text its column's CAST reads; the error names the row and column."""
    if value is None:
        return None
    try:
        return _convert(kusto, value)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"row {index}, {table}.{column} ({kusto}): bad value {value!r}: {exc}") from exc


def _convert(kusto: str, value: Any) -> str:
    if kusto == "datetime":
        return parse_datetime(value).isoformat()
    if kusto == "dynamic":
        if isinstance(value, str):
            try:
                json.loads(value)
            except ValueError:
                return json.dumps(value)
            return value
        return json.dumps(value)
    if kusto in ("bool", "boolean"):
        return "true" if _parse_bool(value) else "false"
    if kusto in ("long", "int"):
        if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
            raise ValueError("not an integer")
        return str(int(value))
    if kusto in ("real", "double"):
        return repr(float(value))
    if isinstance(value, dict | list | bool):
        return json.dumps(value)
    return value if isinstance(value, str) else str(value)


def parse_datetime(value: Any) -> datetime:
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, str):
        parsed = datetime.fromisoformat(value.strip())
    else:
        raise TypeError("expected an ISO 8601 string or a datetime")
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _parse_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in ("true", "false", "1", "0"):
        return value.strip().lower() in ("true", "1")
    raise ValueError("expected a boolean")
