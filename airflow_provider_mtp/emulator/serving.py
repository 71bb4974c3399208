"""The emulator's HTTP server: its listening socket, the connections it counts, and how it stops.

* The listening socket is created with ``IPPROTO_TCP``: asyncio sets ``TCP_NODELAY`` only on
  sockets whose ``proto`` says TCP, and an accepted socket takes its listening socket's. Created
  with ``proto=0``, every small reply waited about 40 ms for the client's delayed ACK.
* Each accepted connection's ``TCP_NODELAY`` is read from the live socket and counted
  (:class:`~airflow_provider_mtp.emulator.state.ConnectionCounter`, in ``/_emulator/stats``).
* On SIGTERM or SIGINT every hunting query is interrupted *before* uvicorn waits for open
  requests: their answers (503) then go out at once and the process ends within a second or
  two, not when the slowest query would have finished. Connections with nothing open and
  nothing left to send are cut rather than closed politely (over TLS a polite close waits for
  the client).
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable
from typing import Any

import uvicorn

from airflow_provider_mtp.emulator.state import ConnectionCounter

__all__ = ["EmulatorServer", "count_connections", "listening_socket"]

#: How often, while shutting down, finished connections are looked for.
_CUT_POLL_S = 0.05


def listening_socket(host: str, port: int) -> socket.socket:
    """A TCP socket bound to ``host``:``port`` (0: a free port), not yet listening."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    return sock


def count_connections(config: uvicorn.Config, counter: ConnectionCounter) -> None:
    """Make ``config``'s HTTP protocol count each accepted connection and its ``TCP_NODELAY``.

    Loads the config (uvicorn then does not load it again) and swaps the protocol class it chose
    for a subclass that reads the option in ``connection_made``.
    """
    if not config.loaded:
        config.load()
    base: Any = config.http_protocol_class

    class CountedProtocol(base):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            sock = transport.get_extra_info("socket")
            nodelay = sock is not None and bool(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
            counter.add(nodelay=nodelay)
            super().connection_made(transport)

    config.http_protocol_class = CountedProtocol


class EmulatorServer(uvicorn.Server):
    """uvicorn's server, which runs ``on_shutdown`` as soon as it starts shutting down.

    :param config: uvicorn's settings.
    :param on_shutdown: stops the work open requests wait on (the hunting queries).
    """

    def __init__(self, config: uvicorn.Config, *, on_shutdown: Callable[[], None]) -> None:
        super().__init__(config)
        self._on_shutdown = on_shutdown

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        self._on_shutdown()
        cutting = asyncio.create_task(self._cut_finished_connections())
        try:
            await super().shutdown(sockets)
        finally:
            cutting.cancel()

    async def _cut_finished_connections(self) -> None:
        """While shutting down, cut every connection with no request open and nothing left to send.

        uvicorn closes them politely, and over TLS a close waits for the client's close_notify,
        which a client that is not reading never sends: every stop then took the whole graceful
        timeout. Such a connection carries nothing more.
        """
        while True:
            for connection in list(self.server_state.connections):
                cycle = getattr(connection, "cycle", None)
                transport = getattr(connection, "transport", None)
                if transport is None or not (cycle is None or cycle.response_complete):
                    continue
                if transport.get_write_buffer_size() == 0:
                    transport.abort()
            await asyncio.sleep(_CUT_POLL_S)
