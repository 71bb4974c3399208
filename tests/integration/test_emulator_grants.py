"""The emulator's grants with plain requests and msal: certificate, password, refresh token,
managed identity, workload identity and the v1 endpoint. Failures carry Entra's codes and are
never counted in ``tokens_issued``."""

from __future__ import annotations

import base64
import datetime as dt
import json
import time
import uuid
from pathlib import Path
from typing import Any

import jwt
import msal
import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from airflow_provider_mtp.api.session import ProviderSession
from airflow_provider_mtp.emulator import DefenderEmulator
from tests.integration.conftest import GRAPH, MTP, call

JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


def claims_of(token: str) -> dict[str, Any]:
    return dict(jwt.decode(token, options={"verify_signature": False}))


def post_token(emulator: DefenderEmulator, data: dict[str, str], *, v1: bool = False) -> requests.Response:
    path = "oauth2/token" if v1 else "oauth2/v2.0/token"
    return requests.post(
        f"{emulator.url}/{emulator.tenant_id}/{path}", data=data, verify=emulator.ca_bundle, timeout=30
    )


def entra_error(response: requests.Response) -> tuple[int, str, list[int]]:
    body = response.json()
    return response.status_code, body["error"], body["error_codes"]


def session_for(emulator: DefenderEmulator) -> requests.Session:
    # Session.verify loses to REQUESTS_CA_BUNDLE; the provider's session pins verify= per request.
    return ProviderSession(ca_bundle=emulator.ca_bundle)


def confidential_app(
    emulator: DefenderEmulator, client_id: str, credential: Any
) -> msal.ConfidentialClientApplication:
    return msal.ConfidentialClientApplication(
        client_id,
        client_credential=credential,
        authority=f"{emulator.url}/{emulator.tenant_id}",
        http_client=session_for(emulator),
        instance_discovery=False,
    )


def issued(emulator: DefenderEmulator, client_id: str) -> int:
    return int(emulator.stats()["tokens_issued"].get(client_id, 0))


def key_and_cert_pems(path: str) -> tuple[str, str]:
    text = Path(path).read_text()
    key = text[: text.index("-----BEGIN CERTIFICATE-----")]
    return key, text[len(key) :]


def other_certificate() -> tuple[rsa.RSAPrivateKey, x509.Certificate]:
    key = rsa.generate_private_key(65537, 2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "not registered")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    return key, cert


def assertion(
    emulator: DefenderEmulator, client_id: str, key: Any, headers: dict[str, str], **claims: Any
) -> str:
    now = int(time.time())
    payload = {
        "aud": f"{emulator.url}/{emulator.tenant_id}/oauth2/v2.0/token",
        "iss": client_id,
        "sub": client_id,
        "exp": now + 600,
        "iat": now,
        "jti": str(uuid.uuid4()),
        **claims,
    }
    return jwt.encode(payload, key, algorithm="RS256", headers=headers)


def x5t(cert: x509.Certificate) -> str:
    return base64.urlsafe_b64encode(cert.fingerprint(hashes.SHA1())).rstrip(b"=").decode()


# Ready line.
def test_ready_line_lists_the_new_credentials(defender_emulator: DefenderEmulator) -> None:
    apps = defender_emulator.apps
    cert, user, workload = apps["cert"], apps["user"], apps["workload"]
    assert "client_secret" not in cert
    assert Path(cert["certificate_path"]).read_text().count("-----BEGIN") == 2
    assert len(cert["certificate_thumbprint"]) == 40
    assert set(user) >= {"client_id", "username", "password", "scopes"}
    assert user["scopes"]["graph"] == [
        "SecurityIncident.ReadWrite.All",
        "SecurityAlert.ReadWrite.All",
        "ThreatHunting.Read.All",
    ]
    assert Path(workload["federated_token_file"]).read_text().count(".") == 2
    identity = defender_emulator.info["managed_identity"]
    assert identity["identity_endpoint"] == f"{defender_emulator.url}/msi/token"
    assert identity["identity_header"]
    assert identity["client_id"] != identity["system_client_id"]


# Certificate.
def test_msal_certificate_grant_with_the_registered_certificate(defender_emulator: DefenderEmulator) -> None:
    defender_emulator.reset()
    cert = defender_emulator.apps["cert"]
    key_pem, cert_pem = key_and_cert_pems(cert["certificate_path"])
    # msal's default since 1.35: PS256 with x5t#S256 and x5c.
    modern = confidential_app(
        defender_emulator, cert["client_id"], {"private_key": key_pem, "public_certificate": cert_pem}
    )
    result = modern.acquire_token_for_client(scopes=[f"{GRAPH}/.default"])
    assert "access_token" in result, result
    claims = claims_of(result["access_token"])
    assert (claims["aud"], claims["azp"]) == (GRAPH, cert["client_id"])
    assert "ThreatHunting.Read.All" in claims["roles"]
    # The portal's SHA-1 thumbprint: RS256 with x5t.
    legacy = confidential_app(
        defender_emulator,
        cert["client_id"],
        {"private_key": key_pem, "thumbprint": cert["certificate_thumbprint"]},
    )
    assert "access_token" in legacy.acquire_token_for_client(scopes=[f"{MTP}/.default"])
    assert issued(defender_emulator, cert["client_id"]) == 2


