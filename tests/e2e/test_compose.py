"""The docker-compose stack, checked without a Docker engine.

Two checks (airflow-provider.md section 9): the file against the compose specification
(check-jsonschema's vendored compose schema), and :func:`problems`, a reference check the schema
cannot do: services named in ``depends_on`` exist, mounted paths and named volumes exist, the
Dockerfile exists and every Airflow container runs the image built from it, the emulator listens
on the compose network, and ``mtp_default`` carries the emulator's credentials for its seed.
The mutation tests prove each check fails when its part of the stack is removed.
"""

from __future__ import annotations

import copy
import json
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from airflow_provider_mtp.emulator.identity import derived_id, derived_secret

REPO = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO / "docker-compose.yaml"
CHECK_JSONSCHEMA = str(Path(sys.executable).with_name("check-jsonschema"))

#: Services that run Airflow; each must run the provider's image and know ``mtp_default``.
AIRFLOW_SERVICES = (
    "airflow-apiserver",
    "airflow-scheduler",
    "airflow-dag-processor",
    "airflow-triggerer",
    "airflow-worker",
    "airflow-init",
)
REQUIRED_SERVICES = ("postgres", "redis", "emulator", *AIRFLOW_SERVICES)
#: Where the stack expects the example DAGs: the dags folder of the Airflow image.
DAGS_MOUNT = ("./example_dags", "/opt/airflow/dags")
#: The emulator's default seed, as in ``python -m airflow_provider_mtp.emulator --help``.
DEFAULT_SEED = 7
_INTERPOLATION = re.compile(r"\$\{(?P<name>\w+)(?::?-(?P<default>[^}]*))?\}")


# The reference check.


def problems(compose: dict[str, Any], repo_root: Path) -> list[str]:
    """What is wrong with a parsed compose file, one sentence each; empty when nothing is.

    :param compose: the file as ``yaml.safe_load`` returns it (anchors and merges resolved).
    :param repo_root: the folder the file lives in; relative host paths resolve against it.
    """
    services: dict[str, Any] = compose.get("services") or {}
    found: list[str] = [f"service {name!r} is missing" for name in REQUIRED_SERVICES if name not in services]
    for name, service in services.items():
        found += _dependency_problems(name, service, services)
        found += _mount_problems(name, service, compose, repo_root)
        found += _build_problems(name, service, repo_root)
    found += _image_problems(services)
    found += _emulator_problems(services)
    found += _airflow_settings_problems(services)
    return found


def _dependency_problems(name: str, service: dict[str, Any], services: dict[str, Any]) -> Iterator[str]:
    for dependency, condition in _depends_on(service).items():
        if dependency not in services:
            yield f"service {name!r} depends on {dependency!r}, which is not defined"
        elif condition == "service_healthy" and "healthcheck" not in services[dependency]:
            yield f"service {name!r} waits for {dependency!r} to be healthy, but it has no healthcheck"


def _mount_problems(
    name: str, service: dict[str, Any], compose: dict[str, Any], repo_root: Path
) -> Iterator[str]:
    declared = compose.get("volumes") or {}
    for source, _target in _mounts(service):
        if _is_host_path(source):
            if not (repo_root / source).exists():
                yield f"service {name!r} mounts {source}, which does not exist in {repo_root}"
        elif source not in declared:
            yield f"service {name!r} mounts volume {source!r}, which is not declared under top-level volumes"


def _build_problems(name: str, service: dict[str, Any], repo_root: Path) -> Iterator[str]:
    if "build" not in service:
        return
    context, dockerfile = _build(service)
    if not (repo_root / context).is_dir():
        yield f"service {name!r} builds in {context}, which is not a folder in {repo_root}"
    elif not (repo_root / context / dockerfile).is_file():
        yield f"service {name!r} builds from {dockerfile}, which does not exist in {repo_root / context}"


def _image_problems(services: dict[str, Any]) -> Iterator[str]:
    """Every Airflow container, and the emulator, runs the one image built from the Dockerfile."""
    images = set()
    for name in (*AIRFLOW_SERVICES, "emulator"):
        service = services.get(name)
        if service is None:
            continue
        if "build" not in service:
            yield f"service {name!r} does not build the provider's image from the Dockerfile"
        images.add(_interpolate(str(service.get("image", ""))))
    if len(images) > 1:
        yield f"the Airflow services and the emulator run different images: {sorted(images)}"


