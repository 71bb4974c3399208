"""RunHuntingQueryOperator through ``dag.test()`` against the emulator (issue 4, hunting half).

The DAGs are in ``tests/dags/hunting_dags.py``; each run is compared with a ground truth asked of
the emulator directly (the hook, or a ``count`` hunt). Covered: rows to XCom on both back ends,
the ``max_xcom_rows`` failure, JSON Lines/CSV/Parquet outputs and their manifests, reruns giving
the same manifest, the 100,000-row limit with and without ``split_on_limit`` under both of the
emulator's row-limit behaviours (Must show 3), a hostile ``params`` value bound as a query
parameter (Must show 4), ``.kql`` files with the KQL Jinja filters, and a deferral on a long
``429`` that resumes without duplicating rows.
"""

from __future__ import annotations

import csv
import hashlib
import itertools
import json
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_mtp.emulator import DefenderEmulator
from airflow_provider_mtp.hooks.mtp import MTPHook
from airflow_provider_mtp.windows import Window
from tests.conftest import TEST_NOW
from tests.dags import hunting_dags

NOW = datetime.fromisoformat(TEST_NOW)
MONTH = Window(NOW - timedelta(days=30), NOW)
DAY = Window(datetime.fromisoformat("2026-11-18T00:00:00Z"), datetime.fromisoformat("2026-11-19T00:00:00Z"))
HUNTING_ROUTE = "/v1.0/security/runHuntingQuery"
INJECTION = 'x" | union * | take 1 //'

#: 30 days of the four full tables of the default tenant: 120,000 rows, over the row limit.
UNION = (
    "union withsource=Table DeviceProcessEvents, DeviceNetworkEvents, DeviceFileEvents, EmailEvents\n"
    "| where Timestamp >= WindowStart and Timestamp < WindowEnd\n"
    "| project Timestamp, Table, Id = tostring(ReportId)"
)
#: One column of every Kusto type the outputs map.
TYPED = (
    "DeviceNetworkEvents\n"
    "| where Timestamp >= WindowStart and Timestamp < WindowEnd\n"
    "| extend Score = RemotePort * 1.5, Age = WindowEnd - Timestamp, "
    'Bag = parse_json(\'{"port": 1, "tags": ["a", "b"]}\'), Remote = IsInitiatingProcessRemoteSession\n'
    "| project Timestamp, ReportId, RemotePort, RemoteUrl, Score, Remote, Age, Bag\n"
    "| order by Timestamp asc, ReportId asc"
)


# --------------------------------------------------------------------------------------------
# Fixtures and helpers
# --------------------------------------------------------------------------------------------


@pytest.fixture
def emulator(airflow_db: None, mtp_default_connection: DefenderEmulator) -> Iterator[DefenderEmulator]:
    """The session emulator, reset, as ``mtp_default``."""
    yield mtp_default_connection
    mtp_default_connection.clear_faults()


@pytest.fixture(scope="module")
def error_emulator() -> Iterator[DefenderEmulator]:
    """The same tenant, but a hunt over the row limit fails instead of being truncated."""
    with DefenderEmulator(seed=7, now=TEST_NOW, row_limit_behaviour="error") as emulator:
        yield emulator


@pytest.fixture(params=["truncate", "error"])
def limit_emulator(
    request: pytest.FixtureRequest, emulator: DefenderEmulator, monkeypatch: pytest.MonkeyPatch
) -> DefenderEmulator:
    """``mtp_default`` on an emulator with each row-limit behaviour."""
    if request.param == "truncate":
        return emulator
    other: DefenderEmulator = request.getfixturevalue("error_emulator")
    other.reset()
    monkeypatch.setenv("AIRFLOW_CONN_MTP_DEFAULT", other.airflow_conn)
    return other


class _FailureListener:
    """Keeps the exception of every failed task (dag.test() logs it; a test wants to read it)."""

    def __init__(self) -> None:
        self.errors: list[BaseException | str | None] = []

    from airflow.listeners import hookimpl

    @hookimpl
    def on_task_instance_failed(self, previous_state: Any, task_instance: Any, error: Any) -> None:
        self.errors.append(error)


