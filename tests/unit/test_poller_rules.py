"""The pure parts of coalesced polling (``triggers/poller.py``): which ranges a round lists, which
filters it sends, and how each trigger's differing filters are applied to the shared records.

The end-to-end proof (the same events as independent polling, on both back ends) is
``tests/integration/test_coalesced_polling.py``.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from airflow_provider_mtp.alert_rules import ALERTS
from airflow_provider_mtp.api.alert_query import AlertQuery
from airflow_provider_mtp.api.incident_query import IncidentQuery
from airflow_provider_mtp.incident_rules import INCIDENTS
from airflow_provider_mtp.triggers import poller
from airflow_provider_mtp.triggers.poller import _Ask, _common, _groups, _union


def window(start: str, end: str, **filters: Any) -> IncidentQuery:
    return IncidentQuery.build(
        updated_from=f"2026-06-01T{start}Z", updated_before=f"2026-06-01T{end}Z", **filters
    )


def ask(query: Any) -> _Ask:
    loop = asyncio.new_event_loop()
    try:
        return _Ask(hook=None, asked=query, interval=5.0, future=loop.create_future())  # type: ignore[arg-type]
    finally:
        loop.close()


def test_overlapping_and_touching_windows_are_one_range_and_far_ones_their_own() -> None:
    ranges = _union(
        [
            window("00:00:00", "01:00:00"),
            window("00:30:00", "02:00:00"),
            window("02:00:00", "03:00:00"),  # touches the first two
            window("10:00:00", "11:00:00"),  # apart
        ]
    )
    assert [(r.start_literal, r.end_literal) for r in ranges] == [
        ("2026-06-01T00:00:00Z", "2026-06-01T03:00:00Z"),
        ("2026-06-01T10:00:00Z", "2026-06-01T11:00:00Z"),
    ]


def test_one_window_is_listed_with_its_own_bounds_verbatim() -> None:
    query = IncidentQuery.build(
        updated_from="2026-06-01T00:00:00.1234567Z", updated_before="2026-06-01T01:00:00.7654321Z"
    )
    [only] = _union([query])
    assert (only.start_literal, only.end_literal) == (query.updated_from, query.updated_before)


def test_shared_filters_are_sent_and_differing_ones_applied_per_trigger() -> None:
    high = ask(window("00:00:00", "01:00:00", severity=["high"], status=["active"]))
    low = ask(window("00:00:00", "01:00:00", severity=["low", "medium"], status=["active"]))
    anyone = ask(window("00:00:00", "01:00:00", status="active"))
    base, local = _common(INCIDENTS, [high, low, anyone])
    # Every trigger wants active ones: sent. Severities differ: listed without, applied here.
    assert (base.status, base.severity) == (("active",), None)
    records = [{"severity": s, "status": "active"} for s in ("high", "low", "Medium", "informational")]
    assert [r["severity"] for r in records if (keep := local(high)) is None or keep(r)] == ["high"]
    assert [r["severity"] for r in records if (keep := local(low)) is None or keep(r)] == ["low", "Medium"]
    assert local(anyone) is None


def test_an_assignee_is_compared_exactly_and_alert_enums_by_their_graph_spelling() -> None:
    mine = ask(window("00:00:00", "01:00:00", assigned_to="a@contoso.example"))
    other = ask(window("00:00:00", "01:00:00", assigned_to="b@contoso.example"))
    base, local = _common(INCIDENTS, [mine, other])
    assert base.to_json()["assigned_to"] is None
    keep = local(mine)
    assert keep is not None
    assert keep({"assignedTo": "a@contoso.example"})
    assert not keep({"assignedTo": "A@contoso.example"})

    bounds = {"updated_from": "2026-06-01T00:00:00Z", "updated_before": "2026-06-01T01:00:00Z"}
    endpoint = ask(AlertQuery.build(service_source="microsoftDefenderForEndpoint", **bounds))
    office = ask(AlertQuery.build(service_source=["microsoftDefenderForOffice365"], **bounds))
    _, alert_local = _common(ALERTS, [endpoint, office])
    keep = alert_local(endpoint)
    assert keep is not None
    assert keep({"serviceSource": "microsoftDefenderForEndpoint"})
    assert not keep({"serviceSource": "microsoftDefenderForOffice365"})


def test_other_service_side_fields_split_the_round_into_groups() -> None:
    plain = ask(window("00:00:00", "01:00:00", severity="high"))
    raw = ask(window("00:00:00", "01:00:00", odata_filter="id eq '1'"))
    also_plain = ask(window("05:00:00", "06:00:00", severity="low"))
    groups = _groups(INCIDENTS, [plain, raw, also_plain])
    assert sorted(len(group) for group in groups) == [1, 2]


@pytest.mark.parametrize(
    ("value", "expected"), [("false", False), ("0", False), ("OFF", False), ("yes", True)]
)
def test_the_switch_reads_the_environment_unless_set(
    monkeypatch: pytest.MonkeyPatch, value: str, expected: bool
) -> None:
    monkeypatch.setattr(poller, "COALESCING", None)
    monkeypatch.setenv(poller.COALESCE_ENV, value)
    assert poller.coalescing() is expected
    monkeypatch.setattr(poller, "COALESCING", True)
    assert poller.coalescing() is True