def _emulator_problems(services: dict[str, Any]) -> Iterator[str]:
    emulator = services.get("emulator")
    if emulator is None:
        return
    command = _command(emulator)
    for flag, value in (("--host", "0.0.0.0"), ("--hostname", "emulator")):
        if _option(command, flag) != value:
            yield f"the emulator's command lacks {flag} {value} (it must be reachable as 'emulator')"
    state_dir = _option(command, "--state-dir")
    if state_dir is None or not any(target == state_dir for _, target in _mounts(emulator)):
        yield "the emulator's --state-dir is not a mounted volume, so its CA cannot reach Airflow"


def _airflow_settings_problems(services: dict[str, Any]) -> Iterator[str]:
    emulator = services.get("emulator")
    command = _command(emulator) if emulator else []
    seed = int(_option(command, "--seed") or DEFAULT_SEED)
    port = _option(command, "--port")
    expected_origin = f"https://emulator:{port}"
    shared_volumes = {source: target for source, target in _mounts(emulator or {})}
    wanted = {
        "AIRFLOW__CORE__TEST_CONNECTION": "Enabled",
        "AIRFLOW__CORE__LOAD_EXAMPLES": "false",
    }
    for name in AIRFLOW_SERVICES:
        service = services.get(name)
        if service is None:
            continue
        env = _environment(service)
        for key, value in wanted.items():
            if str(env.get(key, "")).lower() != value.lower():
                yield f"service {name!r} does not set {key}={value}"
        if DAGS_MOUNT not in set(_mounts(service)):
            yield f"service {name!r} does not mount {DAGS_MOUNT[0]} at {DAGS_MOUNT[1]}"
        raw = env.get("AIRFLOW_CONN_MTP_DEFAULT")
        if raw is None:
            yield f"service {name!r} has no AIRFLOW_CONN_MTP_DEFAULT"
            continue
        try:
            conn = json.loads(raw)
        except json.JSONDecodeError as exc:
            yield f"service {name!r}: AIRFLOW_CONN_MTP_DEFAULT is not JSON ({exc})"
            continue
        extra = conn.get("extra") or {}
        fields = {
            "conn_type": (conn.get("conn_type"), "mtp"),
            "login": (conn.get("login"), derived_id(seed, "full")),
            "password": (conn.get("password"), derived_secret(seed, "full")),
            "extra.tenant_id": (extra.get("tenant_id"), derived_id(seed, "tenant")),
            "extra.api_url": (extra.get("api_url"), expected_origin),
            "extra.login_url": (extra.get("login_url"), expected_origin),
        }
        for field, (actual, expected) in fields.items():
            if actual != expected:
                yield (
                    f"service {name!r}: mtp_default {field} is {actual!r}, but the emulator "
                    f"(seed {seed}) expects {expected!r}"
                )
        ca_bundle = str(extra.get("ca_bundle", ""))
        mounted_state = {target for source, target in _mounts(service) if source in shared_volumes}
        if not any(ca_bundle.startswith(target.rstrip("/") + "/") for target in mounted_state):
            yield f"service {name!r}: mtp_default ca_bundle {ca_bundle!r} is not on the emulator's volume"


# Reading compose's several spellings of the same thing.


def _depends_on(service: dict[str, Any]) -> dict[str, str | None]:
    """``depends_on`` as {service: condition}; the short (list) form has no condition."""
    raw = service.get("depends_on") or {}
    if isinstance(raw, list):
        return dict.fromkeys(raw)
    return {name: (spec or {}).get("condition") for name, spec in raw.items()}


def _mounts(service: dict[str, Any]) -> list[tuple[str, str]]:
    """(source, target) of each volume; short ``src:dst[:mode]`` or long syntax. Anonymous skipped."""
    mounts = []
    for volume in service.get("volumes") or []:
        if isinstance(volume, dict):
            source, target = volume.get("source"), volume.get("target", "")
        else:
            parts = _interpolate(volume).split(":")
            source, target = (parts[0], parts[1]) if len(parts) > 1 else (None, parts[0])
        if source:
            mounts.append((_interpolate(str(source)), str(target)))
    return mounts


def _is_host_path(source: str) -> bool:
    return source.startswith((".", "/", "~"))


