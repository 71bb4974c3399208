"""Incident write operators: change an incident's status, owner, classification and tags; comment on it.

Both are safe under Airflow retries. Field changes are idempotent (the same PATCH twice leaves the
same incident), but a comment is not: Graph's comment POST and the legacy PATCH ``comment`` add a
second copy when sent again (defender-api.md sections 3.3 and 11.8). So every comment carries a
run-scoped marker, and a retried (or cleared and re-run) task instance that finds its marker on
the incident does not post again.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator

from airflow_provider_mtp.errors import MTPConfigError
from airflow_provider_mtp.links import DefenderIncidentLink, incident_portal_url
from airflow_provider_mtp.triggers.incidents import incident_summary

if TYPE_CHECKING:
    from airflow.sdk import Context

    from airflow_provider_mtp.hooks.mtp import MTPHook

__all__ = ["AddIncidentCommentOperator", "UpdateIncidentOperator", "comment_marker"]


def comment_marker(context: Context) -> str:
    """``[airflow:<dag_id>/<task_id>/<run_id>#<map_index>]``: the task instance that posted a comment.

    The same for every try of one task instance (and after a clear), different for every run and
    every mapped instance.
    """
    ti = context["ti"]
    map_index = getattr(ti, "map_index", None)
    return f"[airflow:{ti.dag_id}/{ti.task_id}/{ti.run_id}#{-1 if map_index is None else map_index}]"


def _tag_list(tags: Any) -> list[str] | None:
    if tags is None:
        return None
    values = [tags] if isinstance(tags, str) else tags
    if not isinstance(values, list | tuple) or not all(isinstance(tag, str) for tag in values):
        raise MTPConfigError(f"tags must be a list of strings, got {tags!r}")
    return list(values)


class UpdateIncidentOperator(BaseOperator):
    """Change a Defender XDR incident and/or comment on it; return its summary.

    Values are checked (in either API's spelling, any case) before any call. Fields left ``None``
    are not changed.

    **Retries.** A comment is posted with a marker appended,
    ``<comment> [airflow:<dag_id>/<task_id>/<run_id>#<map_index>]``. Before posting, the operator
    reads the incident and skips the comment when a comment with its marker is already there, so
    a retried try (or a cleared and re-run task instance) posts the comment once. Field changes
    are simply sent again. A new DAG run posts a new comment.

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
        them (templated; one string is one tag).
    :param add_tags: merge ``tags`` into the incident's current tags instead of replacing them.
    :param comment: a comment to add, marked as above (templated; empty means none).
    :param mtp_conn_id: the ``mtp`` connection.
    :param api: ``graph`` or ``legacy`` to override the connection's back end.
    """

    template_fields: Sequence[str] = (
        "incident_id",
        "status",
        "assigned_to",
        "classification",
        "determination",
        "tags",
        "comment",
    )
    operator_extra_links = (DefenderIncidentLink(),)
    ui_color = "#0078d4"

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
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.incident_id = incident_id
        self.status = status
        self.assigned_to = assigned_to
        self.classification = classification
        self.determination = determination
        self.tags = tags
        self.add_tags = add_tags
        self.comment = comment
        self.mtp_conn_id = mtp_conn_id
        self.api = api

    @cached_property
    def hook(self) -> MTPHook:
        """The sync hook, built on first use (never at DAG parse time)."""
        from airflow_provider_mtp.hooks.mtp import MTPHook

        return MTPHook(mtp_conn_id=self.mtp_conn_id, api=self.api)

    def _comment(self) -> str | None:
        if self.comment is None:
            return None
        if not isinstance(self.comment, str):
            raise MTPConfigError(f"comment must be a string, got {self.comment!r}")
        return self.comment if self.comment.strip() else None

    def execute(self, context: Context) -> dict[str, Any]:
        from airflow_provider_mtp.api.mapping import graph_update_body

        incident_id = str(self.incident_id).strip()
        if not incident_id or incident_id == "None":
            raise MTPConfigError(f"incident_id must name an incident, got {self.incident_id!r}")
        tags = _tag_list(self.tags)
        comment = self._comment()
        # Every value is checked before the first call.
        try:
            changes = graph_update_body(
                status=self.status,
                assigned_to=self.assigned_to,
                classification=self.classification,
                determination=self.determination,
                tags=tags,
            )
        except ValueError as exc:
            raise MTPConfigError(f"{self.task_id}: {exc}") from None
        if not changes and comment is None:
            raise MTPConfigError(
                f"{self.task_id}: nothing to do for incident {incident_id}: give a field to change or a comment."
            )

        DefenderIncidentLink.persist(context, incident_portal_url(self.hook.settings, incident_id))

        current: dict[str, Any] | None = None
        if comment is not None or (self.add_tags and tags is not None):
            current = self.hook.get_incident(incident_id, include_alerts=False)

        marked: str | None = None
        if comment is not None:
            assert current is not None
            marker = comment_marker(context)
            posted = any(marker in str(item.get("comment") or "") for item in current.get("comments") or ())
            if posted:
                self.log.info(
                    "Incident %s already has this task instance's comment %s (an earlier try posted it); "
                    "not posting it again",
                    incident_id,
                    marker,
                )
            else:
                marked = f"{comment} {marker}"

        if self.add_tags and tags is not None:
            assert current is not None
            existing = [tag for tag in current.get("customTags") or () if isinstance(tag, str)]
            known = {tag.casefold() for tag in existing}
            tags = existing + [tag for tag in dict.fromkeys(tags) if tag.casefold() not in known]

        if not changes and marked is None:
            assert current is not None
            return incident_summary(current)
        self.log.info(
            "Updating incident %s: %s%s",
            incident_id,
            ", ".join(sorted(changes)) or "no field changes",
            "; adding a comment" if marked else "",
        )
        updated = self.hook.update_incident(
            incident_id,
            status=self.status,
            assigned_to=self.assigned_to,
            classification=self.classification,
            determination=self.determination,
            tags=tags,
            comment=marked,
        )
        return incident_summary(updated)


class AddIncidentCommentOperator(UpdateIncidentOperator):
    """Comment on a Defender XDR incident, once per task instance however often it is retried.

    The comment gets the marker ``[airflow:<dag_id>/<task_id>/<run_id>#<map_index>]`` appended, and
    is not posted when the incident already has a comment with that marker (see
    :class:`UpdateIncidentOperator`). Returns the incident's summary.

    :param incident_id: the incident (templated).
    :param comment: the comment (templated).
    :param mtp_conn_id: the ``mtp`` connection.
    :param api: ``graph`` or ``legacy`` to override the connection's back end.
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
