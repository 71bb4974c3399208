"""The Kusto documentation's own examples, run by the emulator and compared with the documented rows.

Each example runs on the hunting engine and through both hunting APIs over TLS. The expected
rows are the documentation's (tests/golden/kusto_docs.py), never the engine's. Documented KQL the
emulator does not run must be refused with a 400 that says so and names the construct.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from airflow_provider_mtp.emulator import DefenderEmulator
from airflow_provider_mtp.emulator.hunting import HuntingEngine, HuntingError
from tests.golden.fixture import NOW, fixture_engine
from tests.golden.kusto_docs import EXAMPLES, DocExample
from tests.integration.conftest import GRAPH, MTP, graph_hunt, legacy_hunt, token

RUNS = [example for example in EXAMPLES if example.refused is None]
REFUSED = [example for example in EXAMPLES if example.refused is not None]


@pytest.fixture(scope="module")
def engine() -> HuntingEngine:
    return fixture_engine()


@pytest.fixture(scope="module")
def docs_emulator() -> Iterator[DefenderEmulator]:
    with DefenderEmulator(
        now=NOW.isoformat().replace("+00:00", "Z"), events_per_day=0, incidents=0, quotas=False
    ) as emulator:
        yield emulator


@pytest.fixture(scope="module")
def bearers(docs_emulator: DefenderEmulator) -> dict[str, str]:
    return {"graph": token(docs_emulator, GRAPH), "legacy": token(docs_emulator, MTP)}


def _numbers(value: Any) -> Any:
    # 118 and 118.0 are the same JSON number; the documentation's tables write either.
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, list):
        return [_numbers(item) for item in value]
    if isinstance(value, dict):
        return {key: _numbers(item) for key, item in value.items()}
    return value


def _canonical(value: Any, as_set: bool) -> str:
    value = _numbers(value)
    if as_set and isinstance(value, list):
        value = sorted(value, key=lambda item: json.dumps(item, sort_keys=True))
    return json.dumps(value, sort_keys=True)


def _rows(example: DocExample, columns: list[str], rows: list[dict[str, Any]]) -> list[tuple[str, ...]]:
    return [
        tuple(_canonical(row[column], column in example.set_columns) for column in columns) for row in rows
    ]


def check(example: DocExample, columns: list[str], rows: list[dict[str, Any]]) -> None:
    """The answer has the documented columns, in order, and the documented rows."""
    assert columns == example.columns
    got = _rows(example, columns, rows)
    expected = [
        tuple(
            _canonical(value, column in example.set_columns)
            for column, value in zip(columns, row, strict=True)
        )
        for row in example.rows
    ]
    if example.ordered:
        assert got == expected
    else:
        assert Counter(got) == Counter(expected)


@pytest.mark.parametrize("example", RUNS, ids=lambda example: example.id)
def test_engine_gives_the_documented_rows(engine: HuntingEngine, example: DocExample) -> None:
    output = engine.run(example.kql)
    check(example, [name for name, _ in output.schema], output.rows)


@pytest.mark.parametrize("example", REFUSED, ids=lambda example: example.id)
def test_engine_refuses_what_it_does_not_run(engine: HuntingEngine, example: DocExample) -> None:
    with pytest.raises(HuntingError) as caught:
        engine.run(example.kql)
    assert (caught.value.status, caught.value.code) == (400, "BadRequest")
    assert example.refused is not None
    assert example.refused in caught.value.message


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda example: example.id)
def test_both_apis_answer_like_the_documentation(
    docs_emulator: DefenderEmulator, bearers: dict[str, str], example: DocExample
) -> None:
    graph = graph_hunt(docs_emulator, bearers["graph"], example.kql)
    legacy = legacy_hunt(docs_emulator, bearers["legacy"], example.kql)
    if example.refused is not None:
        assert (graph.status_code, legacy.status_code) == (400, 400)
        # Each API's own error shape, the same text.
        assert graph.json()["error"]["code"] == legacy.json()["error"]["code"] == "BadRequest"
        assert example.refused in graph.json()["error"]["message"]
        assert graph.json()["error"]["message"] == legacy.json()["error"]["message"]
        return
    assert graph.status_code == 200, graph.text
    assert legacy.status_code == 200, legacy.text
    check(example, [column["name"] for column in graph.json()["schema"]], graph.json()["results"])
    check(example, [column["Name"] for column in legacy.json()["Schema"]], legacy.json()["Results"])


def test_the_battery_covers_every_construct_of_the_issue() -> None:
    covered = {example.construct for example in EXAMPLES}
    assert {"project-reorder", "make-series", "evaluate bag_unpack", "makelist()", "makeset()"} <= covered
    assert {
        "parsejson()",
        "extract_json()",
        "extractjson()",
        "typeof() argument",
        "between",
        "hash()",
    } <= covered
    assert "tabular let function" in covered
