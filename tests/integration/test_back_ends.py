"""Both back ends through the same code: one incident shape, one hunting result, streamed.

The Graph and the legacy back end run against the same emulated tenant; everything a DAG sees
(ids, field names, enum spellings, comments, hunting rows) must be the same on both.
"""

from __future__ import annotations

import io
import tracemalloc
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from airflow_provider_mtp.api.client import SecurityClient
from airflow_provider_mtp.api.models import HuntingResult, incident_key
from airflow_provider_mtp.api.odata import odata_datetime
from airflow_provider_mtp.api.transport import ReplyCutOff
from airflow_provider_mtp.emulator import DefenderEmulator
from airflow_provider_mtp.errors import MTPConfigError, MTPServiceError
from tests.integration.test_transport import close_open_sessions, fresh, make_api

ENUMS = ("status", "severity", "classification", "determination")
ALERT_ENUMS = ("status", "severity", "classification", "determination", "serviceSource")


@pytest.fixture
def emulator(defender_emulator: DefenderEmulator) -> Iterator[DefenderEmulator]:
    yield fresh(defender_emulator)
    defender_emulator.reset()


@pytest.fixture(autouse=True)
def _close_sessions() -> Iterator[None]:
    yield
    close_open_sessions()


@pytest.fixture
def apis(emulator: DefenderEmulator) -> dict[str, SecurityClient]:
    return {dialect: make_api(emulator, dialect) for dialect in ("graph", "legacy")}


def _through_legacy(key: str, value: Any) -> Any:
    """The spelling a Graph value has after the legacy API: the same, except for documented losses.

    MTP has no twin of Graph's ``notMalicious``; the legacy API reports it as ``Clean`` and the
    mapping (api/mapping.py) turns that into ``clean``. Every other spelling survives unchanged.
    """
    if key == "determination" and value == "notMalicious":
        return "clean"
    return value


def _listing(api: SecurityClient, **filters: Any) -> list[dict[str, Any]]:
    """The same listing code for either back end."""
    return list(api.list_incidents(**filters))


# --------------------------------------------------------------------------------------------------
# Incidents
# --------------------------------------------------------------------------------------------------


def test_listing_is_lazy_and_pages(apis: dict[str, Any]) -> None:
    listing = apis["graph"].list_incidents(page_size=10)
    assert isinstance(listing, Iterator)
    first = [next(listing) for _ in range(15)]
    assert len({incident["id"] for incident in first}) == 15


@pytest.mark.parametrize("include_alerts", [False, True])
def test_same_ids_fields_and_enum_spellings_on_both_back_ends(
    apis: dict[str, Any], include_alerts: bool
) -> None:
    graph = _listing(apis["graph"], include_alerts=include_alerts)
    legacy = _listing(apis["legacy"], include_alerts=include_alerts)

    assert [incident["id"] for incident in graph] == [incident["id"] for incident in legacy]
    assert all(isinstance(incident["id"], str) for incident in legacy)
    for g, m in zip(graph, legacy, strict=True):
        assert set(g) == set(m), set(g) ^ set(m)
        assert {key: _through_legacy(key, g[key]) for key in ENUMS} == {key: m[key] for key in ENUMS}
        assert (g["lastUpdateDateTime"], g["createdDateTime"]) == (
            m["lastUpdateDateTime"],
            m["createdDateTime"],
        )
        assert g["customTags"] == m["customTags"]
        assert g["comments"] == m["comments"]
        assert g["tenantId"] == m["tenantId"]
        assert g["incidentWebUrl"] == m["incidentWebUrl"]
        assert incident_key(g) == incident_key(m)
        if include_alerts:
            assert [a["id"] for a in g["alerts"]] == [a["id"] for a in m["alerts"]]
            for ga, ma in zip(g["alerts"], m["alerts"], strict=True):
                assert set(ga) == set(ma), set(ga) ^ set(ma)
                assert {key: _through_legacy(key, ga[key]) for key in ALERT_ENUMS} == {
                    key: ma[key] for key in ALERT_ENUMS
                }
        else:
            assert "alerts" not in g
    spellings = {key: {incident[key] for incident in graph} for key in ENUMS}
    assert spellings["status"] <= {"active", "inProgress", "resolved", "redirected"}
    assert spellings["severity"] <= {"unknown", "informational", "low", "medium", "high"}


