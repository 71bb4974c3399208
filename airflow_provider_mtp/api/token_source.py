"""What the transport needs from authentication: a bearer token, and a way to refuse one.

It sits below the transport (which takes a :class:`TokenSource`) and below the back ends'
:mod:`~airflow_provider_mtp.api.base`, so neither has to import the other to name it.
"""

from __future__ import annotations

from typing import Protocol


class TokenSource(Protocol):
    """Hands out bearer tokens for one API and forgets one the API refused."""

    def token(self) -> str:
        """A valid access token (from the process-wide cache when it can)."""
        ...

    def invalidate(self, token: str) -> None:
        """Drop ``token`` from the cache after a 401, so the next :meth:`token` fetches anew."""
        ...
