"""SQL for process identities: boot-time processes, and the InitiatingProcess* columns of the Device tables.

A process already running when a day starts (``services.exe``, ``explorer.exe``...) has one id,
unique id and creation time per device and day, derived from ``(device, day, name)``; the process
trees of DeviceProcessEvents and the initiating processes of the other Device tables use the same
derivation, so their ids agree and a parent is always created before its child.
"""

from __future__ import annotations

from airflow_provider_mtp.emulator.schema import table_schemas
from airflow_provider_mtp.emulator.synthetic.event_sql import EventSQL

_HOUR_US = 3_600_000_000


class ProcessSQL(EventSQL):
    """Process ids, creation times and the InitiatingProcess* column set."""

    def boot_pid(self, name: str, dev: str = "d.idx", day: str = "b.day") -> str:
        """The id of boot-time process ``name`` (an SQL expression) on a device and day."""
        return f"CASE WHEN {name} = 'System' THEN 4 ELSE 4 + 4 * (hash({dev}, {day}, {self.seed}, 'boot/pid', {name}) % 16000)::BIGINT END"

    def boot_uid(self, name: str, dev: str = "d.idx", day: str = "b.day") -> str:
        return (
            f"CAST((hash({dev}, {day}, {self.seed}, 'boot/uid', {name}) % 1000000000000)::BIGINT AS VARCHAR)"
        )

    def boot_time(self, name: str, rank: str, dev: str = "d.idx", day: str = "b.day") -> str:
        """Before the day starts: ``rank`` six-hour steps back, so parents (higher ranks) come first."""
        back = f"{rank} * {6 * _HOUR_US} + (hash({dev}, {day}, {self.seed}, 'boot/time', {name}) % {5 * _HOUR_US})::BIGINT"
        return f"({self.day_start(day)} - to_microseconds({back}))"

    @staticmethod
    def elevation(integrity: str) -> str:
        return (
            f"CASE {integrity} WHEN 'Medium' THEN 'TokenElevationTypeLimited' "
            f"WHEN 'High' THEN 'TokenElevationTypeFull' ELSE 'TokenElevationTypeDefault' END"
        )

    def logon_id(self, kind: str, remote: str = "false", dev: str = "d.idx", day: str = "b.day") -> str:
        """SYSTEM's logon session is 999 (0x3e7); a user's is one per device, day and session kind."""
        user = f"100000 + (hash({dev}, {day}, u.idx, {remote}, {self.seed}, 'logon') % 900000)::BIGINT"
        return f"CASE WHEN {kind} = 'system' THEN 999 ELSE {user} END"

    @staticmethod
    def session_id(kind: str, remote: str = "false") -> str:
        return f"CASE WHEN {kind} = 'system' THEN 0 WHEN {remote} THEN 2 ELSE 1 END"

    def initiating_columns(self, table: str, *, kind: str, day: str, remote: str = "false") -> dict[str, str]:
        """The InitiatingProcess* columns of ``table`` for a row whose profile ``p`` has the
        ``ip_*`` fields of :func:`~airflow_provider_mtp.emulator.synthetic.images.initiating_fields`
        and whose image is joined as ``ii``.

        :param kind: SQL for the account kind, ``'system'`` or anything else (the row's user ``u``).
        :param day: SQL for the row's day slot.
        :param remote: SQL, true when the process runs in a remote session from device ``d2``.
        """
        # Image paths and their command lines hold only {user}: one replace, no per-row number.
        path = "replace(ii.path, '{user}', u.account_name)"
        command = "replace(p.ip_cmd, '{user}', u.account_name)"
        integrity = f"CASE WHEN {kind} = 'system' THEN 'System' ELSE 'Medium' END"
        columns = {
            **self.account_columns("InitiatingProcess", kind),
            "InitiatingProcessSHA1": "NULLIF(ii.sha1, '')",
            "InitiatingProcessSHA256": "NULLIF(ii.sha256, '')",
            "InitiatingProcessMD5": "NULLIF(ii.md5, '')",
            "InitiatingProcessFileName": "ii.name",
            "InitiatingProcessFileSize": "NULLIF(ii.size, 0)",
            "InitiatingProcessVersionInfoCompanyName": "NULLIF(ii.company, '')",
            "InitiatingProcessVersionInfoProductName": "NULLIF(ii.product, '')",
            "InitiatingProcessVersionInfoProductVersion": "NULLIF(ii.version, '')",
            "InitiatingProcessVersionInfoInternalFileName": "NULLIF(ii.internal, '')",
            "InitiatingProcessVersionInfoOriginalFileName": "NULLIF(ii.original, '')",
            "InitiatingProcessVersionInfoFileDescription": "NULLIF(ii.description, '')",
            "InitiatingProcessId": f"CASE WHEN p.ip_boot THEN {self.boot_pid('ii.name', day=day)} ELSE 4 + 4 * {self.rand('pid', 16000)} END",
            "InitiatingProcessCommandLine": f"NULLIF({command}, '')",
            "InitiatingProcessCreationTime": f"CASE WHEN p.ip_boot THEN {self.boot_time('ii.name', 'p.ip_rank', day=day)} ELSE b._ts - to_microseconds(1000000 + {self.rand('ipage', 2 * _HOUR_US)}) END",
            "InitiatingProcessFolderPath": f"NULLIF({path}, '')",
            "InitiatingProcessParentFileName": "NULLIF(p.ip_parent, '')",
            "InitiatingProcessParentId": f"CASE WHEN p.ip_parent <> '' THEN {self.boot_pid('p.ip_parent', day=day)} END",
            "InitiatingProcessParentCreationTime": f"CASE WHEN p.ip_parent <> '' THEN {self.boot_time('p.ip_parent', 'p.ip_parent_rank', day=day)} END",
            "InitiatingProcessIntegrityLevel": integrity,
            "InitiatingProcessTokenElevation": self.elevation(integrity),
            "InitiatingProcessLogonId": self.logon_id(kind, remote, day=day),
            "InitiatingProcessSessionId": self.session_id(kind, remote),
            "IsInitiatingProcessRemoteSession": remote,
            "InitiatingProcessRemoteSessionDeviceName": f"CASE WHEN {remote} THEN d2.device_name END",
            "InitiatingProcessRemoteSessionIP": f"CASE WHEN {remote} THEN d2.ip END",
            "InitiatingProcessUniqueId": f"CASE WHEN p.ip_boot THEN {self.boot_uid('ii.name', day=day)} ELSE CAST({self.rand('puid', 10**12)} AS VARCHAR) END",
        }
        documented = {name for name, _ in table_schemas()[table]}
        return {name: sql for name, sql in columns.items() if name in documented}

    @staticmethod
    def image_join(alias: str = "ii", key: str = "p.ip_key") -> str:
        return f"JOIN _mtp_image {alias} ON {alias}.key = {key}"
