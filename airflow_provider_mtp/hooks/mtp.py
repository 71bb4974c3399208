"""MTPHook: a connection of type ``mtp`` turned into calls on Defender XDR's incidents and hunting."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseHook

from airflow_provider_mtp.api import incident_limits
from airflow_provider_mtp.common.jwt_claims import claims
from airflow_provider_mtp.errors import MTPConfigError, MTPError
from airflow_provider_mtp.redact import mask_secrets

if TYPE_CHECKING:
    from airflow_provider_mtp.api.base import SecurityApi, TokenSource
    from airflow_provider_mtp.api.models import HuntingResult
    from airflow_provider_mtp.api.session import ProviderSession
    from airflow_provider_mtp.settings import ConnectionSettings

#: What each back end needs, as ``(what for, permissions of which one will do)``; delegated
#: (user) tokens carry the names without ``.All`` on the MTP API.
NEEDED_PERMISSIONS: dict[str, tuple[tuple[str, tuple[str, ...]], ...]] = {
    "graph": (
        ("read incidents", ("SecurityIncident.Read.All", "SecurityIncident.ReadWrite.All")),
        ("update incidents and add comments", ("SecurityIncident.ReadWrite.All",)),
        ("run hunting queries", ("ThreatHunting.Read.All",)),
    ),
    "legacy": (
        (
            "read incidents",
            ("Incident.Read.All", "Incident.ReadWrite.All", "Incident.Read", "Incident.ReadWrite"),
        ),
        ("update incidents and add comments", ("Incident.ReadWrite.All", "Incident.ReadWrite")),
        ("run hunting queries", ("AdvancedHunting.Read.All", "AdvancedHunting.Read")),
    ),
}
#: The longest throttling wait a hook sleeps through unless told otherwise.
DEFAULT_MAX_WAIT_S = 60.0
API_NAMES = {"graph": "Microsoft Graph", "legacy": "Microsoft Threat Protection"}
#: Comments the hook sends: the operators' own limit plus room for the marker they append.
_HOOK_COMMENT_LIMIT = incident_limits.MAX_COMMENT_CHARS + incident_limits.MARKER_ROOM


class MTPHook(BaseHook):
    """Defender XDR incidents and advanced hunting, on the Graph security API or the legacy MTP API.

    Tokens come from msal and are cached for the whole process; calls are retried when the
    service says so (429 with ``Retry-After``, 5xx, dropped connections); lists are paged lazily.
    Every incident comes back in the Graph shape whichever back end the connection uses.

    :param mtp_conn_id: the ``mtp`` connection to use.
    :param api: ``graph`` or ``legacy`` to override the connection's back end.
    :param max_wait: the longest wait (seconds) the hook sleeps through when the service throttles;
        a longer one raises :class:`~airflow_provider_mtp.errors.MTPThrottledError` at once (a
        deferrable task then defers instead of holding its worker slot). Default 60 s.
    """

    conn_name_attr = "mtp_conn_id"
    default_conn_name = "mtp_default"
    conn_type = "mtp"
    hook_name = "Microsoft Defender XDR"

    def __init__(
        self,
        mtp_conn_id: str = default_conn_name,
        *,
        api: str | None = None,
        max_wait: float | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.mtp_conn_id = mtp_conn_id
        self.api = api
        self.max_wait = max_wait

    # Built on first use: constructing a hook does no I/O.
    @cached_property
    def settings(self) -> ConnectionSettings:
        """The connection, read and validated once per hook."""
        from airflow_provider_mtp.settings import ConnectionSettings, parse_extra

        conn = self.get_connection(self.mtp_conn_id)
        # extra_dejson turns JSON it cannot parse into {}, which would read as "tenant_id is empty".
        parse_extra(self.mtp_conn_id, conn.extra)
        extra = dict(conn.extra_dejson)
        if self.api:
            extra["api"] = self.api
        settings = ConnectionSettings.from_connection(
            conn_id=self.mtp_conn_id, login=conn.login, password=conn.password, extra=extra
        )
        mask_secrets(settings.secrets())
        return settings

    @cached_property
    def session(self) -> ProviderSession:
        """The one HTTP session of this hook, shared by msal and the API calls."""
        from airflow_provider_mtp.api.session import ProviderSession, ssl_context

        settings = self.settings
        # A bad ca_bundle is named before any request: requests would raise a bare OSError.
        ssl_context(settings)
        return ProviderSession(ca_bundle=settings.ca_bundle, proxy=settings.proxy, timeout=settings.timeouts)

    @cached_property
    def tokens(self) -> TokenSource:
        from airflow_provider_mtp.auth import get_token_source

        return get_token_source(self.settings, self.session)

    @cached_property
    def client(self) -> SecurityApi:
        """The back end the connection names, speaking the Graph shape."""
        from airflow_provider_mtp.api.graph import GraphSecurityApi
        from airflow_provider_mtp.api.legacy import LegacyMtpApi
        from airflow_provider_mtp.api.transport import Transport

        settings = self.settings
        transport = Transport(
            origin=settings.api_origin,
            tokens=self.tokens,
            session=self.session,
            dialect="graph" if settings.api == "graph" else "legacy",
            allowed_hosts=settings.allowed_hosts,
            timeout=settings.timeouts,
            max_wait=DEFAULT_MAX_WAIT_S if self.max_wait is None else float(self.max_wait),
        )
        if settings.api == "graph":
            return GraphSecurityApi(transport=transport)
        # tenantId comes from the token's tid claim, as Graph's does: the connection may name the
        # tenant by a domain (contoso.onmicrosoft.com), and managed identity names none.
        return LegacyMtpApi(transport=transport, portal=settings.cloud.portal)

    def get_conn(self) -> SecurityApi:
        """The back-end client (Airflow's generic accessor)."""
        return self.client

    # Incidents
    def list_incidents(
        self,
        *,
        status: str | Sequence[str] | None = None,
        severity: str | Sequence[str] | None = None,
        assigned_to: str | None = None,
        created_from: datetime | str | None = None,
        created_before: datetime | str | None = None,
        updated_from: datetime | str | None = None,
        updated_before: datetime | str | None = None,
        include_alerts: bool = False,
        page_size: int | None = None,
        odata_filter: str | None = None,
    ) -> Iterator[dict[str, Any]]:
        """Incidents in the Graph shape, fetched a page at a time as you iterate.

        Time ranges are half-open: ``from`` is included, ``before`` is not. A string bound is sent
        exactly as given, so a 7-digit timestamp from an incident is not rounded.

        :param status: one status or several (``active``, ``inProgress``, ``resolved``, ``redirected``).
        :param severity: one severity or several (``informational``, ``low``, ``medium``, ``high``);
            on the legacy API filtered after fetching, since it cannot filter on severity.
        :param assigned_to: the assignee's user principal name.
        :param created_from: created at or after.
        :param created_before: created before.
        :param updated_from: last updated at or after.
        :param updated_before: last updated before.
        :param include_alerts: embed each incident's alerts (always there on the legacy API).
        :param page_size: incidents per request (at most 50 on Graph, 100 on legacy).
        :param odata_filter: a raw ``$filter`` clause ANDed to the others; written for the back end
            in use (Graph and legacy field names differ).
        """
        yield from self.client.list_incidents(
            status=as_list(status),
            severity=as_list(severity),
            assigned_to=assigned_to,
            created_from=created_from,
            created_before=created_before,
            updated_from=updated_from,
            updated_before=updated_before,
            include_alerts=include_alerts,
            page_size=page_size,
            odata_filter=odata_filter,
        )

    def get_incident(self, incident_id: str | int, *, include_alerts: bool = True) -> dict[str, Any]:
        """One incident in the Graph shape; :class:`~airflow_provider_mtp.errors.MTPNotFoundError` if unknown.

        :param incident_id: the incident id.
        :param include_alerts: embed its alerts.
        """
        return self.client.get_incident(str(incident_id), include_alerts=include_alerts)

    def update_incident(
        self,
        incident_id: str | int,
        *,
        status: str | None = None,
        assigned_to: str | None = None,
        classification: str | None = None,
        determination: str | None = None,
        tags: Sequence[str] | None = None,
        comment: str | None = None,
    ) -> dict[str, Any]:
        """Change an incident; values are checked before any call, in either API's spelling.

        :param incident_id: the incident id.
        :param status: ``active``, ``inProgress``, ``resolved`` or ``redirected``.
        :param assigned_to: the new assignee; ``""`` unassigns.
        :param classification: ``truePositive``, ``falsePositive``, ``informationalExpectedActivity``
            or ``unknown``.
        :param determination: e.g. ``malware``, ``phishing``, ``multiStagedAttack``,
            ``compromisedAccount`` (``compromisedUser`` too), ``securityTesting``, ``clean``.
        :param tags: the incident's custom tags, replacing the current ones.
        :param comment: a comment to add. Not idempotent: the service adds it again if called again.
        :return: the updated incident in the Graph shape.
        """
        from airflow_provider_mtp.api.mapping import graph_update_body

        try:
            changes = graph_update_body(
                status=status,
                assigned_to=assigned_to,
                classification=classification,
                determination=determination,
                tags=incident_limits.check_tags(tags) if tags is not None else None,
            )
            if comment is not None:
                incident_limits.check_comment(comment, limit=_HOOK_COMMENT_LIMIT)
        except ValueError as exc:
            raise MTPConfigError(f"update_incident({incident_id!r}): {exc}") from exc
        return self.client.update_incident(str(incident_id), changes, comment=comment)

    def add_incident_comment(self, incident_id: str | int, text: str) -> list[dict[str, Any]]:
        """Add a comment; every comment of the incident afterwards.

        :param incident_id: the incident id.
        :param text: the comment, at most about 30,000 characters
            (:data:`~airflow_provider_mtp.api.incident_limits.MAX_COMMENT_CHARS`).
        """
        try:
            incident_limits.check_comment(text, name="text", limit=_HOOK_COMMENT_LIMIT)
        except ValueError as exc:
            raise MTPConfigError(f"add_incident_comment({incident_id!r}): {exc}") from exc
        return self.client.add_incident_comment(str(incident_id), text)

    # Hunting
    def run_hunting_query(self, query: str, *, timespan: str | None = None) -> HuntingResult:
        """Run advanced-hunting KQL; the result's ``rows`` stream as you iterate them (once).

        :param query: the KQL.
        :param timespan: Graph only: an ISO 8601 interval or duration (``P1D``,
            ``2024-02-01T00:00:00Z/2024-02-02T00:00:00Z``) narrowing the data; on the legacy API put
            the time bounds in the KQL.
        """
        return self.client.run_hunting_query(query, timespan=timespan)

    # Connection test (UI "Test" button)
    def test_connection(self) -> tuple[bool, str]:
        """Get a token, read one incident, and report which permissions the app is missing."""
        try:
            settings = self.settings
            token = self.tokens.token()
            next(iter(self.client.list_incidents(page_size=1)), None)
        except MTPError as exc:
            return False, str(exc)
        except Exception as exc:
            return False, f"{type(exc).__name__}: {exc}"
        granted = _token_permissions(token)
        missing = [
            (purpose, any_of[0])
            for purpose, any_of in NEEDED_PERMISSIONS[settings.api]
            if not granted & set(any_of)
        ]
        api_name = API_NAMES[settings.api]
        message = f"Connected to the {api_name} API and read incidents."
        if missing:
            names = ", ".join(f"{name} (to {purpose})" for purpose, name in missing)
            message += (
                f" Missing permissions: {names}. Grant them to the app in Entra ID (API permissions > "
                f"{api_name}) and grant admin consent."
            )
        return True, message


def as_list(value: str | Sequence[str] | None) -> list[str] | None:
    """One value or several, as a list (``None`` stays ``None``); shared with the async hook."""
    if value is None:
        return None
    return [value] if isinstance(value, str) else list(value)


def _token_permissions(token: str) -> set[str]:
    """The ``roles`` and ``scp`` of an access token (read, not verified: it only informs a message)."""
    read = claims(token) or {}
    return set(read.get("roles") or ()) | set(str(read.get("scp") or "").split())
