"""A raw ``odata_filter`` can only narrow the filter it is ANDed into, on both back ends.

Fuzzed with Hypothesis: whatever text arrives as ``odata_filter``, ``assigned_to`` or ``status``,
the builders either refuse it with an ``MTPConfigError`` that names the argument, or produce a
``$filter`` whose top level is exactly the AND of the expected clauses (parsed back here with a
tokenizer of the test's own). Valid raw filters evaluated with the emulator's OData parser are in
``tests/integration/test_raw_filter_evaluated.py`` (this tier runs without the emulator).
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from airflow_provider_mtp.api.graph import incident_list_params
from airflow_provider_mtp.api.incident_query import IncidentQuery
from airflow_provider_mtp.api.legacy import incident_list_query
from airflow_provider_mtp.api.raw_filter import checked_odata_filter, rename_fields
from airflow_provider_mtp.errors import MTPConfigError

ESCAPE = "1 eq 1) or (1 eq 1"
_TOKEN = re.compile(r"'(?:[^']|'')*'|\(|\)|[^'()]+|'")


def top_level_clauses(text: str) -> list[str]:
    """Split a ``$filter`` on `` and `` at depth 0 outside strings; fails on unbalanced text."""
    clauses, current, depth = [], "", 0
    for token in _TOKEN.findall(text):
        assert token != "'", f"unterminated string in {text!r}"
        if token.startswith("'"):
            current += token
            continue
        if token in "()":
            depth += 1 if token == "(" else -1
            assert depth >= 0, f"a ')' closes more than was opened in {text!r}"
            current += token
            continue
        if depth:
            current += token
            continue
        pieces = token.split(" and ")
        current += pieces[0]
        for piece in pieces[1:]:
            clauses.append(current)
            current = piece
    assert depth == 0, f"unclosed '(' in {text!r}"
    clauses.append(current)
    return clauses


def wrapper_closes_last(clause: str) -> bool:
    """``(x)`` whose first parenthesis is closed by its last character, not earlier."""
    if not (clause.startswith("(") and clause.endswith(")")):
        return False
    depth = 0
    tokens = _TOKEN.findall(clause)
    for index, token in enumerate(tokens):
        if token in "()":
            depth += 1 if token == "(" else -1
            if depth == 0:
                return index == len(tokens) - 1
    return False


def literals(text: str) -> list[str]:
    return [token for token in _TOKEN.findall(text) if token.startswith("'") and len(token) > 1]


def odata_string(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


# Examples -----------------------------------------------------------------------------------------


BUILDERS = {
    "graph": lambda text: incident_list_params(status=["active"], odata_filter=text),
    "legacy": lambda text: incident_list_query(status=["active"], odata_filter=text),
    "query": lambda text: IncidentQuery.build(status="active", odata_filter=text),
}


@pytest.mark.parametrize("build", sorted(BUILDERS))
def test_a_filter_that_closes_the_wrapper_early_is_refused(build: str) -> None:
    message = r"odata_filter closes a parenthesis it never opened \(position 6\)"
    with pytest.raises(MTPConfigError, match=message):
        BUILDERS[build](ESCAPE)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("(status eq 'active'", "odata_filter leaves 1 parenthesis open"),
        ("((status eq 'active'", "odata_filter leaves 2 parentheses open"),
        ("assignedTo eq 'O'Brien'", "odata_filter has a string literal that is never closed"),
        ("status eq 'active')", "odata_filter closes a parenthesis it never opened"),
        (42, "odata_filter must be a string"),
    ],
)
def test_unbalanced_or_unterminated_filters_say_what_is_wrong(text: Any, message: str) -> None:
    with pytest.raises(MTPConfigError, match=re.escape(message)):
        checked_odata_filter(text)


def test_parentheses_and_quotes_inside_a_string_literal_are_text() -> None:
    text = "assignedTo eq 'a) or (b ''x'''"
    assert checked_odata_filter(text) == text
    params = incident_list_params(status=["active"], odata_filter=text)
    assert params["$filter"] == f"status eq 'active' and ({text})"


def test_blank_filters_add_nothing() -> None:
    assert checked_odata_filter("   ") is None
    assert "$filter" not in incident_list_params(odata_filter=" ")
    assert IncidentQuery.build(odata_filter="").odata_filter is None


def test_the_legacy_renaming_leaves_string_literals_alone() -> None:
    text = (
        "lastUpdateDateTime ge 2024-01-01T00:00:00Z and assignedTo eq 'lastUpdateDateTime (createdDateTime)'"
    )
    query = incident_list_query(odata_filter=text)
    assert query.params["$filter"] == (
        "(lastUpdateTime ge 2024-01-01T00:00:00Z and assignedTo eq 'lastUpdateDateTime (createdDateTime)')"
    )


# Fuzzing ------------------------------------------------------------------------------------------

hostile = st.lists(
    st.sampled_from([*"()' aeqndorst1=\"\\%&|", "''", " and ", " or ", "status eq 'active'"]), max_size=16
).map("".join)
values = st.one_of(hostile, st.text(max_size=20))


@settings(max_examples=400, deadline=None)
@given(
    odata_filter=st.one_of(st.none(), hostile, st.text(max_size=30)),
    assigned_to=st.one_of(st.none(), values),
    status=st.one_of(
        st.none(),
        st.lists(st.one_of(st.sampled_from(["active", "Resolved", "inProgress"]), values), max_size=2),
    ),
    legacy=st.booleans(),
)
def test_no_value_widens_the_composed_filter(
    odata_filter: str | None, assigned_to: str | None, status: list[str] | None, legacy: bool
) -> None:
    arguments: dict[str, Any] = {
        "odata_filter": odata_filter,
        "assigned_to": assigned_to,
        "status": status,
        "updated_from": "2026-06-01T00:00:00.0000000Z",
    }
    refused: MTPConfigError | None = None
    try:
        built = incident_list_query(**arguments).params if legacy else incident_list_params(**arguments)
    except MTPConfigError as exc:
        refused = exc
    if refused is not None:
        # Refused: the message names what was wrong.
        assert any(name in str(refused) for name in ("odata_filter", "status", "Invalid")), str(refused)
        return
    text = built["$filter"]
    clauses = top_level_clauses(text)
    expected = 0
    if status and (not legacy or len(status) == 1):
        expected += 1
    if assigned_to is not None:
        assert f"assignedTo eq {odata_string(assigned_to)}" in clauses
        expected += 1
    time_field = "lastUpdateTime" if legacy else "lastUpdateDateTime"
    assert f"{time_field} ge 2026-06-01T00:00:00.0000000Z" in clauses
    expected += 1
    raw = (odata_filter or "").strip()
    if raw:
        wrapped = clauses[-1]
        assert wrapper_closes_last(wrapped), f"{raw!r} escaped its parentheses: {text!r}"
        assert literals(wrapped) == literals(raw), "string literals reach the service as written"
        expected += 1
    assert len(clauses) == expected, (clauses, text)


def test_rename_fields_is_whole_words_only() -> None:
    names_map = {"lastUpdateDateTime": "lastUpdateTime"}
    assert rename_fields("xlastUpdateDateTime eq 1", names_map) == "xlastUpdateDateTime eq 1"
    assert rename_fields("lastUpdateDateTime eq 'lastUpdateDateTime'", names_map) == (
        "lastUpdateTime eq 'lastUpdateDateTime'"
    )
