"""The golden battery: queries Q01-Q35 and E1-E4 of kql-subset.md section 4, verbatim, as data.

Each query says how its answer is compared with the snapshot: ``ordered`` (``top``, ``order by``:
rows in order), ``multiset`` (rows in any order), or ``shape`` (``take``: only the row count and the
columns, since which rows come back is not defined). ``set_columns`` name ``make_set`` results,
whose element order is not defined either. E1-E4 must fail, each with a message that ``mentions``
the problem.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Comparison = Literal["ordered", "multiset", "shape"]


@dataclass(frozen=True)
class BatteryQuery:
    """One battery query.

    :param id: ``Q01`` ... ``Q35``.
    :param text: the KQL, exactly as the spec writes it.
    :param compare: how answers are compared (see the module docstring).
    :param set_columns: columns holding ``make_set`` arrays, compared as sets.
    :param note: the spec's comment on the query, if any.
    """

    id: str
    text: str
    compare: Comparison
    set_columns: tuple[str, ...] = ()
    note: str = ""


@dataclass(frozen=True)
class BatteryError:
    """A query the service must refuse (HTTP 400).

    :param id: ``E1`` ... ``E4``.
    :param text: the KQL.
    :param mentions: text the error message must contain.
    """

    id: str
    text: str
    mentions: str


QUERIES: tuple[BatteryQuery, ...] = (
    BatteryQuery("Q01", r"""DeviceProcessEvents | take 10""", "shape", note="take"),
    BatteryQuery("Q02", r"""DeviceProcessEvents | where Timestamp > ago(7d) | count""", "multiset"),
    BatteryQuery(
        "Q03",
        r"""DeviceProcessEvents
