"""The one documented mapping between the legacy MTP API and the Graph security API.

design.md asks for the legacy <-> Graph mapping to live in one place (it names ``api/legacy.py``).
That place is this pure module (data and pure functions, no Airflow, no I/O) instead, so that the
client's legacy back end (``api/legacy.py``) and the emulator (which keeps one Graph-shape store
and serves the legacy view from it) import the same table and cannot drift apart. The source is
defender-api.md sections 4.2, 5 and 6.

Reads never fail: an enum value the tables do not know (the services add values over time) passes
through unchanged. Writes validate: :func:`graph_update_body` and :func:`legacy_update_body` raise
:class:`ValueError` naming the accepted values.

What the legacy API cannot carry
--------------------------------
``incident_to_graph(incident_to_legacy(g), tenant_id=g["tenantId"], portal=...)`` equals ``g`` on
every field the legacy API carries. The rest comes back as follows:

* incident: ``tenantId`` comes from the argument and ``incidentWebUrl`` is derived from the portal,
  the id and the tenant; :data:`INCIDENT_FIELDS_LOST_BY_LEGACY` come back ``None`` (``systemTags``
  as ``[]``).
* alert: ``tenantId``, ``alertWebUrl`` and ``incidentWebUrl`` are derived; ``providerAlertId``
  comes back equal to ``id``; :data:`ALERT_FIELDS_LOST_BY_LEGACY` come back ``None`` or ``[]``.
* evidence: :data:`EVIDENCE_FIELDS_LOST_BY_LEGACY` come back ``None`` or ``[]`` (device evidence
  keeps ``tags``); nested keys without a legacy entity key (``fileDetails.fileSize``, a user's
  ``displayName``, ...) are dropped; device evidence comes first, then the rest in order.
* enums: the Graph synonym ``notMalicious`` has no MTP spelling and comes back as ``clean``.

Legacy fields Graph has no place for (alert ``investigationId``/``investigationState``, device
``osProcessor``, entity ``deviceId`` outside file, process and registry-value evidence) are dropped
on the way to Graph and come back ``None``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple
from urllib.parse import quote

__all__ = [
    "ALERT_FIELDS_LOST_BY_LEGACY",
    "ALERT_STATUS",
    "CLASSIFICATION",
    "DETECTION_SOURCE",
    "DETERMINATION",
    "DEVICE_KEYS",
    "ENTITY_KEYS",
    "EVIDENCE_FIELDS_LOST_BY_LEGACY",
    "GRAPH_TO_LEGACY_FILTER_FIELDS",
    "INCIDENT_FIELDS_LOST_BY_LEGACY",
    "INCIDENT_STATUS",
    "LEGACY_TO_GRAPH_FILTER_FIELDS",
    "SERVICE_SOURCE",
    "SEVERITY",
    "EnumMap",
    "alert_to_graph",
    "alert_to_legacy",
    "graph_update_body",
    "incident_to_graph",
    "incident_to_legacy",
    "incident_web_url",
    "legacy_update_body",
]

JsonDict = dict[str, Any]


# --------------------------------------------------------------------------------------------------
# Enums
# --------------------------------------------------------------------------------------------------


class EnumMap:
    """One enum in both dialects: MTP PascalCase and Graph camelCase.

    Pairs are ``(mtp, graph)``. A spelling may appear in several pairs (synonyms); in each
    direction the first pair that names it wins, which is how a synonym maps to the canonical
    spelling of the other side. Lookups ignore case.

    :param name: what the enum is called in error messages.
    :param pairs: ``(mtp, graph)`` spellings.
    """

    def __init__(self, name: str, pairs: Iterable[tuple[str, str]]) -> None:
        self.name = name
        self.pairs: tuple[tuple[str, str], ...] = tuple(pairs)
        self._to_graph: dict[str, str] = {}
        self._to_legacy: dict[str, str] = {}
        # Own-dialect spellings are filled after the other dialect's so that, for a word both
        # dialects use, the direct translation wins over the identity.
        for legacy, graph in self.pairs:
            self._to_graph.setdefault(legacy.casefold(), graph)
            self._to_legacy.setdefault(graph.casefold(), legacy)
        for legacy, graph in self.pairs:
            self._to_graph.setdefault(graph.casefold(), graph)
            self._to_legacy.setdefault(legacy.casefold(), legacy)

    @property
    def graph_values(self) -> tuple[str, ...]:
        """Every Graph spelling, in table order."""
        return _unique(graph for _, graph in self.pairs)

    @property
    def legacy_values(self) -> tuple[str, ...]:
        """Every MTP spelling, in table order."""
        return _unique(legacy for legacy, _ in self.pairs)

    def to_graph(self, value: Any) -> Any:
        """The Graph spelling of ``value`` (either dialect, any case); unknown values unchanged.

        :param value: an enum value as received; ``None`` and non-strings pass through.
        """
        if not isinstance(value, str):
            return value
        return self._to_graph.get(value.casefold(), value)

    def to_legacy(self, value: Any) -> Any:
        """The MTP spelling of ``value`` (either dialect, any case); unknown values unchanged.

        :param value: an enum value as received; ``None`` and non-strings pass through.
        """
        if not isinstance(value, str):
            return value
        return self._to_legacy.get(value.casefold(), value)

    def require_graph(self, value: Any) -> str:
        """Like :meth:`to_graph`, but an unknown value raises.

        :param value: an enum value to write.
        :raises ValueError: the value is not a known spelling; the message lists the accepted ones.
        """
        if isinstance(value, str) and value.casefold() in self._to_graph:
            return self._to_graph[value.casefold()]
        raise ValueError(self._invalid(value, self.graph_values, self.legacy_values))

    def require_legacy(self, value: Any) -> str:
        """Like :meth:`to_legacy`, but an unknown value raises.

        :param value: an enum value to write.
        :raises ValueError: the value is not a known spelling; the message lists the accepted ones.
        """
        if isinstance(value, str) and value.casefold() in self._to_legacy:
            return self._to_legacy[value.casefold()]
        raise ValueError(self._invalid(value, self.legacy_values, self.graph_values))

    def _invalid(self, value: Any, primary: tuple[str, ...], other: tuple[str, ...]) -> str:
        known = {spelling.casefold() for spelling in primary}
        aliases = [spelling for spelling in other if spelling.casefold() not in known]
        message = f"Invalid {self.name} {value!r}. Accepted values (case-insensitive): {', '.join(primary)}"
        if aliases:
            message += f"; also accepted: {', '.join(aliases)}"
        return message + "."

    def __repr__(self) -> str:
        return f"EnumMap({self.name!r}, {len(self.pairs)} pairs)"


def _unique(values: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(values))


def _same_word(*words: str) -> list[tuple[str, str]]:
    """Pairs for words whose spellings differ only in the case of the first letter."""
    return [(word, word[0].lower() + word[1:]) for word in words]


#: Incident ``status``. Graph-only ``unknownFutureValue`` and ``awaitingAction`` pass through.
INCIDENT_STATUS = EnumMap("incident status", _same_word("Active", "InProgress", "Resolved", "Redirected"))

#: Incident and alert ``severity``; MTP ``UnSpecified`` is Graph ``unknown``.
SEVERITY = EnumMap(
    "severity", [("UnSpecified", "unknown"), *_same_word("Informational", "Low", "Medium", "High")]
)

#: Alert ``status``. The MTP property table also names ``Active`` beside ``New`` and ``Resolved``
#: (in the slot the other pages give ``InProgress``), so it reads as ``inProgress``; ``Unknown`` is
#: the MDE spelling of Graph's ``unknown``.
ALERT_STATUS = EnumMap(
    "alert status", [*_same_word("Unknown", "New", "InProgress", "Resolved"), ("Active", "inProgress")]
)

#: Incident and alert ``classification``.
CLASSIFICATION = EnumMap(
    "classification",
    _same_word("Unknown", "FalsePositive", "TruePositive", "InformationalExpectedActivity"),
)

#: ``determination``, every spelling the documents use (defender-api.md section 5). The pages
#: disagree, so both spellings of each synonym pair are kept and echoed; only Graph's
#: ``notMalicious`` has no MTP twin and becomes ``Clean``.
DETERMINATION = EnumMap(
    "determination",
    [
        ("NotAvailable", "unknown"),
        *_same_word(
            "Apt",
            "Malware",
            "SecurityPersonnel",
            "SecurityTesting",
            "UnwantedSoftware",
            "Other",
            "MultiStagedAttack",
            "MaliciousUserActivity",
            "CompromisedAccount",
            "CompromisedUser",
            "Phishing",
            "LineOfBusinessApplication",
            "ConfirmedActivity",
            "ConfirmedUserActivity",
            "Clean",
        ),
        ("Clean", "notMalicious"),
        ("NoEnoughDataToValidate", "notEnoughDataToValidate"),
        ("InsufficientData", "insufficientData"),
    ],
)

#: Alert ``serviceSource`` (defender-api.md section 6, a recommended mapping); Graph values with no
#: MTP name (``microsoftSentinel``, ...) pass through.
SERVICE_SOURCE = EnumMap(
    "service source",
    [
        ("MicrosoftDefenderATP", "microsoftDefenderForEndpoint"),
        ("MicrosoftDefenderForEndpoint", "microsoftDefenderForEndpoint"),
        ("MicrosoftCloudAppSecurity", "microsoftDefenderForCloudApps"),
        ("OfficeATP", "microsoftDefenderForOffice365"),
    ],
)

#: Alert ``detectionSource``: the MTP values defender-api.md observed, paired with Graph's names
#: for the same detector (a recommendation, not a documented table); others pass through.
DETECTION_SOURCE = EnumMap(
    "detection source",
    [
        ("WindowsDefenderAv", "antivirus"),
        ("MCAS", "cloudAppSecurity"),
        ("OfficeATP", "microsoftDefenderForOffice365"),
        ("AutomatedInvestigation", "automatedInvestigation"),
    ],
)


def _camel(value: Any) -> Any:
    """Graph spelling of an enum the tables do not list, where the dialects differ only in case."""
    return value[:1].lower() + value[1:] if isinstance(value, str) else value


def _pascal(value: Any) -> Any:
    return value[:1].upper() + value[1:] if isinstance(value, str) else value


# --------------------------------------------------------------------------------------------------
# Filters
# --------------------------------------------------------------------------------------------------

#: ``$filter`` field names: Graph incidents -> ``/api/incidents`` (the four MTP can filter on).
GRAPH_TO_LEGACY_FILTER_FIELDS: Mapping[str, str] = {
    "lastUpdateDateTime": "lastUpdateTime",
    "createdDateTime": "createdTime",
    "status": "status",
    "assignedTo": "assignedTo",
}

#: The reverse of :data:`GRAPH_TO_LEGACY_FILTER_FIELDS`.
LEGACY_TO_GRAPH_FILTER_FIELDS: Mapping[str, str] = {
    legacy: graph for graph, legacy in GRAPH_TO_LEGACY_FILTER_FIELDS.items()
}


# --------------------------------------------------------------------------------------------------
# Evidence: legacy devices[] and entities[] <-> Graph evidence[]
# --------------------------------------------------------------------------------------------------

_ODATA_PREFIX = "#microsoft.graph.security."

#: Every key an MTP alert entity carries (``null`` where it does not apply), in documented order.
ENTITY_KEYS: tuple[str, ...] = (
    "entityType",
    "sha1",
    "sha256",
    "fileName",
    "filePath",
    "processId",
    "processCommandLine",
    "processCreationTime",
    "parentProcessId",
    "parentProcessCreationTime",
    "ipAddress",
    "url",
    "accountName",
    "domainName",
    "userSid",
    "aadUserId",
    "userPrincipalName",
    "mailboxDisplayName",
    "mailboxAddress",
    "clusterBy",
    "sender",
    "recipient",
    "subject",
    "deliveryAction",
    "securityGroupId",
    "securityGroupName",
    "registryHive",
    "registryKey",
    "registryValueType",
    "registryValue",
    "deviceId",
)

#: Every key an MTP alert device carries: the documented twelve, then four seen in real payloads.
DEVICE_KEYS: tuple[str, ...] = (
    "mdatpDeviceId",
    "aadDeviceId",
    "deviceDnsName",
    "osPlatform",
    "version",
    "osProcessor",
    "osBuild",
    "healthStatus",
    "riskScore",
    "rbacGroupName",
    "rbacGroupId",
    "firstSeen",
    "tags",
    "defenderAvStatus",
    "onboardingStatus",
    "vmMetadata",
)


class _Field(NamedTuple):
    """One legacy key and where it sits in Graph evidence (a path, at most two deep)."""

    legacy: str
    graph: tuple[str, ...]
    enum_case: bool = False  # PascalCase in MTP, camelCase in Graph, values not tabled


class _EvidenceKind(NamedTuple):
    entity_type: str
    odata_name: str
    fields: tuple[_Field, ...]


def _fields(*pairs: tuple[str, str]) -> tuple[_Field, ...]:
    """Fields given as ``(legacy, "graph.path")``."""
    return tuple(_Field(legacy, tuple(path.split("."))) for legacy, path in pairs)


def _user_account(prefix: str) -> tuple[_Field, ...]:
    return _fields(
        ("accountName", f"{prefix}.accountName"),
        ("domainName", f"{prefix}.domainName"),
        ("userSid", f"{prefix}.userSid"),
        ("aadUserId", f"{prefix}.azureAdUserId"),
        ("userPrincipalName", f"{prefix}.userPrincipalName"),
    )


def _file_details(prefix: str) -> tuple[_Field, ...]:
    return _fields(
        ("sha1", f"{prefix}.sha1"),
        ("sha256", f"{prefix}.sha256"),
        ("fileName", f"{prefix}.fileName"),
        ("filePath", f"{prefix}.filePath"),
    )


_DEVICE = _EvidenceKind(
    "Device",
    "deviceEvidence",
    (
        *_fields(
            ("mdatpDeviceId", "mdeDeviceId"),
            ("aadDeviceId", "azureAdDeviceId"),
            ("deviceDnsName", "deviceDnsName"),
            ("osPlatform", "osPlatform"),
            ("version", "version"),
            ("osBuild", "osBuild"),
        ),
        _Field("healthStatus", ("healthStatus",), enum_case=True),
        _Field("riskScore", ("riskScore",), enum_case=True),
        *_fields(
            ("rbacGroupName", "rbacGroupName"),
            ("rbacGroupId", "rbacGroupId"),
            ("firstSeen", "firstSeenDateTime"),
        ),
        _Field("defenderAvStatus", ("defenderAvStatus",), enum_case=True),
        _Field("onboardingStatus", ("onboardingStatus",), enum_case=True),
        *_fields(("vmMetadata", "vmMetadata")),
    ),
)

_REGISTRY_VALUE = _EvidenceKind(
    "Registry",
    "registryValueEvidence",
    _fields(
        ("registryHive", "registryHive"),
        ("registryKey", "registryKey"),
        ("registryValueType", "registryValueType"),
        ("registryValue", "registryValue"),
        ("deviceId", "mdeDeviceId"),
    ),
)

#: Entity kinds by MTP ``entityType`` (casefolded). ``Registry`` has two Graph kinds; see
#: :func:`_entity_kind`. ``MailMessage.sender`` becomes the P1 (envelope) sender: the MTP docs
#: do not say which sender they mean.
_ENTITY_KINDS: dict[str, _EvidenceKind] = {
    kind.entity_type.casefold(): kind
    for kind in (
        _EvidenceKind(
            "File", "fileEvidence", (*_file_details("fileDetails"), *_fields(("deviceId", "mdeDeviceId")))
        ),
        _EvidenceKind(
            "Process",
            "processEvidence",
            (
                *_fields(
                    ("processId", "processId"),
                    ("processCommandLine", "processCommandLine"),
                    ("processCreationTime", "processCreationDateTime"),
                    ("parentProcessId", "parentProcessId"),
                    ("parentProcessCreationTime", "parentProcessCreationDateTime"),
                ),
                *_file_details("imageFile"),
                *_user_account("userAccount"),
                *_fields(("deviceId", "mdeDeviceId")),
            ),
        ),
        _EvidenceKind("User", "userEvidence", _user_account("userAccount")),
        _EvidenceKind("Ip", "ipEvidence", _fields(("ipAddress", "ipAddress"))),
        _EvidenceKind("Url", "urlEvidence", _fields(("url", "url"))),
        _EvidenceKind(
            "MailBox",
            "mailboxEvidence",
            (
                *_fields(("mailboxDisplayName", "displayName"), ("mailboxAddress", "primaryAddress")),
                *_user_account("userAccount"),
            ),
        ),
        _EvidenceKind(
            "MailMessage",
            "analyzedMessageEvidence",
            _fields(
                ("sender", "p1Sender.emailAddress"),
                ("recipient", "recipientEmailAddress"),
                ("subject", "subject"),
                ("deliveryAction", "deliveryAction"),
            ),
        ),
        _EvidenceKind("MailCluster", "mailClusterEvidence", _fields(("clusterBy", "clusterBy"))),
        _EvidenceKind(
            "SecurityGroup",
            "securityGroupEvidence",
            _fields(("securityGroupId", "securityGroupId"), ("securityGroupName", "displayName")),
        ),
        _REGISTRY_VALUE,
    )
}

_REGISTRY_KEY = _EvidenceKind(
    "Registry",
    "registryKeyEvidence",
    _fields(("registryHive", "registryHive"), ("registryKey", "registryKey")),
)

_KINDS_BY_ODATA: dict[str, _EvidenceKind] = {
    kind.odata_name.casefold(): kind for kind in (*_ENTITY_KINDS.values(), _REGISTRY_KEY, _DEVICE)
}

#: Graph incident fields the legacy API has no place for (they come back ``None``; ``systemTags`` ``[]``).
INCIDENT_FIELDS_LOST_BY_LEGACY: frozenset[str] = frozenset(
    {"description", "summary", "priorityScore", "lastModifiedBy", "resolvingComment", "systemTags"}
)

#: Graph alert fields the legacy API has no place for (they come back ``None`` or ``[]``).
ALERT_FIELDS_LOST_BY_LEGACY: frozenset[str] = frozenset(
    {"recommendedActions", "threatDisplayName", "comments", "systemTags"}
)

#: Common Graph evidence fields the legacy API has no place for (``tags`` survives on devices).
EVIDENCE_FIELDS_LOST_BY_LEGACY: frozenset[str] = frozenset(
    {
        "createdDateTime",
        "verdict",
        "remediationStatus",
        "remediationStatusDetails",
        "roles",
        "detailedRoles",
        "tags",
    }
)


def _entity_kind(entity: Mapping[str, Any]) -> _EvidenceKind | None:
    entity_type = str(entity.get("entityType") or "").casefold()
    # MTP has one Registry type; Graph tells a key from a value by whether a value is present.
    is_key_only = entity.get("registryValue") is None and entity.get("registryValueType") is None
    if entity_type == "registry" and is_key_only:
        return _REGISTRY_KEY
    return _ENTITY_KINDS.get(entity_type)


def _odata_name(evidence: Mapping[str, Any]) -> str:
    """``fileEvidence`` from ``#microsoft.graph.security.fileEvidence`` (with or without ``#``)."""
    return str(evidence.get("@odata.type") or "").lstrip("#").rsplit(".", 1)[-1]


