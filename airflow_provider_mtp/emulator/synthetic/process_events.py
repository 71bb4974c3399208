"""DeviceProcessEvents as process trees: every row's parent and grandparent are real processes.

Rows come in groups of :data:`TREE_SLOTS` (a *tree*, keyed by its first row index ``c``) within a
day: one device, one user, one template of :data:`PROCESS_TREES`. Slot ``s`` is created
``s * 40 s`` (plus up to 30 s) after the tree's start, so a parent (an earlier slot) is always
older than its child; its id, unique id and creation time are derived from ``(c, slot)``, and those
of boot-time parents from ``(device, day, name)``, so a child's ``InitiatingProcessId`` is its
parent's ``ProcessId`` and ``InitiatingProcessParentId`` its grandparent's.
"""

from __future__ import annotations

from typing import Any

from airflow_provider_mtp.emulator.synthetic.images import file_key, image_path
from airflow_provider_mtp.emulator.synthetic.process_columns import ProcessSQL
from airflow_provider_mtp.emulator.tenant_data.images import BOOT_COMMANDS, BOOT_PARENTS, BOOT_RANKS
from airflow_provider_mtp.emulator.tenant_data.process_trees import PROCESS_TREES, TREE_SLOTS

_DAY_US = 86_400_000_000
#: Trees (by their number within the day, modulo 10) spread evenly over the day, not in working hours.
_SPREAD_TREES = (0, 3, 6)


def _spread_rank(digit: str) -> str:
    """The place (0, 1, 2) of a spread tree among the spread ones of its ten."""
    cases = " ".join(f"WHEN {value} THEN {place}" for place, value in enumerate(_SPREAD_TREES))
    return f"(CASE {digit} {cases} ELSE 0 END)"


#: A tree's last slot starts at most this long after its first.
_TREE_SPAN_US = TREE_SLOTS * 40_000_000


def _image(image: str) -> str:
    return image if "\\" in image else image_path(image)


def _boot(name: str) -> dict[str, Any]:
    """A boot-time process as a parent: it ran before the day, as SYSTEM unless it is the shell."""
    user = name in ("explorer.exe", "userinit.exe")
    return {
        "slot": -1,
        "name": name,
        "key": file_key(image_path(name)) if name != "System" else "system",
        "cmd": BOOT_COMMANDS.get(name, name),
        "account": "user" if user else "system",
        "integrity": "Medium" if user else "System",
        "remote": False,
        "rank": BOOT_RANKS.get(name, 5),
        "parent": BOOT_PARENTS.get(name, "System"),
    }


def tree_rows() -> list[dict[str, Any]]:
    """``_mtp_tree``: one row per (template, slot) with the process, its parent and grandparent."""
    rows = []
    for tmpl, (_, slots) in enumerate(PROCESS_TREES):
        if len(slots) != TREE_SLOTS:
            raise ValueError(f"process tree {tmpl} has {len(slots)} processes, not {TREE_SLOTS}")
        procs = []
        for pos, slot in enumerate(slots):
            path = _image(slot["image"])
            parent = slot["parent"]
            if isinstance(parent, int) and not 0 <= parent < pos:
                raise ValueError(f"process tree {tmpl} slot {pos}: parent {parent} is not an earlier slot")
            procs.append(
                {
                    "slot": pos,
                    "name": path.rpartition("\\")[2],
                    "key": file_key(path),
                    "cmd": slot["cmd"],
                    "account": slot["account"],
                    "integrity": slot["integrity"],
                    "remote": slot["remote"],
                    "rank": 0,
                    "parent": parent,
                    "extra": slot["extra"],
                }
            )
        for proc in procs:
            up = proc["parent"]
            parent = procs[up] if isinstance(up, int) else _boot(up)
            grand_up = parent["parent"]
            grand = procs[grand_up] if isinstance(grand_up, int) else _boot(grand_up)
            rows.append(
                {
                    "tmpl": tmpl,
                    "pos": proc["slot"],
                    **{k: proc[k] for k in ("key", "cmd", "account", "integrity", "remote", "extra")},
                    **{
                        f"p_{k}": parent[k]
                        for k in ("slot", "name", "key", "cmd", "account", "integrity", "remote", "rank")
                    },
                    **{f"g_{k}": grand[k] for k in ("slot", "name", "rank")},
                }
            )
    return rows


