"""What the incident and alert write operators share: fields changed, and a comment posted once.

Both are safe under Airflow retries. Field changes are idempotent (the same PATCH twice leaves the
same incident or alert), but a comment is not: Graph's comment POST and the legacy PATCH
``comment`` add a second copy when sent again (defender-api.md sections 3.3 and 11.8), and neither
API takes an idempotency key. So every comment carries a marker keyed to the task instance
(:mod:`airflow_provider_mtp.comment_markers`), and the operator never writes a comment twice on
the strength of a guess:

* before posting, it reads the resource and does not post when the marker is already there;
* when the write fails in a way that does not say whether the service applied it (a read
  timeout, a connection dropped after the request left, a cut-off reply, a 5xx), it does not write
  again: it re-reads the resource every ``comment_settle_interval`` seconds for up to
  ``comment_settle_seconds``; the marker showing up means success, and its absence fails the try;
* a retry (any try after the first, also after a clear) re-reads the same way before it posts,
  because the earlier try's comment may still be on its way.

:class:`MarkedWriteOperator` holds that logic once; a subclass says which resource it writes
(:attr:`~MarkedWriteOperator.resource`, its id argument, its extra link) and how to check its
fields, read it, write it and summarise it.
"""

from __future__ import annotations

import math
import reprlib
import time
from collections.abc import Callable, Mapping
from functools import cached_property
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from airflow.sdk import BaseOperator

from airflow_provider_mtp.api.incident_limits import check_comment
from airflow_provider_mtp.comment_markers import comment_marker as _marker_text
from airflow_provider_mtp.comment_markers import has_marker, marker_key
from airflow_provider_mtp.errors import MTPConfigError, MTPServiceError

if TYPE_CHECKING:
    from airflow.sdk import Context

    from airflow_provider_mtp.hooks.mtp import MTPHook
    from airflow_provider_mtp.settings import ConnectionSettings

__all__ = [
    "DEFAULT_COMMENT_SETTLE_INTERVAL",
    "DEFAULT_COMMENT_SETTLE_SECONDS",
    "MarkedWriteOperator",
    "comment_marker",
]

#: Default seconds to keep re-reading a resource for a comment whose write outcome is unknown.
DEFAULT_COMMENT_SETTLE_SECONDS = 60.0
#: Default seconds between those re-reads.
DEFAULT_COMMENT_SETTLE_INTERVAL = 10.0


class _PersistedLink(Protocol):
    """An extra link whose URL the operator pushes while it runs (:mod:`airflow_provider_mtp.links`)."""

    @classmethod
    def persist(cls, context: Context, url: str) -> None: ...


SHORT = reprlib.Repr()
SHORT.maxstring = 80
SHORT.maxother = 80
SHORT.maxlist = 5


