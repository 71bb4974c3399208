"""The identity and cloud-app hunting tables: IdentityLogonEvents, IdentityDirectoryEvents, CloudAppEvents."""

from __future__ import annotations

from airflow_provider_mtp.emulator.synthetic.event_sql import EventSQL
from airflow_provider_mtp.emulator.tenant_data.estate import AD_DOMAIN, DC_IPS, DOMAIN, OFFICE_EGRESS_IP

_DC_NAMES = [f"srv-dc-01.{AD_DOMAIN}", f"srv-dc-02.{AD_DOMAIN}"]


class IdentityEventTables(EventSQL):
    """IdentityLogonEvents, IdentityDirectoryEvents and CloudAppEvents."""

    def identity_logon_events(self, per_day: int) -> None:
        self.scope = "IdentityLogonEvents"
        ip = f"CASE p.ip WHEN 'internal' THEN d.ip WHEN 'office' THEN '{OFFICE_EGRESS_IP}' ELSE p.ip END"
        on_prem = "p.app = 'Active Directory'"
        columns = {
            "Timestamp": "b._ts",
            "ActionType": "p.action",
            "Application": "p.app",
            "LogonType": "p.logon_type",
            "Protocol": "NULLIF(p.proto, '')",
            "FailureReason": "NULLIF(p.failure, '')",
            "AccountName": "u.account_name",
            "AccountDomain": f"'{DOMAIN}'",
            "AccountUpn": "u.upn",
            "AccountSid": "u.sid",
            "AccountObjectId": "u.object_id",
            "AccountDisplayName": "u.display_name",
            "DeviceName": f"CASE WHEN {on_prem} THEN d.device_name END",
            "DeviceType": f"CASE WHEN {on_prem} THEN d.device_type END",
            "OSPlatform": f"CASE WHEN {on_prem} THEN d.os_platform END",
            "IPAddress": ip,
            "Port": f"CASE WHEN {on_prem} THEN 49152 + {self.rand('port', 16000)} END",
            "DestinationDeviceName": f"CASE WHEN {on_prem} THEN {self.pick(_DC_NAMES, 'dc')} END",
            "DestinationIPAddress": f"CASE WHEN {on_prem} THEN {self.pick(list(DC_IPS), 'dc')} END",
            "DestinationPort": "CASE WHEN p.proto = 'Kerberos' THEN 88 WHEN p.proto = 'Ntlm' THEN 445 END",
            # A Kerberos service ticket names the server the user goes on to reach.
            "TargetDeviceName": f"CASE WHEN p.logon_type = 'Resource access' THEN {self.pick(self.member_servers(), 'target')} END",
            "Location": f"CASE WHEN p.ip LIKE '203.%' THEN 'RU' WHEN {on_prem} THEN NULL ELSE u.country END",
            "Isp": f"CASE WHEN p.ip LIKE '203.%' THEN 'Example Hosting Ltd' WHEN {on_prem} THEN NULL ELSE 'Contoso ISP' END",
            "ReportId": self.guid("idlogon"),
            "AdditionalFields": 'CASE WHEN p.ip LIKE \'203.%\' THEN \'{"Country":"RU","Source":"EntraID"}\' ELSE \'{}\' END',
        }
        source = f"FROM {self.base(per_day * self.days, per_day)} {self.device_join()} {self.owner_join()} {self.profile_join('idlogon')}"
        self.insert("IdentityLogonEvents", columns, source)

    def member_servers(self) -> list[str]:
        """FQDNs of the Windows servers that are not domain controllers."""
        return [
            device.dns_name
            for device in self.devices
            if device.device_type == "Server"
            and device.os_platform != "Linux"
            and device.role != "DomainController"
        ]

    def directory_events(self, per_day: int) -> None:
        self.scope = "IdentityDirectoryEvents"
        columns = {
            "Timestamp": "b._ts",
            "ActionType": "p.action",
            "Application": "'Active Directory'",
            "TargetAccountUpn": "t.upn",
            "TargetAccountDisplayName": "t.display_name",
            "TargetDeviceName": "CASE WHEN p.action = 'SMB file copy' THEN d2.device_name END",
            "DestinationDeviceName": self.pick(_DC_NAMES, "dc"),
            "DestinationIPAddress": self.pick(list(DC_IPS), "dc"),
            "DestinationPort": "CASE p.proto WHEN 'Ldap' THEN 389 WHEN 'Smb' THEN 445 ELSE 135 END",
            "Protocol": "p.proto",
            "AccountName": "u.account_name",
            "AccountDomain": f"'{DOMAIN}'",
            "AccountUpn": "u.upn",
            "AccountSid": "u.sid",
            "AccountObjectId": "u.object_id",
            "AccountDisplayName": "u.display_name",
            "DeviceName": "d.device_name",
            "IPAddress": "d.ip",
            "Port": f"49152 + {self.rand('port', 16000)}",
            "ReportId": self.guid("dir"),
            "AdditionalFields": self.fill("p.extra", user="t.account_name", host="d.device_name"),
        }
        # The actor is an IT admin's workstation most of the time; the target is anyone.
        source = (
            f"FROM {self.base(per_day * self.days, per_day)} {self.device_join()} {self.owner_join()} "
            f"{self.device_join('d2', 'dev2')} {self.user_join('t', 'target')} {self.profile_join('dir')}"
        )
        self.insert("IdentityDirectoryEvents", columns, source)

    def cloud_app_events(self, per_day: int) -> None:
        self.scope = "CloudAppEvents"
        suspicious = "p.ip <> 'office'"
        ip = f"CASE WHEN {suspicious} THEN p.ip ELSE '{OFFICE_EGRESS_IP}' END"
        raw = f"json_object('Operation', p.action, 'UserId', u.upn, 'ClientIP', {ip}, 'Workload', p.app)::VARCHAR"
        columns = {
            "Timestamp": "b._ts",
            "ActionType": "p.action",
            "Application": "p.app",
            "ApplicationId": "p.app_id",
            "AccountObjectId": "u.object_id",
            "AccountId": "u.object_id",
            "AccountDisplayName": "u.display_name",
            "IsAdminOperation": "p.action = 'Set-Mailbox'",
            "DeviceType": "'Desktop'",
            "OSPlatform": "'Windows'",
            "IPAddress": ip,
            "IsAnonymousProxy": suspicious,
            "CountryCode": f"CASE WHEN {suspicious} THEN 'NG' ELSE u.country END",
            "City": f"CASE WHEN {suspicious} THEN 'Lagos' ELSE u.city END",
            "Isp": f"CASE WHEN {suspicious} THEN 'Example Hosting Ltd' ELSE 'Contoso ISP' END",
            "UserAgent": "'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36 Edg/126.0.0.0'",
            "ActivityType": "p.activity",
            "ObjectName": self.fill("p.obj", host="''"),
            "ObjectType": "p.obj_type",
            "ReportId": self.guid("cloud"),
            "AccountType": "'Regular'",
            "IsExternalUser": "false",
            "IsImpersonated": "false",
            "RawEventData": raw,
            "AppInstanceId": "0",
            "ActivityObjects": "json_array(json_object('Type', p.obj_type, 'Name', "
            + self.fill("p.obj", host="''")
            + "))::VARCHAR",
            "ObjectId": f"CASE WHEN p.obj_type = 'File' THEN {self.guid('object')} END",
            "IPTags": f"CASE WHEN {suspicious} THEN '[\"Anonymous proxy\"]' ELSE '[\"Contoso egress\"]' END",
            "IPCategory": f"CASE WHEN {suspicious} THEN 'Hosting' ELSE 'Corporate' END",
            "UserAgentTags": "'[\"Browser\"]'",
            "UncommonForUser": f'CASE WHEN {suspicious} THEN \'["ISP","CountryCode","IPAddress"]\' ELSE \'[]\' END',
            "LastSeenForUser": f'CASE WHEN {suspicious} THEN \'{{"ISP":-1,"CountryCode":-1,"IPAddress":-1}}\' ELSE \'{{"ISP":0,"CountryCode":0,"IPAddress":0}}\' END',
            "SessionData": f"json_object('InteractiveSessionId', {self.guid('session')})::VARCHAR",
            "AuditSource": "'Defender for Cloud Apps access control'",
        }
        source = f"FROM {self.base(per_day * self.days, per_day)} {self.user_join(people_only=True)} {self.profile_join('cloud')}"
        self.insert("CloudAppEvents", columns, source)
