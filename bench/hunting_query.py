"""A simple hunting query on the emulator's warm engine: median seconds over repeated runs.

Was ``test_simple_query_is_fast`` in ``tests/golden/test_battery_engine.py``; timings live here,
not in the test suite (a shared machine makes a timed assertion flaky). The budget is the one that
test held: a median under 0.25 s for a filter and projection over the golden fixture tenant.

    .venv/bin/python bench/hunting_query.py [--repeat 9]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

QUERY = "DeviceNetworkEvents | where RemotePort == 4444 | project Timestamp, DeviceName, RemoteIP"
BUDGET_S = 0.25


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=9)
    args = parser.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the golden fixture lives in tests/
    from tests.golden.fixture import fixture_engine

    engine = fixture_engine()
    engine.run("DeviceProcessEvents | count")  # warm: the first query loads the tables
    runs = []
    for _ in range(args.repeat):
        started = time.perf_counter()
        engine.run(QUERY)
        runs.append(time.perf_counter() - started)
    median = statistics.median(runs)
    verdict = "within" if median < BUDGET_S else "OVER"
    print(f"simple query median {median * 1000:.1f} ms ({verdict} the {BUDGET_S * 1000:.0f} ms budget)")
    print(f"runs: {', '.join(f'{run * 1000:.1f}' for run in runs)} ms")
    return 0 if median < BUDGET_S else 1


if __name__ == "__main__":
    sys.exit(main())
