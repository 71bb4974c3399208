"""Value tables of the synthetic tenant: the executable images every Device table names.

One row per image file: the full path (``{user}`` is the account's profile folder), the version
resource and the signature. Hashes and the size are derived from the path (see
:func:`airflow_provider_mtp.emulator.synthetic.images.image_rows`), so the same file has the same
SHA1, SHA256, MD5 and size in every table and alert. Processes that start at boot
(:data:`BOOT_RANKS`) are older than anything a day's activity starts from.
"""

from __future__ import annotations

SYS32 = "C:\\Windows\\System32\\"
_OFFICE = "C:\\Program Files\\Microsoft Office\\root\\Office16\\"
PS_PATH = "C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe"
_MS = "Microsoft Corporation"
_WIN = "Microsoft® Windows® Operating System"
_WIN_VERSION = "10.0.22621.4391"
_OFFICE_PRODUCT = ("Microsoft Office", "16.0.18129.20158")
_SYSINTERNALS = ("Sysinternals - www.sysinternals.com", "Sysinternals PsExec", "2.43.0.0")
_KIWI = ("gentilkiwi (Benjamin DELPY)", "mimikatz", "2.2.0.0")

#: (path, company, product, version, description, signer type, signature status).
#: Signer types and statuses as the service spells them: OsVendor, Microsoft, ThirdParty; Valid, Unsigned.
IMAGES: tuple[tuple[str, str, str, str, str, str, str], ...] = (
    (SYS32 + "smss.exe", _MS, _WIN, _WIN_VERSION, "Windows Session Manager", "OsVendor", "Valid"),
    (SYS32 + "wininit.exe", _MS, _WIN, _WIN_VERSION, "Windows Start-Up Application", "OsVendor", "Valid"),
    (SYS32 + "winlogon.exe", _MS, _WIN, _WIN_VERSION, "Windows Logon Application", "OsVendor", "Valid"),
    (SYS32 + "services.exe", _MS, _WIN, _WIN_VERSION, "Services and Controller app", "OsVendor", "Valid"),
    (SYS32 + "lsass.exe", _MS, _WIN, _WIN_VERSION, "Local Security Authority Process", "OsVendor", "Valid"),
    (SYS32 + "userinit.exe", _MS, _WIN, _WIN_VERSION, "Userinit Logon Application", "OsVendor", "Valid"),
    ("C:\\Windows\\explorer.exe", _MS, _WIN, _WIN_VERSION, "Windows Explorer", "OsVendor", "Valid"),
    (SYS32 + "svchost.exe", _MS, _WIN, _WIN_VERSION, "Host Process for Windows Services", "OsVendor", "Valid"),
    (SYS32 + "conhost.exe", _MS, _WIN, _WIN_VERSION, "Console Window Host", "OsVendor", "Valid"),
    (SYS32 + "cmd.exe", _MS, _WIN, _WIN_VERSION, "Windows Command Processor", "OsVendor", "Valid"),
    (PS_PATH, _MS, _WIN, _WIN_VERSION, "Windows PowerShell", "OsVendor", "Valid"),
    (SYS32 + "taskhostw.exe", _MS, _WIN, _WIN_VERSION, "Host Process for Windows Tasks", "OsVendor", "Valid"),
    (SYS32 + "SearchIndexer.exe", _MS, _WIN, _WIN_VERSION, "Microsoft Windows Search Indexer", "OsVendor", "Valid"),
    (SYS32 + "SearchProtocolHost.exe", _MS, _WIN, _WIN_VERSION, "Microsoft Windows Search Protocol Host", "OsVendor", "Valid"),
    (SYS32 + "wbem\\WmiPrvSE.exe", _MS, _WIN, _WIN_VERSION, "WMI Provider Host", "OsVendor", "Valid"),
    (SYS32 + "RuntimeBroker.exe", _MS, _WIN, _WIN_VERSION, "Runtime Broker", "OsVendor", "Valid"),
    (SYS32 + "notepad.exe", _MS, _WIN, _WIN_VERSION, "Notepad", "OsVendor", "Valid"),
    (SYS32 + "whoami.exe", _MS, _WIN, _WIN_VERSION, "whoami - displays logged on user information", "OsVendor", "Valid"),
    (SYS32 + "net.exe", _MS, _WIN, _WIN_VERSION, "Net Command", "OsVendor", "Valid"),
    (SYS32 + "net1.exe", _MS, _WIN, _WIN_VERSION, "Net Command", "OsVendor", "Valid"),
    (SYS32 + "nltest.exe", _MS, _WIN, _WIN_VERSION, "Microsoft® Logon Server Test Utility", "OsVendor", "Valid"),
    (SYS32 + "certutil.exe", _MS, _WIN, _WIN_VERSION, "CertUtil.exe", "OsVendor", "Valid"),
    (SYS32 + "rundll32.exe", _MS, _WIN, _WIN_VERSION, "Windows host process (Rundll32)", "OsVendor", "Valid"),
    (SYS32 + "schtasks.exe", _MS, _WIN, _WIN_VERSION, "Task Scheduler Configuration Tool", "OsVendor", "Valid"),
    (SYS32 + "vssadmin.exe", _MS, _WIN, _WIN_VERSION, "Command Line Interface for Microsoft® Volume Shadow Copy Service", "OsVendor", "Valid"),
    (SYS32 + "reg.exe", _MS, _WIN, _WIN_VERSION, "Registry Console Tool", "OsVendor", "Valid"),
    (SYS32 + "msiexec.exe", _MS, _WIN, _WIN_VERSION, "Windows® installer", "OsVendor", "Valid"),
    (SYS32 + "mstsc.exe", _MS, _WIN, _WIN_VERSION, "Remote Desktop Connection", "OsVendor", "Valid"),
    (SYS32 + "gpupdate.exe", _MS, _WIN, _WIN_VERSION, "Microsoft® Windows Group Policy Update Utility", "OsVendor", "Valid"),
    (SYS32 + "wsmprovhost.exe", _MS, _WIN, _WIN_VERSION, "Host process for WinRM plug-ins", "OsVendor", "Valid"),
    ("C:\\ProgramData\\Microsoft\\Windows Defender\\Platform\\4.18.24090.11-0\\MsMpEng.exe", _MS, "Microsoft® Windows® Operating System", "4.18.24090.11", "Antimalware Service Executable", "Microsoft", "Valid"),
    ("C:\\Program Files\\Google\\Chrome\\Application\\chrome.exe", "Google LLC", "Google Chrome", "131.0.6778.86", "Google Chrome", "ThirdParty", "Valid"),
    ("C:\\Program Files (x86)\\Microsoft\\Edge\\Application\\msedge.exe", _MS, "Microsoft Edge", "131.0.2903.70", "Microsoft Edge", "Microsoft", "Valid"),
    (_OFFICE + "OUTLOOK.EXE", _MS, *_OFFICE_PRODUCT, "Microsoft Outlook", "Microsoft", "Valid"),
    (_OFFICE + "EXCEL.EXE", _MS, *_OFFICE_PRODUCT, "Microsoft Excel", "Microsoft", "Valid"),
    (_OFFICE + "WINWORD.EXE", _MS, *_OFFICE_PRODUCT, "Microsoft Word", "Microsoft", "Valid"),
    ("C:\\Program Files\\WindowsApps\\MSTeams_24295.605.3225.8804_x64__8wekyb3d8bbwe\\ms-teams.exe", _MS, "Microsoft Teams", "24295.605.3225.8804", "Microsoft Teams", "Microsoft", "Valid"),
    ("C:\\Program Files\\Microsoft OneDrive\\OneDriveSetup.exe", _MS, "Microsoft OneDrive", "24.226.1110.0004", "Microsoft OneDrive Setup", "Microsoft", "Valid"),
    ("C:\\Program Files\\Git\\cmd\\git.exe", "The Git Development Community", "Git", "2.47.1.1", "Git for Windows", "ThirdParty", "Valid"),
    ("C:\\Users\\{user}\\AppData\\Local\\Programs\\Microsoft VS Code\\Code.exe", _MS, "Visual Studio Code", "1.95.3", "Visual Studio Code", "Microsoft", "Valid"),
    ("C:\\Users\\{user}\\AppData\\Local\\Programs\\Python\\Python312\\python.exe", "Python Software Foundation", "Python", "3.12.7", "Python", "ThirdParty", "Valid"),
    ("C:\\Program Files\\Contoso\\Agent\\ContosoAgent.exe", "Contoso Ltd", "Contoso Endpoint Agent", "5.2.1.0", "Contoso inventory agent", "ThirdParty", "Valid"),
    ("C:\\Program Files\\Microsoft SQL Server\\MSSQL16.MSSQLSERVER\\MSSQL\\Binn\\sqlservr.exe", _MS, "Microsoft SQL Server", "2022.160.4165.4", "SQL Server Windows NT - 64 Bit", "Microsoft", "Valid"),
    (SYS32 + "inetsrv\\w3wp.exe", _MS, "Internet Information Services", _WIN_VERSION, "IIS Worker Process", "OsVendor", "Valid"),
    ("C:\\Users\\{user}\\Downloads\\mimikatz.exe", *_KIWI, "mimikatz for Windows", "ThirdParty", "Unsigned"),
    ("C:\\Users\\Public\\Mimikatz.EXE", *_KIWI, "mimikatz for Windows", "ThirdParty", "Unsigned"),
    ("C:\\Tools\\PsExec.exe", *_SYSINTERNALS, "Execute processes remotely", "Microsoft", "Valid"),
    ("C:\\Users\\{user}\\Downloads\\psexec.exe", *_SYSINTERNALS, "Execute processes remotely", "Microsoft", "Valid"),
    ("C:\\Windows\\PSEXESVC.exe", *_SYSINTERNALS, "PsExec Service", "Microsoft", "Valid"),
    ("C:\\Users\\Public\\updater.exe", "", "", "", "", "ThirdParty", "Unsigned"),
    ("C:\\Users\\{user}\\AppData\\Local\\Temp\\svch0st.exe", "", "", "", "", "ThirdParty", "Unsigned"),
)  # fmt: skip

