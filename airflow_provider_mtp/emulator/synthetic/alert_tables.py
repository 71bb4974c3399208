"""AlertInfo and AlertEvidence rows, derived from the incidents' alerts.

Built once with the tenant, and again for one alert whenever the incident store changes it
(:mod:`~airflow_provider_mtp.emulator.alert_rows`): an alert made or changed in a test may lack
what synthetic alerts carry, so every field is read with a default.
"""

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


#: The hunting tables made from alerts, in the order :func:`rows_of_alert` returns their rows.
ALERT_TABLES = ("AlertInfo", "AlertEvidence")


def _alert_common(alert: Mapping[str, Any]) -> dict[str, Any]:
    service, detection = alert.get("serviceSource"), alert.get("detectionSource")
    return {
        "Timestamp": alert["createdDateTime"],
        "AlertId": alert["id"],
        "Title": alert.get("title"),
        "AttackTechniques": _attack_techniques(alert),
        "ServiceSource": SERVICE_SOURCE_NAMES.get(str(service), service),
        "DetectionSource": DETECTION_SOURCE_NAMES.get(str(detection), detection),
    }


def _info_row(alert: Mapping[str, Any]) -> dict[str, Any]:
    return {
        **_alert_common(alert),
        "Category": alert.get("category"),
        "Severity": _hunting_severity(alert.get("severity") or ""),
    }


def _evidence_rows(alert: Mapping[str, Any]) -> list[dict[str, Any]]:
    common = {
        **_alert_common(alert),
        "Categories": json.dumps([alert.get("category")]),
        "Severity": _hunting_severity(alert.get("severity") or ""),
    }
    evidence = [item for item in alert.get("evidence") or () if isinstance(item, Mapping)]
    device = next((e for e in evidence if _kind(e) == "deviceEvidence"), None)
    family = alert.get("threatFamilyName")
    return [{**common, **_evidence_columns(item, device, family)} for item in evidence]


def rows_of_alert(alert: Mapping[str, Any]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """One alert's AlertInfo row and AlertEvidence rows (one per evidence item)."""
    return [_info_row(alert)], _evidence_rows(alert)


def _by_time(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(rows, key=lambda row: (parse_datetime(row["Timestamp"]), row["AlertId"]))


def alert_info_rows(incidents: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """One AlertInfo row per alert of the incidents, ordered by time."""
    return _by_time([_info_row(alert) for incident in incidents for alert in incident["alerts"]])


def alert_evidence_rows(incidents: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """One AlertEvidence row per evidence item of the incidents' alerts, ordered by time."""
    return _by_time(
        [row for incident in incidents for alert in incident["alerts"] for row in _evidence_rows(alert)]
    )


def _kind(item: Mapping[str, Any]) -> str:
    return str(item.get("@odata.type") or "").rsplit(".", 1)[-1]


def _evidence_columns(
    item: Mapping[str, Any], device: Mapping[str, Any] | None, threat_family: str | None = None
) -> dict[str, Any]:
    """The AlertEvidence columns one evidence item fills."""
    kind = _kind(item)
    # A kind the tenant never makes (a test's own evidence): its name, without "Evidence".
    entity_type, role = EVIDENCE_ENTITY_TYPES.get(
        kind, (kind.removesuffix("Evidence").capitalize(), "Related")
    )
    row: dict[str, Any] = {
        "EntityType": entity_type,
        "EvidenceRole": role,
        "AdditionalFields": json.dumps(
            {
                "Verdict": item.get("verdict"),
                "RemediationStatus": item.get("remediationStatus"),
                "Roles": item.get("roles"),
            }
        ),
    }
    source = item if kind == "deviceEvidence" else device if "mdeDeviceId" in item else None
    if source:
        row.update(
            DeviceId=source.get("mdeDeviceId"),
            DeviceName=source.get("deviceDnsName"),
            LocalIP=source.get("lastIpAddress"),
        )
    account = item.get("userAccount")
    if account and kind in ("userEvidence", "mailboxEvidence", "processEvidence"):
        row.update(
            AccountName=account.get("accountName"),
            AccountDomain=account.get("domainName"),
            AccountSid=account.get("userSid"),
            AccountObjectId=account.get("azureAdUserId"),
            AccountUpn=account.get("userPrincipalName"),
        )
    details = item.get("fileDetails") or item.get("imageFile")
    if details:
        row.update(
            ThreatFamily=threat_family,
            FileName=details.get("fileName"),
            FolderPath=details.get("filePath"),
            SHA1=details.get("sha1"),
            SHA256=details.get("sha256"),
            FileSize=details.get("fileSize"),
        )
    row.update(_evidence_specifics(kind, item))
    return row


def _evidence_specifics(kind: str, item: Mapping[str, Any]) -> dict[str, Any]:
    if kind == "processEvidence":
        return {"ProcessCommandLine": item.get("processCommandLine")}
    if kind == "ipEvidence":
        return {"RemoteIP": item.get("ipAddress"), "EvidenceDirection": "Source"}
    if kind == "urlEvidence":
        return {"RemoteUrl": item.get("url")}
    if kind == "analyzedMessageEvidence":
        return {
            "NetworkMessageId": item.get("networkMessageId"),
            "EmailSubject": item.get("subject"),
            "AccountUpn": item.get("recipientEmailAddress"),
        }
    if kind == "registryValueEvidence":
        return {
            "RegistryKey": f"{item.get('registryHive') or ''}\\{item.get('registryKey') or ''}",
            "RegistryValueName": item.get("registryValueName"),
            "RegistryValueData": item.get("registryValue"),
        }
    return {}
