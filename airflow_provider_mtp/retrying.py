"""One retry set-up for every HTTP client of the provider: budget, waits, log line, tenacity loop.

The Defender API transports (requests and aiohttp) and the Entra ID client under msal decide
*whether* a failed attempt may be retried by raising :class:`Retryable`; everything after that is
decided here, once and without I/O: how many attempts in all, how long to wait (the wait the
service asked for, with a little jitter, never past ``max_wait``; otherwise exponential backoff
with jitter), and the one INFO line each retry logs. :func:`retrying` and :func:`aretrying` build
the same tenacity loop for sync and async callers.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import tenacity

if TYPE_CHECKING:
    from airflow_provider_mtp.error_replies import ServiceError

__all__ = ["RetryBudget", "Retryable", "aretrying", "backoff_wait", "retry_wait", "retrying"]

log = logging.getLogger(__name__)


class Retryable(Exception):
    """One failed attempt that may be retried.

    :param reason: what failed, for the log line (no query strings, no secrets).
    :param kind: ``throttled``, ``service`` or ``connection``: which error to raise when retries run out.
    :param wait: the wait the service asked for, seconds; ``None`` means backoff.
    :param detail: the error reply, if there was one.
    """

    def __init__(
        self, reason: str, *, kind: str, wait: float | None = None, detail: ServiceError | None = None
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.kind = kind
        self.wait = wait
        self.detail = detail


def backoff_wait(attempt: int, *, base: float, cap: float, rng: random.Random | None = None) -> float:
    """Exponential backoff with "equal jitter": half the step fixed, half random.

    The fixed half keeps a floor under the wait (full jitter can retry at once); the random half
    spreads out many workers that failed together.

    :param attempt: the attempt that just failed, from 1.
    :param base: the first step, seconds.
    :param cap: the largest step, seconds.
    :param rng: random source (tests pass a seeded one).
    """
    step = min(cap, base * 2 ** max(0, attempt - 1))
    return step / 2 + (rng or random).uniform(0, step / 2)


@dataclass(frozen=True, kw_only=True)
class RetryBudget:
    """How many attempts a call gets and how long it waits between them.

    :param max_attempts: attempts in all, the first included.
    :param max_wait: the longest wait slept between attempts; a caller raises at once (rather
        than retry) when the service asks for longer (see :meth:`too_long`).
    :param backoff_base: the first backoff step, seconds (doubles per attempt).
    :param backoff_cap: the largest backoff step, seconds.
    :param rng: random source for jitter (tests pass a seeded one).
    """

    max_attempts: int = 6
    max_wait: float = 60.0
    backoff_base: float = 1.0
    backoff_cap: float = 30.0
    rng: random.Random | None = None

    def wait(self, attempt: int, asked: float | None) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (from 1).

        The wait the service asked for (``Retry-After`` or a quota's reset time) plus up to 10 %
        (at most 1 s) of jitter, so that workers throttled together do not come back in the same
        instant, never past ``max_wait``; :func:`backoff_wait` when it asked for none.

        :param attempt: the attempt that just failed, from 1.
        :param asked: the wait the service asked for, or ``None``.
        """
        if asked is None:
            return backoff_wait(attempt, base=self.backoff_base, cap=self.backoff_cap, rng=self.rng)
        jitter = (self.rng or random).uniform(0, min(1.0, asked * 0.1))
        return min(self.max_wait, asked + jitter)

    def too_long(self, wait: float | None) -> bool:
        """Whether the service asked for a wait longer than a caller sleeps through."""
        return wait is not None and wait > self.max_wait

    @property
    def attempts_text(self) -> str:
        """``6 attempts`` (or ``1 attempt``), for messages."""
        return f"{self.max_attempts} attempt{'s' if self.max_attempts != 1 else ''}"


def retry_wait(state: tenacity.RetryCallState, budget: RetryBudget) -> float:
    """tenacity's wait before the next attempt: :meth:`RetryBudget.wait` for the failed attempt.

    :param state: tenacity's state after the failed attempt.
    :param budget: the call's budget.
    """
    exc = state.outcome.exception() if state.outcome else None
    return budget.wait(state.attempt_number, exc.wait if isinstance(exc, Retryable) else None)


def retrying(
    budget: RetryBudget, *, where: str, sleep: Callable[[float], None], logger: logging.Logger = log
) -> tenacity.Retrying:
    """The retry loop of a sync call: ``retrying(budget, ...)(attempt, *args)``.

    It retries what raises :class:`Retryable` and re-raises the last one when the budget is spent
    (the caller turns it into its own error).

    :param budget: attempts and waits.
    :param where: ``METHOD host/path`` or ``METHOD /path`` for the log line (never a query string).
    :param sleep: how to wait (tests pass a fake).
    :param logger: where the retry line goes (the caller's module logger, so logs stay filterable by client).
    """
    return tenacity.Retrying(sleep=sleep, **_options(budget, where, logger))


def aretrying(
    budget: RetryBudget,
    *,
    where: str,
    sleep: Callable[[float], Awaitable[None]],
    logger: logging.Logger = log,
) -> tenacity.AsyncRetrying:
    """The same loop for a coroutine: ``await aretrying(budget, ...)(attempt, *args)``.

    :param budget: attempts and waits.
    :param where: see :func:`retrying`.
    :param sleep: how to wait (``asyncio.sleep``; tests pass a fake).
    :param logger: where the retry line goes.
    """
    return tenacity.AsyncRetrying(sleep=sleep, **_options(budget, where, logger))


def _options(budget: RetryBudget, where: str, logger: logging.Logger) -> dict[str, Any]:
    return {
        "stop": tenacity.stop_after_attempt(budget.max_attempts),
        "wait": lambda state: retry_wait(state, budget),
        "retry": tenacity.retry_if_exception_type(Retryable),
        "before_sleep": lambda state: _log_retry(logger, where, budget.max_attempts, state),
        "reraise": True,
    }


def _log_retry(logger: logging.Logger, where: str, attempts: int, state: tenacity.RetryCallState) -> None:
    exc = state.outcome.exception() if state.outcome else None
    reason = exc.reason if isinstance(exc, Retryable) else type(exc).__name__
    wait = state.next_action.sleep if state.next_action else 0.0
    logger.info(
        "Retrying %s after %s: attempt %d/%d in %.1f s",
        where,
        reason,
        state.attempt_number + 1,
        attempts,
        wait,
    )
