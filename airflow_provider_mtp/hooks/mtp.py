"""MTPHook: a connection of type ``mtp`` turned into calls on Defender XDR's incidents and hunting."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from airflow.sdk import BaseHook

from airflow_provider_mtp.api import incident_limits
from airflow_provider_mtp.common.jwt_claims import claims
from airflow_provider_mtp.errors import MTPConfigError, MTPError
from airflow_provider_mtp.redact import mask_secrets

if TYPE_CHECKING:
    from airflow_provider_mtp.api.alert_query import AlertQuery
    from airflow_provider_mtp.api.base import SecurityApi, TokenSource
    from airflow_provider_mtp.api.client import SecurityClient
    from airflow_provider_mtp.api.incident_query import IncidentQuery
    from airflow_provider_mtp.api.models import HuntingResult
    from airflow_provider_mtp.api.session import ProviderSession
    from airflow_provider_mtp.api.transport import Transport
    from airflow_provider_mtp.settings import ConnectionSettings

#: What each back end needs, as ``(what for, permissions of which one will do)``; delegated
#: (user) tokens carry the names without ``.All`` on the MTP API.
NEEDED_PERMISSIONS: dict[str, tuple[tuple[str, tuple[str, ...]], ...]] = {
    "graph": (
        ("read incidents", ("SecurityIncident.Read.All", "SecurityIncident.ReadWrite.All")),
        ("update incidents and add comments", ("SecurityIncident.ReadWrite.All",)),
        ("run hunting queries", ("ThreatHunting.Read.All",)),
        ("read alerts (AlertSensor, list_alerts)", ("SecurityAlert.Read.All", "SecurityAlert.ReadWrite.All")),
        ("update alerts and comment on them (UpdateAlertOperator)", ("SecurityAlert.ReadWrite.All",)),
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
#: The methods :meth:`MTPHook.call` sends.
CALL_METHODS = ("GET", "POST", "PATCH", "PUT", "DELETE")
#: Comments the hook sends: the operators' own limit plus room for the marker they append.
_HOOK_COMMENT_LIMIT = incident_limits.MAX_COMMENT_CHARS + incident_limits.MARKER_ROOM


class MTPHook(BaseHook):
    """Defender XDR incidents and advanced hunting, on the Graph security API or the legacy MTP API.

    Tokens come from msal and are cached for the whole process; calls are retried when the
    service says so (429 with ``Retry-After``, 5xx, dropped connections); lists are paged lazily.
    Every incident comes back in the Graph shape whichever back end the connection uses. Enum
    arguments take strings in either API's spelling or the members of
    :mod:`airflow_provider_mtp.enums` (``status=IncidentStatus.RESOLVED``). Endpoints the hook does
    not wrap are reached with :meth:`call`; :meth:`close` (or ``with MTPHook() as hook:``) closes
    the hook's HTTP session.

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
    def backend(self) -> SecurityApi:
        """The back end the connection names: a description of its calls, with no I/O."""
        from airflow_provider_mtp.api.graph import GraphSecurityApi
        from airflow_provider_mtp.api.legacy import LegacyMtpApi

        settings = self.settings
        if settings.api == "graph":
            return GraphSecurityApi()
        # tenantId comes from the token's tid claim, as Graph's does: the connection may name the
        # tenant by a domain (contoso.onmicrosoft.com), and managed identity names none.
        return LegacyMtpApi(portal=settings.cloud.portal, tenant=self._token_tenant)

    @cached_property
    def transport(self) -> Transport:
        """Authenticated, retrying calls to the back end's origin (shared by :attr:`client` and :meth:`call`)."""
        from airflow_provider_mtp.api.transport import Transport

        settings = self.settings
        return Transport(
            origin=settings.api_origin,
            tokens=self.tokens,
            session=self.session,
            identity=self.backend.identity,
            allowed_hosts=settings.allowed_hosts,
            timeout=settings.timeouts,
            max_wait=DEFAULT_MAX_WAIT_S if self.max_wait is None else float(self.max_wait),
        )

    @cached_property
    def client(self) -> SecurityClient:
        """The back end run over the sync transport, speaking the Graph shape."""
        from airflow_provider_mtp.api.client import SecurityClient

        return SecurityClient(api=self.backend, transport=self.transport)

    def get_conn(self) -> SecurityClient:
        """The back-end client (Airflow's generic accessor)."""
        return self.client

    def close(self) -> None:
        """Close the hook's HTTP session (its pooled connections); idempotent.

        The hook stays usable: a later call opens a new session. ``with MTPHook() as hook:``
        closes it on leaving the block.
        """
        built = vars(self)  # only what was built: closing must not open a session first
        for name in ("client", "transport", "tokens", "backend", "_tenant"):
            built.pop(name, None)
        session = built.pop("session", None)
        if session is not None:
            session.close()

    def _token_tenant(self) -> str | None:
        """The directory id in the access token's ``tid`` claim, read once per hook."""
        if "_tenant" not in vars(self):
            from airflow_provider_mtp.api.legacy import token_tenant

            self._tenant = token_tenant(self.tokens.token())
        return self._tenant

    def __enter__(self) -> MTPHook:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # Incidents
    def list_incidents(
        self, query: IncidentQuery | None = None, /, **filters: Any
    ) -> Iterator[dict[str, Any]]:
        """Incidents in the Graph shape, fetched a page at a time as you iterate.

        Pass an :class:`~airflow_provider_mtp.api.incident_query.IncidentQuery`, or its fields as
        keywords (``hook.list_incidents(status="active", severity=["high", "medium"])``): status,
        severity, assigned_to, classification, tags, created_from, created_before, updated_from,
        updated_before, odata_filter, include_alerts and page_size. Time ranges are half-open:
        ``from`` is included, ``before`` is not. A string bound is sent exactly as given, so a
        7-digit timestamp from an incident is not rounded. Severity is filtered after fetching on
        the legacy API, classification and tags on both. Arguments are checked before any call.

        :param query: the query; ``None`` to build one from ``filters``.
        :param filters: the query's fields, when no query is given.
        """
        from airflow_provider_mtp.api.incident_query import IncidentQuery

        yield from self.client.list_incidents(IncidentQuery.of(query, **filters))

    def check_incident_query(self, query: IncidentQuery) -> None:
        """Check ``query`` against the rules of the connection's back end, with no call to the service.

        :raises MTPConfigError: a value this back end does not accept (an enum spelling, a time).
        """
        self.backend.incident_listing(query)

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
        changes = incident_changes(
            incident_id,
            status=status,
            assigned_to=assigned_to,
            classification=classification,
            determination=determination,
            tags=tags,
            comment=comment,
        )
        return self.client.update_incident(str(incident_id), changes, comment=comment)

    def add_incident_comment(self, incident_id: str | int, text: str) -> list[dict[str, Any]]:
        """Add a comment; every comment of the incident afterwards.

        :param incident_id: the incident id.
        :param text: the comment, at most about 30,000 characters
            (:data:`~airflow_provider_mtp.api.incident_limits.MAX_COMMENT_CHARS`).
        """
        checked_comment(incident_id, text)
        return self.client.add_incident_comment(str(incident_id), text)

    # Alerts
    def list_alerts(self, query: AlertQuery | None = None, /, **filters: Any) -> Iterator[dict[str, Any]]:
        """Alerts in the Graph ``alerts_v2`` shape, fetched a page at a time as you iterate.

        Pass an :class:`~airflow_provider_mtp.api.alert_query.AlertQuery`, or its fields as
        keywords (``hook.list_alerts(severity=["high", "medium"], updated_from=...)``): status,
        severity, service_source, detection_source, classification, determination, assigned_to,
        incident_id, created_from, created_before, updated_from, updated_before, odata_filter and
        page_size. Time ranges are half-open and apply to each alert's own times. Each
        ``(id, lastUpdateDateTime)`` comes once, and an alert analysts leave alone is not missed
        while they update others. On the legacy API (no alerts endpoint) the alerts come from the
        incidents that embed them, filtered here. Arguments are checked before any call.

        :param query: the query; ``None`` to build one from ``filters``.
        :param filters: the query's fields, when no query is given.
        """
        from airflow_provider_mtp.api.alert_query import AlertQuery

        yield from self.client.list_alerts(AlertQuery.of(query, **filters))

    def check_alert_query(self, query: AlertQuery) -> None:
        """Check ``query`` against the rules of the connection's back end, with no call to the service.

        :raises MTPConfigError: a value this back end does not accept.
        """
        self.backend.alert_listing(query)

    def get_alert(self, alert_id: str, *, incident_id: str | int | None = None) -> dict[str, Any]:
        """One alert in the ``alerts_v2`` shape; :class:`~airflow_provider_mtp.errors.MTPNotFoundError` if unknown.

        :param alert_id: the alert id.
        :param incident_id: its incident (the alert's ``incidentId``): required on the legacy API,
            which reads alerts only through their incident; ignored on Graph.
        """
        return self.client.get_alert(alert_id, incident_id=_optional_id(incident_id))

    def update_alert(
        self,
        alert_id: str,
        *,
        status: str | None = None,
        classification: str | None = None,
        determination: str | None = None,
        assigned_to: str | None = None,
        comment: str | None = None,
    ) -> dict[str, Any]:
        """Change an alert (Graph only); values are checked before any call, in either API's spelling.

        :param alert_id: the alert id.
        :param status: ``new``, ``inProgress`` or ``resolved``.
        :param classification: ``truePositive``, ``falsePositive``, ``informationalExpectedActivity``
            or ``unknown``.
        :param determination: e.g. ``malware``, ``phishing``, ``securityTesting``, ``clean``.
        :param assigned_to: the new assignee; ``""`` unassigns.
        :param comment: a comment to add. Not idempotent: the service adds it again if called again.
        :return: the updated alert.
        :raises MTPConfigError: before any call, for an unknown value, or on the legacy API (it
            cannot update alerts: use ``api="graph"``).
        """
        changes = alert_changes(
            alert_id,
            status=status,
            classification=classification,
            determination=determination,
            assigned_to=assigned_to,
            comment=comment,
        )
        return self.client.update_alert(alert_id, changes, comment=comment)

    def add_alert_comment(self, alert_id: str, text: str) -> list[dict[str, Any]]:
        """Add a comment to an alert (Graph only); every comment of the alert afterwards.

        :param alert_id: the alert id.
        :param text: the comment.
        """
        checked_comment(alert_id, text, method="add_alert_comment")
        return self.client.add_alert_comment(alert_id, text)

    # Hunting
    def run_hunting_query(self, query: str, *, timespan: str | None = None) -> HuntingResult:
        """Run advanced-hunting KQL; the result's ``rows`` stream as you iterate them (once).

        :param query: the KQL.
        :param timespan: Graph only: an ISO 8601 interval or duration (``P1D``,
            ``2024-02-01T00:00:00Z/2024-02-02T00:00:00Z``) narrowing the data; on the legacy API put
            the time bounds in the KQL.
        """
        return self.client.run_hunting_query(query, timespan=timespan)

    # Any other endpoint
    def call(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        paginate: bool = False,
        idempotent: bool | None = None,
        permission: str | None = None,
    ) -> Any:
        """Call an endpoint the hook does not wrap yet, with the hook's tokens, retries and errors.

        For the Graph security API's other resources, e.g. ``hook.call("GET", "secureScores")``
        (incidents, alerts and hunting have their own methods, which stay exact while data
        changes)::

            with MTPHook() as hook:
                for score in hook.call("GET", "secureScores", params={"$top": 50}, paginate=True):
                    ...

        A relative ``path`` goes under ``/v1.0/security/`` on Graph and under ``/api/`` on the
        legacy API (the back end's ``call_base_path``); a path starting with ``/`` is taken from the API's
        origin as it is (``/beta/security/...``, ``/v1.0/...``). An absolute URL is accepted only on
        the API's own host: the token is never sent elsewhere. Replies come back as the service
        sends them (Graph's own shape, no mapping between the two APIs).

        Retries are those of every other call: 429 and 5xx as the service asks, dropped
        connections, a refreshed token after a 401. A call that is not idempotent is not sent
        again once it may have reached the service (a timeout after sending, a 5xx). Errors are
        the same :class:`~airflow_provider_mtp.errors.MTPError` family: ``MTPNotFoundError`` for a
        404, ``MTPPermissionError`` for a 403 (naming ``permission``), ``MTPThrottledError`` when
        the service asks for a longer wait than the hook's ``max_wait``.

        :param method: ``GET``, ``POST``, ``PATCH``, ``PUT`` or ``DELETE``.
        :param path: a path relative to the back end's base (``alerts_v2``,
            ``incidents/42``), a path from the origin (``/v1.0/security/alerts_v2``), or a URL on
            the API's own host.
        :param params: query parameters (``$filter``, ``$top``, ...).
        :param json: a JSON body.
        :param paginate: ``GET`` a collection and follow its ``@odata.nextLink``: the result is then
            an iterator over the items of every page, fetched a page at a time as you iterate.
            This is offset paging, for collections that do not change while they are read (an
            item that changes may be skipped or seen twice); list incidents with
            :meth:`list_incidents`, which stays exact while incidents change.
        :param idempotent: whether sending the call twice is harmless. Defaults to ``True`` for
            ``GET`` only; say ``True`` for a ``PUT``/``PATCH``/``DELETE`` that is, so it is retried
            after an unknown outcome too.
        :param permission: the permission the call needs, named in a 403's message when the
            service names none (e.g. ``SecurityAlert.Read.All``).
        :return: the decoded JSON body (``None`` for an empty reply, text for a non-JSON one); with
            ``paginate``, an iterator of items.
        :raises MTPConfigError: before any call, for an unknown method, an empty path, a URL on
            another host, or ``paginate`` with a method other than ``GET``.
        """
        verb = method.upper() if isinstance(method, str) else ""
        if verb not in CALL_METHODS:
            raise MTPConfigError(f"call(): method must be one of {', '.join(CALL_METHODS)}, got {method!r}.")
        if paginate and verb != "GET":
            raise MTPConfigError(
                f"call(): paginate=True reads a collection with GET, got method {verb}. Use GET, or "
                "paginate=False for a single call."
            )
        target = self._call_target(path)
        if paginate:
            return self._call_pages(target, params, permission)
        from airflow_provider_mtp.api.request import ApiRequest

        return self.transport.send(
            ApiRequest(
                method=verb,
                path=target,
                params=params,
                json=json,
                idempotent=verb == "GET" if idempotent is None else bool(idempotent),
                permission=permission,
                reply="body",
            )
        )

    def _call_target(self, path: str) -> str:
        """The path (or same-host URL) :meth:`call` sends to; refuses other hosts before any call."""
        example = "'alerts_v2' or '/v1.0/security/alerts_v2'"
        if not isinstance(path, str) or not path.strip():
            raise MTPConfigError(f"call(): path must be a non-empty string such as {example}, got {path!r}.")
        path = path.strip()
        parts, origin = urlsplit(path), urlsplit(self.transport.origin)
        if parts.scheme or parts.netloc:
            ports = {"https": 443, "http": 80}
            try:
                port = parts.port or ports.get(parts.scheme)
            except ValueError:
                port = None
            same = (parts.scheme, (parts.hostname or "").lower(), port) == (
                origin.scheme,
                (origin.hostname or "").lower(),
                origin.port or ports.get(origin.scheme),
            )
            if not same:
                # The host only: a URL's query string may hold data the caller did not mean to log.
                raise MTPConfigError(
                    f"call(): path is a URL on {parts.hostname or 'another host'}, not on the API's host "
                    f"{origin.hostname}: the token is only sent to the API. Pass a path such as {example}."
                )
            return path
        if path.startswith("/"):
            return path
        return self.backend.call_base_path + path

    def _call_pages(
        self, path: str, params: Mapping[str, Any] | None, permission: str | None
    ) -> Iterator[Any]:
        for page in self.transport.iter_graph_pages(path, params, permission=permission):
            yield from page

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


