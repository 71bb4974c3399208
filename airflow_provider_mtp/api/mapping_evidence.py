"""Alert evidence between the dialects: legacy ``devices[]`` and ``entities[]`` <-> Graph ``evidence[]``.

Part of :mod:`.mapping`: the evidence kinds (which legacy key sits where in which Graph evidence
type) and the conversions :mod:`airflow_provider_mtp.api.mapping_incidents` applies to each alert.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple

from airflow_provider_mtp.api.mapping_tables import DEVICE_KEYS, ENTITY_KEYS

JsonDict = dict[str, Any]


def _camel(value: Any) -> Any:
    """Graph spelling of an enum the tables do not list, where the dialects differ only in case."""
    return value[:1].lower() + value[1:] if isinstance(value, str) else value


def _pascal(value: Any) -> Any:
    return value[:1].upper() + value[1:] if isinstance(value, str) else value


_ODATA_PREFIX = "#microsoft.graph.security."


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