def _evidence_common(tags: Any = None) -> JsonDict:
    # Legacy entities carry none of these; None/[] rather than invented values.
    return {
        "createdDateTime": None,
        "verdict": None,
        "remediationStatus": None,
        "remediationStatusDetails": None,
        "roles": [],
        "detailedRoles": [],
        "tags": list(tags or []),
    }


def _to_graph_fields(source: Mapping[str, Any], fields: Iterable[_Field]) -> JsonDict:
    """Place legacy values on their Graph paths; a nested object with nothing in it is ``None``."""
    out: JsonDict = {}
    for field in fields:
        value = source.get(field.legacy)
        if field.enum_case:
            value = _camel(value)
        if len(field.graph) == 1:
            out[field.graph[0]] = value
        else:
            out.setdefault(field.graph[0], {})[field.graph[1]] = value
    for key, value in out.items():
        if isinstance(value, dict) and all(item is None for item in value.values()):
            out[key] = None
    return out


def _to_legacy_fields(evidence: Mapping[str, Any], fields: Iterable[_Field]) -> JsonDict:
    out: JsonDict = {}
    for field in fields:
        value: Any = evidence
        for step in field.graph:
            value = value.get(step) if isinstance(value, Mapping) else None
        out[field.legacy] = _pascal(value) if field.enum_case else value
    return out


