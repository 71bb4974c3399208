"""Value tables of the synthetic tenant: incidents and alerts (Graph enum spellings, defender-api.md section 5).

Statuses, classifications and determinations, service and detection source names, MITRE technique
names, the alert templates and the scenarios that group them into incidents, tags and comments.
"""

from __future__ import annotations

from dataclasses import dataclass

from airflow_provider_mtp.emulator.tenant_data.activity import ENCODED_STAGE2, RUN_KEY

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
MIMIKATZ_FILE = ("mimikatz.exe", "C:\\Users\\{user}\\Downloads\\", "gentilkiwi (Benjamin DELPY)")

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
        file=MIMIKATZ_FILE,
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
        registry=(RUN_KEY, "Updater", "C:\\Users\\Public\\updater.exe"),
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
