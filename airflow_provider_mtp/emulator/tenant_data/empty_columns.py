"""Value tables of the synthetic tenant: the documented columns it leaves empty on purpose, and why.

Every other documented column has values in the default tenant (seed 7, 30 days, 1,000 events a
day); ``tests/integration/test_emulator_fill_rates.py`` checks that the two lists together are
exactly the documented columns, and :mod:`airflow_provider_mtp.emulator.fill_rates` prints them.
"""

from __future__ import annotations

_APP_GUARD = "Application Guard containers (a retired Edge/Office feature); no process here runs in one"
_SENTINEL = "a Log Analytics (Microsoft Sentinel) column: empty in Defender advanced hunting"
_CLOUD_ALERT = "for Defender for Cloud alerts on cloud resources; the alert templates are endpoint, identity, mail and cloud-app alerts"
_OAUTH = "for activity of OAuth apps; the synthetic cloud activity is users' own"

#: table -> column -> why the synthetic tenant leaves it empty.
EMPTY_COLUMNS: dict[str, dict[str, str]] = {
    "DeviceProcessEvents": {"AppGuardContainerId": _APP_GUARD},
    "DeviceNetworkEvents": {"AppGuardContainerId": _APP_GUARD},
    "DeviceLogonEvents": {
        "InitiatingProcessAccountUpn": "logons are initiated by SYSTEM processes (lsass, winlogon, services), which have no UPN",
        "InitiatingProcessAccountObjectId": "logons are initiated by SYSTEM processes, which have no Entra ID object",
        "AppGuardContainerId": _APP_GUARD,
        "InitiatingProcessRemoteSessionDeviceName": "logon processes run in session 0, never in a remote session",
        "InitiatingProcessRemoteSessionIP": "logon processes run in session 0, never in a remote session",
    },
    "DeviceFileEvents": {"AppGuardContainerId": _APP_GUARD},
    "DeviceEvents": {"AppGuardContainerId": _APP_GUARD},
    "DeviceRegistryEvents": {"AppGuardContainerId": _APP_GUARD},
    "DeviceImageLoadEvents": {"AppGuardContainerId": _APP_GUARD},
    "DeviceInfo": {
        "AdditionalFields": "the service adds details here only for some device kinds (network and IoT devices); the synthetic devices are managed endpoints and servers",
        "DeviceSubtype": "set for network and IoT devices; there are none",
        "MergedDeviceIds": "no device records were merged",
        "MergedToDeviceId": "no device records were merged",
        "ExclusionReason": "no device is excluded (IsExcluded is false everywhere)",
        "HostDeviceId": "set for devices hosted on another device (e.g. WSL); there are none",
        "MitigationStatus": "no device is contained or isolated",
        "Site": "set for devices assigned to a site in device inventory; there are none",
        "DiscoverySources": "lists how device discovery found a device; every synthetic device is onboarded, none discovered",
        "DlpInfo": "Endpoint DLP is not configured in the synthetic tenant",
    },
    "DeviceNetworkInfo": {
        "TunnelType": "no device has a VPN or other tunnel adapter",
        "IPv6Dhcp": "the synthetic network is IPv4 only",
    },
    "EmailEvents": {
        "SenderIPv6": "the synthetic senders connect over IPv4",
        "AdditionalFields": "the service fills it for a few delivery paths only; the synthetic mail carries none",
        "OriginalThreatTypes": "filled when a verdict was overridden (admin or user submission); none was",
        "OriginalDetectionMethods": "filled when a verdict was overridden; none was",
        "OriginalConfidenceLevel": "filled when a verdict was overridden; none was",
        "ForwardingInformation": "no message is auto-forwarded",
        "Context": "preview column with no documented values",
        "ThreatClassification": "preview column with no documented values",
        "Topics": "preview column (Copilot topics) with no documented values",
    },
    "EmailUrlInfo": {
        "UrlChainId": "only for URLs reached through redirects; the synthetic mails link directly",
        "UrlChainPosition": "only for URLs reached through redirects; the synthetic mails link directly",
    },
    "UrlClickEvents": {
        "SourceId": _SENTINEL,
        "TenantId": _SENTINEL,
        "Type": _SENTINEL,
        "SourceSystem": _SENTINEL,
    },
    "IdentityLogonEvents": {
        "TargetAccountDisplayName": "set for logons on behalf of another account (delegation); there are none",
    },
    "IdentityInfo": {
        "ChangeSource": "no documented values",
        "DeletedDateTime": "no account is deleted",
        "TenantId": _SENTINEL,
        "SourceSystem": _SENTINEL,
    },
    "IdentityDirectoryEvents": {
        "Location": "on-premises directory changes carry no geolocation",
        "ISP": "on-premises directory changes carry no ISP",
    },
    "CloudAppEvents": {
        "AdditionalFields": "the service adds details only for some apps' events; the synthetic Office 365 events carry none",
        "OAuthAppId": _OAUTH,
    },
    "AlertEvidence": {
        "Application": "for cloud-app evidence; the alert templates have none",
        "ApplicationId": "for cloud-app evidence; the alert templates have none",
        "OAuthApplicationId": _OAUTH,
        "CloudResource": _CLOUD_ALERT,
        "CloudPlatform": _CLOUD_ALERT,
        "ResourceType": _CLOUD_ALERT,
        "ResourceID": _CLOUD_ALERT,
        "SubscriptionId": _CLOUD_ALERT,
    },
}