def _device_to_evidence(device: Mapping[str, Any]) -> JsonDict:
    return {
        "@odata.type": _ODATA_PREFIX + _DEVICE.odata_name,
        **_evidence_common(device.get("tags")),
        **_to_graph_fields(device, _DEVICE.fields),
    }


def _entity_to_evidence(entity: Mapping[str, Any]) -> JsonDict:
    kind = _entity_kind(entity)
    if kind is None:
        # An entity type this table does not know: keep its non-null keys under a derived type name.
        entity_type = str(entity.get("entityType") or "unknown")
        details = {key: value for key, value in entity.items() if key != "entityType" and value is not None}
        return {
            "@odata.type": f"{_ODATA_PREFIX}{_camel(entity_type)}Evidence",
            **_evidence_common(),
            **details,
        }
    return {
        "@odata.type": _ODATA_PREFIX + kind.odata_name,
        **_evidence_common(),
        **_to_graph_fields(entity, kind.fields),
    }


def _evidence_to_device(evidence: Mapping[str, Any]) -> JsonDict:
    device = dict.fromkeys(DEVICE_KEYS)
    device.update(_to_legacy_fields(evidence, _DEVICE.fields))
    device["tags"] = list(evidence.get("tags") or [])
    return device


def _evidence_to_entity(evidence: Mapping[str, Any]) -> JsonDict:
    name = _odata_name(evidence)
    entity: JsonDict = dict.fromkeys(ENTITY_KEYS)
    kind = _KINDS_BY_ODATA.get(name.casefold())
    if kind is None:
        entity["entityType"] = _pascal(name.removesuffix("Evidence")) or None
        entity.update(
            {key: value for key, value in evidence.items() if key in entity and key != "entityType"}
        )
    else:
        entity["entityType"] = kind.entity_type
        entity.update(_to_legacy_fields(evidence, kind.fields))
    return entity


