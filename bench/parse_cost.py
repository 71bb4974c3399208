"""DAG-parse cost: what importing the provider's operators, sensors and triggers adds to ``import airflow.sdk``.

A DAG file starts with ``from airflow.sdk import DAG`` and then imports its operators; the
DAG processor pays those imports for every file it parses in a fresh process. Each measurement
is a fresh Python process that imports ``airflow.sdk`` first and then times the contender's
imports with ``time.perf_counter``; every round runs each contender once (the order rotates),
and the table shows medians. A first, untimed process importing them all writes the bytecode
caches (``PYTHONDONTWRITEBYTECODE`` is dropped from the probes' environment, as a deployed DAG
processor has its caches).

Contenders: the provider's operator, sensor and trigger modules; the http provider's ``HttpOperator`` and Airflow's ``MSGraphAsyncOperator``
(microsoft-azure provider) as baselines. They all run in ``.bench-venv`` (``make bench-venv``),
which holds this package, the http provider and the peers under the same constraints, so every
contender imports from the same interpreter and site-packages.
Target (issue 13): the provider's modules add at most 0.05 s.

    .venv/bin/python bench/parse_cost.py [--rounds 9]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

from _report import Report, median

PROVIDER = [
    "airflow_provider_mtp.operators.hunting",
    "airflow_provider_mtp.operators.incidents",
    "airflow_provider_mtp.operators.alerts",
    "airflow_provider_mtp.sensors.incidents",
    "airflow_provider_mtp.sensors.alerts",
    "airflow_provider_mtp.triggers.incidents",
    "airflow_provider_mtp.triggers.alerts",
]
ALL_MTP = "MTP operators + sensors + triggers"
CONTENDERS: dict[str, list[str]] = {
    ALL_MTP: PROVIDER,
    "http provider HttpOperator": ["airflow.providers.http.operators.http"],
    "msgraph MSGraphAsyncOperator": ["airflow.providers.microsoft.azure.operators.msgraph"],
}
TARGET_S = 0.05
#: Bytecode caches written and used, as a deployed DAG processor has them: without this a
#: PYTHONDONTWRITEBYTECODE=1 in the environment (some CI and container images set it) makes every
#: process compile every module from source, which triples ``import airflow.sdk``.
ENV = {key: value for key, value in os.environ.items() if key != "PYTHONDONTWRITEBYTECODE"}

PROBE = """
import importlib, json, sys, time
started = time.perf_counter()
import airflow.sdk
sdk = time.perf_counter() - started
started = time.perf_counter()
for name in sys.argv[1:]:
    importlib.import_module(name)
print(json.dumps({"sdk": sdk, "more": time.perf_counter() - started}))
"""


def probe(python: Path, modules: list[str]) -> dict[str, float]:
    done = subprocess.run(
        [str(python), "-c", PROBE, *modules],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
        env=ENV,
    )
    if done.returncode:
        raise RuntimeError(done.stderr.strip().splitlines()[-1] if done.stderr.strip() else "failed")
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def heaviest(python: Path, count: int = 5) -> str:
    """The modules imported after ``airflow.sdk`` that cost most themselves (``-X importtime``)."""
    code = "import airflow.sdk\n" + "".join(f"import {module}\n" for module in PROVIDER)
    done = subprocess.run(
        [str(python), "-X", "importtime", "-c", code], capture_output=True, text=True, check=False, env=ENV
    )
    lines = done.stderr.splitlines()
    after_sdk = max((i for i, line in enumerate(lines) if line.rstrip().endswith("| airflow.sdk")), default=0)
    found = []
    for line in lines[after_sdk + 1 :]:
        parts = [part.strip() for part in line.split(":", 1)[-1].split("|")]
        if len(parts) == 3 and parts[0].isdigit():
            found.append((int(parts[0]), parts[2]))
    top = ", ".join(f"{name} {micros / 1e3:.0f} ms" for micros, name in sorted(found, reverse=True)[:count])
    own = sum(micros for micros, _ in found) / 1e6
    return f"{len(found)} modules, {own:.3f} s in all; the heaviest (self time): {top}"


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument(
        "--bench-venv", type=Path, default=Path(__file__).resolve().parents[1] / ".bench-venv"
    )
    args = parser.parse_args()
    report = Report(
        "parse_cost",
        f"seconds added to `import airflow.sdk` by a DAG file's imports; medians of {args.rounds} fresh processes",
        ["imports after airflow.sdk", "added s", "airflow.sdk s", "(sdk + added) / sdk"],
    )
    python = args.bench_venv / "bin" / "python"
    contenders = dict(CONTENDERS)
    if not python.exists():
        report.note(
            f"no {args.bench_venv} (make bench-venv): msgraph not measured, the rest in {sys.executable}"
        )
        python = Path(sys.executable)
        contenders.pop("msgraph MSGraphAsyncOperator")
    try:
        probe(python, [m for modules in contenders.values() for m in modules])  # the bytecode caches
    except RuntimeError:
        for name, modules in list(contenders.items()):
            try:
                probe(python, modules)
            except RuntimeError as exc:
                report.note(f"{name} not measured: {exc}")
                contenders.pop(name)
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in contenders}
    names = list(contenders)
    for round_ in range(args.rounds):
        # Rotate the order, so no contender always runs right after the same one.
        shift = round_ % len(names)
        for name in names[shift:] + names[:shift]:
            runs[name].append(probe(python, contenders[name]))
    for name in names:
        added = median(run["more"] for run in runs[name])
        sdk = median(run["sdk"] for run in runs[name])
        ratio = median((run["sdk"] + run["more"]) / run["sdk"] for run in runs[name])
        report.row(name, added, sdk, ratio)
        if name == ALL_MTP:
            report.target(
                "MTP operators + sensors + triggers, added to airflow.sdk", added, TARGET_S, unit=" s"
            )
    report.note(f"interpreter: {python}")
    report.note(f"python -X importtime after airflow.sdk: {heaviest(python)}")
    report.extra["runs"] = runs
    report.finish()
    return 0


if __name__ == "__main__":
    sys.exit(main())
