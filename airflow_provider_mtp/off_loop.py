"""Imports that must not run on the triggerer's event loop.

A first import of the client stack (aiohttp, msal, cryptography, the API modules) takes long
enough to stall every trigger sharing the loop, so async code imports it in a worker thread.
"""

from __future__ import annotations

import asyncio
import importlib
from types import ModuleType


async def import_module(name: str) -> ModuleType:
    """Import ``name`` in a worker thread (a no-op lookup once it is imported).

    :param name: the dotted module name.
    """
    return await asyncio.to_thread(importlib.import_module, name)