def _is_device_evidence(evidence: Mapping[str, Any]) -> bool:
    return _odata_name(evidence).casefold() == _DEVICE.odata_name.casefold()


# --------------------------------------------------------------------------------------------------
# Ids, URLs, comments
# --------------------------------------------------------------------------------------------------


def _id_to_graph(value: Any) -> str | None:
    return None if value is None else str(value)


def _id_to_legacy(value: Any) -> Any:
    """MTP ids are JSON integers; a value that is not all digits passes through rather than fail."""
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return value


def _portal_url(portal: str, path: str, tenant_id: str | None) -> str:
    url = f"{portal.rstrip('/')}/{path}"
    return url if tenant_id is None else f"{url}?tid={quote(tenant_id, safe='')}"


def incident_web_url(portal: str, incident_id: Any, tenant_id: str | None) -> str:
    """The incident's page in the Defender portal, as Graph's ``incidentWebUrl`` spells it.

    :param portal: the cloud's portal origin, e.g. ``https://security.microsoft.com``.
    :param incident_id: the incident id (int or str).
    :param tenant_id: appended as ``?tid=``; omitted when ``None``.
    """
    return _portal_url(portal, f"incidents/{quote(str(incident_id), safe='')}", tenant_id)


def _comment_to_graph(comment: Mapping[str, Any]) -> JsonDict:
    return {
        "comment": comment.get("comment"),
        "createdByDisplayName": comment.get("createdBy"),
        "createdDateTime": comment.get("createdTime"),
    }