def _build(service: dict[str, Any]) -> tuple[str, str]:
    build = service["build"]
    if isinstance(build, str):
        return _interpolate(build), "Dockerfile"
    return _interpolate(str(build.get("context", "."))), _interpolate(
        str(build.get("dockerfile", "Dockerfile"))
    )


def _command(service: dict[str, Any]) -> list[str]:
    command = service.get("command") or []
    return shlex.split(command) if isinstance(command, str) else [str(part) for part in command]


def _option(command: list[str], flag: str) -> str | None:
    """The value after ``flag`` (or in ``flag=value``) in an argument list."""
    for index, part in enumerate(command):
        if part == flag and index + 1 < len(command):
            return command[index + 1]
        if part.startswith(flag + "="):
            return part.partition("=")[2]
    return None


def _environment(service: dict[str, Any]) -> dict[str, str]:
    raw = service.get("environment") or {}
    if isinstance(raw, list):
        return dict(item.partition("=")[::2] for item in raw)
    return {key: "" if value is None else str(value) for key, value in raw.items()}


def _interpolate(text: str) -> str:
    """Compose variables replaced by their defaults (``${NAME:-default}``), as with an empty .env."""
    return _INTERPOLATION.sub(lambda match: match.group("default") or "", text)


# Helpers of the tests.


def _load() -> dict[str, Any]:
    return dict(yaml.safe_load(COMPOSE_FILE.read_text()))


