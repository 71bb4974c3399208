"""The legacy MTP <-> Graph mapping: enum tables, incident and alert shapes, update bodies."""

from __future__ import annotations

import copy
import re
from typing import Any

import pytest

from airflow_provider_mtp.api import mapping
from airflow_provider_mtp.api.mapping import (
    ALERT_FIELDS_LOST_BY_LEGACY,
    ALERT_STATUS,
    CLASSIFICATION,
    DETECTION_SOURCE,
    DETERMINATION,
    DEVICE_KEYS,
    ENTITY_KEYS,
    EVIDENCE_FIELDS_LOST_BY_LEGACY,
    INCIDENT_FIELDS_LOST_BY_LEGACY,
    INCIDENT_STATUS,
    SERVICE_SOURCE,
    SEVERITY,
    EnumMap,
)

TENANT = "9a1c3e55-0d3b-4c5e-9f51-2d7c8b6a4e10"
PORTAL = "https://security.microsoft.com"
SEC = "#microsoft.graph.security."


def _evidence(odata_name: str, **fields: Any) -> dict[str, Any]:
    return {
        "@odata.type": SEC + odata_name,
        "createdDateTime": "2024-05-02T08:40:11.1234567Z",
        "verdict": "malicious",
        "remediationStatus": "none",
        "remediationStatusDetails": None,
        "roles": ["attacker"],
        "detailedRoles": [],
        "tags": ["from-graph"],
        **fields,
    }


def _user(**fields: Any) -> dict[str, Any]:
    base = dict.fromkeys(["accountName", "domainName", "userSid", "azureAdUserId", "userPrincipalName"])
    return {**base, **fields}


def _file(**fields: Any) -> dict[str, Any]:
    return {**dict.fromkeys(["sha1", "sha256", "fileName", "filePath"]), **fields}


def graph_incident() -> dict[str, Any]:
    """The doc's Graph example (defender-api.md 3.2), alerts expanded with one of each evidence kind."""
    return {
        "id": "2972395",
        "tenantId": TENANT,
        "incidentWebUrl": f"{PORTAL}/incidents/2972395?tid={TENANT}",
        "redirectIncidentId": None,
        "displayName": "Credential theft on two endpoints",
        "createdDateTime": "2024-05-02T08:43:35.5533333Z",
        "lastUpdateDateTime": "2024-05-02T09:35:45.11Z",
        "assignedTo": "analyst@contoso.com",
        "classification": "truePositive",
        "determination": "malware",
        "status": "active",
        "severity": "high",
        "customTags": ["triage"],
        "systemTags": ["Defender Experts"],
        "description": "Two hosts ran a credential dumper.",
        "summary": "Mimikatz on ws-01 and ws-02",
        "priorityScore": 87,
        "lastModifiedBy": "analyst@contoso.com",
        "resolvingComment": None,
        "comments": [
            {
                "comment": "isolating host",
                "createdByDisplayName": "analyst@contoso.com",
                "createdDateTime": "2024-05-02T09:30:00Z",
            }
        ],
        "alerts": [endpoint_alert(), mail_alert()],
    }


