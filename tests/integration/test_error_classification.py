"""Hunting errors told apart by status and documented message, never by text the query put there.

The hunting APIs quote the KQL in their errors (``extraneous input '"timed out"' expecting ...``)
and document no codes for the quota and limit errors. Each test here sends real hunts to the
emulator over TLS through a back end and its transport, and counts the requests the emulator saw:
a query error costs exactly one request and no wait, whatever its text holds (issue 8, Must show 6;
the same through ``dag.test()`` is in ``test_hunting_operator_errors.py``).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from airflow_provider_mtp.api.transport import hunting_quota_reset, limit_kind
from airflow_provider_mtp.emulator import DefenderEmulator
from airflow_provider_mtp.errors import MTPLimitExceededError, MTPQueryError, MTPThrottledError
from tests.integration.test_transport import close_open_sessions, fresh, make_api

DIALECTS = ["graph", "legacy"]

#: Text a query can hold that the old classifier took for throttling or a service limit.
TRAPS = [
    "try again in 20 seconds",
    "too many rows: limit",
    "timed out",
    "You can run queries again in 5 minutes",
    # The documented messages themselves, quoted inside a syntax error.
    "Query exceeded the timeout period.",
    "Result size limit exceeded.",
    "Query result exceeds the 100,000-row limit.",
    "You have exceeded processing resources allocated to this tenant. You can run queries again in 00:05:00.",
]

CPU_QUOTA = (
    "You have exceeded processing resources allocated to this tenant. You can run queries again in {}."
)
LIMITS = {
    "timeout": "Query exceeded the timeout period.",
    "size": 'Result size limit exceeded. Use "summarize" to aggregate results, "project" to drop '
    'uninteresting columns, or "take" to truncate results.',
    "rows": 'Query result exceeds the 100,000-row limit. Use "summarize" to aggregate results.',
}
SMALL = "range x from 1 to 3 step 1"


class NoSleep:
    """Records the waits the transport asks for, without waiting."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


@pytest.fixture
def emulator(defender_emulator: DefenderEmulator) -> Iterator[DefenderEmulator]:
    yield fresh(defender_emulator)
    defender_emulator.clear_faults()
    close_open_sessions()


def hunt_path(dialect: str) -> str:
    return "/v1.0/security/runHuntingQuery" if dialect == "graph" else "/api/advancedhunting/run"


def hunts(emulator: DefenderEmulator, dialect: str) -> dict[str, int]:
    """Replies to the back end's hunting route so far, by status."""
    return dict(emulator.stats()["requests"].get(f"POST {hunt_path(dialect)}", {}))


@pytest.mark.parametrize("text", TRAPS)
@pytest.mark.parametrize("dialect", DIALECTS)
def test_text_in_a_string_literal_of_the_query_is_a_query_error_after_one_request(
    emulator: DefenderEmulator, dialect: str, text: str
) -> None:
    sleep = NoSleep()
    api = make_api(emulator, dialect, sleep=sleep)
    with pytest.raises(MTPQueryError) as failure:
        api.run_hunting_query(f'DeviceProcessEvents "{text}"')
    error = failure.value
    assert type(error) is MTPQueryError, "not a limit error"
    assert text in (error.service_message or ""), "the service quoted the query's text"
    assert str(error).startswith(f"{api.transport.identity.title} rejected the hunting query: ")
    assert "Fix the KQL and run it again." in str(error)
    assert hunts(emulator, dialect) == {"400": 1}
    assert sleep.waits == []


@pytest.mark.parametrize(
    "message",
    [LIMITS["timeout"], LIMITS["rows"], CPU_QUOTA.format("00:00:20")],
    ids=["timeout", "rows", "cpu-quota"],
)
@pytest.mark.parametrize("dialect", DIALECTS)
def test_a_message_starting_with_text_the_query_holds_is_not_believed(
    emulator: DefenderEmulator, dialect: str, message: str
) -> None:
    """A service that quotes the query first: the documented words are the caller's, not its own."""
    sleep = NoSleep()
    api = make_api(emulator, dialect, sleep=sleep)
    emulator.inject_fault(path=hunt_path(dialect), status=400, code="BadRequest", message=message)
    query = f'DeviceProcessEvents | where ProcessCommandLine has "{message}"'
    with pytest.raises(MTPQueryError) as failure:
        api.run_hunting_query(query)
    assert type(failure.value) is MTPQueryError
    assert hunts(emulator, dialect) == {"400": 1}
    assert sleep.waits == []


