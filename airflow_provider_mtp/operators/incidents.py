"""Incident write operators: change an incident's status, owner, classification and tags; comment on it.

Both are safe under Airflow retries. Field changes are idempotent (the same PATCH twice leaves the
same incident), but a comment is not: Graph's comment POST and the legacy PATCH ``comment`` add a
second copy when sent again (defender-api.md sections 3.3 and 11.8), and neither API takes an
idempotency key. So every comment carries a marker keyed to the task instance
(:mod:`airflow_provider_mtp.comment_markers`), and the operator never writes a comment twice on
the strength of a guess:

* before posting, it reads the incident and does not post when the marker is already there;
* when the write fails in a way that does not say whether the service applied it (a read
  timeout, a connection dropped after the request left, a cut-off reply, a 5xx), it does not write
  again: it re-reads the incident every ``comment_settle_interval`` seconds for up to
  ``comment_settle_seconds``; the marker showing up means success, and its absence fails the try;
* a retry (any try after the first, also after a clear) re-reads the same way before it posts,
  because the earlier try's comment may still be on its way.
"""

from __future__ import annotations

import ast
import json
import math
import reprlib
import time
from collections.abc import Callable, Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator

from airflow_provider_mtp.api.incident_limits import check_comment, check_tags
from airflow_provider_mtp.comment_markers import comment_marker as _marker_text
from airflow_provider_mtp.comment_markers import has_marker, marker_key
from airflow_provider_mtp.errors import MTPConfigError, MTPServiceError
from airflow_provider_mtp.incident_rules import incident_summary
from airflow_provider_mtp.links import DefenderIncidentLink, incident_portal_url

if TYPE_CHECKING:
    from airflow.sdk import Context

    from airflow_provider_mtp.hooks.mtp import MTPHook
    from airflow_provider_mtp.settings import ConnectionSettings

__all__ = ["AddIncidentCommentOperator", "UpdateIncidentOperator", "comment_marker"]

#: Default seconds to keep re-reading an incident for a comment whose write outcome is unknown.
DEFAULT_COMMENT_SETTLE_SECONDS = 60.0
#: Default seconds between those re-reads.
DEFAULT_COMMENT_SETTLE_INTERVAL = 10.0

_SHORT = reprlib.Repr()
_SHORT.maxstring = 80
_SHORT.maxother = 80
_SHORT.maxlist = 5


def comment_marker(context: Context, *, incident_id: str, settings: ConnectionSettings) -> str:
    """``[airflow:<dag_id>/<task_id>/<run_id>#<map_index> <hmac>]``: the task instance that commented.

    The same for every try of one task instance (and after a clear), different for every run, task,
    mapped instance and incident; the HMAC is keyed with the connection's secret (see
    :mod:`airflow_provider_mtp.comment_markers`), so nobody without it can post the marker first.

    :param context: the running task's context.
    :param incident_id: the incident commented on.
    :param settings: the connection, whose secret keys the marker.
    """
    ti = context["ti"]
    return _marker_text(
        marker_key(settings),
        dag_id=ti.dag_id,
        task_id=ti.task_id,
        run_id=ti.run_id,
        map_index=getattr(ti, "map_index", None),
        incident_id=incident_id,
    )


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


