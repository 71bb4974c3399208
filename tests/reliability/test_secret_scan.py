"""A secret scan over a real end-to-end run, and a deliberate leak that makes it fail (issue 8).

``secret_scan`` (tests/dags/secret_scan_dags.py) runs with ``dag.test()`` against the emulator
with four connections whose every secret-bearing field holds a distinctive value: a client
secret, a certificate whose key is encrypted with a password, a user's password, a read-only
app's secret (and the comment marker key where the connection has one). Its tasks defer, hunt,
update and comment, test the connection, and fail twice (a KQL syntax error and a 403).

The run happens in a fresh process with its own Airflow home and logging at DEBUG
(tests/reliability/secret_scan_run.py). Everything it leaves behind is then searched for every
one of those values, for every token Entra ID issued during the run (read off the token replies
as they arrive) and for anything shaped like a JWT: its stdout and stderr (task logs, Airflow's
and the provider's log lines at DEBUG), every XCom of the run, its rendered template fields, the
failed tasks' exceptions with their tracebacks, and every file of the Airflow home, the whole
metadata database included.

``secret_scan_leak`` writes its connection's secret and a token to XCom and stdout, around
Airflow's masking; the same scan must report both, proving the scan can fail.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import subprocess
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization

from airflow_provider_mtp.emulator import DefenderEmulator
from tests.conftest import TEST_NOW

REPO = Path(__file__).resolve().parents[2]
#: A compact JWS (header.payload.signature) as Entra ID issues access and id tokens.
JWT = re.compile(r"eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}")
#: Airflow's masking echo. ``dag.test()`` runs tasks under an in-process supervisor whose comms
#: (``InProcessSupervisorComms.send`` in airflow/sdk/execution_time/supervisor.py) log every
#: message at DEBUG, the ``MaskSecret`` that registers a secret with the masker included, value
#: and all. A worker's real supervisor logs that message "(body omitted)". Exactly these lines are
#: taken out of the output before the scan, and counted; nothing else is.
MASK_ECHO = re.compile(
    rb"^[^\n]*\] Sending request [^\n]* loc=supervisor\.py:\d+ msg=MaskSecret\(value=[^\n]*"
    rb", type='MaskSecret'\)\r?\n",
    re.MULTILINE,
)


# --------------------------------------------------------------------------------------------
# The scanner
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Finding:
    """One secret found in one place; the excerpt shows the secret replaced by its label."""

    secret: str
    where: str
    excerpt: str

    def __str__(self) -> str:
        return f"{self.secret} in {self.where}: ...{self.excerpt}..."


def scan(sources: Mapping[str, str | bytes], secret_values: Mapping[str, str], *, jwt: bool) -> list[Finding]:
    """Every place where a secret value (or, with ``jwt``, any JWT) appears.

    Only the exact values count: Airflow's masker replaces a registered secret with ``***``, and
    a masked line is what must be there. Nothing is allow-listed: a line that echoes a secret
    while saying it masks it is a finding like any other.

    :param sources: what was captured, by where it came from.
    :param secret_values: the values that must appear nowhere, by a label for messages.
    :param jwt: also report anything shaped like a JWT (a token this run did not record).
    """
    findings = []

    def excerpt(text: str, start: int, end: int, label: str) -> str:
        # The report itself must not leak: every known value and token around the hit is hidden too.
        around = [text[max(0, start - 60) : start], text[end : end + 60]]
        for index, part in enumerate(around):
            for other, value in secret_values.items():
                part = part.replace(value, f"<{other}>")
            around[index] = JWT.sub("<JWT>", part)
        return f"{around[0]}<{label}>{around[1]}".replace("\n", "\\n")

    for where, content in sources.items():
        text = content.decode("utf-8", "replace") if isinstance(content, bytes) else content
        for label, value in secret_values.items():
            start = text.find(value)
            if start >= 0:
                findings.append(Finding(label, where, excerpt(text, start, start + len(value), label)))
        if jwt:
            for match in JWT.finditer(text):
                findings.append(Finding("a JWT", where, excerpt(text, match.start(), match.end(), "JWT")))
    return findings


@dataclass(frozen=True)
class Run:
    """What one ``dag.test()`` in a fresh process left behind (tests/reliability/secret_scan_run.py)."""

    states: dict[str, str]
    exceptions: dict[str, str]
    tokens: dict[str, str]
    sources: dict[str, str | bytes]
    #: Airflow's masking echoes taken out of stdout (see :data:`MASK_ECHO`).
    mask_echoes: int


def run_in_fresh_process(dag_id: str, connections: Mapping[str, str], tmp_path: Path) -> Run:
    """Run ``dag_id`` for TEST_NOW in a new process with its own Airflow home, logging at DEBUG."""
    home = tmp_path / "airflow-home"
    report = tmp_path / "report.json"
    env = {name: value for name, value in os.environ.items() if not name.startswith("AIRFLOW")}
    env.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "tests" / "dags"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__UNIT_TEST_MODE": "True",
            "AIRFLOW__LOGGING__LOGGING_LEVEL": "DEBUG",
            **{f"AIRFLOW_CONN_{conn_id.upper()}": value for conn_id, value in connections.items()},
        }
    )
    done = subprocess.run(
        [sys.executable, "-m", "tests.reliability.secret_scan_run", dag_id, TEST_NOW, str(report)],
        cwd=REPO,
        env=env,
        capture_output=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode(errors="replace")[-4000:]
    result = json.loads(report.read_text())
    stdout, echoes = MASK_ECHO.subn(b"", done.stdout)
    sources: dict[str, str | bytes] = {"stdout": stdout, "stderr": done.stderr}
    sources.update({f"exception of {task}": text for task, text in result["exceptions"].items()})
    sources.update({f"XCom {key}": json.dumps(value) for key, value in result["xcoms"].items()})
    sources.update(
        {f"rendered fields of {task}": json.dumps(row) for task, row in result["rendered"].items()}
    )
    # Task log files, where the logging configuration writes any, and the whole metadata database.
    sources.update(
        {f"file {path.relative_to(home)}": path.read_bytes() for path in home.rglob("*") if path.is_file()}
    )
    tokens = {
        f"{field} #{number}": value
        for number, reply in enumerate(result["tokens"], 1)
        for field, value in reply.items()
    }
    return Run(
        states=result["states"],
        exceptions=result["exceptions"],
        tokens=tokens,
        sources=sources,
        mask_echoes=echoes,
    )


# --------------------------------------------------------------------------------------------
# Connections with distinctive secrets
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def scan_emulator() -> Iterator[DefenderEmulator]:
    with DefenderEmulator(seed=41, now=TEST_NOW, incidents=6, days=2, events_per_day=40) as emulator:
        yield emulator


def _connection(emulator: DefenderEmulator, login: str | None, password: str | None, **extra: Any) -> str:
    fields = {
        "tenant_id": emulator.tenant_id,
        "api_url": emulator.url,
        "login_url": emulator.url,
        "ca_bundle": emulator.ca_bundle,
        **extra,
    }
    return json.dumps({"conn_type": "mtp", "login": login, "password": password, "extra": fields})


def _marker_key() -> dict[str, str]:
    """A comment marker key for the connection (a secret the scan looks for)."""
    return {"comment_marker_key": f"Marker-Key-{secrets.token_hex(12)}"}


@pytest.fixture
def scan_connections(scan_emulator: DefenderEmulator) -> tuple[dict[str, str], dict[str, str]]:
    """The run's connections (``AIRFLOW_CONN_*`` values by id); the secret values they hold, by label."""
    emulator = scan_emulator
    emulator.reset()
    apps = emulator.apps
    # The certificate app's key, re-encrypted with a password of ours and pasted as PEM text.
    cert_pem = Path(apps["cert"]["certificate_path"]).read_bytes()
    key = serialization.load_pem_private_key(cert_pem, password=None)
    cert_password = f"Cert-Pa55-{secrets.token_hex(12)}"
    encrypted = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(cert_password.encode()),
    )
    certificate_block = cert_pem[cert_pem.index(b"-----BEGIN CERTIFICATE-----") :]
    certificate_text = (encrypted + certificate_block).decode()
    marker = _marker_key()
    connections = {
        "mtp_scan_secret": _connection(emulator, emulator.client_id, emulator.client_secret, **marker),
        "mtp_scan_cert": _connection(
            emulator,
            apps["cert"]["client_id"],
            None,
            auth_type="certificate",
            certificate=certificate_text,
            certificate_password=cert_password,
        ),
        "mtp_scan_user": _connection(
            emulator,
            apps["user"]["client_id"],
            None,
            auth_type="user_password",
            api="legacy",
            username=apps["user"]["username"],
            user_password=apps["user"]["password"],
            **marker,
        ),
        "mtp_scan_readonly": _connection(
            emulator, apps["read_only"]["client_id"], apps["read_only"]["client_secret"]
        ),
        "mtp_scan_leaky": _connection(
            emulator, apps["no_hunting"]["client_id"], apps["no_hunting"]["client_secret"]
        ),
    }
    plain_key = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    values = {
        "client secret": emulator.client_secret,
        "read-only app's client secret": apps["read_only"]["client_secret"],
        "user password": apps["user"]["password"],
        "certificate password": cert_password,
        # One full line of each key's base64 body stands for the key.
        "encrypted certificate key": encrypted.decode().splitlines()[2],
        "certificate key": plain_key.splitlines()[2],
    }
    if marker:
        values["comment marker key"] = marker["comment_marker_key"]
    return connections, values