def incident_changes(
    incident_id: str | int,
    *,
    status: str | None = None,
    assigned_to: str | None = None,
    classification: str | None = None,
    determination: str | None = None,
    tags: Sequence[str] | None = None,
    comment: str | None = None,
) -> dict[str, Any]:
    """The Graph-named changes of an ``update_incident`` call, checked before any call (both hooks).

    :raises MTPConfigError: an unknown value, too many or too long tags, too long a comment.
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
    return changes


def checked_comment(item_id: str | int, text: str, *, method: str = "add_incident_comment") -> None:
    """Refuse a comment the service would refuse (blank, too long), before any call (both hooks).

    :raises MTPConfigError: the comment is not a non-blank string within the limit.
    """
    try:
        incident_limits.check_comment(text, name="text", limit=_HOOK_COMMENT_LIMIT)
    except ValueError as exc:
        raise MTPConfigError(f"{method}({item_id!r}): {exc}") from exc


def alert_changes(
    alert_id: str,
    *,
    status: str | None = None,
    classification: str | None = None,
    determination: str | None = None,
    assigned_to: str | None = None,
    comment: str | None = None,
) -> dict[str, Any]:
    """The Graph-named changes of an ``update_alert`` call, checked before any call (both hooks).

    :raises MTPConfigError: an unknown value, too long a comment.
    """
    from airflow_provider_mtp.api.graph_alerts import alert_update_body

    fields = {
        "status": status,
        "classification": classification,
        "determination": determination,
        "assignedTo": assigned_to,
    }
    try:
        changes = alert_update_body({name: value for name, value in fields.items() if value is not None})
        if comment is not None:
            incident_limits.check_comment(comment, limit=_HOOK_COMMENT_LIMIT)
    except ValueError as exc:
        raise MTPConfigError(f"update_alert({alert_id!r}): {exc}") from exc
    return changes


def _optional_id(value: str | int | None) -> str | None:
    return None if value is None else str(value)


def _token_permissions(token: str) -> set[str]:
    """The ``roles`` and ``scp`` of an access token (read, not verified: it only informs a message)."""
    read = claims(token) or {}
    return set(read.get("roles") or ()) | set(str(read.get("scp") or "").split())