def endpoint_alert() -> dict[str, Any]:
    alert_id = "da638501234567890123_1053928211"
    return {
        "id": alert_id,
        "providerAlertId": alert_id,
        "incidentId": "2972395",
        "status": "new",
        "severity": "high",
        "classification": "truePositive",
        "determination": "malware",
        "serviceSource": "microsoftDefenderForEndpoint",
        "detectionSource": "antivirus",
        "detectorId": "7e4a3e10-5c8a-4bf4-9f0a-0c6d4e2f1a11",
        "tenantId": TENANT,
        "title": "Mimikatz credential theft tool",
        "description": "A credential dumper ran.",
        "recommendedActions": "Isolate the device.",
        "category": "CredentialAccess",
        "assignedTo": "analyst@contoso.com",
        "alertWebUrl": f"{PORTAL}/alerts/{alert_id}?tid={TENANT}",
        "incidentWebUrl": f"{PORTAL}/incidents/2972395?tid={TENANT}",
        "actorDisplayName": None,
        "threatDisplayName": "HackTool:Win32/Mimikatz",
        "threatFamilyName": "Mimikatz",
        "mitreTechniques": ["T1003"],
        "createdDateTime": "2024-05-02T08:43:35.3285366Z",
        "lastUpdateDateTime": "2024-05-02T09:35:45.2566667Z",
        "resolvedDateTime": None,
        "firstActivityDateTime": "2024-05-02T08:40:07.7272048Z",
        "lastActivityDateTime": "2024-05-02T08:41:07.7Z",
        "comments": [
            {"comment": "seen", "createdByDisplayName": "a", "createdDateTime": "2024-05-02T09:00:00Z"}
        ],
        "evidence": [
            _evidence(
                "deviceEvidence",
                mdeDeviceId="24c222b0b60fe148eeece49ac83910cc6a7ef491",
                azureAdDeviceId="f1f3a7a2-0000-4c1e-9d1a-2b3c4d5e6f70",
                deviceDnsName="ws-01.contoso.com",
                osPlatform="WindowsServer2016",
                version="1607",
                osBuild=14393,
                healthStatus="active",
                riskScore="high",
                rbacGroupName="Ring0",
                rbacGroupId=9,
                firstSeenDateTime="2024-02-06T14:16:01.9330135Z",
                defenderAvStatus="updated",
                onboardingStatus="onboarded",
                vmMetadata=None,
            ),
            _evidence(
                "fileEvidence",
                fileDetails=_file(
                    sha1="5de839186691aa96ee2ca6d74f0a38fb8d1bd6dd", fileName="tool.dll", filePath="C:\\Temp"
                ),
                mdeDeviceId="24c222b0b60fe148eeece49ac83910cc6a7ef491",
            ),
            _evidence(
                "processEvidence",
                processId=4242,
                processCommandLine="mimikatz.exe privilege::debug",
                processCreationDateTime="2024-05-02T08:40:07.7272048Z",
                parentProcessId=1000,
                parentProcessCreationDateTime="2024-05-02T08:00:00Z",
                imageFile=_file(fileName="mimikatz.exe", filePath="C:\\Temp"),
                userAccount=_user(accountName="jdoe", domainName="CONTOSO", userSid="S-1-5-21-1"),
                mdeDeviceId="24c222b0b60fe148eeece49ac83910cc6a7ef491",
            ),
            _evidence(
                "userEvidence",
                userAccount=_user(
                    accountName="jdoe", azureAdUserId="0b6c", userPrincipalName="jdoe@contoso.com"
                ),
            ),
            _evidence("ipEvidence", ipAddress="203.0.113.7"),
            _evidence("urlEvidence", url="http://evil.example/x"),
            _evidence("registryKeyEvidence", registryHive="HKEY_LOCAL_MACHINE", registryKey="SOFTWARE\\Run"),
            _evidence(
                "registryValueEvidence",
                registryHive="HKEY_LOCAL_MACHINE",
                registryKey="SOFTWARE\\Run",
                registryValueType="String",
                registryValue="C:\\Temp\\tool.exe",
                mdeDeviceId="24c222b0b60fe148eeece49ac83910cc6a7ef491",
            ),
            _evidence("securityGroupEvidence", securityGroupId="sg-1", displayName="Domain Admins"),
        ],
        "systemTags": [],
    }


def mail_alert() -> dict[str, Any]:
    alert = endpoint_alert()
    alert.update(
        id="fa0000000000-1111",
        providerAlertId="fa0000000000-1111",
        serviceSource="microsoftDefenderForOffice365",
        detectionSource="microsoftDefenderForOffice365",
        status="inProgress",
        severity="medium",
        classification=None,
        determination=None,
        alertWebUrl=f"{PORTAL}/alerts/fa0000000000-1111?tid={TENANT}",
        evidence=[
            _evidence(
                "mailboxEvidence",
                displayName="John Doe",
                primaryAddress="jdoe@contoso.com",
                userAccount=_user(userPrincipalName="jdoe@contoso.com"),
            ),
            _evidence(
                "analyzedMessageEvidence",
                p1Sender={"emailAddress": "bad@evil.example"},
                recipientEmailAddress="jdoe@contoso.com",
                subject="Invoice",
                deliveryAction="Delivered",
            ),
            _evidence("mailClusterEvidence", clusterBy="Subject"),
        ],
    )
    return alert