| where FileName == "powershell.exe" and ProcessCommandLine has "EncodedCommand"
| project Timestamp, DeviceName, ProcessCommandLine""",
        "multiset",
    ),
    BatteryQuery(
        "Q04",
        r"""DeviceNetworkEvents | where RemoteUrl contains "evil" | summarize Hits = count() by RemoteUrl""",
        "multiset",
    ),
    BatteryQuery(
        "Q05",
        r"""DeviceProcessEvents | where FolderPath startswith @"C:\Users\" | distinct DeviceName, AccountName""",
        "multiset",
    ),
    BatteryQuery(
        "Q06",
        r"""DeviceLogonEvents | where AccountName =~ "ADMINISTRATOR" | summarize Attempts = count() by AccountName, ActionType""",
        "multiset",
    ),
    BatteryQuery(
        "Q07",
        r"""DeviceProcessEvents | where FileName in~ ("CMD.EXE", "PowerShell.exe", "WScript.exe") | summarize Executions = count() by FileName""",
        "multiset",
    ),
    BatteryQuery(
        "Q08",
        r"""EmailEvents | where Subject !has "invoice" | summarize Mails = count() by Subject""",
        "multiset",
    ),
    BatteryQuery(
        "Q09",
        r"""DeviceProcessEvents
| where ProcessCommandLine has_any ("mimikatz", "sekurlsa", "Invoke-WebRequest")
| project DeviceName, FileName, ProcessCommandLine""",
        "multiset",
    ),
    BatteryQuery("Q10", r"""AlertInfo | project-away DetectionSource, AttackTechniques | take 5""", "shape"),
    BatteryQuery(
        "Q11",
        r"""DeviceNetworkEvents
| extend IsHighPort = RemotePort > 1024, Endpoint = strcat(RemoteIP, ":", tostring(RemotePort))
| where IsHighPort
| project DeviceName, Endpoint, RemotePort""",
        "multiset",
    ),
    BatteryQuery("Q12", r"""DeviceNetworkEvents | summarize count() by DeviceName, ActionType""", "multiset"),
    BatteryQuery(
        "Q13",
        r"""DeviceLogonEvents
| where ActionType == "LogonFailed"
| summarize FailedAccounts = dcount(AccountName), Devices = make_set(DeviceName) by bin(Timestamp, 1h)""",
        "multiset",
        set_columns=("Devices",),
    ),
    BatteryQuery(
        "Q14",
        r"""DeviceNetworkEvents | top 5 by Timestamp desc | project Timestamp, DeviceName, RemoteIP""",
        "ordered",
    ),
    BatteryQuery(
        "Q15",
        r"""AlertInfo | where Severity == "High" | order by Timestamp asc | project Timestamp, AlertId, Title""",
        "ordered",
    ),
    BatteryQuery(
        "Q16",
        r"""DeviceLogonEvents
| where ActionType == "LogonFailed"
| summarize Failed = count() by DeviceId
| join kind=inner (
    DeviceProcessEvents | where FileName =~ "mimikatz.exe" | distinct DeviceId, DeviceName
  ) on DeviceId
| project DeviceName, Failed""",
        "multiset",
    ),
    BatteryQuery(
        "Q17",
        r"""AlertInfo | where Severity in ("High", "Medium") | join AlertEvidence on AlertId | summarize Evidence = count() by Severity""",
        "multiset",
        note="(default join = innerunique)",
    ),
    BatteryQuery(
        "Q18",
        r"""union DeviceProcessEvents, DeviceNetworkEvents | where Timestamp > ago(1d) | summarize Events = count() by DeviceName""",
        "multiset",
    ),
    BatteryQuery(
        "Q19",
        r"""union withsource=SourceTable DeviceLogonEvents, DeviceNetworkEvents
| where DeviceName == "ws-fin-01" | summarize Events = count() by SourceTable""",
        "multiset",
    ),
    BatteryQuery(
        "Q20",
        r"""let suspicious = dynamic(["mimikatz.exe", "psexec.exe"]);
let lookback = 3d;
DeviceProcessEvents
| where Timestamp > ago(lookback) and FileName in~ (suspicious)
| project Timestamp, DeviceName, FileName""",
        "multiset",
    ),
    BatteryQuery(
        "Q21",
        r"""let FailedLogons = DeviceLogonEvents
    | where ActionType == "LogonFailed"
    | summarize Failures = count() by AccountName;
FailedLogons | where Failures >= 5 | order by Failures desc, AccountName asc""",
        "ordered",
    ),
    BatteryQuery(
        "Q22",
        r"""EmailEvents | where Timestamp >= datetime(2026-11-01) | summarize Mails = count() by EmailDirection""",
        "multiset",
    ),
    BatteryQuery(
        "Q23",
        r"""DeviceLogonEvents
| where Timestamp between (datetime(2026-11-01) .. datetime(2026-11-08T00:00:00Z))
| summarize Logons = count() by ActionType""",
        "multiset",
    ),
    BatteryQuery(
        "Q24",
        r"""DeviceNetworkEvents | where RemotePort between (1024 .. 49151) | summarize Conns = count() by RemotePort""",
        "multiset",
    ),
    BatteryQuery(
        "Q25",
        r"""AlertEvidence
| extend AF = parse_json(AdditionalFields)
| extend Role = tostring(AF.Role), Score = toint(AF.Score)
| where Score > 50
| project AlertId, EntityType, Role, Score""",
        "multiset",
    ),
    BatteryQuery(
        "Q26",
        r"""EmailEvents
| extend Auth = parse_json(AuthenticationDetails)
| where tostring(Auth["SPF"]) == "fail" and tostring(Auth.DMARC) == "fail"
| summarize Spoofed = count() by SenderFromDomain""",
        "multiset",
    ),
    BatteryQuery("Q27", r"""DeviceLogonEvents | where ActionType == "LogonFailed" | count""", "multiset"),
    BatteryQuery(
        "Q28",
        r"""DeviceNetworkEvents | where ActionType == "ConnectionFailed" | distinct RemoteIP""",
        "multiset",
    ),
    BatteryQuery(
        "Q29",
        r"""AlertInfo
| extend Techniques = parse_json(AttackTechniques)
| mv-expand Technique = Techniques
| extend Technique = tostring(Technique)
| summarize Alerts = dcount(AlertId) by Technique""",
        "multiset",
    ),
    BatteryQuery(
        "Q30",
        r"""DeviceNetworkEvents
| extend PortClass = case(RemotePort == 443, "https", RemotePort == 80, "http", RemotePort < 1024, "well-known", "other"),
         Direction = iff(ActionType == "InboundConnectionAccepted", "in", "out")
| summarize Conns = count() by PortClass, Direction""",
        "multiset",
    ),
    BatteryQuery(
        "Q31",
        r"""DeviceLogonEvents
| summarize Failed = countif(ActionType == "LogonFailed"), Succeeded = countif(ActionType == "LogonSuccess"),
            LastSeen = max(Timestamp) by AccountName
| where Failed > 3 and Succeeded > 0""",
        "multiset",
    ),
    BatteryQuery(
        "Q32",
        r"""DeviceNetworkEvents | summarize arg_max(Timestamp, RemoteIP, RemoteUrl) by DeviceName""",
        "multiset",
    ),
    BatteryQuery(
        "Q33",
        r"""DeviceProcessEvents
| extend Domain = extract(@"https?://([^/\s]+)", 1, ProcessCommandLine)
| where isnotempty(Domain)
| summarize Procs = count() by Domain""",
        "multiset",
    ),
    BatteryQuery(
        "Q34",
        r"""EmailEvents
| where ThreatTypes has "Phish" and EmailDirection == "Inbound"
| summarize Recipients = dcount(RecipientEmailAddress), Subjects = make_set(Subject) by SenderFromAddress
| order by Recipients desc, SenderFromAddress asc""",
        "ordered",
        set_columns=("Subjects",),
    ),
    BatteryQuery(
        "Q35",
        r"""DeviceProcessEvents
| where Timestamp > ago(1d)
| extend Day = startofday(Timestamp), Hour = hourofday(Timestamp)
| summarize Procs = count() by Day, Hour""",
        "multiset",
    ),
)

ERRORS: tuple[BatteryError, ...] = (
    BatteryError("E1", r'''DeviceProcessEvents | where FileName = "cmd.exe"''', mentions="'=='"),
    BatteryError("E2", r'''DeviceProcessEvents | where FileNam == "cmd.exe"''', mentions="FileNam"),
    BatteryError("E3", r"""DeviceProcessEvent | take 1""", mentions="DeviceProcessEvent"),
    BatteryError("E4", r"""DeviceProcessEvents | extend x = nosuchfn(FileName)""", mentions="nosuchfn"),
)

#: Query id -> query.
BY_ID: dict[str, BatteryQuery] = {query.id: query for query in QUERIES}
