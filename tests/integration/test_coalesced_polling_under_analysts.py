"""A coalesced polling round while analysts update incidents between its pages (emulator).

Sixty ``IncidentTrigger`` waits over overlapping closed windows of one June morning, with mixed
severity filters, poll as one coalesced round: the poller lists the union of their windows once,
in several pages. Between those pages the emulator's ``mutate`` fault has "analysts" update
incidents the listing matches, stamping them with the data clock (a day later, outside every
window). Each trigger's event must still hold every untouched incident of its window and filter,
each once, and nothing outside them: what the listing guarantees one trigger alone, it guarantees
every trigger of a shared round. Both back ends.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from airflow_provider_mtp.api.incident_query import IncidentQuery
from airflow_provider_mtp.auth import clear_token_cache
from airflow_provider_mtp.emulator import DefenderEmulator
from airflow_provider_mtp.triggers.incidents import IncidentTrigger
from airflow_provider_mtp.windows import format_instant
from tests.conftest import TEST_NOW
from tests.integration.test_coalesced_polling import events

MORNING = datetime(2026, 6, 1, tzinfo=UTC)
HOURS = 6
INCIDENTS = 200
TRIGGERS = 60
SEVERITIES = ("low", "medium", "high")
CLOCK = "2026-06-02T00:00:00Z"
ROUTES = {"graph": "/v1.0/security/incidents", "legacy": "/api/incidents"}
#: Analysts touch this many incidents between pages, this many times in the round.
TOUCHED_EACH_TIME, TIMES = 5, 2


@pytest.fixture(scope="module")
def tenant() -> Iterator[DefenderEmulator]:
    with DefenderEmulator(seed=31, now=TEST_NOW, quotas=False, incidents=3, days=1, events_per_day=5) as emu:
        yield emu


@pytest.fixture
def emulator(tenant: DefenderEmulator, monkeypatch: pytest.MonkeyPatch) -> Iterator[DefenderEmulator]:
    tenant.reset()
    clear_token_cache()
    monkeypatch.setenv("AIRFLOW_CONN_MTP_DEFAULT", tenant.airflow_conn)
    yield tenant
    tenant.clear_faults()


def put_morning(emulator: DefenderEmulator) -> list[dict[str, Any]]:
    """Incidents last updated across the morning, one severity each; as stored."""
    rng = random.Random(31)
    return emulator.put_incidents(
        *(
            {
                "status": "active",
                "severity": rng.choice(SEVERITIES),
                "lastUpdateDateTime": format_instant(
                    MORNING + timedelta(seconds=rng.randrange(HOURS * 3600))
                ),
            }
            for _ in range(INCIDENTS)
        )
    )


def triggers(api: str) -> list[tuple[IncidentTrigger, set[str]]]:
    """The waits, each with the severities it accepts."""
    rng = random.Random(f"analysts-{api}")
    made = []
    for _ in range(TRIGGERS):
        start = MORNING + timedelta(minutes=rng.randrange(0, HOURS * 60 - 60, 15))
        severity = None if rng.random() < 0.4 else rng.sample(SEVERITIES, rng.choice((1, 2)))
        made.append(
            (
                IncidentTrigger(
                    api=api,
                    query=IncidentQuery.build(severity=severity),
                    window_start=start.isoformat(),
                    window_end=(start + timedelta(minutes=rng.choice((30, 60, 120)))).isoformat(),
                    lag_seconds=0,
                    poke_interval=0.1,
                    min_incidents=1,
                    max_incidents=None,
                    include_incidents=True,
                    on_empty="succeed",
                ),
                set(severity or SEVERITIES),
            )
        )
    return made


@pytest.mark.parametrize("api", ["graph", "legacy"])
def test_a_coalesced_round_under_analysts_loses_no_untouched_incident_of_any_trigger(
    emulator: DefenderEmulator, monkeypatch: pytest.MonkeyPatch, api: str
) -> None:
    stored = put_morning(emulator)
    emulator.set_clock(CLOCK)
    waits = triggers(api)
    emulator.inject_fault(path=ROUTES[api], kind="mutate", n=TOUCHED_EACH_TIME, after=1, count=TIMES, seed=7)

    payloads = events([trigger for trigger, _ in waits], coalesced=True, monkeypatch=monkeypatch)

    touched = {update["id"] for update in emulator.analyst_updates()}
    assert len(touched) == TOUCHED_EACH_TIME * TIMES, "the analysts acted mid-round: the test can fail"
    compared = 0
    for (trigger, wanted), payload in zip(waits, payloads, strict=True):
        start, end = (
            format_instant(when) for when in (trigger.shifted_window.start, trigger.shifted_window.end)
        )
        in_window = {
            incident["id"]
            for incident in stored
            if start <= incident["lastUpdateDateTime"] < end and incident["severity"] in wanted
        }
        got = [(item["id"], item["last_update"]) for item in payload["incidents"]]
        ids = {ident for ident, _ in got}
        assert payload["status"] in ("success", "empty"), payload
        assert len(got) == len(set(got)), f"an update listed twice for {start}..{end}"
        assert in_window - touched <= ids, (
            f"untouched incidents missed in {start}..{end}: {in_window - touched - ids}"
        )
        assert ids <= in_window, f"incidents outside {start}..{end} or its filter: {ids - in_window}"
        compared += len(in_window - touched)
    print(
        f"{api}: {TRIGGERS} triggers, {len(touched)} incidents touched mid-round, {compared} (trigger, incident) pairs kept"
    )
