"""KQL literals, bound parameters and the token scan (airflow_provider_mtp/kql.py).

Literals are checked twice: by their text, and by round-tripping them through the emulator's
KQL engine (``let v = <literal>; print x = v`` must give the value back unchanged), for
Hypothesis-generated strings, lists, datetimes, timespans, numbers and bools. The injection test
of issue 4 (Must show 4) runs at engine level here and through a DAG in the integration tests.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, date, datetime, timedelta
from typing import Any

import duckdb_kql
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jinja2.sandbox import SandboxedEnvironment

from airflow_provider_mtp import kql
from airflow_provider_mtp.emulator import tenant
from airflow_provider_mtp.emulator.config import Clock
from airflow_provider_mtp.emulator.hunting import HuntingEngine
from airflow_provider_mtp.errors import MTPConfigError

NOW = datetime(2026, 11, 20, 12, tzinfo=UTC)
INJECTION = 'x" | union * | take 1 //'
#: Another hostile value; pasted into a query it widens the filter (the engine's ``union *`` over
#: every table fails on two columns that differ only in case, so it cannot show the leak).
OR_TRUE = 'x" or FileName != "'

#: Hypothesis: every example runs the engine (a few ms each).
ENGINE_SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.fixture(scope="module")
def engine() -> HuntingEngine:
    """The emulator's engine over empty hunting tables plus one process event (no HTTP)."""
    con = duckdb_kql.connect()
    tenant.create_tables(con)
    tenant.insert_rows(
        con,
        "DeviceProcessEvents",
        [{"Timestamp": "2026-11-20T10:00:00Z", "DeviceName": "ws-01", "FileName": "cmd.exe", "ReportId": 1}],
    )
    return HuntingEngine(con, clock=Clock(NOW))


def printed(engine: HuntingEngine, literal: str) -> Any:
    """What ``print`` gives back for a literal bound with ``let``."""
    return engine.run(f"let v = {literal};\nprint x = v").rows[0]["x"]


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


def test_reserved_names_cover_the_grammar_keywords() -> None:
    """Every keyword token of the KQL grammar (as duckdb-kql's ANTLR lexer has it) is refused."""
    from duckdb_kql._antlr.KqlLexer import KqlLexer

    keywords = {
        name.strip("'")
        for name in KqlLexer.literalNames
        if re.fullmatch(r"'[A-Za-z_][A-Za-z0-9_]*'", name or "")
    }
    refused = {name for name in keywords if name.startswith("__") or name in kql.RESERVED_NAMES}
    assert keywords == refused


@ENGINE_SETTINGS
@given(name=st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,12}", fullmatch=True))
def test_accepted_names_work_as_let_names(engine: HuntingEngine, name: str) -> None:
    try:
        kql.validate_name(name)
    except MTPConfigError:
        return
    assert engine.run(f'let {name} = "ok";\nprint x = {name}').rows == [{"x": "ok"}]


# --------------------------------------------------------------------------------------------
# Round trips through the engine
# --------------------------------------------------------------------------------------------


@ENGINE_SETTINGS
@given(text=st.text())
def test_strings_round_trip(engine: HuntingEngine, text: str) -> None:
    assert printed(engine, kql.literal(text)) == text


@pytest.mark.parametrize(
    "text",
    [
        INJECTION,
        '"; DeviceProcessEvents | take 1; print "',
        "\\",
        '\\"',
        "\\\\n",
        "// not a comment",
        "```",
        "@'verbatim'",
        "\x00\x01\x1f\x7f\x85",
        "\u2028\u2029\ufeff",
        "😀 é 中文 \U0010ffff",
        "line1\r\nline2",
    ],
)
def test_awkward_strings_round_trip(engine: HuntingEngine, text: str) -> None:
    assert printed(engine, kql.literal(text)) == text


@ENGINE_SETTINGS
@given(values=st.lists(st.text(max_size=20), max_size=6))
def test_lists_of_strings_round_trip(engine: HuntingEngine, values: list[str]) -> None:
    assert printed(engine, kql.literal(values, "list")) == values
    assert printed(engine, kql.literal(values, "list[string]")) == values


def _kusto_datetime(value: datetime) -> str:
    return f"{value.year:04d}-" + value.strftime("%m-%dT%H:%M:%S.") + f"{value.microsecond:06d}0Z"


@settings(ENGINE_SETTINGS, max_examples=60)  # three literals a query: translation dominates
@given(
    value=st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=st.just(UTC))
)
def test_datetimes_round_trip(engine: HuntingEngine, value: datetime) -> None:
    query = (
        f"let a = {kql.literal(value, 'datetime')};\n"
        f"let b = {kql.literal(value.isoformat(), 'datetime')};\n"
        f"let c = {kql.literal([value], 'list[datetime]')};\n"
        "print a = a, b = b, c = c"
    )
    expected = _kusto_datetime(value)
    assert engine.run(query).rows == [{"a": expected, "b": expected, "c": [expected]}]


def _ticks(text: str) -> int:
    """Kusto's timespan text (``-1.02:03:04.5000000``, ``00:30:00``) as ticks."""
    match = re.fullmatch(r"(-)?(?:(\d+)\.)?(\d\d):(\d\d):(\d\d)(?:\.(\d{1,7}))?", text)
    assert match, text
    sign, days, hours, minutes, seconds, fraction = match.groups()
    ticks = ((int(days or 0) * 24 + int(hours)) * 3600 + int(minutes) * 60 + int(seconds)) * 10_000_000
    ticks += int((fraction or "").ljust(7, "0"))
    return -ticks if sign else ticks