def legacy_incident() -> dict[str, Any]:
    """The doc's MTP example (defender-api.md 4.2), verbatim."""
    return {
        "incidentId": 924521,
        "redirectIncidentId": None,
        "incidentName": "Hacktool detected on one endpoint",
        "createdTime": "2024-05-02T12:18:03.6266667Z",
        "lastUpdateTime": "2024-05-02T12:18:03.81Z",
        "assignedTo": None,
        "classification": "Unknown",
        "determination": "NotAvailable",
        "status": "Active",
        "severity": "Low",
        "tags": [],
        "comments": [
            {"comment": "looking", "createdBy": "soc@contoso.com", "createdTime": "2024-05-02T12:30:00Z"}
        ],
        "alerts": [
            {
                "alertId": "da638501234567890123_393341063",
                "incidentId": 924521,
                "serviceSource": "MicrosoftDefenderATP",
                "creationTime": "2024-05-02T12:18:03.3285366Z",
                "lastUpdatedTime": "2024-05-02T12:18:04.2566667Z",
                "resolvedTime": None,
                "firstActivity": "2024-05-02T12:15:07.7272048Z",
                "lastActivity": "2024-05-02T12:15:07.7272048Z",
                "title": "Hacktool was detected",
                "description": "...",
                "category": "Malware",
                "status": "New",
                "severity": "Low",
                "investigationId": None,
                "investigationState": "UnsupportedOs",
                "classification": None,
                "determination": None,
                "detectionSource": "WindowsDefenderAv",
                "assignedTo": None,
                "actorName": None,
                "threatFamilyName": "Mimikatz",
                "mitreTechniques": [],
                "devices": [
                    {
                        "mdatpDeviceId": "24c222b0b60fe148eeece49ac83910cc6a7ef491",
                        "aadDeviceId": None,
                        "deviceDnsName": "ws-01.contoso.com",
                        "osPlatform": "WindowsServer2016",
                        "version": "1607",
                        "osProcessor": "x64",
                        "osBuild": 14393,
                        "healthStatus": "Active",
                        "riskScore": "High",
                        "rbacGroupName": "Ring0",
                        "rbacGroupId": 9,
                        "firstSeen": "2024-02-06T14:16:01.9330135Z",
                    }
                ],
                "entities": [
                    {
                        "entityType": "File",
                        "sha1": "5de839186691aa96ee2ca6d74f0a38fb8d1bd6dd",
                        "sha256": None,
                        "fileName": "tool.dll",
                        "filePath": "C:\\Temp",
                        "deviceId": "24c222b0b60fe148eeece49ac83910cc6a7ef491",
                    }
                ],
            }
        ],
    }


def _carried(incident: dict[str, Any]) -> dict[str, Any]:
    """The part of a Graph incident the legacy API carries."""
    out = {key: value for key, value in incident.items() if key not in INCIDENT_FIELDS_LOST_BY_LEGACY}
    out["alerts"] = [
        {
            **{key: value for key, value in alert.items() if key not in ALERT_FIELDS_LOST_BY_LEGACY},
            "evidence": [
                {
                    key: value
                    for key, value in item.items()
                    if key not in EVIDENCE_FIELDS_LOST_BY_LEGACY
                    or (key == "tags" and item["@odata.type"].endswith("deviceEvidence"))
                }
                for item in alert["evidence"]
            ],
        }
        for alert in incident["alerts"]
    ]
    return out


# --------------------------------------------------------------------------------------------------
# Enums
# --------------------------------------------------------------------------------------------------

