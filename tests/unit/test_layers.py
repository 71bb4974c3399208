"""The client and the unit tier need no emulator: what `pip install airflow-provider-mtp` gives.

A fresh interpreter is started in which the emulator package and the packages only its extra brings
(duckdb, duckdb-kql, the ANTLR runtime, trustme) cannot be imported: an import hook raises
``ModuleNotFoundError`` for them, as on a machine where the ``[emulator]`` extra was never installed.
fastapi, uvicorn and pyjwt stay importable: Airflow itself depends on them. In that interpreter every
client module must import, and ``pytest --setup-plan tests/unit`` must collect every unit test and
find every fixture it asks for (a unit test that needs the emulator belongs in tests/integration).
The import direction itself (nothing in the client imports the emulator) is the import contract
in ``.importlinter``, checked by ``make lint``.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

#: What the emulator extra alone brings, and the emulator itself.
ABSENT = ("airflow_provider_mtp.emulator", "duckdb", "duckdb_kql", "antlr4", "trustme")

_WITHOUT_EMULATOR = """
import importlib, importlib.abc, pkgutil, sys

ABSENT = {absent!r}

class Absent(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if any(name == gone or name.startswith(gone + ".") for gone in ABSENT):
            raise ModuleNotFoundError(f"No module named {{name!r}} (the emulator extra is absent)", name=name)
        return None

sys.meta_path.insert(0, Absent())

import airflow_provider_mtp
for module in pkgutil.walk_packages(airflow_provider_mtp.__path__, "airflow_provider_mtp."):
    if not module.name.startswith("airflow_provider_mtp.emulator"):
        importlib.import_module(module.name)

import pytest
sys.exit(pytest.main(["tests/unit", "--setup-plan", "-q", "-p", "no:cacheprovider"]))
"""


def test_the_client_and_the_unit_tier_need_no_emulator() -> None:
    script = _WITHOUT_EMULATOR.format(absent=ABSENT)
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=600, check=False
    )
    report = (done.stdout + done.stderr)[-6000:]
    assert done.returncode == 0, f"without the emulator extra:\n{report}"