def _comment_to_legacy(comment: Mapping[str, Any]) -> JsonDict:
    return {
        "comment": comment.get("comment"),
        "createdBy": comment.get("createdByDisplayName"),
        "createdTime": comment.get("createdDateTime"),
    }


# --------------------------------------------------------------------------------------------------
# Alerts
# --------------------------------------------------------------------------------------------------


def alert_to_graph(legacy: Mapping[str, Any], *, tenant_id: str | None, portal: str) -> JsonDict:
    """An alert embedded in an MTP incident, in the ``alerts_v2`` shape.

    ``devices[]`` become ``deviceEvidence`` items, then ``entities[]`` become typed evidence.
    Timestamps are copied as received.

    :param legacy: the MTP alert.
    :param tenant_id: the tenant the alert belongs to (MTP does not say).
    :param portal: the cloud's portal origin, for ``alertWebUrl`` and ``incidentWebUrl``.
    """
    alert_id = legacy.get("alertId")
    incident_id = _id_to_graph(legacy.get("incidentId"))
    return {
        "id": alert_id,
        "providerAlertId": alert_id,
        "incidentId": incident_id,
        "status": ALERT_STATUS.to_graph(legacy.get("status")),
        "severity": SEVERITY.to_graph(legacy.get("severity")),
        "classification": CLASSIFICATION.to_graph(legacy.get("classification")),
        "determination": DETERMINATION.to_graph(legacy.get("determination")),
        "serviceSource": SERVICE_SOURCE.to_graph(legacy.get("serviceSource")),
        "detectionSource": DETECTION_SOURCE.to_graph(legacy.get("detectionSource")),
        "detectorId": legacy.get("detectorId"),
        "tenantId": tenant_id,
        "title": legacy.get("title"),
        "description": legacy.get("description"),
        "recommendedActions": None,
        "category": legacy.get("category"),
        "assignedTo": legacy.get("assignedTo"),
        "alertWebUrl": _portal_url(portal, f"alerts/{quote(str(alert_id), safe='')}", tenant_id),
        "incidentWebUrl": None if incident_id is None else incident_web_url(portal, incident_id, tenant_id),
        "actorDisplayName": legacy.get("actorName"),
        "threatDisplayName": None,
        "threatFamilyName": legacy.get("threatFamilyName"),
        "mitreTechniques": list(legacy.get("mitreTechniques") or []),
        "createdDateTime": legacy.get("creationTime"),
        "lastUpdateDateTime": legacy.get("lastUpdatedTime"),
        "resolvedDateTime": legacy.get("resolvedTime"),
        "firstActivityDateTime": legacy.get("firstActivity"),
        "lastActivityDateTime": legacy.get("lastActivity"),
        "comments": [],
        "evidence": [
            *(_device_to_evidence(device) for device in legacy.get("devices") or []),
            *(_entity_to_evidence(entity) for entity in legacy.get("entities") or []),
        ],
        "systemTags": [],
    }


