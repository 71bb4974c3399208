"""Listings that cannot skip, against the emulator: analysts update incidents between page fetches.

A closed one-hour window holds several pages of incidents (explicit ``lastUpdateDateTime`` in
June 2026, long before the emulator's data clock). Right after the first listing page is served,
"analysts" resolve incidents that were on it; the emulator stamps those updates with its clock,
moving them out of the window. Every untouched incident must still be listed, once, on both back
ends, through the sync back ends and the async hook. The old offset paging, run the same way,
misses one: the scenario can fail.
"""

from __future__ import annotations

import asyncio
import json
import random
import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests

from airflow_provider_mtp.api.client import SecurityClient
from airflow_provider_mtp.api.graph import incident_list_params
from airflow_provider_mtp.api.legacy import incident_list_query
from airflow_provider_mtp.api.request import ApiRequest
from airflow_provider_mtp.auth import clear_token_cache
from airflow_provider_mtp.common.ticks import format_ticks, instant_ticks
from airflow_provider_mtp.emulator import DefenderEmulator
from airflow_provider_mtp.errors import MTPConfigError, MTPServiceError
from airflow_provider_mtp.hooks.mtp_async import MTPAsyncHook
from airflow_provider_mtp.sensors.incidents import IncidentSensor
from airflow_provider_mtp.triggers.incidents import IncidentEventTrigger, IncidentTrigger
from tests.integration.test_transport import (
    INCIDENTS,
    RecordingSleep,
    close_open_sessions,
    fresh,
    make_api,
    make_transport,
)

START = datetime(2026, 6, 10, tzinfo=UTC)
END = START + timedelta(hours=1)
WINDOW = {
    "updated_from": format_ticks(instant_ticks(START)),
    "updated_before": format_ticks(instant_ticks(END)),
}
COUNT = 260
PATHS = {"graph": INCIDENTS, "legacy": "/api/incidents"}
RESOLVED_EACH_TIME = 3
ESCAPE = "1 eq 1) or (1 eq 1"


@pytest.fixture
def emulator(defender_emulator: DefenderEmulator) -> Iterator[DefenderEmulator]:
    yield fresh(defender_emulator)
    defender_emulator.reset()


@pytest.fixture(autouse=True)
def _close_sessions() -> Iterator[None]:
    yield
    close_open_sessions()


def put_window(
    emulator: DefenderEmulator,
    count: int = COUNT,
    *,
    seed: int = 3,
    severity: Callable[[int], str] = lambda n: "medium",
) -> list[str]:
    """``count`` active incidents updated in the window, created up to a day before; their ids."""
    rng = random.Random(seed)
    incidents = []
    for number in range(count):
        updated = instant_ticks(START) + rng.randrange(3600 * 10_000_000)
        created = updated - rng.randrange(86_400 * 10_000_000)
        incidents.append(
            {
                "status": "active",
                "severity": severity(number),
                "createdDateTime": format_ticks(created),
                "lastUpdateDateTime": format_ticks(updated),
            }
        )
    return [incident["id"] for incident in emulator.put_incidents(*incidents)]


class Analysts:
    """Resolve incidents seen on the first page, right after it is served (before the next fetch)."""

    def __init__(self, emulator: DefenderEmulator) -> None:
        self.emulator = emulator
        self.resolved: list[str] = []
        self.pages = 0

    def after_page(self, body: Any) -> None:
        self.pages += 1
        if self.pages != 1 or not isinstance(body, dict):
            return
        # The top of the first page: every incident after them moves up three places.
        ids = [str(item.get("id", item.get("incidentId"))) for item in body.get("value", [])]
        self.resolved = ids[:RESOLVED_EACH_TIME]
        self.emulator.put_incidents(
            *({"id": incident_id, "status": "resolved"} for incident_id in self.resolved)
        )


def watched(api: SecurityClient, analysts: Analysts) -> None:
    """Let the analysts act after each page the API's transport reads."""
    transport = api.transport
    original = transport.send

    def send(request: ApiRequest) -> Any:
        body = original(request)
        analysts.after_page(body)
        return body

    transport.send = send  # type: ignore[method-assign]


