"""A small plain-Python oracle: the expected answers to some battery queries, from the fixture rows.

Written from Kusto's documented semantics, independently of duckdb-kql: ``has`` matches a whole
term, case-insensitively (a term is a run of letters and digits; the boundary applies only at an
edge where the needle itself has a term character); ``=~``, ``in~``, ``contains`` and
``startswith`` ignore case; ``==`` and ``summarize ... by`` do not; a join without ``kind`` is
``innerunique`` (one left row per key); ``mv-expand`` of an empty array yields no row; the default
count column is ``Count`` (``count`` operator) or ``count_`` (``count()`` aggregate).

Each function returns ``(columns, rows)``: the column names in order and the rows as dicts.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from datetime import timedelta
from typing import Any

from tests.golden.fixture import NOW, Row, Tables, parse_timestamp

Answer = tuple[list[str], list[Row]]


def _term_char(char: str) -> bool:
    return char.isalpha() or char.isnumeric()


def has(haystack: str | None, needle: str) -> bool:
    """Kusto ``has``: ``needle`` occurs in ``haystack`` as whole terms, ignoring case."""
    if haystack is None:
        return False
    text, term = haystack.lower(), needle.lower()
    start = text.find(term)
    while start >= 0:
        end = start + len(term)
        before_ok = not _term_char(term[:1]) or start == 0 or not _term_char(text[start - 1])
        after_ok = not _term_char(term[-1:]) or end == len(text) or not _term_char(text[end])
        if before_ok and after_ok:
            return True
        start = text.find(term, start + 1)
    return False


def _count_by(rows: Iterable[Row], keys: list[str], name: str) -> list[Row]:
    counts = Counter(tuple(row.get(key) for key in keys) for row in rows)
    return [{**dict(zip(keys, key, strict=True)), name: count} for key, count in counts.items()]


def _innerunique(left: list[Row], right: list[Row], key: str) -> list[tuple[Row, Row]]:
    """Kusto's default join: the left side deduplicated on the key (first row kept), then inner."""
    seen: dict[Any, Row] = {}
    for row in left:
        seen.setdefault(row[key], row)
    return _inner(list(seen.values()), right, key)


def _inner(left: list[Row], right: list[Row], key: str) -> list[tuple[Row, Row]]:
    by_key: dict[Any, list[Row]] = defaultdict(list)
    for row in right:
        by_key[row[key]].append(row)
    return [(left_row, right_row) for left_row in left for right_row in by_key.get(left_row[key], [])]


def q02(data: Tables) -> Answer:
    since = NOW - timedelta(days=7)
    count = sum(1 for row in data["DeviceProcessEvents"] if parse_timestamp(row["Timestamp"]) > since)
    return ["Count"], [{"Count": count}]


def q03(data: Tables) -> Answer:
    columns = ["Timestamp", "DeviceName", "ProcessCommandLine"]
    rows = [
        {column: row[column] for column in columns}
        for row in data["DeviceProcessEvents"]
        if row["FileName"] == "powershell.exe" and has(row["ProcessCommandLine"], "EncodedCommand")
    ]
    return columns, rows


def q04(data: Tables) -> Answer:
    rows = [row for row in data["DeviceNetworkEvents"] if "evil" in row["RemoteUrl"].lower()]
    return ["RemoteUrl", "Hits"], _count_by(rows, ["RemoteUrl"], "Hits")


def q05(data: Tables) -> Answer:
    pairs = {
        (row["DeviceName"], row["AccountName"])
        for row in data["DeviceProcessEvents"]
        if row["FolderPath"].lower().startswith("c:\\users\\")
    }
    return ["DeviceName", "AccountName"], [
        {"DeviceName": device, "AccountName": account} for device, account in pairs
    ]


def q06(data: Tables) -> Answer:
    rows = [row for row in data["DeviceLogonEvents"] if row["AccountName"].lower() == "administrator"]
    return ["AccountName", "ActionType", "Attempts"], _count_by(
        rows, ["AccountName", "ActionType"], "Attempts"
    )


def q07(data: Tables) -> Answer:
    wanted = {"cmd.exe", "powershell.exe", "wscript.exe"}
    rows = [row for row in data["DeviceProcessEvents"] if row["FileName"].lower() in wanted]
    return ["FileName", "Executions"], _count_by(rows, ["FileName"], "Executions")


def q08(data: Tables) -> Answer:
    rows = [row for row in data["EmailEvents"] if not has(row["Subject"], "invoice")]
    return ["Subject", "Mails"], _count_by(rows, ["Subject"], "Mails")


def q09(data: Tables) -> Answer:
    columns = ["DeviceName", "FileName", "ProcessCommandLine"]
    needles = ("mimikatz", "sekurlsa", "Invoke-WebRequest")
    rows = [
        {column: row[column] for column in columns}
        for row in data["DeviceProcessEvents"]
        if any(has(row["ProcessCommandLine"], needle) for needle in needles)
    ]
    return columns, rows