def alert_to_legacy(graph: Mapping[str, Any]) -> JsonDict:
    """An ``alerts_v2`` alert as an MTP incident embeds it: every key present, ``null`` where n/a.

    :param graph: the Graph alert.
    """
    evidence = list(graph.get("evidence") or [])
    return {
        "alertId": graph.get("id"),
        "incidentId": _id_to_legacy(graph.get("incidentId")),
        "serviceSource": SERVICE_SOURCE.to_legacy(graph.get("serviceSource")),
        "creationTime": graph.get("createdDateTime"),
        "lastUpdatedTime": graph.get("lastUpdateDateTime"),
        "resolvedTime": graph.get("resolvedDateTime"),
        "firstActivity": graph.get("firstActivityDateTime"),
        "lastActivity": graph.get("lastActivityDateTime"),
        "title": graph.get("title"),
        "description": graph.get("description"),
        "category": graph.get("category"),
        "status": ALERT_STATUS.to_legacy(graph.get("status")),
        "severity": SEVERITY.to_legacy(graph.get("severity")),
        "investigationId": None,
        "investigationState": None,
        "classification": CLASSIFICATION.to_legacy(graph.get("classification")),
        "determination": DETERMINATION.to_legacy(graph.get("determination")),
        "detectionSource": DETECTION_SOURCE.to_legacy(graph.get("detectionSource")),
        "detectorId": graph.get("detectorId"),
        "assignedTo": graph.get("assignedTo"),
        "actorName": graph.get("actorDisplayName"),
        "threatFamilyName": graph.get("threatFamilyName"),
        "mitreTechniques": list(graph.get("mitreTechniques") or []),
        "devices": [_evidence_to_device(item) for item in evidence if _is_device_evidence(item)],
        "entities": [_evidence_to_entity(item) for item in evidence if not _is_device_evidence(item)],
    }


