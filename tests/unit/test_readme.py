"""The README stays true to the code: its troubleshooting rows name real tests, its commands exist."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def _troubleshooting_rows() -> list[tuple[str, str]]:
    section = README.split("## Troubleshooting", 1)[1].split("\n## ", 1)[0]
    rows = []
    for line in section.splitlines():
        cells = [cell.strip() for cell in re.split(r"(?<!\\)\|", line)[1:-1]]
        if len(cells) == 3 and "::" in cells[2]:
            rows.append((cells[0], cells[2].strip("`")))
    return rows


def _test_names(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return {node.name for node in ast.walk(tree) if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)}


def test_the_troubleshooting_table_has_rows() -> None:
    assert len(_troubleshooting_rows()) >= 10


@pytest.mark.parametrize(("message", "reference"), _troubleshooting_rows(), ids=lambda value: value[:40])
def test_each_troubleshooting_error_is_produced_by_a_named_test(message: str, reference: str) -> None:
    path, _, name = reference.partition("::")
    assert (ROOT / path).is_file(), f"{path} (for {message!r}) does not exist"
    assert name in _test_names(ROOT / path), f"{reference} (for {message!r}) does not exist"


def test_every_make_target_the_readme_uses_exists() -> None:
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    targets = set(re.findall(r"^([A-Za-z][\w-]*):", makefile, flags=re.MULTILINE))
    used = set(re.findall(r"\bmake ([a-z][\w-]*)", README))
    assert used, "the README names make targets"
    assert used <= targets, f"README names targets the Makefile lacks: {sorted(used - targets)}"


def test_files_and_modules_the_readme_names_exist() -> None:
    for path in re.findall(r"`((?:airflow_provider_mtp|example_dags|bench|tests)/[\w/.-]+)`", README):
        if path.startswith("tests/artifacts/"):
            continue  # written by the runs (logs), not part of a clone
        assert (ROOT / path).exists(), f"README names {path}, which does not exist"
    for module in re.findall(r"python -m ([\w.]+)", README):
        path = ROOT / module.replace(".", "/")
        assert path.exists() or path.with_suffix(".py").is_file(), (
            f"README runs {module}, which does not exist"
        )
