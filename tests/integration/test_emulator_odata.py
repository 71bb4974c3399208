"""The emulator's OData subset: $filter, $orderby, $top and $skip (datetime ticks: test_common_ticks.py)."""

from __future__ import annotations

from typing import Any

import pytest

from airflow_provider_mtp.emulator import odata
from airflow_provider_mtp.emulator.odata import (
    FieldKind,
    ODataError,
    TopLimitError,
    parse_filter,
    parse_orderby,
    parse_skip,
    parse_top,
)

GRAPH_FIELDS: dict[str, FieldKind] = {
    "assignedTo": "string",
    "classification": "enum",
    "createdDateTime": "datetime",
    "lastUpdateDateTime": "datetime",
    "severity": "enum",
    "status": "enum",
    "priorityScore": "integer",
}
LEGACY_FIELDS: dict[str, FieldKind] = {
    "lastUpdateTime": "datetime",
    "createdTime": "datetime",
    "status": "enum",
    "assignedTo": "string",
}

ROW: dict[str, Any] = {
    "assignedTo": "Analyst@Contoso.com",
    "classification": "truePositive",
    "createdDateTime": "2020-09-06T14:46:57.0733333Z",
    "lastUpdateDateTime": "2020-09-06T14:46:57.29Z",
    "severity": "high",
    "status": "active",
    "priorityScore": 87,
}
NULLS: dict[str, Any] = {**ROW, "assignedTo": None, "lastUpdateDateTime": None, "priorityScore": None}


def matches(text: str, row: dict[str, Any] = ROW) -> bool:
    return parse_filter(text, fields=GRAPH_FIELDS)(row)


# --------------------------------------------------------------------------------------------------
# $filter: happy paths
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("lastUpdateDateTime ge 2020-09-06T14:46:57.2900000Z", True),
        ("lastUpdateDateTime gt 2020-09-06T14:46:57.29Z", False),
        ("lastUpdateDateTime gt 2020-09-06T14:46:57.2899999Z", True),
        ("lastUpdateDateTime lt 2020-09-06T14:46:57.2900001Z", True),
        ("lastUpdateDateTime le 2020-09-06T14:46:57.289Z", False),
        ("lastUpdateDateTime eq 2020-09-06T16:46:57.29+02:00", True),
        ("createdDateTime ge 2020-09-06T14:46:57.0733334Z", False),
        ("createdDateTime ge 2020-09-06T14:46:57.0733333Z", True),
        ("createdDateTime ne 2020-09-06T14:46:57.073333Z", True),
        ("status eq 'active'", True),
        ("status eq 'Active'", True),
        ("status ne 'ACTIVE'", False),
        ("status eq microsoft.graph.security.incidentStatus'active'", True),
        ("assignedTo eq 'analyst@contoso.com'", True),
        ("assignedTo gt 'a'", True),
        ("assignedTo lt 'a'", False),
        ("assignedTo eq 'O''Brien'", False),
        ("priorityScore ge 85", True),
        ("priorityScore lt 85", False),
        ("status eq 'active' and severity eq 'high'", True),
        ("status eq 'resolved' or severity eq 'high'", True),
        ("status eq 'resolved' or severity eq 'low'", False),
        ("not status eq 'resolved'", True),
        ("not (status eq 'active')", False),
        ("(status eq 'resolved' or status eq 'active') and (severity eq 'high')", True),
        # "and" binds tighter than "or".
        ("status eq 'active' or status eq 'x' and severity eq 'low'", True),
        ("(status eq 'active' or status eq 'x') and severity eq 'low'", False),
        ("assignedTo ne null", True),
        ("assignedTo eq null", False),
        # Keywords ignore case; "+" separates like a space.
        ("Status EQ 'active' AND NOT severity Eq 'low'", True),
        ("lastUpdateDateTime+ge+2020-09-06T14:46:57.29Z+and+status+eq+'active'", True),
        ("status eq 'a+b' or status eq 'active'", True),
        ("  ( status eq 'active' )  ", True),
        # Field names resolve case-insensitively, as on Graph.
        ("lastupdatedatetime ge 2020-01-01T00:00:00Z", True),
    ],
)
def test_filter(text: str, expected: bool) -> None:
    assert matches(text) is expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("assignedTo eq null", True),
        ("assignedTo ne null", False),
        ("assignedTo eq 'x'", False),
        ("assignedTo ne 'x'", True),
        ("lastUpdateDateTime gt 2020-01-01T00:00:00Z", False),
        ("lastUpdateDateTime lt 2020-01-01T00:00:00Z", False),
        ("lastUpdateDateTime ge null", False),
        ("priorityScore gt 1", False),
        ("priorityScore eq null", True),
    ],
)
def test_null_semantics(text: str, expected: bool) -> None:
    assert matches(text, NULLS) is expected


def test_missing_row_keys_count_as_null() -> None:
    assert matches("assignedTo eq null", {}) is True


