"""Alert write operators: change an alert's status, classification, determination and owner; comment on it.

The alert twins of the incident operators, with the same guarantees (shared in
:mod:`airflow_provider_mtp.operators.marked_writes`): values checked before any call, a comment
posted once per task instance however often the task is retried, field changes idempotent. Only
the Microsoft Graph security API can update alerts (``/security/alerts_v2``); on the legacy MTP API
the operators fail before any call, saying to use ``api="graph"``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from airflow_provider_mtp.alert_rules import alert_summary
from airflow_provider_mtp.api.legacy_alerts import refuse_alert_update
from airflow_provider_mtp.errors import MTPConfigError
from airflow_provider_mtp.links import DefenderAlertLink, alert_portal_url
from airflow_provider_mtp.operators.marked_writes import MarkedWriteOperator

__all__ = ["AddAlertCommentOperator", "UpdateAlertOperator"]


class UpdateAlertOperator(MarkedWriteOperator):
    """Change a Defender XDR alert and/or comment on it (Microsoft Graph only); return its summary.

    Values are checked (in either API's spelling, any case) before any call. Fields left ``None``
    are not changed. ``status``, ``classification`` and ``determination`` also take the enums of
    :mod:`airflow_provider_mtp.enums` (``status=AlertStatus.RESOLVED``,
    ``classification=Classification.FALSE_POSITIVE``).

    **Comments are posted once**, exactly as by
    :class:`~airflow_provider_mtp.operators.incidents.UpdateIncidentOperator`: the comment carries
    a marker keyed to the task instance and the alert (``[airflow:<dag_id>/<task_id>/<run_id>#<map_index>
    <hmac>]``); the operator reads the alert first and skips a comment already there; after a write
    with an unknown outcome it re-reads the alert every ``comment_settle_interval`` seconds for up
    to ``comment_settle_seconds`` instead of sending it again; every try after the first re-reads
    the same way before it posts. Field changes are simply sent again (the same PATCH twice leaves
    the same alert).

    **The legacy MTP API cannot update or comment on alerts** (it has no alerts endpoint): with
    ``api="legacy"`` (or a connection whose ``api`` extra is ``legacy``) the task fails at once with
    :class:`~airflow_provider_mtp.errors.MTPConfigError`, before any call, saying to use
    ``api="graph"`` (``SecurityAlert.ReadWrite.All``), or to update the alert's incident instead.

    The return value (XCom) is the alert's summary after the change, as the alert sensor returns
    them: ``{"id", "incidentId", "title", "severity", "status", "classification", "determination",
    "serviceSource", "detectionSource", "assignedTo", "createdDateTime", "lastUpdateDateTime",
    "alertWebUrl"}``. The "Defender alert" extra link opens the alert in the portal of the
    connection's cloud.

    :param alert_id: the alert (templated), e.g. ``da638501234567890123_1053928211``.
    :param status: ``new``, ``inProgress`` or ``resolved`` (templated).
    :param classification: ``truePositive``, ``falsePositive``, ``informationalExpectedActivity`` or
        ``unknown`` (templated).
    :param determination: e.g. ``malware``, ``phishing``, ``compromisedAccount``,
        ``securityTesting``, ``clean`` (templated).
    :param assigned_to: the new assignee's user principal name; ``""`` unassigns (templated).
    :param comment: a comment to add, marked as above (templated; empty means none), at most 30,000
        characters.
    :param mtp_conn_id: the ``mtp`` connection (templated).
    :param api: ``graph`` (or ``legacy``, which refuses) to override the connection's back end.
    :param comment_settle_seconds: how long to keep re-reading the alert for the comment's marker
        after a write with an unknown outcome, and at the start of a retry; ``0`` re-reads once
        (default 60).
    :param comment_settle_interval: seconds between those re-reads (default 10).
    """

    template_fields: Sequence[str] = (
        "alert_id",
        "status",
        "classification",
        "determination",
        "assigned_to",
        "comment",
        "mtp_conn_id",
    )
    operator_extra_links = (DefenderAlertLink(),)
    resource = "alert"
    id_argument = "alert_id"
    link = DefenderAlertLink
    portal = staticmethod(alert_portal_url)
    summarise = staticmethod(alert_summary)

    def __init__(
        self,
        *,
        alert_id: str,
        status: str | None = None,
        classification: str | None = None,
        determination: str | None = None,
        assigned_to: str | None = None,
        **kwargs: Any,
    ) -> None:
        # comment, mtp_conn_id, api and the settle periods: the shared write operator's.
        super().__init__(**kwargs)
        self.alert_id = alert_id
        self.status = status
        self.classification = classification
        self.determination = determination
        self.assigned_to = assigned_to

    def checked_fields(self) -> tuple[dict[str, Any], dict[str, Any]]:
        from airflow_provider_mtp.api.graph_alerts import alert_update_body

        fields: dict[str, Any] = {
            "status": self.status,
            "classification": self.classification,
            "determination": self.determination,
            "assigned_to": self.assigned_to,
        }
        graph_names = {"assigned_to": "assignedTo"}
        try:
            changes = alert_update_body(
                {graph_names.get(name, name): value for name, value in fields.items() if value is not None}
            )
        except MTPConfigError as exc:
            raise MTPConfigError(f"{self.task_id}: {exc}") from None
        return fields, changes

    def refuse_back_end(self, changes: dict[str, Any]) -> None:
        if self.hook.settings.api == "legacy":
            refusal = refuse_alert_update("update" if changes else "comment on")
            raise MTPConfigError(f"{self.task_id}: {refusal}")

    def read(self, resource_id: str) -> dict[str, Any]:
        return self.hook.get_alert(resource_id)

    def send(self, resource_id: str, fields: dict[str, Any], comment: str | None) -> dict[str, Any]:
        return self.hook.update_alert(resource_id, **fields, comment=comment)


class AddAlertCommentOperator(UpdateAlertOperator):
    """Comment on a Defender XDR alert (Microsoft Graph only), once per task instance however often it is retried.

    The comment gets a keyed marker appended and is not posted when the alert already has a
    comment with that marker; after a write with an unknown outcome, and on a retry, the alert is
    re-read for up to ``comment_settle_seconds`` before anything is posted (see
    :class:`UpdateAlertOperator`). Returns the alert's summary. Fails before any call on the legacy
    MTP API, which cannot comment on alerts.

    :param alert_id: the alert (templated).
    :param comment: the comment (templated), at most 30,000 characters.
    :param mtp_conn_id: the ``mtp`` connection (templated).
    :param api: ``graph`` (or ``legacy``, which refuses) to override the connection's back end.
    :param kwargs: ``comment_settle_seconds``, ``comment_settle_interval`` and the
        ``BaseOperator`` arguments.
    """

    def __init__(
        self,
        *,
        alert_id: str,
        comment: str,
        mtp_conn_id: str = "mtp_default",
        api: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(alert_id=alert_id, comment=comment, mtp_conn_id=mtp_conn_id, api=api, **kwargs)
