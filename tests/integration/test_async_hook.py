"""MTPAsyncHook against the emulator over TLS, with real msal tokens: the twin of MTPHook.

Every read and write of the async hook is checked against what the sync hook returns for the same
call, on both back ends (``graph`` and ``legacy``): incidents read one at a time and listed (with
filters the service applies and those applied locally), updates and comments (read back with the
sync hook), hunting streamed with ``async for``, and retries through the emulator's fault
injection. The two hooks share the back ends and the call rules (``api/client.py``), so a
difference here is a bug in one of the two transports or in a hook.

Waits are the emulator's ``Retry-After: 0``, so no test sleeps; the one bounded poll waits for a
``late`` write the emulator applies after it cut the connection.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import aclosing
from typing import Any, TypeVar

import pytest

from airflow_provider_mtp.api.incident_query import IncidentQuery
from airflow_provider_mtp.api.transport_async import AsyncHuntingResult
from airflow_provider_mtp.auth import clear_token_cache
from airflow_provider_mtp.emulator import DefenderEmulator
from airflow_provider_mtp.errors import (
    MTPConfigError,
    MTPNotFoundError,
    MTPQueryError,
    MTPServiceError,
)
from airflow_provider_mtp.hooks.mtp import MTPHook
from airflow_provider_mtp.hooks.mtp_async import MTPAsyncHook

T = TypeVar("T")

CONN_ID = "mtp_async_parity"
APIS = ("graph", "legacy")
INCIDENTS = {"graph": "/v1.0/security/incidents", "legacy": "/api/incidents"}
HUNT = {"graph": "/v1.0/security/runHuntingQuery", "legacy": "/api/advancedhunting/run"}
#: The route (as the emulator counts it) that adds a comment on each back end.
COMMENT_ROUTE = {
    "graph": "POST /v1.0/security/incidents/{incident_id}/comments",
    "legacy": "PATCH /api/incidents/{incident_id}",
}

#: A closed June 2026 window (no seeded incident is that old) for incidents the tests put there.
JUNE_FROM, JUNE_BEFORE = "2026-06-01T00:00:00Z", "2026-06-02T00:00:00Z"

#: Small KQL with its time window in the query itself, so it runs unchanged on the legacy API
#: (which takes no Timespan). The data clock is 2026-11-20T12:00:00Z (tests/conftest.py).
WINDOWED_KQL = (
    "DeviceProcessEvents"
    " | where Timestamp between (datetime(2026-11-19T00:00:00Z) .. datetime(2026-11-20T00:00:00Z))"
    " | order by Timestamp asc, ReportId asc"
    " | take 7"
    " | project Timestamp, DeviceName, FileName, ReportId"
)


# --------------------------------------------------------------------------------------------------
# Fixtures and helpers
# --------------------------------------------------------------------------------------------------


@pytest.fixture
def emulator(
    defender_emulator: DefenderEmulator, monkeypatch: pytest.MonkeyPatch
) -> Iterator[DefenderEmulator]:
    """The shared emulator, reset (data, counters, faults), as the connection ``mtp_async_parity``."""
    defender_emulator.reset()
    defender_emulator.clear_faults()
    clear_token_cache()
    monkeypatch.setenv(f"AIRFLOW_CONN_{CONN_ID.upper()}", defender_emulator.airflow_conn)
    yield defender_emulator
    defender_emulator.clear_faults()
    defender_emulator.reset()
    clear_token_cache()


@pytest.fixture(params=APIS)
def api(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def sync_hook(emulator: DefenderEmulator, api: str) -> Iterator[MTPHook]:
    """The sync hook on the same connection and back end: the reference."""
    with MTPHook(CONN_ID, api=api) as hook:
        yield hook


def run_async(api: str, scenario: Callable[[MTPAsyncHook], Awaitable[T]]) -> T:
    """Run ``scenario`` with its own async hook in a fresh event loop, as a trigger would; closed after."""

    async def main() -> T:
        async with MTPAsyncHook(mtp_conn_id=CONN_ID, api=api) as hook:
            return await scenario(hook)

    return asyncio.run(main())


async def alist(hook: MTPAsyncHook, *args: Any, **kwargs: Any) -> list[dict[str, Any]]:
    async with aclosing(hook.list_incidents(*args, **kwargs)) as listing:
        return [incident async for incident in listing]


def api_requests(emulator: DefenderEmulator) -> dict[str, dict[str, int]]:
    """Calls to the Graph and MTP APIs (not Entra ID), by route and status."""
    return {
        route: counts
        for route, counts in emulator.stats()["requests"].items()
        if route.split(" ", 1)[-1].startswith(("/v1.0/", "/beta/", "/api/"))
    }


def comments_of(hook: MTPHook, incident_id: str) -> list[str]:
    return [
        item["comment"] for item in hook.get_incident(incident_id, include_alerts=False).get("comments") or []
    ]


def june_incidents(emulator: DefenderEmulator) -> list[dict[str, Any]]:
    """Six incidents in the June window, with classifications and tags to filter on locally."""
    return emulator.put_incidents(
        *(
            {
                "displayName": f"parity {number}",
                "severity": ("high", "medium", "low")[number % 3],
                "classification": ("truePositive", "falsePositive", "unknown")[number % 3],
                "customTags": [["red"], ["red", "blue"], []][number % 3],
                "createdDateTime": f"2026-06-01T0{number}:00:00Z",
                "lastUpdateDateTime": f"2026-06-01T0{number}:30:00Z",
            }
            for number in range(6)
        )
    )


def seeded_incident_with_alerts(hook: MTPHook) -> str:
    """The id of a seeded incident that has alerts."""
    for incident in hook.list_incidents(page_size=20, include_alerts=True):
        if incident.get("alerts"):
            return str(incident["id"])
    raise AssertionError("no seeded incident with alerts")


# --------------------------------------------------------------------------------------------------
# 1. get_incident
# --------------------------------------------------------------------------------------------------


def test_get_incident_is_what_the_sync_hook_returns(sync_hook: MTPHook, api: str) -> None:
    incident_id = seeded_incident_with_alerts(sync_hook)

    async def scenario(hook: MTPAsyncHook) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
        return (
            await hook.get_incident(incident_id),
            await hook.get_incident(int(incident_id), include_alerts=False),
            await hook.get_incident(incident_id, include_alerts=True),
        )

    with_alerts, without_alerts, again = run_async(api, scenario)

    assert with_alerts == sync_hook.get_incident(incident_id) == again
    assert with_alerts["alerts"], "the alerts are embedded"
    assert without_alerts == sync_hook.get_incident(incident_id, include_alerts=False)
    assert "alerts" not in without_alerts or without_alerts["alerts"] in (None, [])
    assert without_alerts["id"] == incident_id


def test_an_unknown_incident_is_not_found_on_both_hooks(sync_hook: MTPHook, api: str) -> None:
    with pytest.raises(MTPNotFoundError):
        sync_hook.get_incident("987654321")

    async def scenario(hook: MTPAsyncHook) -> None:
        await hook.get_incident("987654321")

    with pytest.raises(MTPNotFoundError):
        run_async(api, scenario)


# --------------------------------------------------------------------------------------------------
# 2. list_incidents
# --------------------------------------------------------------------------------------------------


def test_listing_with_a_query_is_the_sync_hooks(
    emulator: DefenderEmulator, sync_hook: MTPHook, api: str
) -> None:
    made = june_incidents(emulator)
    query = IncidentQuery.build(
        severity=["high", "medium"],
        classification=["truePositive", "falsePositive"],
        tags=["red"],
        updated_from=JUNE_FROM,
        updated_before=JUNE_BEFORE,
        include_alerts=False,
        page_size=2,  # several pieces: the listing plan runs the same on both
    )

    found = run_async(api, lambda hook: alist(hook, query))

    assert found == list(sync_hook.list_incidents(query))
    # Severity (filtered by the service on Graph, locally on legacy), classification and tags
    # (locally on both) leave the four incidents numbered 0, 1, 3 and 4.
    expected = {made[number]["id"] for number in (0, 1, 3, 4)}
    assert {incident["id"] for incident in found} == expected
    assert all(incident["customTags"] and "red" in incident["customTags"] for incident in found)


def test_listing_with_keyword_filters_is_the_sync_hooks(
    emulator: DefenderEmulator, sync_hook: MTPHook, api: str
) -> None:
    made = june_incidents(emulator)
    filters: dict[str, Any] = {
        "classification": "falsePositive",
        "tags": ["blue"],
        "status": ["active", "inProgress"],  # several statuses: filtered locally on legacy
        "created_from": "2026-06-01T00:00:00Z",
        "updated_before": JUNE_BEFORE,
        "include_alerts": False,
    }

    found = run_async(api, lambda hook: alist(hook, **filters))

    assert found == list(sync_hook.list_incidents(**filters))
    assert [incident["id"] for incident in found] == [made[4]["id"], made[1]["id"]], "newest first"


def test_listing_seeded_incidents_with_alerts_is_the_sync_hooks(sync_hook: MTPHook, api: str) -> None:
    filters: dict[str, Any] = {
        "severity": ["high"],
        "updated_from": "2026-11-15T00:00:00Z",
        "include_alerts": True,
    }

    found = run_async(api, lambda hook: alist(hook, **filters))

    assert found, "the seeded tenant has recent high-severity incidents"
    assert found == list(sync_hook.list_incidents(**filters))
    assert any(incident.get("alerts") for incident in found)


def test_a_bad_listing_filter_fails_before_any_call(emulator: DefenderEmulator, api: str) -> None:
    with pytest.raises(MTPConfigError):
        run_async(api, lambda hook: alist(hook, severity=["catastrophic"]))
    assert api_requests(emulator) == {}


# --------------------------------------------------------------------------------------------------
# 3. update_incident and 4. add_incident_comment
# --------------------------------------------------------------------------------------------------


def test_update_applies_and_returns_the_incident_in_the_graph_shape(
    emulator: DefenderEmulator, sync_hook: MTPHook, api: str
) -> None:
    incident_id = emulator.put_incidents({"displayName": "to update"})[0]["id"]

    async def scenario(hook: MTPAsyncHook) -> dict[str, Any]:
        return await hook.update_incident(
            incident_id,
            status="resolved",
            classification="truePositive",
            determination="malware",
            tags=["parity", "async"],
            comment="updated by the async hook",
        )

    returned = run_async(api, scenario)

    read_back = sync_hook.get_incident(incident_id, include_alerts=False)
    for incident in (returned, read_back):
        assert incident["id"] == incident_id
        assert incident["status"] == "resolved"
        assert incident["classification"] == "truePositive"
        assert incident["determination"] == "malware"
        assert incident["customTags"] == ["parity", "async"]
        assert [item["comment"] for item in incident["comments"]] == ["updated by the async hook"]
        assert "alerts" not in incident
    # The Graph shape, whichever back end answered: the same fields as the sync hook's read.
    assert set(returned) == set(read_back)
    assert returned == read_back
    assert api_requests(emulator)[COMMENT_ROUTE[api]] == {"200": 1}, "one call adds the comment"


def test_update_with_only_a_comment_is_the_incident_afterwards(
    emulator: DefenderEmulator, sync_hook: MTPHook, api: str
) -> None:
    incident_id = emulator.put_incidents({"displayName": "comment only"})[0]["id"]

    returned = run_async(api, lambda hook: hook.update_incident(incident_id, comment="only this"))

    assert comments_of(sync_hook, incident_id) == ["only this"]
    assert returned["id"] == incident_id
    assert [item["comment"] for item in returned["comments"]] == ["only this"]


@pytest.mark.parametrize(
    "changes",
    [
        {"status": "finished"},
        {"classification": "bad"},
        {"determination": "nonsense"},
        {"tags": ["ok", ""]},
        {"comment": "   "},
        {},
    ],
    ids=["status", "classification", "determination", "tags", "blank-comment", "nothing"],
)
def test_a_bad_update_fails_before_any_call(
    emulator: DefenderEmulator, api: str, changes: dict[str, Any]
) -> None:
    incident_id = emulator.put_incidents({"displayName": "untouched"})[0]["id"]
    with pytest.raises(MTPConfigError):
        run_async(api, lambda hook: hook.update_incident(incident_id, **changes))
    assert api_requests(emulator) == {}


def test_add_incident_comment_adds_exactly_one(
    emulator: DefenderEmulator, sync_hook: MTPHook, api: str
) -> None:
    incident_id = emulator.put_incidents({"displayName": "comment me"})[0]["id"]
    sync_hook.add_incident_comment(incident_id, "first, by the sync hook")

    comments = run_async(
        api, lambda hook: hook.add_incident_comment(incident_id, "second, by the async hook")
    )

    expected = ["first, by the sync hook", "second, by the async hook"]
    assert [item["comment"] for item in comments] == expected
    assert comments_of(sync_hook, incident_id) == expected
    assert api_requests(emulator)[COMMENT_ROUTE[api]] == {"200": 2}


def test_a_blank_comment_fails_before_any_call(emulator: DefenderEmulator, api: str) -> None:
    with pytest.raises(MTPConfigError):
        run_async(api, lambda hook: hook.add_incident_comment("1", " "))
    assert api_requests(emulator) == {}


# --------------------------------------------------------------------------------------------------
# 5. Hunting, streamed
# --------------------------------------------------------------------------------------------------


async def ahunt(hook: MTPAsyncHook, query: str, **kwargs: Any) -> tuple[list[dict[str, str]], Any, list[Any]]:
    async with await hook.run_hunting_query(query, **kwargs) as result:
        assert isinstance(result, AsyncHuntingResult)
        schema, stats = result.schema, result.stats
        rows = [row async for row in result.rows]
        assert result.rows_read == len(rows)
        assert result.exhausted
        return schema, stats, rows


@pytest.mark.parametrize("query", [WINDOWED_KQL, "range x from 1 to 5 step 1"], ids=["windowed", "range"])
def test_hunting_streams_the_sync_hooks_schema_and_rows(sync_hook: MTPHook, api: str, query: str) -> None:
    schema, stats, rows = run_async(api, lambda hook: ahunt(hook, query))

    with sync_hook.run_hunting_query(query) as expected:
        assert schema == expected.schema
        assert rows == list(expected.rows)
        expected_stats = expected.stats
    assert rows, "the query returns rows"
    assert (stats is None) == (api == "graph"), "the legacy API sends Stats, Graph does not"
    if stats is not None:
        # The same figures, but for the execution times the service measured on each run.
        assert expected_stats is not None
        assert set(stats) == set(expected_stats)
        assert stats["dataset_statistics"] == expected_stats["dataset_statistics"]


def test_an_empty_hunting_result_has_the_sync_hooks_schema(sync_hook: MTPHook, api: str) -> None:
    query = "DeviceProcessEvents | where FileName == 'no-such-file.exe' | project Timestamp, FileName"
    schema, _, rows = run_async(api, lambda hook: ahunt(hook, query))
    with sync_hook.run_hunting_query(query) as expected:
        assert (
            schema
            == expected.schema
            == [
                {"name": "Timestamp", "type": "DateTime"},
                {"name": "FileName", "type": "String"},
            ]
        )
        assert list(expected.rows) == rows == []


def test_graph_hunting_with_a_timespan_is_the_sync_hooks(emulator: DefenderEmulator) -> None:
    query = (
        "DeviceProcessEvents | order by Timestamp asc, ReportId asc | take 4 | project Timestamp, ReportId"
    )
    timespan = "2026-11-19T00:00:00Z/2026-11-20T00:00:00Z"
    schema, _, rows = run_async("graph", lambda hook: ahunt(hook, query, timespan=timespan))
    with MTPHook(CONN_ID, api="graph") as hook, hook.run_hunting_query(query, timespan=timespan) as expected:
        assert (schema, rows) == (expected.schema, list(expected.rows))
    assert all("2026-11-19" <= row["Timestamp"] < "2026-11-20" for row in rows)


def test_legacy_hunting_refuses_a_timespan_before_any_call(emulator: DefenderEmulator) -> None:
    with pytest.raises(MTPConfigError, match="put the window in the KQL"):
        run_async("legacy", lambda hook: hook.run_hunting_query("print x = 1", timespan="P1D"))
    assert api_requests(emulator) == {}


def test_a_kql_syntax_error_is_a_query_error(emulator: DefenderEmulator, api: str) -> None:
    with pytest.raises(MTPQueryError) as failure:
        run_async(api, lambda hook: hook.run_hunting_query("DeviceProcessEvents | where | x"))
    assert failure.value.status == 400
    assert failure.value.service_message
    assert api_requests(emulator)[f"POST {HUNT[api]}"] == {"400": 1}, "not retried"


def test_the_rows_stream_once(api: str, emulator: DefenderEmulator) -> None:
    async def scenario(hook: MTPAsyncHook) -> list[int]:
        result = await hook.run_hunting_query("range x from 1 to 3 step 1")
        rows = [row["x"] async for row in result.rows]
        with pytest.raises(RuntimeError, match="can be read only once"):
            async for _ in result.rows:
                pass
        return rows

    assert run_async(api, scenario) == [1, 2, 3]


def test_closing_early_drops_the_rest_and_the_hook_goes_on(api: str, emulator: DefenderEmulator) -> None:
    async def scenario(hook: MTPAsyncHook) -> tuple[list[int], AsyncHuntingResult, list[int]]:
        result = await hook.run_hunting_query("range x from 1 to 100000 step 1")
        first = []
        async for row in result.rows:
            first.append(row["x"])
            if len(first) == 3:
                break
        # Resumable until closed: the next row follows on.
        first.append((await anext(aiter(result.rows)))["x"])
        await result.aclose()
        assert result.exhausted
        with pytest.raises(RuntimeError, match="can be read only once"):
            aiter(result.rows)
        # The reply was let go of, and the same session serves the next call.
        after = await hook.run_hunting_query("range x from 1 to 2 step 1")
        return first, result, [row["x"] async for row in after.rows]

    first, result, after = run_async(api, scenario)
    assert first == [1, 2, 3, 4]
    assert result.rows_read == 4
    assert after == [1, 2]


# --------------------------------------------------------------------------------------------------
# 6. Retries through the async hook
# --------------------------------------------------------------------------------------------------


def test_a_503_with_retry_after_0_on_the_listing_is_retried(
    emulator: DefenderEmulator, sync_hook: MTPHook, api: str
) -> None:
    made = june_incidents(emulator)
    filters: dict[str, Any] = {
        "updated_from": JUNE_FROM,
        "updated_before": JUNE_BEFORE,
        "include_alerts": False,
    }
    emulator.inject_fault(path=INCIDENTS[api], method="GET", status=503, retry_after=0)

    found = run_async(api, lambda hook: alist(hook, **filters))

    assert api_requests(emulator)[f"GET {INCIDENTS[api]}"] == {"503": 1, "200": 1}
    assert [incident["id"] for incident in found] == [item["id"] for item in reversed(made)]
    assert found == list(sync_hook.list_incidents(**filters))


def test_a_hunting_reply_dropped_before_the_first_row_is_retried(
    emulator: DefenderEmulator, api: str
) -> None:
    emulator.inject_fault(path=HUNT[api], kind="drop")
    _, _, rows = run_async(api, lambda hook: ahunt(hook, "range x from 1 to 5 step 1"))
    assert [row["x"] for row in rows] == [1, 2, 3, 4, 5]
    assert api_requests(emulator)[f"POST {HUNT[api]}"] == {"200": 2}


def test_a_503_with_retry_after_0_on_a_read_is_retried(emulator: DefenderEmulator, api: str) -> None:
    incident_id = emulator.put_incidents({"displayName": "read twice"})[0]["id"]
    emulator.inject_fault(path=f"{INCIDENTS[api]}/{incident_id}", method="GET", status=503, retry_after=0)

    incident = run_async(api, lambda hook: hook.get_incident(incident_id, include_alerts=False))

    assert incident["displayName"] == "read twice"
    route = f"GET {INCIDENTS[api]}/{{incident_id}}"
    assert api_requests(emulator)[route] == {"503": 1, "200": 1}


def test_a_comment_refused_with_503_and_retry_after_is_retried_and_added_once(
    emulator: DefenderEmulator, sync_hook: MTPHook, api: str
) -> None:
    incident_id = emulator.put_incidents({"displayName": "refused once"})[0]["id"]
    method = "POST" if api == "graph" else "PATCH"
    path = f"{INCIDENTS[api]}/{incident_id}" + ("/comments" if api == "graph" else "")
    # A 503 with Retry-After says the service refused the work: even a comment is sent again.
    emulator.inject_fault(path=path, method=method, status=503, retry_after=0)

    comments = run_async(api, lambda hook: hook.add_incident_comment(incident_id, "exactly once"))

    assert [item["comment"] for item in comments] == ["exactly once"]
    assert comments_of(sync_hook, incident_id) == ["exactly once"]
    assert api_requests(emulator)[COMMENT_ROUTE[api]] == {"503": 1, "200": 1}


def test_a_comment_after_a_bare_503_is_not_retried(emulator: DefenderEmulator, api: str) -> None:
    incident_id = emulator.put_incidents({"displayName": "gateway"})[0]["id"]
    method = "POST" if api == "graph" else "PATCH"
    path = f"{INCIDENTS[api]}/{incident_id}" + ("/comments" if api == "graph" else "")
    emulator.inject_fault(path=path, method=method, status=503)

    with pytest.raises(MTPServiceError, match="not retried, because the service may have applied it"):
        run_async(api, lambda hook: hook.add_incident_comment(incident_id, "only once"))
    assert api_requests(emulator)[COMMENT_ROUTE[api]] == {"503": 1}


def test_a_comment_whose_reply_is_cut_off_fails_and_is_not_sent_again(
    emulator: DefenderEmulator, sync_hook: MTPHook, api: str
) -> None:
    incident_id = emulator.put_incidents({"displayName": "dropped"})[0]["id"]
    method = "POST" if api == "graph" else "PATCH"
    path = f"{INCIDENTS[api]}/{incident_id}" + ("/comments" if api == "graph" else "")
    # 200 and part of a body, then the connection closes: the client cannot tell whether it applied.
    emulator.inject_fault(path=path, method=method, kind="drop")

    with pytest.raises(MTPServiceError, match="may have been applied"):
        run_async(api, lambda hook: hook.add_incident_comment(incident_id, "maybe"))

    assert api_requests(emulator)[COMMENT_ROUTE[api]] == {"200": 1}, "sent once, not retried"
    # The drop fault answers before the route runs: the service did not act, and nothing resent it.
    assert comments_of(sync_hook, incident_id) == []


def test_a_comment_applied_after_the_connection_dropped_is_there_once(
    emulator: DefenderEmulator, sync_hook: MTPHook, api: str
) -> None:
    incident_id = emulator.put_incidents({"displayName": "late"})[0]["id"]
    method = "POST" if api == "graph" else "PATCH"
    path = f"{INCIDENTS[api]}/{incident_id}" + ("/comments" if api == "graph" else "")
    # The service applies the comment 0.1 s after it arrived; the client's connection is cut at 0.02 s.
    emulator.inject_fault(path=path, method=method, kind="late", apply_after_s=0.1, delay_s=0.02)

    with pytest.raises(MTPServiceError, match="may have been applied"):
        run_async(api, lambda hook: hook.update_incident(incident_id, comment="applied late"))

    for _ in range(200):  # a bound on the wait for the late write, not a timing assertion
        if comments_of(sync_hook, incident_id):
            break
        time.sleep(0.02)
    assert comments_of(sync_hook, incident_id) == ["applied late"], "applied once, never resent"
    assert api_requests(emulator)[COMMENT_ROUTE[api]] == {"200": 1}
