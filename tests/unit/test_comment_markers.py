"""Comment markers: stable per task instance, distinct otherwise, keyed with a secret nobody who only
comments holds, and never revealing it."""

from __future__ import annotations

import dataclasses
import logging
import re
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_mtp import comment_markers
from airflow_provider_mtp.comment_markers import MarkerKey, comment_marker, has_marker, marker_key
from airflow_provider_mtp.errors import MTPConfigError
from airflow_provider_mtp.settings import ConnectionSettings

TENANT = "11111111-2222-3333-4444-555555555555"
CLIENT = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"
SECRET = "s3cr3t~value-that-must-never-show"
MARKER_KEY = "k" * 20 + "-marker-key-of-the-connection"
PEM = "-----BEGIN PRIVATE KEY-----\nMIIEvQ-not-a-real-key\n-----END PRIVATE KEY-----\n"
TASK = {
    "dag_id": "d",
    "task_id": "t",
    "run_id": "scheduled__2026-01-01",
    "map_index": -1,
    "incident_id": "42",
}


def settings(
    extra: dict[str, Any], *, password: str | None = SECRET, login: str | None = CLIENT
) -> ConnectionSettings:
    return ConnectionSettings.from_connection(
        conn_id="mtp_test", login=login, password=password, extra={"tenant_id": TENANT, **extra}
    )


def no_fernet() -> None:
    return None


def marker(key: MarkerKey, **changes: Any) -> str:
    return comment_marker(key, **{**TASK, **changes})


def test_the_marker_is_the_same_on_every_try_and_names_the_task_instance() -> None:
    first = marker(marker_key(settings({}), fernet_key=no_fernet))
    again = marker(marker_key(settings({}), fernet_key=no_fernet))
    assert first == again
    assert re.fullmatch(r"\[airflow:d/t/scheduled__2026-01-01#-1 [0-9a-f]{32}\]", first), first


@pytest.mark.parametrize(
    "changes",
    [
        {"run_id": "scheduled__2026-01-02"},
        {"task_id": "t2"},
        {"dag_id": "d2"},
        {"map_index": 0},
        {"incident_id": "43"},
        # Fields are kept apart: moving a '/' from one id to the next changes the marker.
        {"dag_id": "d/t", "task_id": ""},
    ],
)
def test_the_marker_differs_for_another_run_task_map_index_or_incident(changes: dict[str, Any]) -> None:
    key = marker_key(settings({}), fernet_key=no_fernet)
    assert marker(key, **changes) != marker(key)


def test_the_marker_needs_the_secret_and_never_contains_it() -> None:
    real = marker(marker_key(settings({}), fernet_key=no_fernet))
    guessed = marker(marker_key(settings({}, password="a guess"), fernet_key=no_fernet))
    assert real != guessed
    old_style = "[airflow:d/t/scheduled__2026-01-01#-1]"
    assert not has_marker({"comments": [{"comment": f"x {guessed}"}, {"comment": f"x {old_style}"}]}, real)
    assert has_marker({"comments": [{"comment": "older"}, {"comment": f"done {real}"}]}, real)
    key = marker_key(settings({}), fernet_key=no_fernet)
    assert SECRET not in real
    assert SECRET.encode() not in key.key
    assert SECRET not in repr(key)
    assert key.key.hex() not in real, "the marker holds an HMAC made with the key, not the key"


def test_key_sources_in_order(tmp_path: Path) -> None:
    def source(conn: ConnectionSettings, fernet: str | None = None) -> str:
        return marker_key(conn, fernet_key=lambda: fernet).source

    assert source(settings({"comment_marker_key": MARKER_KEY})) == "comment_marker_key"
    assert source(settings({})) == "client secret"
    assert source(settings({"auth_type": "certificate", "certificate": PEM}, password=None)) == "certificate"
    pem_file = tmp_path / "app.pem"
    pem_file.write_text(PEM)
    on_disk = settings({"auth_type": "certificate", "certificate_path": str(pem_file)}, password=None)
    assert source(on_disk) == "certificate"
    user = settings(
        {"auth_type": "user_password", "username": "u@contoso.com", "user_password": "pw"}, password=None
    )
    assert source(user) == "user password"
    identity = settings({"auth_type": "managed_identity"}, login=None, password=None)
    assert source(identity, fernet="a-fernet-key") == "fernet_key"
    assert source(identity) == "none"
    # The explicit key wins over the credential: it survives a rotated client secret.
    rotated = dataclasses.replace(settings({"comment_marker_key": MARKER_KEY}), client_secret="rotated")
    assert marker(marker_key(rotated)) == marker(marker_key(settings({"comment_marker_key": MARKER_KEY})))


def test_a_connection_without_any_secret_warns_once_that_markers_are_predictable(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(comment_markers, "_warned", set())
    identity = settings({"auth_type": "managed_identity"}, login=None, password=None)
    with caplog.at_level(logging.WARNING, logger="airflow_provider_mtp.comment_markers"):
        first = marker_key(identity, fernet_key=no_fernet)
        marker_key(identity, fernet_key=no_fernet)
    assert first.predictable
    warnings = [record.getMessage() for record in caplog.records]
    assert len(warnings) == 1
    assert "markers are predictable" in warnings[0]
    assert "comment_marker_key" in warnings[0]


def test_airflows_unexpanded_fernet_placeholder_is_not_a_key(monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow.sdk.configuration import conf

    monkeypatch.setattr(conf, "get", lambda *args, **kwargs: "{FERNET_KEY}")
    assert comment_markers._airflow_fernet_key() is None
    monkeypatch.setattr(
        conf, "get", lambda *args, **kwargs: "cGxhaW4tZmVybmV0LWtleS1mb3ItdGVzdHMtMzJieXRlcw=="
    )
    assert comment_markers._airflow_fernet_key() == "cGxhaW4tZmVybmV0LWtleS1mb3ItdGVzdHMtMzJieXRlcw=="


def test_comment_marker_key_is_validated_and_never_echoed() -> None:
    short = "short-secret"
    with pytest.raises(MTPConfigError) as caught:
        settings({"comment_marker_key": short})
    message = str(caught.value)
    assert message.startswith("Connection 'mtp_test': comment_marker_key has 12 characters, fewer than 16.")
    assert "Fix: " in message
    assert short not in message
    conn = settings({"extra__mtp__comment_marker_key": MARKER_KEY})
    assert conn.comment_marker_key == MARKER_KEY
    assert MARKER_KEY in conn.secrets(), "masked like the other secrets"
    assert MARKER_KEY not in repr(conn)
