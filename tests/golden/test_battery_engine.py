"""The golden battery against the hunting engine itself (no HTTP): kql-subset.md section 4.

(a) an independent oracle for a set of queries, (b) E1-E4 fail well, (c) every answer equals the
committed snapshot, (d) the bare-``=`` guard, (e) row limit, size cap, timeout, Timespan forms and
determinism; plus the ``make_list``/``make_set`` cap and the value formats.
"""

from __future__ import annotations

import json
import re
import threading
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import duckdb
import duckdb_kql
import pytest

from airflow_provider_mtp.emulator.config import Clock
from airflow_provider_mtp.emulator.hunting import (
    HuntingEngine,
    HuntingError,
    format_datetime,
    format_timespan,
    hunting_window,
    parse_timespan,
)
from tests.golden import oracle, snapshot
from tests.golden.battery import BY_ID, ERRORS, QUERIES, BatteryQuery
from tests.golden.fixture import (
    NOW,
    SIZES,
    Tables,
    build_fixture,
    fixture_engine,
    load_fixture,
    parse_timestamp,
)

#: A cross join of 10^10 rows: DuckDB takes far longer than any timeout below to count it.
HEAVY = (
    "range x from 1 to 100000 step 1 | extend k = 1"
    " | join kind=inner (range y from 1 to 100000 step 1 | extend k = 1) on k"
)


@pytest.fixture(scope="module")
def data() -> Tables:
    return build_fixture()


@pytest.fixture(scope="module")
def engine() -> HuntingEngine:
    return fixture_engine()


@pytest.fixture(scope="module")
def committed(engine: HuntingEngine, data: Tables) -> dict[str, Any]:
    if snapshot.update_requested():
        snapshot.rewrite(snapshot.generate(snapshot.engine_runner(engine), data))
    return snapshot.load()


def _multiset(rows: list[dict[str, Any]], set_columns: tuple[str, ...] = ()) -> Counter[str]:
    return Counter(snapshot.canonical_row(row, set_columns) for row in rows)


def _count(engine: HuntingEngine, kql: str, **options: Any) -> int:
    rows = engine.run(kql, **options).rows
    return int(rows[0]["Count"])


# --------------------------------------------------------------------------------------------
# (a) the oracle
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("query_id", sorted(oracle.ORACLES))
def test_engine_agrees_with_oracle(engine: HuntingEngine, data: Tables, query_id: str) -> None:
    query = BY_ID[query_id]
    columns, expected = oracle.ORACLES[query_id](data)
    output = engine.run(query.text)
    assert [name for name, _ in output.schema] == columns
    set_columns = ("Subjects",) if query_id == "Q34" else ()
    if query.compare == "ordered":
        got = [snapshot.canonical_row(row, set_columns) for row in output.rows]
        assert got == [snapshot.canonical_row(row, set_columns) for row in expected]
    else:
        assert _multiset(output.rows, set_columns) == _multiset(expected, set_columns)


def test_q03_keeps_whole_terms_only(engine: HuntingEngine, data: Tables) -> None:
    rows = engine.run(BY_ID["Q03"].text).rows
    lines = {row["ProcessCommandLine"] for row in rows}
    near_misses = [
        row for row in data["DeviceProcessEvents"] if "-NotEncodedCommand" in row["ProcessCommandLine"]
    ]
    assert near_misses, "the fixture lost its -NotEncodedCommand trap"
    assert not any("NotEncodedCommand" in line for line in lines)
    assert any("encodedcommand" in line and "EncodedCommand" not in line for line in lines), (
        "has ignores case"
    )
    # The same rows do match `contains`, which is the point of the trap.
    contains = engine.run(
        'DeviceProcessEvents | where FileName == "powershell.exe" and ProcessCommandLine contains "EncodedCommand" | count'
    ).rows[0]["Count"]
    assert contains == len(rows) + len(near_misses)


def test_q04_contains_ignores_case(engine: HuntingEngine) -> None:
    urls = {row["RemoteUrl"] for row in engine.run(BY_ID["Q04"].text).rows}
    assert urls == {"evil.example.com", "cdn.EVIL-corp.net", "login.devil-update.com"}