def test_filters_mean_the_same_on_both_back_ends(apis: dict[str, Any]) -> None:
    everything = _listing(apis["graph"])
    stamps = sorted(incident["lastUpdateDateTime"] for incident in everything)
    start, end = stamps[len(stamps) // 4], stamps[3 * len(stamps) // 4]
    owner = next(incident["assignedTo"] for incident in everything if incident["assignedTo"])
    cases: list[dict[str, Any]] = [
        {"status": ["active", "InProgress"]},  # several statuses: local on legacy
        {"status": ["Resolved"]},
        {"severity": ["high", "Medium"]},  # never server-side on legacy
        {"assigned_to": owner},
        {"updated_from": start, "updated_before": end},  # half-open, strings kept as given
        {"created_from": stamps[0], "status": ["active"], "severity": ["low"]},
    ]
    for filters in cases:
        graph = [incident["id"] for incident in _listing(apis["graph"], **filters)]
        legacy = [incident["id"] for incident in _listing(apis["legacy"], **filters)]
        assert graph == legacy, filters
        assert graph, f"the tenant should have incidents for {filters}"
    window = _listing(apis["graph"], updated_from=start, updated_before=end)
    assert all(start <= incident["lastUpdateDateTime"] < end for incident in window)
    assert start in {incident["lastUpdateDateTime"] for incident in window}, "ge includes the start"
    assert end not in {incident["lastUpdateDateTime"] for incident in window}, "lt excludes the end"


def test_bad_filter_values_fail_before_any_call(apis: dict[str, Any], emulator: DefenderEmulator) -> None:
    for api in apis.values():
        with pytest.raises(MTPConfigError, match="Invalid incident status 'open'"):
            api.list_incidents(status=["open"])
        with pytest.raises(MTPConfigError, match="updated_from must be an ISO 8601 time"):
            api.list_incidents(updated_from="yesterday")
        with pytest.raises(MTPConfigError, match="page_size"):
            api.list_incidents(page_size=0)
    assert emulator.stats()["requests"] == {}


def test_odata_datetimes_keep_seven_digits_and_write_utc() -> None:
    from datetime import datetime, timedelta, timezone

    assert odata_datetime("2024-05-01T00:00:00.1234567Z", name="x") == "2024-05-01T00:00:00.1234567Z"
    assert odata_datetime("2024-05-01T02:00:00+02:00", name="x") == "2024-05-01T02:00:00+02:00"
    assert odata_datetime("2024-05-01 00:00:00", name="x") == "2024-05-01T00:00:00Z"
    plus_two = timezone(timedelta(hours=2))
    assert odata_datetime(datetime(2024, 5, 1, 2, 0, 0, 500, tzinfo=plus_two), name="x") == (
        "2024-05-01T00:00:00.000500Z"
    )


@pytest.mark.parametrize("dialect", ["graph", "legacy"])
def test_get_update_and_comment_in_the_graph_shape(apis: dict[str, Any], dialect: str) -> None:
    api = apis[dialect]
    incident_id = _listing(apis["graph"], status=["active"], page_size=5)[0]["id"]

    got = api.get_incident(incident_id)
    assert got["id"] == incident_id
    assert "alerts" in got
    assert not any(key.startswith("@odata") for key in got)

    updated = api.update_incident(
        incident_id,
        {
            "status": "InProgress",
            "classification": "truePositive",
            "determination": "Malware",
            "customTags": ["ir-42"],
        },
        comment=f"triaged via {dialect}",
    )
    assert (updated["status"], updated["classification"], updated["determination"]) == (
        "inProgress",
        "truePositive",
        "malware",
    )
    assert updated["customTags"] == ["ir-42"]
    assert updated["comments"][-1]["comment"] == f"triaged via {dialect}"
    assert set(updated["comments"][-1]) == {"comment", "createdByDisplayName", "createdDateTime"}

    comments = api.add_incident_comment(incident_id, "second")
    assert [item["comment"] for item in comments[-2:]] == [f"triaged via {dialect}", "second"]
    seen_by_other = apis["legacy" if dialect == "graph" else "graph"].get_incident(
        incident_id, include_alerts=False
    )
    assert seen_by_other["status"] == "inProgress"
    assert "alerts" not in seen_by_other


def test_legacy_refuses_what_it_cannot_do(apis: dict[str, Any], emulator: DefenderEmulator) -> None:
    legacy = apis["legacy"]
    with pytest.raises(MTPConfigError, match="takes no Timespan"):
        legacy.run_hunting_query("print x = 1", timespan="P1D")
    with pytest.raises(MTPConfigError, match="Cannot update summary through the legacy MTP API"):
        legacy.update_incident("1", {"summary": "x"})
    with pytest.raises(MTPConfigError, match="whole numbers"):
        legacy.get_incident("abc")
    with pytest.raises(MTPConfigError, match="Invalid classification"):
        apis["graph"].update_incident("1", {"classification": "bad"})
    assert emulator.stats()["requests"] == {}


# --------------------------------------------------------------------------------------------------
# Hunting
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dialect", ["graph", "legacy"])
def test_hunting_result_shape_on_both_back_ends(apis: dict[str, Any], dialect: str) -> None:
    query = "DeviceProcessEvents | take 3 | project Timestamp, FileName"
    with apis[dialect].run_hunting_query(query) as result:
        assert result.schema == [
            {"name": "Timestamp", "type": "DateTime"},
            {"name": "FileName", "type": "String"},
        ]
        rows = list(result.rows)
    assert len(rows) == 3
    assert set(rows[0]) == {"Timestamp", "FileName"}
    assert (result.stats is None) == (dialect == "graph")
    with pytest.raises(RuntimeError, match="can be read only once"):
        list(result.rows)


@pytest.mark.parametrize("dialect", ["graph", "legacy"])
def test_a_100000_row_hunt_streams(apis: dict[str, Any], emulator: DefenderEmulator, dialect: str) -> None:
    query = "range x from 1 to 100000 step 1"
    # The size of the document when read whole, for comparison.
    whole = make_api(emulator, dialect).transport.request("POST", _hunt_path(dialect), json={"Query": query})
    document_bytes = len(whole.content)
    del whole

    tracemalloc.start()
    try:
        result = apis[dialect].run_hunting_query(query)
        rows = result.rows
        assert isinstance(rows, Iterator)
        assert not isinstance(rows, list)
        total = count = 0
        for row in rows:
            total += row["x"]
            count += 1
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert count == result.rows_read == 100_000
    assert total == 100_000 * 100_001 // 2
    assert result.exhausted
    # Streaming holds a chunk's worth of rows, not the document nor 100,000 dicts.
    assert peak < document_bytes / 2, (peak, document_bytes)


def _hunt_path(dialect: str) -> str:
    return "/v1.0/security/runHuntingQuery" if dialect == "graph" else "/api/advancedhunting/run"


# --------------------------------------------------------------------------------------------------
# HuntingResult on canned replies
# --------------------------------------------------------------------------------------------------


def _reply(body: bytes) -> requests.Response:
    response = requests.Response()
    response.status_code = 200
    response.raw = io.BytesIO(body)
    return response


def test_legacy_shape_with_stats_and_pascal_case_schema() -> None:
    body = (
        b'{"Stats":{"ExecutionTime":0.09,"dataset_statistics":[{"table_row_count":2}]},'
        b'"Schema":[{"Name":"Timestamp","Type":"DateTime"},{"Name":"Score","Type":"Double"}],'
        b'"Results":[{"Timestamp":"2024-04-26T09:37:48Z","Score":1.5},{"Timestamp":"2024-04-26T09:38:00Z","Score":2}]}'
    )
    result = HuntingResult.from_response(_reply(body), chunk_size=7)
    assert result.stats == {"ExecutionTime": 0.09, "dataset_statistics": [{"table_row_count": 2}]}
    assert result.schema == [{"name": "Timestamp", "type": "DateTime"}, {"name": "Score", "type": "Double"}]
    assert [row["Score"] for row in result.rows] == [1.5, 2]
    assert isinstance(result.stats["ExecutionTime"], float)


def test_schema_after_results_is_buffered() -> None:
    body = b'{"results":[{"a":1},{"a":2},{"a":3}],"schema":[{"name":"a","type":"Int64"}]}'
    result = HuntingResult.from_response(_reply(body), chunk_size=5)
    assert result.schema == [{"name": "a", "type": "Int64"}]
    assert [row["a"] for row in result.rows] == [1, 2, 3]


def test_a_body_cut_before_the_first_row_asks_for_a_retry() -> None:
    with pytest.raises(ReplyCutOff):
        HuntingResult.from_response(
            _reply(b'{"schema":[{"name":"a","type":"Int64"}],"results":['), chunk_size=8
        )


def test_a_body_cut_after_some_rows_fails_when_reached() -> None:
    result = HuntingResult.from_response(
        _reply(b'{"schema":[],"results":[{"a":1},{"a":2},{"a"'), chunk_size=4
    )
    rows = result.rows
    assert next(rows) == {"a": 1}
    assert next(rows) == {"a": 2}
    with pytest.raises(MTPServiceError, match="cut off after 2 rows"):
        next(rows)


def test_rows_can_be_resumed_but_not_reread() -> None:
    result = HuntingResult.from_rows(
        schema=[{"Name": "a", "Type": "Int64"}], rows=({"a": i} for i in range(5))
    )
    assert result.schema == [{"name": "a", "type": "Int64"}]
    rows = result.rows
    assert [row["a"] for _, row in zip(range(2), rows, strict=False)] == [0, 1]
    assert [row["a"] for row in rows] == [2, 3, 4]
    with pytest.raises(RuntimeError, match="read only once"):
        iter(result.rows)


def test_closing_drops_the_rest() -> None:
    response = _reply(b'{"schema":[],"results":[{"a":1},{"a":2}]}')
    with HuntingResult.from_response(response) as result:
        assert next(result.rows) == {"a": 1}
    assert result.exhausted
    with pytest.raises(StopIteration):
        next(result.rows)
