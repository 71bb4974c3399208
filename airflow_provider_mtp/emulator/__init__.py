"""Offline emulator of Entra ID, the Graph security API and the legacy MTP API."""

from __future__ import annotations
