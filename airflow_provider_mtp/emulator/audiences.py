"""Which API a token audience or scope belongs to, across every cloud the client supports."""

from __future__ import annotations

import enum


class Api(enum.Enum):
    """The two emulated resource APIs."""

    GRAPH = "graph"
    MTP = "mtp"


# Every cloud's roots (defender-api.md section 2): a client configured for a sovereign cloud
# asks for that cloud's audience, and the emulator stands in for all of them.
GRAPH_AUDIENCES = frozenset(
    {
        "https://graph.microsoft.com",
        "https://graph.microsoft.us",
        "https://dod-graph.microsoft.us",
        "https://microsoftgraph.chinacloudapi.cn",
    }
)
MTP_AUDIENCES = frozenset(
    {
        "https://api.security.microsoft.com",
        "https://api-gcc.security.microsoft.us",
        "https://api-gov.security.microsoft.us",
        # The Entra app's id is a valid audience too.
        "8ee8fdad-f234-4243-8f3b-15c294843740",
    }
)


def audience_api(audience: str) -> Api | None:
    """The API an audience names, or ``None`` for anything else (e.g. the MDE API)."""
    normalised = audience.rstrip("/")
    if normalised in GRAPH_AUDIENCES:
        return Api.GRAPH
    if normalised in MTP_AUDIENCES:
        return Api.MTP
    return None
