"""JWT claims read without verification (common/jwt_claims.py): only to label data or explain errors."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from airflow_provider_mtp.common.jwt_claims import claims


def _part(value: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


def _token(payload: Any) -> str:
    return f"{_part({'alg': 'RS256', 'typ': 'JWT'})}.{_part(payload)}.c2lnbmF0dXJl"


@pytest.mark.parametrize(
    "payload",
    [
        {"tid": "72f988bf-86f1-41af-91ab-2d7cd011db47", "roles": ["SecurityIncident.Read.All"]},
        {"scp": "Incident.Read"},
        {"name": "Zoë ✓", "pad": "x"},  # non-ASCII, and lengths that need each amount of padding
        {"name": "Zoë ✓", "pad": "xx"},
        {"name": "Zoë ✓", "pad": "xxx"},
        {},
    ],
)
def test_claims_of_a_jwt(payload: dict[str, Any]) -> None:
    assert claims(_token(payload)) == payload


def test_padding_given_is_accepted() -> None:
    payload = {"tid": "t"}
    padded = base64.urlsafe_b64encode(json.dumps(payload).encode()).decode()
    assert claims(f"h.{padded}.s") == payload


@pytest.mark.parametrize(
    "token",
    [
        "",
        "not-a-jwt",
        "a.!!!.c",
        "a.bm90IGpzb24.c",  # base64 of "not json"
        _token(["a", "list"]),
        _token("a string"),
        "a.//8.c",  # bytes that are not UTF-8
    ],
)
def test_anything_else_is_none(token: str) -> None:
    assert claims(token) is None


def test_not_even_a_string_is_none() -> None:
    assert claims(None) is None  # type: ignore[arg-type]