async def watched_async(hook: MTPAsyncHook, analysts: Analysts) -> None:
    """Let the analysts act after each page the async hook's transport reads."""
    transport = await hook._get_transport()
    original = transport.send

    async def send(request: ApiRequest) -> Any:
        body = await original(request)
        await asyncio.to_thread(analysts.after_page, body)
        return body

    transport.send = send  # type: ignore[method-assign]


def keys(listed: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(str(item["id"]), str(item["lastUpdateDateTime"])) for item in listed]


def offset_listing(api: SecurityClient, dialect: str) -> list[str]:
    """The listing as it was: the window's filter, then $skip (legacy) or the service's nextLinks."""
    if dialect == "graph":
        params = incident_list_params(**WINDOW)
        pages = api.transport.iter_graph_pages(INCIDENTS, params)
    else:
        query = incident_list_query(**WINDOW)
        pages = api.transport.iter_skip_pages(PATHS["legacy"], query.params, page_size=query.top)
    return [str(item.get("id", item.get("incidentId"))) for page in pages for item in page]


# The listing under analysts ------------------------------------------------------------------------


@pytest.mark.parametrize("dialect", ["graph", "legacy"])
def test_updates_during_a_listing_lose_no_untouched_incident(
    emulator: DefenderEmulator, dialect: str
) -> None:
    ids = set(put_window(emulator))
    api = make_api(emulator, dialect)
    analysts = Analysts(emulator)
    watched(api, analysts)

    listed = list(api.list_incidents(**WINDOW))

    assert len(analysts.resolved) == RESOLVED_EACH_TIME
    untouched = ids - set(analysts.resolved)
    assert untouched <= {item["id"] for item in listed}, "an untouched incident was not listed"
    assert len(keys(listed)) == len(set(keys(listed))), "an (id, lastUpdateDateTime) was listed twice"
    assert all(
        WINDOW["updated_from"] <= item["lastUpdateDateTime"] < WINDOW["updated_before"] for item in listed
    )
    requests_made = emulator.stats()["requests"][f"GET {PATHS[dialect]}"]["200"]
    assert requests_made == analysts.pages
    assert "$skip" not in json.dumps(emulator.stats()), "no offset paging"


@pytest.mark.parametrize("dialect", ["graph", "legacy"])
def test_offset_paging_under_the_same_analysts_misses_an_incident(
    emulator: DefenderEmulator, dialect: str
) -> None:
    ids = set(put_window(emulator))
    api = make_api(emulator, dialect)
    analysts = Analysts(emulator)
    watched(api, analysts)

    listed = offset_listing(api, dialect)

    missed = ids - set(analysts.resolved) - set(listed)
    assert len(missed) == RESOLVED_EACH_TIME, "each resolved incident shifted one untouched one out of sight"


@pytest.mark.parametrize("dialect", ["graph", "legacy"])
def test_the_async_hook_loses_nothing_either(
    emulator: DefenderEmulator, monkeypatch: pytest.MonkeyPatch, dialect: str
) -> None:
    ids = set(put_window(emulator))
    conn = json.loads(emulator.airflow_conn)
    conn["extra"]["api"] = dialect
    monkeypatch.setenv("AIRFLOW_CONN_MTP_LISTING", json.dumps(conn))
    clear_token_cache()
    analysts = Analysts(emulator)

    async def listing() -> list[dict[str, Any]]:
        async with MTPAsyncHook(mtp_conn_id="mtp_listing") as hook:
            await watched_async(hook, analysts)
            return [item async for item in hook.list_incidents(**WINDOW)]

    listed = asyncio.run(listing())

    assert len(analysts.resolved) == RESOLVED_EACH_TIME
    assert ids - set(analysts.resolved) <= {item["id"] for item in listed}
    assert len(keys(listed)) == len(set(keys(listed)))


@pytest.mark.parametrize("dialect", ["graph", "legacy"])
def test_filters_applied_after_fetching_keep_their_meaning(emulator: DefenderEmulator, dialect: str) -> None:
    # Legacy filters severity and several statuses locally, after the plan saw the whole page.
    ids = put_window(emulator, 230, severity=lambda number: "high" if number % 7 == 0 else "medium")
    api = make_api(emulator, dialect)
    listed = [
        item["id"]
        for item in api.list_incidents(**WINDOW, severity="medium", status=["active", "inProgress"])
    ]
    assert sorted(listed, key=int) == sorted((ids[n] for n in range(230) if n % 7), key=int)