def _check_schema(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CHECK_JSONSCHEMA, "--builtin-schema", "vendor.compose-spec", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _without_service(compose: dict[str, Any], removed: str) -> dict[str, Any]:
    """A copy without the service ``removed``; others still name it in ``depends_on``."""
    mutated = copy.deepcopy(compose)
    del mutated["services"][removed]
    return mutated


def _names(found: list[str], text: str) -> list[str]:
    return [problem for problem in found if text in problem]


# The file as it is.


def test_compose_file_matches_the_compose_specification() -> None:
    checked = _check_schema(COMPOSE_FILE)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_compose_file_has_no_reference_problems() -> None:
    assert problems(_load(), REPO) == []


def test_mtp_default_is_the_emulators_full_app_for_seed_7() -> None:
    services = _load()["services"]
    assert _option(_command(services["emulator"]), "--seed") in (None, str(DEFAULT_SEED))
    for name in AIRFLOW_SERVICES:
        conn = json.loads(_environment(services[name])["AIRFLOW_CONN_MTP_DEFAULT"])
        assert conn["conn_type"] == "mtp"
        assert conn["login"] == derived_id(DEFAULT_SEED, "full")
        assert conn["password"] == derived_secret(DEFAULT_SEED, "full")
        assert conn["extra"] == {
            "tenant_id": derived_id(DEFAULT_SEED, "tenant"),
            "api": "graph",
            "api_url": "https://emulator:8443",
            "login_url": "https://emulator:8443",
            "ca_bundle": "/emulator-state/ca.pem",
        }


def test_emulator_cli_accepts_the_compose_command() -> None:
    """The flags in the file are the emulator's real flags, with the values the stack relies on."""
    from airflow_provider_mtp.emulator.__main__ import parse_args

    command = _command(_load()["services"]["emulator"])
    assert command[:3] == ["python", "-m", "airflow_provider_mtp.emulator"]
    config, state_dir = parse_args(command[3:])
    assert (config.host, config.hostname, config.port, config.seed) == ("0.0.0.0", "emulator", 8443, 7)
    assert state_dir == Path("/emulator-state")


def test_dockerfile_installs_the_wheel_with_the_emulator_extra() -> None:
    dockerfile = (REPO / "Dockerfile").read_text()
    assert re.search(r"^FROM apache/airflow:3\.3\.\d+-python3\.11$", dockerfile, re.MULTILINE)
    assert "COPY dist/airflow_provider_mtp-*.whl /tmp/" in dockerfile
    assert '"apache-airflow==${AIRFLOW_VERSION}"' in dockerfile
    assert '"$1[emulator]"' in dockerfile
    assert "apache-airflow-providers-http" in dockerfile
    # The emulator's state volume is seeded from this folder, so it must exist and be writable.
    assert "mkdir -p /emulator-state" in dockerfile


# Each check fails when its part is removed (must-show 4).


@pytest.mark.parametrize("removed", ["postgres", "redis", "emulator", "airflow-init", "airflow-apiserver"])
def test_removing_a_service_others_depend_on_is_a_problem(removed: str) -> None:
    found = problems(_without_service(_load(), removed), REPO)
    assert f"service {removed!r} is missing" in found
    assert _names(found, f"depends on {removed!r}, which is not defined"), found


def test_removing_the_mounted_dags_folder_is_a_problem(tmp_path: Path) -> None:
    """A repository root without example_dags/ (but with the Dockerfile) fails on the mount."""
    (tmp_path / "Dockerfile").write_text((REPO / "Dockerfile").read_text())
    found = problems(_load(), tmp_path)
    assert found
    assert all("./example_dags, which does not exist" in problem for problem in found), found
    assert {problem.split("'")[1] for problem in found} >= set(AIRFLOW_SERVICES)


def test_mounting_a_missing_path_is_a_problem() -> None:
    compose = _load()
    volumes = compose["services"]["airflow-worker"]["volumes"]
    volumes[volumes.index("./example_dags:/opt/airflow/dags")] = "./no-such-folder:/opt/airflow/plugins"
    found = problems(compose, REPO)
    assert _names(found, "'airflow-worker' mounts ./no-such-folder, which does not exist"), found


def test_an_undeclared_named_volume_is_a_problem() -> None:
    compose = _load()
    del compose["volumes"]["emulator-state"]
    found = problems(compose, REPO)
    assert _names(found, "'emulator' mounts volume 'emulator-state', which is not declared"), found
    assert _names(found, "'airflow-apiserver' mounts volume 'emulator-state'"), found


def test_removing_the_dockerfile_reference_is_a_problem() -> None:
    compose = _load()
    for name in AIRFLOW_SERVICES:
        del compose["services"][name]["build"]
    found = problems(compose, REPO)
    for name in AIRFLOW_SERVICES:
        assert f"service {name!r} does not build the provider's image from the Dockerfile" in found


def test_a_missing_dockerfile_is_a_problem(tmp_path: Path) -> None:
    (tmp_path / "example_dags").mkdir()
    found = problems(_load(), tmp_path)
    assert found
    assert all("builds from Dockerfile, which does not exist" in problem for problem in found), found


def test_a_renamed_dockerfile_is_a_problem() -> None:
    compose = _load()
    compose["services"]["airflow-triggerer"]["build"]["dockerfile"] = "Dockerfile.missing"
    found = problems(compose, REPO)
    assert _names(found, "'airflow-triggerer' builds from Dockerfile.missing, which does not exist"), found


def test_an_emulator_on_loopback_is_a_problem() -> None:
    compose = _load()
    command = compose["services"]["emulator"]["command"]
    command[command.index("--host") + 1] = "127.0.0.1"
    found = problems(compose, REPO)
    assert found == ["the emulator's command lacks --host 0.0.0.0 (it must be reachable as 'emulator')"]


def test_wrong_emulator_credentials_are_a_problem() -> None:
    compose = _load()
    env = compose["services"]["airflow-worker"]["environment"]
    conn = json.loads(env["AIRFLOW_CONN_MTP_DEFAULT"])
    conn["password"] = derived_secret(8, "full")
    env["AIRFLOW_CONN_MTP_DEFAULT"] = json.dumps(conn)
    found = problems(compose, REPO)
    assert len(found) == 1
    assert found[0].startswith("service 'airflow-worker': mtp_default password is"), found


def test_waiting_for_a_service_without_healthcheck_is_a_problem() -> None:
    compose = _load()
    del compose["services"]["emulator"]["healthcheck"]
    found = problems(compose, REPO)
    assert _names(found, "waits for 'emulator' to be healthy, but it has no healthcheck"), found


def test_schema_check_fails_on_an_invalid_file(tmp_path: Path) -> None:
    compose = _load()
    compose["services"]["emulator"]["helthcheck"] = compose["services"]["emulator"].pop("healthcheck")
    broken = tmp_path / "docker-compose.yaml"
    broken.write_text(yaml.safe_dump(compose, sort_keys=False))
    checked = _check_schema(broken)
    assert checked.returncode != 0
    assert "helthcheck" in checked.stdout + checked.stderr
