"""Provider metadata Airflow reads through the ``apache_airflow_provider`` entry point.

The connection form is declared here (``conn-fields`` and ``ui-field-behaviour``), not in hook
methods: since Airflow 3.2 the UI reads it without importing the hook.
"""

from __future__ import annotations

from typing import Any

from airflow_provider_mtp import __version__

_TEXT = {"type": ["string", "null"]}
_SECRET = {"type": ["string", "null"], "format": "password"}


def _field(label: str, description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"label": label, "description": description, "schema": schema}


#: The connection's extras (design.md): names are fixed; the emulator, docs and tests use them.
CONN_FIELDS: dict[str, dict[str, Any]] = {
    "tenant_id": _field(
        "Tenant ID",
        "Entra ID directory (tenant) id or domain, e.g. 9a1c3e55-0d3b-4c5e-9f51-2d7c8b6a4e10 or contoso.onmicrosoft.com.",
        _TEXT,
    ),
    "auth_type": _field(
        "Authentication",
        "client_secret (default) or certificate: application context, recommended. user_password: delegated "
        "permissions on a public-client app. managed_identity / workload_identity: Airflow on Azure.",
        {
            "type": "string",
            "enum": [
                "client_secret",
                "certificate",
                "user_password",
                "managed_identity",
                "workload_identity",
            ],
            "default": "client_secret",
        },
    ),
    "api": _field(
        "Back end",
        "graph (default): the Microsoft Graph security API. legacy: the MTP API at api.security.microsoft.com "
        "(its hunting endpoint stops returning data on 2027-02-01).",
        {"type": "string", "enum": ["graph", "legacy"], "default": "graph"},
    ),
    "cloud": _field(
        "Cloud",
        "global (default), gcc, gcc_high, dod or china: decides every login host, API host and scope.",
        {"type": "string", "enum": ["global", "gcc", "gcc_high", "dod", "china"], "default": "global"},
    ),
    "region": _field(
        "Legacy region",
        "Legacy MTP API only: us, eu, uk or au for a regional host; empty for the global host.",
        _TEXT,
    ),
    "certificate": _field(
        "Certificate (PEM)", "Private key and certificate, PEM text (certificate auth).", _SECRET
    ),
    "certificate_path": _field(
        "Certificate file", "Path of a PEM (key and certificate) or PFX file on every Airflow host.", _TEXT
    ),
    "certificate_thumbprint": _field(
        "Certificate thumbprint",
        "SHA-1 thumbprint (hex) as Entra shows it; computed from the certificate if empty.",
        _TEXT,
    ),
    "certificate_password": _field(
        "Certificate password", "Password of an encrypted key or PFX file.", _SECRET
    ),
    "username": _field(
        "User name", "User principal name for user_password, e.g. analyst@contoso.com.", _TEXT
    ),
    "user_password": _field("User password", "Password of that user (user_password only).", _SECRET),
    "managed_identity_client_id": _field(
        "Managed identity client ID",
        "Client id of a user-assigned identity; empty for the system-assigned one.",
        _TEXT,
    ),
    "federated_token_file": _field(
        "Federated token file",
        "Workload identity token file; defaults to $AZURE_FEDERATED_TOKEN_FILE.",
        _TEXT,
    ),
    "ca_bundle": _field(
        "CA bundle",
        "PEM file that verifies the login and API hosts (a TLS-inspecting proxy, the emulator).",
        _TEXT,
    ),
    "proxy": _field("Proxy", "Proxy URL for token and API calls, e.g. http://proxy.corp:3128.", _TEXT),
    "timeout": _field(
        "Timeout (s)",
        "Read timeout of each call in seconds (connect: at most 10 s). Default 200.",
        {"type": ["number", "null"], "minimum": 1},
    ),
    "api_url": _field(
        "API URL",
        "Origin replacing the cloud's API host (an emulator or a gateway), e.g. https://127.0.0.1:8443.",
        _TEXT,
    ),
    "login_url": _field(
        "Login URL", "Origin replacing the cloud's login host, e.g. https://127.0.0.1:8443.", _TEXT
    ),
}


def get_provider_info() -> dict[str, Any]:
    """What ``airflow providers get airflow-provider-mtp`` shows and the connection form uses."""
    return {
        "package-name": "airflow-provider-mtp",
        "name": "Microsoft Defender XDR (MTP)",
        "description": "Advanced hunting, incidents and triage for Microsoft Defender XDR "
        "(Microsoft Threat Protection), on the Graph security API or the legacy MTP API.",
        "versions": [__version__],
        "connection-types": [
            {
                "connection-type": "mtp",
                "hook-class-name": "airflow_provider_mtp.hooks.mtp.MTPHook",
                "hook-name": "Microsoft Defender XDR",
                "ui-field-behaviour": {
                    "hidden-fields": ["host", "schema", "port"],
                    "relabeling": {"login": "Client ID", "password": "Client secret"},
                    "placeholders": {
                        "login": "00000000-0000-0000-0000-000000000000 (application id)",
                        "password": "the client secret's value, not its id",
                    },
                },
                "conn-fields": CONN_FIELDS,
            }
        ],
        "operators": [
            {
                "integration-name": "Microsoft Defender XDR",
                "python-modules": [
                    "airflow_provider_mtp.operators.hunting",
                    "airflow_provider_mtp.operators.incidents",
                    "airflow_provider_mtp.operators.alerts",
                ],
            }
        ],
        "sensors": [
            {
                "integration-name": "Microsoft Defender XDR",
                "python-modules": [
                    "airflow_provider_mtp.sensors.incidents",
                    "airflow_provider_mtp.sensors.alerts",
                ],
            }
        ],
        "triggers": [
            {
                "integration-name": "Microsoft Defender XDR",
                "python-modules": [
                    "airflow_provider_mtp.triggers.incidents",
                    "airflow_provider_mtp.triggers.alerts",
                ],
            }
        ],
        "hooks": [
            {
                "integration-name": "Microsoft Defender XDR",
                "python-modules": ["airflow_provider_mtp.hooks.mtp", "airflow_provider_mtp.hooks.mtp_async"],
            }
        ],
        "extra-links": [
            "airflow_provider_mtp.links.DefenderIncidentLink",
            "airflow_provider_mtp.links.DefenderAlertLink",
            "airflow_provider_mtp.links.DefenderHuntingLink",
        ],
        "integrations": [
            {
                "integration-name": "Microsoft Defender XDR",
                "external-doc-url": "https://learn.microsoft.com/defender-xdr/api-overview",
                "tags": ["security"],
            }
        ],
    }