def test_legacy_fields_and_plus_separators() -> None:
    predicate = parse_filter(
        "lastUpdateTime+ge+2020-06-03T18:04:29.4633333Z and status eq 'Active' and assignedTo eq 'x@y' "
        "and createdTime gt 2021-04-05T15:40:25Z",
        fields=LEGACY_FIELDS,
    )
    row = {
        "lastUpdateTime": "2020-06-03T18:04:29.4633333Z",
        "createdTime": "2021-04-05T15:40:25.0000001Z",
        "status": "active",
        "assignedTo": "X@Y",
    }
    assert predicate(row) is True
    assert predicate({**row, "lastUpdateTime": "2020-06-03T18:04:29.4633332Z"}) is False


def test_a_row_value_of_the_wrong_type_never_matches() -> None:
    row = {**ROW, "assignedTo": ["a"], "priorityScore": "87"}
    assert matches("assignedTo eq 'a'", row) is False
    assert matches("assignedTo ne 'a'", row) is True
    assert matches("priorityScore ge 1", row) is False


# --------------------------------------------------------------------------------------------------
# $filter: errors
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "message", "position"),
    [
        ("", "Expression expected at position 0 in '': found the end of the text.", 0),
        (
            "status eq",
            "Literal expected after 'eq' at position 9 in 'status eq': found the end of the text.",
            9,
        ),
        (
            "foo eq 'x'",
            "Could not find a property named 'foo' at position 0 in 'foo eq 'x'': the properties are "
            "assignedTo, classification, createdDateTime, lastUpdateDateTime, severity, status, priorityScore.",
            0,
        ),
        (
            "status is 'active'",
            "Comparison operator expected after 'status' at position 7 in 'status is 'active'': "
            "found 'is'; the operators are eq, ne, gt, ge, lt, le.",
            7,
        ),
        (
            "lastUpdateDateTime ge '2024-05-01T00:00:00Z'",
            "Incompatible types for operator 'ge' at position 22 in 'lastUpdateDateTime ge '2024-05-01T00:00:00Z'': "
            "property 'lastUpdateDateTime' is Edm.DateTimeOffset, the literal '2024-05-01T00:00:00Z' is Edm.String.",
            22,
        ),
        (
            "status eq 2024-05-01T00:00:00Z",
            "Incompatible types for operator 'eq' at position 10 in 'status eq 2024-05-01T00:00:00Z': "
            "property 'status' is Edm.Enum, the literal 2024-05-01T00:00:00Z is Edm.DateTimeOffset.",
            10,
        ),
        (
            "assignedTo eq ns.Type'x'",
            "Incompatible types for operator 'eq' at position 14 in 'assignedTo eq ns.Type'x'': "
            "property 'assignedTo' is Edm.String, the literal ns.Type'x' is Edm.Enum.",
            14,
        ),
        (
            "priorityScore eq '5'",
            "Incompatible types for operator 'eq' at position 17 in 'priorityScore eq '5'': "
            "property 'priorityScore' is Edm.Int64, the literal '5' is Edm.String.",
            17,
        ),
        (
            "status eq 'active' garbage",
            "Syntax error at position 19 in 'status eq 'active' garbage': "
            "unexpected 'garbage' after a complete expression.",
            19,
        ),
        ("status eq 'active')", "Syntax error at position 18 in 'status eq 'active')': unexpected ')'", 18),
        ("status eq 'abc", "There is an unterminated string literal at position 10 in 'status eq 'abc'.", 10),
        (
            "(status eq 'a'",
            "')' or operator expected at position 14 in '(status eq 'a'': found the end of the text.",
            14,
        ),
        ("status eq 'a' and", "Expression expected at position 17", 17),
        ("status eq 'a' or or", "Could not find a property named 'or' at position 17", 17),
        (
            "status eq status",
            "Literal expected after 'eq' at position 10 in 'status eq status': found 'status'.",
            10,
        ),
        (
            "status eq 'a'x",
            "Syntax error at position 13 in 'status eq 'a'x': character 'x' is not valid.",
            13,
        ),
        ("priorityScore eq 5x", "Syntax error at position 18", 18),
        (
            "status eq 'a' & x",
            "Syntax error at position 14 in 'status eq 'a' & x': character '&' is not valid.",
            14,
        ),
        ("status gt 'a'", "Operator 'gt' is not supported on enum property 'status' at position 7", 7),
        ("contains(assignedTo, 'x')", "Function 'contains' is not supported at position 0", 0),
        ("'a' eq status", "Expression expected at position 0 in ''a' eq status': found 'a'.", 0),
        (
            "priorityScore eq ٣",
            "Syntax error at position 17 in 'priorityScore eq ٣': character '٣' is not valid.",
            17,
        ),
        (
            "lastUpdateDateTime ge 2024-05-01T00:00:00",
            "Invalid datetime literal '2024-05-01T00:00:00' at position 22 in "
            "'lastUpdateDateTime ge 2024-05-01T00:00:00': a time zone is required (Z or ±hh:mm).",
            22,
        ),
        (
            "lastUpdateDateTime ge 2024-05-01T00:00:00.12345678Z",
            "Invalid datetime literal '2024-05-01T00:00:00.12345678Z' at position 22 in "
            "'lastUpdateDateTime ge 2024-05-01T00:00:00.12345678Z': at most 7 fractional digits (100 ns) are allowed.",
            22,
        ),
        (
            "lastUpdateDateTime ge 2024-02-30T00:00:00Z",
            "Invalid datetime literal '2024-02-30T00:00:00Z' at position 22 in "
            "'lastUpdateDateTime ge 2024-02-30T00:00:00Z': day is out of range for month.",
            22,
        ),
        ("lastUpdateDateTime ge 2024-05-01", "Invalid datetime literal '2024-05-01' at position 22", 22),
        ("lastUpdateDateTime ge 2024-05-01T00:00:00Zfoo", "Syntax error at position 42", 42),
    ],
)
def test_filter_errors(text: str, message: str, position: int) -> None:
    with pytest.raises(ODataError) as info:
        parse_filter(text, fields=GRAPH_FIELDS)
    assert str(info.value).startswith(message)
    assert info.value.position == position


