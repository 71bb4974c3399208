"""Everything one emulator run holds, shared by the routes."""

from __future__ import annotations

import threading
from collections import defaultdict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from fastapi import Request

if TYPE_CHECKING:
    import duckdb

    from airflow_provider_mtp.emulator.config import Clock, EmulatorConfig
    from airflow_provider_mtp.emulator.hunting import HuntingEngine
    from airflow_provider_mtp.emulator.identity import Directory
    from airflow_provider_mtp.emulator.incidents import IncidentStore
    from airflow_provider_mtp.emulator.limits import Quotas


@dataclass(kw_only=True)
class RequestCounter:
    """``{"<METHOD> <route template>": {"<status>": n}}`` for ``GET /_emulator/stats``."""

    _counts: dict[str, dict[str, int]] = field(default_factory=lambda: defaultdict(dict))
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, method: str, route: str, status: int) -> None:
        key = f"{method} {route}"
        with self._lock:
            per_status = self._counts[key]
            per_status[str(status)] = per_status.get(str(status), 0) + 1

    def snapshot(self) -> dict[str, dict[str, int]]:
        with self._lock:
            return {key: dict(value) for key, value in self._counts.items()}

    def reset(self) -> None:
        with self._lock:
            self._counts.clear()


@dataclass(kw_only=True)
class ConnectionCounter:
    """Accepted TCP connections, and how many had ``TCP_NODELAY`` set, read from the live socket.

    Without ``TCP_NODELAY`` every small reply waits about 40 ms (Nagle's algorithm against the
    client's delayed ACK); ``GET /_emulator/stats`` shows both numbers.
    """

    accepted: int = 0
    tcp_nodelay: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, *, nodelay: bool) -> None:
        with self._lock:
            self.accepted += 1
            self.tcp_nodelay += int(nodelay)

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return {"accepted": self.accepted, "tcp_nodelay": self.tcp_nodelay}


@dataclass(kw_only=True)
class EmulatorState:
    """The run's parts.

    :param config: the settings it started with.
    :param url: the advertised origin, ``https://host:port``.
    :param clock: the data clock.
    :param directory: apps and tokens.
    :param incidents: the incident store both back ends serve.
    :param hunting: the KQL engine.
    :param quotas: call budgets.
    :param con: the DuckDB connection holding the hunting tables.
    :param seeded_rows: rows per table after seeding, so a reset can drop rows users loaded.
    :param connections: accepted connections, counted by the server (see ``serving.py``).
    """

    config: EmulatorConfig
    url: str
    clock: Clock
    directory: Directory
    incidents: IncidentStore
    hunting: HuntingEngine
    quotas: Quotas
    con: duckdb.DuckDBPyConnection
    seeded_rows: dict[str, int]
    requests: RequestCounter = field(default_factory=RequestCounter)
    connections: ConnectionCounter = field(default_factory=ConnectionCounter)
    extras: dict[str, Any] = field(default_factory=dict)


def state_of(request: Request) -> EmulatorState:
    state: EmulatorState = request.app.state.emulator
    return state
