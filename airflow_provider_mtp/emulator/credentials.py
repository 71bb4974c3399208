"""The apps that sign in without a client secret, and their credential files.

``provision_credentials`` registers, beside :func:`~airflow_provider_mtp.emulator.identity.default_apps`,
the certificate app, the public client and its user, the workload identity app and two managed
identities, and writes what they sign in with into the run's state directory.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from airflow_provider_mtp.emulator.audiences import Api
from airflow_provider_mtp.emulator.identity import (
    GRAPH_ALL_ROLES,
    GRAPH_DELEGATED,
    MTP_ALL_ROLES,
    MTP_DELEGATED,
    TENANT_DOMAIN,
    WORKLOAD_SUBJECT,
    App,
    Directory,
    DirectoryUser,
    RegisteredCertificate,
    derived_id,
    derived_secret,
)


def provision_credentials(directory: Directory, state_dir: Path, *, seed: int) -> None:
    """Register the apps that sign in without a client secret and write their credential files.

    Adds the ``cert`` app (a self-signed certificate, PEM with key and certificate in
    ``state_dir``), the ``user`` public client with its user, the ``workload`` app with a federated
    token file, and two managed identities (system- and user-assigned).

    :param directory: the run's directory, changed in place.
    :param state_dir: where the credential files go (the run's state directory).
    :param seed: the tenant seed; ids and passwords are stable per seed.
    """
    state_dir.mkdir(parents=True, exist_ok=True)
    full_roles = {Api.GRAPH: GRAPH_ALL_ROLES, Api.MTP: MTP_ALL_ROLES}
    cert_app_id = derived_id(seed, "cert")
    certificate, pem = _self_signed_certificate(cert_app_id)
    cert_path = state_dir / "cert-app.pem"
    cert_path.write_bytes(pem)
    cert_path.chmod(0o600)
    user = DirectoryUser(
        username=f"analyst@{TENANT_DOMAIN}",
        password=derived_secret(seed, "user-password"),
        object_id=derived_id(seed, "user-analyst"),
        display_name="Emulated Analyst",
    )
    directory.users[user.username.lower()] = user
    token_path = state_dir / "federated-token"
    token_path.write_text(directory.federated_token(WORKLOAD_SUBJECT))
    token_path.chmod(0o600)
    apps = [
        App(
            name="cert",
            client_id=cert_app_id,
            client_secret=None,
            roles=full_roles,
            certificate=certificate,
            ready_extra={
                "certificate_path": str(cert_path),
                "certificate_thumbprint": certificate.sha1_thumbprint,
            },
            description="every permission; signs in with the certificate in certificate_path (key and certificate)",
        ),
        App(
            name="user",
            client_id=derived_id(seed, "user"),
            client_secret=None,
            roles={},
            public_client=True,
            delegated={Api.GRAPH: GRAPH_DELEGATED, Api.MTP: MTP_DELEGATED},
            ready_extra={"username": user.username, "password": user.password},
            description="public client; the user signs in with the password grant (delegated scopes)",
        ),
        App(
            name="workload",
            client_id=derived_id(seed, "workload"),
            client_secret=None,
            roles=full_roles,
            federated_subject=WORKLOAD_SUBJECT,
            ready_extra={"federated_token_file": str(token_path)},
            description="every permission; trusts the federated token in federated_token_file (workload identity)",
        ),
    ]
    directory.apps.update({app.client_id: app for app in apps})
    identities = [
        App(
            name="managed_identity_system",
            client_id=derived_id(seed, "mi-system"),
            client_secret=None,
            roles=full_roles,
        ),
        App(
            name="managed_identity_user",
            client_id=derived_id(seed, "mi-user"),
            client_secret=None,
            roles=full_roles,
        ),
    ]
    directory.managed_identities.update({identity.client_id: identity for identity in identities})
    directory.system_identity_id = identities[0].client_id
    directory.identity_header = derived_secret(seed, "identity-header")


def _self_signed_certificate(client_id: str) -> tuple[RegisteredCertificate, bytes]:
    """A fresh key and certificate; the PEM holds both, as users often keep them."""
    key = rsa.generate_private_key(65537, 2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"emulator app {client_id}")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=365))
        .sign(key, hashes.SHA256())
    )
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ) + cert.public_bytes(serialization.Encoding.PEM)
    registered = RegisteredCertificate(
        public_key=key.public_key(),
        # SHA-1 only because the portal shows (and x5t carries) that thumbprint.
        sha1_thumbprint=cert.fingerprint(hashes.SHA1()).hex().upper(),
        sha256_thumbprint=cert.fingerprint(hashes.SHA256()).hex(),
    )
    return registered, pem
