"""The per-day snapshot tables: DeviceInfo, DeviceNetworkInfo and IdentityInfo."""

from __future__ import annotations

import json

from airflow_provider_mtp.emulator.synthetic.event_sql import EventSQL
from airflow_provider_mtp.emulator.tenant_data.estate import DC_IPS, DOMAIN, NETBIOS_DOMAIN


class SnapshotTables(EventSQL):
    """DeviceInfo, DeviceNetworkInfo (one row per device per day) and IdentityInfo (one per user per day)."""

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
