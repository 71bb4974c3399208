"""The evidence helper: devices, users, files, IP addresses and URLs out of alerts' typed evidence,
from both back ends' alerts, each once, and never an exception on odd input."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from airflow_provider_mtp.api.mapping import alert_to_graph
from airflow_provider_mtp.evidence import Device, Evidence, File, User, evidence_of

PORTAL = "https://security.microsoft.com"
TENANT = "9a1c3e55-0d3b-4c5e-9f51-2d7c8b6a4e10"
DEVICE_ID = "24c222b0b60fe148eeece49ac83910cc6a7ef491"
SHA1 = "5de839186691aa96ee2ca6d74f0a38fb8d1bd6dd"
SHA256 = "b2d8f7c45fbb1bb4c16aa3ae1c2c2a8a1bc3cd1ef9c44aa4c2f3d4a7f5b9e0c1"
SID = "S-1-5-21-1004336348-1177238915-682003330-1105"
UPN = "jdoe@contoso.com"


def _typed(kind: str, **fields: Any) -> dict[str, Any]:
    """One Graph evidence item with the common keys, as the emulator writes it."""
    return {
        "@odata.type": f"#microsoft.graph.security.{kind}",
        "createdDateTime": "2026-06-01T10:00:00Z",
        "verdict": "suspicious",
        "remediationStatus": "none",
        "remediationStatusDetails": None,
        "roles": [],
        "detailedRoles": [],
        "tags": [],
        **fields,
    }


def _account(**changes: Any) -> dict[str, Any]:
    return {
        "accountName": "jdoe",
        "domainName": "CONTOSO",
        "userSid": SID,
        "azureAdUserId": "0b8e3c4a-7d2f-4c1e-9a5b-3e6f7a8b9c0d",
        "userPrincipalName": UPN,
        "displayName": "Jane Doe",
        **changes,
    }


def _file_details(name: str, folder: str, sha1: str, sha256: str | None) -> dict[str, Any]:
    return {
        "fileName": name,
        "filePath": folder,
        "filePublisher": None,
        "fileSize": 1024,
        "issuer": None,
        "signer": None,
        "md5": None,
        "sha1": sha1,
        "sha256": sha256,
        "sha256Ac": None,
    }


def graph_alert() -> dict[str, Any]:
    """An alert with every evidence kind the emulator emits, in its shape (synthetic/evidence.py)."""
    return {
        "id": "da638501234567890123_1053928211",
        "incidentId": "2972395",
        "evidence": [
            _typed(
                "deviceEvidence",
                mdeDeviceId=DEVICE_ID,
                azureAdDeviceId=None,
                deviceDnsName="ws-fin-042.contoso.com",
                hostName="ws-fin-042",
                lastIpAddress="10.1.4.42",
                lastExternalIpAddress="198.51.100.7",
                ipInterfaces=["10.1.4.42"],
                loggedOnUsers=[{"accountName": "someone-else", "domainName": "CONTOSO"}],
            ),
            _typed("userEvidence", userAccount=_account()),
            _typed(
                "fileEvidence",
                fileDetails=_file_details("mimikatz.exe", "C:\\Users\\jdoe\\Downloads", SHA1, SHA256),
                mdeDeviceId=DEVICE_ID,
            ),
            _typed(
                "processEvidence",
                processCommandLine="powershell.exe -enc ...",
                imageFile=_file_details("powershell.exe", "C:\\Windows\\System32", "a" * 40, "b" * 64),
                parentProcessImageFile=_file_details("explorer.exe", "C:\\Windows", "c" * 40, "d" * 64),
                userAccount=_account(),
                mdeDeviceId=DEVICE_ID,
            ),
            _typed("ipEvidence", ipAddress="203.0.113.9", countryLetterCode="RU"),
            _typed("urlEvidence", url="http://evil-c2.example.net/"),
            _typed("mailboxEvidence", primaryAddress=UPN, userAccount=_account()),
            _typed(
                "analyzedMessageEvidence",
                senderIp="203.0.113.45",
                p1Sender={"emailAddress": "it@micros0ft.example"},
                recipientEmailAddress=UPN,
            ),
            _typed(
                "registryValueEvidence",
                registryHive="HKEY_CURRENT_USER",
                registryKey="Software\\Microsoft\\Windows\\CurrentVersion\\Run",
                mdeDeviceId=DEVICE_ID,
            ),
            _typed("cloudApplicationEvidence", appId=1, displayName="Dropbox"),
        ],
    }


def legacy_alert() -> dict[str, Any]:
    """An alert as the legacy API embeds it in an incident: ``devices[]`` and ``entities[]``."""
    return {
        "alertId": "da638501234567890123_393341063",
        "incidentId": 924521,
        "status": "New",
        "devices": [
            {
                "mdatpDeviceId": DEVICE_ID,
                "aadDeviceId": None,
                "deviceDnsName": "ws-fin-042.contoso.com",
                "osPlatform": "Windows10",
                "healthStatus": "Active",
            }
        ],
        "entities": [
            {
                "entityType": "File",
                "sha1": SHA1,
                "sha256": SHA256,
                "fileName": "mimikatz.exe",
                "filePath": "C:\\Users\\jdoe\\Downloads",
                "deviceId": DEVICE_ID,
            },
            {
                "entityType": "Process",
                "processId": 7,
                "sha1": "a" * 40,
                "sha256": "b" * 64,
                "fileName": "powershell.exe",
                "filePath": "C:\\Windows\\System32",
                "accountName": "jdoe",
                "domainName": "CONTOSO",
                "userSid": SID,
                "userPrincipalName": UPN,
                "deviceId": DEVICE_ID,
            },
            {
                "entityType": "User",
                "accountName": "jdoe",
                "domainName": "CONTOSO",
                "userSid": SID,
                "aadUserId": "0b8e3c4a-7d2f-4c1e-9a5b-3e6f7a8b9c0d",
                "userPrincipalName": UPN,
            },
            {"entityType": "Ip", "ipAddress": "203.0.113.9"},
            {"entityType": "Url", "url": "http://evil-c2.example.net/"},
            {"entityType": "MailBox", "mailboxAddress": UPN, "accountName": "jdoe", "domainName": "CONTOSO"},
            {"entityType": "MailMessage", "sender": "it@micros0ft.example", "recipient": UPN},
            {
                "entityType": "Registry",
                "registryKey": "Software\\Run",
                "registryValue": "x",
                "deviceId": DEVICE_ID,
            },
            {"entityType": "CloudApplication", "applicationId": 11161},
        ],
    }


DEVICE = Device(
    mde_device_id=DEVICE_ID,
    device_dns_name="ws-fin-042.contoso.com",
    host_name="ws-fin-042",
    last_ip_address="10.1.4.42",
    last_external_ip_address="198.51.100.7",
)
USER = User(
    account_name="jdoe",
    domain_name="CONTOSO",
    user_principal_name=UPN,
    user_sid=SID,
    azure_ad_user_id="0b8e3c4a-7d2f-4c1e-9a5b-3e6f7a8b9c0d",
)
FILES = [
    File(sha1=SHA1, sha256=SHA256, file_name="mimikatz.exe", file_path="C:\\Users\\jdoe\\Downloads"),
    File(sha1="a" * 40, sha256="b" * 64, file_name="powershell.exe", file_path="C:\\Windows\\System32"),
]


def test_graph_evidence_as_the_emulator_writes_it() -> None:
    found = evidence_of(graph_alert())

    assert found.devices == [DEVICE], "file, process and registry evidence name the same device"
    assert found.users == [USER], "user, process and mailbox evidence name the same account"
    assert found.files == FILES, "the process image, not its parent's"
    assert found.ips == ["203.0.113.9", "203.0.113.45"], "the IP evidence and the message's sender"
    assert found.urls == ["http://evil-c2.example.net/"]
    assert found.other_kinds == ["cloudApplicationEvidence"]
    assert found.device_names == ["ws-fin-042"]
    assert found


def test_a_legacy_alert_mapped_to_the_graph_shape_gives_the_same_things() -> None:
    """The legacy API's devices and entities, through the one mapping: what the legacy back end serves."""
    found = evidence_of(alert_to_graph(legacy_alert(), tenant_id=TENANT, portal=PORTAL))

    # The legacy API carries no host name (derived from the DNS name) and no device addresses.
    assert found.devices == [Device(mde_device_id=DEVICE_ID, device_dns_name="ws-fin-042.contoso.com")]
    assert found.devices[0].host_name == "ws-fin-042"
    assert found.users == [USER]
    assert found.files == FILES
    assert found.ips == ["203.0.113.9"], "no sender address in the legacy message entity"
    assert found.urls == ["http://evil-c2.example.net/"]
    assert found.other_kinds == ["cloudApplicationEvidence"]


