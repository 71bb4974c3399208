"""Hunting queries side by side: the handle that stops one, the engine's counters, its worker threads.

A query is stopped with DuckDB's ``interrupt()`` on its own cursor, never left to run to the end:
when its timeout passes, when its client goes away, when the emulator shuts down. DuckDB forgets an
interrupt that lands between two statements of the same query (it clears the flag when the next
statement starts), so once stopped a query is interrupted again every 100 ms until it ends.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

import duckdb

from airflow_provider_mtp.emulator.hunting_errors import TIMEOUT_MESSAGE, HuntingError

__all__ = ["DaemonThreadPool", "HuntingCounters", "QueryControl", "StopReason", "stopped_error"]

T = TypeVar("T")

#: Why a query was interrupted: its timeout passed, its client disconnected, the emulator stopped.
StopReason = Literal["timeout", "disconnect", "shutdown"]
STOP_REASONS: tuple[StopReason, ...] = ("timeout", "disconnect", "shutdown")

#: How often a stopped query is interrupted again until it ends.
_REINTERRUPT_S = 0.1

DISCONNECT_MESSAGE = "The query was cancelled: the client closed the connection."
SHUTDOWN_MESSAGE = "The emulator is shutting down; the query was stopped."


def stopped_error(reason: StopReason) -> HuntingError:
    """The error a stopped query ends with (only the timeout's is the service's own)."""
    if reason == "timeout":
        return HuntingError(TIMEOUT_MESSAGE, kind="timeout")
    if reason == "disconnect":
        # nginx's 499: nobody reads it, the client is gone; the request counters show it.
        return HuntingError(DISCONNECT_MESSAGE, kind="cancelled", status=499, code="ClientClosedRequest")
    return HuntingError(SHUTDOWN_MESSAGE, kind="cancelled", status=503, code="ServiceUnavailable")


class QueryControl:
    """One query's handle: stop it from any thread, and read what it cost once it ended.

    ``cpu_seconds`` is the CPU time of the thread that ran the query (DuckDB runs each query on
    its caller's thread, as the engine sets ``threads=1``), ``elapsed_seconds`` its wall time.
    """

    def __init__(self) -> None:
        self.reason: StopReason | None = None
        self.cpu_seconds = 0.0
        self.elapsed_seconds = 0.0
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._ended = threading.Event()
        self._cursor: duckdb.DuckDBPyConnection | None = None
        self._queued: Future[Any] | None = None

    def stop(self, reason: StopReason) -> None:
        """Interrupt the query if it runs, drop it if it waits; the first reason stays."""
        with self._lock:
            if self.reason is None:
                self.reason = reason
            queued = self._queued
        self._wake.set()
        if queued is not None:
            # A call still queued for a thread never starts (a running one is not affected).
            queued.cancel()

    def queue(self, future: Future[Any]) -> None:
        """For the engine: the query waits in a queue as ``future``; a stop cancels it there."""
        with self._lock:
            self._queued = future
            stopped = self.reason is not None
        if stopped:
            future.cancel()

    def dequeue(self) -> None:
        """For the engine: the query left the queue and runs."""
        with self._lock:
            self._queued = None

    def raise_if_stopped(self) -> None:
        """:raises HuntingError: the stopped query's error, if :meth:`stop` was called."""
        if self.reason is not None:
            raise stopped_error(self.reason)

    @contextlib.contextmanager
    def watching(self, cursor: duckdb.DuckDBPyConnection, timeout: float) -> Iterator[None]:
        """Within the block, ``cursor`` is interrupted on :meth:`stop` or once ``timeout`` seconds pass."""
        with self._lock:
            self._cursor = cursor
        watcher = threading.Thread(
            target=self._watch, args=(cursor, timeout), name="hunting-watchdog", daemon=True
        )
        watcher.start()
        try:
            yield
        finally:
            # Under the lock, so no interrupt lands on the cursor's next query.
            with self._lock:
                self._cursor = None
            self._ended.set()
            self._wake.set()

    def _watch(self, cursor: duckdb.DuckDBPyConnection, timeout: float) -> None:
        self._wake.wait(timeout)
        with self._lock:
            if self._cursor is not cursor:
                return  # the query ended first
            if self.reason is None:
                self.reason = "timeout"
        while True:
            with self._lock:
                if self._cursor is not cursor:
                    return
                cursor.interrupt()
            if self._ended.wait(_REINTERRUPT_S):
                return


@dataclass
class HuntingCounters:
    """What ``/_emulator/stats`` shows under ``hunting``; thread-safe.

    ``running`` (queries holding a cursor) and ``waiting`` (for one) are gauges; the others count
    ended queries: ``answered``, ``refused`` (an error of the query: syntax, row limit...) and
    ``interrupted`` (stopped by timeout, disconnect or shutdown, also counted per reason).
    """

    max_concurrent: int
    running: int = 0
    waiting: int = 0
    answered: int = 0
    refused: int = 0
    interrupted_by: dict[str, int] = field(default_factory=lambda: dict.fromkeys(STOP_REASONS, 0))
    cpu_seconds: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, name: str, amount: int = 1) -> None:
        """Change the gauge or counter ``name`` (``running``, ``waiting``, ``answered``, ``refused``)."""
        with self._lock:
            setattr(self, name, getattr(self, name) + amount)

    def ended(self, *, reason: StopReason | None, refused: bool, cpu_seconds: float) -> None:
        """Count one ended query."""
        with self._lock:
            self.cpu_seconds += cpu_seconds
            if reason is not None:
                self.interrupted_by[reason] += 1
            elif refused:
                self.refused += 1
            else:
                self.answered += 1

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "max_concurrent": self.max_concurrent,
                "running": self.running,
                "waiting": self.waiting,
                "answered": self.answered,
                "refused": self.refused,
                "interrupted": sum(self.interrupted_by.values()),
                "interrupted_by": dict(self.interrupted_by),
                "cpu_seconds": round(self.cpu_seconds, 3),
            }

    def reset(self) -> None:
        """Zero the counters (not the gauges: those queries still run)."""
        with self._lock:
            self.answered = self.refused = 0
            self.interrupted_by = dict.fromkeys(STOP_REASONS, 0)
            self.cpu_seconds = 0.0


