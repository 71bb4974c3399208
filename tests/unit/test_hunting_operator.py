"""RunHuntingQueryOperator without a database: arguments, templates, splitting, deferral, outputs.

The hook is a fake that answers from a list of rows, so each test says exactly what the service
returns. The real service is in tests/integration/test_hunting_operator.py.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import fsspec
import pendulum
import pytest
from airflow.sdk import DAG, ObjectStoragePath
from airflow.sdk.exceptions import AirflowException, TaskDeferred

from airflow_provider_mtp import outputs
from airflow_provider_mtp.api.models import HuntingResult
from airflow_provider_mtp.clouds import get_cloud
from airflow_provider_mtp.errors import MTPConfigError, MTPError, MTPLimitExceededError, MTPThrottledError
from airflow_provider_mtp.hunting_plan import HuntProgress
from airflow_provider_mtp.operators import hunting
from airflow_provider_mtp.operators.hunting import RunHuntingQueryOperator
from airflow_provider_mtp.windows import Window

START = datetime(2026, 11, 1, tzinfo=UTC)
END = datetime(2026, 11, 3, tzinfo=UTC)
SCHEMA = [{"name": "Timestamp", "type": "DateTime"}, {"name": "Id", "type": "Int64"}]
QUERY = "T | where Timestamp >= WindowStart and Timestamp < WindowEnd"
TENANT = "11111111-2222-3333-4444-555555555555"

Answer = Callable[[str, str | None], Any]

#: The row limit in these tests (the real one is 100,000): 48 hours at PER_HOUR rows an hour are
#: 2,400 rows, halves 1,200 (over), quarters 600 (fit).
LIMIT = 1000
PER_HOUR = 50


@pytest.fixture(autouse=True)
def small_row_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hunting, "HUNTING_ROW_LIMIT", LIMIT)


def rows_between(start: datetime, end: datetime, per_hour: int = 1) -> list[dict[str, Any]]:
    """``per_hour`` rows an hour in ``[start, end)``, ids counting the hours since START."""
    rows = []
    hour = start
    while hour < end:
        for n in range(per_hour):
            index = int((hour - START).total_seconds() // 3600) * per_hour + n
            rows.append({"Timestamp": hour.strftime("%Y-%m-%dT%H:%M:%S.0000000Z"), "Id": index})
        hour += timedelta(hours=1)
    return rows


def window_of(text: str) -> Window:
    start, end = (
        datetime.fromisoformat(line.split("datetime(")[1].rstrip(");"))
        for line in text.splitlines()
        if line.startswith(("let WindowStart", "let WindowEnd"))
    )
    return Window(start, end)


class FakeHook:
    """Answers each hunt with ``answer(text, timespan)``: a list of rows or an exception."""

    def __init__(self, answer: Answer, *, api: str = "graph") -> None:
        self.answer = answer
        # What the operator reads of the connection: the back end, and the portal link's cloud and tenant.
        self.settings = SimpleNamespace(api=api, cloud=get_cloud("global"), tenant_id=TENANT)
        self.calls: list[tuple[str, str | None]] = []
        self.closed = 0

    def close(self) -> None:
        self.closed += 1

    def run_hunting_query(self, query: str, *, timespan: str | None = None) -> HuntingResult:
        self.calls.append((query, timespan))
        outcome = self.answer(query, timespan)
        if isinstance(outcome, BaseException):
            raise outcome
        return HuntingResult.from_rows(schema=SCHEMA, rows=iter(outcome))


def operator(answer: Answer, **kwargs: Any) -> tuple[RunHuntingQueryOperator, FakeHook]:
    op = RunHuntingQueryOperator(task_id="hunt", query=kwargs.pop("query", QUERY), **kwargs)
    hook = FakeHook(answer, api=kwargs.get("api") or "graph")
    op.__dict__["hook"] = hook  # the cached_property, filled in
    return op, hook


class FakeTaskInstance(SimpleNamespace):
    """The context's task instance: its identity, and the XComs the task pushes (the portal link)."""

    def __init__(self) -> None:
        super().__init__(dag_id="d", task_id="hunt", run_id="r1", map_index=-1, xcoms={})

    def xcom_push(self, key: str, value: Any) -> None:
        self.xcoms[key] = value


def context(**extra: Any) -> dict[str, Any]:
    return {
        "data_interval_start": pendulum.instance(START),
        "data_interval_end": pendulum.instance(END),
        "logical_date": pendulum.instance(START),
        "ti": FakeTaskInstance(),
        **extra,
    }


