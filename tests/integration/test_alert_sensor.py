"""AlertSensor against the emulator: adjacent windows in every mode on both back ends, and the edges.

The same clock and stamps as ``test_incident_sensor.py`` (shared from it, not copied): hourly runs
at T1 and T2 with the default 5-minute lag, so the run at T matches alerts last updated in
[T - 1h - 5m, T - 5m); alerts are put through the emulator's ``/_emulator/alerts`` route with
explicit ``lastUpdateDateTime`` values on both sides of the boundary between the runs, exactly on
it and one tick (100 ns) past it, in June 2026 (closed windows, before every seeded alert). On the
legacy back end the alerts come from the incidents that embed them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from airflow.triggers.base import TriggerEvent

from airflow_provider_mtp.common.ticks import timestamp_ticks
from airflow_provider_mtp.emulator import DefenderEmulator
from airflow_provider_mtp.enums import DetectionSource
from airflow_provider_mtp.triggers.alerts import AlertTrigger
from tests.integration import test_incident_sensor as incident_tests
from tests.integration.test_incident_sensor import (
    STAMPS,
    T1,
    T2,
    incident_window,
    load_dag,
    states,
    xcom,
)

#: The incident tests' fixtures, shared: a reset emulator as ``mtp_default``, and ``mtp_legacy``
#: (the same emulator through the legacy API) beside it.
emulator = incident_tests.emulator
legacy_connection = incident_tests.legacy_connection

APIS = ("graph", "legacy")
MODES = ("poke", "reschedule", "deferrable")
#: The detector the tests' alerts come from; the decoy comes from another.
WATCHED = DetectionSource.AUTOMATED_INVESTIGATION


def put_alerts(emulator: DefenderEmulator, *alerts: dict[str, Any]) -> list[dict[str, Any]]:
    """Create or update alerts through the emulator's admin route (each new one in its own incident)."""
    reply = emulator.session.post(f"{emulator.url}/_emulator/alerts", json=list(alerts), timeout=60)
    reply.raise_for_status()
    made: list[dict[str, Any]] = reply.json()["value"]
    return made


@pytest.fixture
def alert_runs(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Records every AlertTrigger.run() that fired: its kwargs and its event."""
    runs: list[dict[str, Any]] = []
    original = AlertTrigger.run

    async def spy(self: AlertTrigger) -> AsyncIterator[TriggerEvent]:
        async for event in original(self):
            runs.append({"kwargs": self.serialize()[1], "event": event.payload})
            yield event

    monkeypatch.setattr(AlertTrigger, "run", spy)
    return runs


@pytest.fixture
def tiling_alerts(emulator: DefenderEmulator) -> dict[str, dict[str, Any]]:
    """An alert from the watched detector at every stamp, and a decoy from another one; by title."""
    made = put_alerts(
        emulator,
        *(
            {
                "title": name,
                "severity": "high",
                "detectionSource": str(WATCHED),
                "createdDateTime": stamp,
                "lastUpdateDateTime": stamp,
            }
            for name, stamp in STAMPS.items()
        ),
        {"title": "decoy", "detectionSource": "antivirus", "lastUpdateDateTime": "2026-06-01T00:40:00Z"},
    )
    return {alert["title"]: alert for alert in made}


def expected_ids(made: dict[str, dict[str, Any]], logical_date: Any) -> list[str]:
    """Ground truth from the stored stamps: watched alerts in the run's window, by (time, id)."""
    start, end = incident_window(logical_date)
    chosen = sorted(
        (timestamp_ticks(alert["lastUpdateDateTime"]), alert["id"])
        for title, alert in made.items()
        if title != "decoy"
    )
    return [ident for ticks, ident in chosen if ticks is not None and start <= ticks < end]


# dag.test: three modes, two back ends, two adjacent windows -----------------------------------------


def test_adjacent_alert_windows_tile_in_every_mode_on_both_back_ends(
    tiling_alerts: dict[str, dict[str, Any]], legacy_connection: None, alert_runs: list[dict[str, Any]]
) -> None:
    dag = load_dag("alerts_sensor_modes")
    tasks = [f"{api}_{mode}" for api in APIS for mode in MODES]

    first = dag.test(logical_date=T1, run_after=T1)
    second = dag.test(logical_date=T2, run_after=T2)

    results = {}
    for run, logical_date in ((first, T1), (second, T2)):
        assert states(run) == dict.fromkeys(tasks, "success")
        values = {task: xcom(run, task) for task in tasks}
        for api in APIS:
            assert [values[f"{api}_{mode}"] for mode in MODES] == [values[f"{api}_poke"]] * 3, (
                f"poke, reschedule and deferrable must agree on {api}"
            )
        graph, legacy = values["graph_poke"], values["legacy_poke"]
        assert [s["id"] for s in graph] == expected_ids(tiling_alerts, logical_date)
        assert [(s["id"], s["lastUpdateDateTime"]) for s in legacy] == [
            (s["id"], s["lastUpdateDateTime"]) for s in graph
        ], "both back ends report the same (id, lastUpdateDateTime) keys"
        results[logical_date] = graph

    # Each (id, lastUpdateDateTime) in exactly one run; together every watched update of both windows.
    keys = [(s["id"], s["lastUpdateDateTime"]) for value in results.values() for s in value]
    assert len(keys) == len(set(keys))
    titles = {s["title"] for value in results.values() for s in value}
    assert titles == set(STAMPS) - {"before run 1", "end of run 2"}
    assert {s["title"] for s in results[T1]} == {
        "run 1 first tick",
        "run 1 middle",
        "run 1 same instant",
        "run 1 last microsecond",
        "run 1 last tick",
    }
    assert {s["title"] for s in results[T2]} == {"on the boundary", "boundary plus a tick", "run 2 middle"}
    by_title = {s["title"]: s for value in results.values() for s in value}
    assert by_title["run 1 last tick"]["lastUpdateDateTime"] == "2026-06-01T00:54:59.9999999Z"
    boundary = by_title["on the boundary"]
    assert boundary["incidentId"] == tiling_alerts["on the boundary"]["incidentId"]
    assert boundary["alertWebUrl"].startswith("https://security.microsoft.com/")
    assert {
        "id",
        "incidentId",
        "title",
        "severity",
        "status",
        "serviceSource",
        "detectionSource",
        "lastUpdateDateTime",
        "createdDateTime",
        "alertWebUrl",
    } <= set(boundary)

    # Both deferrable tasks' triggers really ran (inline in dag.test), once per run and back end.
    assert [run["event"]["status"] for run in alert_runs] == ["success"] * 4
    assert {run["kwargs"]["window_start"] for run in alert_runs[:2]} == {"2026-06-01T00:00:00.0000000Z"}
    assert set(alert_runs[0]["kwargs"]) >= {"query", "min_alerts", "max_alerts", "include_alerts"}
    assert alert_runs[0]["event"]["alerts"] == results[T1]

    # Clearing and re-running the first run asks the same question and gets the same answer.
    again = dag.test(logical_date=T1, run_after=T1)
    assert again.run_id == first.run_id
    assert [xcom(again, task) for task in tasks] == [results[T1]] * len(tasks)
