"""Value tables of the synthetic tenant: sizes and shares of the tables, the estate's devices and people.

Pure data: the code that uses them is in :mod:`airflow_provider_mtp.emulator.synthetic`.
"""

from __future__ import annotations

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
#: DNS domains of the devices (DeviceName is the lower-case FQDN, as for domain-joined devices):
#: the AD forest root, a regional child domain, and the Linux servers' own zone.
AD_DOMAIN = "contoso.local"
DEVICE_DOMAINS: dict[str, str] = {
    "ws-sales": "emea.contoso.local",
    "ws-mkt": "emea.contoso.local",
    "lnx": "corp.contoso.com",
}
#: Where the office NATs to (TEST-NET-1); attacker infrastructure lives in the other two TEST-NETs.
OFFICE_EGRESS_IP = "192.0.2.10"
DC_IPS = ("10.0.0.10", "10.0.0.11")


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
#: Servers that are cloud VMs: name -> platform (DeviceInfo's CloudPlatforms and resource ids).
CLOUD_VMS: dict[str, str] = {
    "srv-web-01": "Azure",
    "srv-web-02": "Azure",
    "lnx-web-01": "AWS",
    "lnx-db-01": "GCP",
}
AZURE_SUBSCRIPTION = "5f1c6a9e-3b7d-4e21-9c8a-0d2e4f6b8a13"
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
