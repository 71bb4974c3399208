"""msal's clock under the test's control, so a token can age past the refresh margin at once.

msal decides whether a cached access token is still good with ``time.time()``, read in three
modules: ``msal.token_cache`` stamps ``expires_on`` when a token is stored, and
``msal.application`` (``_acquire_token_silent_from_cache_and_possibly_refresh_it``) and
``msal.managed_identity`` (``acquire_token_for_client``) compare it with now, treating a token with
less than 300 s left as expired. :class:`MsalClock` stands in for the ``time`` module in those
three, adding an offset the test moves; everything else (the emulator included) keeps the wall
clock.

The emulator's managed identity endpoint sends an *absolute* expiry stamped from its own wall
clock, which a moved client clock would misread. :class:`ShiftedIdentityEndpoint` sits in front of
it on loopback, as App Service's local endpoint does, and moves that expiry with the same offset.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

import msal.application
import msal.managed_identity
import msal.token_cache
import pytest
import requests

from airflow_provider_mtp.emulator import DefenderEmulator

#: The modules whose ``time.time()`` msal's token expiry checks read.
MSAL_CLOCK_MODULES = (msal.application, msal.token_cache, msal.managed_identity)


class MsalClock:
    """The ``time`` module as msal sees it: the wall clock plus :attr:`offset` seconds.

    :param monkeypatch: installs the clock for the test and restores msal's after it.
    """

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.offset = 0
        for module in MSAL_CLOCK_MODULES:
            monkeypatch.setattr(module, "time", self)

    def time(self) -> float:
        return time.time() + self.offset

    def advance(self, seconds: int) -> None:
        """Move msal's clock forward; whole seconds, as token expiries are."""
        self.offset += seconds

    def __getattr__(self, name: str) -> Any:
        # sleep, monotonic...: the real ones.
        return getattr(time, name)


class ShiftedIdentityEndpoint:
    """A loopback ``IDENTITY_ENDPOINT`` that forwards to the emulator's and moves ``expires_on``.

    :param emulator: the emulator whose ``/msi/token`` issues the tokens (and counts them).
    :param clock: the clock whose offset is added to each expiry.
    """

    def __init__(self, *, emulator: DefenderEmulator, clock: MsalClock) -> None:
        self.emulator = emulator
        self.clock = clock
        self._server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self._server is not None, "use it as a context manager"
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/msi/token"

    def __enter__(self) -> ShiftedIdentityEndpoint:
        upstream, clock = self.emulator, self.clock

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                reply = requests.get(
                    f"{upstream.url}{self.path}",
                    headers={"X-IDENTITY-HEADER": self.headers.get("X-IDENTITY-HEADER", "")},
                    verify=upstream.ca_bundle,
                    timeout=30,
                )
                body = reply.content
                if reply.status_code == 200:
                    payload = reply.json()
                    payload["expires_on"] = str(int(payload["expires_on"]) + clock.offset)
                    body = json.dumps(payload).encode()
                self.send_response(reply.status_code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                return None

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
