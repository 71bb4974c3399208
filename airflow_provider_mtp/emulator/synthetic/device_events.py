"""The Device*Events hunting tables but DeviceProcessEvents (see ``process_events``), in set-based SQL.

Every row's initiating process comes from the image catalogue (hashes, size, version info) with
the ids and creation times of :class:`~airflow_provider_mtp.emulator.synthetic.process_columns.ProcessSQL`.
File hashes and sizes are derived from the file's path template, as in every other table.
"""

from __future__ import annotations

from airflow_provider_mtp.emulator.synthetic.process_columns import ProcessSQL
from airflow_provider_mtp.emulator.tenant_data.activity import FILE_ACTIONS, NETWORK_ACTIONS
from airflow_provider_mtp.emulator.tenant_data.estate import DC_IPS


def key_hashes(key: str) -> dict[str, str]:
    """SHA1, SHA256, MD5 and size columns from a file identity key (SQL, already lower-cased)."""
    return {
        "SHA1": f"sha1({key})",
        "SHA256": f"sha256({key})",
        "MD5": f"md5({key})",
        "FileSize": f"50000 + ('0x' || substr(sha256({key}), 1, 6))::BIGINT % 2000000",
    }


class DeviceEventTables(ProcessSQL):
    """DeviceNetworkEvents, DeviceFileEvents, DeviceLogonEvents, DeviceEvents, DeviceRegistryEvents, DeviceImageLoadEvents."""

    def day(self, per_day: int) -> str:
        return f"(b.i // {per_day})"

    def server_remote(self) -> str:
        """About one in ten processes on a server run in an admin's remote session from ``d2``."""
        return f"(d.device_type = 'Server' AND {self.rand('rsess', 10)} = 0)"

    def file_key(self, template: str) -> str:
        """The identity key of a file template: ``{n}`` filled, ``{user}`` kept, lower case."""
        return f"lower({self.fill(template, user=repr('{user}'), host=repr(''))})"

    def network_events(self, per_day: int) -> None:
        self.scope = "DeviceNetworkEvents"
        inbound = "p.kind = 'in'"
        public = "p.kind = 'out'"
        kind = "CASE WHEN p.ip_system THEN 'system' ELSE 'user' END"
        # Plain-HTTP connections are sometimes inspected: the sensor then reports the request.
        inspected = f"p.port = 80 AND {self.rand('http', 10)} < 3"
        request = f"json_object('direction', 'Out', 'host', p.url, 'method', 'GET', 'status_code', '200', 'uri', '/' || {self.rand('uri', 900)})::VARCHAR"
        columns = {
            **self.initiating_columns(
                "DeviceNetworkEvents", kind=kind, day=self.day(per_day), remote=self.server_remote()
            ),
            "Timestamp": "b._ts",
            "DeviceId": "d.device_id",
            "DeviceName": "d.device_name",
            "ActionType": f"CASE WHEN {inbound} THEN 'InboundConnectionAccepted' WHEN {inspected} THEN 'HttpConnectionInspected' ELSE {self.pick(NETWORK_ACTIONS, 'act')} END",
            "AdditionalFields": f"CASE WHEN {inspected} THEN {request} END",
            "RemoteIP": f"CASE WHEN {public} THEN p.ip ELSE d2.ip END",
            "RemotePort": f"CASE WHEN {inbound} THEN 49152 + {self.rand('rport', 16000)} ELSE p.port END",
            "RemoteUrl": "NULLIF(p.url, '')",
            "LocalIP": "d.ip",
            "LocalPort": f"CASE WHEN {inbound} THEN p.port ELSE 49152 + {self.rand('lport', 16000)} END",
            "Protocol": "p.proto",
            "LocalIPType": "'Private'",
            "RemoteIPType": f"CASE WHEN {public} THEN 'Public' ELSE 'Private' END",
            "ReportId": "b.i + 1",
        }
        source = f"FROM {self.base(per_day * self.days, per_day)} {self.device_join()} {self.owner_join()} {self.device_join('d2', 'dev2')} {self.profile_join('dest')} {self.image_join()}"
        self.insert("DeviceNetworkEvents", columns, source)

    def file_events(self, per_day: int) -> None:
        self.scope = "DeviceFileEvents"
        name = self.fill("p.name")
        folder = self.fill("p.folder")
        key = self.file_key("(p.folder || p.name)")
        action = self.pick(FILE_ACTIONS, "act")
        file_server = "d.role = 'FileServer'"
        office = "(p.name LIKE '%.docx' OR p.name LIKE '%.xlsx')"
        label = f"CASE WHEN {office} THEN {self.pick(['General', 'General', 'Confidential'], 'label')} END"
        columns = {
            **self.initiating_columns(
                "DeviceFileEvents", kind="p.account", day=self.day(per_day), remote=self.server_remote()
            ),
            "Timestamp": "b._ts",
            "DeviceId": "d.device_id",
            "DeviceName": "d.device_name",
            "ActionType": action,
            "FileName": name,
            "FolderPath": f"{folder} || {name}",
            **key_hashes(key),
            "FileOriginUrl": "NULLIF(p.origin, '')",
            "FileOriginReferrerUrl": "NULLIF(regexp_extract(p.origin, '^https?://[^/]+/'), '')",
            "FileOriginIP": "NULLIF(p.origin_ip, '')",
            "PreviousFolderPath": f"CASE WHEN {action} = 'FileRenamed' THEN {folder} END",
            "PreviousFileName": f"CASE WHEN {action} = 'FileRenamed' THEN {name} || '.tmp' END",
            "RequestProtocol": f"CASE WHEN {file_server} THEN 'Smb' ELSE 'Local' END",
            "RequestSourceIP": f"CASE WHEN {file_server} THEN d2.ip END",
            "RequestSourcePort": f"CASE WHEN {file_server} THEN 49152 + {self.rand('sport', 16000)} END",
            "RequestAccountName": "u.account_name",
            "RequestAccountDomain": "u.account_domain",
            "RequestAccountSid": "u.sid",
            "ShareName": f"CASE WHEN {file_server} THEN 'Shared' END",
            "SensitivityLabel": label,
            "SensitivitySubLabel": f"CASE WHEN {label} = 'Confidential' THEN 'All Employees' END",
            "IsAzureInfoProtectionApplied": f"CASE WHEN {office} THEN {label} = 'Confidential' END",
            "ReportId": "b.i + 1",
            "AdditionalFields": f"CASE WHEN {name} LIKE '%.exe' OR {name} LIKE '%.dll' THEN '{{\"FileType\":\"PortableExecutable\"}}' END",
        }
        source = f"FROM {self.base(per_day * self.days, per_day)} {self.device_join()} {self.owner_join()} {self.device_join('d2', 'dev2')} {self.profile_join('file')} {self.image_join()}"
        self.insert("DeviceFileEvents", columns, source)

    def logon_events(self, per_day: int) -> None:
        self.scope = "DeviceLogonEvents"
        local = "p.account <> 'user'"
        remote_ip = "CASE p.remote WHEN 'none' THEN NULL WHEN 'internal' THEN d2.ip ELSE p.remote END"
        columns = {
            **self.initiating_columns("DeviceLogonEvents", kind="'system'", day=self.day(per_day)),
            "Timestamp": "b._ts",
            "DeviceId": "d.device_id",
            "DeviceName": "d.device_name",
            "ActionType": "p.action",
            "LogonType": "p.logon_type",
            "AccountDomain": f"CASE WHEN p.account LIKE 'svc-%' THEN u.account_domain WHEN {local} THEN upper(split_part(d.device_name, '.', 1)) ELSE u.account_domain END",
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
            "ReportId": "b.i + 1",
            "AdditionalFields": "json_object('IsLocalLogon', p.remote = 'none')::VARCHAR",
        }
        # Service accounts come from the profile, so point `u` at them when the profile names one.
        svc = {user.account_name: index for index, user in enumerate(self.users) if user.kind == "service"}
        svc_case = " ".join(f"WHEN '{name}' THEN {index}" for name, index in svc.items())
        user_pick = f"CASE p.account {svc_case} ELSE CASE WHEN {self.rand('usro', 10)} < 8 THEN d.owner_idx ELSE {self.rand('usr', len(self.users))} END END"
        source = (
            f"FROM {self.base(per_day * self.days, per_day)} {self.device_join()} {self.device_join('d2', 'dev2')} "
            f"{self.profile_join('logon')} JOIN _mtp_usr u ON u.idx = {user_pick} {self.image_join()}"
        )
        self.insert("DeviceLogonEvents", columns, source)

    def device_events(self, per_day: int) -> None:
        self.scope = "DeviceEvents"
        file = self.fill("p.file")
        has_file = "p.file <> ''"
        key = self.file_key("p.folder")
        # The target of process-access and ASR events is a process; of AV detections, a file.
        target = f"{has_file} AND p.action <> 'AntivirusDetection'"
        kind = "CASE WHEN p.ip_system THEN 'system' ELSE 'user' END"
        hashes = {column: f"CASE WHEN {has_file} THEN {sql} END" for column, sql in key_hashes(key).items()}
        dc = self.pick(list(DC_IPS), "dc")
        on_server = "d.device_type = 'Server'"
        columns = {
            **self.initiating_columns(
                "DeviceEvents", kind=kind, day=self.day(per_day), remote=self.server_remote()
            ),
            "Timestamp": "b._ts",
            "DeviceId": "d.device_id",
            "DeviceName": "d.device_name",
            "ActionType": "p.action",
            "FileName": f"NULLIF({file}, '')",
            "FolderPath": f"NULLIF({self.fill('p.folder')}, '')",
            **hashes,
            "AccountDomain": "u.account_domain",
            "AccountName": "u.account_name",
            "AccountSid": "u.sid",
            "RemoteUrl": f"NULLIF({self.fill('p.url')}, '')",
            "RemoteDeviceName": f"CASE WHEN p.ip = 'dc' THEN CASE {dc} WHEN '{DC_IPS[0]}' THEN dc1.device_name ELSE dc2.device_name END END",
            "ProcessId": f"CASE WHEN {target} THEN 4 + 4 * {self.rand('tpid', 16000)} END",
            "ProcessCommandLine": f"CASE WHEN {target} THEN {file} END",
            "ProcessCreationTime": f"CASE WHEN {target} THEN b._ts - to_microseconds({self.rand('tage', 600_000_000)}) END",
            "ProcessTokenElevation": f"CASE WHEN {target} THEN 'TokenElevationTypeDefault' END",
            "LogonId": f"100000 + {self.rand('logon', 900000)}",
            "RemoteIP": f"CASE p.ip WHEN '' THEN NULL WHEN 'dc' THEN {dc} ELSE p.ip END",
            "RemotePort": "NULLIF(p.port, 0)",
            "LocalIP": "CASE WHEN p.ip <> '' THEN d.ip END",
            "LocalPort": f"CASE WHEN p.ip <> '' THEN 49152 + {self.rand('lport', 16000)} END",
            "FileOriginUrl": "NULLIF(p.origin, '')",
            "FileOriginIP": "NULLIF(p.origin_ip, '')",
            # On servers, the target runs in an admin's remote session.
            "CreatedProcessSessionId": f"CASE WHEN {target} THEN CASE WHEN {on_server} THEN 2 ELSE 1 END END",
            "IsProcessRemoteSession": f"CASE WHEN {target} THEN {on_server} END",
            "ProcessRemoteSessionDeviceName": f"CASE WHEN {target} AND {on_server} THEN d2.device_name END",
            "ProcessRemoteSessionIP": f"CASE WHEN {target} AND {on_server} THEN d2.ip END",
            "RegistryKey": "NULLIF(p.reg_key, '')",
            "RegistryValueName": "NULLIF(p.reg_name, '')",
            "RegistryValueData": "NULLIF(p.reg_data, '')",
            "ReportId": "b.i + 1",
            "AdditionalFields": f"NULLIF({self.fill('p.extra')}, '')",
        }
        dcs = "JOIN _mtp_dev dc1 ON dc1.role = 'DomainController' AND dc1.ip = '{0}' JOIN _mtp_dev dc2 ON dc2.role = 'DomainController' AND dc2.ip = '{1}'"
        source = f"FROM {self.base(per_day * self.days, per_day)} {self.device_join()} {self.owner_join()} {self.device_join('d2', 'dev2')} {self.profile_join('devent')} {self.image_join()} {dcs.format(*DC_IPS)}"
        self.insert("DeviceEvents", columns, source)

    def registry_events(self, per_day: int) -> None:
        self.scope = "DeviceRegistryEvents"
        kind = "CASE WHEN p.ip_system THEN 'system' ELSE 'user' END"
        key = self.fill("p.key")
        name = self.fill("p.name")
        columns = {
            **self.initiating_columns(
                "DeviceRegistryEvents", kind=kind, day=self.day(per_day), remote=self.server_remote()
            ),
            "Timestamp": "b._ts",
            "DeviceId": "d.device_id",
            "DeviceName": "d.device_name",
            "ActionType": "p.action",
            "RegistryKey": key,
            "RegistryValueType": "NULLIF(p.vtype, '')",
            "RegistryValueName": f"NULLIF({name}, '')",
            "RegistryValueData": f"NULLIF({self.fill('p.data')}, '')",
            "PreviousRegistryKey": f"CASE WHEN p.action IN ('RegistryValueSet', 'RegistryKeyDeleted', 'RegistryValueDeleted') THEN {key} END",
            "PreviousRegistryValueName": f"CASE WHEN p.action IN ('RegistryValueSet', 'RegistryValueDeleted') THEN NULLIF({name}, '') END",
            "PreviousRegistryValueData": f"CASE WHEN p.vtype = 'Qword' THEN CAST(100 + {self.rand('prev', 900)} AS VARCHAR) END",
            "ReportId": "b.i + 1",
        }
        source = f"FROM {self.base(per_day * self.days, per_day)} {self.device_join(windows_only=True)} {self.owner_join()} {self.device_join('d2', 'dev2')} {self.profile_join('reg')} {self.image_join()}"
        self.insert("DeviceRegistryEvents", columns, source)

    def image_load_events(self, per_day: int) -> None:
        self.scope = "DeviceImageLoadEvents"
        kind = "CASE WHEN p.ip_system THEN 'system' ELSE 'user' END"
        columns = {
            **self.initiating_columns(
                "DeviceImageLoadEvents", kind=kind, day=self.day(per_day), remote=self.server_remote()
            ),
            "Timestamp": "b._ts",
            "DeviceId": "d.device_id",
            "DeviceName": "d.device_name",
            "ActionType": "'ImageLoaded'",
            "FileName": "p.file",
            "FolderPath": "p.folder || p.file",
            **key_hashes("lower(p.folder || p.file)"),
            "ReportId": "b.i + 1",
        }
        source = f"FROM {self.base(per_day * self.days, per_day)} {self.device_join(windows_only=True)} {self.owner_join()} {self.device_join('d2', 'dev2')} {self.profile_join('img')} {self.image_join()}"
        self.insert("DeviceImageLoadEvents", columns, source)
