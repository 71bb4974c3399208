"""Operator extra links to the Defender portal.

The operator pushes the incident's portal URL to XCom under :data:`INCIDENT_URL_XCOM_KEY` as soon
as it knows the incident id (before calling the API, so the link is there when the update fails
too); the link reads it back, as dbt Cloud's job-run link does. On Airflow 3 the worker calls
:meth:`DefenderIncidentLink.get_link` when the task finishes and stores the answer for the UI.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperatorLink

from airflow_provider_mtp.api.mapping import incident_web_url

if TYPE_CHECKING:
    from airflow.sdk import BaseOperator, Context
    from airflow.sdk.types import TaskInstanceKey

    from airflow_provider_mtp.settings import ConnectionSettings

__all__ = ["INCIDENT_URL_XCOM_KEY", "DefenderIncidentLink", "incident_portal_url"]

#: The XCom key holding the incident's portal URL.
INCIDENT_URL_XCOM_KEY = "incident_url"


def incident_portal_url(settings: ConnectionSettings, incident_id: Any) -> str:
    """The incident's page in the portal of the connection's cloud, with ``?tid=<tenant>``.

    :param settings: the connection (its cloud gives the portal host, its tenant the ``tid``).
    :param incident_id: the incident id.
    """
    return incident_web_url(settings.cloud.portal, incident_id, settings.tenant_id)


class DefenderIncidentLink(BaseOperatorLink):
    """The "Defender incident" link: the incident the task worked on, in the Microsoft Defender portal."""

    name = "Defender incident"

    @staticmethod
    def persist(context: Context, url: str) -> None:
        """Push the URL the link shows.

        :param context: the running task's context.
        :param url: the incident's portal URL.
        """
        context["ti"].xcom_push(key=INCIDENT_URL_XCOM_KEY, value=url)

    def get_link(self, operator: BaseOperator, *, ti_key: TaskInstanceKey) -> str:
        from airflow.sdk.execution_time.xcom import XCom

        url = XCom.get_value(ti_key=ti_key, key=INCIDENT_URL_XCOM_KEY)
        return str(url) if url else ""
