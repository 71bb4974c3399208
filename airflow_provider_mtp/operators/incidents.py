"""Incident write operators: change an incident's status, owner, classification and tags; comment on it.

Both are safe under Airflow retries: a comment is posted once per task instance however often the
task is retried, and field changes are idempotent. The logic (markers, re-reading after a write
with an unknown outcome, and at the start of a retry) is shared with the alert operators in
:mod:`airflow_provider_mtp.operators.marked_writes`; this module says what is particular to
incidents: custom tags (replaced or added to), the incident's summary and the incident link.
"""

from __future__ import annotations

import ast
import json
from collections.abc import Sequence
from typing import Any

from airflow_provider_mtp.api.incident_limits import check_tags
from airflow_provider_mtp.errors import MTPConfigError
from airflow_provider_mtp.incident_rules import incident_summary
from airflow_provider_mtp.links import DefenderIncidentLink, incident_portal_url
from airflow_provider_mtp.operators.marked_writes import (
    DEFAULT_COMMENT_SETTLE_INTERVAL,
    DEFAULT_COMMENT_SETTLE_SECONDS,
    MarkedWriteOperator,
    comment_marker,
)
from airflow_provider_mtp.operators.marked_writes import SHORT as _SHORT

__all__ = ["AddIncidentCommentOperator", "UpdateIncidentOperator", "comment_marker"]


def _tag_list(tags: Any) -> list[str] | None:
    """``tags`` as a list of strings, within the limits of :mod:`~airflow_provider_mtp.api.incident_limits`.

    A template renders to text: text that starts with ``[`` is read as the list it spells (JSON or
    Python literal, ``'["a", "b"]'`` or ``"['a', 'b']"``); any other text is one tag.
    """
    if tags is None:
        return None
    values = tags
    if isinstance(tags, str):
        values = _parse_list_text(tags) if tags.lstrip().startswith("[") else [tags]
    if not isinstance(values, list | tuple) or not all(isinstance(tag, str) for tag in values):
        raise MTPConfigError(f"tags must be a list of strings, got {_SHORT.repr(tags)}")
    try:
        return check_tags(values)
    except ValueError as exc:
        raise MTPConfigError(str(exc)) from None


def _parse_list_text(text: str) -> list[str]:
    parsed: Any = None
    try:
        parsed = json.loads(text)
    except ValueError:
        try:
            parsed = ast.literal_eval(text.strip())
        except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
            parsed = None
    if not isinstance(parsed, list) or not all(isinstance(tag, str) for tag in parsed):
        raise MTPConfigError(
            f"tags is the text {_SHORT.repr(text)}, which starts with '[' but is not a list of strings. "
            "A template for tags must render a list such as ['a', 'b'] or [\"a\", \"b\"] (or one tag "
            "without brackets); for one tag that starts with '[', pass a list: tags=['[x]']."
        )
    return parsed