def test_q06_groups_each_spelling(engine: HuntingEngine) -> None:
    names = {row["AccountName"] for row in engine.run(BY_ID["Q06"].text).rows}
    assert names == {"Administrator", "ADMINISTRATOR", "administrator"}


def test_q08_keeps_invoices_attached(engine: HuntingEngine) -> None:
    subjects = {row["Subject"] for row in engine.run(BY_ID["Q08"].text).rows}
    assert "Invoices attached" in subjects
    assert "Invoicing system maintenance" in subjects
    assert not subjects & {"Invoice #4471 overdue", "Your INVOICE is ready", "invoice-2026-11"}


def test_q16_joins_four_devices(engine: HuntingEngine) -> None:
    rows = engine.run(BY_ID["Q16"].text).rows
    assert sorted(row["DeviceName"] for row in rows) == ["srv-dc-01", "ws-dev-02", "ws-fin-01", "ws-hr-01"]


def test_q17_default_join_is_innerunique(engine: HuntingEngine, data: Tables) -> None:
    unique = {row["Severity"]: row["Evidence"] for row in engine.run(BY_ID["Q17"].text).rows}
    inner_query = BY_ID["Q17"].text.replace("| join AlertEvidence", "| join kind=inner AlertEvidence")
    inner = {row["Severity"]: row["Evidence"] for row in engine.run(inner_query).rows}
    _, expected_inner = oracle.q17(data, kind="inner")
    assert inner == {row["Severity"]: row["Evidence"] for row in expected_inner}
    assert sum(inner.values()) > sum(unique.values()), "the duplicated AlertIds no longer make a difference"


def test_q21_orders_ties_by_name(engine: HuntingEngine) -> None:
    rows = engine.run(BY_ID["Q21"].text).rows
    assert rows == sorted(rows, key=lambda row: (-row["Failures"], row["AccountName"]))
    assert len({row["Failures"] for row in rows}) < len(rows), "no tie left to order"


def test_q27_counts_failed_logons(engine: HuntingEngine, data: Tables) -> None:
    expected = sum(1 for row in data["DeviceLogonEvents"] if row["ActionType"] == "LogonFailed")
    assert engine.run(BY_ID["Q27"].text).rows == [{"Count": expected}]


# --------------------------------------------------------------------------------------------
# (b) E1-E4
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", ERRORS, ids=[case.id for case in ERRORS])
def test_error_queries_fail_and_say_why(engine: HuntingEngine, case: Any) -> None:
    with pytest.raises(HuntingError) as caught:
        engine.run(case.text)
    error = caught.value
    assert (error.status, error.code) == (400, "BadRequest")
    assert case.mentions in error.message
    # Nothing of the generated SQL or DuckDB's wording leaks.
    assert not re.search(r"Binder|Catalog|CTE|SELECT|duckdb|\.py", error.message, re.IGNORECASE)


def test_error_messages(engine: HuntingEngine) -> None:
    messages = {}
    for case in ERRORS:
        with pytest.raises(HuntingError) as caught:
            engine.run(case.text)
        messages[case.id] = (caught.value.kind, caught.value.message)
    assert messages["E1"][0] == "syntax"
    assert "line 1, column 38" in messages["E1"][1]
    assert messages["E2"] == (
        "semantic",
        "'where' operator: Failed to resolve scalar expression named 'FileNam'",
    )
    assert messages["E3"] == (
        "semantic",
        "Failed to resolve table expression named 'DeviceProcessEvent'. Did you mean 'DeviceProcessEvents'?",
    )
    # Kusto's wording for a function it does not know (the engine's 'function:nosuchfn' is its parser's).
    assert messages["E4"] == (
        "semantic",
        "'extend' operator: Failed to resolve scalar expression named 'nosuchfn' at line 1, column 34",
    )