class UpdateIncidentOperator(BaseOperator):
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
    ui_color = "#0078d4"

    #: How the operator waits between re-reads; tests replace it, with :attr:`clock`.
    sleep: Callable[[float], None] = staticmethod(time.sleep)
    #: Monotonic seconds, for the re-reading deadline.
    clock: Callable[[], float] = staticmethod(time.monotonic)

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
        self.comment_settle_seconds = comment_settle_seconds
        self.comment_settle_interval = comment_settle_interval

    @cached_property
    def hook(self) -> MTPHook:
        """The sync hook, built on first use (never at DAG parse time)."""
        from airflow_provider_mtp.hooks.mtp import MTPHook

        return MTPHook(mtp_conn_id=self.mtp_conn_id, api=self.api)

    def _comment(self) -> str | None:
        if self.comment is None:
            return None
        if not isinstance(self.comment, str):
            raise MTPConfigError(f"comment must be a string, got {_SHORT.repr(self.comment)}")
        if not self.comment.strip():
            return None
        try:
            return check_comment(self.comment)
        except ValueError as exc:
            raise MTPConfigError(f"{self.task_id}: {exc}") from None

    def _check_settle(self) -> None:
        for name, low, above in (
            ("comment_settle_seconds", 0.0, False),
            ("comment_settle_interval", 0.0, True),
        ):
            value = getattr(self, name)
            ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
            if not ok or value < low or (above and value == low):
                raise MTPConfigError(
                    f"{self.task_id}: {name} is {value!r}; give a number of seconds, "
                    f"{'above' if above else 'at least'} {low:g}."
                )

    def execute(self, context: Context) -> dict[str, Any]:
        from airflow_provider_mtp.api.mapping import graph_update_body

        incident_id = str(self.incident_id).strip()
        if not incident_id or incident_id == "None":
            raise MTPConfigError(f"incident_id must name an incident, got {self.incident_id!r}")
        try:
            tags = _tag_list(self.tags)
        except MTPConfigError as exc:
            raise MTPConfigError(f"{self.task_id}: {exc}") from None
        comment = self._comment()
        self._check_settle()
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
        marker = None
        if comment is not None:
            marker = comment_marker(context, incident_id=incident_id, settings=self.hook.settings)

        DefenderIncidentLink.persist(context, incident_portal_url(self.hook.settings, incident_id))

        current: dict[str, Any] | None = None
        if comment is not None or (self.add_tags and tags is not None):
            current = self.hook.get_incident(incident_id, include_alerts=False)

        marked: str | None = None
        if comment is not None:
            assert current is not None
            assert marker is not None
            try_number = getattr(context["ti"], "try_number", None) or 1
            if not has_marker(current, marker) and try_number > 1:
                self.log.info(
                    "Try %d: incident %s does not carry this task instance's comment yet; an earlier try "
                    "may have sent it, so re-reading for up to %.0f s before posting",
                    try_number,
                    incident_id,
                    self.comment_settle_seconds,
                )
                current, _ = self._await_marker(incident_id, marker)
            if has_marker(current, marker):
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
        return incident_summary(self._write(incident_id, tags=tags, marked=marked, marker=marker))

    def _write(
        self, incident_id: str, *, tags: list[str] | None, marked: str | None, marker: str | None
    ) -> dict[str, Any]:
        """Send the change; after an unknown outcome of a comment, re-read instead of sending again."""
        try:
            return self.hook.update_incident(
                incident_id,
                status=self.status,
                assigned_to=self.assigned_to,
                classification=self.classification,
                determination=self.determination,
                tags=tags,
                comment=marked,
            )
        except MTPServiceError as exc:
            # MTPServiceError is what an unknown outcome raises (timeouts, drops and 5xx are never
            # retried for a comment); a 4xx, 429 or auth error says the service did not act.
            if marked is None or marker is None:
                raise
            failure = exc
        self.log.warning(
            "Incident %s: the write with the comment failed without telling whether the service applied "
            "it (%s). Not sending it again: re-reading the incident for up to %.0f s for marker %s",
            incident_id,
            failure,
            self.comment_settle_seconds,
            marker,
        )
        latest, reads = self._await_marker(incident_id, marker)
        if has_marker(latest, marker):
            self.log.info(
                "Incident %s: the comment was applied after all (marker %s found); not posting it again",
                incident_id,
                marker,
            )
            return latest
        raise MTPServiceError(
            f"{self.task_id}: incident {incident_id}: the write with the comment failed without telling "
            f"whether it was applied ({failure}), and the comment's marker did not appear in {reads} "
            f"re-read{'s' if reads != 1 else ''} over {self.comment_settle_seconds:g} s. Nothing was sent "
            f"again. The next try (an Airflow retry, or a clear) re-reads the incident for up to "
            f"{self.comment_settle_seconds:g} s before it posts; raise comment_settle_seconds if the "
            "service applies comments later than that.",
            status=failure.status,
            code=failure.code,
            service_message=failure.service_message,
            request_id=failure.request_id,
        ) from failure

    def _await_marker(self, incident_id: str, marker: str) -> tuple[dict[str, Any], int]:
        """Re-read the incident until a comment holds ``marker`` or the settle period ends.

        :return: the last incident read, and how many reads it took.
        """
        deadline = self.clock() + self.comment_settle_seconds
        reads = 0
        while True:
            wait = min(self.comment_settle_interval, deadline - self.clock())
            if wait > 0:
                self.sleep(wait)
            incident = self.hook.get_incident(incident_id, include_alerts=False)
            reads += 1
            if has_marker(incident, marker) or self.clock() >= deadline:
                return incident, reads


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