@pytest.fixture
def task_errors() -> Iterator[list[BaseException | str | None]]:
    """The errors tasks fail with during the test, in order."""
    from airflow.sdk.listener import get_listener_manager

    listener = _FailureListener()
    manager = get_listener_manager()
    manager.add_listener(listener)
    yield listener.errors
    manager.pm.unregister(listener)


def failure(errors: list[BaseException | str | None]) -> str:
    """The one task failure's exception, as ``Type: message``."""
    assert len(errors) == 1, errors
    error = errors[0]
    return f"{type(error).__name__}: {error}" if isinstance(error, BaseException) else str(error)


def run(dag: Any, conf: dict[str, Any] | None = None) -> tuple[str, Any, str]:
    """Run the DAG for the test's logical date; the task's state, its XCom and the run's id."""
    dag_run = dag.test(logical_date=NOW, run_conf=conf or {})
    ti = dag_run.get_task_instance("hunt")
    return str(ti.state), ti.xcom_pull(task_ids="hunt"), str(dag_run.run_id)


def bindings(window: Window) -> str:
    """The window's ``let`` lines, written out here independently of the operator's code."""
    start, end = (when.strftime("%Y-%m-%dT%H:%M:%S.%f") + "0Z" for when in (window.start, window.end))
    return f"let WindowStart = datetime({start});\nlet WindowEnd = datetime({end});\n"


def direct(query: str, window: Window) -> list[dict[str, Any]]:
    """The ground truth: the same question asked through the hook, outside any DAG."""
    hook = MTPHook()
    try:
        with hook.run_hunting_query(bindings(window) + query, timespan=window.timespan) as result:
            return list(result.rows)
    finally:
        hook.session.close()  # an open keep-alive connection slows the emulator's shutdown


def count(query: str, window: Window) -> int:
    """Rows ``query`` has over ``window``, counted by the service (a ``count`` hunt)."""
    (row,) = direct(query + "\n| count", window)
    return int(row["Count"])


def hunting_calls(emulator: DefenderEmulator) -> dict[str, int]:
    """Replies to the Graph hunting route so far, by status."""
    requests = emulator.stats()["requests"]
    return {str(k): v for k, v in requests.get(f"POST {HUNTING_ROUTE}", {}).items()}


def leftovers(folder: Path, keep: Path) -> list[Path]:
    """Anything in ``folder`` besides the output: part folders, temporary files."""
    return [path for path in folder.rglob("*") if path != keep]


def tiles(pieces: list[dict[str, Any]], window: Window) -> bool:
    """True when the pieces' windows cover ``window`` in order, without gaps or overlaps."""
    edges = [Window.from_dict(piece["window"]) for piece in pieces]
    return (
        edges[0].start == window.start
        and edges[-1].end == window.end
        and all(a.end == b.start for a, b in itertools.pairwise(edges))
    )


# --------------------------------------------------------------------------------------------
# Rows to XCom
# --------------------------------------------------------------------------------------------

POWERSHELL = (
    "DeviceProcessEvents\n"
    "| where Timestamp >= WindowStart and Timestamp < WindowEnd\n"
    '| where FileName =~ "powershell.exe"\n'
    "| project Timestamp, DeviceName, FileName, ReportId\n"
    "| order by Timestamp asc, ReportId asc\n"
    "| take 40"
)


@pytest.mark.parametrize("api", ["graph", "legacy"])
def test_rows_to_xcom_match_a_direct_hunt(
    emulator: DefenderEmulator, monkeypatch: pytest.MonkeyPatch, api: str
) -> None:
    expected = direct(POWERSHELL, DAY)
    assert len(expected) == 40
    conn = json.loads(emulator.airflow_conn)
    conn["extra"]["api"] = api
    monkeypatch.setenv("AIRFLOW_CONN_MTP_DEFAULT", json.dumps(conn))

    state, rows, run_id = run(hunting_dags.conf_dag, {"query": POWERSHELL, **DAY.as_dict()})

    assert state == "success"
    assert rows == expected
    if api == "graph":
        assert _asset_extra(run_id) == {"rows": len(expected), "query_sha256": _sha(POWERSHELL, DAY)}


