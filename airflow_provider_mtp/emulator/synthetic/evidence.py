"""The typed evidence list of one alert (Graph ``alertEvidence`` subtypes) and the API time format."""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass, field
from typing import Any

from airflow_provider_mtp.common.ticks import TICKS_PER_SECOND as _TICKS_PER_SECOND
from airflow_provider_mtp.common.ticks import format_ticks as _format_ticks
from airflow_provider_mtp.common.ticks import instant_ticks
from airflow_provider_mtp.emulator.synthetic.estate import Device, User
from airflow_provider_mtp.emulator.synthetic.images import file_hashes, file_size, image_path, split_path
from airflow_provider_mtp.emulator.tenant_data.activity import RUN_KEY
from airflow_provider_mtp.emulator.tenant_data.estate import NETBIOS_DOMAIN
from airflow_provider_mtp.emulator.tenant_data.incidents import MIMIKATZ_FILE, AlertTemplate


def format_ticks(ticks: int) -> str:
    """``2024-05-02T08:43:35.5533333Z`` with trailing fractional zeros dropped, as the API writes."""
    return _format_ticks(ticks, trim=True)


@dataclass(frozen=True, kw_only=True)
class AlertContext:
    """What every alert of one incident shares."""

    incident_id: str
    web_url: str
    created: int
    updated: int
    status: str
    classification: str
    determination: str
    assigned_to: str | None
    device: Device
    user: User
    peer: Device


