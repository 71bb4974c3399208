"""AlertInfo and AlertEvidence rows, derived from the incidents."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from airflow_provider_mtp.emulator.synthetic.hunting_tables import parse_datetime
from airflow_provider_mtp.emulator.tenant_data.incidents import (
    DETECTION_SOURCE_NAMES,
    EVIDENCE_ENTITY_TYPES,
    MITRE_TECHNIQUES,
    SERVICE_SOURCE_NAMES,
)


def _hunting_severity(value: str) -> str:
    return value[:1].upper() + value[1:]


def _attack_techniques(alert: Mapping[str, Any]) -> str:
    names = [f"{MITRE_TECHNIQUES.get(t, t)} ({t})" for t in alert.get("mitreTechniques") or []]
    return json.dumps(names)


def _alert_common(alert: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "Timestamp": alert["createdDateTime"],
        "AlertId": alert["id"],
        "Title": alert["title"],
        "AttackTechniques": _attack_techniques(alert),
        "ServiceSource": SERVICE_SOURCE_NAMES.get(alert["serviceSource"], alert["serviceSource"]),
        "DetectionSource": DETECTION_SOURCE_NAMES.get(alert["detectionSource"], alert["detectionSource"]),
    }


def alert_info_rows(incidents: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """One AlertInfo row per alert of the incidents, ordered by time."""
    rows = [
        {
            **_alert_common(alert),
            "Category": alert["category"],
            "Severity": _hunting_severity(alert["severity"]),
        }
        for incident in incidents
        for alert in incident["alerts"]
    ]
    return sorted(rows, key=lambda row: (parse_datetime(row["Timestamp"]), row["AlertId"]))


def alert_evidence_rows(incidents: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """One AlertEvidence row per evidence item of the incidents' alerts, ordered by time."""
    rows: list[dict[str, Any]] = []
    for incident in incidents:
        for alert in incident["alerts"]:
            common = {
                **_alert_common(alert),
                "Categories": json.dumps([alert["category"]]),
                "Severity": _hunting_severity(alert["severity"]),
            }
            device = next(
                (e for e in alert["evidence"] if e["@odata.type"].endswith(".deviceEvidence")), None
            )
            family = alert["threatFamilyName"]
            rows.extend({**common, **_evidence_columns(item, device, family)} for item in alert["evidence"])
    return sorted(rows, key=lambda row: (parse_datetime(row["Timestamp"]), row["AlertId"]))


def _evidence_columns(
    item: Mapping[str, Any], device: Mapping[str, Any] | None, threat_family: str | None = None
) -> dict[str, Any]:
    """The AlertEvidence columns one evidence item fills."""
    kind = item["@odata.type"].rsplit(".", 1)[-1]
    entity_type, role = EVIDENCE_ENTITY_TYPES[kind]
    row: dict[str, Any] = {
        "EntityType": entity_type,
        "EvidenceRole": role,
        "AdditionalFields": json.dumps(
            {
                "Verdict": item["verdict"],
                "RemediationStatus": item["remediationStatus"],
                "Roles": item["roles"],
            }
        ),
    }
    source = item if kind == "deviceEvidence" else device if "mdeDeviceId" in item else None
    if source:
        row.update(
            DeviceId=source["mdeDeviceId"],
            DeviceName=source["deviceDnsName"],
            LocalIP=source["lastIpAddress"],
        )
    account = item.get("userAccount")
    if account and kind in ("userEvidence", "mailboxEvidence", "processEvidence"):
        row.update(
            AccountName=account["accountName"],
            AccountDomain=account["domainName"],
            AccountSid=account["userSid"],
            AccountObjectId=account["azureAdUserId"],
            AccountUpn=account["userPrincipalName"],
        )
    details = item.get("fileDetails") or item.get("imageFile")
    if details:
        row.update(
            ThreatFamily=threat_family,
            FileName=details["fileName"],
            FolderPath=details["filePath"],
            SHA1=details["sha1"],
            SHA256=details["sha256"],
            FileSize=details["fileSize"],
        )
    row.update(_evidence_specifics(kind, item))
    return row


def _evidence_specifics(kind: str, item: Mapping[str, Any]) -> dict[str, Any]:
    if kind == "processEvidence":
        return {"ProcessCommandLine": item["processCommandLine"]}
    if kind == "ipEvidence":
        return {"RemoteIP": item["ipAddress"], "EvidenceDirection": "Source"}
    if kind == "urlEvidence":
        return {"RemoteUrl": item["url"]}
    if kind == "analyzedMessageEvidence":
        return {
            "NetworkMessageId": item["networkMessageId"],
            "EmailSubject": item["subject"],
            "AccountUpn": item["recipientEmailAddress"],
        }
    if kind == "registryValueEvidence":
        return {
            "RegistryKey": f"{item['registryHive']}\\{item['registryKey']}",
            "RegistryValueName": item["registryValueName"],
            "RegistryValueData": item["registryValue"],
        }
    return {}
