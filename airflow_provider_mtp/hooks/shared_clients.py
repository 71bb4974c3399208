"""One API client per connection per event loop, shared by every :class:`MTPAsyncHook` of it.

A triggerer runs all its triggers in one event loop; each deferred sensor used to open its own
aiohttp session, connector, TLS context (the whole CA bundle, in production) and kept-alive
socket: about 350 KB per trigger. Here the hooks of one connection (same ``conn_id``, ``api``
override, ``max_wait`` and connection settings) share one
:class:`~airflow_provider_mtp.api.client.AsyncSecurityClient`: one session, one connector, one
TLS context. It is reference-counted: each hook that opens it holds one reference, and the last
:meth:`release` closes the session, so nothing is left unclosed.

aiohttp objects belong to the loop they were made in, so the table is per loop (a test may run
several loops one after the other; a loop that is gone takes its table with it).
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import requests

    from airflow_provider_mtp.api.client import AsyncSecurityClient

__all__ = ["SharedClient", "acquire", "open_clients", "release"]

#: What an opener returns: the client, and the requests session msal's token calls go through.
Opened = tuple["AsyncSecurityClient", "requests.Session"]

_TABLES: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[Hashable, SharedClient]] = (
    weakref.WeakKeyDictionary()
)


@dataclass(eq=False)
class SharedClient:
    """One connection's client in one loop, and how many hooks hold it.

    :param key: what the hooks sharing it have in common.
    :param settings: the connection as read when it was opened: a hook that reads different
        settings (the connection was edited) gets a client of its own.
    :param opened: resolves to the client and the token session once opened.
    """

    key: Hashable
    settings: Any
    opened: asyncio.Future[Opened]
    users: int = 0
    closed: bool = field(default=False)

    @property
    def client(self) -> AsyncSecurityClient:
        return self.opened.result()[0]


def _table() -> dict[Hashable, SharedClient]:
    loop = asyncio.get_running_loop()
    table = _TABLES.get(loop)
    if table is None:
        table = _TABLES[loop] = {}
    return table


def open_clients() -> int:
    """How many shared clients are open in the running loop (for tests and the bench)."""
    return sum(1 for entry in _table().values() if entry.opened.done() and not entry.closed)


async def acquire(key: Hashable, settings: Any, opener: Callable[[], Awaitable[Opened]]) -> SharedClient:
    """The shared client for ``key``, opened with ``opener`` by its first user; one more reference.

    Callers arriving while it opens wait for that one opening; if it fails, each of them gets the
    error (as if it had opened its own).

    :param key: what the sharing hooks have in common (connection id, back end, longest wait).
    :param settings: the connection's settings; compared with the open client's.
    :param opener: opens the client and its token session (reads files, may ask for a token).
    """
    table = _table()
    while True:
        entry = table.get(key)
        if entry is None or entry.closed or entry.settings != settings:
            entry = SharedClient(
                key=key, settings=settings, opened=asyncio.get_running_loop().create_future()
            )
            table[key] = entry
            entry.users = 1
            try:
                value = await opener()
            except BaseException as exc:
                entry.users = 0
                entry.closed = True
                if table.get(key) is entry:
                    del table[key]
                if isinstance(exc, asyncio.CancelledError):
                    entry.opened.cancel()
                else:
                    entry.opened.set_exception(exc)
                    # Waiters read it; without any, asyncio must not log it as never retrieved.
                    entry.opened.exception()
                raise
            entry.opened.set_result(value)
            return entry
        entry.users += 1
        try:
            await asyncio.shield(entry.opened)
        except asyncio.CancelledError:
            entry.users -= 1
            if entry.opened.cancelled() and not _current_cancelled():
                # Its opener was cancelled, not us: open it again.
                continue
            raise
        except BaseException:
            entry.users -= 1
            raise
        return entry


def _current_cancelled() -> bool:
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


async def release(entry: SharedClient) -> None:
    """Drop one reference; the last one closes the session (and the token session)."""
    entry.users -= 1
    if entry.users > 0 or entry.closed:
        return
    entry.closed = True
    table = _table()
    if table.get(entry.key) is entry:
        del table[entry.key]
    if entry.opened.done() and not entry.opened.cancelled() and entry.opened.exception() is None:
        client, session = entry.opened.result()
        try:
            await client.transport.close()
        finally:
            # It only carries msal's token calls; it holds no open I/O of ours.
            session.close()