def test_syntax_error_keeps_position(engine: HuntingEngine) -> None:
    with pytest.raises(HuntingError) as caught:
        engine.run("DeviceProcessEvents\n| where | take 5")
    assert caught.value.kind == "syntax"
    # ANTLR gives up on the whole `| where` operator, so it points at its pipe.
    assert caught.value.message.startswith(
        "Query could not be parsed at line 2, column 1: mismatched input '|'"
    )
    assert caught.value.message.endswith("(A recognition error occurred.)")


@pytest.mark.parametrize(
    ("kql", "kind", "mentions"),
    [
        (
            "DeviceProcessEvents | project FileNam",
            "semantic",
            "'project' operator: Failed to resolve scalar expression named 'FileNam'",
        ),
        ("DeviceProcessEvents | summarize count() by Devic", "semantic", "named 'Devic'"),
        (
            "DeviceProcessEvents | join (DeviceLogonEvent) on DeviceId",
            "semantic",
            "Did you mean 'DeviceLogonEvents'?",
        ),
        ("DeviceProcessEvents | where FileName =~ 1", "semantic", "arguments of types"),
        ('DeviceProcessEvents | where ReportId == "abc"', "semantic", "cannot be converted"),
        ('DeviceProcessEvents | where FileName matches regex "["', "semantic", "invalid argument"),
        (".show tables", "syntax", "control commands"),
        (".set-or-replace X <| DeviceProcessEvents", "syntax", "control commands"),
        ('database("store").DeviceProcessEvents | count', "unsupported", "database()"),
        (
            "DeviceProcessEvents | evaluate autocluster()",
            "unsupported",
            "'evaluate autocluster' at line 1, column 23 is valid KQL that this emulator does not run",
        ),
    ],
)
def test_other_failures_are_reworded(engine: HuntingEngine, kql: str, kind: str, mentions: str) -> None:
    with pytest.raises(HuntingError) as caught:
        engine.run(kql)
    assert (caught.value.status, caught.value.kind) == (400, kind)
    assert mentions in caught.value.message


@pytest.mark.parametrize(
    "kql",
    ["duckdb_tables | take 1", "sqlite_master | take 1", "pragma_database_list", "duckdb_views | count"],
)
def test_database_internals_are_not_tables(engine: HuntingEngine, kql: str) -> None:
    with pytest.raises(HuntingError) as caught:
        engine.run(kql)
    assert caught.value.kind == "semantic"
    assert caught.value.message.startswith("Failed to resolve table expression named")


def test_let_may_shadow_any_name(engine: HuntingEngine) -> None:
    kql = "let duckdb_tables = DeviceProcessEvents | take 3; duckdb_tables | count"
    assert engine.run(kql).rows == [{"Count": 3}]


def test_engine_waits_for_tables() -> None:
    con = duckdb_kql.connect()
    early = HuntingEngine(con, clock=Clock(NOW))
    with pytest.raises(HuntingError) as caught:
        early.run("DeviceProcessEvents | count")
    assert caught.value.kind == "semantic"
    load_fixture(con)
    assert _count(early, "DeviceProcessEvents | count") == SIZES["DeviceProcessEvents"]
    early.refresh()
    assert _count(early, "DeviceLogonEvents | count") == SIZES["DeviceLogonEvents"]


def test_unexpected_engine_failure_is_a_500(engine: HuntingEngine, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: Any) -> Any:
        raise duckdb.InternalException("INTERNAL Error: SELECT secret FROM _s0")

    monkeypatch.setattr(HuntingEngine, "_columns", broken)
    with pytest.raises(HuntingError) as caught:
        engine.run("DeviceProcessEvents | count")
    assert (caught.value.status, caught.value.code, caught.value.kind) == (
        500,
        "InternalServerError",
        "internal",
    )
    assert caught.value.message == (
        "An unexpected error occurred during query execution. Please try again in a few minutes."
    )


def test_translator_crash_is_a_500(engine: HuntingEngine, monkeypatch: pytest.MonkeyPatch) -> None:
    def crash(*args: Any, **kwargs: Any) -> Any:
        raise RecursionError("deep")

    monkeypatch.setattr(duckdb_kql, "to_sql", crash)
    with pytest.raises(HuntingError) as caught:
        engine.run("DeviceProcessEvents | where ReportId == 424242 | count")
    assert caught.value.status == 500