def comment_marker(context: Context, *, incident_id: str, settings: ConnectionSettings) -> str:
    """``[airflow:<dag_id>/<task_id>/<run_id>#<map_index> <hmac>]``: the task instance that commented.

    The same for every try of one task instance (and after a clear), different for every run, task,
    mapped instance and incident (or alert); the HMAC is keyed with the connection's secret (see
    :mod:`airflow_provider_mtp.comment_markers`), so nobody without it can post the marker first.

    :param context: the running task's context.
    :param incident_id: the incident (or alert) commented on.
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


class MarkedWriteOperator(BaseOperator):
    """Change a Defender XDR resource's fields and/or comment on it, the comment once; return its summary.

    Not used directly: :class:`~airflow_provider_mtp.operators.incidents.UpdateIncidentOperator`
    and :class:`~airflow_provider_mtp.operators.alerts.UpdateAlertOperator` say which resource.

    :param comment: a comment to add, marked (templated; empty means none).
    :param mtp_conn_id: the ``mtp`` connection (templated).
    :param api: ``graph`` or ``legacy`` to override the connection's back end.
    :param comment_settle_seconds: how long to keep re-reading the resource for the comment's
        marker after a write with an unknown outcome, and at the start of a retry; ``0`` re-reads once.
    :param comment_settle_interval: seconds between those re-reads.
    """

    #: The resource in messages: ``incident`` or ``alert``.
    resource: ClassVar[str]
    #: The argument holding the resource's id: ``incident_id`` or ``alert_id``.
    id_argument: ClassVar[str]
    #: The extra link's class, whose ``persist`` pushes the portal URL.
    link: ClassVar[type[_PersistedLink]]
    #: The resource's portal URL from the connection's settings and its id.
    portal: ClassVar[staticmethod[[ConnectionSettings, str], str]]
    #: What the task returns (XCom) for the resource after the write.
    summarise: ClassVar[staticmethod[[Mapping[str, Any]], dict[str, Any]]]
    ui_color = "#0078d4"

    #: How the operator waits between re-reads; tests replace it, with :attr:`clock`.
    sleep: Callable[[float], None] = staticmethod(time.sleep)
    #: Monotonic seconds, for the re-reading deadline.
    clock: Callable[[], float] = staticmethod(time.monotonic)

    def __init__(
        self,
        *,
        comment: str | None = None,
        mtp_conn_id: str = "mtp_default",
        api: str | None = None,
        comment_settle_seconds: float = DEFAULT_COMMENT_SETTLE_SECONDS,
        comment_settle_interval: float = DEFAULT_COMMENT_SETTLE_INTERVAL,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
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

    # What a subclass says about its resource --------------------------------------------------------

    def checked_fields(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """The fields to send, checked before any call.

        :return: the hook's update arguments other than ``comment``, and the changes they make
            (Graph names; empty when only a comment is to be added).
        :raises MTPConfigError: a value the service would refuse.
        """
        raise NotImplementedError

    def refuse_back_end(self, changes: dict[str, Any]) -> None:
        """Raise :class:`~airflow_provider_mtp.errors.MTPConfigError` when the back end cannot do this write.

        Called before any call, once the values are checked.

        :param changes: the field changes (empty when only a comment is to be added).
        """

    def needs_current(self, fields: dict[str, Any]) -> bool:
        """Whether the write depends on the resource's current state (besides the comment's marker)."""
        return False

    def merge_current(self, fields: dict[str, Any], current: dict[str, Any]) -> dict[str, Any]:
        """The update arguments, given the resource's current state (read when :meth:`needs_current`)."""
        return fields

    def read(self, resource_id: str) -> dict[str, Any]:
        """The resource now, with its comments."""
        raise NotImplementedError

    def send(self, resource_id: str, fields: dict[str, Any], comment: str | None) -> dict[str, Any]:
        """Write ``fields`` and ``comment`` through the hook; the resource afterwards."""
        raise NotImplementedError

    # The shared logic -------------------------------------------------------------------------------

    def _resource_id(self) -> str:
        raw = getattr(self, self.id_argument)
        resource_id = str(raw).strip()
        if not resource_id or resource_id == "None":
            raise MTPConfigError(f"{self.id_argument} must name an {self.resource}, got {raw!r}")
        return resource_id

    def _comment(self) -> str | None:
        if self.comment is None:
            return None
        if not isinstance(self.comment, str):
            raise MTPConfigError(f"comment must be a string, got {SHORT.repr(self.comment)}")
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
        resource_id = self._resource_id()
        fields, changes = self.checked_fields()
        comment = self._comment()
        self._check_settle()
        # Every value is checked before the first call.
        if not changes and comment is None:
            raise MTPConfigError(
                f"{self.task_id}: nothing to do for {self.resource} {resource_id}: give a field to change or a comment."
            )
        self.refuse_back_end(changes)
        marker = None
        if comment is not None:
            marker = comment_marker(context, incident_id=resource_id, settings=self.hook.settings)

        # Before any call, so the link is there when the write fails too.
        self.link.persist(context, self.portal(self.hook.settings, resource_id))

        current: dict[str, Any] | None = None
        if comment is not None or self.needs_current(fields):
            current = self.read(resource_id)

        marked: str | None = None
        if comment is not None:
            assert current is not None
            assert marker is not None
            try_number = getattr(context["ti"], "try_number", None) or 1
            if not has_marker(current, marker) and try_number > 1:
                self.log.info(
                    "Try %d: %s %s does not carry this task instance's comment yet; an earlier try "
                    "may have sent it, so re-reading for up to %.0f s before posting",
                    try_number,
                    self.resource,
                    resource_id,
                    self.comment_settle_seconds,
                )
                current, _ = self._await_marker(resource_id, marker)
            if has_marker(current, marker):
                self.log.info(
                    "%s %s already has this task instance's comment %s (an earlier try posted it); "
                    "not posting it again",
                    self.resource.capitalize(),
                    resource_id,
                    marker,
                )
            else:
                marked = f"{comment} {marker}"

        if self.needs_current(fields):
            assert current is not None
            fields = self.merge_current(fields, current)

        if not changes and marked is None:
            assert current is not None
            return self.summarise(current)
        self.log.info(
            "Updating %s %s: %s%s",
            self.resource,
            resource_id,
            ", ".join(sorted(changes)) or "no field changes",
            "; adding a comment" if marked else "",
        )
        return self.summarise(self._write(resource_id, fields, marked=marked, marker=marker))

    def _write(
        self, resource_id: str, fields: dict[str, Any], *, marked: str | None, marker: str | None
    ) -> dict[str, Any]:
        """Send the change; after an unknown outcome of a comment, re-read instead of sending again."""
        try:
            return self.send(resource_id, fields, marked)
        except MTPServiceError as exc:
            # MTPServiceError is what an unknown outcome raises (timeouts, drops and 5xx are never
            # retried for a comment); a 4xx, 429 or auth error says the service did not act.
            if marked is None or marker is None:
                raise
            failure = exc
        noun = self.resource
        self.log.warning(
            "%s %s: the write with the comment failed without telling whether the service applied "
            "it (%s). Not sending it again: re-reading the %s for up to %.0f s for marker %s",
            noun.capitalize(),
            resource_id,
            failure,
            noun,
            self.comment_settle_seconds,
            marker,
        )
        latest, reads = self._await_marker(resource_id, marker)
        if has_marker(latest, marker):
            self.log.info(
                "%s %s: the comment was applied after all (marker %s found); not posting it again",
                noun.capitalize(),
                resource_id,
                marker,
            )
            return latest
        raise MTPServiceError(
            f"{self.task_id}: {noun} {resource_id}: the write with the comment failed without telling "
            f"whether it was applied ({failure}), and the comment's marker did not appear in {reads} "
            f"re-read{'s' if reads != 1 else ''} over {self.comment_settle_seconds:g} s. Nothing was sent "
            f"again. The next try (an Airflow retry, or a clear) re-reads the {noun} for up to "
            f"{self.comment_settle_seconds:g} s before it posts; raise comment_settle_seconds if the "
            "service applies comments later than that.",
            status=failure.status,
            code=failure.code,
            service_message=failure.service_message,
            request_id=failure.request_id,
        ) from failure

    def _await_marker(self, resource_id: str, marker: str) -> tuple[dict[str, Any], int]:
        """Re-read the resource until a comment holds ``marker`` or the settle period ends.

        :return: the last state read, and how many reads it took.
        """
        deadline = self.clock() + self.comment_settle_seconds
        reads = 0
        while True:
            wait = min(self.comment_settle_interval, deadline - self.clock())
            if wait > 0:
                self.sleep(wait)
            resource = self.read(resource_id)
            reads += 1
            if has_marker(resource, marker) or self.clock() >= deadline:
                return resource, reads