# odata_filter and nextLink checks ------------------------------------------------------------------


@pytest.mark.parametrize("dialect", ["graph", "legacy"])
def test_an_escaping_odata_filter_is_refused_before_any_call(
    emulator: DefenderEmulator, dialect: str
) -> None:
    api = make_api(emulator, dialect)
    with pytest.raises(MTPConfigError, match=re.escape("odata_filter closes a parenthesis it never opened")):
        api.list_incidents(status=["active"], odata_filter=ESCAPE)
    assert emulator.stats()["requests"] == {}


class _RewritingSession(requests.Session):
    """Serves the emulator's first page with its nextLink rewritten to plain http on the same host."""

    def __init__(self, base: requests.Session) -> None:
        super().__init__()
        self.base = base
        self.urls: list[str] = []

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        self.urls.append(str(url))
        response = self.base.request(method, url, *args, **kwargs)
        body = response.json()
        if body.get("@odata.nextLink"):
            body["@odata.nextLink"] = body["@odata.nextLink"].replace("https://", "http://", 1)
            response._content = json.dumps(body).encode()
        return response


def test_a_next_link_with_another_scheme_on_the_same_host_is_refused_before_anything_is_sent(
    emulator: DefenderEmulator,
) -> None:
    transport = make_transport(emulator)
    session = _RewritingSession(transport.session)
    transport.session = session

    pages = transport.iter_graph_pages(INCIDENTS, {"$top": 2})
    assert len(next(pages)) == 2
    with pytest.raises(MTPServiceError, match=re.escape("Refused to follow @odata.nextLink")) as failure:
        next(pages)

    assert "its scheme is 'http' while the API is reached over 'https'" in str(failure.value)
    assert "nothing was sent there" in str(failure.value)
    assert len(session.urls) == 1, "the link was refused before any request"
    assert isinstance(transport.sleep, RecordingSleep)
    assert transport.sleep.waits == [], "no retry, no TLS handshake with a plain-http link"


# Sensor and triggers fail at once on an escaping odata_filter --------------------------------------


@pytest.fixture
def airflow_emulator(
    emulator: DefenderEmulator, airflow_db: None, monkeypatch: pytest.MonkeyPatch
) -> DefenderEmulator:
    clear_token_cache()
    monkeypatch.setenv("AIRFLOW_CONN_MTP_DEFAULT", emulator.airflow_conn)
    return emulator


def context() -> dict[str, Any]:
    return {"logical_date": END, "data_interval_start": START, "data_interval_end": END}


def test_the_sensor_fails_at_once_on_an_escaping_odata_filter(airflow_emulator: DefenderEmulator) -> None:
    message = re.escape("odata_filter closes a parenthesis it never opened (position 6)")
    for deferrable in (False, True):
        sensor = IncidentSensor(task_id="s", status="active", odata_filter=ESCAPE, deferrable=deferrable)
        with pytest.raises(MTPConfigError, match=message):
            (sensor.execute if deferrable else sensor.poke)(context())  # type: ignore[arg-type, operator]
    assert airflow_emulator.stats()["requests"] == {}


def test_the_triggers_fail_at_once_on_an_escaping_odata_filter(airflow_emulator: DefenderEmulator) -> None:
    trigger = IncidentTrigger(window_start=START.isoformat(), window_end=END.isoformat(), odata_filter=ESCAPE)
    events = IncidentEventTrigger(odata_filter=ESCAPE, poll_interval=0.01)

    async def run() -> tuple[dict[str, Any], BaseException | None]:
        event = await anext(trigger.run())
        failure = None
        try:
            await anext(events.run())
        except MTPConfigError as exc:
            failure = exc
        return event.payload, failure

    payload, failure = asyncio.run(run())
    assert payload["status"] == "error"
    assert "odata_filter closes a parenthesis it never opened" in payload["message"]
    assert failure is not None
    assert "odata_filter" in str(failure)
    assert airflow_emulator.stats()["requests"] == {}
