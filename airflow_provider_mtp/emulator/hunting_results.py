"""Hunting results: DuckDB values as JSON-ready API values, column types, statistics and the output record."""

from __future__ import annotations

import json
import math
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from duckdb_kql.types import kusto_type

#: Kusto scalar type -> the ``Type`` name the hunting APIs put in ``schema``.
API_TYPE_NAMES: dict[str, str] = {
    "datetime": "DateTime",
    "string": "String",
    "long": "Int64",
    "int": "Int32",
    "bool": "Boolean",
    "real": "Double",
    "decimal": "Double",
    "dynamic": "Object",
    "guid": "Guid",
    "timespan": "TimeSpan",
}


@dataclass(frozen=True, kw_only=True)
class HuntingOutput:
    """One hunting answer, ready for either API's JSON.

    :param schema: ``(column, API type name)`` pairs in result order.
    :param rows: one dict per row, JSON-ready.
    :param stats: the legacy API's ``Stats`` block.
    """

    schema: list[tuple[str, str]]
    rows: list[dict[str, Any]]
    stats: dict[str, Any] = field(default_factory=dict)


Converter = Callable[[Any], Any]


def format_datetime(value: datetime | date) -> str:
    """``2024-03-26T09:39:50.7688640Z``: UTC, always seven fractional digits, as Defender writes them.

    :param value: aware (any zone), naive (read as UTC) or a date (midnight UTC).
    """
    if not isinstance(value, datetime):
        value = datetime(value.year, value.month, value.day, tzinfo=UTC)
    elif value.tzinfo is not None and value.utcoffset() != timedelta(0):
        value = value.astimezone(UTC)
    return (
        f"{value.year:04d}-{value.month:02d}-{value.day:02d}T{value.hour:02d}:{value.minute:02d}:"
        f"{value.second:02d}.{value.microsecond:06d}0Z"
    )


def format_timespan(value: timedelta) -> str:
    """.NET's ``[-][d.]hh:mm:ss[.fffffff]``, the way Kusto writes a timespan.

    :param value: the span.
    """
    sign = "-" if value < timedelta(0) else ""
    value = abs(value)
    hours, rest = divmod(value.seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    days = f"{value.days}." if value.days else ""
    fraction = f".{value.microseconds:06d}0" if value.microseconds else ""
    return f"{sign}{days}{hours:02d}:{minutes:02d}:{seconds:02d}{fraction}"


def _real(value: float) -> float | str:
    # JSON has no NaN or Infinity; Kusto writes them as these strings.
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return float(value)


#: How DuckDB's ``to_json`` writes a datetime inside a dynamic value (``make_set(Timestamp)``).
_JSON_DATETIME = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d{1,6})?(?:\+00)?")


def _json_datetimes(value: Any) -> Any:
    """``value`` with DuckDB-written datetimes rewritten the way Kusto writes them in dynamics."""
    if isinstance(value, str):
        if _JSON_DATETIME.fullmatch(value):
            return format_datetime(datetime.fromisoformat(value.removesuffix("+00")))
        return value
    if isinstance(value, list):
        return [_json_datetimes(item) for item in value]
    if isinstance(value, dict):
        return {key: _json_datetimes(item) for key, item in value.items()}
    return value


def _json_text(value: Any) -> Any:
    if not isinstance(value, str):
        return jsonable(value)
    try:
        # JSON has no NaN or Infinity: keep the words as strings, as Kusto writes them.
        parsed = json.loads(value, parse_constant=str)
    except ValueError:
        return value
    return _json_datetimes(parsed) if _JSON_DATETIME.search(value) else parsed


def jsonable(value: Any) -> Any:
    """Any value DuckDB hands back, as something ``json.dumps`` writes the way Kusto would.

    :param value: a scalar, list or dict from a DuckDB row.
    """
    if value is None or isinstance(value, str | bool | int):
        return value
    if isinstance(value, float):
        return _real(value)
    if isinstance(value, datetime | date):
        return format_datetime(value)
    if isinstance(value, timedelta):
        return format_timespan(value)
    if isinstance(value, Decimal):
        return _real(float(value))
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).decode("utf-8", "replace")
    if isinstance(value, dict):
        return {str(key): jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(item) for item in value]
    return str(value)


def _list_of(element: Converter | None) -> Converter:
    convert = element or jsonable
    return lambda value: [None if item is None else convert(item) for item in value]


def converter(duckdb_type: str) -> Converter | None:
    """How one result column's values become JSON-ready, or None when they already are.

    :param duckdb_type: the column's DuckDB type, e.g. ``TIMESTAMP WITH TIME ZONE``, ``JSON[]``.
    """
    name = duckdb_type.upper()
    if name.endswith("[]"):
        return _list_of(converter(name[:-2]))
    if name == "JSON":
        return _json_text
    kind = kusto_type(name)
    if kind == "datetime":
        return format_datetime
    if kind in ("real", "decimal"):
        return lambda value: _real(float(value))
    if kind in ("string", "long", "int", "bool") and name not in ("BLOB", "BIT"):
        return None
    return jsonable


def api_type(duckdb_type: str) -> str:
    """The hunting API's ``Type`` name for a DuckDB column type.

    :param duckdb_type: e.g. ``BIGINT`` -> ``Int64``, ``JSON`` -> ``Object``.
    """
    return API_TYPE_NAMES.get(kusto_type(duckdb_type), "String")


def convert_rows(names: list[str], types: list[str], raw: list[tuple[Any, ...]]) -> list[dict[str, Any]]:
    converters = [(index, convert) for index, t in enumerate(types) if (convert := converter(t)) is not None]
    if not converters:
        return [dict(zip(names, row, strict=True)) for row in raw]
    rows = []
    for row in raw:
        values = list(row)
        for index, convert in converters:
            if values[index] is not None:
                values[index] = convert(values[index])
        rows.append(dict(zip(names, values, strict=True)))
    return rows


def result_bytes(rows: list[dict[str, Any]]) -> int:
    return len(json.dumps(rows, ensure_ascii=False, separators=(",", ":")).encode("utf-8"))


def _cpu_time(seconds: float) -> str:
    return format_timespan(timedelta(seconds=seconds)) if seconds else "00:00:00"


def query_stats(elapsed: float, cpu: float, row_count: int, size: int) -> dict[str, Any]:
    """The legacy ``Stats`` block. Only time, CPU and the dataset numbers are measured."""
    zero = {"hits": 0, "misses": 0, "total": 0}
    return {
        "ExecutionTime": round(elapsed, 7),
        "resource_usage": {
            "cache": {"memory": dict(zero), "disk": dict(zero)},
            "cpu": {"user": _cpu_time(cpu), "kernel": "00:00:00", "total cpu": _cpu_time(cpu)},
            "memory": {"peak_per_node": size},
        },
        "dataset_statistics": [{"table_row_count": row_count, "table_size": size}],
    }


@dataclass(frozen=True, kw_only=True)
class Fetched:
    """What DuckDB answered: column names, the query's types, the types as fetched, the rows."""

    names: list[str]
    types: list[str]
    fetched_types: list[str]
    rows: list[tuple[Any, ...]]
