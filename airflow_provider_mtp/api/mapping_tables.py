"""The value tables of the legacy <-> Graph mapping (part of :mod:`.mapping`): data, no conversion.

The enum tables (one :class:`~airflow_provider_mtp.api.mapping_enum_map.EnumMap` each), the
``$filter`` field names, the keys an MTP alert entity and device carry, and the Graph fields the
legacy API has no place for. The source is defender-api.md sections 4.2, 5 and 6.
"""

from __future__ import annotations

from collections.abc import Mapping

from airflow_provider_mtp.api.mapping_enum_map import EnumMap

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
]


# --------------------------------------------------------------------------------------------------
# Enums
# --------------------------------------------------------------------------------------------------


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
        # Graph's own values (defender-api.md section 5), which MTP never sends (so they keep
        # Graph's spelling both ways); the list grows, so replies pass unknown values through and
        # only a filter insists on a known one.
        *(
            (graph, graph)
            for graph in (
                "unknown",
                "microsoftDefenderForEndpoint",
                "microsoftDefenderForIdentity",
                "microsoftDefenderForCloudApps",
                "microsoftDefenderForOffice365",
                "microsoft365Defender",
                "azureAdIdentityProtection",
                "microsoftAppGovernance",
                "dataLossPrevention",
                "microsoftDefenderForCloud",
                "microsoftSentinel",
                "microsoftInsiderRiskManagement",
            )
        ),
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
# Evidence keys
# --------------------------------------------------------------------------------------------------

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

# --------------------------------------------------------------------------------------------------
# What the legacy API cannot carry
# --------------------------------------------------------------------------------------------------

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
