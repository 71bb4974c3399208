"""The per-day snapshot tables: DeviceInfo, DeviceNetworkInfo and IdentityInfo."""

from __future__ import annotations

import json

from airflow_provider_mtp.emulator.synthetic.event_sql import EventSQL
from airflow_provider_mtp.emulator.tenant_data.estate import (
    AZURE_SUBSCRIPTION,
    CLOUD_VMS,
    DC_IPS,
    DOMAIN,
    NETBIOS_DOMAIN,
)


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
            **self.device_details(d),
        }
        self.insert(
            "DeviceInfo",
            columns,
            f"{self.snapshot_source(d, len(self.devices))} JOIN _mtp_usr u ON u.idx = {d}.owner_idx",
        )

    def device_details(self, d: str) -> dict[str, str]:
        """DeviceInfo's OS details, tags and, for the cloud VMs, their resource ids."""
        host = f"split_part({d}.device_name, '.', 1)"
        cloud = " ".join(f"WHEN '{name}' THEN '{platform}'" for name, platform in CLOUD_VMS.items())
        platform = f"CASE {host} {cloud} END"
        vm_id = f"md5('{self.seed}/vm/' || {d}.device_id)::UUID::VARCHAR"
        azure = f"'/subscriptions/{AZURE_SUBSCRIPTION}/resourceGroups/rg-web/providers/Microsoft.Compute/virtualMachines/' || {host}"
        return {
            "RegistryDeviceTag": f"CASE WHEN {host} LIKE 'ws-it-%' THEN 'ITPilot' END",
            "OSDistribution": f"CASE WHEN {d}.os_platform = 'Linux' THEN 'Ubuntu' ELSE {d}.os_platform END",
            "OSVersionInfo": f"{d}.os_version",
            "IsExcluded": "false",
            "DeviceManualTags": f"CASE WHEN {host} LIKE 'ws-exec-%' THEN '[\"VIP\"]' ELSE '[]' END",
            "DeviceDynamicTags": f"CASE WHEN {d}.role = 'DomainController' THEN '[\"Tier0\"]' ELSE '[]' END",
            "ConnectivityType": f"CASE WHEN {d}.os_platform = 'Windows11' THEN 'Streamlined' ELSE 'Standard' END",
            "AzureResourceId": f"CASE WHEN {platform} = 'Azure' THEN {azure} END",
            "AzureVmId": f"CASE WHEN {platform} = 'Azure' THEN {vm_id} END",
            "AzureVmSubscriptionId": f"CASE WHEN {platform} = 'Azure' THEN '{AZURE_SUBSCRIPTION}' END",
            "AwsResourceName": f"CASE WHEN {platform} = 'AWS' THEN 'arn:aws:ec2:eu-west-1:123456789012:instance/i-' || substr(md5({d}.device_id), 1, 17) END",
            "GcpFullResourceName": f"CASE WHEN {platform} = 'GCP' THEN '//compute.googleapis.com/projects/contoso-prod/zones/europe-west1-b/instances/' || {host} END",
            "CloudPlatforms": f"CASE WHEN {platform} IS NULL THEN '[]' ELSE json_array({platform})::VARCHAR END",
            "HardwareUuid": f"md5('{self.seed}/hw/' || {d}.device_id)::UUID::VARCHAR",
            "IsTransient": "false",
            "OsBuildRevision": f"NULLIF(split_part({d}.client_version, '.', 4), '')",
        }

    def device_network_info(self) -> None:
        self.scope = "DeviceNetworkInfo"
        d = "_mtp_dev"
        suffix = f"regexp_extract({d}.device_name, '^[^.]+\\.(.*)$', 1)"
        networks = f"json_array(json_object('Name', {suffix}, 'Description', {suffix}, 'IsConnectedToInternet', true, 'Category', 'Domain'))::VARCHAR"
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
            "NetworkAdapterDnsSuffix": suffix,
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
            **self.identity_details(u),
        }
        # Every eighth person leads the next seven: their manager.
        manager = f"LEFT JOIN _mtp_usr m ON m.idx = {u}.idx - {u}.idx % 8 AND m.idx <> {u}.idx AND {u}.kind IN ('user', 'analyst')"
        self.insert("IdentityInfo", columns, f"{self.snapshot_source(u, len(self.users))} {manager}")

    def identity_details(self, u: str) -> dict[str, str]:
        """IdentityInfo's directory attributes: DN, ids, contact details, groups."""
        admin = f"{u}.kind = 'admin'"
        service = f"{u}.kind = 'service'"
        ou = f"CASE WHEN {service} THEN 'OU=Service Accounts' ELSE 'OU=' || {u}.department || ',OU=Users' END"
        number = f"(hash({u}.object_id, {self.seed}, 'csid') % 4000000000)::BIGINT"
        return {
            "DistinguishedName": f"'CN=' || {u}.display_name || ',' || {ou} || ',DC=contoso,DC=local'",
            "CloudSid": f"'S-1-12-1-' || {number} || '-' || ({number} // 3) || '-' || ({number} // 7) || '-' || ({number} // 11)",
            "SipProxyAddress": f"CASE WHEN NOT {service} THEN {u}.upn END",
            "Address": f"CASE WHEN NOT {service} THEN '1 Contoso Way, ' || {u}.city END",
            "Manager": "m.display_name",
            "Phone": f"CASE WHEN NOT {service} THEN '+1 425 555 ' || lpad(CAST(1000 + {u}.idx AS VARCHAR), 4, '0') END",
            "CreatedDateTime": f"(TIMESTAMPTZ '{self.start.isoformat()}' - to_microseconds((hash({u}.object_id, {self.seed}, 'created') % 1500 + 30)::BIGINT * 86400000000))",
            "BlastRadius": f"CASE WHEN {admin} OR {u}.kind = 'analyst' THEN 'High' ELSE 'Low' END",
            "CompanyName": "'Contoso Ltd'",
            "EmployeeId": f"CASE WHEN NOT {service} THEN 'E' || (10000 + {u}.idx) END",
            "OtherMailAddresses": f"json_array({u}.account_name || '@contoso.onmicrosoft.com')::VARCHAR",
            "RiskLevelDetails": "'none'",
            "State": f"CASE {u}.city WHEN 'Seattle' THEN 'WA' WHEN 'New York' THEN 'NY' END",
            "PrivilegedEntraPimRoles": f"CASE WHEN {admin} THEN '[\"Global Administrator\"]' ELSE '[]' END",
            "OnPremObjectId": f"md5('{self.seed}/onprem/' || {u}.object_id)::UUID::VARCHAR",
            "TenantMembershipType": "'Member'",
            "RiskStatus": "'none'",
            "UserAccountControl": f'CASE WHEN {service} THEN \'["NormalAccount","PasswordNeverExpires"]\' ELSE \'["NormalAccount"]\' END',
            "GroupMembership": f"json_array('Domain Users', {u}.department)::VARCHAR",
        }
