"""The battery's committed answers (``snapshot.json``) and how an answer is compared with them.

Any route to the engine (the engine itself, the Graph or the legacy hunting API) must give these
answers over the fixture tenant. :func:`compare` takes an answer as ``(schema, rows)`` with the
schema in any of the shapes the APIs use, so HTTP tests can call it with what they parsed.

Regenerate after an intended change to the fixture, the engine or duckdb-kql, then review the diff::

    python -m tests.golden.snapshot --update
    GOLDEN_UPDATE=1 python -m pytest tests/golden      # the same, from the test run

A test run with ``GOLDEN_UPDATE=1`` rewrites the snapshot and then fails (:func:`rewrite`), so an
update is never a green run: review the diff, then run again without the variable.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, NoReturn

import pytest

from tests.golden.battery import QUERIES, BatteryQuery
from tests.golden.fixture import NOW, SEED, Tables, build_fixture, fixture_digest, format_timestamp

SNAPSHOT_PATH = Path(__file__).with_name("snapshot.json")
UPDATE_ENV = "GOLDEN_UPDATE"

Schema = list[tuple[str, str]]
Answer = tuple[Schema, list[dict[str, Any]]]
#: Runs one query: KQL in, ``(schema, rows)`` out.
Runner = Callable[[str], Answer]


def update_requested() -> bool:
    """Whether ``GOLDEN_UPDATE=1`` asks the test run to rewrite the snapshot."""
    return os.environ.get(UPDATE_ENV, "") not in ("", "0", "false", "no")


def normalise_schema(schema: Iterable[Any]) -> Schema:
    """``[(name, type)]`` from pairs or from ``{"name", "type"}`` / ``{"Name", "Type"}`` dicts."""
    pairs = []
    for column in schema:
        if isinstance(column, dict):
            pairs.append(
                (str(column.get("name", column.get("Name"))), str(column.get("type", column.get("Type"))))
            )
        else:
            name, kind = column
            pairs.append((str(name), str(kind)))
    return pairs


def canonical_row(row: dict[str, Any], set_columns: Sequence[str] = ()) -> str:
    """One row as comparable text; ``set_columns`` (``make_set`` arrays) sorted, being sets."""
    value = dict(row)
    for column in set_columns:
        if isinstance(value.get(column), list):
            value[column] = sorted(value[column], key=lambda item: json.dumps(item, sort_keys=True))
    return json.dumps(value, sort_keys=True, ensure_ascii=False)


def entry(query: BatteryQuery, schema: Iterable[Any], rows: list[dict[str, Any]]) -> dict[str, Any]:
    """What the snapshot records for one answer. ``take`` answers keep only their shape."""
    record: dict[str, Any] = {
        "compare": query.compare,
        "schema": [list(pair) for pair in normalise_schema(schema)],
        "row_count": len(rows),
    }
    if query.compare != "shape":
        record["rows"] = rows
    return record


def generate(run: Runner, tables: Tables | None = None) -> dict[str, Any]:
    """The whole snapshot: the fixture's identity and every query's answer.

    :param run: runs one query over the fixture tenant.
    :param tables: the fixture rows the runner serves (default: :func:`build_fixture`).
    """
    tables = build_fixture() if tables is None else tables
    queries = {}
    for query in QUERIES:
        schema, rows = run(query.text)
        queries[query.id] = entry(query, schema, rows)
    return {"fixture": fixture_identity(tables), "queries": queries}


def fixture_identity(tables: Tables) -> dict[str, Any]:
    """Seed, clock and digest of the fixture: a snapshot is only valid for the data it came from."""
    return {"seed": SEED, "now": format_timestamp(NOW), "sha256": fixture_digest(tables)}


def load(path: Path = SNAPSHOT_PATH) -> dict[str, Any]:
    """The committed snapshot."""
    data: dict[str, Any] = json.loads(path.read_text("utf-8"))
    return data


def write(snapshot: dict[str, Any], path: Path = SNAPSHOT_PATH) -> None:
    """Write the snapshot, one row per line, so a change reads as a small diff."""
    path.write_text(render(snapshot), "utf-8")


def rewrite(snapshot: dict[str, Any], path: Path = SNAPSHOT_PATH) -> NoReturn:
    """Write the snapshot, then fail the test run that asked for it with ``GOLDEN_UPDATE=1``.

    A rewritten snapshot matches by construction, so a run that rewrote it proves nothing: it
    fails, and the next run without the variable checks the answers against the new file.

    :param snapshot: the answers just generated.
    :param path: where the snapshot lives.
    """
    write(snapshot, path)
    pytest.fail(
        f"{UPDATE_ENV}=1 rewrote {path} ({len(snapshot['queries'])} queries), so this run checked "
        f"nothing. Review the diff (git diff -- {path}), then run the tests again without "
        f"{UPDATE_ENV}.",
        pytrace=False,
    )


def _dumps(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False)


def render(snapshot: dict[str, Any]) -> str:
    """The snapshot as JSON text: the fixture on one line, then per query its header and rows."""
    entries = []
    for query_id, record in sorted(snapshot["queries"].items()):
        fields = [f'   "{key}": {_dumps(record[key])}' for key in sorted(record) if key != "rows"]
        if "rows" in record:
            rows = ",\n".join(f"    {_dumps(row)}" for row in record["rows"])
            fields.append(f'   "rows": [\n{rows}\n   ]' if rows else '   "rows": []')
        entries.append(f'  "{query_id}": {{\n' + ",\n".join(fields) + "\n  }")
    body = ",\n".join(entries)
    return f'{{\n "fixture": {_dumps(snapshot["fixture"])},\n "queries": {{\n{body}\n }}\n}}\n'


def _row_differences(expected: list[str], actual: list[str]) -> list[str]:
    missing = Counter(expected) - Counter(actual)
    extra = Counter(actual) - Counter(expected)
    lines = [f"  missing: {row}" for row in list(missing.elements())[:5]]
    lines += [f"  unexpected: {row}" for row in list(extra.elements())[:5]]
    return lines


def compare(
    query: BatteryQuery, schema: Iterable[Any], rows: list[dict[str, Any]], expected: dict[str, Any]
) -> list[str]:
    """Every way ``(schema, rows)`` differs from the snapshot's ``expected`` answer; empty if none.

    :param query: the battery query answered.
    :param schema: the answer's columns, as pairs or API dicts.
    :param rows: the answer's rows (JSON-ready dicts).
    :param expected: ``snapshot["queries"][query.id]``.
    """
    problems = []
    actual_schema = [list(pair) for pair in normalise_schema(schema)]
    if actual_schema != expected["schema"]:
        problems.append(f"{query.id}: schema {actual_schema} != {expected['schema']}")
    if len(rows) != expected["row_count"]:
        problems.append(f"{query.id}: {len(rows)} rows != {expected['row_count']}")
    if query.compare == "shape":
        return problems
    want = [canonical_row(row, query.set_columns) for row in expected["rows"]]
    got = [canonical_row(row, query.set_columns) for row in rows]
    if query.compare == "ordered" and want != got and Counter(want) == Counter(got):
        problems.append(f"{query.id}: same rows, different order")
    elif Counter(want) != Counter(got):
        problems.append(f"{query.id}: rows differ")
        problems.extend(_row_differences(want, got))
    return problems


def engine_runner(engine: Any) -> Runner:
    """A :data:`Runner` over a ``HuntingEngine``."""

    def run(kql: str) -> Answer:
        output = engine.run(kql)
        return output.schema, output.rows

    return run


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m tests.golden.snapshot [--update]``: check the snapshot, or rewrite it."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--update", action="store_true", help=f"rewrite {SNAPSHOT_PATH.name}")
    args = parser.parse_args(argv)

    from tests.golden.fixture import fixture_engine

    tables = build_fixture()
    run = engine_runner(fixture_engine())
    if args.update:
        snapshot = generate(run, tables)
        write(snapshot)
        print(f"wrote {SNAPSHOT_PATH} ({len(snapshot['queries'])} queries)")
        return 0
    committed = load()
    problems = (
        [] if committed["fixture"] == fixture_identity(tables) else ["the fixture is not the snapshot's"]
    )
    for query in QUERIES:
        schema, rows = run(query.text)
        problems += compare(query, schema, rows, committed["queries"][query.id])
    print("\n".join(problems) or f"all {len(QUERIES)} answers match {SNAPSHOT_PATH.name}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