def test_an_incident_with_its_alerts_and_lists_of_alerts() -> None:
    second = {
        "evidence": [
            _typed("deviceEvidence", mdeDeviceId="f" * 40, deviceDnsName="srv-db-01.contoso.com"),
            _typed("ipEvidence", ipAddress="203.0.113.9"),
            _typed("urlEvidence", url="http://evil-c2.example.net/"),
        ]
    }
    incident = {"id": "7", "alerts": [graph_alert(), second]}

    found = evidence_of(incident)

    assert [device.host_name for device in found.devices] == ["ws-fin-042", "srv-db-01"]
    assert found.ips == ["203.0.113.9", "203.0.113.45"]
    assert found.urls == ["http://evil-c2.example.net/"]
    assert evidence_of([graph_alert(), second]) == found
    assert evidence_of(graph_alert(), second) == found
    assert evidence_of(graph_alert()["evidence"], second["evidence"]) == found, "evidence lists too"


def test_records_are_merged_only_when_nothing_disagrees() -> None:
    found = evidence_of(
        {
            "evidence": [
                # A device known first by id only, then completed by its device evidence.
                _typed(
                    "fileEvidence", fileDetails={"fileName": "a.exe", "filePath": "C:\\"}, mdeDeviceId="ID1"
                ),
                _typed("deviceEvidence", mdeDeviceId="id1", deviceDnsName="pc1.contoso.com"),
                _typed("deviceEvidence", deviceDnsName="pc1.contoso.com.", lastIpAddress="10.0.0.5"),
                # Same DNS name, another Defender id: another device (a reimaged machine).
                _typed("deviceEvidence", mdeDeviceId="id2", deviceDnsName="PC1.contoso.com"),
                # The same account name in two domains: two users; a later record completes one.
                _typed("userEvidence", userAccount={"accountName": "admin", "domainName": "CONTOSO"}),
                _typed("userEvidence", userAccount={"accountName": "admin", "domainName": "FABRIKAM"}),
                _typed(
                    "userEvidence",
                    userAccount={"accountName": "Admin", "domainName": "contoso", "userSid": "S-1"},
                ),
                # A file named before its hashes were known; the same path with other hashes is another file.
                _typed("fileEvidence", fileDetails={"fileName": "a.exe", "filePath": "C:\\", "sha1": "11"}),
                _typed("fileEvidence", fileDetails={"fileName": "a.exe", "filePath": "C:\\", "sha1": "22"}),
            ]
        }
    )

    assert found.devices == [
        Device(mde_device_id="ID1", device_dns_name="pc1.contoso.com", last_ip_address="10.0.0.5"),
        Device(mde_device_id="id2", device_dns_name="PC1.contoso.com"),
    ]
    assert found.users == [
        User(account_name="admin", domain_name="CONTOSO", user_sid="S-1"),
        User(account_name="admin", domain_name="FABRIKAM"),
    ]
    assert found.files == [
        File(sha1="11", file_name="a.exe", file_path="C:\\"),
        File(sha1="22", file_name="a.exe", file_path="C:\\"),
    ]