def test_certificate_not_registered_is_700027(defender_emulator: DefenderEmulator) -> None:
    defender_emulator.reset()
    client_id = defender_emulator.apps["cert"]["client_id"]
    key, cert = other_certificate()
    app = confidential_app(
        defender_emulator,
        client_id,
        {
            "private_key": key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            ).decode(),
            "public_certificate": cert.public_bytes(serialization.Encoding.PEM).decode(),
        },
    )
    result = app.acquire_token_for_client(scopes=[f"{GRAPH}/.default"])
    assert result["error"] == "invalid_client"
    assert result["error_codes"] == [700027]
    assert issued(defender_emulator, client_id) == 0


def test_assertion_with_the_registered_thumbprint_but_another_key_is_700027(
    defender_emulator: DefenderEmulator,
) -> None:
    cert = defender_emulator.apps["cert"]
    registered = x509.load_pem_x509_certificate(key_and_cert_pems(cert["certificate_path"])[1].encode())
    forged_key, _ = other_certificate()
    forged = assertion(defender_emulator, cert["client_id"], forged_key, {"x5t": x5t(registered)})
    response = post_token(
        defender_emulator,
        {
            "grant_type": "client_credentials",
            "client_id": cert["client_id"],
            "client_assertion_type": JWT_BEARER,
            "client_assertion": forged,
            "scope": f"{GRAPH}/.default",
        },
    )
    assert entra_error(response) == (401, "invalid_client", [700027])
    assert "signature" in response.json()["error_description"]


@pytest.mark.parametrize(
    ("claims", "code"),
    [
        ({"aud": "https://login.microsoftonline.com/x/oauth2/v2.0/token"}, 700027),
        ({"exp": int(time.time()) - 60}, 700024),
    ],
)
def test_assertion_audience_and_expiry_are_checked(
    defender_emulator: DefenderEmulator, claims: dict[str, Any], code: int
) -> None:
    cert = defender_emulator.apps["cert"]
    key_pem, cert_pem = key_and_cert_pems(cert["certificate_path"])
    key = serialization.load_pem_private_key(key_pem.encode(), None)
    registered = x509.load_pem_x509_certificate(cert_pem.encode())
    signed = assertion(defender_emulator, cert["client_id"], key, {"x5t": x5t(registered)}, **claims)
    response = post_token(
        defender_emulator,
        {
            "grant_type": "client_credentials",
            "client_id": cert["client_id"],
            "client_assertion_type": JWT_BEARER,
            "client_assertion": signed,
            "scope": f"{GRAPH}/.default",
        },
    )
    assert response.json()["error_codes"] == [code]


# Password grant, refresh token, user realm.
def password_form(emulator: DefenderEmulator, requested: str, **overrides: str) -> dict[str, str]:
    user = emulator.apps["user"]
    return {
        "grant_type": "password",
        "client_id": user["client_id"],
        "username": user["username"],
        "password": user["password"],
        "scope": f"{requested} openid profile offline_access",
        "client_info": "1",
        **overrides,
    }