#: Processes already running when a day's activity starts: name -> how far back they started
#: (higher ranks are older, so a parent is always created before its child).
BOOT_RANKS: dict[str, int] = {
    "smss.exe": 4,
    "wininit.exe": 3,
    "winlogon.exe": 3,
    "services.exe": 2,
    "lsass.exe": 2,
    "userinit.exe": 2,
    "explorer.exe": 1,
    "svchost.exe": 1,
    "SearchIndexer.exe": 1,
    "MsMpEng.exe": 1,
    "ContosoAgent.exe": 1,
    "sqlservr.exe": 1,
}

#: The parent of each boot-time process (the chain ends at ``smss.exe``, whose parent is System).
BOOT_PARENTS: dict[str, str] = {
    "smss.exe": "System",
    "wininit.exe": "smss.exe",
    "winlogon.exe": "smss.exe",
    "services.exe": "wininit.exe",
    "lsass.exe": "wininit.exe",
    "userinit.exe": "winlogon.exe",
    "explorer.exe": "userinit.exe",
    "svchost.exe": "services.exe",
    "SearchIndexer.exe": "services.exe",
    "MsMpEng.exe": "services.exe",
    "ContosoAgent.exe": "services.exe",
    "sqlservr.exe": "services.exe",
}

#: Processes that run as SYSTEM wherever they appear as the initiating process.
SYSTEM_PROCESSES: frozenset[str] = frozenset(
    {"System", "smss.exe", "wininit.exe", "winlogon.exe", "services.exe", "lsass.exe", "svchost.exe",
     "SearchIndexer.exe", "MsMpEng.exe", "ContosoAgent.exe", "sqlservr.exe", "msiexec.exe", "PSEXESVC.exe"}
)  # fmt: skip

#: Command lines of the boot-time processes, as the sensor reports them.
BOOT_COMMANDS: dict[str, str] = {
    "smss.exe": "\\SystemRoot\\System32\\smss.exe",
    "wininit.exe": "wininit.exe",
    "winlogon.exe": "winlogon.exe",
    "services.exe": "C:\\Windows\\system32\\services.exe",
    "lsass.exe": "C:\\Windows\\system32\\lsass.exe",
    "userinit.exe": "C:\\Windows\\system32\\userinit.exe",
    "explorer.exe": "C:\\Windows\\Explorer.EXE",
    "svchost.exe": "C:\\Windows\\system32\\svchost.exe -k DcomLaunch -p",
    "SearchIndexer.exe": "C:\\Windows\\system32\\SearchIndexer.exe /Embedding",
    "MsMpEng.exe": '"MsMpEng.exe"',
    "ContosoAgent.exe": '"C:\\Program Files\\Contoso\\Agent\\ContosoAgent.exe" --service',
    "sqlservr.exe": '"C:\\Program Files\\Microsoft SQL Server\\MSSQL16.MSSQLSERVER\\MSSQL\\Binn\\sqlservr.exe" -sMSSQLSERVER',
}