def test_addresses_are_listed_once_in_canonical_form_and_odd_ones_kept() -> None:
    found = evidence_of(
        [
            _typed("ipEvidence", ipAddress=" 10.0.0.1 "),
            _typed("ipEvidence", ipAddress="10.0.0.1"),
            _typed("ipEvidence", ipAddress="2001:DB8:0:0::0001"),
            _typed("ipEvidence", ipAddress="2001:db8::1"),
            _typed("ipEvidence", ipAddress="not-an-address"),
            _typed(
                "networkConnectionEvidence",
                sourceAddress={"ipAddress": "10.0.0.1"},
                destinationAddress={"ipAddress": "192.0.2.1"},
            ),
            _typed("dnsEvidence", domainName="evil.example", hostIpAddress={"ipAddress": "192.0.2.2"}),
        ]
    )
    assert found.ips == ["10.0.0.1", "2001:db8::1", "not-an-address", "192.0.2.1", "192.0.2.2"]


def test_odata_type_in_any_spelling_and_logon_sessions() -> None:
    found = evidence_of(
        [
            {"@odata.type": "microsoft.graph.security.URLEVIDENCE", "url": "https://a.example/x"},
            {"@odata.type": "#microsoft.graph.security.urlEvidence", "url": "https://a.example/x"},
            {
                "@odata.type": "#microsoft.graph.security.hostLogonSessionEvidence",
                "host": {"mdeDeviceId": "d1", "hostName": "pc9"},
                "account": {"userAccount": {"accountName": "svc", "domainName": "CONTOSO"}},
            },
        ]
    )
    assert found.urls == ["https://a.example/x"]
    assert found.devices == [Device(mde_device_id="d1", host_name="pc9")]
    assert found.users == [User(account_name="svc", domain_name="CONTOSO")]


def test_to_json_is_json_with_graph_names_and_reads_back() -> None:
    found = evidence_of(graph_alert())
    data = json.loads(json.dumps(found.to_json()))

    assert list(data) == ["devices", "users", "files", "ips", "urls", "otherKinds"]
    assert data["devices"][0] == {
        "mdeDeviceId": DEVICE_ID,
        "azureAdDeviceId": None,
        "deviceDnsName": "ws-fin-042.contoso.com",
        "hostName": "ws-fin-042",
        "lastIpAddress": "10.1.4.42",
        "lastExternalIpAddress": "198.51.100.7",
    }
    assert set(data["users"][0]) == {
        "accountName",
        "domainName",
        "userPrincipalName",
        "userSid",
        "azureAdUserId",
    }
    assert data["files"][0] == {
        "sha1": SHA1,
        "sha256": SHA256,
        "fileName": "mimikatz.exe",
        "filePath": "C:\\Users\\jdoe\\Downloads",
    }
    assert Evidence.from_json(data) == found
    assert Evidence.from_json({"devices": "x", "ips": [1, " ", "10.0.0.1"], "urls": None}) == Evidence(
        ips=["10.0.0.1"]
    )


