"""Operator extra links to the Defender portal.

Each operator pushes its link's URL to XCom under the link's own key (:data:`INCIDENT_URL_XCOM_KEY`,
:data:`ALERT_URL_XCOM_KEY`, :data:`HUNTING_URL_XCOM_KEY`) as soon as it knows it (before calling
the API, so the link is there when the call fails too); the link reads it back, as dbt Cloud's
job-run link does. On Airflow 3 the worker calls ``get_link`` when the task finishes and stores
the answer for the UI.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from airflow.sdk import BaseOperatorLink

from airflow_provider_mtp.api.mapping import alert_web_url, incident_web_url
from airflow_provider_mtp.hunting_link import MAX_URL_LENGTH, advanced_hunting_url

if TYPE_CHECKING:
    from airflow.sdk import BaseOperator, Context
    from airflow.sdk.types import TaskInstanceKey

    from airflow_provider_mtp.settings import ConnectionSettings

__all__ = [
    "ALERT_URL_XCOM_KEY",
    "HUNTING_URL_XCOM_KEY",
    "INCIDENT_URL_XCOM_KEY",
    "DefenderAlertLink",
    "DefenderHuntingLink",
    "DefenderIncidentLink",
    "alert_portal_url",
    "hunting_portal_url",
    "incident_portal_url",
]

#: The XCom key holding the incident's portal URL.
INCIDENT_URL_XCOM_KEY = "incident_url"
#: The XCom key holding the alert's portal URL.
ALERT_URL_XCOM_KEY = "alert_url"
#: The XCom key holding the advanced-hunting link of the query a hunting task sent.
HUNTING_URL_XCOM_KEY = "hunting_url"


def incident_portal_url(settings: ConnectionSettings, incident_id: Any) -> str:
    """The incident's page in the portal of the connection's cloud, with ``?tid=<tenant>``.

    :param settings: the connection (its cloud gives the portal host, its tenant the ``tid``).
    :param incident_id: the incident id.
    """
    return incident_web_url(settings.cloud.portal, incident_id, settings.tenant_id)


def alert_portal_url(settings: ConnectionSettings, alert_id: Any) -> str:
    """The alert's page in the portal of the connection's cloud, with ``?tid=<tenant>`` (its ``alertWebUrl``).

    :param settings: the connection (its cloud gives the portal host, its tenant the ``tid``).
    :param alert_id: the alert id.
    """
    return alert_web_url(settings.cloud.portal, alert_id, settings.tenant_id)


def hunting_portal_url(
    settings: ConnectionSettings, query: str, *, max_length: int | None = MAX_URL_LENGTH
) -> str | None:
    """The link opening ``query`` in the advanced-hunting editor of the connection's cloud's portal.

    With ``tid=<tenant>``, as on incident links, and the editor's widest time range (see
    :data:`~airflow_provider_mtp.hunting_link.DEFAULT_TIME_RANGE`). ``None`` when the link would
    be longer than ``max_length``.

    :param settings: the connection (its cloud gives the portal host, its tenant the ``tid``).
    :param query: the KQL, exactly as sent.
    :param max_length: the longest URL returned (``None``: no limit).
    """
    return advanced_hunting_url(
        settings.cloud.portal, query, tenant_id=settings.tenant_id, max_length=max_length
    )


class _XComUrlLink(BaseOperatorLink):
    """A link whose URL the operator pushed to XCom under :attr:`url_key` while it ran."""

    url_key: ClassVar[str]

    @classmethod
    def persist(cls, context: Context, url: str) -> None:
        """Push the URL the link shows.

        :param context: the running task's context.
        :param url: the portal URL.
        """
        context["ti"].xcom_push(key=cls.url_key, value=url)

    def get_link(self, operator: BaseOperator, *, ti_key: TaskInstanceKey) -> str:
        from airflow.sdk.execution_time.xcom import XCom

        url = XCom.get_value(ti_key=ti_key, key=self.url_key)
        return str(url) if url else ""


class DefenderIncidentLink(_XComUrlLink):
    """The "Defender incident" link: the incident the task worked on, in the Microsoft Defender portal."""

    name = "Defender incident"
    url_key = INCIDENT_URL_XCOM_KEY


class DefenderAlertLink(_XComUrlLink):
    """The "Defender alert" link: the alert the task worked on, in the Microsoft Defender portal."""

    name = "Defender alert"
    url_key = ALERT_URL_XCOM_KEY


class DefenderHuntingLink(_XComUrlLink):
    """The "Open in advanced hunting" link: the query the hunting task sent, in the portal's editor.

    Empty when the task made no link (a query too long for a URL: the task log says so).
    """

    name = "Open in advanced hunting"
    url_key = HUNTING_URL_XCOM_KEY
