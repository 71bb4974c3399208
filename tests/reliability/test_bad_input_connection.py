"""Bad connection input gets a clear error before any call, and no secret in it (issue 8).

Each case defines a broken ``mtp`` connection, asks both hooks (``MTPHook`` on requests and
``MTPAsyncHook`` on aiohttp, as a trigger would) to list incidents, and checks: the error is an
:class:`MTPConfigError` (or, for a proxy that cannot be reached, the token error) naming the
field and the fix; no secret of the connection appears in the message, in any log record at
DEBUG, or on stdout/stderr; and the emulator saw no request at all (token or API).
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_mtp.emulator import DefenderEmulator
from airflow_provider_mtp.errors import MTPAuthError, MTPConfigError, MTPError
from airflow_provider_mtp.hooks.mtp import MTPHook
from airflow_provider_mtp.hooks.mtp_async import MTPAsyncHook
from tests.conftest import TEST_NOW

CONN_ID = "mtp_bad_input"
#: Distinctive values put in secret-bearing places of the broken connections.
URL_PASSWORD = "Url-Pa55word-4xq"
PROXY_PASSWORD = "Proxy-Pa55word-9zk"
EXTRA_SECRET = "Extra-Secret-7hw"


@pytest.fixture(scope="module")
def small_emulator() -> Iterator[DefenderEmulator]:
    with DefenderEmulator(seed=31, now=TEST_NOW, incidents=3, days=1, events_per_day=5) as emulator:
        yield emulator


@pytest.fixture
def emulator(small_emulator: DefenderEmulator) -> DefenderEmulator:
    small_emulator.reset()
    return small_emulator


def define(
    monkeypatch: pytest.MonkeyPatch, emulator: DefenderEmulator, *, extra: Any = None, **fields: Any
) -> None:
    """``CONN_ID`` as the emulator's working connection with ``fields`` changed in its extras,
    or with its whole ``extra`` replaced by ``extra`` (text stored as it is)."""
    conn = json.loads(emulator.airflow_conn)
    conn["extra"].update(fields)
    if extra is not None:
        conn["extra"] = extra
    monkeypatch.setenv(f"AIRFLOW_CONN_{CONN_ID.upper()}", json.dumps(conn))


def list_with_both_hooks(emulator: DefenderEmulator) -> list[MTPError]:
    """The error each hook raises on its first listing; fails if either hook sent any request."""

    async def async_listing() -> None:
        async with MTPAsyncHook(mtp_conn_id=CONN_ID) as hook:
            async for _ in hook.list_incidents(page_size=1):
                break

    errors: list[MTPError] = []
    hook = MTPHook(mtp_conn_id=CONN_ID)
    try:
        with pytest.raises(MTPError) as caught:
            next(iter(hook.list_incidents(page_size=1)))
        errors.append(caught.value)
    finally:
        hook.close()
    with pytest.raises(MTPError) as caught:
        asyncio.run(async_listing())
    errors.append(caught.value)
    stats = emulator.stats()
    assert stats["requests"] == {}, f"a request was sent: {stats['requests']}"
    assert stats["tokens_issued"] == {}, stats
    return errors


def assert_clear(
    errors: list[MTPError],
    expected: list[str],
    *,
    secrets: tuple[str, ...],
    kind: type[MTPError] = MTPConfigError,
) -> str:
    """Both hooks raised ``kind`` with the same message holding every ``expected`` part and no secret."""
    sync_error, async_error = errors
    assert type(sync_error) is kind, repr(sync_error)
    assert type(async_error) is kind, repr(async_error)
    message = str(sync_error)
    assert str(async_error) == message, (message, str(async_error))
    assert "Fix" in message, message
    for part in expected:
        assert part in message, f"{part!r} not in {message!r}"
    for secret in secrets:
        assert secret not in message, message
    return message


def assert_nowhere(
    secrets: tuple[str, ...], caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    """No secret in any log record (DEBUG and up) nor on stdout/stderr."""
    out, err = capfd.readouterr()
    records = "\n".join(
        f"{record.getMessage()} {record.exc_text or ''} {record.args!r}" for record in caplog.records
    )
    for secret in secrets:
        for where, text in (("a log record", records), ("stdout", out), ("stderr", err)):
            assert secret not in text, f"{secret!r} in {where}"


@pytest.fixture
def debug_logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG)
    return caplog


# timeout=1e12 used to end in OverflowError deep in the socket layer.
@pytest.mark.parametrize("value", [1e12, "1e12"], ids=["number", "text"])
def test_timeout_1e12_is_refused_naming_timeout_and_its_range(
    emulator: DefenderEmulator, monkeypatch: pytest.MonkeyPatch, value: Any
) -> None:
    define(monkeypatch, emulator, timeout=value)
    assert_clear(
        list_with_both_hooks(emulator),
        [f"Connection '{CONN_ID}': timeout is ", "0 < timeout <= 3600", "give the read timeout in seconds"],
        secrets=(emulator.client_secret,),
    )


# A ca_bundle that cannot be used used to be a raw OSError (requests) before any message named it.
@pytest.mark.parametrize("case", ["missing", "not_pem", "parent_is_a_file"])
def test_ca_bundle_that_cannot_be_loaded_names_the_path_and_the_fix(
    emulator: DefenderEmulator, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, case: str
) -> None:
    not_pem = tmp_path / "ca.txt"
    not_pem.write_text("this is a note, not a certificate\n")
    path, problem = {
        "missing": (tmp_path / "missing.pem", "does not exist on this host"),
        "not_pem": (not_pem, "holds no PEM certificate"),
        "parent_is_a_file": (not_pem / "ca.pem", "cannot be read (Not a directory)"),
    }[case]
    define(monkeypatch, emulator, ca_bundle=str(path))
    assert_clear(
        list_with_both_hooks(emulator),
        [f"ca_bundle '{path}' {problem}", "Fix: point ca_bundle at a PEM file", "remove ca_bundle"],
        secrets=(emulator.client_secret,),
    )


# Extra that is not JSON used to read as "tenant_id is empty".
def test_extra_that_is_not_json_says_where_it_breaks_without_quoting_it(
    emulator: DefenderEmulator,
    monkeypatch: pytest.MonkeyPatch,
    debug_logs: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    # A trailing comma, the commonest hand-editing slip; a secret sits in the text.
    text = json.dumps({"tenant_id": emulator.tenant_id, "user_password": EXTRA_SECRET})[:-1] + ",}"
    define(monkeypatch, emulator, extra=text)
    message = assert_clear(
        list_with_both_hooks(emulator),
        [
            f"Connection '{CONN_ID}': extra is not a JSON object",
            f"line 1, column {len(text)}",
            "Fix: edit the connection's Extra so it holds one JSON object",
        ],
        secrets=(EXTRA_SECRET, emulator.client_secret),
    )
    assert "tenant_id is empty" not in message
    # Airflow logs its own "Failed to deserialize extra" while fetching the connection (get_uri);
    # that record, like everything else, must not hold the text.
    assert_nowhere((EXTRA_SECRET, emulator.client_secret), debug_logs, capfd)
    # The connection form's Test button shows the same message.
    assert MTPHook(mtp_conn_id=CONN_ID).test_connection() == (False, message)


def test_extra_that_is_a_json_list_is_not_taken_for_an_empty_one(
    emulator: DefenderEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    define(monkeypatch, emulator, extra=json.dumps([{"tenant_id": emulator.tenant_id}]))
    assert_clear(
        list_with_both_hooks(emulator),
        ["extra is not a JSON object but a JSON list", "Fix: edit the connection's Extra"],
        secrets=(emulator.client_secret,),
    )


# api_url / login_url with user:password@ used to be refused with the password quoted.
@pytest.mark.parametrize("name", ["api_url", "login_url"])
def test_url_with_user_and_password_is_refused_without_quoting_them(
    emulator: DefenderEmulator,
    monkeypatch: pytest.MonkeyPatch,
    debug_logs: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
    name: str,
) -> None:
    origin = emulator.url.removeprefix("https://")
    define(monkeypatch, emulator, **{name: f"https://gw-admin:{URL_PASSWORD}@{origin}"})
    assert_clear(
        list_with_both_hooks(emulator),
        [
            f"{name} 'https://***@{origin}' has a user part",
            f"Fix: remove it and give only the origin, e.g. https://{origin}",
        ],
        secrets=(URL_PASSWORD, "gw-admin", emulator.client_secret),
    )
    assert_nowhere((URL_PASSWORD, emulator.client_secret), debug_logs, capfd)


def test_proxy_with_a_password_never_shows_it_when_the_proxy_fails(
    emulator: DefenderEmulator,
    monkeypatch: pytest.MonkeyPatch,
    debug_logs: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    # Proxies take a user and password legitimately; this one listens nowhere.
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    define(monkeypatch, emulator, proxy=f"http://proxy-user:{PROXY_PASSWORD}@127.0.0.1:{port}")
    errors = list_with_both_hooks(emulator)
    for error in errors:
        assert type(error) is MTPAuthError, repr(error)
        assert "Fix proxy: the proxy refused or could not be reached" in str(error), str(error)
        assert PROXY_PASSWORD not in str(error)
        assert "proxy-user:" not in str(error)
    assert_nowhere((PROXY_PASSWORD, emulator.client_secret), debug_logs, capfd)
