"""Hunting under a quota storm: consecutive windows, each hunted once, exactly, whatever is thrown.

``RunHuntingQueryOperator`` hunts four consecutive 6-hour windows (one ``dag.test()`` each, Airflow
retries on) on both back ends while most hunting calls are throttled: 429 with ``Retry-After`` in
seconds and as an HTTP date, the CPU quota's "run queries again in" message, a 429 with neither,
a reply cut off mid-stream, and in one window a burst longer than the transport's attempts, so
the task fails once and Airflow retries it. Each window's file must hold exactly the rows of the
same hunt asked without faults; no part file is left anywhere; and each window costs exactly one
request per fault plus the one that succeeded (printed).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_mtp.auth import clear_token_cache
from airflow_provider_mtp.emulator import DefenderEmulator
from airflow_provider_mtp.hooks.mtp import MTPHook
from airflow_provider_mtp.windows import Window
from tests.conftest import TEST_NOW
from tests.reliability.week import fast_retries, faults_fired, http_date, load_module, use_back_end

pytestmark = pytest.mark.slow

ROUTE = {"graph": "/v1.0/security/runHuntingQuery", "legacy": "/api/advancedhunting/run"}
FIRST = datetime(2026, 11, 19, 6, tzinfo=UTC)
WINDOWS = 4
INTERVAL = timedelta(hours=6)


@pytest.fixture(scope="module")
def storm_emulator() -> Iterator[DefenderEmulator]:
    """Two days of events, 1,500 a day per table; the emulator's own quotas off (the storm is ours)."""
    with DefenderEmulator(
        seed=31, now=TEST_NOW, incidents=0, days=2, events_per_day=1500, quotas=False
    ) as emulator:
        yield emulator


@pytest.fixture
def emulator(
    storm_emulator: DefenderEmulator, airflow_db: None, monkeypatch: pytest.MonkeyPatch
) -> DefenderEmulator:
    storm_emulator.reset()
    clear_token_cache()
    fast_retries(monkeypatch)
    return storm_emulator


def truth(query: str, window: Window, api: str) -> list[str]:
    """The window's ``ReportId`` values from the same hunt without faults, through the hook.

    The window is in the KQL (``let`` bindings); Graph is also given it as ``Timespan``, as the
    operator does (the legacy API takes none).
    """
    start, end = (when.strftime("%Y-%m-%dT%H:%M:%S.%f") + "0Z" for when in (window.start, window.end))
    bound = f"let WindowStart = datetime({start});\nlet WindowEnd = datetime({end});\n{query}"
    hook = MTPHook()
    try:
        timespan = window.timespan if api == "graph" else None
        with hook.run_hunting_query(bound, timespan=timespan) as result:
            return sorted(str(row["ReportId"]) for row in result.rows)
    finally:
        hook.session.close()


def storm(api: str, *, burst: bool) -> list[dict[str, Any]]:
    """The faults one window meets, in order, before its hunt gets through."""
    route = ROUTE[api]
    # Without Retry-After a legacy 429 says "maximum allowed 45 per 00:01:00" (a minute's wait).
    quota = (
        "Too many requests: You can run queries again in 00:00:01."
        if api == "graph"
        else "Too many requests."
    )
    specs: list[dict[str, Any]] = []
    if burst:
        specs.append({"path": route, "status": 429, "retry_after": 0, "count": 6})
    specs += [
        {"path": route, "status": 429, "retry_after": 0},
        {"path": route, "status": 429, "retry_after": http_date(0)},
        {"path": route, "status": 429, "message": quota},
        {"path": route, "kind": "drop"},
        {"path": route, "status": 429, "retry_after": 1},
    ]
    return specs


def hunting_requests(emulator: DefenderEmulator, api: str) -> int:
    counts = emulator.stats()["requests"].get(f"POST {ROUTE[api]}", {})
    return sum(counts.values())


@pytest.mark.parametrize("api", ["graph", "legacy"])
def test_every_window_is_hunted_once_and_exactly_under_a_quota_storm(
    emulator: DefenderEmulator, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, api: str
) -> None:
    use_back_end(emulator, monkeypatch, api)
    module = load_module("reliability_hunting")
    windows = [Window(FIRST + k * INTERVAL, FIRST + (k + 1) * INTERVAL) for k in range(WINDOWS)]
    expected = {window: truth(module.QUERY, window, api) for window in windows}
    assert all(len(ids) > 100 for ids in expected.values())
    folder = tmp_path / api

    for index, window in enumerate(windows):
        specs = storm(api, burst=index == 1)
        emulator.clear_faults()
        emulator.inject_faults(*specs)
        before = hunting_requests(emulator, api)
        run = module.dag.test(logical_date=window.end, run_after=window.end, run_conf={"folder": str(folder)})
        requests = hunting_requests(emulator, api) - before
        fired = faults_fired(specs, emulator.pending_faults())
        ti = run.get_task_instance("hunt")
        manifest = ti.xcom_pull(task_ids="hunt")
        print(
            f"hunting {api} window {window.start:%Y-%m-%dT%H:%M}: rows {manifest and manifest['rows']} "
            f"(truth {len(expected[window])}), {requests} requests ({fired} throttled or cut off), "
            f"{ti.try_number} task tries"
        )

        assert str(ti.state) == "success"
        assert ti.try_number == (2 if index == 1 else 1)
        assert fired == sum(spec.get("count", 1) for spec in specs), "every fault of the storm was met"
        assert requests == fired + 1, "one request per fault, then the one that got through"
        path = Path(manifest["path"])
        rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
        assert sorted(str(row["ReportId"]) for row in rows) == expected[window]
        assert manifest["rows"] == len(expected[window])
        assert Window.from_dict(manifest["window"]) == window

    files = sorted(path.name for path in folder.rglob("*"))
    assert files == [f"{window.start:%Y%m%dT%H%M}.jsonl" for window in windows], "a part file was left"
