"""The Device*Events hunting tables, written with set-based SQL."""

from __future__ import annotations

from airflow_provider_mtp.emulator.synthetic.event_sql import EventSQL
from airflow_provider_mtp.emulator.tenant_data.activity import FILE_ACTIONS, NETWORK_ACTIONS


class DeviceEventTables(EventSQL):
    """The Device*Events tables: process, network, file, logon, device, registry and image-load events."""

    def process_events(self, per_day: int) -> None:
        self.scope = "DeviceProcessEvents"
        folder = self.fill("p.path")
        columns = {
            "Timestamp": "b._ts",
            "DeviceId": "d.device_id",
            "DeviceName": "d.device_name",
            "ActionType": "'ProcessCreated'",
            "FileName": "p.file",
            "FolderPath": folder,
            "SHA1": "p.sha1",
            "SHA256": "p.sha256",
            "MD5": "p.md5",
            "FileSize": f"50000 + {self.rand('size', 5_000_000)}",
            "ProcessVersionInfoCompanyName": "p.company",
            "ProcessId": f"4 + 4 * {self.rand('pid', 4000)}",
            "ProcessCommandLine": self.fill("p.cmd"),
            "ProcessIntegrityLevel": "p.integrity",
            "ProcessTokenElevation": "CASE WHEN p.integrity = 'Medium' THEN 'TokenElevationTypeLimited' ELSE 'TokenElevationTypeDefault' END",
            "ProcessCreationTime": "b._ts",
            **self.account_columns(""),
            "LogonId": f"100000 + {self.rand('logon', 900000)}",
            **self.account_columns("InitiatingProcess"),
            "InitiatingProcessFileName": "p.parent",
            "InitiatingProcessFolderPath": self.fill("p.parent_path"),
            "InitiatingProcessId": f"4 + 4 * {self.rand('ppid', 4000)}",
            "InitiatingProcessCommandLine": "p.parent",
            "InitiatingProcessSHA256": "sha256(lower(p.parent))",
            "ReportId": "b.i + 1",
            "AdditionalFields": "NULLIF(p.extra, '')",
            "ProcessUniqueId": f"CAST({self.rand('puid', 10**12)} AS VARCHAR)",
        }
        source = f"FROM {self.base(per_day * self.days, per_day)} {self.device_join()} {self.owner_join()} {self.device_join('d2', 'dev2')} {self.profile_join('proc')}"
        self.insert("DeviceProcessEvents", columns, source)

    def network_events(self, per_day: int) -> None:
        self.scope = "DeviceNetworkEvents"
        inbound = "p.kind = 'in'"
        public = "p.kind = 'out'"
        columns = {
            "Timestamp": "b._ts",
            "DeviceId": "d.device_id",
            "DeviceName": "d.device_name",
            "ActionType": f"CASE WHEN {inbound} THEN 'InboundConnectionAccepted' ELSE {self.pick(NETWORK_ACTIONS, 'act')} END",
            "RemoteIP": f"CASE WHEN {public} THEN p.ip ELSE d2.ip END",
            "RemotePort": f"CASE WHEN {inbound} THEN 49152 + {self.rand('rport', 16000)} ELSE p.port END",
            "RemoteUrl": "p.url",
            "LocalIP": "d.ip",
            "LocalPort": f"CASE WHEN {inbound} THEN p.port ELSE 49152 + {self.rand('lport', 16000)} END",
            "Protocol": "p.proto",
            "LocalIPType": "'Private'",
            "RemoteIPType": f"CASE WHEN {public} THEN 'Public' ELSE 'Private' END",
            "InitiatingProcessFileName": "p.proc",
            "InitiatingProcessId": f"4 + 4 * {self.rand('pid', 4000)}",
            "InitiatingProcessAccountDomain": "CASE WHEN p.proc IN ('System', 'lsass.exe', 'svchost.exe') THEN 'nt authority' ELSE lower(u.account_domain) END",
            "InitiatingProcessAccountName": "CASE WHEN p.proc IN ('System', 'lsass.exe', 'svchost.exe') THEN 'system' ELSE u.account_name END",
            "InitiatingProcessSHA256": "sha256(lower(p.proc))",
            "ReportId": "b.i + 1",
        }
        source = f"FROM {self.base(per_day * self.days, per_day)} {self.device_join()} {self.owner_join()} {self.device_join('d2', 'dev2')} {self.profile_join('dest')}"
        self.insert("DeviceNetworkEvents", columns, source)

    def file_events(self, per_day: int) -> None:
        self.scope = "DeviceFileEvents"
        name = self.fill("p.name")
        columns = {
            "Timestamp": "b._ts",
            "DeviceId": "d.device_id",
            "DeviceName": "d.device_name",
            "ActionType": self.pick(FILE_ACTIONS, "act"),
            "FileName": name,
            "FolderPath": f"{self.fill('p.folder')} || {name}",
            "SHA1": f"sha1(lower({name}))",
            "SHA256": f"sha256(lower({name}))",
            "MD5": f"md5(lower({name}))",
            "FileOriginUrl": "NULLIF(p.origin, '')",
            "FileSize": f"512 + {self.rand('size', 20_000_000)}",
            **self.account_columns("InitiatingProcess"),
            "InitiatingProcessFileName": "p.proc",
            "InitiatingProcessSHA256": "sha256(lower(p.proc))",
            "InitiatingProcessId": f"4 + 4 * {self.rand('pid', 4000)}",
            "ReportId": "b.i + 1",
        }
        source = f"FROM {self.base(per_day * self.days, per_day)} {self.device_join()} {self.owner_join()} {self.device_join('d2', 'dev2')} {self.profile_join('file')}"
        self.insert("DeviceFileEvents", columns, source)

    def logon_events(self, per_day: int) -> None:
        self.scope = "DeviceLogonEvents"
        local = "p.account <> 'user'"
        remote_ip = "CASE p.remote WHEN 'none' THEN NULL WHEN 'internal' THEN d2.ip ELSE p.remote END"
        columns = {
            "Timestamp": "b._ts",
            "DeviceId": "d.device_id",
            "DeviceName": "d.device_name",
            "ActionType": "p.action",
            "LogonType": "p.logon_type",
            "AccountDomain": f"CASE WHEN p.account LIKE 'svc-%' THEN u.account_domain WHEN {local} THEN upper(d.device_name) ELSE u.account_domain END",
            "AccountName": f"CASE WHEN {local} THEN p.account ELSE u.account_name END",
            "AccountSid": f"CASE WHEN {local} THEN NULL ELSE u.sid END",
            "Protocol": "p.proto",
            "FailureReason": "NULLIF(p.failure, '')",
            "IsLocalAdmin": f"CASE WHEN {local} THEN lower(p.account) IN ('administrator', 'admin') ELSE {self.rand('adm', 10)} = 0 END",
            "LogonId": f"100000 + {self.rand('logon', 900000)}",
            "RemoteDeviceName": "CASE WHEN p.remote = 'internal' THEN d2.device_name END",
            "RemoteIP": remote_ip,
            "RemoteIPType": "CASE p.remote WHEN 'none' THEN NULL WHEN 'internal' THEN 'Private' ELSE 'Public' END",
            "RemotePort": f"CASE WHEN p.remote = 'none' THEN NULL ELSE 49152 + {self.rand('rport', 16000)} END",
            "InitiatingProcessAccountDomain": "'nt authority'",
            "InitiatingProcessAccountName": "'system'",
            "InitiatingProcessFileName": "p.proc",
            "ReportId": "b.i + 1",
        }
        # Service accounts come from the profile, so point `u` at them when the profile names one.
        svc = {user.account_name: index for index, user in enumerate(self.users) if user.kind == "service"}
        svc_case = " ".join(f"WHEN '{name}' THEN {index}" for name, index in svc.items())
        user_pick = f"CASE p.account {svc_case} ELSE CASE WHEN {self.rand('usro', 10)} < 8 THEN d.owner_idx ELSE {self.rand('usr', len(self.users))} END END"
        source = (
            f"FROM {self.base(per_day * self.days, per_day)} {self.device_join()} {self.device_join('d2', 'dev2')} "
            f"{self.profile_join('logon')} JOIN _mtp_usr u ON u.idx = {user_pick}"
        )
        self.insert("DeviceLogonEvents", columns, source)

    def device_events(self, per_day: int) -> None:
        self.scope = "DeviceEvents"
        file = self.fill("p.file")
        columns = {
            "Timestamp": "b._ts",
            "DeviceId": "d.device_id",
            "DeviceName": "d.device_name",
            "ActionType": "p.action",
            "FileName": f"NULLIF({file}, '')",
            "FolderPath": f"NULLIF({self.fill('p.folder')}, '')",
            "SHA256": f"CASE WHEN p.file = '' THEN NULL ELSE sha256(lower({file})) END",
            "AccountDomain": "u.account_domain",
            "AccountName": "u.account_name",
            "AccountSid": "u.sid",
            "RemoteUrl": f"NULLIF({self.fill('p.url')}, '')",
            "InitiatingProcessFileName": "NULLIF(p.proc, '')",
            "InitiatingProcessAccountDomain": "lower(u.account_domain)",
            "InitiatingProcessAccountName": "u.account_name",
            "InitiatingProcessId": f"4 + 4 * {self.rand('pid', 4000)}",
            "ReportId": "b.i + 1",
            "AdditionalFields": f"NULLIF({self.fill('p.extra')}, '')",
        }
        source = f"FROM {self.base(per_day * self.days, per_day)} {self.device_join()} {self.owner_join()} {self.device_join('d2', 'dev2')} {self.profile_join('devent')}"
        self.insert("DeviceEvents", columns, source)

    def registry_events(self, per_day: int) -> None:
        self.scope = "DeviceRegistryEvents"
        columns = {
            "Timestamp": "b._ts",
            "DeviceId": "d.device_id",
            "DeviceName": "d.device_name",
            "ActionType": "p.action",
            "RegistryKey": self.fill("p.key"),
            "RegistryValueType": "NULLIF(p.vtype, '')",
            "RegistryValueName": f"NULLIF({self.fill('p.name')}, '')",
            "RegistryValueData": f"NULLIF({self.fill('p.data')}, '')",
            "InitiatingProcessAccountDomain": "lower(u.account_domain)",
            "InitiatingProcessAccountName": "u.account_name",
            "InitiatingProcessFileName": "p.proc",
            "InitiatingProcessId": f"4 + 4 * {self.rand('pid', 4000)}",
            "ReportId": "b.i + 1",
        }
        source = f"FROM {self.base(per_day * self.days, per_day)} {self.device_join()} {self.owner_join()} {self.device_join('d2', 'dev2')} {self.profile_join('reg')}"
        self.insert("DeviceRegistryEvents", columns, source)

    def image_load_events(self, per_day: int) -> None:
        self.scope = "DeviceImageLoadEvents"
        columns = {
            "Timestamp": "b._ts",
            "DeviceId": "d.device_id",
            "DeviceName": "d.device_name",
            "ActionType": "'ImageLoaded'",
            "FileName": "p.file",
            "FolderPath": "p.folder || p.file",
            "SHA1": "p.sha1",
            "SHA256": "p.sha256",
            "MD5": "p.md5",
            "FileSize": f"20000 + {self.rand('size', 3_000_000)}",
            "InitiatingProcessAccountDomain": "lower(u.account_domain)",
            "InitiatingProcessAccountName": "u.account_name",
            "InitiatingProcessFileName": "p.proc",
            "InitiatingProcessId": f"4 + 4 * {self.rand('pid', 4000)}",
            "ReportId": "b.i + 1",
        }
        source = f"FROM {self.base(per_day * self.days, per_day)} {self.device_join()} {self.owner_join()} {self.profile_join('img')}"
        self.insert("DeviceImageLoadEvents", columns, source)
