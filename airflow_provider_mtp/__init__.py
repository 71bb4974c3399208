"""Apache Airflow provider for Microsoft Defender XDR (Microsoft Threat Protection)."""

from __future__ import annotations

__version__ = "0.1.0"
