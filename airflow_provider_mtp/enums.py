"""Incident values as enums, in Microsoft Graph's spelling: ``IncidentStatus.RESOLVED == "resolved"``.

Every operator, the sensor and the hooks take these wherever they take a string, and still take
strings in either API's spelling (``"resolved"``, ``"Resolved"``). A member *is* its string
(:class:`enum.StrEnum`), so it serialises as the plain value in trigger arguments, XCom and JSON.

The values are those of the mapping tables in :mod:`airflow_provider_mtp.api.mapping`
(``tests/unit/test_enums.py`` holds the two together)::

    from airflow_provider_mtp.enums import Classification, Determination, IncidentStatus

    UpdateIncidentOperator(
        task_id="close",
        incident_id="{{ ti.xcom_pull('find') }}",
        status=IncidentStatus.RESOLVED,
        classification=Classification.TRUE_POSITIVE,
        determination=Determination.MALWARE,
    )
"""

from __future__ import annotations

from enum import StrEnum

__all__ = [
    "AlertStatus",
    "Classification",
    "DetectionSource",
    "Determination",
    "IncidentStatus",
    "ServiceSource",
    "Severity",
]


class IncidentStatus(StrEnum):
    """An incident's ``status``."""

    ACTIVE = "active"
    IN_PROGRESS = "inProgress"
    RESOLVED = "resolved"
    REDIRECTED = "redirected"


class AlertStatus(StrEnum):
    """An alert's ``status`` (the legacy API's ``Active`` reads as ``IN_PROGRESS``)."""

    UNKNOWN = "unknown"
    NEW = "new"
    IN_PROGRESS = "inProgress"
    RESOLVED = "resolved"


class Severity(StrEnum):
    """An incident's or alert's ``severity``; ``UNKNOWN`` is the legacy API's ``UnSpecified``."""

    UNKNOWN = "unknown"
    INFORMATIONAL = "informational"
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"


class Classification(StrEnum):
    """An incident's ``classification``."""

    UNKNOWN = "unknown"
    FALSE_POSITIVE = "falsePositive"
    TRUE_POSITIVE = "truePositive"
    INFORMATIONAL_EXPECTED_ACTIVITY = "informationalExpectedActivity"


class Determination(StrEnum):
    """An incident's ``determination``.

    Microsoft's pages disagree on some names, so both of each pair are here and accepted
    (``COMPROMISED_ACCOUNT``/``COMPROMISED_USER``, ``CONFIRMED_ACTIVITY``/``CONFIRMED_USER_ACTIVITY``,
    ``CLEAN``/``NOT_MALICIOUS``).
    """

    UNKNOWN = "unknown"
    APT = "apt"
    MALWARE = "malware"
    SECURITY_PERSONNEL = "securityPersonnel"
    SECURITY_TESTING = "securityTesting"
    UNWANTED_SOFTWARE = "unwantedSoftware"
    OTHER = "other"
    MULTI_STAGED_ATTACK = "multiStagedAttack"
    MALICIOUS_USER_ACTIVITY = "maliciousUserActivity"
    COMPROMISED_ACCOUNT = "compromisedAccount"
    COMPROMISED_USER = "compromisedUser"
    PHISHING = "phishing"
    LINE_OF_BUSINESS_APPLICATION = "lineOfBusinessApplication"
    CONFIRMED_ACTIVITY = "confirmedActivity"
    CONFIRMED_USER_ACTIVITY = "confirmedUserActivity"
    CLEAN = "clean"
    NOT_MALICIOUS = "notMalicious"
    NOT_ENOUGH_DATA_TO_VALIDATE = "notEnoughDataToValidate"
    INSUFFICIENT_DATA = "insufficientData"


class ServiceSource(StrEnum):
    """The product that raised an alert (``serviceSource``); Microsoft adds values over time, so
    replies may hold others (they pass through unchanged)."""

    MICROSOFT_DEFENDER_FOR_ENDPOINT = "microsoftDefenderForEndpoint"
    MICROSOFT_DEFENDER_FOR_CLOUD_APPS = "microsoftDefenderForCloudApps"
    MICROSOFT_DEFENDER_FOR_OFFICE_365 = "microsoftDefenderForOffice365"
    UNKNOWN = "unknown"
    MICROSOFT_DEFENDER_FOR_IDENTITY = "microsoftDefenderForIdentity"
    MICROSOFT_365_DEFENDER = "microsoft365Defender"
    AZURE_AD_IDENTITY_PROTECTION = "azureAdIdentityProtection"
    MICROSOFT_APP_GOVERNANCE = "microsoftAppGovernance"
    DATA_LOSS_PREVENTION = "dataLossPrevention"
    MICROSOFT_DEFENDER_FOR_CLOUD = "microsoftDefenderForCloud"
    MICROSOFT_SENTINEL = "microsoftSentinel"
    MICROSOFT_INSIDER_RISK_MANAGEMENT = "microsoftInsiderRiskManagement"


class DetectionSource(StrEnum):
    """The detector within the product (``detectionSource``), for the values both APIs are known to
    send; any other value is accepted in a filter and compared case-insensitively."""

    ANTIVIRUS = "antivirus"
    CLOUD_APP_SECURITY = "cloudAppSecurity"
    MICROSOFT_DEFENDER_FOR_OFFICE_365 = "microsoftDefenderForOffice365"
    AUTOMATED_INVESTIGATION = "automatedInvestigation"
