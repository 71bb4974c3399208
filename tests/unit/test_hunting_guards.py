"""The hunting operator's guards without a database: split validity, the deferral cap, output checks.

The fake hook of tests/unit/test_hunting_operator.py answers each hunt, so each test says exactly
what the service returns; the same guards against the emulator are in
tests/integration/test_hunting_operator_errors.py and tests/reliability/test_bad_input_hunting.py.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from airflow.sdk.exceptions import TaskDeferred

from airflow_provider_mtp import kql
from airflow_provider_mtp.errors import MTPConfigError, MTPThrottledError
from airflow_provider_mtp.hunting_plan import HuntProgress
from airflow_provider_mtp.operators.hunting import MAX_THROTTLE_DEFER_S, RunHuntingQueryOperator
from airflow_provider_mtp.outputs import OutputTarget
from tests.unit.test_hunting_operator import QUERY, by_window, context, operator

W = "T\n| where Timestamp >= WindowStart and Timestamp < WindowEnd\n"


# --------------------------------------------------------------------------------------------
# What makes rows depend on the whole window
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tail", "found"),
    [
        ("| take 100000", ["take (line 3)"]),
        ("| limit 5", ["limit (line 3)"]),
        ("| top 10 by FileSize", ["top (line 3)"]),
        ("| top-nested 3 of DeviceName by count()", ["top-nested (line 3)"]),
        ("| distinct DeviceName", ["distinct (line 3)"]),
        ("| count", ["count (line 3)"]),
        ("| sample 10", ["sample (line 3)"]),
        ("| sample-distinct 10 of DeviceName", ["sample-distinct (line 3)"]),
        ("| serialize", ["serialize (line 3)"]),
        ("| make-series n = count() on Timestamp step 1h", ["make-series (line 3)"]),
        ("| summarize count()", ["summarize without a by Timestamp or by bin(Timestamp, ...) (line 3)"]),
        (
            "| summarize count() by DeviceName",
            ["summarize without a by Timestamp or by bin(Timestamp, ...) (line 3)"],
        ),
        (
            "| summarize count() by bin(FileSize, 10)",
            ["summarize without a by Timestamp or by bin(Timestamp, ...) (line 3)"],
        ),
        ("| extend n = row_number()", ["row_number() (line 3)"]),
        ("| extend before = prev(FileName)", ["prev() (line 3)"]),
        (
            "| join kind=inner (U | where Timestamp >= WindowStart) on DeviceId",
            ["join not on Timestamp (line 3)"],
        ),
        ("| evaluate hint.distribution = per_node autocluster()", ["evaluate autocluster (line 3)"]),
        ("| order by Timestamp asc\n| take 5", ["take (line 4)"]),
    ],
)
def test_window_dependent_parts_are_found(tail: str, found: list[str]) -> None:
    assert kql.window_dependent_parts(W + tail) == found


@pytest.mark.parametrize(
    "tail",
    [
        "| project Timestamp, DeviceName",
        "| extend Size = FileSize * 2 | project-away FileSize | mv-expand Tags",
        "| summarize count() by bin(Timestamp, 1h), DeviceName",
        "| summarize count() by DeviceName, Timestamp",
        "| join kind=inner (U) on Timestamp, DeviceId",
        "| join (U) on $left.Timestamp == $right.Timestamp",
        "| evaluate bag_unpack(AdditionalFields)",
        "| order by Timestamp asc",
        '| where FileName == "| take 5" // | take 10\n| project FileName',
        "| where Value.next > 1 | where Text has 'top 10' | extend y = x.prev(1)",
    ],
)
def test_row_by_row_queries_pass(tail: str) -> None:
    assert kql.window_dependent_parts(W + tail) == []


def test_window_dependent_parts_inside_lets_and_unions_count() -> None:
    assert kql.window_dependent_parts("let n = toscalar(T | count);\n" + W) == [
        "toscalar() (line 1)",
        "count (line 1)",
    ]
    assert kql.window_dependent_parts("union (T | take 5), (U | where x)") == ["take (line 1)"]


# --------------------------------------------------------------------------------------------
# split_validity
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"split_validity": "trust_me"}, "split_validity must be one of 'checked', 'rows_independent'"),
        ({"max_throttle_deferrals": -1}, "max_throttle_deferrals must be a whole number of at least 0"),
        ({"max_throttle_deferrals": True}, "max_throttle_deferrals must be a whole number"),
        ({"max_throttle_deferrals": 2.5}, "max_throttle_deferrals must be a whole number"),
    ],
)
def test_bad_guard_arguments_fail_at_parse_time(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(MTPConfigError, match=message):
        RunHuntingQueryOperator(task_id="hunt", query=QUERY, **kwargs)


def test_split_on_limit_refuses_take_before_any_call() -> None:
    op, hook = operator(by_window(), query=QUERY + "\n| take 100000", split_on_limit=True)
    with pytest.raises(
        MTPConfigError, match=r"split_on_limit=True cannot split this query.*\(take \(line 2\)\)"
    ):
        op.execute(context())
    assert hook.calls == []


def test_split_validity_rows_independent_splits_unchecked() -> None:
    op, hook = operator(
        by_window(), query=QUERY + "\n| take 100000", split_on_limit=True, split_validity="rows_independent"
    )
    assert len(op.execute(context())) == 48
    assert len(hook.calls) == 1


def test_take_without_split_on_limit_is_not_checked() -> None:
    op, _ = operator(by_window(), query=QUERY + "\n| take 100000")
    assert len(op.execute(context())) == 48


# --------------------------------------------------------------------------------------------
# The deferral cap
# --------------------------------------------------------------------------------------------


def always_throttled(text: str, timespan: str | None) -> Any:
    return MTPThrottledError("quota", retry_after=120.0, status=429, code="TooManyRequests")


def test_throttling_defers_at_most_max_throttle_deferrals_times() -> None:
    op, _ = operator(always_throttled, deferrable=True, max_throttle_deferrals=3)
    with pytest.raises(TaskDeferred) as deferred:
        op.execute(context())
    for number in (2, 3):
        kwargs = json.loads(json.dumps(deferred.value.kwargs))
        assert HuntProgress.from_json(kwargs["progress"]).deferrals == number - 1
        with pytest.raises(TaskDeferred) as deferred:
            op.execute_complete(context(), event="2026-11-01T00:00:00Z", **kwargs)
    with pytest.raises(MTPThrottledError) as failed:
        op.execute_complete(context(), event="2026-11-01T00:00:00Z", **deferred.value.kwargs)
    message = str(failed.value)
    assert message.startswith(
        "Defender kept throttling the hunt: the task deferred 3 times (360 s in all), as many as "
        "max_throttle_deferrals=3 allows, and the service still asks to wait 120 s (quota)."
    )
    assert failed.value.retry_after == 120.0
    assert failed.value.status == 429


def test_a_far_off_retry_after_defers_for_an_hour_at_most() -> None:
    """A Retry-After decades ahead (a bad HTTP date, a clock gone wrong) must not park the task."""

    def far_off(text: str, timespan: str | None) -> Any:
        return MTPThrottledError("quota", retry_after=2_299_834_396.0, status=429, code="TooManyRequests")

    op, _ = operator(far_off, deferrable=True)
    before = datetime.now(UTC)
    with pytest.raises(TaskDeferred) as deferred:
        op.execute(context())
    moment = deferred.value.trigger.moment
    assert before + timedelta(seconds=MAX_THROTTLE_DEFER_S - 60) <= moment
    assert moment <= datetime.now(UTC) + timedelta(seconds=MAX_THROTTLE_DEFER_S)
    assert HuntProgress.from_json(deferred.value.kwargs["progress"]).deferred_s == MAX_THROTTLE_DEFER_S


def test_max_throttle_deferrals_zero_never_defers() -> None:
    op, hook = operator(always_throttled, deferrable=True, max_throttle_deferrals=0)
    with pytest.raises(MTPThrottledError, match=r"deferred 0 times \(0 s in all\)"):
        op.execute(context())
    assert len(hook.calls) == 1


def test_a_progress_record_without_deferred_seconds_still_resumes() -> None:
    """Records saved before ``deferred_s`` existed resume from 0 s."""
    op, _ = operator(always_throttled, deferrable=True)
    with pytest.raises(TaskDeferred) as deferred:
        op.execute(context())
    record = deferred.value.kwargs["progress"]
    del record["deferred_s"]
    assert HuntProgress.from_json(record).deferred_s == 0.0


# --------------------------------------------------------------------------------------------
# Output checks
# --------------------------------------------------------------------------------------------


def test_an_output_folder_made_while_the_hunt_ran_is_not_filled(tmp_path: Path) -> None:
    output = tmp_path / "hunt.jsonl"
    target = OutputTarget(str(output))
    target.check()
    part = target.part("t", 0)
    target.write_part(part, [{"name": "a", "type": "Int64"}], [{"a": 1}])
    output.mkdir()
    with pytest.raises(MTPConfigError, match="is an existing folder"):
        target.publish([part], [{"name": "a", "type": "Int64"}], "t")
    assert list(output.iterdir()) == []


def test_a_folder_that_cannot_be_made_at_write_time_names_output_path(tmp_path: Path) -> None:
    output = tmp_path / "out" / "hunt.jsonl"
    target = OutputTarget(str(output))
    (tmp_path / "out").write_text("a file where the folder should be")
    with pytest.raises(MTPConfigError, match=r"output_path '.*hunt\.jsonl': its folder .* cannot be created"):
        target.write_part(target.part("t", 0), [{"name": "a", "type": "Int64"}], [])
