"""The bodies of an incident update, in either dialect (part of :mod:`.mapping`).

Writes validate: an unknown enum value raises :class:`ValueError` naming the accepted values.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from airflow_provider_mtp.api.mapping_enum_map import EnumMap
from airflow_provider_mtp.api.mapping_tables import CLASSIFICATION, DETERMINATION, INCIDENT_STATUS

__all__ = ["graph_update_body", "legacy_update_body"]

JsonDict = dict[str, Any]


def _tag_list(tags: Iterable[str]) -> list[str]:
    # A bare string is iterable too; it would silently become one tag per character.
    if isinstance(tags, str | bytes):
        raise ValueError(f"tags must be a list of strings, got {tags!r}")
    listed = list(tags)
    if not all(isinstance(tag, str) for tag in listed):
        raise ValueError(f"tags must be a list of strings, got {listed!r}")
    return listed


def _update_fields(
    *,
    enums: Mapping[str, tuple[Any, EnumMap]],
    assigned_to: str | None,
    tags: Iterable[str] | None,
    tags_key: str,
    legacy: bool,
) -> JsonDict:
    body: JsonDict = {}
    for key, (value, table) in enums.items():
        if value is not None:
            body[key] = table.require_legacy(value) if legacy else table.require_graph(value)
    if assigned_to is not None:
        if not isinstance(assigned_to, str):
            raise ValueError(f"assignedTo must be a string, got {assigned_to!r}")
        # "" is meaningful: it unassigns the incident.
        body["assignedTo"] = assigned_to
    if tags is not None:
        body[tags_key] = _tag_list(tags)
    return body


def graph_update_body(
    *,
    status: str | None = None,
    assigned_to: str | None = None,
    classification: str | None = None,
    determination: str | None = None,
    tags: Iterable[str] | None = None,
) -> JsonDict:
    """The body of ``PATCH /security/incidents/{id}``: Graph spellings, omitted fields left out.

    Enum values are accepted in either dialect and any case.

    :param status: new status (``active``, ``inProgress``, ``resolved``, ``redirected``).
    :param assigned_to: new owner; ``""`` unassigns.
    :param classification: new classification.
    :param determination: new determination.
    :param tags: the new ``customTags`` (replaces the list).
    :raises ValueError: an enum value is unknown (the message lists the accepted values), the owner
        is not a string or ``tags`` is not a list of strings.
    """
    return _update_fields(
        enums={
            "status": (status, INCIDENT_STATUS),
            "classification": (classification, CLASSIFICATION),
            "determination": (determination, DETERMINATION),
        },
        assigned_to=assigned_to,
        tags=tags,
        tags_key="customTags",
        legacy=False,
    )


def legacy_update_body(
    *,
    status: str | None = None,
    assigned_to: str | None = None,
    classification: str | None = None,
    determination: str | None = None,
    tags: Iterable[str] | None = None,
    comment: str | None = None,
) -> JsonDict:
    """The body of ``PATCH /api/incidents/{id}``: MTP spellings, omitted fields left out.

    Enum values are accepted in either dialect and any case.

    :param status: new status (``Active``, ``InProgress``, ``Resolved``, ``Redirected``).
    :param assigned_to: new owner; ``""`` unassigns.
    :param classification: new classification.
    :param determination: new determination.
    :param tags: the new ``tags`` (replaces the list).
    :param comment: text appended as a new comment (not idempotent: a retry adds it again).
    :raises ValueError: an enum value is unknown (the message lists the accepted values), the owner
        or the comment is not a string, the comment is blank, or ``tags`` is not a list of strings.
    """
    body = _update_fields(
        enums={
            "status": (status, INCIDENT_STATUS),
            "classification": (classification, CLASSIFICATION),
            "determination": (determination, DETERMINATION),
        },
        assigned_to=assigned_to,
        tags=tags,
        tags_key="tags",
        legacy=True,
    )
    if comment is not None:
        if not isinstance(comment, str) or not comment.strip():
            raise ValueError(f"comment must be a non-blank string, got {comment!r}")
        body["comment"] = comment
    return body