ENUM_CASES = [
    # (table, legacy, graph): legacy -> graph and graph -> legacy both hold.
    (INCIDENT_STATUS, "Active", "active"),
    (INCIDENT_STATUS, "InProgress", "inProgress"),
    (INCIDENT_STATUS, "Resolved", "resolved"),
    (INCIDENT_STATUS, "Redirected", "redirected"),
    (SEVERITY, "UnSpecified", "unknown"),
    (SEVERITY, "Informational", "informational"),
    (SEVERITY, "Low", "low"),
    (SEVERITY, "Medium", "medium"),
    (SEVERITY, "High", "high"),
    (ALERT_STATUS, "Unknown", "unknown"),
    (ALERT_STATUS, "New", "new"),
    (ALERT_STATUS, "InProgress", "inProgress"),
    (ALERT_STATUS, "Resolved", "resolved"),
    (CLASSIFICATION, "Unknown", "unknown"),
    (CLASSIFICATION, "FalsePositive", "falsePositive"),
    (CLASSIFICATION, "TruePositive", "truePositive"),
    (CLASSIFICATION, "InformationalExpectedActivity", "informationalExpectedActivity"),
    (DETERMINATION, "NotAvailable", "unknown"),
    (DETERMINATION, "Apt", "apt"),
    (DETERMINATION, "Malware", "malware"),
    (DETERMINATION, "SecurityPersonnel", "securityPersonnel"),
    (DETERMINATION, "SecurityTesting", "securityTesting"),
    (DETERMINATION, "UnwantedSoftware", "unwantedSoftware"),
    (DETERMINATION, "Other", "other"),
    (DETERMINATION, "MultiStagedAttack", "multiStagedAttack"),
    (DETERMINATION, "MaliciousUserActivity", "maliciousUserActivity"),
    (DETERMINATION, "CompromisedAccount", "compromisedAccount"),
    (DETERMINATION, "CompromisedUser", "compromisedUser"),
    (DETERMINATION, "Phishing", "phishing"),
    (DETERMINATION, "LineOfBusinessApplication", "lineOfBusinessApplication"),
    (DETERMINATION, "ConfirmedActivity", "confirmedActivity"),
    (DETERMINATION, "ConfirmedUserActivity", "confirmedUserActivity"),
    (DETERMINATION, "Clean", "clean"),
    (DETERMINATION, "NoEnoughDataToValidate", "notEnoughDataToValidate"),
    (DETERMINATION, "InsufficientData", "insufficientData"),
    (SERVICE_SOURCE, "MicrosoftDefenderATP", "microsoftDefenderForEndpoint"),
    (SERVICE_SOURCE, "MicrosoftCloudAppSecurity", "microsoftDefenderForCloudApps"),
    (SERVICE_SOURCE, "OfficeATP", "microsoftDefenderForOffice365"),
    (DETECTION_SOURCE, "WindowsDefenderAv", "antivirus"),
    (DETECTION_SOURCE, "MCAS", "cloudAppSecurity"),
    (DETECTION_SOURCE, "OfficeATP", "microsoftDefenderForOffice365"),
    (DETECTION_SOURCE, "AutomatedInvestigation", "automatedInvestigation"),
]


@pytest.mark.parametrize(("table", "legacy", "graph"), ENUM_CASES)
def test_enum_both_directions_any_case(table: EnumMap, legacy: str, graph: str) -> None:
    for spelling in (legacy, legacy.upper(), legacy.lower(), graph, graph.upper()):
        assert table.to_graph(spelling) == graph
    for spelling in (graph, graph.upper(), graph.lower(), legacy, legacy.lower()):
        assert table.to_legacy(spelling) == legacy
    assert table.require_graph(legacy.lower()) == graph
    assert table.require_legacy(graph.upper()) == legacy


@pytest.mark.parametrize(
    ("table", "read", "graph", "legacy"),
    [
        # One-way synonyms: read either way, written back in the canonical spelling.
        (DETERMINATION, "notMalicious", "notMalicious", "Clean"),
        (ALERT_STATUS, "Active", "inProgress", "Active"),
        # Differs from the Graph spelling only in case, so it reads as the Graph value.
        (
            SERVICE_SOURCE,
            "MicrosoftDefenderForEndpoint",
            "microsoftDefenderForEndpoint",
            "MicrosoftDefenderATP",
        ),
    ],
)
def test_synonyms(table: EnumMap, read: str, graph: str, legacy: str) -> None:
    assert table.to_graph(read) == graph
    assert table.to_legacy(read) == legacy


