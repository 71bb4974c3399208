"""Settings of one emulator run, and the data clock every route reads."""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal

RowLimitBehaviour = Literal["truncate", "error"]

#: Defender's documented hunting limits (defender-api.md section 7).
HUNTING_ROW_LIMIT = 100_000
HUNTING_TIMEOUT_S = 180.0
HUNTING_MAX_RESULT_BYTES = 50 * 1024 * 1024
HUNTING_DATA_DAYS = 30
#: Hunting queries run at once (each on its own DuckDB cursor and thread); more wait their turn.
HUNTING_MAX_CONCURRENT = max(4, os.cpu_count() or 1)
#: The per-tenant hunting CPU budget: seconds of query CPU per 15-minute cycle. The service sizes
#: it by tenant and does not publish it; this is the older documented "10 minutes of run time per
#: hour" (defender-api.md section 7), spread over four cycles.
HUNTING_CPU_SECONDS = 150.0
HUNTING_CPU_CYCLE_S = 900
#: Hunting calls per minute per tenant, both APIs together (defender-api.md section 8).
HUNTING_CALLS_PER_MINUTE = 45


@dataclass(frozen=True, kw_only=True)
class EmulatorConfig:
    """Everything the command line can set; the defaults are the documented service's.

    :param host: address to bind.
    :param hostname: name written into the server certificate and the advertised URL
        (defaults to ``host``); use the compose service name in a container stack.
    :param port: port to bind; 0 picks a free one.
    :param seed: seed of the synthetic tenant: same seed and ``now``, same data.
    :param now: the frozen data time; defaults to the start time rounded down to the hour.
    :param incidents: number of incidents to generate.
    :param days: days of event history to generate, ending at ``now``.
    :param events_per_day: rows per day in each of the four large event tables.
    :param quotas: apply the per-tenant call budgets (429 with ``Retry-After``).
    :param token_lifetime: ``expires_in`` of issued tokens, seconds.
    :param row_limit_behaviour: what a hunt beyond the row limit gets: ``truncate`` or ``error``.
    :param query_timeout: seconds a hunt may run before it fails with the service's timeout error.
    :param max_result_bytes: size cap of one hunting result, serialised.
    :param max_concurrent_queries: hunting queries running at once; more wait their turn.
    :param hunting_cpu_seconds: per-tenant hunting CPU budget, seconds per 15-minute cycle.
    :param hunting_calls_per_minute: per-tenant hunting call budget, calls per sliding minute.
    :param externaldata_dir: folder whose ``externaldata.json`` maps URLs to files that KQL
        ``externaldata`` reads (the emulator has no network).
    """

    host: str = "127.0.0.1"
    hostname: str | None = None
    port: int = 0
    seed: int = 7
    now: datetime | None = None
    incidents: int = 500
    days: int = 30
    events_per_day: int = 1000
    quotas: bool = True
    token_lifetime: int = 3599
    row_limit_behaviour: RowLimitBehaviour = "truncate"
    query_timeout: float = HUNTING_TIMEOUT_S
    max_result_bytes: int = HUNTING_MAX_RESULT_BYTES
    max_concurrent_queries: int = HUNTING_MAX_CONCURRENT
    hunting_cpu_seconds: float = HUNTING_CPU_SECONDS
    hunting_calls_per_minute: int = HUNTING_CALLS_PER_MINUTE
    externaldata_dir: Path | None = None

    @property
    def advertised_host(self) -> str:
        return self.hostname or self.host

    def start_time(self) -> datetime:
        """The data time at start: ``now`` or the wall clock rounded down to the hour."""
        if self.now is not None:
            return self.now.astimezone(UTC)
        return datetime.now(UTC).replace(minute=0, second=0, microsecond=0)


class Clock:
    """The emulator's data time: frozen unless a test moves it.

    ``ago()`` in hunting, incident timestamps and the hunting window all read it, so answers do
    not drift between calls. Token lifetimes use the wall clock instead (msal's cache runs on it).
    """

    def __init__(self, start: datetime) -> None:
        self._start = start
        self._now = start
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def set(self, when: datetime) -> None:
        with self._lock:
            self._now = when.astimezone(UTC)

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._now += timedelta(seconds=seconds)

    def reset(self) -> None:
        with self._lock:
            self._now = self._start