HOSTILE: list[Any] = [
    None,
    "evidence",
    42,
    [],
    {},
    {"evidence": None},
    {"evidence": "a string, not a list"},
    {"evidence": {"@odata.type": "#microsoft.graph.security.ipEvidence", "ipAddress": "1.2.3.4"}},
    {"evidence": [None, 1, "x", [], {}, {"@odata.type": None}, {"@odata.type": ["ipEvidence"]}]},
    {"evidence": [{"@odata.type": "#microsoft.graph.security.deviceEvidence", "mdeDeviceId": 12345}]},
    {"evidence": [{"@odata.type": "#microsoft.graph.security.deviceEvidence", "deviceDnsName": "."}]},
    {"evidence": [{"@odata.type": "#microsoft.graph.security.fileEvidence", "fileDetails": "x.exe"}]},
    {"evidence": [{"@odata.type": "#microsoft.graph.security.userEvidence", "userAccount": [1, 2]}]},
    {"evidence": [{"@odata.type": "#microsoft.graph.security.ipEvidence", "ipAddress": {"v": 4}}]},
    {"evidence": [{"@odata.type": "#microsoft.graph.security.urlEvidence", "url": "   "}]},
    {
        "evidence": [
            {
                "@odata.type": "#microsoft.graph.security.processEvidence",
                "imageFile": None,
                "userAccount": None,
                "mdeDeviceId": None,
            }
        ]
    },
    {
        "evidence": [
            {
                "@odata.type": "#microsoft.graph.security.networkConnectionEvidence",
                "sourceAddress": "1.2.3.4",
                "destinationAddress": [None],
            }
        ]
    },
    {"alerts": "not a list"},
    {"alerts": [None, 3, {"evidence": 7}]},
    [[{"evidence": [{"@odata.type": "#microsoft.graph.security.ipEvidence", "ipAddress": "1.2.3.4"}]}]],
]


@pytest.mark.parametrize("source", HOSTILE, ids=range(len(HOSTILE)))
def test_odd_input_gives_nothing_rather_than_an_error(source: Any) -> None:
    found = evidence_of(source)
    assert not found
    assert found.devices == found.users == found.files == found.ips == found.urls == []
    json.dumps(found.to_json())


def test_a_device_named_only_by_a_non_string_dns_label_still_gets_its_id() -> None:
    found = evidence_of(
        {
            "evidence": [
                {
                    "@odata.type": "#microsoft.graph.security.deviceEvidence",
                    "mdeDeviceId": "x",
                    "deviceDnsName": ".contoso.com",
                    "hostName": 5,
                }
            ]
        }
    )
    assert found.devices == [Device(mde_device_id="x", device_dns_name=".contoso.com")]
    assert found.device_names == []


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=30,
)
_KINDS = st.sampled_from(
    [
        "deviceEvidence",
        "userEvidence",
        "fileEvidence",
        "processEvidence",
        "ipEvidence",
        "urlEvidence",
        "mailboxEvidence",
        "analyzedMessageEvidence",
        "networkConnectionEvidence",
        "dnsEvidence",
        "hostLogonSessionEvidence",
        "registryKeyEvidence",
        "somethingNewEvidence",
        "",
    ]
)
_KEYS = st.sampled_from(
    [
        "mdeDeviceId",
        "deviceDnsName",
        "hostName",
        "lastIpAddress",
        "userAccount",
        "fileDetails",
        "imageFile",
        "ipAddress",
        "url",
        "senderIp",
        "sourceAddress",
        "hostIpAddress",
        "host",
        "account",
        "accountName",
    ]
)
_ITEMS = st.builds(
    lambda kind, extra: {"@odata.type": f"#microsoft.graph.security.{kind}", **extra},
    _KINDS,
    st.dictionaries(_KEYS, _JSON, max_size=5),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(_ITEMS | _JSON, max_size=8))
def test_any_json_as_evidence_never_raises_and_stays_json(items: list[Any]) -> None:
    found = evidence_of({"evidence": items}, {"alerts": [{"evidence": items}]})
    data = found.to_json()
    json.dumps(data)
    assert Evidence.from_json(data) == found
    for device in found.devices:
        assert all(value is None or isinstance(value, str) for value in device.to_json().values())
