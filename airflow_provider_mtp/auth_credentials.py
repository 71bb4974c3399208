"""msal's ``client_credential`` for each confidential-client auth type.

A client secret as it is; a certificate (PEM or PKCS#12, from the connection or a file) as its
decrypted RSA key with the certificate or thumbprint; a workload identity as a callable that reads
the federated token file on every token request. Every key and token read here goes through
Airflow's ``mask_secret``; a bad credential raises an error naming the connection field to fix.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs12

from airflow_provider_mtp.auth_errors import _config_error
from airflow_provider_mtp.redact import mask_secrets
from airflow_provider_mtp.settings import ConnectionSettings

_PEM_PRIVATE_KEY = re.compile(
    rb"-----BEGIN ((?:RSA |EC |ENCRYPTED )?PRIVATE KEY)-----.+?-----END \1-----", re.DOTALL
)


# Credentials.
def client_credential(settings: ConnectionSettings) -> str | dict[str, Any]:
    """msal's ``client_credential`` for a confidential client of this auth type."""
    if settings.auth_type == "certificate":
        return certificate_credential(settings)
    if settings.auth_type == "workload_identity":
        return {"client_assertion": FederatedTokenFile(settings=settings)}
    return settings.client_secret or ""


class FederatedTokenFile:
    """msal's ``client_assertion`` callable: the federated token, read fresh on every token request.

    The kubelet rotates the projected token in place, so it is never kept.

    :param settings: the connection; names the file and the connection in errors.
    """

    def __init__(self, *, settings: ConnectionSettings) -> None:
        self._settings = settings

    def __call__(self) -> str:
        path = self._settings.federated_token_file or ""
        try:
            token = Path(path).read_text().strip()
        except OSError as exc:
            raise _config_error(
                self._settings,
                "federated_token_file",
                f"{path!r} cannot be read ({exc.strerror})",
                "point it at the projected service account token (AZURE_FEDERATED_TOKEN_FILE on AKS)",
            ) from None
        if not token:
            raise _config_error(
                self._settings, "federated_token_file", f"{path!r} is empty", "check the token projection"
            )
        # It is a bearer credential for Entra ID, like the tokens it buys.
        mask_secrets([token])
        return token


@dataclass(frozen=True)
class _KeyAndCertificate:
    key: rsa.RSAPrivateKey
    certificate: x509.Certificate | None


def certificate_credential(settings: ConnectionSettings) -> dict[str, Any]:
    """msal's certificate ``client_credential``: the decrypted key and, when present, the certificate.

    With the certificate, msal computes the SHA-256 thumbprint itself, signs PS256 and sends
    ``x5c`` (msal 1.35+, ``ClientApplication._build_client``). Without it the SHA-1
    ``certificate_thumbprint`` is used (RS256, ``x5t``).
    """
    loaded = _load_key_and_certificate(settings)
    credential: dict[str, Any] = {"private_key": loaded.key}
    if loaded.certificate is None:
        if not settings.certificate_thumbprint:
            raise _config_error(
                settings,
                _certificate_field(settings),
                "holds a private key but no certificate, and certificate_thumbprint is empty",
                "append the certificate (its BEGIN CERTIFICATE block) or set certificate_thumbprint",
            )
        credential["thumbprint"] = settings.certificate_thumbprint
        return credential
    sha1 = loaded.certificate.fingerprint(hashes.SHA1()).hex().upper()
    if settings.certificate_thumbprint and settings.certificate_thumbprint != sha1:
        raise _config_error(
            settings,
            "certificate_thumbprint",
            f"is {settings.certificate_thumbprint}, but the certificate's SHA-1 thumbprint is {sha1}",
            "correct it or leave it empty to use the certificate's",
        )
    credential["public_certificate"] = loaded.certificate.public_bytes(serialization.Encoding.PEM).decode()
    return credential


def _certificate_field(settings: ConnectionSettings) -> str:
    return "certificate" if settings.certificate else "certificate_path"


def _load_key_and_certificate(settings: ConnectionSettings) -> _KeyAndCertificate:
    name = _certificate_field(settings)
    if settings.certificate:
        data = settings.certificate.encode()
    else:
        path = settings.certificate_path or ""
        try:
            data = Path(path).read_bytes()
        except OSError as exc:
            raise _config_error(
                settings,
                name,
                f"{path!r} cannot be read ({exc.strerror})",
                "check the path and its permissions",
            ) from None
    password = settings.certificate_password.encode() if settings.certificate_password else None
    if b"-----BEGIN" not in data:
        return _load_pkcs12(settings, name, data, password)
    return _load_pem(settings, name, data, password)


def _load_pem(
    settings: ConnectionSettings, name: str, data: bytes, password: bytes | None
) -> _KeyAndCertificate:
    match = _PEM_PRIVATE_KEY.search(data)
    if match is None:
        raise _config_error(
            settings,
            name,
            "has no private key (no BEGIN PRIVATE KEY block)",
            "use the PEM with the private key; the certificate alone cannot sign",
        )
    block = match.group(0)
    mask_secrets([block.decode(errors="replace")])
    encrypted = b"ENCRYPTED" in block
    try:
        key = serialization.load_pem_private_key(block, password if encrypted else None)
    except TypeError:
        raise _config_error(
            settings,
            "certificate_password",
            "is empty, but the private key is encrypted",
            "set certificate_password",
        ) from None
    except ValueError:
        if encrypted:
            raise _config_error(
                settings, "certificate_password", "does not decrypt the private key", "set the key's password"
            ) from None
        raise _config_error(
            settings, name, "holds a private key that cannot be parsed", "export it again"
        ) from None
    certificates = []
    if b"BEGIN CERTIFICATE" in data:
        try:
            certificates = x509.load_pem_x509_certificates(data)
        except ValueError:
            raise _config_error(
                settings, name, "holds a certificate that cannot be parsed", "export it again"
            ) from None
    return _pair(settings, name, key, certificates)


def _load_pkcs12(
    settings: ConnectionSettings, name: str, data: bytes, password: bytes | None
) -> _KeyAndCertificate:
    try:
        key, certificate, extra = pkcs12.load_key_and_certificates(data, password)
    except ValueError:
        raise _config_error(
            settings,
            name,
            "is neither PEM nor a PKCS#12 file that certificate_password opens",
            "give a PEM with the private key, or a .pfx with its password in certificate_password",
        ) from None
    if key is None:
        raise _config_error(
            settings, name, "has no private key", "export the certificate with its private key"
        )
    return _pair(settings, name, key, [cert for cert in (certificate, *extra) if cert is not None])


def _pair(
    settings: ConnectionSettings, name: str, key: Any, certificates: Iterable[x509.Certificate]
) -> _KeyAndCertificate:
    """The key with the certificate that holds its public key (a chain may hold others)."""
    if not isinstance(key, rsa.RSAPrivateKey):
        raise _config_error(
            settings, name, "holds a non-RSA key", "Entra ID certificate credentials need an RSA key"
        )
    public = _public_der(key.public_key())
    certificates = list(certificates)
    for certificate in certificates:
        if _public_der(certificate.public_key()) == public:
            return _KeyAndCertificate(key=key, certificate=certificate)
    if certificates:
        raise _config_error(
            settings,
            name,
            "holds a certificate that does not belong to its private key",
            "pair the right key and certificate",
        )
    return _KeyAndCertificate(key=key, certificate=None)


def _public_der(public_key: Any) -> bytes:
    der: bytes = public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return der
