"""Per-tenant call budgets (defender-api.md section 8) and the hunting CPU budget (section 7).

Budgets run on the wall clock (a monotonic one), not the data clock: a test that moves the data
time must not refill a quota. A refused call does not use up budget, as a client that waits out
``Retry-After`` would otherwise never get through.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from dataclasses import dataclass

from airflow_provider_mtp.emulator.config import (
    HUNTING_CALLS_PER_MINUTE,
    HUNTING_CPU_CYCLE_S,
    HUNTING_CPU_SECONDS,
)

__all__ = ["BUDGETS", "Budget", "CpuBudget", "CpuQuotaExceeded", "QuotaExceeded", "Quotas"]


@dataclass(frozen=True)
class Budget:
    """``limit`` calls per ``period_s`` seconds.

    :param limit: calls allowed in one period.
    :param period_s: the sliding period, seconds.
    """

    limit: int
    period_s: int

    @property
    def period_text(self) -> str:
        """The period as the MTP body writes it: ``00:01:00``."""
        return _clock_text(self.period_s)


#: Named budgets. Hunting is one budget per tenant shared by both back ends. Graph's incident and
#: ``alerts_v2`` routes have none: Microsoft publishes none for them (the 150 requests a minute of
#: Graph's throttling page are for the retiring ``/security/alerts``); faults give tests their 429s.
BUDGETS: dict[str, tuple[Budget, ...]] = {
    "hunting": (Budget(HUNTING_CALLS_PER_MINUTE, 60),),
    "legacy-incidents-list": (Budget(50, 60), Budget(1500, 3600)),
    "legacy-incidents-get": (Budget(100, 60), Budget(1500, 3600)),
    "legacy-incidents-update": (Budget(50, 60), Budget(1500, 3600)),
}


class QuotaExceeded(Exception):
    """A call over budget.

    :param budget: the budget that ran out.
    :param retry_after: whole seconds until a call fits again.
    """

    def __init__(self, budget: Budget, retry_after: int) -> None:
        super().__init__(f"API calls quota exceeded! maximum allowed {budget.limit} per {budget.period_text}")
        self.budget = budget
        self.retry_after = retry_after


def _clock_text(seconds: int) -> str:
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    return f"{hours:02d}:{minutes:02d}:{seconds:02d}"


class CpuQuotaExceeded(Exception):
    """The tenant used its hunting CPU for this cycle.

    :param retry_after: whole seconds until the next cycle.
    """

    def __init__(self, retry_after: int) -> None:
        super().__init__(
            "You have exceeded processing resources allocated to this tenant. "
            f"You can run queries again in {_clock_text(retry_after)}."
        )
        self.retry_after = retry_after


class CpuBudget:
    """Hunting CPU seconds per tenant on fixed cycles (Defender's 15-minute cycle, section 7).

    Each query is charged the CPU it really used when it ends, whatever the outcome (a query
    interrupted after a minute used a minute). At 100 % every hunting call is refused until the
    next cycle; queries already running go on. Cycles count from the emulator's start.

    :param seconds: CPU seconds per tenant per cycle.
    :param cycle_s: the cycle, seconds.
    :param enabled: ``False`` never refuses (usage is still counted).
    """

    def __init__(
        self,
        seconds: float = HUNTING_CPU_SECONDS,
        *,
        cycle_s: int = HUNTING_CPU_CYCLE_S,
        enabled: bool = True,
    ) -> None:
        self.seconds = seconds
        self.cycle_s = cycle_s
        self.enabled = enabled
        self._origin = time.monotonic()
        self._cycle = 0
        self._used: dict[str, float] = {}
        self._lock = threading.Lock()

    def _roll(self, now: float) -> None:
        cycle = int((now - self._origin) // self.cycle_s)
        if cycle != self._cycle:
            self._cycle = cycle
            self._used.clear()

    def check(self, tenant: str) -> None:
        """:raises CpuQuotaExceeded: when ``tenant`` used its budget for this cycle."""
        if not self.enabled:
            return
        now = time.monotonic()
        with self._lock:
            self._roll(now)
            if self._used.get(tenant, 0.0) < self.seconds:
                return
            next_cycle = self._origin + (self._cycle + 1) * self.cycle_s
        raise CpuQuotaExceeded(max(1, math.ceil(next_cycle - now)))

    def charge(self, tenant: str, seconds: float) -> None:
        """Add a query's CPU time to ``tenant``'s use in this cycle."""
        with self._lock:
            self._roll(time.monotonic())
            self._used[tenant] = self._used.get(tenant, 0.0) + seconds

    def snapshot(self) -> dict[str, object]:
        """The budget, the cycle and each tenant's use in it, for ``/_emulator/stats``."""
        with self._lock:
            self._roll(time.monotonic())
            return {
                "budget_s": self.seconds,
                "cycle_s": self.cycle_s,
                "enabled": self.enabled,
                "used_s": {tenant: round(used, 3) for tenant, used in sorted(self._used.items())},
            }

    def reset(self) -> None:
        with self._lock:
            self._used.clear()


class Quotas:
    """Sliding-window counters per (budget name, tenant), and the hunting CPU budget (``cpu``).

    :param enabled: ``False`` lets every call through (``--no-quotas``), the CPU budget too.
    :param cpu_seconds: hunting CPU seconds per tenant per 15-minute cycle.
    :param hunting_per_minute: hunting calls per tenant per sliding minute (``--hunting-calls-per-minute``:
        a test shrinks it to meet the quota with a few hunts instead of dozens).
    """

    def __init__(
        self,
        *,
        enabled: bool = True,
        cpu_seconds: float = HUNTING_CPU_SECONDS,
        hunting_per_minute: int = HUNTING_CALLS_PER_MINUTE,
    ) -> None:
        self.enabled = enabled
        self.cpu = CpuBudget(cpu_seconds, enabled=enabled)
        self._started_hunting_per_minute = hunting_per_minute
        self.budgets = {**BUDGETS, "hunting": (Budget(hunting_per_minute, 60),)}
        self._calls: dict[tuple[str, str, int], deque[float]] = {}
        self._lock = threading.Lock()

    @property
    def hunting_per_minute(self) -> int:
        """The hunting call budget now, calls per tenant per sliding minute."""
        return self.budgets["hunting"][0].limit

    def set_hunting_per_minute(self, calls: int) -> None:
        """Change the hunting call budget while running (``POST /_emulator/quotas``); calls made stay counted."""
        with self._lock:
            self.budgets = {**self.budgets, "hunting": (Budget(calls, 60),)}

    def snapshot(self) -> dict[str, object]:
        """The call budgets, for ``/_emulator/stats`` and ``/_emulator/quotas``."""
        return {"enabled": self.enabled, "hunting_per_minute": self.hunting_per_minute}

    def take(self, name: str, tenant: str) -> None:
        """Use one call of budget ``name`` or raise :class:`QuotaExceeded`."""
        if not self.enabled:
            return
        now = time.monotonic()
        with self._lock:
            windows = []
            for index, budget in enumerate(self.budgets[name]):
                calls = self._calls.setdefault((name, tenant, index), deque())
                while calls and calls[0] <= now - budget.period_s:
                    calls.popleft()
                if len(calls) >= budget.limit:
                    wait = calls[0] + budget.period_s - now
                    raise QuotaExceeded(budget, max(1, math.ceil(wait)))
                windows.append(calls)
            for calls in windows:
                calls.append(now)

    def reset(self) -> None:
        """Refill every budget and restore the hunting budget the emulator started with."""
        with self._lock:
            self._calls.clear()
            self.budgets = {**BUDGETS, "hunting": (Budget(self._started_hunting_per_minute, 60),)}
        self.cpu.reset()