# --------------------------------------------------------------------------------------------
# The tests
# --------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_no_secret_or_token_anywhere_after_a_real_run(
    scan_connections: tuple[dict[str, str], dict[str, str]], scan_emulator: DefenderEmulator, tmp_path: Path
) -> None:
    connections, secret_values = scan_connections
    run = run_in_fresh_process("secret_scan", connections, tmp_path)

    # The run did what it is for: every credential was used, and two tasks failed as planned.
    assert run.states == {
        "found": "success",
        "hunt": "success",
        "update": "success",
        "check": "success",
        "forbidden": "failed",
        "bad_query": "failed",
    }
    assert set(run.exceptions) == {"forbidden", "bad_query"}
    assert "MTPPermissionError" in run.exceptions["forbidden"]
    assert "MTPQueryError" in run.exceptions["bad_query"]
    # Every token Entra ID issued is known to the scan; the user flow also got a refresh token.
    issued = sum(scan_emulator.stats()["tokens_issued"].values())
    assert len([label for label in run.tokens if label.startswith("access_token")]) == issued >= 4
    assert any(label.startswith("refresh_token") for label in run.tokens)
    # The logs really are at DEBUG and hold the task logs, the provider's lines and tracebacks.
    stdout = run.sources["stdout"]
    assert isinstance(stdout, bytes)
    for evidence in (b"[debug", b"acquired a token for", b"Task failed with exception", b"MTPQueryError"):
        assert evidence in stdout, evidence
    assert any(where.startswith("XCom hunt") for where in run.sources)
    assert "rendered fields of hunt" in run.sources
    assert any(where.startswith("file airflow.db") for where in run.sources)

    # Every secret and token was registered with the masker, which Airflow's in-process comms echo.
    assert run.mask_echoes >= len(secret_values) + len(run.tokens)
    findings = scan(run.sources, {**secret_values, **run.tokens}, jwt=True)
    assert findings == [], "\n".join(map(str, findings))
    print(
        f"secret scan: {len(secret_values)} secret values and {len(run.tokens)} tokens searched in "
        f"{len(run.sources)} places ({sum(map(len, run.sources.values())):,} bytes): 0 found; "
        f"{run.mask_echoes} lines of Airflow's masking echo set aside"
    )


