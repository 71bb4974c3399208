"""Emulator start-up time at two tenant sizes, and how it scales.

Prints each size's median seconds to the ready line and the ratio of the large tenant to the
default one, measured in the same run (absolute seconds on a shared machine mislead).
Budgets from the emulator issue: ready within 10 s by default, within 60 s at 6,000 events a day.

    .venv/bin/python bench/emulator_startup.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import statistics
import time

from airflow_provider_mtp.emulator import DefenderEmulator


def time_start(**options: int) -> float:
    started = time.perf_counter()
    with DefenderEmulator(**options):  # type: ignore[arg-type]
        elapsed = time.perf_counter() - started
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    sizes = {"default (1,000/day)": {}, "large (6,000/day)": {"events_per_day": 6000}}
    medians = {}
    for name, options in sizes.items():
        runs = [time_start(**options) for _ in range(args.repeat)]
        medians[name] = statistics.median(runs)
        print(f"{name:22} median {medians[name]:6.2f} s  runs {', '.join(f'{r:.2f}' for r in runs)}")
    default, large = medians.values()
    print(f"large / default: {large / default:.2f}x for 6x the rows")


if __name__ == "__main__":
    main()