def test_graph_synonyms_map_to_the_canonical_other_side() -> None:
    assert DETERMINATION.to_legacy("notMalicious") == "Clean"
    assert DETERMINATION.to_graph("Clean") == "clean"
    assert ALERT_STATUS.to_legacy("inProgress") == "InProgress"
    assert SERVICE_SOURCE.to_legacy("microsoftDefenderForEndpoint") == "MicrosoftDefenderATP"


@pytest.mark.parametrize(
    ("table", "value"),
    [
        (INCIDENT_STATUS, "awaitingAction"),
        (INCIDENT_STATUS, "unknownFutureValue"),
        (SEVERITY, "Critical"),
        (DETERMINATION, "SomethingNew2030"),
        (SERVICE_SOURCE, "microsoftFutureProduct2030"),
        (DETECTION_SOURCE, "EDR"),
    ],
)
def test_unknown_enum_values_pass_through_unchanged(table: EnumMap, value: str) -> None:
    assert table.to_graph(value) == value
    assert table.to_legacy(value) == value


@pytest.mark.parametrize("value", [None, 3, ["x"]])
def test_non_strings_pass_through(value: Any) -> None:
    assert SEVERITY.to_graph(value) == value
    assert SEVERITY.to_legacy(value) == value


def test_strict_lookup_lists_accepted_values() -> None:
    with pytest.raises(ValueError, match="Invalid determination 'nope'") as info:
        DETERMINATION.require_graph("nope")
    message = str(info.value)
    assert "compromisedUser" in message
    assert "insufficientData" in message
    assert "also accepted: NotAvailable, NoEnoughDataToValidate." in message


# --------------------------------------------------------------------------------------------------
# Incidents
# --------------------------------------------------------------------------------------------------


def test_legacy_example_to_graph() -> None:
    graph = mapping.incident_to_graph(legacy_incident(), tenant_id=TENANT, portal=PORTAL + "/")
    assert graph["id"] == "924521"
    assert graph["tenantId"] == TENANT
    assert graph["incidentWebUrl"] == f"{PORTAL}/incidents/924521?tid={TENANT}"
    assert graph["displayName"] == "Hacktool detected on one endpoint"
    assert (graph["classification"], graph["determination"]) == ("unknown", "unknown")
    assert (graph["status"], graph["severity"]) == ("active", "low")
    assert graph["createdDateTime"] == "2024-05-02T12:18:03.6266667Z"
    assert graph["lastUpdateDateTime"] == "2024-05-02T12:18:03.81Z"
    assert graph["customTags"] == graph["systemTags"] == []
    for field in ("description", "summary", "priorityScore", "lastModifiedBy", "resolvingComment"):
        assert graph[field] is None
    assert graph["comments"] == [
        {
            "comment": "looking",
            "createdByDisplayName": "soc@contoso.com",
            "createdDateTime": "2024-05-02T12:30:00Z",
        }
    ]
    (alert,) = graph["alerts"]
    assert alert["id"] == alert["providerAlertId"] == "da638501234567890123_393341063"
    assert alert["incidentId"] == "924521"
    assert alert["serviceSource"] == "microsoftDefenderForEndpoint"
    assert alert["detectionSource"] == "antivirus"
    assert (alert["status"], alert["severity"]) == ("new", "low")
    assert alert["classification"] is None
    assert alert["createdDateTime"] == "2024-05-02T12:18:03.3285366Z"
    assert alert["alertWebUrl"] == f"{PORTAL}/alerts/da638501234567890123_393341063?tid={TENANT}"
    device, file = alert["evidence"]
    assert device["@odata.type"] == SEC + "deviceEvidence"
    assert device["mdeDeviceId"] == "24c222b0b60fe148eeece49ac83910cc6a7ef491"
    assert (device["healthStatus"], device["riskScore"]) == ("active", "high")
    assert device["firstSeenDateTime"] == "2024-02-06T14:16:01.9330135Z"
    assert file["@odata.type"] == SEC + "fileEvidence"
    assert file["fileDetails"] == {
        "sha1": "5de839186691aa96ee2ca6d74f0a38fb8d1bd6dd",
        "sha256": None,
        "fileName": "tool.dll",
        "filePath": "C:\\Temp",
    }
    assert file["mdeDeviceId"] == "24c222b0b60fe148eeece49ac83910cc6a7ef491"


