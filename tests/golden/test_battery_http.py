"""The golden battery through the emulator's hunting routes: both back ends give the snapshot's answers."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from airflow_provider_mtp.emulator import DefenderEmulator
from tests.golden.battery import ERRORS, QUERIES, BatteryError, BatteryQuery
from tests.golden.fixture import NOW, build_fixture
from tests.golden.snapshot import compare, load
from tests.integration.conftest import GRAPH, MTP, graph_hunt, legacy_hunt, token


@pytest.fixture(scope="module")
def fixture_emulator() -> Iterator[DefenderEmulator]:
    """An emulator holding only the fixture tenant, clocked where the snapshot was taken."""
    with DefenderEmulator(
        now=NOW.isoformat().replace("+00:00", "Z"), events_per_day=0, incidents=0, quotas=False
    ) as emulator:
        for table, rows in build_fixture().items():
            assert emulator.load_rows(table, rows) == len(rows)
        yield emulator


@pytest.fixture(scope="module")
def bearers(fixture_emulator: DefenderEmulator) -> dict[str, str]:
    return {"graph": token(fixture_emulator, GRAPH), "legacy": token(fixture_emulator, MTP)}


@pytest.mark.parametrize("query", QUERIES, ids=lambda query: query.id)
def test_both_back_ends_answer_like_the_snapshot(
    fixture_emulator: DefenderEmulator, bearers: dict[str, str], query: BatteryQuery
) -> None:
    expected = load()["queries"][query.id]
    graph = graph_hunt(fixture_emulator, bearers["graph"], query.text)
    legacy = legacy_hunt(fixture_emulator, bearers["legacy"], query.text)
    assert graph.status_code == 200, graph.text
    assert legacy.status_code == 200, legacy.text
    assert compare(query, graph.json()["schema"], graph.json()["results"], expected) == []
    assert compare(query, legacy.json()["Schema"], legacy.json()["Results"], expected) == []
    if query.compare != "shape":
        assert graph.json()["results"] == legacy.json()["Results"]


@pytest.mark.parametrize("error", ERRORS, ids=lambda error: error.id)
def test_both_back_ends_refuse_the_must_fail_queries(
    fixture_emulator: DefenderEmulator, bearers: dict[str, str], error: BatteryError
) -> None:
    for response in (
        graph_hunt(fixture_emulator, bearers["graph"], error.text),
        legacy_hunt(fixture_emulator, bearers["legacy"], error.text),
    ):
        assert response.status_code == 400
        assert response.json()["error"]["code"] == "BadRequest"
        assert error.mentions in response.json()["error"]["message"]