@ENGINE_SETTINGS
@given(value=st.timedeltas(min_value=timedelta(days=-999_999), max_value=timedelta(days=999_999)))
def test_timespans_round_trip(engine: HuntingEngine, value: timedelta) -> None:
    expected = (value.days * 86_400 + value.seconds) * 10_000_000 + value.microseconds * 10
    assert _ticks(printed(engine, kql.literal(value, "timespan"))) == expected


@ENGINE_SETTINGS
@given(value=st.integers(min_value=-(2**63), max_value=2**63 - 1))
def test_longs_round_trip(engine: HuntingEngine, value: int) -> None:
    assert printed(engine, kql.literal(value, "long")) == value
    assert printed(engine, kql.literal(str(value), "long")) == value


@ENGINE_SETTINGS
@given(value=st.integers(min_value=-(2**31), max_value=2**31 - 1))
def test_ints_round_trip(engine: HuntingEngine, value: int) -> None:
    result = engine.run(f"let v = {kql.literal(value, 'int')};\nprint x = v")
    assert result.rows[0]["x"] == value
    assert result.schema == [("x", "Int32")]


def _real_back(value: Any) -> float:
    return float(value.replace("Infinity", "inf")) if isinstance(value, str) else float(value)


@ENGINE_SETTINGS
@given(value=st.floats())
def test_reals_round_trip(engine: HuntingEngine, value: float) -> None:
    back = _real_back(printed(engine, kql.literal(value, "real")))
    assert back == value or (math.isnan(back) and math.isnan(value))


@ENGINE_SETTINGS
@given(
    values=st.lists(
        st.one_of(
            st.integers(-(2**63), 2**63 - 1),
            st.floats(allow_nan=False, allow_infinity=False),
            st.booleans(),
            st.none(),
        ),
        max_size=6,
    )
)
def test_mixed_lists_round_trip(engine: HuntingEngine, values: list[Any]) -> None:
    assert printed(engine, kql.literal(values, "list")) == values


@pytest.mark.parametrize("value", [True, False])
def test_bools_round_trip(engine: HuntingEngine, value: bool) -> None:
    assert printed(engine, kql.literal(value, "bool")) is value
    assert printed(engine, kql.literal(str(value), "bool")) is value


def test_typed_nulls_round_trip(engine: HuntingEngine) -> None:
    for kind in ("long", "int", "real", "bool", "datetime", "timespan"):
        assert printed(engine, kql.literal(None, kind)) is None


# --------------------------------------------------------------------------------------------
# Must show 4, at engine level
# --------------------------------------------------------------------------------------------


def test_injection_is_matched_as_plain_text(engine: HuntingEngine) -> None:
    """A hostile value bound as a parameter matches as text: the same rows as a harmless miss."""
    query = "DeviceProcessEvents | where DeviceName == device | project DeviceName, FileName"
    harmless = engine.run(kql.bind({"device": "no-such-device"}) + query).rows
    assert harmless == []
    for hostile in (INJECTION, OR_TRUE):
        assert engine.run(kql.bind({"device": hostile}) + query).rows == harmless
    # The control: pasted into the text instead, such a value becomes KQL and returns data.
    pasted = engine.run(f'DeviceProcessEvents | where DeviceName == "{OR_TRUE}" | project DeviceName').rows
    assert pasted == [{"DeviceName": "ws-01"}]
    # And a real value, bound the same way, matches.
    assert engine.run(kql.bind({"device": "ws-01"}) + query).rows == [
        {"DeviceName": "ws-01", "FileName": "cmd.exe"}
    ]


def test_bound_list_filters_with_in(engine: HuntingEngine) -> None:
    query = "DeviceProcessEvents | where FileName in~ (names) | project FileName"
    assert engine.run(kql.bind({"names": ["CMD.EXE", INJECTION]}, {"names": "list"}) + query).rows == [
        {"FileName": "cmd.exe"}
    ]


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


def test_jinja_filter_output_runs(engine: HuntingEngine) -> None:
    env = SandboxedEnvironment()
    env.filters.update(kql.KQL_FILTERS)
    query = env.from_string("DeviceProcessEvents | where DeviceName == {{ device | kql_string }} | count")
    assert engine.run(query.render(device=INJECTION)).rows == [{"Count": 0}]


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


def _antlr_tokens(query: str) -> tuple[set[tuple[int, str]], set[tuple[int, str]]]:
    from antlr4 import CommonTokenStream, InputStream, Token
    from duckdb_kql._antlr.KqlLexer import KqlLexer

    lexer = KqlLexer(InputStream(query))
    lexer.removeErrorListeners()
    stream = CommonTokenStream(lexer)
    stream.fill()
    tokens = [token for token in stream.tokens if token.channel == Token.DEFAULT_CHANNEL]
    identifiers = {(t.start, t.text) for t in tokens if t.type == KqlLexer.IDENTIFIER}
    strings = {(t.start, t.text) for t in tokens if t.type == KqlLexer.STRINGLITERAL}
    return identifiers, strings


def _battery_queries() -> list[str]:
    from tests.golden.battery import QUERIES

    return [query.text for query in QUERIES]


def test_tokens_agree_with_the_grammar_lexer() -> None:
    """On the golden battery and awkward extras: same strings, and every grammar identifier found."""
    queries = [
        *_battery_queries(),
        'T | where a == h"x" and b == @"c:\\\\" and c == \'it\\\'s\' | extend d = ```multi\nline```',
        "T | where Timestamp between (datetime(2026-11-01) .. 1d) | project $left.a, x = 0x1F",
    ]
    for query in queries:
        identifiers, strings = _antlr_tokens(query)
        mine = list(kql.tokenize(query))
        assert {(t.start, t.text) for t in mine if t.kind == "string"} == strings, query
        assert identifiers <= {(t.start, t.text) for t in mine if t.kind == "identifier"}, query