# --------------------------------------------------------------------------------------------
# (c) the snapshot
# --------------------------------------------------------------------------------------------


def test_snapshot_is_of_this_fixture(committed: dict[str, Any], data: Tables) -> None:
    assert committed["fixture"] == snapshot.fixture_identity(data), (
        "the fixture changed: regenerate with `python -m tests.golden.snapshot --update` and review the diff"
    )
    assert set(committed["queries"]) == {query.id for query in QUERIES}


@pytest.mark.parametrize("query", QUERIES, ids=[query.id for query in QUERIES])
def test_answer_matches_snapshot(
    engine: HuntingEngine, committed: dict[str, Any], query: BatteryQuery
) -> None:
    output = engine.run(query.text)
    assert snapshot.compare(query, output.schema, output.rows, committed["queries"][query.id]) == []


@pytest.mark.parametrize(
    ("query_id", "table", "dropped"),
    [("Q01", "DeviceProcessEvents", ()), ("Q10", "AlertInfo", ("DetectionSource", "AttackTechniques"))],
)
def test_take_returns_rows_of_the_table(
    engine: HuntingEngine, data: Tables, query_id: str, table: str, dropped: tuple[str, ...]
) -> None:
    source = [{key: value for key, value in row.items() if key not in dropped} for row in data[table]]
    for row in engine.run(BY_ID[query_id].text).rows:
        assert {key: row[key] for key in source[0]} in source
        assert all(value is None for key, value in row.items() if key not in source[0])


# --------------------------------------------------------------------------------------------
# (d) the bare-`=` guard
# --------------------------------------------------------------------------------------------

LEGAL_EQUALS = [
    "DeviceProcessEvents | extend x = 1 | take 1",
    "DeviceProcessEvents | summarize c = count()",
    "DeviceProcessEvents | project a = FileName | take 1",
    "let n = 5; DeviceProcessEvents | where ReportId > n | count",
    "let T = DeviceProcessEvents | where FileName == 'cmd.exe'; T | count",
    "DeviceProcessEvents | join kind=inner (DeviceLogonEvents) on DeviceId | take 1",
    "union withsource=T DeviceProcessEvents, DeviceLogonEvents | take 1",
    'DeviceProcessEvents | where FileName == "a=b"',
    "DeviceProcessEvents | where FileName == 'a=b'",
    'DeviceProcessEvents | where FileName has @"x=y"',
    'DeviceProcessEvents | where ProcessCommandLine has "x\\"=y"',
    "DeviceProcessEvents | where FileName != ProcessCommandLine",
    "DeviceProcessEvents | where ReportId >= 1",
    "DeviceProcessEvents | where ReportId <= 1",
    'DeviceProcessEvents | where FileName =~ "CMD.EXE"',
    'DeviceProcessEvents | where FileName !~ "cmd.exe"',
    "DeviceProcessEvents | where ReportId in ((DeviceProcessEvents | extend y = 1 | project ReportId))",
    "DeviceProcessEvents | summarize n = countif(FileName == 'cmd.exe')",
]

ILLEGAL_EQUALS = [
    "DeviceProcessEvents | where X = 1",
    "DeviceProcessEvents | where FileName = 'cmd.exe'",
    "DeviceLogonEvents | where IsLocalAdmin = true",
    "DeviceProcessEvents | where a == 1 and b = 2",
    'DeviceProcessEvents | filter X = "y"',
    "let T = DeviceProcessEvents | where FileName = 'x'; T",
    "DeviceProcessEvents | join (DeviceLogonEvents | where ActionType = 'LogonFailed') on DeviceId",
    "DeviceProcessEvents | summarize countif(FileName = 'cmd.exe')",
    "DeviceProcessEvents | where iff(ReportId = 1, true, false)",
]


@pytest.mark.parametrize("kql", LEGAL_EQUALS)
def test_legal_equals_runs(engine: HuntingEngine, kql: str) -> None:
    engine.run(kql)