class UpdateIncidentOperator(MarkedWriteOperator):
    """Change a Defender XDR incident and/or comment on it; return its summary.

    Values are checked (in either API's spelling, any case) before any call. Fields left ``None``
    are not changed. ``status``, ``classification`` and ``determination`` also take the enums of
    :mod:`airflow_provider_mtp.enums` (``status=IncidentStatus.RESOLVED``).

    **Comments are posted once.** A comment is posted with a marker appended,
    ``<comment> [airflow:<dag_id>/<task_id>/<run_id>#<map_index> <hmac>]``, where ``<hmac>`` is an
    HMAC-SHA256 of the task instance and the incident under a key derived from the connection's
    secret (the ``comment_marker_key`` extra, else the client secret, certificate or user password,
    else Airflow's ``[core] fernet_key``), so somebody who can only comment cannot post the marker
    ahead of the task to suppress its comment. Then:

    * Before posting, the operator reads the incident and skips the comment when its marker is
      already there (an earlier try posted it).
    * When the write fails without saying whether it was applied (a read timeout, a connection
      dropped after sending, a reply cut off, a 5xx), nothing is sent again: the incident is re-read
      every ``comment_settle_interval`` seconds for up to ``comment_settle_seconds``. If the marker
      appears, the try succeeds; if not, the try fails with
      :class:`~airflow_provider_mtp.errors.MTPServiceError` saying so.
    * Every try after the first (an Airflow retry, or a clear) re-reads the same way for up to
      ``comment_settle_seconds`` before it posts, since the last try's comment may still arrive.
      A retry therefore takes up to that long even when nothing was posted before.

    What remains (neither API takes an idempotency key, so any guard is bounded in time): a comment
    the service applies later than the end of the next try's re-reading is posted twice, and so is
    one whose marker key changed between the two tries (the credential secret or
    ``comment_marker_key`` rotated in between). Field changes are simply sent again. A new DAG run
    posts a new comment.

    **Limits** (:mod:`airflow_provider_mtp.api.incident_limits`), checked before any call: at most
    50 tags of at most 100 characters each, none blank or holding control characters; a comment of
    at most 30,000 characters (the marker comes on top). With ``add_tags`` the limit applies to
    the tags given; the incident's own tags are kept as they are.

    The return value (XCom) is the incident's summary after the change, as the sensor returns
    them: ``{"id", "title", "severity", "status", "last_update", "portal_url"}`` (plus
    ``redirect_target`` for a merged incident). The "Defender incident" extra link opens the
    incident in the portal of the connection's cloud.

    :param incident_id: the incident (templated).
    :param status: ``active``, ``inProgress``, ``resolved`` or ``redirected`` (templated).
    :param assigned_to: the new assignee's user principal name; ``""`` unassigns (templated).
    :param classification: ``truePositive``, ``falsePositive``, ``informationalExpectedActivity`` or
        ``unknown`` (templated).
    :param determination: e.g. ``malware``, ``phishing``, ``compromisedAccount``,
        ``securityTesting``, ``clean`` (templated).
    :param tags: custom tags: they replace the incident's tags, or with ``add_tags`` are added to
        them (templated: one string is one tag, and a template that renders the text of a list,
        ``"['a', 'b']"`` or ``'["a", "b"]'``, gives that list).
    :param add_tags: merge ``tags`` into the incident's current tags instead of replacing them.
    :param comment: a comment to add, marked as above (templated; empty means none).
    :param mtp_conn_id: the ``mtp`` connection (templated).
    :param api: ``graph`` or ``legacy`` to override the connection's back end.
    :param comment_settle_seconds: how long to keep re-reading the incident for the comment's marker
        after a write with an unknown outcome, and at the start of a retry; ``0`` re-reads once.
    :param comment_settle_interval: seconds between those re-reads.
    """

    template_fields: Sequence[str] = (
        "incident_id",
        "status",
        "assigned_to",
        "classification",
        "determination",
        "tags",
        "comment",
        "mtp_conn_id",
    )
    operator_extra_links = (DefenderIncidentLink(),)
    resource = "incident"
    id_argument = "incident_id"
    link = DefenderIncidentLink
    portal = staticmethod(incident_portal_url)
    summarise = staticmethod(incident_summary)

    def __init__(
        self,
        *,
        incident_id: str | int,
        status: str | None = None,
        assigned_to: str | None = None,
        classification: str | None = None,
        determination: str | None = None,
        tags: Sequence[str] | str | None = None,
        add_tags: bool = False,
        comment: str | None = None,
        mtp_conn_id: str = "mtp_default",
        api: str | None = None,
        comment_settle_seconds: float = DEFAULT_COMMENT_SETTLE_SECONDS,
        comment_settle_interval: float = DEFAULT_COMMENT_SETTLE_INTERVAL,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            comment=comment,
            mtp_conn_id=mtp_conn_id,
            api=api,
            comment_settle_seconds=comment_settle_seconds,
            comment_settle_interval=comment_settle_interval,
            **kwargs,
        )
        self.incident_id = incident_id
        self.status = status
        self.assigned_to = assigned_to
        self.classification = classification
        self.determination = determination
        self.tags = tags
        self.add_tags = add_tags

    def checked_fields(self) -> tuple[dict[str, Any], dict[str, Any]]:
        from airflow_provider_mtp.api.mapping import graph_update_body

        try:
            tags = _tag_list(self.tags)
        except MTPConfigError as exc:
            raise MTPConfigError(f"{self.task_id}: {exc}") from None
        fields: dict[str, Any] = {
            "status": self.status,
            "assigned_to": self.assigned_to,
            "classification": self.classification,
            "determination": self.determination,
            "tags": tags,
        }
        try:
            return fields, graph_update_body(**fields)
        except ValueError as exc:
            raise MTPConfigError(f"{self.task_id}: {exc}") from None

    def needs_current(self, fields: dict[str, Any]) -> bool:
        return self.add_tags and fields["tags"] is not None

    def merge_current(self, fields: dict[str, Any], current: dict[str, Any]) -> dict[str, Any]:
        existing = [tag for tag in current.get("customTags") or () if isinstance(tag, str)]
        known = {tag.casefold() for tag in existing}
        tags = existing + [tag for tag in dict.fromkeys(fields["tags"]) if tag.casefold() not in known]
        return {**fields, "tags": tags}

    def read(self, resource_id: str) -> dict[str, Any]:
        return self.hook.get_incident(resource_id, include_alerts=False)

    def send(self, resource_id: str, fields: dict[str, Any], comment: str | None) -> dict[str, Any]:
        return self.hook.update_incident(resource_id, **fields, comment=comment)


class AddIncidentCommentOperator(UpdateIncidentOperator):
    """Comment on a Defender XDR incident, once per task instance however often it is retried.

    The comment gets a keyed marker appended and is not posted when the incident already has a
    comment with that marker; after a write with an unknown outcome, and on a retry, the incident
    is re-read for up to ``comment_settle_seconds`` before anything is posted (see
    :class:`UpdateIncidentOperator`). Returns the incident's summary.

    :param incident_id: the incident (templated).
    :param comment: the comment (templated), at most 30,000 characters.
    :param mtp_conn_id: the ``mtp`` connection (templated).
    :param api: ``graph`` or ``legacy`` to override the connection's back end.
    :param kwargs: ``comment_settle_seconds``, ``comment_settle_interval`` and the
        ``BaseOperator`` arguments.
    """

    def __init__(
        self,
        *,
        incident_id: str | int,
        comment: str,
        mtp_conn_id: str = "mtp_default",
        api: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(incident_id=incident_id, comment=comment, mtp_conn_id=mtp_conn_id, api=api, **kwargs)