# --------------------------------------------------------------------------------------------------
# Incidents
# --------------------------------------------------------------------------------------------------


def incident_to_graph(
    legacy: Mapping[str, Any], *, tenant_id: str | None, portal: str, include_alerts: bool = True
) -> JsonDict:
    """An MTP incident in the Graph shape (defender-api.md section 6).

    Ids become strings, enums camelCase, timestamps are copied as received (never reformatted:
    the 7th fractional digit matters to watermarks).

    :param legacy: the MTP incident, as ``/api/incidents`` returns it.
    :param tenant_id: the tenant (the token's ``tid``): MTP incidents do not carry it.
    :param portal: the cloud's portal origin, for ``incidentWebUrl``.
    :param include_alerts: add ``alerts``, as Graph does with ``$expand=alerts``.
    """
    incident_id = _id_to_graph(legacy.get("incidentId"))
    graph: JsonDict = {
        "id": incident_id,
        "tenantId": tenant_id,
        "incidentWebUrl": incident_web_url(portal, incident_id, tenant_id),
        "redirectIncidentId": _id_to_graph(legacy.get("redirectIncidentId")),
        "displayName": legacy.get("incidentName"),
        "createdDateTime": legacy.get("createdTime"),
        "lastUpdateDateTime": legacy.get("lastUpdateTime"),
        "assignedTo": legacy.get("assignedTo"),
        "classification": CLASSIFICATION.to_graph(legacy.get("classification")),
        "determination": DETERMINATION.to_graph(legacy.get("determination")),
        "status": INCIDENT_STATUS.to_graph(legacy.get("status")),
        "severity": SEVERITY.to_graph(legacy.get("severity")),
        "customTags": list(legacy.get("tags") or []),
        "systemTags": [],
        "description": legacy.get("description"),
        "summary": legacy.get("summary"),
        "priorityScore": legacy.get("priorityScore"),
        "lastModifiedBy": legacy.get("lastModifiedBy"),
        "resolvingComment": legacy.get("resolvingComment"),
        "comments": [_comment_to_graph(comment) for comment in legacy.get("comments") or []],
    }
    if include_alerts:
        graph["alerts"] = [
            alert_to_graph(alert, tenant_id=tenant_id, portal=portal) for alert in legacy.get("alerts") or []
        ]
    return graph