def test_password_grant_reply_lets_msal_cache_an_account(defender_emulator: DefenderEmulator) -> None:
    defender_emulator.reset()
    user = defender_emulator.apps["user"]
    response = post_token(defender_emulator, password_form(defender_emulator, f"{GRAPH}/.default"))
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) >= {"access_token", "refresh_token", "id_token", "client_info", "scope", "expires_in"}
    assert body["scope"].split() == [
        f"{GRAPH}/SecurityIncident.ReadWrite.All",
        f"{GRAPH}/SecurityAlert.ReadWrite.All",
        f"{GRAPH}/ThreatHunting.Read.All",
    ]
    info = json.loads(base64.urlsafe_b64decode(body["client_info"] + "=="))
    assert info["utid"] == defender_emulator.tenant_id
    id_claims = claims_of(body["id_token"])
    assert (id_claims["aud"], id_claims["preferred_username"], id_claims["oid"]) == (
        user["client_id"],
        user["username"],
        info["uid"],
    )
    access = claims_of(body["access_token"])
    assert (
        access["scp"] == "SecurityIncident.ReadWrite.All SecurityAlert.ReadWrite.All ThreatHunting.Read.All"
    )
    assert access["upn"] == user["username"]
    assert access["roles"] == []
    incidents = call(defender_emulator, "GET", "/v1.0/security/incidents?$top=1", bearer=body["access_token"])
    assert incidents.status_code == 200
    mtp = post_token(defender_emulator, password_form(defender_emulator, f"{MTP}/.default")).json()
    assert claims_of(mtp["access_token"])["scp"] == "Incident.ReadWrite AdvancedHunting.Read"
    assert issued(defender_emulator, user["client_id"]) == 2


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"password": "wrong"}, (400, "invalid_grant", [50126])),
        ({"username": "nobody@emulator.onmicrosoft.com"}, (400, "invalid_grant", [50034])),
        ({"scope": f"{GRAPH}/User.Read.All"}, (400, "invalid_grant", [65001])),
        ({"scope": "https://api.securitycenter.microsoft.com/.default"}, (400, "invalid_resource", [500011])),
        ({"client_secret": "x"}, (400, "invalid_request", [700025])),
    ],
)
def test_password_grant_failures(
    defender_emulator: DefenderEmulator, overrides: dict[str, str], expected: tuple[int, str, list[int]]
) -> None:
    defender_emulator.reset()
    form = password_form(defender_emulator, f"{GRAPH}/.default", **overrides)
    assert entra_error(post_token(defender_emulator, form)) == expected
    assert issued(defender_emulator, defender_emulator.apps["user"]["client_id"]) == 0


def test_refresh_token_grant_accepts_named_permissions(defender_emulator: DefenderEmulator) -> None:
    user = defender_emulator.apps["user"]
    first = post_token(defender_emulator, password_form(defender_emulator, f"{GRAPH}/.default")).json()
    refreshed = post_token(
        defender_emulator,
        {
            "grant_type": "refresh_token",
            "client_id": user["client_id"],
            "refresh_token": first["refresh_token"],
            # What msal sends when it refreshes with the granted scopes; short names are Graph's.
            "scope": "SecurityIncident.ReadWrite.All ThreatHunting.Read.All openid profile offline_access",
        },
    )
    assert refreshed.status_code == 200, refreshed.text
    assert claims_of(refreshed.json()["access_token"])["upn"] == user["username"]
    bad = post_token(
        defender_emulator,
        {
            "grant_type": "refresh_token",
            "client_id": user["client_id"],
            "refresh_token": "nope",
            "scope": "openid",
        },
    )
    assert entra_error(bad)[:2] == (400, "invalid_grant")


def test_user_realm_says_managed(defender_emulator: DefenderEmulator) -> None:
    user = defender_emulator.apps["user"]
    reply = requests.get(
        f"{defender_emulator.url}/common/userrealm/{user['username']}?api-version=1.0",
        verify=defender_emulator.ca_bundle,
        timeout=30,
    ).json()
    assert reply["account_type"] == "Managed"


def test_public_client_cannot_use_client_credentials(defender_emulator: DefenderEmulator) -> None:
    response = post_token(
        defender_emulator,
        {
            "grant_type": "client_credentials",
            "client_id": defender_emulator.apps["user"]["client_id"],
            "scope": f"{GRAPH}/.default",
        },
    )
    assert entra_error(response) == (400, "unauthorized_client", [700016])


# Managed identity.
def msi(emulator: DefenderEmulator, header: str | None = None, **params: str) -> requests.Response:
    identity = emulator.info["managed_identity"]
    return requests.get(
        identity["identity_endpoint"],
        params={"api-version": "2019-08-01", **params},
        headers={"X-IDENTITY-HEADER": header if header is not None else identity["identity_header"]},
        verify=emulator.ca_bundle,
        timeout=30,
    )


def test_managed_identity_endpoint_app_service_shape(defender_emulator: DefenderEmulator) -> None:
    defender_emulator.reset()
    identity = defender_emulator.info["managed_identity"]
    system = msi(defender_emulator, resource=GRAPH)
    assert system.status_code == 200
    body = system.json()
    assert isinstance(body["expires_on"], str)
    assert int(body["expires_on"]) > time.time() + 3000
    assert (body["resource"], body["token_type"]) == (GRAPH, "Bearer")
    assert claims_of(body["access_token"])["appid"] == identity["system_client_id"]
    user_assigned = msi(defender_emulator, resource=MTP, client_id=identity["client_id"]).json()
    assert claims_of(user_assigned["access_token"])["appid"] == identity["client_id"]
    counts = defender_emulator.stats()["tokens_issued"]
    assert (counts[identity["system_client_id"]], counts[identity["client_id"]]) == (1, 1)


