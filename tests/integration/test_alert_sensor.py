"""AlertSensor against the emulator: adjacent windows in every mode on both back ends, and the edges.

The same clock and stamps as ``test_incident_sensor.py`` (shared from it, not copied): hourly runs
at T1 and T2 with the default 5-minute lag, so the run at T matches alerts last updated in
[T - 1h - 5m, T - 5m); alerts are put through the emulator's ``/_emulator/alerts`` route
(``DefenderEmulator.put_alerts``) with
explicit ``lastUpdateDateTime`` values on both sides of the boundary between the runs, exactly on
it and one tick (100 ns) past it, in June 2026 (closed windows, before every seeded alert). On the
legacy back end the alerts come from the incidents that embed them.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException, TaskDeferred
from airflow.triggers.base import TriggerEvent

from airflow_provider_mtp.common.ticks import timestamp_ticks
from airflow_provider_mtp.emulator import DefenderEmulator
from airflow_provider_mtp.enums import AlertStatus, DetectionSource, Severity
from airflow_provider_mtp.errors import MTPConfigError
from airflow_provider_mtp.sensors.alerts import AlertSensor
from airflow_provider_mtp.triggers.alerts import AlertTrigger
from tests.integration import test_incident_sensor as incident_tests
from tests.integration.test_incident_sensor import (
    STAMPS,
    T1,
    T2,
    context_for,
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


@pytest.fixture
def alert_runs(monkeypatch: pytest.MonkeyPatch) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """(kwargs, event payload) of every AlertTrigger that fired (its one event is made by ``_event``)."""
    fired: list[tuple[dict[str, Any], dict[str, Any]]] = []
    make_event = AlertTrigger._event

    def recording(self: AlertTrigger, *args: Any) -> TriggerEvent:
        event = make_event(self, *args)
        fired.append((self.serialize()[1], event.payload))
        return event

    monkeypatch.setattr(AlertTrigger, "_event", recording)
    return fired


@pytest.fixture
def tiling_alerts(emulator: DefenderEmulator) -> dict[str, dict[str, Any]]:
    """An alert from the watched detector at every stamp, and a decoy from another one; by title."""
    made = emulator.put_alerts(
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
    tiling_alerts: dict[str, dict[str, Any]],
    legacy_connection: None,
    alert_runs: list[tuple[dict[str, Any], dict[str, Any]]],
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
    run_1 = [title for title in STAMPS if title.startswith("run 1 ")]
    assert {when: {s["title"] for s in value} for when, value in results.items()} == {
        T1: set(run_1),
        T2: {"on the boundary", "boundary plus a tick", "run 2 middle"},
    }, "the boundary and a tick past it go to the later run; before run 1 and its end to none"
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
    assert [event["status"] for _, event in alert_runs] == ["success"] * 4
    assert {kwargs["window_start"] for kwargs, _ in alert_runs[:2]} == {"2026-06-01T00:00:00.0000000Z"}
    assert set(alert_runs[0][0]) >= {"query", "min_alerts", "max_alerts", "include_alerts"}
    assert alert_runs[0][1]["alerts"] == results[T1]

    # Clearing and re-running the first run asks the same question and gets the same answer.
    again = dag.test(logical_date=T1, run_after=T1)
    assert again.run_id == first.run_id
    assert [xcom(again, task) for task in tasks] == [results[T1]] * len(tasks)


# Direct calls: the same edges as the incident sensor, in the alert names -------------------------


def make_sensor(**kwargs: Any) -> AlertSensor:
    return AlertSensor(**{"task_id": "sensor", "poke_interval": 1, "detection_source": WATCHED, **kwargs})


def defer_and_resume(sensor: AlertSensor, context: dict[str, Any]) -> Any:
    """execute() -> TaskDeferred -> the trigger rebuilt from its JSON, run -> execute_complete()."""
    with pytest.raises(TaskDeferred) as deferred:
        sensor.execute(context)  # type: ignore[arg-type]
    classpath, kwargs = deferred.value.trigger.serialize()
    assert classpath == "airflow_provider_mtp.triggers.alerts.AlertTrigger"
    event = asyncio.run(anext(AlertTrigger(**json.loads(json.dumps(kwargs))).run()))
    return getattr(sensor, deferred.value.method_name)(context, event=event.payload)


def raised_alike(expected: type[Exception], **kwargs: Any) -> str:
    """The error a sensor with ``kwargs`` raises for the run at T1, the same poked and deferred."""
    with pytest.raises(expected) as poked:
        make_sensor(**kwargs).poke(context_for(T1))  # type: ignore[arg-type]
    with pytest.raises(expected) as deferred:
        defer_and_resume(make_sensor(deferrable=True, **kwargs), context_for(T1))
    assert str(poked.value) == str(deferred.value)
    return str(poked.value)


def test_more_than_max_alerts_fails_alike_when_poked_and_deferred(
    tiling_alerts: dict[str, dict[str, Any]],
) -> None:
    message = raised_alike(AirflowFailException, max_alerts=3)
    assert message.startswith(
        "5 alerts updated in [2026-05-31T23:55:00.0000000Z, 2026-06-01T00:55:00.0000000Z) (the run's "
        "window shifted back by lag 0:05:00) with detection_source=automatedInvestigation match, more "
        "than max_alerts=3. Raise max_alerts, narrow the filters, or set output_path"
    )


def test_output_path_writes_whole_alerts_and_returns_a_manifest(
    tiling_alerts: dict[str, dict[str, Any]], tmp_path: Path
) -> None:
    """Poked to a local path, deferred to a ``file://`` URI (listed again on the worker): one file."""
    poked, deferred = tmp_path / "poked.jsonl", tmp_path / "deferred.jsonl"
    manifests = [
        make_sensor(max_alerts=1, output_path=str(poked)).poke(context_for(T1)).xcom_value,  # type: ignore[arg-type]
        defer_and_resume(
            make_sensor(max_alerts=1, output_path=f"file://{deferred}", deferrable=True), context_for(T1)
        ),
    ]
    window = {"start": "2026-05-31T23:55:00.0000000Z", "end": "2026-06-01T00:55:00.0000000Z"}
    assert manifests == [
        {"path": str(poked), "rows": 5, "window": window},
        {"path": f"file://{deferred}", "rows": 5, "window": window},
    ]
    assert deferred.read_text() == poked.read_text()
    written = [json.loads(line) for line in poked.read_text().splitlines()]
    assert [alert["id"] for alert in written] == expected_ids(tiling_alerts, T1)
    assert all("evidence" in alert for alert in written), "the whole alert, not its summary"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["deferred.jsonl", "poked.jsonl"]


