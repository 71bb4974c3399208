"""IncidentSensor against the emulator: every mode with dag.test(), window tiling, on_empty, limits.

The tiling runs use an hourly schedule and the default 5-minute lag, so the run at logical date T
matches incidents last updated in [T - 1h - 5m, T - 5m). Incidents are put with explicit
``lastUpdateDateTime`` values on both sides of the boundary between two runs and exactly on it,
in June 2026: before every seeded incident and in the past, so the windows are closed.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from airflow.sdk.exceptions import AirflowException, AirflowFailException, AirflowSkipException, TaskDeferred
from airflow.triggers.base import TriggerEvent

from airflow_provider_mtp.auth import clear_token_cache
from airflow_provider_mtp.common.ticks import instant_ticks, timestamp_ticks
from airflow_provider_mtp.emulator import DefenderEmulator
from airflow_provider_mtp.errors import MTPConfigError, MTPPermissionError
from airflow_provider_mtp.sensors.incidents import IncidentSensor
from airflow_provider_mtp.triggers.incidents import IncidentTrigger

DAGS = Path(__file__).parents[1] / "dags"

T1 = datetime(2026, 6, 1, 1, tzinfo=UTC)  # data interval [00:00, 01:00) -> incidents [-00:05, 00:55)
T2 = T1 + timedelta(hours=1)  # data interval [01:00, 02:00) -> incidents [00:55, 01:55)
LAG = timedelta(minutes=5)

#: Last-update times around the boundary between the runs at T1 and T2 (00:55), in every spelling.
STAMPS = {
    "before run 1": "2026-05-31T23:54:59.9999999Z",
    "run 1 first tick": "2026-05-31T23:55:00.0000000Z",
    "run 1 middle": "2026-06-01T00:30:00.123Z",
    "run 1 same instant": "2026-06-01T00:30:00.1230000Z",
    "run 1 last microsecond": "2026-06-01T00:54:59.999999Z",
    "run 1 last tick": "2026-06-01T00:54:59.9999999Z",
    "on the boundary": "2026-06-01T00:55:00Z",
    "boundary plus a tick": "2026-06-01T00:55:00.0000001Z",
    "run 2 middle": "2026-06-01T01:20:00.5+00:00",
    "end of run 2": "2026-06-01T01:55:00.0000000Z",
}


# Helpers ------------------------------------------------------------------------------------------


def load_module(name: str) -> Any:
    """``tests/dags/<name>.py`` (the file must be in the dags folder for dag.test)."""
    spec = importlib.util.spec_from_file_location(f"mtp_test_dag_{name}", DAGS / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def load_dag(name: str) -> Any:
    """The ``dag`` of ``tests/dags/<name>.py``."""
    return load_module(name).dag


def xcom(run: Any, task_id: str, map_index: int = -1) -> Any:
    """A task instance's return value, as stored."""
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        row = session.scalars(
            XComModel.get_many(
                run_id=run.run_id,
                dag_ids=run.dag_id,
                task_ids=task_id,
                map_indexes=map_index,
                key="return_value",
            )
        ).first()
        return None if row is None else XComModel.deserialize_value(row)


def states(run: Any) -> dict[str, str]:
    from airflow.utils.session import create_session

    with create_session() as session:
        return {ti.task_id: str(ti.state) for ti in run.get_task_instances(session=session)}


def incident_window(logical_date: datetime) -> tuple[int, int]:
    """The incident window of an hourly run, as ticks."""
    return instant_ticks(logical_date - timedelta(hours=1) - LAG), instant_ticks(logical_date - LAG)


def context_for(logical_date: datetime) -> dict[str, Any]:
    return {
        "logical_date": logical_date,
        "data_interval_start": logical_date - timedelta(hours=1),
        "data_interval_end": logical_date,
    }


@pytest.fixture
def emulator(
    defender_emulator: DefenderEmulator, airflow_db: None, monkeypatch: pytest.MonkeyPatch
) -> DefenderEmulator:
    defender_emulator.reset()
    defender_emulator.clear_faults()
    clear_token_cache()
    monkeypatch.setenv("AIRFLOW_CONN_MTP_DEFAULT", defender_emulator.airflow_conn)
    return defender_emulator