def test_managed_identity_failures_are_not_counted(defender_emulator: DefenderEmulator) -> None:
    defender_emulator.reset()
    assert msi(defender_emulator, header="wrong", resource=GRAPH).status_code == 401
    assert msi(defender_emulator, resource=GRAPH, client_id=str(uuid.uuid4())).status_code == 400
    bad_resource = msi(defender_emulator, resource="https://api.securitycenter.microsoft.com")
    assert bad_resource.status_code == 400
    assert "AADSTS500011" in bad_resource.json()["message"]
    assert defender_emulator.stats()["tokens_issued"] == {}


def test_msal_managed_identity_client_against_the_emulator(
    defender_emulator: DefenderEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    identity = defender_emulator.info["managed_identity"]
    monkeypatch.setenv("IDENTITY_ENDPOINT", identity["identity_endpoint"])
    monkeypatch.setenv("IDENTITY_HEADER", identity["identity_header"])
    client = msal.ManagedIdentityClient(
        msal.UserAssignedManagedIdentity(client_id=identity["client_id"]),
        http_client=session_for(defender_emulator),
    )
    first = client.acquire_token_for_client(resource=GRAPH)
    assert "access_token" in first, first
    assert client.acquire_token_for_client(resource=GRAPH)["token_source"] == "cache"


# Workload identity.
def test_msal_workload_identity_with_the_federated_token_file(defender_emulator: DefenderEmulator) -> None:
    defender_emulator.reset()
    workload = defender_emulator.apps["workload"]
    path = Path(workload["federated_token_file"])
    app = confidential_app(
        defender_emulator, workload["client_id"], {"client_assertion": lambda: path.read_text()}
    )
    result = app.acquire_token_for_client(scopes=[f"{GRAPH}/.default"])
    assert "access_token" in result, result
    assert claims_of(result["access_token"])["azp"] == workload["client_id"]
    assert issued(defender_emulator, workload["client_id"]) == 1


def test_federated_token_must_be_the_emulators(defender_emulator: DefenderEmulator) -> None:
    workload = defender_emulator.apps["workload"]
    genuine = Path(workload["federated_token_file"]).read_text()
    header, payload, signature = genuine.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    claims["sub"] = "system:serviceaccount:other:intruder"
    forged_payload = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    for token, code in ((f"{header}.{forged_payload}.{signature}", 700027), ("not-a-jwt", 700027)):
        response = post_token(
            defender_emulator,
            {
                "grant_type": "client_credentials",
                "client_id": workload["client_id"],
                "client_assertion_type": JWT_BEARER,
                "client_assertion": token,
                "scope": f"{GRAPH}/.default",
            },
        )
        assert entra_error(response) == (401, "invalid_client", [code])


# v1 endpoint.
def test_v1_endpoint_sends_strings_and_an_absolute_expiry(defender_emulator: DefenderEmulator) -> None:
    response = post_token(
        defender_emulator,
        {
            "grant_type": "client_credentials",
            "client_id": defender_emulator.client_id,
            "client_secret": defender_emulator.client_secret,
            "resource": MTP,
        },
        v1=True,
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert isinstance(body["expires_in"], str)
    assert isinstance(body["expires_on"], str)
    assert int(body["expires_on"]) - int(body["expires_in"]) == pytest.approx(time.time(), abs=5)
    assert body["resource"] == MTP
    claims = claims_of(body["access_token"])
    assert claims["iss"] == f"https://sts.windows.net/{defender_emulator.tenant_id}/"
    assert claims["appid"] == defender_emulator.client_id


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"resource": ""}, (400, "invalid_request", [900144])),
        ({"client_secret": "wrong"}, (401, "invalid_client", [7000215])),
        ({"grant_type": "password"}, (400, "unsupported_grant_type", [70003])),
    ],
)
def test_v1_endpoint_failures(
    defender_emulator: DefenderEmulator, data: dict[str, str], expected: tuple[int, str, list[int]]
) -> None:
    form = {
        "grant_type": "client_credentials",
        "client_id": defender_emulator.client_id,
        "client_secret": defender_emulator.client_secret,
        "resource": GRAPH,
        **data,
    }
    assert entra_error(post_token(defender_emulator, form, v1=True)) == expected


def test_client_secret_basic_is_accepted(defender_emulator: DefenderEmulator) -> None:
    response = requests.post(
        f"{defender_emulator.url}/{defender_emulator.tenant_id}/oauth2/v2.0/token",
        data={
            "grant_type": "client_credentials",
            "client_id": defender_emulator.client_id,
            "scope": f"{GRAPH}/.default",
        },
        auth=(defender_emulator.client_id, defender_emulator.client_secret),
        verify=defender_emulator.ca_bundle,
        timeout=30,
    )
    assert response.status_code == 200, response.text