def test_without_tenant_the_url_has_no_tid_and_alerts_can_be_left_out() -> None:
    graph = mapping.incident_to_graph(legacy_incident(), tenant_id=None, portal=PORTAL, include_alerts=False)
    assert graph["incidentWebUrl"] == f"{PORTAL}/incidents/924521"
    assert "alerts" not in graph


def test_graph_to_legacy_shape() -> None:
    legacy = mapping.incident_to_legacy(graph_incident())
    assert legacy["incidentId"] == 2972395
    assert (legacy["status"], legacy["severity"]) == ("Active", "High")
    assert (legacy["classification"], legacy["determination"]) == ("TruePositive", "Malware")
    assert legacy["tags"] == ["triage"]
    assert legacy["comments"][0] == {
        "comment": "isolating host",
        "createdBy": "analyst@contoso.com",
        "createdTime": "2024-05-02T09:30:00Z",
    }
    endpoint, mail = legacy["alerts"]
    assert endpoint["incidentId"] == 2972395
    assert endpoint["serviceSource"] == "MicrosoftDefenderATP"
    assert endpoint["detectionSource"] == "WindowsDefenderAv"
    assert endpoint["lastUpdatedTime"] == "2024-05-02T09:35:45.2566667Z"
    assert endpoint["investigationId"] is None
    (device,) = endpoint["devices"]
    assert list(device) == list(DEVICE_KEYS)
    assert (device["healthStatus"], device["riskScore"], device["osProcessor"]) == ("Active", "High", None)
    for entity in endpoint["entities"] + mail["entities"]:
        assert list(entity) == list(ENTITY_KEYS), "every entity carries every key"
    types = [entity["entityType"] for entity in endpoint["entities"] + mail["entities"]]
    endpoint_types = ["File", "Process", "User", "Ip", "Url", "Registry", "Registry", "SecurityGroup"]
    assert types == [*endpoint_types, "MailBox", "MailMessage", "MailCluster"]
    process = endpoint["entities"][1]
    assert (process["fileName"], process["accountName"], process["processCreationTime"]) == (
        "mimikatz.exe",
        "jdoe",
        "2024-05-02T08:40:07.7272048Z",
    )
    message = mail["entities"][1]
    assert (message["sender"], message["recipient"]) == ("bad@evil.example", "jdoe@contoso.com")
    assert mail["status"] == "InProgress"


def test_round_trip_keeps_every_field_legacy_carries() -> None:
    original = graph_incident()
    back = mapping.incident_to_graph(mapping.incident_to_legacy(original), tenant_id=TENANT, portal=PORTAL)
    assert _carried(back) == _carried(original)
    assert back["tenantId"] == TENANT
    assert list(back) == list(original), "same keys in the same order"


def test_round_trip_resets_what_legacy_loses() -> None:
    back = mapping.incident_to_graph(
        mapping.incident_to_legacy(graph_incident()), tenant_id=TENANT, portal=PORTAL
    )
    for field in INCIDENT_FIELDS_LOST_BY_LEGACY:
        assert back[field] in (None, [])
    alert = back["alerts"][0]
    for field in ALERT_FIELDS_LOST_BY_LEGACY:
        assert alert[field] in (None, [])
    device, file = alert["evidence"][:2]
    assert device["tags"] == ["from-graph"], "device tags survive"
    assert file["tags"] == []
    assert (file["verdict"], file["createdDateTime"], file["roles"]) == (None, None, [])


