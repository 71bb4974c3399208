"""Size limits on what the provider writes to an incident: custom tags and comments.

Neither the Graph security API nor the legacy MTP API documents a limit on the number or length of
custom tags or on a comment's length (defender-api.md sections 3.2, 3.3 and 4.2 say nothing), and
the emulator enforces none. Sending 10,000 tags or a megabyte of comment text is still a mistake
(usually a template that rendered the wrong thing), and the service's reaction to it is unknown:
a 400, a 413 from a gateway, or an incident that the portal can no longer show. So the provider
checks its own limits, chosen with wide margins over real use and checked before any call:

* :data:`MAX_CUSTOM_TAGS` tags per write: the Defender portal shows tags as chips in the incident
  list; triage rarely sets more than a handful.
* :data:`MAX_TAG_CHARS` characters per tag, no blank tags and no control characters (a newline or
  NUL in a tag breaks the portal's tag filter and every OData ``customTags/any(...)`` filter).
* :data:`MAX_COMMENT_CHARS` characters per comment: several pages of text, and a small request
  body whatever the encoding; the marker the operators append (about 100 characters) comes on top.

Both functions raise :class:`ValueError` with a message that names the field, the limit and the size
seen; callers turn it into :class:`~airflow_provider_mtp.errors.MTPConfigError`.
"""

from __future__ import annotations

import reprlib
import unicodedata
from collections.abc import Iterable
from typing import Any

__all__ = [
    "MARKER_ROOM",
    "MAX_COMMENT_CHARS",
    "MAX_CUSTOM_TAGS",
    "MAX_TAG_CHARS",
    "check_comment",
    "check_tags",
]

#: Custom tags one write may set.
MAX_CUSTOM_TAGS = 50
#: Characters in one custom tag.
MAX_TAG_CHARS = 100
#: Characters in one comment, before the operators' marker is appended.
MAX_COMMENT_CHARS = 30_000
#: What the hook allows on top of :data:`MAX_COMMENT_CHARS`: the operators' marker (dag, task and
#: run ids can each be 250 characters) goes after a comment they checked.
MARKER_ROOM = 1_024

# Values are quoted shortened: the whole of a wrong value can be a megabyte.
_SHORT = reprlib.Repr()
_SHORT.maxstring = 60
_SHORT.maxother = 60
_SHORT.maxlist = 5


def check_tags(tags: Iterable[Any], *, name: str = "tags") -> list[str]:
    """``tags`` as a list, if it is a list of at most :data:`MAX_CUSTOM_TAGS` valid tags.

    A valid tag is a non-blank string of at most :data:`MAX_TAG_CHARS` characters without control
    characters.

    :param tags: the tags.
    :param name: the argument's name, for messages.
    :raises ValueError: the message names the argument, the limit and what was seen.
    """
    # A bare string is iterable too; it would silently become one tag per character.
    if isinstance(tags, str | bytes):
        raise ValueError(f"{name} must be a list of strings, got {_SHORT.repr(tags)}.")
    listed = list(tags)
    if not all(isinstance(tag, str) for tag in listed):
        raise ValueError(f"{name} must be a list of strings, got {_SHORT.repr(listed)}.")
    if len(listed) > MAX_CUSTOM_TAGS:
        raise ValueError(
            f"{name} has {len(listed):,} tags; at most {MAX_CUSTOM_TAGS} custom tags may be set on an "
            "incident. Give fewer tags (check the template that builds them)."
        )
    for index, tag in enumerate(listed):
        where = f"{name}[{index}]"
        if not tag.strip():
            raise ValueError(f"{where} is blank ({tag!r}); give a tag with text, or leave it out.")
        if len(tag) > MAX_TAG_CHARS:
            raise ValueError(
                f"{where} has {len(tag):,} characters ({_SHORT.repr(tag)}); a tag may have at most "
                f"{MAX_TAG_CHARS}. Shorten it."
            )
        control = next((char for char in tag if unicodedata.category(char) == "Cc"), None)
        if control is not None:
            raise ValueError(
                f"{where} ({_SHORT.repr(tag)}) contains the control character U+{ord(control):04X}; tags "
                "may not contain control characters (newlines, tabs, NUL). Remove it."
            )
    return listed


def check_comment(text: Any, *, name: str = "comment", limit: int = MAX_COMMENT_CHARS) -> str:
    """``text`` if it is a non-blank string of at most ``limit`` characters.

    :param text: the comment.
    :param name: the argument's name, for messages.
    :param limit: the most characters; the hook allows :data:`MARKER_ROOM` more than the operators,
        which append their marker to a comment they checked against :data:`MAX_COMMENT_CHARS`.
    :raises ValueError: the message names the argument, the limit and the size seen.
    """
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"{name} must be a non-blank string, got {_SHORT.repr(text)}.")
    if len(text) > limit:
        raise ValueError(
            f"{name} has {len(text):,} characters; a comment may have at most {limit:,}. "
            "Shorten it, or attach long output elsewhere (a file, a ticket) and link to it."
        )
    return text