def _sha(query: str, window: Window) -> str:
    return hashlib.sha256((bindings(window) + query).encode()).hexdigest()


def _asset_extra(run_id: str) -> dict[str, Any]:
    from airflow.models.asset import AssetEvent
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        events = session.scalars(select(AssetEvent).where(AssetEvent.source_run_id == run_id)).all()
        assert len(events) == 1
        return dict(events[0].extra)


def test_more_rows_than_max_xcom_rows_fail_and_say_to_set_output_path(
    emulator: DefenderEmulator, task_errors: list[Any]
) -> None:
    query = (
        "DeviceProcessEvents | where Timestamp >= WindowStart and Timestamp < WindowEnd | project ReportId"
    )
    state, rows, _ = run(hunting_dags.conf_dag, {"query": query})
    assert state == "failed"
    assert rows is None
    output = failure(task_errors)
    assert "more than max_xcom_rows=50 rows" in output
    assert "Set output_path" in output


# --------------------------------------------------------------------------------------------
# Output files and manifests
# --------------------------------------------------------------------------------------------


def _read(path: Path, fmt: str) -> list[dict[str, Any]]:
    if fmt == "jsonl":
        return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    if fmt == "csv":
        with path.open(newline="", encoding="utf-8") as stream:
            return list(csv.DictReader(stream))
    import pyarrow.parquet as pq

    return pq.read_table(path).to_pylist()


def _as_csv(row: dict[str, Any]) -> dict[str, str]:
    """A service row as the CSV writer spells it."""
    spelled = {}
    for key, value in row.items():
        if value is None:
            spelled[key] = ""
        elif isinstance(value, bool):
            spelled[key] = "true" if value else "false"
        elif isinstance(value, dict | list):
            spelled[key] = json.dumps(value, separators=(",", ":"))
        else:
            spelled[key] = str(value)
    return spelled


@pytest.mark.parametrize(
    ("name", "fmt"),
    [
        ("rows.jsonl", "jsonl"),
        ("rows.csv", "csv"),
        ("rows.parquet", "parquet"),
        ("file://{tmp}/nested/folders/rows.ndjson", "jsonl"),
    ],
)
def test_output_file_and_manifest(emulator: DefenderEmulator, tmp_path: Path, name: str, fmt: str) -> None:
    expected = direct(TYPED, DAY)
    assert len(expected) == count(TYPED.rsplit("\n", 1)[0], DAY) > 100
    uri = name.format(tmp=tmp_path) if "://" in name else str(tmp_path / name)
    path = Path(uri.removeprefix("file://"))

    state, manifest, _ = run(hunting_dags.conf_dag, {"query": TYPED, "output_path": uri, **DAY.as_dict()})

    assert state == "success"
    assert manifest == {
        "path": uri,
        "rows": len(expected),
        "schema": [
            {"name": "Timestamp", "type": "DateTime"},
            {"name": "ReportId", "type": "Int64"},
            {"name": "RemotePort", "type": "Int32"},
            {"name": "RemoteUrl", "type": "String"},
            {"name": "Score", "type": "Double"},
            {"name": "Remote", "type": "Boolean"},
            {"name": "Age", "type": "TimeSpan"},
            {"name": "Bag", "type": "Object"},
        ],
        "window": {"start": "2026-11-18T00:00:00.0000000Z", "end": "2026-11-19T00:00:00.0000000Z"},
        "query_sha256": _sha(TYPED, DAY),
    }
    written = _read(path, fmt)
    if fmt == "jsonl":
        assert written == expected
    elif fmt == "csv":
        assert written == [_as_csv(row) for row in expected]
    else:
        _check_parquet(path, written, expected)
    assert leftovers(tmp_path, path) == ([] if "nested" not in name else [path.parent.parent, path.parent])

    # A rerun of the same run asks the same question, gets the same manifest and replaces the file.
    path.write_bytes(b"stale")
    state, again, _ = run(hunting_dags.conf_dag, {"query": TYPED, "output_path": uri, **DAY.as_dict()})
    assert state == "success"
    assert again == manifest
    assert _read(path, fmt) == written