def by_window(per_hour: int = 1) -> Answer:
    def answer(text: str, timespan: str | None) -> list[dict[str, Any]]:
        window = window_of(text)
        return rows_between(window.start, window.end, per_hour)

    return answer


# --------------------------------------------------------------------------------------------
# Arguments and templates
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"max_xcom_rows": -1}, "max_xcom_rows"),
        ({"max_splits": True}, "max_splits"),
        ({"parameter_types": {"n": "varchar"}}, "Unknown KQL parameter type"),
        ({"parameter_types": {"WindowStart": "datetime"}}, "reserved"),
        ({"output_format": "xlsx"}, "not one of jsonl, csv, parquet"),
        ({"lookback": 3600}, "lookback must be a timedelta"),
    ],
)
def test_bad_arguments_fail_at_parse_time(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(MTPConfigError, match=message):
        RunHuntingQueryOperator(task_id="hunt", query=QUERY, **kwargs)


def test_templated_fields() -> None:
    assert RunHuntingQueryOperator.template_fields == (
        "query",
        "start",
        "end",
        "query_parameters",
        "output_path",
        "mtp_conn_id",
    )
    assert RunHuntingQueryOperator.template_ext == (".kql",)


def test_the_kql_filters_work_in_the_operators_templates() -> None:
    with DAG("filters", schedule=None):
        op = RunHuntingQueryOperator(
            task_id="hunt",
            query="T | where DeviceName == {{ params.device | kql_string }} and Ids in ({{ ids | kql_list('long') }})",
        )
    op.render_template_fields({"params": {"device": 'x" | union * //'}, "ids": ["1", "2"]})
    assert op.query == 'T | where DeviceName == "x\\" | union * //" and Ids in (dynamic([1, 2]))'


def test_a_dags_own_filter_of_the_same_name_wins() -> None:
    with DAG("own_filters", schedule=None, user_defined_filters={"kql_string": lambda value: "OWN"}):
        op = RunHuntingQueryOperator(task_id="hunt", query="{{ 'x' | kql_string }} {{ 'y' | kql_datetime }}")
    with pytest.raises(MTPConfigError, match="kql_datetime filter"):
        op.render_template_fields({})
    op.query = "{{ 'x' | kql_string }}"
    op.render_template_fields({})
    assert op.query == "OWN"


# --------------------------------------------------------------------------------------------
# The question asked
# --------------------------------------------------------------------------------------------


def test_parameters_and_window_are_bound_before_the_query() -> None:
    op, hook = operator(
        by_window(),
        query_parameters={"device": 'x" | union * | take 1 //', "n": "5"},
        parameter_types={"n": "long"},
    )
    op.execute(context())
    ((text, timespan),) = hook.calls
    assert text == (
        'let device = "x\\" | union * | take 1 //";\n'
        "let n = long(5);\n"
        "let WindowStart = datetime(2026-11-01T00:00:00.0000000Z);\n"
        "let WindowEnd = datetime(2026-11-03T00:00:00.0000000Z);\n" + QUERY
    )
    assert timespan == "2026-11-01T00:00:00.0000000Z/2026-11-03T00:00:00.0000000Z"


def test_the_task_closes_its_hook_when_the_hunt_ends() -> None:
    op, hook = operator(by_window())
    op.execute(context())
    assert hook.closed == 1
    failing, failing_hook = operator(lambda text, timespan: MTPConfigError("no"))
    with pytest.raises(MTPConfigError):
        failing.execute(context())
    assert failing_hook.closed == 1


def test_the_legacy_api_gets_no_timespan() -> None:
    op, hook = operator(by_window(), api="legacy")
    op.execute(context())
    assert hook.calls[0][1] is None


def test_a_query_ignoring_the_window_gets_a_warning_in_the_task_log(
    capsys: pytest.CaptureFixture[str],
) -> None:
    op, _ = operator(lambda text, timespan: [], query="DeviceInfo | take 1")
    op.execute(context())
    out = capsys.readouterr().out
    assert "The query never uses WindowStart or WindowEnd" in out
    assert f"[{op.log.name}]" in out  # the task's own logger, which Airflow routes to the task log


@pytest.mark.parametrize(
    ("kwargs", "ctx", "message"),
    [
        ({"query": "let WindowStart = ago(1d); T"}, {}, "binds WindowStart itself"),
        ({}, {"data_interval_start": None, "data_interval_end": None}, "this run has no window"),
        ({"query": "T", "split_on_limit": True}, {}, "never uses WindowStart or WindowEnd"),
        (
            {"query": "T", "split_on_limit": True},
            {"data_interval_start": None, "data_interval_end": None},
            "split_on_limit needs a window",
        ),
        ({"query": "  "}, {}, "query is empty"),
        (
            {"start": "2026-11-02T00:00:00Z", "end": "2026-11-01T00:00:00Z"},
            {},
            "Cannot tell the hunting window",
        ),
    ],
)
def test_refused_before_any_call(kwargs: dict[str, Any], ctx: dict[str, Any], message: str) -> None:
    op, hook = operator(by_window(), **kwargs)
    with pytest.raises(MTPConfigError, match=message):
        op.execute(context(**ctx))
    assert hook.calls == []


# --------------------------------------------------------------------------------------------
# XCom and the row limit
# --------------------------------------------------------------------------------------------


def test_rows_to_xcom_and_the_limit() -> None:
    op, _ = operator(by_window(), max_xcom_rows=48)
    assert len(op.execute(context())) == 48
    op, _ = operator(by_window(), max_xcom_rows=47)
    with pytest.raises(MTPError, match=r"more than max_xcom_rows=47 rows.*Set output_path"):
        op.execute(context())


def test_never_holds_more_than_max_xcom_rows_plus_one() -> None:
    handed_out = 0

    def endless(text: str, timespan: str | None) -> Iterator[dict[str, Any]]:
        nonlocal handed_out
        while True:
            handed_out += 1
            yield {"Timestamp": "2026-11-01T00:00:00Z", "Id": handed_out}

    op, _ = operator(endless, max_xcom_rows=10)
    with pytest.raises(MTPError, match="max_xcom_rows"):
        op.execute(context())
    assert handed_out == 11


def limited(per_hour: int, limit_error: bool) -> Answer:
    """The service over a window: truncated at the row limit, or an error past it."""

    def answer(text: str, timespan: str | None) -> Any:
        window = window_of(text)
        rows = rows_between(window.start, window.end, per_hour)
        if len(rows) > LIMIT:
            if limit_error:
                return MTPLimitExceededError("Query result exceeds the row limit", limit="rows")
            return rows[:LIMIT]
        return rows

    return answer


@pytest.mark.parametrize("limit_error", [False, True])
def test_split_on_limit_bisects_until_pieces_fit(tmp_path: Path, limit_error: bool) -> None:
    output = tmp_path / "out.jsonl"
    op, hook = operator(limited(PER_HOUR, limit_error), output_path=str(output), split_on_limit=True)
    manifest = op.execute(context())
    assert manifest["rows"] == 2400
    assert [piece["rows"] for piece in manifest["pieces"]] == [600] * 4
    windows = [Window.from_dict(piece["window"]) for piece in manifest["pieces"]]
    assert windows[0].start == START
    assert windows[-1].end == END
    assert all(a.end == b.start for a, b in itertools.pairwise(windows))
    assert len(hook.calls) == 7  # 1 whole + 2 halves + 4 quarters
    ids = [json.loads(line)["Id"] for line in output.read_text().splitlines()]
    assert ids == list(range(2400))
    assert list(tmp_path.iterdir()) == [output]


def test_split_stops_at_max_splits() -> None:
    op, _ = operator(limited(PER_HOUR, True), split_on_limit=True, max_splits=1, max_xcom_rows=10**6)
    with pytest.raises(MTPLimitExceededError, match=r"after 1 split\(s\) \(max_splits=1\)"):
        op.execute(context())


@pytest.mark.parametrize("limit_error", [False, True])
def test_without_split_the_limit_is_named(limit_error: bool) -> None:
    op, _ = operator(limited(PER_HOUR, limit_error), max_xcom_rows=10**6)
    with pytest.raises(
        MTPLimitExceededError, match=r"row limit \(100,000 rows\).*split_on_limit=True"
    ) as caught:
        op.execute(context())
    assert caught.value.limit == "rows"


# --------------------------------------------------------------------------------------------
# Deferral on throttling
# --------------------------------------------------------------------------------------------


def throttled_once(after: int) -> tuple[Answer, list[int]]:
    """Answers by window, except call number ``after + 1``, which is throttled for 120 s."""
    calls = [0]

    def answer(text: str, timespan: str | None) -> Any:
        calls[0] += 1
        if calls[0] == after + 1:
            return MTPThrottledError("quota", retry_after=120.0)
        return limited(PER_HOUR, True)(text, timespan)

    return answer, calls


def test_defers_on_a_long_429_and_resumes_from_the_kwargs(tmp_path: Path) -> None:
    output = tmp_path / "out.csv"
    # Whole window and first half over the limit, first quarter fine, second quarter throttled.
    answer, calls = throttled_once(after=3)
    op, _ = operator(answer, output_path=str(output), split_on_limit=True, deferrable=True)
    with pytest.raises(TaskDeferred) as deferred:
        op.execute(context())
    trigger = deferred.value.trigger
    assert type(trigger).__name__ == "DateTimeTrigger"
    assert timedelta(seconds=100) < trigger.moment - datetime.now(UTC) <= timedelta(seconds=121)
    assert deferred.value.method_name == "execute_complete"
    kwargs = json.loads(json.dumps(deferred.value.kwargs))  # plain JSON
    progress = HuntProgress.from_json(kwargs["progress"])
    assert [piece.rows for piece in progress.done] == [600]
    assert [piece.depth for piece in progress.pending] == [2, 1]

    # A fresh operator (another worker) resumes from the kwargs alone.
    op, hook = operator(answer, output_path=str(output), split_on_limit=True, deferrable=True)
    manifest = op.execute_complete(context(), event=trigger.moment, **kwargs)
    assert calls[0] == 8
    assert len(hook.calls) == 4  # second quarter again, second half (over), its two quarters
    assert manifest["rows"] == 2400
    lines = output.read_text().splitlines()
    assert lines[0] == "Timestamp,Id"
    assert [int(line.split(",")[1]) for line in lines[1:]] == list(range(2400))
    assert list(tmp_path.iterdir()) == [output]


def test_rows_for_xcom_travel_in_the_deferral() -> None:
    answer, _ = throttled_once(after=3)
    op, _ = operator(answer, split_on_limit=True, deferrable=True, max_xcom_rows=3000)
    with pytest.raises(TaskDeferred) as deferred:
        op.execute(context())
    op, _ = operator(answer, split_on_limit=True, deferrable=True, max_xcom_rows=3000)
    rows = op.execute_complete(context(), event="2026-11-01T00:00:00Z", **deferred.value.kwargs)
    assert [row["Id"] for row in rows] == list(range(2400))


def test_a_long_429_fails_without_deferrable() -> None:
    answer, _ = throttled_once(after=0)
    op, _ = operator(answer)
    with pytest.raises(MTPThrottledError):
        op.execute(context())


@pytest.mark.parametrize(
    ("event", "progress", "message"),
    [
        (None, {}, "without a trigger event"),
        ({"status": "error", "message": "boom"}, {}, "failed: boom"),
        (42, {}, "unexpected event"),
        ("2026-11-01T00:00:00Z", {"version": 99}, "Cannot resume the hunt"),
        ("2026-11-01T00:00:00Z", "garbage", "Cannot resume the hunt"),
    ],
)
def test_execute_complete_validates_the_event(event: Any, progress: Any, message: str) -> None:
    op, _ = operator(by_window())
    with pytest.raises(AirflowException, match=message):
        op.execute_complete(context(), event=event, progress=progress)


def test_execute_complete_without_progress_runs_the_hunt_again() -> None:
    op, hook = operator(by_window())
    assert len(op.execute_complete(context(), event="2026-11-01T00:00:00Z")) == 48
    assert len(hook.calls) == 1


# --------------------------------------------------------------------------------------------
# Outputs
# --------------------------------------------------------------------------------------------

TYPED_SCHEMA = [
    {"name": "When", "type": "DateTime"},
    {"name": "Big", "type": "Int64"},
    {"name": "Small", "type": "Int32"},
    {"name": "Real", "type": "Double"},
    {"name": "Flag", "type": "Boolean"},
    {"name": "Text", "type": "String"},
    {"name": "Span", "type": "TimeSpan"},
    {"name": "Bag", "type": "Object"},
    {"name": "Id", "type": "Guid"},
]
TYPED_ROWS = [
    {
        "When": "2026-11-01T00:00:00.1234567Z",
        "Big": 2**62,
        "Small": -5,
        "Real": 0.1,
        "Flag": True,
        "Text": 'a,"b"\nc',
        "Span": "1.02:03:04.5000000",
        "Bag": {"k": [1, "x"]},
        "Id": "0b3e6a3c-0000-4000-8000-000000000001",
    },
    {
        "When": None,
        "Big": None,
        "Small": None,
        "Real": "NaN",
        "Flag": None,
        "Text": "",
        "Span": None,
        "Bag": None,
        "Id": None,
    },
    {
        "When": "2026-11-01T00:00:01Z",
        "Big": 1,
        "Small": 2,
        "Real": "-Infinity",
        "Flag": False,
        "Text": "é",
        "Span": "00:00:01",
        "Bag": [],
        "Id": None,
    },
]


@pytest.mark.parametrize("fmt", ["jsonl", "csv", "parquet"])
@pytest.mark.parametrize("store", ["local", "memory"])
def test_parts_concatenate_into_one_file(tmp_path: Path, fmt: str, store: str) -> None:
    if store == "memory":
        from airflow.sdk.io import attach

        attach("memory", fs=fsspec.filesystem("memory"))
        uri = f"memory://bucket/{tmp_path.name}/out.{fmt}"
    else:
        uri = str(tmp_path / "deep" / f"out.{fmt}")
    target = outputs.OutputTarget(uri)
    parts = [target.part("tok", n) for n in range(3)]
    for part, row in zip(parts, TYPED_ROWS, strict=True):
        assert target.write_part(part, TYPED_SCHEMA, [row]) == 1
    target.publish(parts, TYPED_SCHEMA, "tok")
    target.clean("tok")
    final = ObjectStoragePath(uri)
    assert not target.parts_root().exists()
    assert [path.name for path in final.parent.iterdir()] == [final.name]
    single = outputs.OutputTarget(uri.replace(f"out.{fmt}", f"one.{fmt}"))
    single.write_part(single.part("t2", 0), TYPED_SCHEMA, TYPED_ROWS)
    single.publish([single.part("t2", 0)], TYPED_SCHEMA, "t2")
    assert final.read_bytes() == ObjectStoragePath(single.uri).read_bytes() or fmt == "parquet"
    _check_typed(final, fmt)


def _check_typed(path: ObjectStoragePath, fmt: str) -> None:
    if fmt == "jsonl":
        assert [json.loads(line) for line in path.read_text().splitlines()] == TYPED_ROWS
        return
    if fmt == "csv":
        text = path.read_bytes().decode()
        assert text.splitlines()[0] == "When,Big,Small,Real,Flag,Text,Span,Bag,Id"
        assert (
            '2026-11-01T00:00:00.1234567Z,4611686018427387904,-5,0.1,true,"a,""b""\nc",1.02:03:04.5000000,'
            in text
        )
        assert '"{""k"":[1,""x""]}"' in text
        assert "\r\n,,,NaN,,,,,\r\n" in text
        return
    import pyarrow.parquet as pq

    with path.open("rb") as stream:
        table = pq.read_table(stream)
    assert [str(field.type) for field in table.schema] == [
        "timestamp[us, tz=UTC]",
        "int64",
        "int32",
        "double",
        "bool",
        "string",
        "string",
        "string",
        "string",
    ]
    first, second, third = table.to_pylist()
    assert first["When"] == datetime(2026, 11, 1, 0, 0, 0, 123456, tzinfo=UTC)
    assert first["Big"] == 2**62
    assert first["Bag"] == '{"k":[1,"x"]}'
    assert second["When"] is None
    assert second["Real"] != second["Real"]  # NaN
    assert third["Real"] == float("-inf")
    assert third["Bag"] == "[]"


def test_output_format_by_extension() -> None:
    assert outputs.output_format("s3://b/x.ndjson") == "jsonl"
    assert outputs.output_format("/x/y.CSV") == "csv"
    assert outputs.output_format("/x/y.bin", "parquet") == "parquet"
    with pytest.raises(MTPConfigError, match="Cannot tell the output format"):
        outputs.output_format("/x/y.txt")


def test_relative_local_paths_are_refused() -> None:
    with pytest.raises(MTPConfigError, match="is relative"):
        outputs.OutputTarget("hunts/out.jsonl")


def test_a_failed_task_leaves_no_files(tmp_path: Path) -> None:
    output = tmp_path / "out.parquet"
    calls = [0]

    def answer(text: str, timespan: str | None) -> Any:
        calls[0] += 1
        if calls[0] == 3:
            return MTPError("the service broke")
        return limited(PER_HOUR, True)(text, timespan)

    op, _ = operator(answer, output_path=str(output), split_on_limit=True)
    with pytest.raises(MTPError, match="the service broke"):
        op.execute(context())
    assert list(tmp_path.iterdir()) == []