def _failed_logons(data: Tables) -> list[Row]:
    return [row for row in data["DeviceLogonEvents"] if row["ActionType"] == "LogonFailed"]


def q16(data: Tables) -> Answer:
    failed = _count_by(_failed_logons(data), ["DeviceId"], "Failed")
    mimikatz = {
        (row["DeviceId"], row["DeviceName"])
        for row in data["DeviceProcessEvents"]
        if row["FileName"].lower() == "mimikatz.exe"
    }
    right = [{"DeviceId": device_id, "DeviceName": name} for device_id, name in mimikatz]
    joined = _inner(failed, right, "DeviceId")
    return ["DeviceName", "Failed"], [
        {"DeviceName": r["DeviceName"], "Failed": left["Failed"]} for left, r in joined
    ]


def q17(data: Tables, *, kind: str = "innerunique") -> Answer:
    alerts = [row for row in data["AlertInfo"] if row["Severity"] in ("High", "Medium")]
    join: Callable[[list[Row], list[Row], str], list[tuple[Row, Row]]] = (
        _innerunique if kind == "innerunique" else _inner
    )
    joined = join(alerts, data["AlertEvidence"], "AlertId")
    return ["Severity", "Evidence"], _count_by((left for left, _ in joined), ["Severity"], "Evidence")


def q19(data: Tables) -> Answer:
    rows = [
        {"SourceTable": table}
        for table in ("DeviceLogonEvents", "DeviceNetworkEvents")
        for row in data[table]
        if row["DeviceName"] == "ws-fin-01"
    ]
    return ["SourceTable", "Events"], _count_by(rows, ["SourceTable"], "Events")


def q21(data: Tables) -> Answer:
    counts = _count_by(_failed_logons(data), ["AccountName"], "Failures")
    rows = sorted(
        (row for row in counts if row["Failures"] >= 5),
        key=lambda row: (-row["Failures"], row["AccountName"]),
    )
    return ["AccountName", "Failures"], rows


def q26(data: Tables) -> Answer:
    rows = []
    for row in data["EmailEvents"]:
        auth = json.loads(row["AuthenticationDetails"])
        if auth.get("SPF") == "fail" and auth.get("DMARC") == "fail":
            rows.append(row)
    return ["SenderFromDomain", "Spoofed"], _count_by(rows, ["SenderFromDomain"], "Spoofed")


def q27(data: Tables) -> Answer:
    return ["Count"], [{"Count": len(_failed_logons(data))}]


def q29(data: Tables) -> Answer:
    alerts: dict[str, set[str]] = defaultdict(set)
    for row in data["AlertInfo"]:
        for technique in json.loads(row["AttackTechniques"]):
            alerts[str(technique)].add(row["AlertId"])
    return ["Technique", "Alerts"], [{"Technique": name, "Alerts": len(ids)} for name, ids in alerts.items()]


def q31(data: Tables) -> Answer:
    grouped: dict[str, list[Row]] = defaultdict(list)
    for row in data["DeviceLogonEvents"]:
        grouped[row["AccountName"]].append(row)
    rows = []
    for account, logons in grouped.items():
        failed = sum(1 for row in logons if row["ActionType"] == "LogonFailed")
        succeeded = sum(1 for row in logons if row["ActionType"] == "LogonSuccess")
        if failed > 3 and succeeded > 0:
            last = max(logons, key=lambda row: parse_timestamp(row["Timestamp"]))["Timestamp"]
            rows.append({"AccountName": account, "Failed": failed, "Succeeded": succeeded, "LastSeen": last})
    return ["AccountName", "Failed", "Succeeded", "LastSeen"], rows


def q34(data: Tables) -> Answer:
    grouped: dict[str, list[Row]] = defaultdict(list)
    for row in data["EmailEvents"]:
        if has(row["ThreatTypes"], "Phish") and row["EmailDirection"] == "Inbound":
            grouped[row["SenderFromAddress"]].append(row)
    rows = [
        {
            "SenderFromAddress": sender,
            "Recipients": len({row["RecipientEmailAddress"] for row in mails}),
            "Subjects": sorted({row["Subject"] for row in mails}),
        }
        for sender, mails in grouped.items()
    ]
    rows.sort(key=lambda row: (-row["Recipients"], row["SenderFromAddress"]))
    return ["SenderFromAddress", "Recipients", "Subjects"], rows


#: Query id -> oracle.
ORACLES: dict[str, Callable[[Tables], Answer]] = {
    "Q02": q02,
    "Q03": q03,
    "Q04": q04,
    "Q05": q05,
    "Q06": q06,
    "Q07": q07,
    "Q08": q08,
    "Q09": q09,
    "Q16": q16,
    "Q17": q17,
    "Q19": q19,
    "Q21": q21,
    "Q26": q26,
    "Q27": q27,
    "Q29": q29,
    "Q31": q31,
    "Q34": q34,
}
