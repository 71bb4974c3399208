"""The client and the unit tier need no emulator: what `pip install airflow-provider-mtp` gives.

A fresh interpreter is started in which the emulator package and the packages only its extra brings
(duckdb, duckdb-kql, the ANTLR runtime, trustme) cannot be imported: an import hook raises
``ModuleNotFoundError`` for them, as on a machine where the ``[emulator]`` extra was never installed.
fastapi, uvicorn and pyjwt stay importable: Airflow itself depends on them. In that interpreter every
client module must import, and ``pytest --setup-plan tests/unit`` must collect every unit test and
find every fixture it asks for (a unit test that needs the emulator belongs in tests/integration).
The import direction itself (nothing in the client imports the emulator) is the import contract
in ``.importlinter``, checked by ``make lint``.

And every third-party module the client imports, lazily inside a function too, is a declared
dependency of the base package (or of the ``parquet`` extra it names in its error message).
"""

from __future__ import annotations

import ast
import importlib.metadata
import re
import subprocess
import sys
import tomllib
from collections.abc import Mapping
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CLIENT = ROOT / "airflow_provider_mtp"

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


def _runtime_imports(tree: ast.Module) -> set[str]:
    """Absolute imports anywhere in a module, except under ``if TYPE_CHECKING:`` (never run)."""
    found: set[str] = set()
    pending: list[ast.AST] = [tree]
    while pending:
        node = pending.pop()
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            pending.extend(node.orelse)
            continue
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module)
        pending.extend(ast.iter_child_nodes(node))
    return found


def _name(requirement: str) -> str:
    return re.split(r"[\s\[<>=!~;]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def _distribution(module: str, owners: Mapping[str, list[str]]) -> str | None:
    """The distribution a module comes from; Airflow's providers and core by their own names."""
    top = module.split(".")[0]
    if top == "airflow":
        provider = re.match(r"airflow\.providers\.(\w+)", module)
        return f"apache-airflow-providers-{provider[1].replace('_', '-')}" if provider else "apache-airflow"
    if top in sys.stdlib_module_names or top in ("__future__", "airflow_provider_mtp"):
        return None
    return owners.get(top, [top])[0].lower().replace("_", "-")


def test_every_third_party_module_the_client_imports_is_declared() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = {_name(r) for r in [*project["dependencies"], *project["optional-dependencies"]["parquet"]]}
    owners = importlib.metadata.packages_distributions()
    undeclared: dict[str, set[str]] = {}
    for path in sorted(CLIENT.rglob("*.py")):
        if "emulator" in path.relative_to(CLIENT).parts:
            continue
        for module in _runtime_imports(ast.parse(path.read_text(), filename=str(path))):
            distribution = _distribution(module, owners)
            if distribution is not None and distribution not in declared:
                undeclared.setdefault(distribution, set()).add(str(path.relative_to(CLIENT.parent)))
    assert not undeclared, f"imported by the client but not declared in pyproject.toml: {undeclared}"