@pytest.mark.parametrize("kql", ILLEGAL_EQUALS)
def test_bare_equals_is_refused(engine: HuntingEngine, kql: str) -> None:
    with pytest.raises(HuntingError) as caught:
        engine.run(kql)
    assert (caught.value.status, caught.value.kind) == (400, "syntax")
    assert "use '=='" in caught.value.message
    assert re.search(r"line \d+, column \d+", caught.value.message)


def test_where_true_is_not_all_rows(engine: HuntingEngine, data: Tables) -> None:
    """The silent bug the guard exists for: `where IsLocalAdmin = true` returned every row."""
    admins = sum(1 for row in data["DeviceLogonEvents"] if row["IsLocalAdmin"])
    assert 0 < admins < SIZES["DeviceLogonEvents"]
    assert _count(engine, "DeviceLogonEvents | where IsLocalAdmin == true | count") == admins


# --------------------------------------------------------------------------------------------
# make_list / make_set caps
# --------------------------------------------------------------------------------------------


def test_make_set_cap_is_honoured(engine: HuntingEngine) -> None:
    capped = engine.run("DeviceProcessEvents | summarize Names = make_set(FileName, 3) by DeviceName").rows
    full = {
        row["DeviceName"]: row["Names"]
        for row in engine.run("DeviceProcessEvents | summarize Names = make_set(FileName) by DeviceName").rows
    }
    assert capped
    assert all(len(row["Names"]) == min(3, len(full[row["DeviceName"]])) for row in capped)
    assert all(set(row["Names"]) <= set(full[row["DeviceName"]]) for row in capped)


def test_make_list_cap_with_default_name(engine: HuntingEngine) -> None:
    output = engine.run("DeviceProcessEvents | summarize make_list(FileName, 2), n = count()")
    assert [name for name, _ in output.schema] == ["list_FileName", "n"]
    assert len(output.rows[0]["list_FileName"]) == 2


def test_capped_column_read_downstream(engine: HuntingEngine) -> None:
    rows = engine.run(
        "DeviceProcessEvents | summarize S = make_set(FileName, 2) by DeviceName | extend n = array_length(S)"
    ).rows
    assert all(row["n"] == len(row["S"]) <= 2 for row in rows)


@pytest.mark.parametrize(
    "kql",
    [
        "DeviceProcessEvents | summarize make_set(tolower(FileName), 2)",
        "DeviceProcessEvents | summarize s = make_set(FileName, ReportId)",
        "DeviceProcessEvents | summarize s = make_set(FileName, 0)",
        "DeviceProcessEvents | summarize s = array_length(make_list(FileName, 2))",
    ],
)
def test_uncappable_forms_are_refused(engine: HuntingEngine, kql: str) -> None:
    with pytest.raises(HuntingError) as caught:
        engine.run(kql)
    assert caught.value.kind == "unsupported"
    assert "make_" in caught.value.message


# --------------------------------------------------------------------------------------------
# Values and schema
# --------------------------------------------------------------------------------------------


def test_value_formats(engine: HuntingEngine) -> None:
    output = engine.run(
        "print t = datetime(2024-03-26T09:39:50.768864Z), d = 1d + 2h + 3s, s = 90s,"
        " j = parse_json('{\"a\": [1, \"x\"]}'), r = 1.5, n = real(nan), g = toguid('9a2e2c5e-6f7b-4a3e-9d3e-2b1c2d3e4f5a'),"
        " i = toint(7), l = 7, b = true, e = dynamic([])"
    )
    assert output.schema == [
        ("t", "DateTime"),
        ("d", "TimeSpan"),
        ("s", "TimeSpan"),
        ("j", "Object"),
        ("r", "Double"),
        ("n", "Double"),
        ("g", "Guid"),
        ("i", "Int32"),
        ("l", "Int64"),
        ("b", "Boolean"),
        ("e", "Object"),
    ]
    assert output.rows == [
        {
            "t": "2024-03-26T09:39:50.7688640Z",
            "d": "1.02:00:03",
            "s": "00:01:30",
            "j": {"a": [1, "x"]},
            "r": 1.5,
            "n": "NaN",
            "g": "9a2e2c5e-6f7b-4a3e-9d3e-2b1c2d3e4f5a",
            "i": 7,
            "l": 7,
            "b": True,
            "e": [],
        }
    ]
    json.dumps(output.rows, allow_nan=False)
    # Inside dynamic values too.
    assert engine.run("print a = pack_array(real(nan), 1.5)").rows == [{"a": ["NaN", 1.5]}]


