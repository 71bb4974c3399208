"""Whether a host is a loopback address: where plain ``http`` is allowed (the emulator, a local proxy)."""

from __future__ import annotations

import ipaddress
from typing import Final

__all__ = ["LOOPBACK_NAMES", "is_loopback"]

#: Names that mean this machine: ``localhost`` (RFC 6761) and the aliases distributions put in
#: ``/etc/hosts`` for ``127.0.0.1`` and ``::1``.
LOOPBACK_NAMES: Final = frozenset({"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"})


def is_loopback(host: str | None) -> bool:
    """True for a loopback name or address: those names, ``127.0.0.0/8``, ``::1`` (bracketed or not).

    An IPv4-mapped IPv6 address of a loopback address (``::ffff:127.0.0.1``) counts too.
    Case does not matter. Any other name is not loopback, even if it resolves to one: nothing is
    resolved here.

    :param host: a host name or an IP address, e.g. ``urlsplit(url).hostname``; ``None`` or empty is not.
    """
    if not host:
        return False
    name = host.strip().lower()
    if name.startswith("[") and name.endswith("]"):
        name = name[1:-1]
    if name in LOOPBACK_NAMES:
        return True
    try:
        address = ipaddress.ip_address(name)
    except ValueError:
        return False
    mapped = getattr(address, "ipv4_mapped", None)
    return address.is_loopback or (mapped is not None and mapped.is_loopback)
