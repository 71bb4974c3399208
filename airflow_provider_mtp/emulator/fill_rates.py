"""How many documented columns of each hunting table the synthetic tenant fills, and why the rest are empty.

A column is *filled* when at least one row has a value that is not null, not the empty string and
not an empty JSON array or object. The columns left empty on purpose, each with its reason, are in
:data:`~airflow_provider_mtp.emulator.tenant_data.empty_columns.EMPTY_COLUMNS`.

    python -m airflow_provider_mtp.emulator.fill_rates [--seed 7] [--days 30] [--events-per-day 1000]

prints the table in Markdown (measured on the tenant those options build, by default the emulator's).
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

import duckdb

from airflow_provider_mtp.emulator.schema import table_schemas
from airflow_provider_mtp.emulator.tenant_data.empty_columns import EMPTY_COLUMNS


@dataclass(frozen=True)
class TableFill:
    """One hunting table's documented columns, split into filled and empty."""

    table: str
    filled: tuple[str, ...]
    empty: tuple[str, ...]

    @property
    def documented(self) -> int:
        return len(self.filled) + len(self.empty)


def measure(con: duckdb.DuckDBPyConnection) -> list[TableFill]:
    """The fill of every hunting table in schema ``store``, in documented column order.

    :param con: a connection holding a built tenant (:func:`~airflow_provider_mtp.emulator.tenant.build_tenant`).
    """
    fills = []
    for table, columns in table_schemas().items():
        names = [name for name, _ in columns]
        counts = ", ".join(
            f"count(*) FILTER (WHERE \"{name}\" IS NOT NULL AND \"{name}\"::VARCHAR NOT IN ('', '[]', '{{}}'))"
            for name in names
        )
        row = con.execute(f'SELECT {counts} FROM store."{table}"').fetchone()
        assert row is not None
        fills.append(
            TableFill(
                table=table,
                filled=tuple(name for name, count in zip(names, row, strict=True) if count),
                empty=tuple(name for name, count in zip(names, row, strict=True) if not count),
            )
        )
    return fills


def render(fills: list[TableFill], reasons: Mapping[str, Mapping[str, str]] = EMPTY_COLUMNS) -> str:
    """The fill-rate table and, per table, each empty column with the reason it is empty."""
    lines = [
        "| hunting table | documented columns | filled | left empty |",
        "|---|---:|---:|---:|",
    ]
    lines += [f"| {f.table} | {f.documented} | {len(f.filled)} | {len(f.empty)} |" for f in fills]
    for fill in fills:
        if not fill.empty:
            continue
        lines += ["", f"**{fill.table}**, empty on purpose:", ""]
        known = reasons.get(fill.table, {})
        lines += [f"- `{column}`: {known.get(column, 'NO REASON GIVEN')}" for column in fill.empty]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    import duckdb_kql

    from airflow_provider_mtp.emulator.tenant import build_tenant

    parser = argparse.ArgumentParser(
        prog="python -m airflow_provider_mtp.emulator.fill_rates", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--now", default="2026-11-20T12:00:00+00:00", help="data time, ISO 8601")
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--events-per-day", type=int, default=1000)
    parser.add_argument("--incidents", type=int, default=500)
    args = parser.parse_args(argv)
    con = duckdb_kql.connect()
    build_tenant(
        con,
        tenant_id="00000000-0000-0000-0000-000000000000",
        seed=args.seed,
        now=datetime.fromisoformat(args.now).astimezone(UTC),
        days=args.days,
        events_per_day=args.events_per_day,
        incidents=args.incidents,
    )
    print(render(measure(con)), end="")


if __name__ == "__main__":
    main()