def test_dynamic_results_are_parsed(engine: HuntingEngine) -> None:
    row = engine.run(BY_ID["Q34"].text).rows[0]
    assert isinstance(row["Subjects"], list)
    rows = engine.run("DeviceProcessEvents | summarize L = make_list(Timestamp, 2)").rows
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{7}Z", value) for value in rows[0]["L"])


def test_datetimes_have_seven_digits(engine: HuntingEngine) -> None:
    for row in engine.run(BY_ID["Q14"].text).rows:
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{7}Z", row["Timestamp"])


def test_formatters() -> None:
    assert (
        format_datetime(datetime(2024, 3, 26, 9, 39, 50, 768864, tzinfo=UTC))
        == "2024-03-26T09:39:50.7688640Z"
    )
    assert (
        format_datetime(datetime(2024, 3, 26, 10, 39, 50, tzinfo=UTC).astimezone())
        == "2024-03-26T10:39:50.0000000Z"
    )
    assert format_timespan(timedelta(days=-1, hours=2)) == "-22:00:00"
    assert format_timespan(timedelta(seconds=1.5)) == "00:00:01.5000000"


def test_stats_block(engine: HuntingEngine) -> None:
    stats = engine.run(BY_ID["Q04"].text).stats
    assert stats["ExecutionTime"] > 0
    assert set(stats["resource_usage"]) == {"cache", "cpu", "memory"}
    assert stats["dataset_statistics"][0]["table_row_count"] == 3
    assert stats["dataset_statistics"][0]["table_size"] > 0


# --------------------------------------------------------------------------------------------
# (e) limits
# --------------------------------------------------------------------------------------------


def test_row_limit_truncates_to_the_first_rows() -> None:
    small = fixture_engine(row_limit=50)
    query = "DeviceProcessEvents | order by ReportId asc | project ReportId"
    rows = small.run(query).rows
    assert rows == [
        {"ReportId": report}
        for report in sorted(r["ReportId"] for r in build_fixture()["DeviceProcessEvents"])[:50]
    ]
    assert len(small.run("DeviceProcessEvents | take 50").rows) == 50


def test_row_limit_error() -> None:
    small = fixture_engine(row_limit=50, row_limit_behaviour="error")
    with pytest.raises(HuntingError) as caught:
        small.run("DeviceProcessEvents | project ReportId")
    assert (caught.value.status, caught.value.kind) == (400, "row_limit")
    assert "50-row limit" in caught.value.message
    assert len(small.run("DeviceProcessEvents | take 50").rows) == 50


def test_default_row_limit_is_100000() -> None:
    truncating, failing = fixture_engine(), fixture_engine(row_limit_behaviour="error")
    assert len(truncating.run("range x from 1 to 100001 step 1").rows) == 100_000
    with pytest.raises(HuntingError) as caught:
        failing.run("range x from 1 to 100001 step 1")
    assert "100,000-row limit" in caught.value.message
    assert len(failing.run("range x from 1 to 100000 step 1").rows) == 100_000


def test_row_limit_does_not_materialise_everything() -> None:
    """10^10 joined rows: only streaming row_limit + 1 of them can end before the query timeout.

    Materialising them would run into ``query_timeout`` and raise the timeout error instead.
    """
    small = fixture_engine(row_limit=50, query_timeout=20)
    assert len(small.run(HEAVY).rows) == 50


def test_size_cap() -> None:
    capped = fixture_engine(max_result_bytes=2000)
    with pytest.raises(HuntingError) as caught:
        capped.run("DeviceProcessEvents | take 50")
    assert (caught.value.status, caught.value.kind) == (400, "size")
    assert caught.value.message == (
        'Result size limit exceeded. Use "summarize" to aggregate results, "project" to drop '
        'uninteresting columns, or "take" to truncate results.'
    )
    assert capped.run("DeviceProcessEvents | count").rows == [{"Count": SIZES["DeviceProcessEvents"]}]


