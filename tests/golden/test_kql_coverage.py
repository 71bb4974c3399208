"""KQL the emulator runs beyond duckdb-kql, on the fixture tenant, checked against plain-Python oracles.

``search``/``find`` over the hunting tables, ``project-reorder`` anywhere in the last pipeline,
``evaluate bag_unpack`` and ``make-series`` followed by more operators, ``between`` with a timespan,
``count(x)``, ``pack_array`` literal lists, tabular ``let`` functions, ``externaldata`` from
registered content; and the 400s for what does not run, worded in KQL terms.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from datetime import timedelta
from typing import Any

import pytest

from airflow_provider_mtp.emulator.hunting import HuntingEngine, HuntingError, prepare_query
from tests.golden.fixture import NOW, Tables, build_fixture, fixture_engine, parse_timestamp
from tests.golden.oracle import has


@pytest.fixture(scope="module")
def data() -> Tables:
    return build_fixture()


@pytest.fixture(scope="module")
def engine() -> HuntingEngine:
    return fixture_engine()


def _text(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return json.dumps(value)


def _count(rows: list[dict[str, Any]], key: str, value: str = "count_") -> dict[Any, int]:
    return {row[key]: row[value] for row in rows}


# --------------------------------------------------------------------------------------------
# search / find
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("term", ["mimikatz", "ws-fin-01", "CONTOSO"])
def test_search_finds_the_term_in_any_string_column(engine: HuntingEngine, data: Tables, term: str) -> None:
    rows = engine.run(f'search "{term}" | summarize count() by ["$table"]').rows
    expected = {
        table: hits
        for table, table_rows in data.items()
        if (hits := sum(any(has(_text(value), term) for value in row.values()) for row in table_rows))
    }
    assert _count(rows, "$table") == expected


def test_search_in_tables_starts_with_the_table_column(engine: HuntingEngine, data: Tables) -> None:
    output = engine.run('search in (DeviceLogonEvents, AlertInfo) "LogonFailed" | take 3')
    assert output.schema[0] == ("$table", "String")
    assert {row["$table"] for row in output.rows} == {"DeviceLogonEvents"}


def test_find_keeps_the_tables_that_have_the_predicate_columns(engine: HuntingEngine, data: Tables) -> None:
    output = engine.run('find where FileName =~ "MIMIKATZ.EXE"')
    assert [name for name, _ in output.schema] == ["source_", "FileName", "pack_"]
    expected = Counter(
        table
        for table, rows in data.items()
        for row in rows
        if str(row.get("FileName") or "").lower() == "mimikatz.exe"
    )
    assert Counter(row["source_"] for row in output.rows) == expected
    assert all("FileName" not in row["pack_"] for row in output.rows)


def test_find_with_project(engine: HuntingEngine, data: Tables) -> None:
    output = engine.run(
        'find in (DeviceProcessEvents, DeviceNetworkEvents) where DeviceName == "ws-fin-01" '
        "project DeviceName, RemoteIP | summarize count() by source_"
    )
    assert _count(output.rows, "source_") == {
        table: sum(row["DeviceName"] == "ws-fin-01" for row in data[table])
        for table in ("DeviceProcessEvents", "DeviceNetworkEvents")
    }


# --------------------------------------------------------------------------------------------
# operators run around the translation
# --------------------------------------------------------------------------------------------


def test_project_reorder_before_other_operators(engine: HuntingEngine) -> None:
    output = engine.run(
        "AlertInfo | project AlertId, Title, Severity, Category | project-reorder Severity, Cat* "
        "| where Severity == 'High' | extend N = 1 | take 2"
    )
    assert [name for name, _ in output.schema] == ["Severity", "Category", "AlertId", "Title", "N"]


def test_project_reorder_is_dropped_when_a_later_operator_sets_the_columns(engine: HuntingEngine) -> None:
    output = engine.run("AlertInfo | project-reorder Title | summarize count() by Severity")
    assert [name for name, _ in output.schema] == ["Severity", "count_"]


def test_bag_unpack_then_summarize(engine: HuntingEngine, data: Tables) -> None:
    rows = engine.run(
        "AlertEvidence | project AlertId, AdditionalFields | evaluate bag_unpack(AdditionalFields) "
        "| summarize count() by tostring(Role)"
    ).rows
    expected = Counter(json.loads(row["AdditionalFields"]).get("Role") for row in data["AlertEvidence"])
    assert {row["Role"] if "Role" in row else row[next(iter(row))]: row["count_"] for row in rows} == {
        role if role is not None else "": count for role, count in expected.items()
    }


@pytest.mark.parametrize(
    "kql",
    [
        "DeviceLogonEvents | where ActionType == 'LogonFailed' "
        "| make-series Failed = count() default = 0 on Timestamp from ago(3d) to now() step 1d",
        # A first `Name = f(x)` is what the grammar reads as a parameter `Name=f` and `(x)`.
        "DeviceLogonEvents | make-series Failed = countif(ActionType == 'LogonFailed') "
        "on Timestamp from ago(3d) to now() step 1d",
        "DeviceLogonEvents | where ActionType == 'LogonFailed' "
        "| make-series Failed = count(AccountName) on Timestamp from ago(3d) to now() step 1d",
    ],
)
def test_make_series_counts_per_day(engine: HuntingEngine, data: Tables, kql: str) -> None:
    rows = engine.run(kql).rows
    start = NOW - timedelta(days=3)
    expected = [0, 0, 0]
    for row in data["DeviceLogonEvents"]:
        stamp = parse_timestamp(row["Timestamp"])
        if row["ActionType"] == "LogonFailed" and start <= stamp < NOW:
            expected[int((stamp - start) / timedelta(days=1))] += 1
    assert rows == [
        {
            "Failed": expected,
            "Timestamp": [f"{(start + timedelta(days=day)):%Y-%m-%dT%H:%M:%S}.0000000Z" for day in range(3)],
        }
    ]


def test_make_series_then_mv_expand(engine: HuntingEngine) -> None:
    rows = engine.run(
        "DeviceLogonEvents | make-series n = count() on Timestamp from ago(2d) to now() step 1d by ActionType "
        "| mv-expand n to typeof(long) | summarize total = sum(n)"
    ).rows
    direct = engine.run("DeviceLogonEvents | where Timestamp >= ago(2d) | count").rows
    assert rows == [{"total": direct[0]["Count"]}]


# --------------------------------------------------------------------------------------------
# rewrites
# --------------------------------------------------------------------------------------------


def test_between_with_a_timespan_is_the_same_as_its_end(engine: HuntingEngine) -> None:
    # Kusto documents both forms giving the same count (between-operator.md).
    with_span = engine.run("DeviceLogonEvents | where Timestamp between (datetime(2026-11-01) .. 7d) | count")
    with_end = engine.run(
        "DeviceLogonEvents | where Timestamp between (datetime(2026-11-01) .. datetime(2026-11-08)) | count"
    )
    assert with_span.rows == with_end.rows
    assert with_span.rows[0]["Count"] > 0


def test_count_with_an_argument_counts_the_non_null_values(engine: HuntingEngine, data: Tables) -> None:
    rows = engine.run("DeviceNetworkEvents | summarize count(RemoteUrl), n = count()").rows
    urls = sum(row.get("RemoteUrl") is not None for row in data["DeviceNetworkEvents"])
    assert rows == [{"count_RemoteUrl": urls, "n": len(data["DeviceNetworkEvents"])}]


def test_pack_array_of_literals_is_a_constant_list(engine: HuntingEngine, data: Tables) -> None:
    query = (
        'let terms = pack_array("mimikatz", "sekurlsa", @"Invoke-WebRequest");\n'
        "DeviceProcessEvents | where ProcessCommandLine has_any (terms) | count"
    )
    assert 'dynamic(["mimikatz", "sekurlsa", "Invoke-WebRequest"])' in prepare_query(query)
    expected = sum(
        any(
            has(row.get("ProcessCommandLine"), term) for term in ("mimikatz", "sekurlsa", "Invoke-WebRequest")
        )
        for row in data["DeviceProcessEvents"]
    )
    assert engine.run(query).rows == [{"Count": expected}]


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("makeset(FileName)", "make_set(FileName)"),
        ("makelist(FileName)", "make_list(FileName)"),
        ("parsejson(AdditionalFields)", "parse_json(AdditionalFields)"),
        ("toobject(AdditionalFields)", "parse_json(AdditionalFields)"),
        ("todate('2026-11-01')", "todatetime('2026-11-01')"),
        ("totime('1.00:00:00')", "totimespan('1.00:00:00')"),
    ],
)
def test_deprecated_spellings_are_their_current_names(old: str, new: str) -> None:
    assert prepare_query(f"DeviceProcessEvents | summarize x = take_any({old})") == (
        f"DeviceProcessEvents | summarize x = take_any({new})"
    )


def test_tabular_let_function_with_default_arguments(engine: HuntingEngine, data: Tables) -> None:
    rows = engine.run(
        "let Process = (name:string, n:long = 2) { DeviceProcessEvents | where FileName =~ name | take n };\n"
        'Process("cmd.exe") | union (Process("powershell.exe", 1)) | count'
    ).rows
    assert rows == [{"Count": 3}]


def test_hash_is_kusto_xxhash64(engine: HuntingEngine) -> None:
    rows = engine.run('print a = hash("World"), b = hash("World", 100), c = hash(1)').rows
    assert rows == [{"a": 1846988464401551951, "b": 51, "c": -6977822845260490347}]


def test_externaldata_reads_registered_content(engine: HuntingEngine) -> None:
    engine.externaldata.register("https://example.test/iocs.csv", "Indicator,Score\nevil.example,90\n,\n")
    rows = engine.run(
        'externaldata (Indicator:string, Score:long) [@"https://example.test/iocs.csv"] '
        "with (format='csv', ignoreFirstRecord=true)"
    ).rows
    assert rows == [{"Indicator": "evil.example", "Score": 90}, {"Indicator": "", "Score": None}]


def test_externaldata_refuses_an_unregistered_url(engine: HuntingEngine) -> None:
    with pytest.raises(HuntingError) as caught:
        engine.run('externaldata (a:string) ["https://elsewhere.test/x.csv"]')
    assert caught.value.status == 400
    assert caught.value.message.startswith("'externaldata' at line 1, column 1: the emulator has no network")
    assert "https://elsewhere.test/x.csv" in caught.value.message


# --------------------------------------------------------------------------------------------
# errors in KQL terms
# --------------------------------------------------------------------------------------------

#: Names of the parser's rules and the engine's internals that must never reach a client.
INTERNAL = re.compile(r"Operator'|Expression'|source:|aggregate:|function:|expression:|translate/|wave")


@pytest.mark.parametrize(
    ("kql", "message"),
    [
        (
            "DeviceProcessEvents | top-nested 3 of DeviceName by count()",
            "'top-nested' at line 1, column 23 is valid KQL that this emulator does not run.",
        ),
        (
            "DeviceProcessEvents | evaluate autocluster()",
            "'evaluate autocluster' at line 1, column 23 is valid KQL that this emulator does not run: "
            "the only plugin run here is bag_unpack.",
        ),
        (
            "DeviceProcessEvents | project-reorder FileName desc",
            "'project-reorder ... asc/desc' at line 1, column 23 is valid KQL that this emulator does not run",
        ),
        ('print indexof("abc")', "'indexof()' at line 1, column 7: it takes 2 argument(s), not 1."),
        (
            'print ipv4_is_private("10.0.0.1")',
            "'ipv4_is_private()' at line 1, column 7 is valid KQL that this emulator does not run.",
        ),
        (
            "DeviceProcessEvents | extend x = nosuchfn(FileName)",
            "'extend' operator: Failed to resolve scalar expression named 'nosuchfn' at line 1, column 34",
        ),
        (
            "(DeviceProcessEvents | take 1) | take 1",
            "at line 1, column 1 is valid KQL that this emulator does not run",
        ),
        (
            "DeviceProcessEvents | evaluate bag_unpack(AdditionalFields) | join (DeviceLogonEvents) on DeviceId",
            "'evaluate bag_unpack | join' is valid KQL that this emulator does not run",
        ),
        ('search FileName == "x"', "'search <predicate>' at line 1, column 1 is valid KQL"),
    ],
)
def test_refusals_name_the_construct(engine: HuntingEngine, kql: str, message: str) -> None:
    with pytest.raises(HuntingError) as caught:
        engine.run(kql)
    assert (caught.value.status, caught.value.code) == (400, "BadRequest")
    assert message in caught.value.message
    assert not INTERNAL.search(caught.value.message), caught.value.message


def test_same_query_same_bytes(engine: HuntingEngine) -> None:
    queries = [
        'search "ws-fin-01" | summarize count() by ["$table"] | order by ["$table"] asc',
        "DeviceLogonEvents | make-series n = count() on Timestamp from ago(7d) to now() step 1d by ActionType",
        "AlertEvidence | take 5 | evaluate bag_unpack(AdditionalFields)",
    ]
    first = [json.dumps(engine.run(query).rows) for query in queries]
    again = [json.dumps(engine.run(query).rows) for query in queries]
    assert first == again
