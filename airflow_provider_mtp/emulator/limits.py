"""Per-tenant call budgets, as the services document them (defender-api.md section 8).

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

__all__ = ["BUDGETS", "Budget", "QuotaExceeded", "Quotas"]


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
        hours, rest = divmod(self.period_s, 3600)
        minutes, seconds = divmod(rest, 60)
        return f"{hours:02d}:{minutes:02d}:{seconds:02d}"


#: Named budgets. Hunting is one budget per tenant shared by both back ends.
BUDGETS: dict[str, tuple[Budget, ...]] = {
    "hunting": (Budget(45, 60),),
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


class Quotas:
    """Sliding-window counters per (budget name, tenant).

    :param enabled: ``False`` lets every call through (``--no-quotas``).
    """

    def __init__(self, *, enabled: bool = True) -> None:
        self.enabled = enabled
        self._calls: dict[tuple[str, str, int], deque[float]] = {}
        self._lock = threading.Lock()

    def take(self, name: str, tenant: str) -> None:
        """Use one call of budget ``name`` or raise :class:`QuotaExceeded`."""
        if not self.enabled:
            return
        now = time.monotonic()
        with self._lock:
            windows = []
            for index, budget in enumerate(BUDGETS[name]):
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
        with self._lock:
            self._calls.clear()