@pytest.mark.timeout(120)  # a guard, not a measure: without the interrupt the count never ends
def test_timeout_interrupts_and_recovers() -> None:
    hurried = fixture_engine(query_timeout=0.3)
    with pytest.raises(HuntingError) as caught:
        hurried.run(HEAVY + " | count")
    assert (caught.value.status, caught.value.code, caught.value.kind) == (400, "BadRequest", "timeout")
    assert caught.value.message == "Query exceeded the timeout period."
    assert _count(hurried, "DeviceProcessEvents | count") == SIZES["DeviceProcessEvents"]
    assert hurried.run(BY_ID["Q16"].text).rows


# --------------------------------------------------------------------------------------------
# (e) Timespan and the data window
# --------------------------------------------------------------------------------------------


def _in_window(data: Tables, start: datetime, end: datetime) -> int:
    return sum(1 for row in data["DeviceProcessEvents"] if start <= parse_timestamp(row["Timestamp"]) < end)


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


@pytest.mark.parametrize(
    ("timespan", "start", "end"),
    [
        ("P1D", NOW - timedelta(days=1), NOW),
        ("PT6H", NOW - timedelta(hours=6), NOW),
        ("P1DT2H", NOW - timedelta(hours=26), NOW),
        ("P7D", NOW - timedelta(days=7), NOW),
        ("P90D", NOW - timedelta(days=30), NOW),
        (
            "2026-11-05T00:00:00Z/2026-11-10T00:00:00Z",
            _at("2026-11-05T00:00:00Z"),
            _at("2026-11-10T00:00:00Z"),
        ),
        ("P2D/2026-11-10T00:00:00Z", _at("2026-11-08T00:00:00Z"), _at("2026-11-10T00:00:00Z")),
        ("2026-11-05T00:00:00Z/P3D", _at("2026-11-05T00:00:00Z"), _at("2026-11-08T00:00:00Z")),
        ("2026-11-15T00:00:00Z", _at("2026-11-15T00:00:00Z"), NOW),
        (
            "2026-11-05T01:00:00+01:00/2026-11-10T00:00:00.1234567Z",
            _at("2026-11-05T00:00:00Z"),
            _at("2026-11-10T00:00:00.123456Z"),
        ),
        ("2026-01-01T00:00:00Z/2026-12-31T00:00:00Z", NOW - timedelta(days=30), NOW),
        ("2027-01-01T00:00:00Z/P1D", NOW, NOW),
    ],
)
def test_timespan_forms_narrow_results(
    engine: HuntingEngine, data: Tables, timespan: str, start: datetime, end: datetime
) -> None:
    expected = _in_window(data, start, end)
    assert _count(engine, "DeviceProcessEvents | count", timespan=timespan) == expected


def test_timespan_narrows_every_table(engine: HuntingEngine) -> None:
    everything = engine.run(BY_ID["Q19"].text).rows
    narrowed = engine.run(BY_ID["Q19"].text, timespan="P3D").rows
    assert sum(row["Events"] for row in narrowed) < sum(row["Events"] for row in everything)


def test_query_and_timespan_narrower_wins(engine: HuntingEngine, data: Tables) -> None:
    query = "DeviceProcessEvents | where Timestamp > ago(3d) | count"
    assert _count(engine, query, timespan="P1D") == _in_window(data, NOW - timedelta(days=1), NOW)
    assert _count(engine, query, timespan="P7D") == _in_window(data, NOW - timedelta(days=3), NOW)


@pytest.mark.parametrize(
    "timespan",
    [
        "yesterday",
        "P",
        "PT",
        "P1D/P2D",
        "2026-11-20T00:00:00Z/2026-11-01T00:00:00Z",
        "a/b/c",
        "P1X",
        "-P1D",
        "2026-13-01T00:00:00Z",
    ],
)
def test_malformed_timespan(engine: HuntingEngine, timespan: str) -> None:
    with pytest.raises(HuntingError) as caught:
        engine.run("DeviceProcessEvents | count", timespan=timespan)
    assert (caught.value.status, caught.value.kind) == (400, "timespan")
    assert timespan in caught.value.message
    assert "start/end" in caught.value.message
    assert "P30D" in caught.value.message


