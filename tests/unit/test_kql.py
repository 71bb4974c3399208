"""KQL literals, bound parameters and the token scan (airflow_provider_mtp/kql.py), without the engine.

Literal text, binding, Jinja filters and the token scan are checked here. The round trips through
the emulator's KQL engine (``let v = <literal>; print x = v`` gives the value back unchanged), the
injection test of issue 4 (Must show 4) at engine level and the comparisons with duckdb-kql's
grammar lexer are in ``tests/integration/test_kql_engine.py`` (this tier runs without the emulator).
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from jinja2.sandbox import SandboxedEnvironment

from airflow_provider_mtp import kql
from airflow_provider_mtp.errors import MTPConfigError

INJECTION = 'x" | union * | take 1 //'

# --------------------------------------------------------------------------------------------
# Literal text
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "kind", "expected"),
    [
        ("plain", "string", '"plain"'),
        ('a"b\\c\nd\re\tf', "string", '"a\\"b\\\\c\\nd\\re\\tf"'),
        ("'single'", "str", "\"'single'\""),
        ("5", "string", '"5"'),
        ("", "string", '""'),
        (datetime(2026, 11, 1, 8, 30, tzinfo=UTC), "datetime", "datetime(2026-11-01T08:30:00.0000000Z)"),
        (datetime(2026, 11, 1, 8, 30), "datetime", "datetime(2026-11-01T08:30:00.0000000Z)"),
        (date(2026, 11, 1), "date", "datetime(2026-11-01T00:00:00.0000000Z)"),
        ("2026-11-01T10:00:00+02:00", "datetime", "datetime(2026-11-01T08:00:00.0000000Z)"),
        ("2026-11-01T00:00:00.1234567Z", "datetime", "datetime(2026-11-01T00:00:00.1234567Z)"),
        ("2026-11-01", "datetime", "datetime(2026-11-01T00:00:00.0000000Z)"),
        (timedelta(days=1, hours=2, minutes=3, seconds=4), "timespan", "timespan(1.02:03:04.0000000)"),
        (timedelta(microseconds=-10), "timespan", "timespan(-0.00:00:00.0000100)"),
        ("90m", "timespan", "timespan(0.01:30:00.0000000)"),
        ("1.5h", "time", "timespan(0.01:30:00.0000000)"),
        ("2d", "timespan", "timespan(2.00:00:00.0000000)"),
        ("1.02:03:04.5", "timespan", "timespan(1.02:03:04.5000000)"),
        ("-00:30", "timespan", "timespan(-0.00:30:00.0000000)"),
        ("PT5M", "timespan", "timespan(0.00:05:00.0000000)"),
        ("P1DT12H", "timespan", "timespan(1.12:00:00.0000000)"),
        ("-pt1.5s", "timespan", "timespan(-0.00:00:01.5000000)"),
        ("P2W", "timespan", "timespan(14.00:00:00.0000000)"),
        # ISO fractions are read to the microsecond (pendulum); 1tick or 00:00:00.0000001 give 100 ns.
        ("PT0.1234567S", "timespan", "timespan(0.00:00:00.1234570)"),
        ("1tick", "timespan", "timespan(0.00:00:00.0000001)"),
        (5, "long", "long(5)"),
        ("-42", "long", "long(-42)"),
        (7, "int", "int(7)"),
        (3.0, "int64", "long(3)"),
        (0.1, "real", "real(0.1)"),
        ("2.5e3", "number", "real(2500.0)"),
        (4, "double", "real(4.0)"),
        ("NaN", "real", "real(nan)"),
        (float("-inf"), "real", "real(-inf)"),
        (True, "bool", "true"),
        ("False", "boolean", "false"),
        (None, "long", "long(null)"),
        (None, "datetime", "datetime(null)"),
        (None, "list", "dynamic(null)"),
        (["a", 'b"'], "list", 'dynamic(["a", "b\\""])'),
        ('["a", "b"]', "list", 'dynamic(["a", "b"])'),
        ("['a', 'b']", "list", 'dynamic(["a", "b"])'),
        (["1", 2], "list[long]", "dynamic([1, 2])"),
        (("2026-11-01",), "list[datetime]", "dynamic([datetime(2026-11-01T00:00:00.0000000Z)])"),
        ([], "list", "dynamic([])"),
        ({"a": [1, None, True], "b": 1.5}, "dynamic", 'dynamic({"a": [1, null, true], "b": 1.5})'),
        ('{"a": 1}', "dynamic", 'dynamic({"a": 1})'),
    ],
)
def test_literal_text(value: Any, kind: str, expected: str) -> None:
    assert kql.literal(value, kind) == expected


@pytest.mark.parametrize(
    ("value", "kind", "message"),
    [
        (None, "string", "no null"),
        (5, "string", "declare its type"),
        ("\ud800", "string", "lone surrogate"),
        ("yesterday", "datetime", "ISO 8601"),
        ("2026-13-01", "datetime", "real calendar time"),
        (5, "timespan", "timedelta"),
        ("5 fortnights", "timespan", "1d, 2h"),
        ("25:00", "timespan", "hours must be 0-23"),
        (timedelta(days=11_000_000), "timespan", "range"),
        ("P11000000D", "timespan", "range"),
        ("P99999999999D", "timespan", "range"),
        ("P1Y", "timespan", "1d, 2h"),
        ("PT", "timespan", "1d, 2h"),
        ("5.5", "long", "whole number"),
        (True, "long", "bool is not a number"),
        (2**63, "long", "outside the long range"),
        (2**31, "int", "outside the int range"),
        ("five", "real", "give a number"),
        ("yes", "bool", "true"),
        ("not json", "list", "neither JSON"),
        ({"a": 1}, "list", "give a list"),
        ([["nested"]], "list", "nest values"),
        ([float("nan")], "list", "NaN and infinity"),
        ([1], "list[string]", "declare its type"),
        ({1: "a"}, "dynamic", "keys must be strings"),
        (object(), "dynamic", "JSON-like"),
        ("x", "varchar", "Unknown KQL parameter type"),
        ("x", "list[list]", "scalar kind"),
    ],
)
def test_literal_refuses(value: Any, kind: str, message: str) -> None:
    with pytest.raises(MTPConfigError, match=re.escape(message)):
        kql.literal(value, kind, what="query_parameters['p']")


def test_errors_name_the_parameter() -> None:
    with pytest.raises(MTPConfigError, match=r"query_parameters\['since'\]: cannot make a KQL datetime"):
        kql.bind({"since": "last tuesday"}, {"since": "datetime"})


# --------------------------------------------------------------------------------------------
# bind
# --------------------------------------------------------------------------------------------


def test_bind_sorted_typed_lets() -> None:
    text = kql.bind({"n": "5", "device": "ws-01", "since": "2026-11-01"}, {"n": "long", "since": "datetime"})
    assert text == (
        'let device = "ws-01";\nlet n = long(5);\nlet since = datetime(2026-11-01T00:00:00.0000000Z);\n'
    )
    assert kql.bind({}, {}) == kql.bind(None) == ""


def test_bind_types_are_declared_never_guessed() -> None:
    """A rendered "5", "true" or ISO date stays a string unless its type is declared."""
    text = kql.bind({"a": "5", "b": "true", "c": "2026-11-01", "d": "[1]"})
    assert text == 'let a = "5";\nlet b = "true";\nlet c = "2026-11-01";\nlet d = "[1]";\n'


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("WindowStart", "reserved"),
        ("WindowEnd", "reserved"),
        ("where", "keyword"),
        ("string", "keyword"),
        ("__hidden", "keyword"),
        ("1abc", "not a KQL identifier"),
        ("dev-name", "not a KQL identifier"),
        ("a b", "not a KQL identifier"),
        ("", "not a KQL identifier"),
        ("dévice", "not a KQL identifier"),
    ],
)
def test_bind_refuses_names(name: str, message: str) -> None:
    with pytest.raises(MTPConfigError, match=message):
        kql.bind({name: "x"})


def test_bind_refuses_types_of_unknown_parameters() -> None:
    with pytest.raises(MTPConfigError, match="'n', which query_parameters does not have"):
        kql.bind({"device": "x"}, {"n": "long"})


# --------------------------------------------------------------------------------------------
# Jinja filters
# --------------------------------------------------------------------------------------------


def test_jinja_filters() -> None:
    env = SandboxedEnvironment()
    env.filters.update(kql.KQL_FILTERS)
    template = env.from_string(
        "{{ d | kql_string }} {{ n | kql_long }} {{ t | kql_datetime }} {{ s | kql_timespan }} "
        "{{ names | kql_list }} {{ ids | kql_list('long') }} {{ x | kql('real') }} {{ b | kql_bool }}"
    )
    rendered = template.render(
        d=INJECTION, n="5", t="2026-11-01", s="1h", names=["a"], ids=["1", "2"], x="0.5", b="false"
    )
    assert rendered == (
        '"x\\" | union * | take 1 //" long(5) datetime(2026-11-01T00:00:00.0000000Z) '
        'timespan(0.01:00:00.0000000) dynamic(["a"]) dynamic([1, 2]) real(0.5) false'
    )
    assert set(kql.KQL_FILTERS) >= {"kql_string", "kql_datetime", "kql_timespan", "kql_list"}


# --------------------------------------------------------------------------------------------
# Tokens
# --------------------------------------------------------------------------------------------

WINDOW = kql.WINDOW_NAMES


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("T | where Timestamp >= WindowStart and Timestamp < WindowEnd", {"WindowStart", "WindowEnd"}),
        ("T | where x == \"WindowStart\" and y == 'WindowEnd'", set()),
        ("T // WindowStart\n| where Timestamp < WindowEnd", {"WindowEnd"}),
        ("T | where p == @\"C:\\WindowStart\\\" and q == @'it''s WindowEnd'", set()),
        ("T | where s == ```WindowStart\nWindowEnd``` | take 1", set()),
        ("T | where s == ~~~WindowStart~~~", set()),
        ('T | where s == h"WindowStart" or s == H\'WindowEnd\' or s == h@"WindowEnd"', set()),
        ('T | where s == "a \\" WindowStart" | where t < WindowEnd', {"WindowEnd"}),
        ("T | extend a = AdditionalFields.WindowStart", set()),
        ("T | where Timestamp between (WindowStart .. WindowEnd)", {"WindowStart", "WindowEnd"}),
        ("T|where Timestamp>=WindowStart", {"WindowStart"}),
        ("WindowStartish | where WindowEndTime > 1", set()),
        ('T | where x == "unterminated WindowStart\n| where WindowEnd > 1', {"WindowEnd"}),
    ],
)
def test_referenced_window_names(query: str, expected: set[str]) -> None:
    assert kql.referenced_names(query, WINDOW) == expected


def test_defined_names() -> None:
    assert kql.defined_names("let WindowStart = ago(1d);\nlet x=1; T | where let_ == 1") == {
        "WindowStart",
        "x",
    }
    assert kql.defined_names('print "let WindowStart = 1"') == set()