def _check_parquet(path: Path, written: list[dict[str, Any]], expected: list[dict[str, Any]]) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = pq.read_schema(path)
    assert [str(field.type) for field in schema] == [
        "timestamp[us, tz=UTC]",
        "int64",
        "int32",
        "string",
        "double",
        "bool",
        "string",
        "string",
    ]
    assert json.loads(schema.metadata[b"kusto_schema"])[0] == {"name": "Timestamp", "type": "DateTime"}
    assert isinstance(schema, pa.Schema)
    for got, want in zip(written, expected, strict=True):
        # Kusto's 7th fractional digit (100 ns) is dropped: truncated to the microsecond.
        assert got["Timestamp"] == datetime.fromisoformat(want["Timestamp"][:26] + "Z")
        assert {
            key: got[key] for key in ("ReportId", "RemotePort", "RemoteUrl", "Score", "Remote", "Age")
        } == {key: want[key] for key in ("ReportId", "RemotePort", "RemoteUrl", "Score", "Remote", "Age")}
        assert json.loads(got["Bag"]) == want["Bag"]


# --------------------------------------------------------------------------------------------
# Must show 3: the row limit
# --------------------------------------------------------------------------------------------


def test_split_on_limit_gets_every_row_of_a_30_day_hunt(
    limit_emulator: DefenderEmulator, tmp_path: Path
) -> None:
    truth = count(UNION, MONTH)
    assert truth > 100_000
    output = tmp_path / "month.jsonl"

    state, manifest, _ = run(hunting_dags.split_dag, {"query": UNION, "output_path": str(output)})

    assert state == "success"
    assert manifest["rows"] == truth
    assert manifest["window"] == MONTH.as_dict()
    assert manifest["query_sha256"] == _sha(UNION, MONTH)
    pieces = manifest["pieces"]
    assert len(pieces) >= 2
    assert tiles(pieces, MONTH)
    assert all(piece["rows"] < 100_000 for piece in pieces)
    assert sum(piece["rows"] for piece in pieces) == truth
    assert [piece["query_sha256"] for piece in pieces] == [
        _sha(UNION, Window.from_dict(piece["window"])) for piece in pieces
    ]
    rows = [json.loads(line) for line in output.read_text().splitlines()]
    assert len(rows) == truth
    assert len({(row["Table"], row["Id"]) for row in rows}) == truth  # no row twice
    assert leftovers(tmp_path, output) == []


def test_without_split_the_task_fails_and_names_the_limit(
    limit_emulator: DefenderEmulator, tmp_path: Path, task_errors: list[Any]
) -> None:
    output = tmp_path / "month.parquet"
    state, manifest, _ = run(hunting_dags.no_split_dag, {"query": UNION, "output_path": str(output)})
    assert state == "failed"
    assert manifest is None
    log = failure(task_errors)
    assert log.startswith("MTPLimitExceededError: ")
    assert "row limit (100,000 rows)" in log
    assert "split_on_limit=True" in log
    assert not output.exists()
    assert list(tmp_path.iterdir()) == []


def test_split_on_limit_refuses_a_query_without_the_window(
    emulator: DefenderEmulator, task_errors: list[Any]
) -> None:
    state, _, _ = run(hunting_dags.split_dag, {"query": "DeviceProcessEvents | where Timestamp > ago(1d)"})
    assert state == "failed"
    assert "split_on_limit needs the query to filter on the window" in failure(task_errors)
    assert hunting_calls(emulator) == {}


# --------------------------------------------------------------------------------------------
# Must show 4: params bound as query parameters
# --------------------------------------------------------------------------------------------

BY_DEVICE = (
    "DeviceProcessEvents\n"
    "| where Timestamp >= WindowStart and Timestamp < WindowEnd\n"
    "| where DeviceName == device and FileSize >= min_size\n"
    "| project Timestamp, DeviceName, FileName, ReportId"
)


