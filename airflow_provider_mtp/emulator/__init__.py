"""Offline emulator of Entra ID, the Microsoft Graph security API and the legacy MTP API.

``DefenderEmulator`` runs it in a subprocess; ``python -m airflow_provider_mtp.emulator`` runs it
in the foreground. Importing this package loads nothing heavy: the server, DuckDB and the KQL
engine load in the emulator's own process.
"""

from __future__ import annotations

from airflow_provider_mtp.emulator.process import DefenderEmulator, EmulatorStartError

__all__ = ["DefenderEmulator", "EmulatorStartError"]
