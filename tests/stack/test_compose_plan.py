"""The harness runs what docker-compose.yaml says, and refuses what it cannot run (issue 12, Must show 4).

No process is started here: :func:`tests.stack.compose.plan` turns the file into local command lines
and environments, and a service, image, command or variable it has no local equivalent for is a
:class:`~tests.stack.compose.ComposeError` naming it, before anything starts.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.stack.compose import COMPOSE_FILE, ComposeError, Layout, choose_ports, load_compose, plan
from tests.stack.harness import STACK_ARTIFACTS, compose_stack


def _plan(path: Path, tmp_path: Path) -> dict[str, Any]:
    compose = load_compose(path)
    layout = Layout(tmp_path)
    layout.ports = choose_ports(compose["services"])
    return plan(compose, layout)


def _edited(tmp_path: Path, edit: Any) -> Path:
    """A copy of the compose file with ``edit(document)`` applied (anchors already merged)."""
    document = yaml.safe_load(COMPOSE_FILE.read_text())
    edit(document)
    copy = tmp_path / "docker-compose.yaml"
    copy.write_text(yaml.safe_dump(document, sort_keys=False))
    return copy


def test_every_service_of_the_file_has_a_local_process(tmp_path: Path) -> None:
    instances = _plan(COMPOSE_FILE, tmp_path)
    services = {name for name, spec in load_compose()["services"].items() if not spec.get("profiles")}
    assert {instance.service for instance in instances.values()} == services
    # Two Celery workers for the one worker service, each its own node name and hostname.
    workers = [instance for instance in instances.values() if instance.service == "airflow-worker"]
    assert [worker.argv[-1] for worker in workers] == ["celery@airflow-worker-1", "celery@airflow-worker-2"]
    assert {worker.env["HOSTNAME"] for worker in workers} == {"airflow-worker-1", "airflow-worker-2"}
    # Host names became loopback addresses; the emulator keeps its name (it is in its certificate).
    env = instances["airflow-scheduler"].env
    assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    for name in ("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "AIRFLOW__CELERY__BROKER_URL"):
        assert "@127.0.0.1:" in env[name], env[name]
    assert '"api_url": "https://emulator:' in env["AIRFLOW_CONN_MTP_DEFAULT"]
    emulator = instances["emulator"].argv
    assert emulator[emulator.index("--hostname") + 1] == "emulator"
    assert emulator[emulator.index("--host") + 1] == "127.0.0.1"


def _add_flower(document: dict[str, Any]) -> None:
    document["services"]["flower"] = {"image": "nginx:latest", "ports": ["5555:80"]}


def _celery_flower(document: dict[str, Any]) -> None:
    document["services"]["airflow-triggerer"]["command"] = "celery flower"


def _new_setting(document: dict[str, Any]) -> None:
    # A copy: the services share the anchor's environment mapping.
    scheduler = document["services"]["airflow-scheduler"]
    scheduler["environment"] = {**scheduler["environment"], "AIRFLOW__CORE__PARALLELISM": "64"}


@pytest.mark.parametrize(
    ("edit", "named"),
    [
        pytest.param(_add_flower, ("'flower'", "nginx:latest"), id="a-service-with-an-unknown-image"),
        pytest.param(
            _celery_flower, ("'airflow-triggerer'", "celery flower"), id="an-unknown-airflow-command"
        ),
        pytest.param(
            _new_setting,
            ("'airflow-scheduler'", "AIRFLOW__CORE__PARALLELISM"),
            id="an-unknown-environment-variable",
        ),
    ],
)
def test_what_the_harness_cannot_run_fails_naming_it(
    tmp_path: Path, edit: Callable[[dict[str, Any]], None], named: tuple[str, str]
) -> None:
    with pytest.raises(ComposeError) as refused:
        _plan(_edited(tmp_path, edit), tmp_path)
    print(f"\nrefused: {refused.value}")
    for name in named:
        assert name in str(refused.value)


def test_the_stack_refuses_such_a_file_before_starting_anything(tmp_path: Path) -> None:
    before = sorted(STACK_ARTIFACTS.glob("*.log"))
    with (
        pytest.raises(ComposeError, match="'flower'"),
        compose_stack(compose_file=_edited(tmp_path, _add_flower)),
    ):
        pytest.fail("the stack started")  # pragma: no cover
    # Refused before anything started: no process wrote a log, the last stack's logs are still there.
    assert sorted(STACK_ARTIFACTS.glob("*.log")) == before
