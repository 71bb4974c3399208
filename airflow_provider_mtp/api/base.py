"""What the hook needs from a back end, and what a back end needs from authentication.

Both back ends implement :class:`SecurityApi` and return the one normalised shape (Graph's), so
a DAG written once runs on either.
"""

from __future__ import annotations

import abc
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

# Re-exported (the redundant alias says so): the hook names it here, beside the back ends.
from airflow_provider_mtp.api.token_source import TokenSource as TokenSource

if TYPE_CHECKING:
    from airflow_provider_mtp.api.models import HuntingResult


class SecurityApi(abc.ABC):
    """One back end: the Graph security API or the legacy MTP API."""

    #: ``graph`` or ``legacy``.
    name: str

    @abc.abstractmethod
    def list_incidents(
        self,
        *,
        status: Sequence[str] | None = None,
        severity: Sequence[str] | None = None,
        assigned_to: str | None = None,
        created_from: datetime | str | None = None,
        created_before: datetime | str | None = None,
        updated_from: datetime | str | None = None,
        updated_before: datetime | str | None = None,
        include_alerts: bool = False,
        page_size: int | None = None,
        odata_filter: str | None = None,
    ) -> Iterator[dict[str, Any]]:
        """Incidents in the Graph shape, page by page; ranges are half-open ``[from, before)``."""

    @abc.abstractmethod
    def get_incident(self, incident_id: str, *, include_alerts: bool = True) -> dict[str, Any]:
        """One incident in the Graph shape."""

    @abc.abstractmethod
    def update_incident(
        self, incident_id: str, changes: dict[str, Any], *, comment: str | None = None
    ) -> dict[str, Any]:
        """Apply validated Graph-named ``changes`` (and a comment); the updated incident."""

    @abc.abstractmethod
    def add_incident_comment(self, incident_id: str, text: str) -> list[dict[str, Any]]:
        """Append a comment; every comment of the incident afterwards."""

    @abc.abstractmethod
    def run_hunting_query(self, query: str, *, timespan: str | None = None) -> HuntingResult:
        """Run KQL; the result streams its rows."""

    def close(self) -> None:  # noqa: B027 - optional hook for back ends holding resources
        """Release sockets."""
