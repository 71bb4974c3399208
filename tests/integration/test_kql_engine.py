"""KQL literals and bound parameters through the emulator's KQL engine (airflow_provider_mtp/kql.py).

Moved from ``tests/unit/test_kql.py`` so the unit tier runs without the emulator. Literals
round-trip through the engine (``let v = <literal>; print x = v`` must give the value back
unchanged) for Hypothesis-generated strings, lists, datetimes, timespans, numbers and bools; the
injection test of issue 4 (Must show 4) runs at engine level here and through a DAG in the
integration tests; names and tokens are compared with duckdb-kql's grammar lexer.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime, timedelta
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
# Names
# --------------------------------------------------------------------------------------------


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
# Jinja filters through the engine
# --------------------------------------------------------------------------------------------


def test_jinja_filter_output_runs(engine: HuntingEngine) -> None:
    env = SandboxedEnvironment()
    env.filters.update(kql.KQL_FILTERS)
    query = env.from_string("DeviceProcessEvents | where DeviceName == {{ device | kql_string }} | count")
    assert engine.run(query.render(device=INJECTION)).rows == [{"Count": 0}]


# --------------------------------------------------------------------------------------------
# Tokens, compared with the grammar lexer
# --------------------------------------------------------------------------------------------


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
