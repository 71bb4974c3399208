"""The advanced-hunting table schemas, shipped with the package (a copy of Microsoft's reference)."""

from __future__ import annotations

import json
from functools import cache
from importlib import resources

#: Kusto column type -> DuckDB column type, as duckdb-kql expects them.
DUCKDB_TYPES = {
    "datetime": "TIMESTAMPTZ",
    "string": "VARCHAR",
    "long": "BIGINT",
    "int": "INTEGER",
    "bool": "BOOLEAN",
    "boolean": "BOOLEAN",
    "real": "DOUBLE",
    "double": "DOUBLE",
    "dynamic": "JSON",
    "guid": "VARCHAR",
    "timespan": "INTERVAL",
}


@cache
def table_schemas() -> dict[str, list[tuple[str, str]]]:
    """Every hunting table with its ``(column, kusto_type)`` pairs, in documented order."""
    raw = json.loads(resources.files(__package__).joinpath("data/hunting-schema.json").read_text("utf-8"))
    return {
        table: [(column["name"], column["type"]) for column in columns]
        for table, columns in raw.items()
        if not table.startswith("_")
    }