@dataclass
class Evidence:
    """The typed evidence list of one alert (Graph ``alertEvidence`` subtypes)."""

    rng: random.Random
    template: AlertTemplate
    ctx: AlertContext
    created: int
    resolved: bool
    items: list[dict[str, Any]] = field(default_factory=list)

    def build(self) -> list[dict[str, Any]]:
        makers = {
            "device": lambda: self.device(self.ctx.device, ["compromised"]),
            "peer": lambda: self.device(self.ctx.peer, ["destination"]),
            "user": self.user,
            "file": self.file,
            "process": self.process,
            "ip": self.ip,
            "url": self.url,
            "mailbox": self.mailbox,
            "message": self.message,
            "registry": self.registry,
        }
        for kind in self.template.evidence:
            self.items.append(makers[kind]())
        return self.items

    def common(self, kind: str, roles: list[str], verdict: str = "suspicious") -> dict[str, Any]:
        remediation = self.rng.choice(("remediated", "prevented", "blocked")) if self.resolved else "none"
        return {
            "@odata.type": f"#microsoft.graph.security.{kind}",
            "createdDateTime": format_ticks(self.created),
            "verdict": verdict,
            "remediationStatus": remediation,
            "remediationStatusDetails": None,
            "roles": roles,
            "detailedRoles": [],
            "tags": [],
        }

    def fill(self, text: str) -> str:
        return text.replace("{user}", self.ctx.user.account_name).replace("{host}", self.ctx.peer.device_name)

    def user_account(self, user: User) -> dict[str, Any]:
        return {
            "accountName": user.account_name,
            "domainName": user.account_domain,
            "userSid": user.sid,
            "azureAdUserId": user.object_id,
            "userPrincipalName": user.upn,
            "displayName": user.display_name,
        }

    def device(self, device: Device, roles: list[str]) -> dict[str, Any]:
        return {
            **self.common("deviceEvidence", roles, "unknown"),
            "firstSeenDateTime": format_ticks(instant_ticks(device.first_seen)),
            "mdeDeviceId": device.device_id,
            "azureAdDeviceId": device.aad_device_id or None,
            "deviceDnsName": device.dns_name,
            "hostName": device.device_name,
            "ntDomain": NETBIOS_DOMAIN,
            "dnsDomain": device.dns_name.partition(".")[2],
            "osPlatform": device.os_platform,
            "osBuild": device.os_build,
            "version": device.os_version,
            "healthStatus": "active",
            "riskScore": device.risk_score,
            "rbacGroupId": device.rbac_group_id,
            "rbacGroupName": device.rbac_group,
            "onboardingStatus": "onboarded",
            "defenderAvStatus": "updated",
            "lastIpAddress": device.ip,
            "lastExternalIpAddress": device.public_ip,
            "ipInterfaces": [device.ip],
            "loggedOnUsers": [{"accountName": self.ctx.user.account_name, "domainName": NETBIOS_DOMAIN}],
            "vmMetadata": None,
        }

    def user(self) -> dict[str, Any]:
        return {
            **self.common("userEvidence", ["compromised"]),
            "userAccount": self.user_account(self.ctx.user),
        }

    def file_details(self, name: str, folder: str, publisher: str | None) -> dict[str, Any]:
        # Hashes and size come from the path template, as in the Device tables.
        sha1, sha256, md5 = file_hashes(folder + name)
        return {
            "fileName": name,
            "filePath": self.fill(folder).rstrip("\\"),
            "filePublisher": publisher,
            "fileSize": file_size(folder + name),
            "issuer": None,
            "signer": publisher,
            "md5": md5,
            "sha1": sha1,
            "sha256": sha256,
            "sha256Ac": None,
        }

    def file(self) -> dict[str, Any]:
        name, folder, publisher = self.template.file or MIMIKATZ_FILE
        return {
            **self.common("fileEvidence", [], "malicious"),
            "fileDetails": self.file_details(name, folder, publisher),
            "mdeDeviceId": self.ctx.device.device_id,
            "detectionStatus": "prevented" if self.resolved else "detected",
        }

    def process(self) -> dict[str, Any]:
        command = self.fill(self.template.command_line or "cmd.exe")
        image = command.split()[0].strip('"')
        folder, image = split_path(image_path(image))
        parent_folder, parent = split_path(image_path(self.template.parent))
        started = self.created - self.rng.randrange(60, 3600) * _TICKS_PER_SECOND
        parent_started = started - self.rng.randrange(60, 86_400) * _TICKS_PER_SECOND
        return {
            **self.common("processEvidence", [], "malicious"),
            "processId": 4 * self.rng.randrange(1, 4000),
            "parentProcessId": 4 * self.rng.randrange(1, 4000),
            "processCommandLine": command,
            "processCreationDateTime": format_ticks(started - started % _TICKS_PER_SECOND),
            "parentProcessCreationDateTime": format_ticks(
                parent_started - parent_started % _TICKS_PER_SECOND
            ),
            "imageFile": self.file_details(image, folder, None),
            "parentProcessImageFile": self.file_details(parent, parent_folder, "Microsoft Corporation"),
            "userAccount": self.user_account(self.ctx.user),
            "mdeDeviceId": self.ctx.device.device_id,
            "detectionStatus": "detected",
        }

    def ip(self) -> dict[str, Any]:
        address = self.template.ip or self.ctx.peer.ip
        return {
            **self.common("ipEvidence", ["attacker"], "malicious"),
            "ipAddress": address,
            "countryLetterCode": "RU",
        }

    def url(self) -> dict[str, Any]:
        return {
            **self.common("urlEvidence", [], "malicious"),
            "url": self.template.url or "http://evil-c2.example.net/",
        }

    def mailbox(self) -> dict[str, Any]:
        user = self.ctx.user
        return {
            **self.common("mailboxEvidence", ["compromised"], "unknown"),
            "primaryAddress": user.upn,
            "displayName": user.display_name,
            "userAccount": self.user_account(user),
        }

    def message(self) -> dict[str, Any]:
        sender = self.template.sender or "it-support@micros0ft-security.example"
        return {
            **self.common("analyzedMessageEvidence", [], "malicious"),
            "networkMessageId": str(uuid.UUID(int=self.rng.getrandbits(128), version=4)),
            "internetMessageId": f"<{self.rng.getrandbits(64):016x}@{sender.split('@')[1]}>",
            "subject": self.template.subject,
            "senderIp": "203.0.113.45",
            "recipientEmailAddress": self.ctx.user.upn,
            "p1Sender": {
                "emailAddress": sender,
                "displayName": "IT Support",
                "domainName": sender.split("@")[1],
            },
            "p2Sender": {
                "emailAddress": sender,
                "displayName": "IT Support",
                "domainName": sender.split("@")[1],
            },
            "deliveryAction": "delivered",
            "deliveryLocation": "inbox",
            "threats": ["Phish"],
            "threatDetectionMethods": ["urlMaliciousReputation"],
            "urlCount": 1,
            "attachmentsCount": 0,
            "receivedDateTime": format_ticks(self.created),
            "language": "en",
            "antiSpamDirection": "inbound",
        }

    def registry(self) -> dict[str, Any]:
        key, name, data = self.template.registry or (RUN_KEY, "Updater", "C:\\Users\\Public\\updater.exe")
        hive, _, path = key.partition("\\")
        return {
            **self.common("registryValueEvidence", [], "suspicious"),
            "registryHive": hive,
            "registryKey": path,
            "registryValueName": name,
            "registryValue": data,
            "registryValueType": "String",
            "mdeDeviceId": self.ctx.device.device_id,
        }