def test_legacy_round_trip_keeps_the_doc_example() -> None:
    original = legacy_incident()
    graph = mapping.incident_to_graph(original, tenant_id=TENANT, portal=PORTAL)
    back = mapping.incident_to_legacy(graph)
    expected = copy.deepcopy(original)
    alert = expected["alerts"][0]
    alert.update(investigationState=None, detectorId=None)  # Graph has no investigation fields
    alert["devices"] = [
        {**dict.fromkeys(DEVICE_KEYS), **alert["devices"][0], "osProcessor": None, "tags": []}
    ]
    alert["entities"] = [{**dict.fromkeys(ENTITY_KEYS), **alert["entities"][0]}]
    assert back == {**expected, "alerts": [{**alert}]}


def test_nested_graph_details_without_a_legacy_key_are_dropped() -> None:
    incident = graph_incident()
    evidence = incident["alerts"][0]["evidence"][1]
    evidence["fileDetails"]["fileSize"] = 1234
    back = mapping.incident_to_graph(mapping.incident_to_legacy(incident), tenant_id=TENANT, portal=PORTAL)
    assert "fileSize" not in back["alerts"][0]["evidence"][1]["fileDetails"]


def test_empty_nested_objects_become_null() -> None:
    legacy = legacy_incident()
    legacy["alerts"][0]["entities"] = [{"entityType": "Process", "processId": 7}]
    (process,) = mapping.incident_to_graph(legacy, tenant_id=TENANT, portal=PORTAL)["alerts"][0]["evidence"][
        1:
    ]
    assert process["processId"] == 7
    assert process["imageFile"] is None
    assert process["userAccount"] is None


def test_registry_key_or_value_by_content() -> None:
    legacy = legacy_incident()
    legacy["alerts"][0]["entities"] = [
        {"entityType": "Registry", "registryHive": "HKLM", "registryKey": "k"},
        {"entityType": "Registry", "registryHive": "HKLM", "registryKey": "k", "registryValue": "v"},
    ]
    evidence = mapping.incident_to_graph(legacy, tenant_id=TENANT, portal=PORTAL)["alerts"][0]["evidence"][1:]
    assert [item["@odata.type"] for item in evidence] == [
        SEC + "registryKeyEvidence",
        SEC + "registryValueEvidence",
    ]


def test_unknown_entity_and_evidence_types_pass_through() -> None:
    legacy = legacy_incident()
    legacy["alerts"][0]["entities"] = [
        {"entityType": "CloudApplication", "url": "https://app.example", "sha1": None}
    ]
    graph = mapping.incident_to_graph(legacy, tenant_id=TENANT, portal=PORTAL)
    evidence = graph["alerts"][0]["evidence"][1]
    assert evidence["@odata.type"] == SEC + "cloudApplicationEvidence"
    assert evidence["url"] == "https://app.example"
    assert "sha1" not in evidence
    entity = mapping.incident_to_legacy(graph)["alerts"][0]["entities"][0]
    assert (entity["entityType"], entity["url"]) == ("CloudApplication", "https://app.example")


def test_incident_without_alerts_serves_an_empty_legacy_list() -> None:
    incident = graph_incident()
    del incident["alerts"]
    assert mapping.incident_to_legacy(incident)["alerts"] == []


def test_non_numeric_ids_pass_through_instead_of_failing() -> None:
    assert mapping.incident_to_legacy({"id": "abc"})["incidentId"] == "abc"


