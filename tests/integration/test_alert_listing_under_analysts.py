"""Alert listings that cannot skip, against the emulator: analysts update alerts between page fetches.

The alert twin of ``test_listing.py``. A closed one-hour window in June 2026 holds several pages of
alerts (each in its own incident, explicit ``lastUpdateDateTime``). Right after the first listing
page is served, "analysts" resolve alerts that were on it; the emulator stamps those updates with
its clock, moving them out of the window (and, on the legacy API, moving their incidents to the
present). Every untouched alert must still be listed, once, on both back ends and through the
async hook. Offset paging over ``alerts_v2``, run the same way, misses one: the scenario can fail.
"""

from __future__ import annotations

import asyncio
import json
import random
from typing import Any

import pytest

from airflow_provider_mtp.api.alert_query import AlertQuery
from airflow_provider_mtp.api.graph_alerts import alert_list_params
from airflow_provider_mtp.auth import clear_token_cache
from airflow_provider_mtp.common.ticks import format_ticks, instant_ticks
from airflow_provider_mtp.emulator import DefenderEmulator
from airflow_provider_mtp.hooks.mtp_async import MTPAsyncHook
from tests.integration import test_listing
from tests.integration.test_listing import END, START, WINDOW, keys, watched, watched_async
from tests.integration.test_transport import make_api

ALERTS = "/v1.0/security/alerts_v2"
COUNT = 180
PAGE = 40
RESOLVED_EACH_TIME = 3


#: test_listing's fixtures, shared: the session emulator reset around each test, and every
#: transport's session closed after it.
emulator = test_listing.emulator
_close_sessions = test_listing._close_sessions


def put_window(emulator: DefenderEmulator, count: int = COUNT, *, seed: int = 5) -> set[str]:
    """``count`` new alerts updated in the window, created up to a day before; their ids."""
    rng = random.Random(seed)
    alerts = []
    for _ in range(count):
        updated = instant_ticks(START) + rng.randrange(3600 * 10_000_000)
        created = updated - rng.randrange(86_400 * 10_000_000)
        alerts.append(
            {
                "status": "new",
                "severity": "medium",
                "createdDateTime": format_ticks(created),
                "lastUpdateDateTime": format_ticks(updated),
            }
        )
    return {alert["id"] for alert in emulator.put_alerts(*alerts)}


class Analysts(test_listing.Analysts):
    """Resolve alerts seen on the first page holding any, right after it is served."""

    def __init__(self, emulator: DefenderEmulator, ids: set[str]) -> None:
        super().__init__(emulator)
        self.ids = ids

    def after_page(self, body: Any) -> None:
        self.pages += 1
        if self.resolved or not isinstance(body, dict):
            return
        # On legacy the first pages may hold only incidents of other alerts: wait for the window's.
        seen = [alert_id for alert_id in _alert_ids(body) if alert_id in self.ids]
        if not seen:
            return
        self.resolved = seen[:RESOLVED_EACH_TIME]
        self.emulator.put_alerts(*({"id": alert_id, "status": "resolved"} for alert_id in self.resolved))


def _alert_ids(body: dict[str, Any]) -> list[str]:
    ids = []
    for item in body.get("value", []):
        embedded = item.get("alerts")
        if isinstance(embedded, list):  # a legacy incident
            ids += [str(alert.get("alertId", alert.get("id"))) for alert in embedded]
        else:
            ids.append(str(item.get("id")))
    return ids


def check_listing(listed: list[dict[str, Any]], ids: set[str], analysts: Analysts) -> None:
    assert len(analysts.resolved) == RESOLVED_EACH_TIME, "the analysts never acted: the test proves nothing"
    untouched = ids - set(analysts.resolved)
    missed = untouched - {alert["id"] for alert in listed}
    assert not missed, f"untouched alerts not listed: {sorted(missed)}"
    assert len(keys(listed)) == len(set(keys(listed))), "an (id, lastUpdateDateTime) was listed twice"
    assert all(
        WINDOW["updated_from"] <= alert["lastUpdateDateTime"] < WINDOW["updated_before"] for alert in listed
    )


@pytest.mark.parametrize("dialect", ["graph", "legacy"])
def test_alert_updates_during_a_listing_lose_no_untouched_alert(
    emulator: DefenderEmulator, dialect: str
) -> None:
    ids = put_window(emulator)
    api = make_api(emulator, dialect)
    analysts = Analysts(emulator, ids)
    watched(api, analysts)

    listed = list(api.list_alerts(**WINDOW, page_size=PAGE))

    print(
        f"{dialect}: {len(ids)} alerts in [{START:%H:%M}, {END:%H:%M}), {len(analysts.resolved)} resolved "
        f"after the first page, {analysts.pages} pages read, {len(listed)} listed"
    )
    check_listing(listed, ids, analysts)
    assert analysts.pages > 2, "several pages, so the analysts acted mid-listing"
    assert "$skip" not in json.dumps(emulator.stats()), "no offset paging"


def test_the_async_hook_loses_no_alert_either(
    emulator: DefenderEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = put_window(emulator)
    monkeypatch.setenv("AIRFLOW_CONN_MTP_ALERT_LISTING", emulator.airflow_conn)
    clear_token_cache()
    analysts = Analysts(emulator, ids)

    async def listing() -> list[dict[str, Any]]:
        async with MTPAsyncHook(mtp_conn_id="mtp_alert_listing") as hook:
            await watched_async(hook, analysts)
            return [alert async for alert in hook.list_alerts(AlertQuery.build(**WINDOW, page_size=PAGE))]

    check_listing(asyncio.run(listing()), ids, analysts)


def test_offset_paging_of_alerts_under_the_same_analysts_misses_an_alert(emulator: DefenderEmulator) -> None:
    ids = put_window(emulator)
    api = make_api(emulator, "graph")
    analysts = Analysts(emulator, ids)
    watched(api, analysts)

    # What a naive client does: the window's filter, then the service's nextLinks ($skip).
    params = alert_list_params(AlertQuery.build(**WINDOW, page_size=PAGE))
    listed = [str(item["id"]) for page in api.transport.iter_graph_pages(ALERTS, params) for item in page]

    missed = ids - set(analysts.resolved) - set(listed)
    assert len(missed) == RESOLVED_EACH_TIME, "each resolved alert shifted one untouched one out of sight"