@pytest.mark.slow
def test_a_deliberate_leak_makes_the_scan_fail(
    scan_connections: tuple[dict[str, str], dict[str, str]], scan_emulator: DefenderEmulator, tmp_path: Path
) -> None:
    connections, _ = scan_connections
    run = run_in_fresh_process("secret_scan_leak", connections, tmp_path)
    assert run.states == {"leak": "success"}

    leaked = {"leaky app's client secret": scan_emulator.apps["no_hunting"]["client_secret"]}
    findings = scan(run.sources, {**leaked, **run.tokens}, jwt=True)
    places = {(finding.secret, finding.where) for finding in findings}
    for secret in ("leaky app's client secret", "access_token #1", "a JWT"):
        assert (secret, "XCom leak[-1].return_value") in places, places
        # print() is not a log call, so Airflow's masking never sees it.
        assert (secret, "stdout") in places, places
        # The raw database scan finds the XCom too.
        assert any(found == secret and where.startswith("file airflow.db") for found, where in places), places


def test_only_airflows_mask_echo_lines_are_set_aside() -> None:
    secret = "Scan-Me-5ecret"
    echo = (
        f"2026-11-20T12:00:00.000000Z [debug    ] Sending request                [airflow.sdk] "
        f"loc=supervisor.py:2055 msg=MaskSecret(value='{secret}', name=None, type='MaskSecret')\n"
    )
    other = (
        f"2026-11-20T12:00:00.000000Z [debug    ] Sending request                [airflow.sdk] "
        f"loc=supervisor.py:2055 msg=SetXCom(key='k', value='{secret}', type='SetXCom')\n"
    )
    kept, removed = MASK_ECHO.subn(b"", (echo + other + f"plain {secret}\n").encode())
    assert removed == 1
    findings = scan({"stdout": kept}, {"the secret": secret}, jwt=False)
    assert [(finding.secret, finding.where) for finding in findings] == [("the secret", "stdout")]
    assert secret not in str(findings[0]), "the report names the secret, never shows it"