# --------------------------------------------------------------------------------------------------
# Update bodies and filters
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "graph", "legacy"),
    [
        ({"status": "Resolved"}, {"status": "resolved"}, {"status": "Resolved"}),
        ({"status": "inProgress"}, {"status": "inProgress"}, {"status": "InProgress"}),
        (
            {"classification": "truepositive"},
            {"classification": "truePositive"},
            {"classification": "TruePositive"},
        ),
        (
            {"determination": "CompromisedUser"},
            {"determination": "compromisedUser"},
            {"determination": "CompromisedUser"},
        ),
        (
            {"determination": "compromisedAccount"},
            {"determination": "compromisedAccount"},
            {"determination": "CompromisedAccount"},
        ),
        (
            {"determination": "ConfirmedUserActivity"},
            {"determination": "confirmedUserActivity"},
            {"determination": "ConfirmedUserActivity"},
        ),
        ({"determination": "notMalicious"}, {"determination": "notMalicious"}, {"determination": "Clean"}),
        ({"determination": "Clean"}, {"determination": "clean"}, {"determination": "Clean"}),
        (
            {"determination": "NoEnoughDataToValidate"},
            {"determination": "notEnoughDataToValidate"},
            {"determination": "NoEnoughDataToValidate"},
        ),
        (
            {"determination": "insufficientData"},
            {"determination": "insufficientData"},
            {"determination": "InsufficientData"},
        ),
        ({"assigned_to": ""}, {"assignedTo": ""}, {"assignedTo": ""}),
        ({"tags": ("a", "b")}, {"customTags": ["a", "b"]}, {"tags": ["a", "b"]}),
        ({}, {}, {}),
    ],
)
def test_update_bodies(kwargs: dict[str, Any], graph: dict[str, Any], legacy: dict[str, Any]) -> None:
    assert mapping.graph_update_body(**kwargs) == graph
    assert mapping.legacy_update_body(**kwargs) == legacy


def test_legacy_update_body_carries_the_doc_example() -> None:
    body = mapping.legacy_update_body(
        status="resolved",
        assigned_to="soc@contoso.com",
        classification="truePositive",
        determination="malware",
        tags=["ir-42"],
        comment="contained",
    )
    assert body == {
        "status": "Resolved",
        "classification": "TruePositive",
        "determination": "Malware",
        "assignedTo": "soc@contoso.com",
        "tags": ["ir-42"],
        "comment": "contained",
    }


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        (
            {"status": "closed"},
            "Invalid incident status 'closed'. Accepted values (case-insensitive): "
            "active, inProgress, resolved, redirected.",
        ),
        (
            {"classification": "bad"},
            "Invalid classification 'bad'. Accepted values (case-insensitive): "
            "unknown, falsePositive, truePositive, informationalExpectedActivity.",
        ),
        ({"status": "unknownFutureValue"}, "Invalid incident status 'unknownFutureValue'."),
        (
            {"determination": "Benign"},
            "Invalid determination 'Benign'. Accepted values (case-insensitive): unknown, apt,",
        ),
        ({"status": 3}, "Invalid incident status 3."),
        ({"tags": "abc"}, "tags must be a list of strings"),
        ({"tags": ["a", 1]}, "tags must be a list of strings"),
        ({"assigned_to": 7}, "assignedTo must be a string"),
    ],
)
def test_update_body_validation(kwargs: dict[str, Any], expected: str) -> None:
    with pytest.raises(ValueError, match="^" + re.escape(expected)):
        mapping.graph_update_body(**kwargs)
    with pytest.raises(ValueError, match=re.escape(expected.split(" Accepted")[0])):
        mapping.legacy_update_body(**kwargs)


def test_legacy_error_lists_mtp_spellings() -> None:
    with pytest.raises(ValueError, match="Invalid determination") as info:
        mapping.legacy_update_body(determination="nope")
    message = str(info.value)
    assert message.startswith(
        "Invalid determination 'nope'. Accepted values (case-insensitive): NotAvailable, Apt,"
    )
    assert "also accepted: unknown, notMalicious, notEnoughDataToValidate." in message


@pytest.mark.parametrize("comment", ["", "   ", 5])
def test_legacy_comment_must_be_text(comment: Any) -> None:
    with pytest.raises(ValueError, match="comment must be a non-blank string"):
        mapping.legacy_update_body(comment=comment)


def test_filter_field_names() -> None:
    assert mapping.GRAPH_TO_LEGACY_FILTER_FIELDS == {
        "lastUpdateDateTime": "lastUpdateTime",
        "createdDateTime": "createdTime",
        "status": "status",
        "assignedTo": "assignedTo",
    }
    assert mapping.LEGACY_TO_GRAPH_FILTER_FIELDS["lastUpdateTime"] == "lastUpdateDateTime"