class ProcessEventTable(ProcessSQL):
    """DeviceProcessEvents, written as process trees."""

    def proc_id(self, prefix: str) -> tuple[str, str, str]:
        """(id, unique id, creation time) of the tree's slot or boot process in ``t.<prefix>*``."""
        slot, name, rank = f"t.{prefix}slot", f"t.{prefix}name", f"t.{prefix}rank"
        in_tree = f"{slot} >= 0"
        pid = f"CASE WHEN {in_tree} THEN 4 + 4 * (hash(b.c, {self.seed}, 'tree/pid', {slot}) % 16000)::BIGINT ELSE {self.boot_pid(name)} END"
        uid = f"CASE WHEN {in_tree} THEN CAST((hash(b.c, {self.seed}, 'tree/uid', {slot}) % 1000000000000)::BIGINT AS VARCHAR) ELSE {self.boot_uid(name)} END"
        created = f"CASE WHEN {in_tree} THEN {self.slot_time(slot)} ELSE {self.boot_time(name, rank)} END"
        return pid, uid, created

    def slot_time(self, slot: str) -> str:
        return f"(b._base + to_microseconds({slot} * 40000000 + (hash(b.c, {self.seed}, 'tree/time', {slot}) % 30000000)::BIGINT))"

    def tree_base(self, rows: int, per_day: int) -> str:
        """Row index ``i``, its day, tree key ``c``, slot ``s`` and the tree's start ``_base``."""
        index = f"(SELECT range AS i, range // {per_day} AS day, range % {per_day} AS j FROM range({rows}))"
        keyed = (
            f"(SELECT i, day, i - j % {TREE_SLOTS} AS c, j % {TREE_SLOTS} AS s, j // {TREE_SLOTS} AS t "
            f"FROM {index})"
        )
        # 7 trees in 10 start in working hours; the other 3 are spread evenly over the whole day (at
        # random within their own stretch), not at random: a tree is five rows at one moment, so
        # random starts would leave whole night hours without a process event, and every hour
        # holds some in a real tenant (a scheduled hunt of the last hour must find rows).
        trees = max(1, per_day // TREE_SLOTS)
        spread = sum(1 for tree in range(trees) if tree % 10 in _SPREAD_TREES)
        stride = _DAY_US // max(1, spread)
        rank = f"((t // 10) * {len(_SPREAD_TREES)} + {_spread_rank('t % 10')})"
        spread_offset = f"({rank} * {stride} + {self.rand('tss', stride, 'c')})"
        day_offset = f"CASE WHEN t % 10 IN {tuple(_SPREAD_TREES)} THEN {spread_offset} ELSE {self.working_offset('c')} END"
        # The start is spread over the day minus the longest tree, so every slot stays in its day.
        span = _DAY_US - _TREE_SPAN_US
        offset = f"(({day_offset})::HUGEINT * {span} // {_DAY_US})::BIGINT"
        based = f"(SELECT *, {self.day_start('day')} + to_microseconds({offset}) AS _base FROM {keyed}) b"
        return f"(SELECT *, {self.slot_time('b.s')} AS _ts FROM {based}) b"

    def process_events(self, per_day: int) -> None:
        self.scope = "DeviceProcessEvents"
        self.temp_table("tree", tree_rows())
        self.profile_table(
            "tmpl", [{"tmpl": index, "weight": w} for index, (w, _) in enumerate(PROCESS_TREES)]
        )
        pid, uid, created = self.proc_id("p_")
        _, _, grand_created = self.proc_id("g_")
        grand_pid = self.proc_id("g_")[0]
        timestamp = "b._ts"
        # Image paths hold only {user}: one replace, no per-row number.
        path = "replace(i.path, '{user}', u.account_name)"
        parent_path = "replace(pi.path, '{user}', u.account_name)"
        integrity = "t.integrity"
        columns = {
            "Timestamp": timestamp,
            "DeviceId": "d.device_id",
            "DeviceName": "d.device_name",
            "ActionType": "'ProcessCreated'",
            "FileName": "i.name",
            "FolderPath": path,
            "SHA1": "i.sha1",
            "SHA256": "i.sha256",
            "MD5": "i.md5",
            "FileSize": "i.size",
            "ProcessVersionInfoCompanyName": "NULLIF(i.company, '')",
            "ProcessVersionInfoProductName": "NULLIF(i.product, '')",
            "ProcessVersionInfoProductVersion": "NULLIF(i.version, '')",
            "ProcessVersionInfoInternalFileName": "NULLIF(i.internal, '')",
            "ProcessVersionInfoOriginalFileName": "NULLIF(i.original, '')",
            "ProcessVersionInfoFileDescription": "NULLIF(i.description, '')",
            "ProcessId": f"4 + 4 * (hash(b.c, {self.seed}, 'tree/pid', b.s) % 16000)::BIGINT",
            "ProcessCommandLine": self.fill("t.cmd", key="b.c"),
            "ProcessIntegrityLevel": integrity,
            "ProcessTokenElevation": self.elevation(integrity),
            "ProcessCreationTime": timestamp,
            **self.account_columns("", "t.account"),
            "LogonId": self.logon_id("t.account", "t.remote"),
            **self.account_columns("InitiatingProcess", "t.p_account"),
            "InitiatingProcessLogonId": self.logon_id("t.p_account", "t.p_remote"),
            "InitiatingProcessIntegrityLevel": "t.p_integrity",
            "InitiatingProcessTokenElevation": self.elevation("t.p_integrity"),
            "InitiatingProcessSHA1": "NULLIF(pi.sha1, '')",
            "InitiatingProcessSHA256": "NULLIF(pi.sha256, '')",
            "InitiatingProcessMD5": "NULLIF(pi.md5, '')",
            "InitiatingProcessFileName": "pi.name",
            "InitiatingProcessFileSize": "NULLIF(pi.size, 0)",
            "InitiatingProcessVersionInfoCompanyName": "NULLIF(pi.company, '')",
            "InitiatingProcessVersionInfoProductName": "NULLIF(pi.product, '')",
            "InitiatingProcessVersionInfoProductVersion": "NULLIF(pi.version, '')",
            "InitiatingProcessVersionInfoInternalFileName": "NULLIF(pi.internal, '')",
            "InitiatingProcessVersionInfoOriginalFileName": "NULLIF(pi.original, '')",
            "InitiatingProcessVersionInfoFileDescription": "NULLIF(pi.description, '')",
            "InitiatingProcessId": pid,
            "InitiatingProcessCommandLine": self.fill("t.p_cmd", key="b.c"),
            "InitiatingProcessCreationTime": created,
            "InitiatingProcessFolderPath": f"NULLIF({parent_path}, '')",
            "InitiatingProcessParentId": grand_pid,
            "InitiatingProcessParentFileName": "t.g_name",
            "InitiatingProcessParentCreationTime": grand_created,
            "InitiatingProcessSignerType": "NULLIF(pi.signer, '')",
            "InitiatingProcessSignatureStatus": "NULLIF(pi.status, '')",
            "ReportId": "b.i + 1",
            "AdditionalFields": "NULLIF(t.extra, '')",
            "InitiatingProcessSessionId": self.session_id("t.p_account", "t.p_remote"),
            "IsInitiatingProcessRemoteSession": "t.p_remote",
            "InitiatingProcessRemoteSessionDeviceName": "CASE WHEN t.p_remote THEN d2.device_name END",
            "InitiatingProcessRemoteSessionIP": "CASE WHEN t.p_remote THEN d2.ip END",
            "CreatedProcessSessionId": self.session_id("t.account", "t.remote"),
            "IsProcessRemoteSession": "t.remote",
            "ProcessRemoteSessionDeviceName": "CASE WHEN t.remote THEN d2.device_name END",
            "ProcessRemoteSessionIP": "CASE WHEN t.remote THEN d2.ip END",
            "ProcessUniqueId": f"CAST((hash(b.c, {self.seed}, 'tree/uid', b.s) % 1000000000000)::BIGINT AS VARCHAR)",
            "InitiatingProcessUniqueId": uid,
        }
        source = (
            f"FROM {self.tree_base(per_day * self.days, per_day)} "
            f"{self.device_join(key='b.c', windows_only=True)} {self.owner_join(key='b.c')} {self.device_join('d2', 'dev2', key='b.c')} "
            f"{self.profile_join('tmpl', key='b.c')} JOIN _mtp_tree t ON t.tmpl = p.tmpl AND t.pos = b.s "
            f"JOIN _mtp_image i ON i.key = t.key JOIN _mtp_image pi ON pi.key = t.p_key"
        )
        self.insert("DeviceProcessEvents", columns, source)