class DaemonThreadPool:
    """Up to ``max_workers`` daemon threads running submitted calls in order, started as calls come.

    Not :class:`concurrent.futures.ThreadPoolExecutor`: it joins its threads at interpreter exit,
    so one call stuck in DuckDB would keep a stopped emulator alive.

    :param max_workers: threads at most.
    :param name: the threads' name prefix.
    """

    def __init__(self, max_workers: int, name: str) -> None:
        if max_workers < 1:
            raise ValueError("max_workers must be at least 1")
        self._max_workers = max_workers
        self._name = name
        self._work: queue.SimpleQueue[tuple[Future[Any], Callable[[], Any]] | None] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._closed = False

    def submit(self, call: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future[T]:
        """Run ``call(*args, **kwargs)`` on a pool thread.

        :raises RuntimeError: after :meth:`shutdown`.
        """
        future: Future[T] = Future()
        with self._lock:
            if self._closed:
                raise RuntimeError("the pool is shut down")
            self._work.put((future, lambda: call(*args, **kwargs)))
            # One more thread per call until there are max_workers: they then share the queue.
            if len(self._threads) < self._max_workers:
                thread = threading.Thread(
                    target=self._worker, name=f"{self._name}-{len(self._threads)}", daemon=True
                )
                self._threads.append(thread)
                thread.start()
        return future

    def _worker(self) -> None:
        while True:
            item = self._work.get()
            if item is None:
                return
            future, call = item
            if future.set_running_or_notify_cancel():
                try:
                    future.set_result(call())
                except BaseException as exc:  # handed to the caller, as an executor does
                    future.set_exception(exc)

    def shutdown(self) -> None:
        """Take no more calls; the threads end once the calls already queued ran.

        Queued calls still run (not cancelled): their callers wait on them, and a closed engine
        answers them at once with the shutdown error.
        """
        with self._lock:
            self._closed = True
            threads = len(self._threads)
        for _ in range(threads):
            self._work.put(None)
