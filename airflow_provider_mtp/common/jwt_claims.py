"""The claims of a JWT, read without verifying it: only to label data or explain an error.

Nothing here checks a signature, so nothing read here may grant access.
"""

from __future__ import annotations

import base64
import json
from typing import Any

__all__ = ["claims"]


def claims(token: str) -> dict[str, Any] | None:
    """The payload of a JWT as a dict, unverified; ``None`` if it is not a readable JWT.

    :param token: a compact JWT (``header.payload.signature``).
    """
    try:
        payload = token.split(".")[1]
        decoded = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (AttributeError, IndexError, ValueError):
        return None
    return decoded if isinstance(decoded, dict) else None
