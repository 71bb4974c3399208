"""The ``mtp`` connection type as a real Airflow sees it: the CLI and the api-server's form metadata.

Since Airflow 3.2 the connection form is read from the provider info without importing the hook
(airflow-provider.md section 2), so this starts a real ``airflow api-server`` in a throw-away
``AIRFLOW_HOME`` and reads ``GET /ui/connections/hook_meta`` as the UI does.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from airflow_provider_mtp.get_provider_info import CONN_FIELDS, get_provider_info

pytestmark = pytest.mark.e2e

AIRFLOW = str(Path(sys.executable).with_name("airflow"))
#: The api-server is up in 5-15 s on a small machine; a cold one gets more.
START_TIMEOUT_S = 90.0
STOP_GRACE_S = 15.0


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _airflow_env(home: Path, port: int) -> dict[str, str]:
    """The parent's environment without its Airflow settings (pytest's unit-test mode), plus ours."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("AIRFLOW")}
    env.update(
        AIRFLOW_HOME=str(home),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__CORE__AUTH_MANAGER="airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager",
        AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS="True",
        AIRFLOW__API__HOST="127.0.0.1",
        AIRFLOW__API__PORT=str(port),
        AIRFLOW__API__BASE_URL=f"http://127.0.0.1:{port}",
        AIRFLOW__API__WORKERS="1",
    )
    return env


def _run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([AIRFLOW, *args], env=env, capture_output=True, text=True, timeout=120, check=False)


def _stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the server's process group (it may fork workers), SIGKILL if it lingers."""
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=STOP_GRACE_S)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=STOP_GRACE_S)


@pytest.fixture(scope="module")
def airflow_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """A migrated metadata database in a fresh ``AIRFLOW_HOME``."""
    env = _airflow_env(tmp_path_factory.mktemp("airflow-home"), _free_port())
    migrated = _run(env, "db", "migrate")
    assert migrated.returncode == 0, migrated.stderr[-2000:]
    return env


@pytest.fixture(scope="module")
def api_server(airflow_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A running api-server's base URL; stopped by its pid afterwards, however the tests end."""
    base_url = airflow_env["AIRFLOW__API__BASE_URL"]
    log_path = tmp_path_factory.mktemp("api-server") / "api-server.log"
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            [AIRFLOW, "api-server", "--apps", "core", "--workers", "1"],
            env=airflow_env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, so workers are stopped with it
        )
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if process.poll() is not None:
                pytest.fail(f"api-server exited with {process.returncode}:\n{log_path.read_text()[-3000:]}")
            try:
                if requests.get(f"{base_url}/api/v2/monitor/health", timeout=2).ok:
                    break
            except requests.ConnectionError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(
                    f"api-server not healthy in {START_TIMEOUT_S:.0f} s:\n{log_path.read_text()[-3000:]}"
                )
            time.sleep(0.5)
        yield base_url
    finally:
        _stop(process)


def _hook_meta(base_url: str) -> dict[str, Any]:
    token = requests.get(f"{base_url}/auth/token", timeout=30)
    assert token.status_code == 201, token.text
    reply = requests.get(
        f"{base_url}/ui/connections/hook_meta",
        headers={"Authorization": f"Bearer {token.json()['access_token']}"},
        timeout=60,
    )
    assert reply.status_code == 200, reply.text
    entries = [entry for entry in reply.json() if entry.get("connection_type") == "mtp"]
    assert len(entries) == 1, [entry.get("connection_type") for entry in reply.json()]
    return dict(entries[0])


def test_hook_meta_serves_the_mtp_form(api_server: str) -> None:
    declared = get_provider_info()["connection-types"][0]
    behaviour = declared["ui-field-behaviour"]
    meta = _hook_meta(api_server)

    assert meta["hook_class_name"] == "airflow_provider_mtp.hooks.mtp.MTPHook"
    assert meta["hook_name"] == "Microsoft Defender XDR"
    assert meta["connection_type"] == "mtp"

    extra_fields = meta["extra_fields"]
    assert set(extra_fields) == set(CONN_FIELDS), set(extra_fields) ^ set(CONN_FIELDS)
    for name, field in CONN_FIELDS.items():
        served = extra_fields[name]
        assert served["schema"]["title"] == field["label"], name
        assert served["description"] == field["description"], name
        for key, value in field["schema"].items():
            assert served["schema"][key] == value, (name, key)
    secret_fields = {
        name for name, field in extra_fields.items() if field["schema"].get("format") == "password"
    }
    assert secret_fields == {"certificate", "certificate_password", "user_password"}
    assert extra_fields["auth_type"]["schema"]["enum"] == [
        "client_secret",
        "certificate",
        "user_password",
        "managed_identity",
        "workload_identity",
    ]

    standard = meta["standard_fields"]
    for hidden in behaviour["hidden-fields"]:
        # The API serves the connection's ``schema`` field as ``url_schema``.
        assert standard["url_schema" if hidden == "schema" else hidden]["hidden"] is True, hidden
    assert standard["login"] == {
        "hidden": False,
        "title": "Client ID",
        "placeholder": behaviour["placeholders"]["login"],
    }
    assert standard["password"] == {
        "hidden": False,
        "title": "Client secret",
        "placeholder": behaviour["placeholders"]["password"],
    }


def test_cli_lists_the_provider_and_imports_the_hook(airflow_env: dict[str, str]) -> None:
    provider = _run(airflow_env, "providers", "get", "airflow-provider-mtp", "-o", "json")
    assert provider.returncode == 0, provider.stderr[-2000:]
    assert json.loads(provider.stdout) == [
        {"Provider": "airflow-provider-mtp", "Version": get_provider_info()["versions"][0]}
    ]

    hooks = _run(airflow_env, "providers", "hooks", "-o", "json")
    assert hooks.returncode == 0, hooks.stderr[-2000:]
    assert "Error when importing hook" not in hooks.stdout + hooks.stderr
    mtp = [hook for hook in json.loads(hooks.stdout) if hook["connection_type"] == "mtp"]
    assert mtp == [
        {
            "connection_type": "mtp",
            "class": "airflow_provider_mtp.hooks.mtp.MTPHook",
            "conn_id_attribute_name": "mtp_conn_id",
            "package_name": "airflow-provider-mtp",
            "hook_name": "Microsoft Defender XDR",
        }
    ]
