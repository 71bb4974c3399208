"""Helpers for session-scoped fixtures that run heavy processes (the e2e and the compose stacks)."""

from __future__ import annotations

import pytest


def last_user(item: pytest.Item, fixture: str) -> bool:
    """Whether no test after ``item`` in this session asks for ``fixture``: it may be stopped now.

    Left running, a stack's scheduler and dag-processor would take CPU from the rest of the suite.
    """
    if fixture not in getattr(item, "fixturenames", ()):
        return False
    items = item.session.items
    later = items[items.index(item) + 1 :] if item in items else []
    return not any(fixture in getattr(other, "fixturenames", ()) for other in later)