@pytest.fixture
def legacy_connection(emulator: DefenderEmulator, monkeypatch: pytest.MonkeyPatch) -> None:
    conn = json.loads(emulator.airflow_conn)
    conn["extra"]["api"] = "legacy"
    monkeypatch.setenv("AIRFLOW_CONN_MTP_LEGACY", json.dumps(conn))


@pytest.fixture
def trigger_runs(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Records every IncidentTrigger.run() that fired: its kwargs and its event."""
    runs: list[dict[str, Any]] = []
    original = IncidentTrigger.run

    async def spy(self: IncidentTrigger) -> AsyncIterator[TriggerEvent]:
        async for event in original(self):
            runs.append({"kwargs": self.serialize()[1], "event": event.payload})
            yield event

    monkeypatch.setattr(IncidentTrigger, "run", spy)
    return runs


@pytest.fixture
def tiling_incidents(emulator: DefenderEmulator) -> dict[str, dict[str, Any]]:
    """Incidents tagged ``tiling`` at every stamp, one redirected, and an untagged one; by name."""
    made = {
        name: emulator.put_incidents(
            {
                "displayName": name,
                "customTags": ["tiling"],
                "createdDateTime": stamp,
                "lastUpdateDateTime": stamp,
            }
        )[0]
        for name, stamp in STAMPS.items()
    }
    made["merged"] = emulator.put_incidents(
        {
            "displayName": "merged",
            "customTags": ["Tiling"],
            "status": "redirected",
            "redirectIncidentId": made["run 1 middle"]["id"],
            "lastUpdateDateTime": "2026-06-01T01:10:00Z",
        }
    )[0]
    made["untagged"] = emulator.put_incidents(
        {"displayName": "untagged", "lastUpdateDateTime": "2026-06-01T00:40:00Z"}
    )[0]
    return made


def expected_ids(made: dict[str, dict[str, Any]], logical_date: datetime) -> list[str]:
    """Ground truth from the stored stamps: tagged incidents in the run's window, by (time, id)."""
    start, end = incident_window(logical_date)
    chosen = [
        (timestamp_ticks(incident["lastUpdateDateTime"]), int(incident["id"]))
        for name, incident in made.items()
        if name != "untagged"
    ]
    return [str(ident) for ticks, ident in sorted(chosen) if ticks is not None and start <= ticks < end]


# dag.test: three modes, two adjacent windows, and a re-run --------------------------------------


def test_adjacent_windows_tile_and_modes_agree(
    tiling_incidents: dict[str, dict[str, Any]], trigger_runs: list[dict[str, Any]]
) -> None:
    dag = load_dag("incidents_sensor_modes")
    modes = ("poke", "reschedule", "deferrable")

    first = dag.test(logical_date=T1, run_after=T1)
    second = dag.test(logical_date=T2, run_after=T2)

    results = {}
    for run, logical_date in ((first, T1), (second, T2)):
        assert states(run) == dict.fromkeys(modes, "success")
        values = [xcom(run, mode) for mode in modes]
        assert values[0] == values[1] == values[2], "poke, reschedule and deferrable must agree"
        results[logical_date] = values[0]
        assert [summary["id"] for summary in values[0]] == expected_ids(tiling_incidents, logical_date)

    # Each (id, last update) in exactly one run; together they are every tagged update in both windows.
    keys = [(s["id"], s["last_update"]) for value in results.values() for s in value]
    assert len(keys) == len(set(keys))
    names = {s["title"] for value in results.values() for s in value}
    assert names == set(STAMPS) - {"before run 1", "end of run 2"} | {"merged"}
    assert {s["title"] for s in results[T1]} == {
        "run 1 first tick",
        "run 1 middle",
        "run 1 same instant",
        "run 1 last microsecond",
        "run 1 last tick",
    }
    # Spelled as the service sent it (7 digits kept); portal link, and the merge target.
    by_title = {s["title"]: s for value in results.values() for s in value}
    assert by_title["run 1 last tick"]["last_update"] == "2026-06-01T00:54:59.9999999Z"
    assert by_title["on the boundary"]["portal_url"].startswith("https://security.microsoft.com/incidents/")
    assert by_title["merged"]["redirect_target"] == tiling_incidents["run 1 middle"]["id"]
    assert "redirect_target" not in by_title["on the boundary"]
    assert set(by_title["merged"]) == {
        "id",
        "title",
        "severity",
        "status",
        "last_update",
        "portal_url",
        "redirect_target",
    }

    # The deferrable task's trigger really ran (inline in dag.test), once per run, on the window.
    assert [run["event"]["status"] for run in trigger_runs] == ["success", "success"]
    assert trigger_runs[0]["kwargs"]["window_start"] == "2026-06-01T00:00:00.0000000Z"
    assert trigger_runs[0]["kwargs"]["lag_seconds"] == 300
    assert trigger_runs[0]["event"]["incidents"] == results[T1]

    # Clearing and re-running the first run asks the same question and gets the same answer.
    again = dag.test(logical_date=T1, run_after=T1)
    assert again.run_id == first.run_id
    assert states(again) == dict.fromkeys(modes, "success")
    assert [xcom(again, mode) for mode in modes] == [results[T1]] * 3


def test_on_empty_skip_fail_succeed_alike_when_poked_and_deferred(
    emulator: DefenderEmulator, trigger_runs: list[dict[str, Any]]
) -> None:
    run = load_dag("incidents_sensor_empty").test(logical_date=T1, run_after=T1)

    assert states(run) == {
        "skip_poked": "skipped",
        "skip_deferred": "skipped",
        "fail_poked": "failed",
        "fail_deferred": "failed",
        "succeed_poked": "success",
        "succeed_deferred": "success",
    }
    assert xcom(run, "succeed_poked") == xcom(run, "succeed_deferred") == []
    assert [r["event"]["status"] for r in trigger_runs] == ["empty"] * 3


def test_sensor_keeps_asking_while_the_window_is_open(
    emulator: DefenderEmulator, trigger_runs: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow.models.taskreschedule import TaskReschedule
    from airflow.utils.session import create_session

    from airflow_provider_mtp.hooks.mtp_async import MTPAsyncHook
    from airflow_provider_mtp.sensors import incidents as sensor_module
    from airflow_provider_mtp.triggers import incidents as trigger_module

    polls: list[str] = []
    original = MTPAsyncHook.list_incidents

    def counting(self: MTPAsyncHook, *args: Any, **kwargs: Any) -> AsyncIterator[dict[str, Any]]:
        [query] = args
        polls.append(str(query.updated_before))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(MTPAsyncHook, "list_incidents", counting)
    module = load_module("incidents_sensor_open")
    now = datetime.now(UTC)
    for minutes in (10, 20):
        stamp = (now - timedelta(minutes=minutes)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        emulator.put_incidents({"customTags": ["open-window"], "lastUpdateDateTime": stamp})

    values = []
    for dag in (module.reschedule_dag, module.deferrable_dag):
        # The window ends an hour from now, and the clock the sensor and the trigger decide by
        # reads "open" for the first decision only, then "closed": the run starts while the window
        # is open and must ask again, however long the machine takes to start the task.
        now = datetime.now(UTC)
        end = now + timedelta(hours=1)
        readings = {"sensor": 0, "trigger": 0}

        def clock(who: str, end: datetime = end, readings: dict[str, int] = readings) -> datetime:
            readings[who] += 1
            return datetime.now(UTC) if readings[who] == 1 else end + timedelta(seconds=1)

        monkeypatch.setattr(sensor_module, "_utcnow", lambda: clock("sensor"))
        monkeypatch.setattr(trigger_module, "_utcnow", lambda: clock("trigger"))
        conf = {"start": (now - timedelta(hours=1)).isoformat(), "end": end.isoformat()}
        run = dag.test(run_conf=conf)
        assert states(run) == {"wait": "success"}
        values.append(xcom(run, "wait"))
        if dag is module.reschedule_dag:
            with create_session() as session:
                ti_id = run.get_task_instance("wait", session=session).id
                reschedules = session.query(TaskReschedule).filter(TaskReschedule.ti_id == ti_id).count()
            assert reschedules >= 1, "the sensor should have been rescheduled while the window was open"
            assert readings["sensor"] >= 2, "the sensor should have poked again after the window closed"

    # Two of the three wanted: once the window closed, on_empty="succeed" returned them, alike.
    assert len(values[0]) == 2
    assert values[1] == values[0]
    assert len(polls) >= 2, "the trigger should have polled again while the window was open"
    assert [r["event"]["status"] for r in trigger_runs] == ["empty"]


# Direct calls: the rule's edges, errors and output_path -------------------------------------------


def make_sensor(**kwargs: Any) -> IncidentSensor:
    kwargs.setdefault("task_id", "sensor")
    kwargs.setdefault("poke_interval", 1)
    return IncidentSensor(**kwargs)


def defer_and_resume(sensor: IncidentSensor, context: dict[str, Any]) -> Any:
    """execute() -> TaskDeferred -> rebuild the trigger from its JSON -> run it -> execute_complete()."""
    with pytest.raises(TaskDeferred) as deferred:
        sensor.execute(context)  # type: ignore[arg-type]
    classpath, kwargs = deferred.value.trigger.serialize()
    assert classpath == "airflow_provider_mtp.triggers.incidents.IncidentTrigger"
    rebuilt = IncidentTrigger(**json.loads(json.dumps(kwargs)))

    async def first_event() -> TriggerEvent:
        return await anext(rebuilt.run())

    event = asyncio.run(first_event())
    return getattr(sensor, deferred.value.method_name)(context, event=event.payload)


def test_graph_and_legacy_back_ends_return_the_same_summaries(
    tiling_incidents: dict[str, dict[str, Any]], legacy_connection: None
) -> None:
    graph = make_sensor(tags="tiling").poke(context_for(T1))  # type: ignore[arg-type]
    legacy = make_sensor(tags="tiling", mtp_conn_id="mtp_legacy").poke(context_for(T1))  # type: ignore[arg-type]
    assert graph.is_done
    assert legacy.is_done
    assert graph.xcom_value == legacy.xcom_value
    assert [s["id"] for s in graph.xcom_value] == expected_ids(tiling_incidents, T1)


def test_more_than_max_incidents_fails_the_same_way_in_both_modes(
    tiling_incidents: dict[str, dict[str, Any]],
) -> None:
    sensor = make_sensor(tags="tiling", max_incidents=3)
    with pytest.raises(AirflowFailException, match=r"Raise max_incidents.*output_path") as poked:
        sensor.poke(context_for(T1))  # type: ignore[arg-type]
    with pytest.raises(AirflowFailException) as deferred:
        defer_and_resume(make_sensor(tags="tiling", max_incidents=3, deferrable=True), context_for(T1))
    assert str(poked.value) == str(deferred.value)
    assert "5 incidents updated in [2026-05-31T23:55:00.0000000Z, 2026-06-01T00:55:00.0000000Z)" in str(
        poked.value
    )


def test_output_path_writes_json_lines_and_returns_a_manifest(
    tiling_incidents: dict[str, dict[str, Any]], tmp_path: Path
) -> None:
    path = tmp_path / "out" / "incidents.jsonl"
    poked = make_sensor(tags="tiling", max_incidents=1, output_path=str(path)).poke(context_for(T1))  # type: ignore[arg-type]
    manifest = poked.xcom_value
    assert manifest == {
        "path": str(path),
        "rows": 5,
        "window": {"start": "2026-05-31T23:55:00.0000000Z", "end": "2026-06-01T00:55:00.0000000Z"},
    }
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert [line["id"] for line in lines] == expected_ids(tiling_incidents, T1)
    assert lines[0]["customTags"] == ["tiling"]
    assert list(path.parent.iterdir()) == [path], "no temporary file is left behind"

    # Deferred, to an object storage URI: the worker lists the window again and writes the same file.
    other = tmp_path / "store" / "deferred.jsonl"
    resumed = defer_and_resume(
        make_sensor(tags="tiling", max_incidents=1, output_path=f"file://{other}", deferrable=True),
        context_for(T1),
    )
    assert resumed == {**manifest, "path": f"file://{other}"}
    assert other.read_text() == path.read_text()
    assert list(other.parent.iterdir()) == [other]


def test_fail_names_the_window_and_the_filters(emulator: DefenderEmulator) -> None:
    sensor = make_sensor(status="active", classification="TruePositive", tags=["nope"], on_empty="fail")
    with pytest.raises(AirflowFailException) as failed:
        sensor.poke(context_for(T1))  # type: ignore[arg-type]
    message = str(failed.value)
    assert "[2026-05-31T23:55:00.0000000Z, 2026-06-01T00:55:00.0000000Z)" in message
    assert "shifted back by lag 0:05:00" in message
    assert "status=active, classification=truePositive, tags=nope" in message
    assert "min_incidents=1" in message


def test_skip_is_the_default_and_checks_come_before_any_call(emulator: DefenderEmulator) -> None:
    with pytest.raises(AirflowSkipException):
        make_sensor(tags="nope").poke(context_for(T1))  # type: ignore[arg-type]
    emulator.reset()
    with pytest.raises(MTPConfigError, match="Invalid severity 'urgent'"):
        make_sensor(severity="urgent").poke(context_for(T1))  # type: ignore[arg-type]
    with pytest.raises(MTPConfigError, match="Invalid classification"):
        make_sensor(classification="bad", deferrable=True).execute(context_for(T1))  # type: ignore[arg-type]
    with pytest.raises(MTPConfigError, match="has no window"):
        make_sensor().poke({"logical_date": T1})  # type: ignore[arg-type]
    assert emulator.stats()["requests"] == {}


def test_filters_are_checked_by_the_back_end_in_use_before_any_call(
    emulator: DefenderEmulator, legacy_connection: None
) -> None:
    """``awaitingAction`` is a Graph-only status: a legacy connection refuses it before any call,
    in poke and before deferring; Graph's rules accept it."""
    with pytest.raises(MTPConfigError, match="Invalid incident status 'awaitingAction'"):
        make_sensor(mtp_conn_id="mtp_legacy", status="awaitingAction").poke(context_for(T1))  # type: ignore[arg-type]
    with pytest.raises(MTPConfigError, match="Invalid incident status 'awaitingAction'"):
        make_sensor(mtp_conn_id="mtp_legacy", status="awaitingAction", deferrable=True).execute(
            context_for(T1)  # type: ignore[arg-type]
        )
    with pytest.raises(MTPConfigError, match="Invalid incident status 'awaitingAction'"):
        make_sensor(api="legacy", status="awaitingAction").poke(context_for(T1))  # type: ignore[arg-type]
    assert emulator.stats()["requests"] == {}
    graph = make_sensor(status="awaitingAction")
    window = graph._run_window(context_for(T1)).shifted(-LAG)  # type: ignore[arg-type]
    graph._check(graph._query(), window)
    assert emulator.stats()["requests"] == {}


def test_a_legacy_connection_takes_its_own_spellings(
    emulator: DefenderEmulator, legacy_connection: None
) -> None:
    made = emulator.put_incidents(
        {"displayName": "medium", "severity": "medium", "lastUpdateDateTime": "2026-06-01T00:10:00Z"},
        {"displayName": "high", "severity": "high", "lastUpdateDateTime": "2026-06-01T00:15:00Z"},
        {
            "displayName": "resolved",
            "severity": "medium",
            "status": "resolved",
            "lastUpdateDateTime": "2026-06-01T00:20:00Z",
        },
    )
    sensor = make_sensor(mtp_conn_id="mtp_legacy", status=["Active", "InProgress"], severity="Medium")
    window = sensor._run_window(context_for(T1)).shifted(-LAG)  # type: ignore[arg-type]
    sensor._check(sensor._query(), window)
    assert emulator.stats()["requests"] == {}, "checked with no call"
    result = sensor.poke(context_for(T1))  # type: ignore[arg-type]
    assert [summary["id"] for summary in result.xcom_value] == [made[0]["id"]]


def test_the_sensor_hands_the_hook_one_query_with_the_window(
    emulator: DefenderEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow_provider_mtp.api.incident_query import IncidentQuery
    from airflow_provider_mtp.hooks.mtp import MTPHook

    asked: list[tuple[Any, ...]] = []
    listing = MTPHook.list_incidents

    def recording_list(self: MTPHook, *args: Any, **kwargs: Any) -> Any:
        asked.append((*args, *kwargs.items()))
        return listing(self, *args, **kwargs)

    monkeypatch.setattr(MTPHook, "list_incidents", recording_list)
    emulator.put_incidents(
        {"displayName": "x", "customTags": ["one"], "lastUpdateDateTime": "2026-06-01T00:10:00Z"},
    )
    sensor = make_sensor(status="active", classification="truePositive", tags="one", on_empty="succeed")
    assert sensor.poke(context_for(T1)).xcom_value == []  # type: ignore[arg-type]
    [(query,)] = asked
    assert isinstance(query, IncidentQuery)
    assert (query.status, query.updated_from, query.updated_before) == (
        ("active",),
        "2026-05-31T23:55:00.0000000Z",
        "2026-06-01T00:55:00.0000000Z",
    )
    assert (query.classification, query.tags) == (None, None), "judged on each incident's latest copy"


def test_a_manual_run_uses_lookback() -> None:
    sensor = make_sensor(lookback=3600, lag=0)
    window = sensor._run_window({"logical_date": T1, "data_interval_start": T1, "data_interval_end": T1})  # type: ignore[arg-type]
    assert (window.start, window.end) == (T1 - timedelta(hours=1), T1)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"on_empty": "ignore"}, "on_empty must be one of skip, fail, succeed"),
        ({"min_incidents": 0}, "min_incidents must be a whole number of at least 1"),
        ({"max_incidents": 2, "min_incidents": 3}, "could never succeed"),
        ({"lag": -1}, "lag must not be negative"),
    ],
)
def test_bad_arguments_fail_at_parse_time(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make_sensor(**kwargs)


# execute_complete: every kind of event ------------------------------------------------------------

WINDOW = {"start": "2026-05-31T23:55:00.0000000Z", "end": "2026-06-01T00:55:00.0000000Z"}
SUMMARY = {
    "id": "7",
    "title": "t",
    "severity": "high",
    "status": "active",
    "last_update": "2026-06-01T00:00:00Z",
    "portal_url": "https://security.microsoft.com/incidents/7",
}


def test_execute_complete_returns_the_summaries_of_a_success_event() -> None:
    event = {"status": "success", "message": "1 match", "window": WINDOW, "count": 1, "incidents": [SUMMARY]}
    assert make_sensor().execute_complete({}, event=event) == [SUMMARY]  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("on_empty", "expected"),
    [("skip", AirflowSkipException), ("fail", AirflowFailException), ("succeed", None)],
)
def test_execute_complete_applies_on_empty(on_empty: str, expected: type[Exception] | None) -> None:
    event = {
        "status": "empty",
        "message": "0 incident(s) match",
        "window": WINDOW,
        "count": 0,
        "incidents": [],
    }
    sensor = make_sensor(on_empty=on_empty)
    if expected is None:
        assert sensor.execute_complete({}, event=event) == []  # type: ignore[arg-type]
    else:
        with pytest.raises(expected, match="0 incident"):
            sensor.execute_complete({}, event=event)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("event", "expected", "match"),
    [
        (None, AirflowException, "unexpected trigger event: None"),
        ({"status": "done"}, AirflowException, "unexpected trigger event"),
        ("success", AirflowException, "unexpected trigger event"),
        (
            {
                "status": "error",
                "error_type": "MTPPermissionError",
                "message": "Grant SecurityIncident.Read.All",
            },
            MTPPermissionError,
            "Grant SecurityIncident.Read.All",
        ),
        (
            {"status": "error", "error_type": "TooManyIncidents", "message": "raise max_incidents"},
            AirflowFailException,
            "raise max_incidents",
        ),
        (
            {"status": "error", "error_type": "KeyError", "message": "'value'"},
            AirflowException,
            "KeyError: 'value'",
        ),
        ({"status": "success", "message": "no window"}, AirflowException, "malformed trigger event"),
        ({"status": "success", "window": WINDOW}, AirflowException, "malformed trigger event"),
    ],
)
def test_execute_complete_raises_on_bad_events(event: Any, expected: type[Exception], match: str) -> None:
    with pytest.raises(expected, match=match):
        make_sensor().execute_complete({}, event=event)  # type: ignore[arg-type]