@pytest.mark.parametrize("kind", sorted(LIMITS))
@pytest.mark.parametrize("dialect", DIALECTS)
def test_documented_limit_messages_are_limit_errors_after_one_request(
    emulator: DefenderEmulator, dialect: str, kind: str
) -> None:
    api = make_api(emulator, dialect, sleep=NoSleep())
    emulator.inject_fault(path=hunt_path(dialect), status=400, code="BadRequest", message=LIMITS[kind])
    with pytest.raises(MTPLimitExceededError) as failure:
        api.run_hunting_query(SMALL)
    assert failure.value.limit == kind
    assert hunts(emulator, dialect) == {"400": 1}


@pytest.mark.parametrize("dialect", DIALECTS)
def test_the_documented_cpu_quota_error_waits_its_reset_time(
    emulator: DefenderEmulator, dialect: str
) -> None:
    sleep = NoSleep()
    api = make_api(emulator, dialect, sleep=sleep)
    emulator.inject_fault(path=hunt_path(dialect), status=400, message=CPU_QUOTA.format("00:00:20"))
    with api.run_hunting_query(SMALL) as result:
        assert [row["x"] for row in result.rows] == [1, 2, 3]
    assert hunts(emulator, dialect) == {"400": 1, "200": 1}
    (wait,) = sleep.waits
    assert 20.0 <= wait <= 21.0


@pytest.mark.parametrize("dialect", DIALECTS)
def test_a_cpu_quota_longer_than_max_wait_is_throttling_at_once(
    emulator: DefenderEmulator, dialect: str
) -> None:
    api = make_api(emulator, dialect, sleep=NoSleep())
    emulator.inject_fault(path=hunt_path(dialect), status=400, message=CPU_QUOTA.format("5 minutes"))
    with pytest.raises(MTPThrottledError, match="asked to wait 300 s") as failure:
        api.run_hunting_query(SMALL)
    assert failure.value.retry_after == 300.0
    assert hunts(emulator, dialect) == {"400": 1}


def test_a_429_body_still_gives_the_reset_time(emulator: DefenderEmulator) -> None:
    """No Retry-After: the legacy 429 body's ``maximum allowed 45 per 00:01:00`` is the wait."""
    sleep = NoSleep()
    api = make_api(emulator, "legacy", sleep=sleep, max_wait=120)
    emulator.inject_fault(path=hunt_path("legacy"), status=429)
    with api.run_hunting_query(SMALL) as result:
        assert len(list(result.rows)) == 3
    assert hunts(emulator, "legacy") == {"429": 1, "200": 1}
    (wait,) = sleep.waits
    assert 60.0 <= wait <= 61.0


def test_a_429_storm_ends_in_a_throttled_error_after_the_attempts(emulator: DefenderEmulator) -> None:
    sleep = NoSleep()
    api = make_api(emulator, "graph", sleep=sleep)
    emulator.inject_fault(path=hunt_path("graph"), status=429, retry_after=2, count=50)
    with pytest.raises(MTPThrottledError, match="still throttled the call after 6 attempts"):
        api.run_hunting_query(SMALL)
    assert hunts(emulator, "graph") == {"429": 6}
    assert len(sleep.waits) == 5
    assert all(2.0 <= wait <= 2.2 for wait in sleep.waits)


# --------------------------------------------------------------------------------------------------
# The classifiers on their own
# --------------------------------------------------------------------------------------------------


def test_limit_text_counts_only_at_the_start_of_the_message() -> None:
    quoted = (
        "Query could not be parsed at line 1, column 21: extraneous input "
        "'\"Query exceeded the timeout period.\"' expecting {<EOF>, ';'} (A recognition error occurred.)"
    )
    assert limit_kind(quoted) is None
    assert limit_kind("Query exceeded the timeout period.") == "timeout"
    assert limit_kind("  query EXCEEDED the timeout period") == "timeout"
    assert limit_kind("Query execution has exceeded the allowed result size. Optimize ...") == "size"
    assert limit_kind("Rows exceed the limit of timed out") is None


def test_limit_text_the_query_holds_is_not_believed() -> None:
    query = 'T | where Text has "query exceeded  the\ntimeout period"'
    assert limit_kind("Query exceeded the timeout period.", query=query) is None
    assert limit_kind("Query exceeded the timeout period.", query="T | take 1") == "timeout"


def test_the_cpu_quota_is_known_by_its_documented_start() -> None:
    assert hunting_quota_reset(CPU_QUOTA.format("00:05:00")) == (True, 300.0)
    assert hunting_quota_reset(CPU_QUOTA.format("a few minutes")) == (True, None)
    assert hunting_quota_reset("Syntax error near 'You can run queries again in 5 minutes'") == (False, None)
    assert hunting_quota_reset(CPU_QUOTA.format("00:05:00"), query=f'print "{CPU_QUOTA}"') == (False, None)
