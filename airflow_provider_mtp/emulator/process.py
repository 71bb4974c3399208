"""Run the emulator in a subprocess from Python: ``with DefenderEmulator(seed=7) as emu: ...``."""

from __future__ import annotations

import json
import os
import selectors
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

import requests

#: Ready within 10 s at the default size; generous for loaded CI machines and big tenants.
DEFAULT_START_TIMEOUT_S = 120.0


class EmulatorStartError(RuntimeError):
    """The emulator process exited or stayed silent instead of printing its ready line."""


class DefenderEmulator:
    """The emulator as a context manager; its attributes mirror the ready line.

    :param seed: seed of the synthetic tenant.
    :param now: frozen data time, ISO 8601 (default: this hour).
    :param incidents: incidents to generate.
    :param days: days of event history.
    :param events_per_day: rows per day in each large event table.
    :param quotas: apply the per-tenant call budgets.
    :param token_lifetime: ``expires_in`` of issued tokens, seconds.
    :param row_limit_behaviour: ``truncate`` or ``error`` past 100,000 rows.
    :param query_timeout: hunting timeout, seconds.
    :param max_result_bytes: size cap of one hunting result.
    :param max_concurrent_queries: hunting queries running at once.
    :param hunting_cpu_seconds: per-tenant hunting CPU budget, seconds per 15-minute cycle.
    :param hunting_calls_per_minute: per-tenant hunting calls per sliding minute (45).
    :param host: address to bind.
    :param hostname: advertised name.
    :param port: port to bind; 0 picks a free one.
    :param extra_args: more command-line arguments.
    :param env: extra environment for the process.
    :param start_timeout: seconds to wait for the ready line.
    """

    def __init__(
        self,
        *,
        seed: int = 7,
        now: str | None = None,
        incidents: int | None = None,
        days: int | None = None,
        events_per_day: int | None = None,
        quotas: bool = True,
        token_lifetime: int | None = None,
        row_limit_behaviour: str | None = None,
        query_timeout: float | None = None,
        max_result_bytes: int | None = None,
        max_concurrent_queries: int | None = None,
        hunting_cpu_seconds: float | None = None,
        hunting_calls_per_minute: int | None = None,
        host: str = "127.0.0.1",
        hostname: str | None = None,
        port: int = 0,
        extra_args: list[str] | None = None,
        env: Mapping[str, str] | None = None,
        start_timeout: float = DEFAULT_START_TIMEOUT_S,
    ) -> None:
        options: dict[str, Any] = {
            "--seed": seed,
            "--now": now,
            "--incidents": incidents,
            "--days": days,
            "--events-per-day": events_per_day,
            "--token-lifetime": token_lifetime,
            "--row-limit-behaviour": row_limit_behaviour,
            "--query-timeout": query_timeout,
            "--max-result-bytes": max_result_bytes,
            "--max-concurrent-queries": max_concurrent_queries,
            "--hunting-cpu-seconds": hunting_cpu_seconds,
            "--hunting-calls-per-minute": hunting_calls_per_minute,
            "--host": host,
            "--hostname": hostname,
            "--port": port,
        }
        self.args = [
            item for key, value in options.items() if value is not None for item in (key, str(value))
        ]
        if not quotas:
            self.args.append("--no-quotas")
        self.args += extra_args or []
        self.env = dict(env or {})
        self.start_timeout = start_timeout
        self.info: dict[str, Any] = {}
        self.log_path: Path | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._session: requests.Session | None = None

    # The ready line's keys, as attributes.
    @property
    def url(self) -> str:
        return str(self.info["url"])

    @property
    def ca_bundle(self) -> str:
        return str(self.info["ca_bundle"])

    @property
    def tenant_id(self) -> str:
        return str(self.info["tenant_id"])

    @property
    def client_id(self) -> str:
        return str(self.info["client_id"])

    @property
    def client_secret(self) -> str:
        return str(self.info["client_secret"])

    @property
    def airflow_conn(self) -> str:
        """The value for ``AIRFLOW_CONN_MTP_DEFAULT`` (a JSON string, Graph back end)."""
        return str(self.info["airflow_conn"])

    @property
    def apps(self) -> dict[str, dict[str, Any]]:
        return dict(self.info["apps"])

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    def start(self) -> DefenderEmulator:
        """Start the process and wait for its ready line."""
        log_file = tempfile.NamedTemporaryFile(prefix="mtp-emulator-", suffix=".log", delete=False)  # noqa: SIM115
        self.log_path = Path(log_file.name)
        self._process = subprocess.Popen(
            [sys.executable, "-m", "airflow_provider_mtp.emulator", *self.args],
            stdout=subprocess.PIPE,
            stderr=log_file,
            env={**os.environ, **self.env},
        )
        log_file.close()
        try:
            self.info = json.loads(self._read_ready_line())
        except BaseException:
            self.stop()
            raise
        return self

    def _read_ready_line(self) -> str:
        assert self._process is not None
        assert self._process.stdout is not None
        deadline = time.monotonic() + self.start_timeout
        selector = selectors.DefaultSelector()
        selector.register(self._process.stdout, selectors.EVENT_READ)
        buffer = b""
        while b"\n" not in buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                raise EmulatorStartError(
                    f"no ready line within {self.start_timeout:.0f} s; {self._log_tail()}"
                )
            if selector.select(timeout=min(left, 0.5)):
                chunk = os.read(self._process.stdout.fileno(), 65536)
                if not chunk:
                    code = self._process.wait(timeout=5)
                    raise EmulatorStartError(f"the emulator exited with code {code}; {self._log_tail()}")
                buffer += chunk
        return buffer.split(b"\n", 1)[0].decode()

    def _log_tail(self) -> str:
        if self.log_path is None or not self.log_path.exists():
            return "no log"
        lines = self.log_path.read_text(errors="replace").splitlines()[-15:]
        return "last log lines:\n" + "\n".join(lines)

    def stop(self) -> None:
        """Stop the process (SIGTERM, then SIGKILL after 10 s)."""
        if self._session is not None:
            self._session.close()
            self._session = None
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)

    def __enter__(self) -> DefenderEmulator:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # Admin routes (not Microsoft's API).
    @property
    def session(self) -> requests.Session:
        """A session that trusts the emulator's CA, for the admin routes and quick checks."""
        if self._session is None:
            self._session = requests.Session()
            # Not from the environment: REQUESTS_CA_BUNDLE would replace the emulator's CA.
            self._session.trust_env = False
            self._session.verify = self.ca_bundle
        return self._session

    def _admin(self, method: str, path: str, body: Any = None) -> Any:
        # verify= per request: requests lets REQUESTS_CA_BUNDLE override a session's own verify.
        response = self.session.request(
            method, f"{self.url}/_emulator/{path}", json=body, timeout=60, verify=self.ca_bundle
        )
        response.raise_for_status()
        return response.json()

    def stats(self) -> dict[str, Any]:
        """``{"tokens_issued": {client_id: n}, "requests": {"METHOD /route": {"status": n}}, "hunting": {...}, "connections": {...}, "quotas": {...}}``.

        ``hunting``: queries ``answered``, ``refused``, ``interrupted`` (and ``interrupted_by``
        timeout, disconnect, shutdown), ``running``, ``waiting``, and ``cpu`` (the budget and each
        tenant's use in this cycle). ``connections``: ``accepted`` and ``tcp_nodelay``. ``quotas``:
        ``enabled`` and ``hunting_per_minute``.
        """
        result: dict[str, Any] = self._admin("GET", "stats")
        return result

    def reset(self) -> None:
        """Restore the seeded state and zero the counters."""
        self._admin("POST", "reset")

    def set_hunting_budget(self, calls_per_minute: int) -> dict[str, Any]:
        """Change the tenant's hunting call budget while running (:meth:`reset` restores it); the quotas now."""
        quotas: dict[str, Any] = self._admin("POST", "quotas", {"hunting_per_minute": calls_per_minute})
        return quotas

    def load_rows(self, table: str, rows: list[dict[str, Any]]) -> int:
        """Append rows to a hunting table, e.g. to test your own KQL against known data."""
        return int(self._admin("POST", f"tables/{table}", rows)["rows_added"])

    def inject_fault(self, **spec: Any) -> list[dict[str, Any]]:
        """Make the next matching calls fail; the faults still pending afterwards.

        Keys: ``path`` (glob, required), ``method``, ``query`` (glob), ``count`` (default 1),
        ``after`` (matching calls let through first), ``kind`` (``status``, ``drop``,
        ``malformed``, ``mutate``), ``status``, ``retry_after``, ``delay_s``, ``code``, ``message``,
        and for ``mutate`` ``n``, ``probability``, ``seed``. E.g.
        ``emu.inject_fault(path="/v1.0/security/incidents", status=503, count=3)``, or analysts
        updating two matching incidents before every listing request:
        ``emu.inject_fault(path="/v1.0/security/incidents", kind="mutate", n=2, count=10**6)``.
        """
        faults: list[dict[str, Any]] = self._admin("POST", "faults", spec)["faults"]
        return faults

    def inject_faults(self, *specs: dict[str, Any]) -> list[dict[str, Any]]:
        """Register several faults at once (see :meth:`inject_fault`), applied in order; the pending ones.

        Faults with the same path form a chain: each lets its ``after`` requests through, fails its
        ``count``, and hands over to the next.
        """
        faults: list[dict[str, Any]] = self._admin("POST", "faults", list(specs))["faults"]
        return faults

    def pending_faults(self) -> list[dict[str, Any]]:
        """Faults still registered, with their remaining ``count`` and ``after``."""
        faults: list[dict[str, Any]] = self._admin("GET", "faults")["faults"]
        return faults

    def clear_faults(self) -> int:
        """Drop every pending fault; how many there were."""
        return int(self._admin("DELETE", "faults")["cleared"])

    def analyst_updates(self, *, clear: bool = False) -> list[dict[str, Any]]:
        """The incident updates ``mutate`` faults made, in order: ``{"id", "old", "new", "path", "filter", "at"}``.

        :param clear: also forget them, so the next call returns only later ones.
        """
        reply = self._admin("DELETE" if clear else "GET", "analyst-updates")
        updates: list[dict[str, Any]] = reply["updates"]
        return updates

    def put_incidents(self, *incidents: dict[str, Any]) -> list[dict[str, Any]]:
        """Create or update incidents (Graph shape), as a live tenant would; returns them."""
        result: list[dict[str, Any]] = self._admin("POST", "incidents", list(incidents))["value"]
        return result

    def put_alerts(self, *alerts: dict[str, Any]) -> list[dict[str, Any]]:
        """Create or update alerts (``alerts_v2`` shape; a new one names its ``incidentId`` or gets a
        new incident), stamped as the service would; returns them."""
        result: list[dict[str, Any]] = self._admin("POST", "alerts", list(alerts))["value"]
        return result

    def advance_clock(self, seconds: float) -> str:
        """Move the data clock forward; returns the new data time."""
        return str(self._admin("POST", "clock", {"advance_s": seconds})["now"])

    def set_clock(self, now: str) -> str:
        """Set the data clock to an ISO 8601 time; returns it."""
        return str(self._admin("POST", "clock", {"now": now})["now"])