def test_a_hostile_param_is_matched_as_plain_text(emulator: DefenderEmulator) -> None:
    state, harmless, _ = run(hunting_dags.params_dag, {"device": "ws-nothing-matches"})
    assert (state, harmless) == ("success", [])

    state, hostile, _ = run(hunting_dags.params_dag, {"device": INJECTION})
    assert (state, hostile) == ("success", harmless)

    # The same parameter with a real device name finds exactly what a direct hunt finds.
    device = direct(
        "DeviceProcessEvents | where Timestamp >= WindowStart | take 1 | project DeviceName", MONTH
    )
    name = device[0]["DeviceName"]
    expected = direct(f'let device = "{name}";\nlet min_size = long(0);\n' + BY_DEVICE, MONTH)
    # The operator puts the parameter lets first; compare as multisets (no order in the query).
    state, rows, _ = run(hunting_dags.params_dag, {"device": name})
    assert state == "success"
    assert 0 < len(rows) <= 5000
    assert sorted(map(json.dumps, rows)) == sorted(map(json.dumps, expected))


def test_kql_file_with_the_kql_filters(emulator: DefenderEmulator) -> None:
    """``{{ params.file | kql_string }}`` works in a .kql file without DAG-level filters."""
    body = Path(hunting_dags.__file__).with_name("hunting_by_file.kql").read_text().split("\n", 1)[1]
    expected = direct(body.replace("{{ params.file | kql_string }}", '"powershell.exe"'), MONTH)
    state, rows, _ = run(hunting_dags.kql_file_dag)
    assert state == "success"
    assert rows == expected
    assert len(rows) > 0

    state, rows, _ = run(hunting_dags.kql_file_dag, {"file": INJECTION})
    assert (state, rows) == ("success", [])


# --------------------------------------------------------------------------------------------
# Throttling
# --------------------------------------------------------------------------------------------

PROCESSES = "DeviceProcessEvents\n| where Timestamp >= WindowStart and Timestamp < WindowEnd\n| project Timestamp, ReportId"
ROW_LIMIT_MESSAGE = 'Query result exceeds the 100,000-row limit. Use "summarize" to aggregate results.'


def test_deferrable_task_waits_out_a_long_429_and_resumes_without_duplicates(
    emulator: DefenderEmulator, tmp_path: Path
) -> None:
    truth = count(PROCESSES, MONTH)
    output = tmp_path / "processes.jsonl"
    # The whole window "hits the row limit", so it is split; the second half is then throttled
    # for longer than the worker waits (throttle_max_wait=1), so the task defers and resumes.
    emulator.inject_fault(path=HUNTING_ROUTE, status=400, code="BadRequest", message=ROW_LIMIT_MESSAGE)
    emulator.inject_fault(path=HUNTING_ROUTE, status=429, retry_after=3, after=1)

    state, manifest, _ = run(hunting_dags.deferrable_dag, {"query": PROCESSES, "output_path": str(output)})

    assert state == "success"
    assert hunting_calls(emulator) == {"400": 1, "429": 1, "200": 3}  # 3: the count, then two halves
    assert manifest["rows"] == truth
    assert [piece["rows"] for piece in manifest["pieces"]] == [
        count(PROCESSES, Window.from_dict(piece["window"])) for piece in manifest["pieces"]
    ]
    rows = [json.loads(line) for line in output.read_text().splitlines()]
    assert len(rows) == truth
    assert len({row["ReportId"] for row in rows}) == truth
    assert leftovers(tmp_path, output) == []


def test_a_long_429_fails_a_task_that_is_not_deferrable(
    emulator: DefenderEmulator, tmp_path: Path, task_errors: list[Any]
) -> None:
    emulator.inject_fault(path=HUNTING_ROUTE, status=429, retry_after=600)
    output = tmp_path / "processes.csv"
    state, _, _ = run(hunting_dags.no_split_dag, {"query": PROCESSES, "output_path": str(output)})
    assert state == "failed"
    log = failure(task_errors)
    assert log.startswith("MTPThrottledError: ")
    assert "deferrable mode" in log
    assert list(tmp_path.iterdir()) == []