def test_an_empty_window_names_the_window_and_the_filters(emulator: DefenderEmulator) -> None:
    filters = {"status": AlertStatus.NEW, "severity": [Severity.HIGH, "Medium"]}
    assert raised_alike(AirflowFailException, on_empty="fail", **filters) == (
        "0 alert(s) updated in [2026-05-31T23:55:00.0000000Z, 2026-06-01T00:55:00.0000000Z) (the run's "
        "window shifted back by lag 0:05:00) with status=new, severity=high|medium, "
        "detection_source=automatedInvestigation match, fewer than min_alerts=1; the window has closed, "
        "so this is final."
    )
    assert raised_alike(AirflowSkipException).startswith("0 alert(s) updated in"), "skip is the default"


def test_arguments_are_checked_before_any_call_by_the_back_end_in_use(
    emulator: DefenderEmulator, legacy_connection: None
) -> None:
    with pytest.raises(MTPConfigError, match="severity"):
        make_sensor(severity="urgent").poke(context_for(T1))  # type: ignore[arg-type]
    with pytest.raises(MTPConfigError, match="has no window"):
        make_sensor(deferrable=True).execute({"logical_date": T1})  # type: ignore[arg-type]
    # The legacy API cannot apply a raw filter to alerts: refused in poke and before deferring.
    raw = "serviceSource eq 'microsoftDefenderForEndpoint'"
    assert "odata_filter" in raised_alike(MTPConfigError, odata_filter=raw, mtp_conn_id="mtp_legacy")
    assert emulator.stats()["requests"] == {}


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"on_empty": "ignore"}, "on_empty must be one of skip, fail, succeed"),
        ({"min_alerts": 0}, "min_alerts must be a whole number of at least 1"),
        ({"max_alerts": True}, "max_alerts must be a whole number"),
        ({"max_alerts": 2, "min_alerts": 3}, r"max_alerts \(2\) is below min_alerts \(3\)"),
        ({"lag": -1}, "lag must not be negative"),
    ],
)
def test_bad_alert_sensor_arguments_fail_at_parse_time(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make_sensor(**kwargs)


def test_every_filter_is_templated_and_kept_under_its_name() -> None:
    sensor = make_sensor(service_source="{{ params.source }}", incident_id=42, min_alerts=2)
    assert {"service_source", "detection_source", "determination", "incident_id", "odata_filter"} <= set(
        sensor.template_fields
    )
    assert (sensor.service_source, sensor.incident_id, sensor.min_alerts, sensor.max_alerts) == (
        "{{ params.source }}",
        42,
        2,
        200,
    )