def test_window_is_half_open() -> None:
    con = duckdb_kql.connect()
    load_fixture(con, {"DeviceProcessEvents": []})
    clock = Clock(NOW)
    edges = {
        "at-now": NOW,
        "just-before-now": NOW - timedelta(microseconds=1),
        "window-start": NOW - timedelta(days=30),
        "before-window": NOW - timedelta(days=30, microseconds=1),
    }
    from airflow_provider_mtp.emulator.tenant import insert_rows

    insert_rows(
        con, "DeviceProcessEvents", [{"Timestamp": when, "FileName": name} for name, when in edges.items()]
    )
    engine = HuntingEngine(con, clock=clock)
    names = {row["FileName"] for row in engine.run("DeviceProcessEvents | project FileName").rows}
    assert names == {"just-before-now", "window-start"}
    clock.advance(1)
    names = {row["FileName"] for row in engine.run("DeviceProcessEvents | project FileName").rows}
    assert names == {"at-now", "just-before-now"}


def test_clock_moves_ago_and_window() -> None:
    clock = Clock(NOW)
    moved = fixture_engine(clock=clock)
    before = _count(moved, BY_ID["Q02"].text)
    clock.advance(2 * 86400)
    assert _count(moved, BY_ID["Q02"].text) < before
    assert moved.run("print n = now()").rows == [{"n": format_datetime(NOW + timedelta(days=2))}]


def test_parse_timespan_and_window_directly() -> None:
    assert parse_timespan("P1W", NOW) == (NOW - timedelta(days=7), NOW)
    assert parse_timespan("PT1.5H", NOW) == (NOW - timedelta(minutes=90), NOW)
    assert parse_timespan("2026-11-01", NOW) == (datetime(2026, 11, 1, tzinfo=UTC), NOW)
    assert hunting_window(None, NOW, 30) == (NOW - timedelta(days=30), NOW)
    assert hunting_window("  ", NOW, 30) == (NOW - timedelta(days=30), NOW)


# --------------------------------------------------------------------------------------------
# (e) determinism and threads
# --------------------------------------------------------------------------------------------

TIED_TOPS = [
    "DeviceNetworkEvents | summarize Count = count() by DeviceName | top 5 by Count",
    "DeviceNetworkEvents | project DeviceName, RemoteIP, Timestamp, Count = 1 | top 5 by Count",
    "DeviceLogonEvents | summarize Count = count() by AccountName, ActionType | top 5 by Count",
]


def test_ties_exist(engine: HuntingEngine) -> None:
    counts = [
        row["Count"]
        for row in engine.run("DeviceNetworkEvents | summarize Count = count() by DeviceName").rows
    ]
    assert len(set(counts)) < len(counts)


@pytest.mark.parametrize("kql", TIED_TOPS)
def test_same_answer_call_after_call(engine: HuntingEngine, kql: str) -> None:
    first = engine.run(kql).rows
    for _ in range(20):
        assert engine.run(kql).rows == first
    assert fixture_engine().run(kql).rows == first


def test_every_battery_answer_repeats_exactly(engine: HuntingEngine) -> None:
    for query in QUERIES:
        assert engine.run(query.text).rows == engine.run(query.text).rows, query.id


def test_concurrent_callers_get_serial_answers(engine: HuntingEngine) -> None:
    queries = [BY_ID[query_id].text for query_id in ("Q04", "Q13", "Q16", "Q17", "Q21", "Q34")] + TIED_TOPS
    expected = {kql: engine.run(kql).rows for kql in queries}
    failures: list[str] = []

    def worker() -> None:
        for kql in queries:
            if engine.run(kql).rows != expected[kql]:
                failures.append(kql)

    threads = [threading.Thread(target=worker) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