def test_legacy_fields_reject_graph_names() -> None:
    with pytest.raises(ODataError, match="Could not find a property named 'severity'"):
        parse_filter("severity eq 'High'", fields=LEGACY_FIELDS)


# --------------------------------------------------------------------------------------------------
# $orderby
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("lastUpdateDateTime", [("lastUpdateDateTime", False)]),
        ("lastUpdateDateTime asc", [("lastUpdateDateTime", False)]),
        ("lastUpdateDateTime DESC", [("lastUpdateDateTime", True)]),
        ("lastUpdateDateTime+asc", [("lastUpdateDateTime", False)]),
        (
            "lastUpdateDateTime asc, createdDateTime desc,status",
            [("lastUpdateDateTime", False), ("createdDateTime", True), ("status", False)],
        ),
        ("createddatetime desc", [("createdDateTime", True)]),
    ],
)
def test_orderby(text: str, expected: list[tuple[str, bool]]) -> None:
    assert parse_orderby(text, fields=GRAPH_FIELDS) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "Property name expected at position 0 in '': found the end of the text."),
        ("displayName asc", "Could not find a property named 'displayName' at position 0"),
        (
            "status up",
            "Syntax error at position 7 in 'status up': unexpected 'up' after a complete expression.",
        ),
        ("status asc,", "Property name expected at position 11"),
        (
            "status, status desc",
            "Duplicate property named 'status' is not supported in $orderby at position 8",
        ),
        ("status asc desc", "Syntax error at position 11"),
    ],
)
def test_orderby_errors(text: str, message: str) -> None:
    with pytest.raises(ODataError) as info:
        parse_orderby(text, fields=GRAPH_FIELDS)
    assert str(info.value).startswith(message)


# --------------------------------------------------------------------------------------------------
# $top and $skip
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "expected"), [(None, 25), ("0", 0), ("7", 7), ("50", 50), ("007", 7)])
def test_top(text: str | None, expected: int) -> None:
    assert parse_top(text, maximum=50, default=25) == expected


def test_top_over_the_limit_has_graphs_exact_message() -> None:
    with pytest.raises(TopLimitError) as info:
        parse_top("100", maximum=50, default=50)
    assert str(info.value) == (
        "The query specified in the URI is not valid. The limit of '50' for Top query has been exceeded. "
        "The value from the incoming request is '100'."
    )
    assert (info.value.limit, info.value.value) == (50, "100")
    assert isinstance(info.value, ODataError)


def test_top_can_clamp() -> None:
    assert parse_top("5000", maximum=1000, default=100, clamp=True) == 1000


@pytest.mark.parametrize("text", ["-1", "abc", "", " 5", "1.5", "+5", "٣"])
def test_top_must_be_a_non_negative_integer(text: str) -> None:
    with pytest.raises(ODataError) as info:
        parse_top(text, maximum=50, default=50)
    assert str(info.value) == (
        f"Invalid value '{text}' for $top query option found. "
        "The $top query option requires a non-negative integer value."
    )
    assert not isinstance(info.value, TopLimitError)


@pytest.mark.parametrize(("text", "expected"), [(None, 0), ("0", 0), ("250", 250)])
def test_skip(text: str | None, expected: int) -> None:
    assert parse_skip(text) == expected


@pytest.mark.parametrize("text", ["-5", "x", ""])
def test_skip_errors(text: str) -> None:
    with pytest.raises(ODataError, match=r"^Invalid value '.*' for \$skip query option found\."):
        parse_skip(text)


def test_public_names() -> None:
    assert set(odata.__all__) >= {"parse_filter", "parse_orderby", "parse_top", "parse_skip"}
