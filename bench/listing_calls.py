"""Listing requests for a one-hour window of 500 incidents: pieces that fit a page vs offset paging.

Starts an emulator, puts 500 incidents last updated within one hour (well before the emulator's
data clock, so the window is closed), and lists that window on both back ends twice: with the
provider's listing (``list_incidents``: pieces of the window that each fit one page, see
``airflow_provider_mtp/api/listing.py``) and the old way (the same filter, then the service's
``@odata.nextLink`` on Graph, ``$top=100`` + ``$skip`` on legacy, kept in the transport as
``iter_graph_pages`` / ``iter_skip_pages``). Requests are counted by the emulator
(``stats()["requests"]``). Both ways read the same incidents here; only the new one also does when
analysts update incidents mid-listing (tests/integration/test_listing.py).

Two creation profiles: incidents created up to two days before their update (most are older than
the window), and incidents created within the hour before their update.

    .venv/bin/python bench/listing_calls.py [--count 500]
"""

from __future__ import annotations

import argparse
import os
import random
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from airflow_provider_mtp.api.client import SecurityClient
from airflow_provider_mtp.api.graph import incident_list_params, security_path
from airflow_provider_mtp.api.legacy import INCIDENTS_PATH, incident_list_query
from airflow_provider_mtp.common.ticks import TICKS_PER_SECOND, format_ticks, instant_ticks
from airflow_provider_mtp.emulator import DefenderEmulator

START = datetime(2026, 6, 10, tzinfo=UTC)
HOUR = 3600 * TICKS_PER_SECOND
WINDOW = {
    "updated_from": format_ticks(instant_ticks(START)),
    "updated_before": format_ticks(instant_ticks(START) + HOUR),
}
PATHS = {"graph": security_path("incidents"), "legacy": INCIDENTS_PATH}
PROFILES: dict[str, int] = {
    "created up to 2 days before": 2 * 86_400,
    "created within the hour before": 3_600,
}


def put_incidents(emulator: DefenderEmulator, count: int, created_span_s: int, seed: int = 1) -> None:
    rng = random.Random(seed)
    incidents = []
    for _ in range(count):
        updated = instant_ticks(START) + rng.randrange(HOUR)
        created = updated - rng.randrange(created_span_s * TICKS_PER_SECOND)
        incidents.append(
            {"createdDateTime": format_ticks(created), "lastUpdateDateTime": format_ticks(updated)}
        )
    emulator.put_incidents(*incidents)


def client(dialect: str) -> SecurityClient:
    from airflow_provider_mtp.hooks.mtp import MTPHook

    return MTPHook("mtp_bench", api=dialect).client


def now_listing(api: SecurityClient, dialect: str) -> list[str]:
    return [incident["id"] for incident in api.list_incidents(**WINDOW)]


def offset_listing(api: SecurityClient, dialect: str) -> list[str]:
    """Before: the window's filter once, then nextLinks (Graph) or $skip (legacy)."""
    if dialect == "graph":
        pages = api.transport.iter_graph_pages(PATHS["graph"], incident_list_params(**WINDOW))
    else:
        query = incident_list_query(**WINDOW)
        pages = api.transport.iter_skip_pages(PATHS["legacy"], query.params, page_size=query.top)
    return [str(item.get("id", item.get("incidentId"))) for page in pages for item in page]


def requests_for(
    emulator: DefenderEmulator, dialect: str, listing: Callable[[Any, str], list[str]]
) -> tuple[int, set[str]]:
    api = client(dialect)
    before = emulator.stats()["requests"].get(f"GET {PATHS[dialect]}", {}).get("200", 0)
    ids = set(listing(api, dialect))
    after = emulator.stats()["requests"].get(f"GET {PATHS[dialect]}", {}).get("200", 0)
    return after - before, ids


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=500)
    args = parser.parse_args()
    with DefenderEmulator(incidents=5, days=1, events_per_day=10, quotas=False) as emulator:
        os.environ["AIRFLOW_CONN_MTP_BENCH"] = emulator.airflow_conn
        print(f"{args.count} incidents last updated within one hour; listing requests for that window\n")
        print(f"| {'profile':31} | {'back end':8} | {'now':>4} | {'before':>6} | {'now / before':>12} |")
        print(f"|{'-' * 33}|{'-' * 10}|{'-' * 6}|{'-' * 8}|{'-' * 14}|")
        for profile, span in PROFILES.items():
            emulator.reset()
            put_incidents(emulator, args.count, span)
            for dialect in ("graph", "legacy"):
                now, listed = requests_for(emulator, dialect, now_listing)
                before, reference = requests_for(emulator, dialect, offset_listing)
                if listed != reference or len(listed) != args.count:
                    raise SystemExit(f"the listings differ: {len(listed)} now, {len(reference)} before")
                print(f"| {profile:31} | {dialect:8} | {now:4d} | {before:6d} | {now / before:11.2f}x |")
        print(
            "\nnow: pieces that each fit one page (no $skip); before: offset paging, which skips incidents "
            "updated mid-listing."
        )


if __name__ == "__main__":
    main()
