"""The wheel as users get it: built as ``make dist`` builds it, installed (not editable) into a clean venv.

An editable install sees every file in the repository, so it cannot show that the wheel leaves
something out (the hunting schema, ``py.typed``, the entry point). This runs ``uv build`` as
``make dist`` does (the sdist, then the wheel from the sdist, so a file the sdist drops is missing
from the wheel too), installs the wheel into a fresh venv and runs the provider checks there: first
without the ``[emulator]`` extra, which Airflow's provider discovery must not need, then with it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from airflow_provider_mtp import __version__

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
#: Building and installing take about 10 s with uv's cache warm; a cold cache downloads Airflow.
INSTALL_TIMEOUT_S = 300
RUN_TIMEOUT_S = 120


@dataclass(frozen=True)
class CleanVenv:
    """A venv holding only the wheel and its dependencies.

    :param wheel: the wheel that was built.
    :param python: the venv's interpreter.
    :param env: environment to run it with: its own ``AIRFLOW_HOME``, none of the test run's settings.
    :param cwd: a folder outside the repository, so ``import`` cannot find the source tree.
    """

    wheel: Path
    python: Path
    env: dict[str, str]
    cwd: Path

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return _run([*args], env=self.env, cwd=self.cwd, timeout=RUN_TIMEOUT_S)

    def airflow(self, *args: str) -> subprocess.CompletedProcess[str]:
        return self.run(str(self.python.with_name("airflow")), *args)

    def install(self, requirement: str) -> None:
        installed = _uv("pip", "install", "--python", str(self.python), requirement, cwd=self.cwd)
        assert installed.returncode == 0, installed.stderr[-3000:]


def _run(
    args: list[str], *, env: dict[str, str] | None = None, cwd: Path, timeout: float
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        args, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False
    )


def _uv(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items() if key != "VIRTUAL_ENV"}
    return _run([sys.executable, "-m", "uv", *args], env=env, cwd=cwd, timeout=INSTALL_TIMEOUT_S)


def _clean_env(airflow_home: Path) -> dict[str, str]:
    """The parent's environment without its Airflow and Python settings, plus a fresh home."""
    dropped = ("AIRFLOW", "PYTHON", "VIRTUAL_ENV")
    env = {key: value for key, value in os.environ.items() if not key.startswith(dropped)}
    env.update(AIRFLOW_HOME=str(airflow_home), AIRFLOW__CORE__LOAD_EXAMPLES="False")
    return env


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The folder ``make dist`` would fill: one sdist and one wheel."""
    out = tmp_path_factory.mktemp("dist")
    built = _uv("build", "--out-dir", str(out), str(REPO), cwd=REPO)
    assert built.returncode == 0, built.stderr[-3000:]
    return out


@pytest.fixture(scope="module")
def wheel(dist: Path) -> Path:
    wheels = list(dist.glob("airflow_provider_mtp-*.whl"))
    assert len(wheels) == 1, wheels
    return wheels[0]


@pytest.fixture(scope="module")
def clean_venv(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> CleanVenv:
    """The wheel installed without extras into a new venv of the interpreter running the tests."""
    root = tmp_path_factory.mktemp("clean")
    created = _uv("venv", "--python", sys.executable, str(root / "venv"), cwd=root)
    assert created.returncode == 0, created.stderr[-3000:]
    venv = CleanVenv(
        wheel=wheel, python=root / "venv" / "bin" / "python", env=_clean_env(root / "home"), cwd=root
    )
    venv.install(str(wheel))
    return venv


def test_wheel_holds_the_data_files_entry_point_and_licence(wheel: Path) -> None:
    assert wheel.name == f"airflow_provider_mtp-{__version__}-py3-none-any.whl"
    dist_info = f"airflow_provider_mtp-{__version__}.dist-info"
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        entry_points = archive.read(f"{dist_info}/entry_points.txt").decode()
        metadata = archive.read(f"{dist_info}/METADATA").decode()
    assert "airflow_provider_mtp/emulator/data/hunting-schema.json" in names
    assert "airflow_provider_mtp/py.typed" in names
    assert f"{dist_info}/licenses/LICENSE" in names
    assert "[apache_airflow_provider]" in entry_points
    assert "provider_info = airflow_provider_mtp.get_provider_info:get_provider_info" in entry_points
    assert "Provides-Extra: emulator" in metadata
    # Only the package: no tests, example DAGs or caches.
    assert {name.split("/")[0] for name in names} == {"airflow_provider_mtp", dist_info}
    assert not [name for name in names if "__pycache__" in name or name.endswith(".pyc")]


def test_sdist_holds_the_sources_tests_and_changelog(dist: Path) -> None:
    sdists = list(dist.glob("airflow_provider_mtp-*.tar.gz"))
    assert [path.name for path in sdists] == [f"airflow_provider_mtp-{__version__}.tar.gz"]
    with tarfile.open(sdists[0]) as archive:
        names = {name.partition("/")[2] for name in archive.getnames()}
    for expected in (
        "pyproject.toml",
        "README.md",
        "LICENSE",
        "CHANGELOG.md",
        "Makefile",
        "airflow_provider_mtp/emulator/data/hunting-schema.json",
        "airflow_provider_mtp/py.typed",
        "tests/e2e/test_wheel.py",
    ):
        assert expected in names, expected
    assert not [name for name in names if "__pycache__" in name or name.startswith(".venv/")]


def test_the_venv_imports_the_installed_wheel_not_the_source_tree(clean_venv: CleanVenv) -> None:
    shown = clean_venv.run(
        str(clean_venv.python),
        "-c",
        "import sys, airflow_provider_mtp; print(airflow_provider_mtp.__file__); print(sys.version_info[:2])",
    )
    assert shown.returncode == 0, shown.stderr[-2000:]
    location, version = shown.stdout.splitlines()
    assert Path(location).is_relative_to(clean_venv.python.parents[1]), location
    assert "site-packages" in location
    assert version == str(sys.version_info[:2])


def test_airflow_providers_get_finds_the_provider(clean_venv: CleanVenv) -> None:
    provider = clean_venv.airflow("providers", "get", "airflow-provider-mtp", "-o", "json")
    assert provider.returncode == 0, provider.stderr[-3000:]
    assert json.loads(provider.stdout) == [{"Provider": "airflow-provider-mtp", "Version": __version__}]


def test_airflow_providers_hooks_imports_the_hook_without_the_emulator_extra(clean_venv: CleanVenv) -> None:
    hooks = clean_venv.airflow("providers", "hooks", "-o", "json")
    assert hooks.returncode == 0, hooks.stderr[-3000:]
    assert "Error when importing hook" not in hooks.stdout + hooks.stderr
    mtp = [hook for hook in json.loads(hooks.stdout) if hook["connection_type"] == "mtp"]
    assert [(hook["class"], hook["package_name"]) for hook in mtp] == [
        ("airflow_provider_mtp.hooks.mtp.MTPHook", "airflow-provider-mtp")
    ]


def test_the_emulator_extra_installs_and_finds_its_data(clean_venv: CleanVenv) -> None:
    """Runs last in this module: it adds the extra to the shared venv."""
    clean_venv.install(f"{clean_venv.wheel}[emulator]")
    probe = (
        "import json, importlib.resources as r, airflow_provider_mtp.emulator as e;"
        "from airflow_provider_mtp.emulator.app import create_app;"
        "schema = r.files(e).joinpath('data', 'hunting-schema.json').read_text();"
        "print(len(json.loads(schema)))"
    )
    imported = clean_venv.run(str(clean_venv.python), "-c", probe)
    assert imported.returncode == 0, imported.stderr[-3000:]
    assert int(imported.stdout.strip()) > 0
    helped = clean_venv.run(str(clean_venv.python), "-m", "airflow_provider_mtp.emulator", "--help")
    assert helped.returncode == 0, helped.stderr[-3000:]
    assert "--state-dir" in helped.stdout