def incident_to_legacy(graph: Mapping[str, Any]) -> JsonDict:
    """A Graph incident as ``/api/incidents`` serves it (defender-api.md section 4.2).

    The emulator keeps one Graph-shape store and serves this view from it. Alerts are always
    embedded (``[]`` when the Graph incident has none).

    :param graph: the Graph incident, alerts expanded or not.
    """
    return {
        "incidentId": _id_to_legacy(graph.get("id")),
        "redirectIncidentId": _id_to_legacy(graph.get("redirectIncidentId")),
        "incidentName": graph.get("displayName"),
        "createdTime": graph.get("createdDateTime"),
        "lastUpdateTime": graph.get("lastUpdateDateTime"),
        "assignedTo": graph.get("assignedTo"),
        "classification": CLASSIFICATION.to_legacy(graph.get("classification")),
        "determination": DETERMINATION.to_legacy(graph.get("determination")),
        "status": INCIDENT_STATUS.to_legacy(graph.get("status")),
        "severity": SEVERITY.to_legacy(graph.get("severity")),
        "tags": list(graph.get("customTags") or []),
        "comments": [_comment_to_legacy(comment) for comment in graph.get("comments") or []],
        "alerts": [alert_to_legacy(alert) for alert in graph.get("alerts") or []],
    }


# --------------------------------------------------------------------------------------------------
# Update bodies
# --------------------------------------------------------------------------------------------------


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
