"""A throw-away certificate authority and server certificate for one emulator run.

msal accepts only https authorities, so the emulator always serves TLS. The CA lives as long as the
run; clients trust it through the ``ca_bundle`` path in the ready line.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from pathlib import Path

import trustme


@dataclass(frozen=True)
class TlsFiles:
    """Paths of the PEM files one run writes.

    :param ca_bundle: the CA certificate clients verify the server with.
    :param certificate: the server's certificate chain.
    :param private_key: the server's private key.
    """

    ca_bundle: Path
    certificate: Path
    private_key: Path


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def write_tls_files(directory: Path, *, hostnames: list[str]) -> TlsFiles:
    """Create a fresh CA and a server certificate for ``hostnames`` (plus loopback) in ``directory``.

    :param directory: where the PEM files go; created if missing.
    :param hostnames: names and addresses the server answers to.
    """
    directory.mkdir(parents=True, exist_ok=True)
    identities = list(dict.fromkeys([*hostnames, "localhost", "127.0.0.1", "::1"]))
    # 0.0.0.0 is a bind address, not a name a client connects to.
    identities = [
        name for name in identities if not (_is_ip(name) and ipaddress.ip_address(name).is_unspecified)
    ]
    ca = trustme.CA(organization_name="airflow-provider-mtp emulator")
    leaf = ca.issue_cert(*identities, common_name=identities[0])
    files = TlsFiles(
        ca_bundle=directory / "ca.pem",
        certificate=directory / "server.pem",
        private_key=directory / "server-key.pem",
    )
    ca.cert_pem.write_to_path(str(files.ca_bundle))
    leaf.private_key_pem.write_to_path(str(files.private_key))
    with files.certificate.open("wb") as chain:
        for blob in leaf.cert_chain_pems:
            chain.write(blob.bytes())
    files.private_key.chmod(0o600)
    return files
