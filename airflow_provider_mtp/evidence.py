"""What alerts' evidence names: devices, users, files, IP addresses and URLs, for enrichment hunts.

An alert (Graph ``alerts_v2`` shape, on both back ends: the legacy API's ``devices[]`` and
``entities[]`` arrive mapped to the same typed list) carries ``evidence[]``, each item typed by
``@odata.type`` (``#microsoft.graph.security.deviceEvidence``, ``fileEvidence``, ...; defender-api.md
section 3.5). :func:`evidence_of` reads the items of one alert, of an incident's alerts, or of a
list of either, and returns one :class:`Evidence`::

    from airflow_provider_mtp.evidence import evidence_of

    found = evidence_of(alert)
    found.device_names   # ["ws-fin-042"]: what DeviceName starts with in the hunting tables
    found.to_json()      # {"devices": [...], "users": [...], "files": [...], "ips": [...], ...}

Where each thing comes from:

* devices: ``deviceEvidence`` (and the ``host`` of a ``hostLogonSessionEvidence``); the device id
  that file, process and registry evidence name (``mdeDeviceId``) adds or completes a device.
* users: the ``userAccount`` of user, process and mailbox evidence (and the ``account`` of a
  ``hostLogonSessionEvidence``). Users merely logged on to a device are not listed.
* files: ``fileEvidence.fileDetails`` and a process's ``imageFile`` (not its parent's image).
* IP addresses: ``ipEvidence``, an analysed message's ``senderIp``, both ends of a
  ``networkConnectionEvidence`` and a ``dnsEvidence``'s host address. A device's own addresses stay
  on the device (``last_ip_address``).
* URLs: ``urlEvidence``.

Things are listed once, in the order first seen: a device by its Defender id, Entra id or DNS name
(two records that share one and disagree on none are one device, their values merged), a user by
SID, Entra id, UPN or domain and account name, a file by hash (or path and name without hashes),
an address in its canonical text. Kinds this module does not read are named in
:attr:`Evidence.other_kinds`.

Pure and defensive: no I/O, no client, no Airflow. Input is what a service sent, so nothing is
assumed: a missing or non-list ``evidence``, items that are not objects, values that are not
strings (they are skipped) never raise.
"""

from __future__ import annotations

import contextlib
import ipaddress
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any

__all__ = ["Device", "Evidence", "File", "User", "evidence_of"]


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def _text(value: Any) -> str | None:
    """A non-blank string, stripped; anything else (numbers, objects, blanks) is no value."""
    if isinstance(value, str):
        stripped = value.strip()
        return stripped or None
    return None


def _at(item: Any, *path: str) -> Any:
    """``item[path[0]][path[1]]...``, or ``None`` where a step is not an object."""
    for step in path:
        if not isinstance(item, Mapping):
            return None
        item = item.get(step)
    return item


class _Record:
    """A device, user or file: string fields, some of which identify it."""

    #: The fields that tell two records apart (compared case-insensitively).
    identity: tuple[str, ...] = ()
    #: Fields that together identify a record too (a host name, a domain and account name, a path
    #: and file name): weaker, so :meth:`agrees_with` decides whether a record sharing them is the same.
    fallback_identity: tuple[str, ...] = ()

    def keys(self) -> set[tuple[str, str]]:
        """What identifies this record: (field, casefolded value) pairs."""
        found = {(name, value.casefold()) for name in self.identity if (value := getattr(self, name))}
        values = tuple(str(getattr(self, name) or "").casefold() for name in self.fallback_identity)
        if any(values):
            found.add(("+".join(self.fallback_identity), "\x00".join(values)))
        return found

    def agrees_with(self, other: _Record) -> bool:
        """No identifying field holds two different values."""
        for name in self.identity:
            mine, theirs = getattr(self, name), getattr(other, name)
            if mine and theirs and mine.casefold() != theirs.casefold():
                return False
        return True

    def to_json(self) -> dict[str, str | None]:
        """The fields under their Graph names (``mde_device_id`` -> ``mdeDeviceId``)."""
        return {_camel(item.name): getattr(self, item.name) for item in fields(self)}  # type: ignore[arg-type]

    @classmethod
    def read(cls, source: Any) -> Any:
        """A record from a mapping with the Graph names; ``None`` when it holds none of them."""
        values = {item.name: _text(_at(source, _camel(item.name))) for item in fields(cls)}  # type: ignore[arg-type]
        return cls(**values) if any(values.values()) else None


@dataclass(frozen=True)
class Device(_Record):
    """A device the evidence names.

    :param mde_device_id: Defender for Endpoint's device id (``DeviceId`` in the hunting tables).
    :param azure_ad_device_id: the Entra ID device id.
    :param device_dns_name: the fully qualified name (without an absolute name's trailing dot).
    :param host_name: the host name; from the DNS name's first label when the evidence has none.
    :param last_ip_address: the device's last internal address.
    :param last_external_ip_address: the device's last public address.
    """

    mde_device_id: str | None = None
    azure_ad_device_id: str | None = None
    device_dns_name: str | None = None
    host_name: str | None = None
    last_ip_address: str | None = None
    last_external_ip_address: str | None = None

    identity = ("mde_device_id", "azure_ad_device_id", "device_dns_name")
    fallback_identity = ("host_name",)

    def __post_init__(self) -> None:
        # An absolute name's trailing dot ("pc1.contoso.com.") would make the same device twice.
        dns_name = (self.device_dns_name or "").rstrip(".") or None
        object.__setattr__(self, "device_dns_name", dns_name)
        if self.host_name is None and dns_name:
            object.__setattr__(self, "host_name", dns_name.split(".", 1)[0] or None)


@dataclass(frozen=True)
class User(_Record):
    """A user account the evidence names.

    :param account_name: the account (``AccountName`` in the hunting tables).
    :param domain_name: the account's domain.
    :param user_principal_name: the UPN.
    :param user_sid: the on-premises SID.
    :param azure_ad_user_id: the Entra ID object id.
    """

    account_name: str | None = None
    domain_name: str | None = None
    user_principal_name: str | None = None
    user_sid: str | None = None
    azure_ad_user_id: str | None = None

    identity = ("user_sid", "azure_ad_user_id", "user_principal_name")
    fallback_identity = ("domain_name", "account_name")

    def agrees_with(self, other: _Record) -> bool:
        if not super().agrees_with(other):
            return False
        # The same account name in two domains is two users.
        return all(
            not (getattr(self, name) and getattr(other, name))
            or getattr(self, name).casefold() == getattr(other, name).casefold()
            for name in self.fallback_identity
        )


@dataclass(frozen=True)
class File(_Record):
    """A file the evidence names.

    :param sha1: SHA-1, hex.
    :param sha256: SHA-256, hex.
    :param file_name: the name.
    :param file_path: the folder.
    """

    sha1: str | None = None
    sha256: str | None = None
    file_name: str | None = None
    file_path: str | None = None

    identity = ("sha256", "sha1")
    fallback_identity = ("file_path", "file_name")


@dataclass
class Evidence:
    """Devices, users, files, IP addresses and URLs named by evidence, each once, in order first seen.

    Build it with :func:`evidence_of`. ``to_json()`` gives a JSON-friendly dict (for XCom) and
    :meth:`from_json` reads it back.
    """

    devices: list[Device] = field(default_factory=list)
    users: list[User] = field(default_factory=list)
    files: list[File] = field(default_factory=list)
    ips: list[str] = field(default_factory=list)
    urls: list[str] = field(default_factory=list)
    #: The ``@odata.type`` names (``amazonResourceEvidence``, ...) of the items not read.
    other_kinds: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.devices or self.users or self.files or self.ips or self.urls)

    @property
    def device_names(self) -> list[str]:
        """Each device's host name (where known): what the hunting tables' ``DeviceName`` starts with."""
        return list(dict.fromkeys(device.host_name for device in self.devices if device.host_name))

    def to_json(self) -> dict[str, Any]:
        """``{"devices", "users", "files", "ips", "urls", "otherKinds"}``; records under Graph's names."""
        return {
            "devices": [device.to_json() for device in self.devices],
            "users": [user.to_json() for user in self.users],
            "files": [item.to_json() for item in self.files],
            "ips": list(self.ips),
            "urls": list(self.urls),
            "otherKinds": list(self.other_kinds),
        }

    @classmethod
    def from_json(cls, data: Any) -> Evidence:
        """Read :meth:`to_json`'s dict back (what is not in that shape is left out).

        :param data: the dict, e.g. from XCom.
        """
        found = cls()
        for name, record in (("devices", Device), ("users", User), ("files", File)):
            for item in _listed(_at(data, name)):
                found._add(record.read(item))
        for item in _listed(_at(data, "ips")):
            found._add_ip(item)
        for item in _listed(_at(data, "urls")):
            found._add_text(found.urls, item)
        for item in _listed(_at(data, "otherKinds")):
            found._add_text(found.other_kinds, item)
        return found

    # Building ---------------------------------------------------------------------------------------

    def _add(self, record: _Record | None) -> None:
        if record is None:
            return
        records: list[Any] = (
            self.devices
            if isinstance(record, Device)
            else self.users
            if isinstance(record, User)
            else self.files
        )
        _merge_into(records, record)

    def _add_ip(self, value: Any) -> None:
        text = _text(value)
        if text is None:
            return
        # Not an address: kept as sent (a service's odd value is still worth a look).
        with contextlib.suppress(ValueError):
            text = str(ipaddress.ip_address(text))
        self._add_text(self.ips, text)

    @staticmethod
    def _add_text(values: list[str], value: Any) -> None:
        text = _text(value)
        if text is not None and text not in values:
            values.append(text)

    def _read_item(self, item: Any) -> None:
        if not isinstance(item, Mapping):
            return
        kind = _kind(item)
        reader = _READERS.get(kind.casefold())
        if reader is None:
            self._add_text(self.other_kinds, kind or "(untyped)")
            return
        reader(self, item)


def _listed(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list | tuple) else []


def _merge_into(records: list[Any], record: Any) -> None:
    """Add ``record``, or merge it into the first record that shares a key and agrees with it."""
    keys = record.keys()
    for index, known in enumerate(records):
        if keys & known.keys() and known.agrees_with(record):
            filled = {
                item.name: getattr(record, item.name)
                for item in fields(known)
                if getattr(known, item.name) is None and getattr(record, item.name) is not None
            }
            if filled:
                records[index] = replace(known, **filled)
            return
    if keys:
        records.append(record)


def _kind(item: Mapping[str, Any]) -> str:
    """``fileEvidence`` from ``#microsoft.graph.security.fileEvidence`` (any case, with or without ``#``)."""
    text = item.get("@odata.type")
    return text.strip().lstrip("#").rsplit(".", 1)[-1] if isinstance(text, str) else ""


def _device_id(item: Any) -> Device | None:
    device_id = _text(_at(item, "mdeDeviceId"))
    return Device(mde_device_id=device_id) if device_id else None


def _read_device(found: Evidence, item: Any) -> None:
    found._add(Device.read(item))


def _read_user(found: Evidence, item: Any) -> None:
    found._add(User.read(_at(item, "userAccount")))


def _read_file(found: Evidence, item: Any) -> None:
    found._add(File.read(_at(item, "fileDetails")))
    found._add(_device_id(item))


def _read_process(found: Evidence, item: Any) -> None:
    found._add(File.read(_at(item, "imageFile")))
    found._add(User.read(_at(item, "userAccount")))
    found._add(_device_id(item))


def _read_ip(found: Evidence, item: Any) -> None:
    found._add_ip(_at(item, "ipAddress"))


def _read_url(found: Evidence, item: Any) -> None:
    Evidence._add_text(found.urls, _at(item, "url"))


def _read_registry(found: Evidence, item: Any) -> None:
    found._add(_device_id(item))


def _read_message(found: Evidence, item: Any) -> None:
    found._add_ip(_at(item, "senderIp"))


def _read_connection(found: Evidence, item: Any) -> None:
    found._add_ip(_at(item, "sourceAddress", "ipAddress"))
    found._add_ip(_at(item, "destinationAddress", "ipAddress"))


def _read_dns(found: Evidence, item: Any) -> None:
    found._add_ip(_at(item, "hostIpAddress", "ipAddress"))


def _read_logon_session(found: Evidence, item: Any) -> None:
    found._add(Device.read(_at(item, "host")))
    found._add(User.read(_at(item, "account", "userAccount")))


#: Readers by evidence kind (casefolded); kinds without one are only named in ``other_kinds``.
_READERS: dict[str, Callable[[Evidence, Any], None]] = {
    "deviceevidence": _read_device,
    "userevidence": _read_user,
    "mailboxevidence": _read_user,
    "fileevidence": _read_file,
    "processevidence": _read_process,
    "ipevidence": _read_ip,
    "urlevidence": _read_url,
    "registrykeyevidence": _read_registry,
    "registryvalueevidence": _read_registry,
    "analyzedmessageevidence": _read_message,
    "networkconnectionevidence": _read_connection,
    "dnsevidence": _read_dns,
    "hostlogonsessionevidence": _read_logon_session,
}


def _items(source: Any) -> Iterator[Any]:
    """The evidence items of an alert, of an incident's alerts, an item itself, or a list of those."""
    if isinstance(source, Mapping):
        if "evidence" in source:
            yield from _listed(source.get("evidence"))
        elif "alerts" in source:
            for alert in _listed(source.get("alerts")):
                if isinstance(alert, Mapping):
                    yield from _listed(alert.get("evidence"))
        elif "@odata.type" in source:
            yield source  # one evidence item
    elif isinstance(source, list | tuple):
        for part in source:
            # One level only: a list of alerts or incidents, not arbitrary nesting.
            if isinstance(part, Mapping):
                yield from _items(part)


def evidence_of(*sources: Mapping[str, Any] | Iterable[Mapping[str, Any]]) -> Evidence:
    """The devices, users, files, IP addresses and URLs the evidence of ``sources`` names.

    :param sources: Graph-shape alerts (their ``evidence``), incidents (the evidence of their
        ``alerts``, as ``get_incident(..., include_alerts=True)`` returns them), evidence items, or
        lists of those (an alert's ``evidence`` list itself). Anything else contributes nothing.
    """
    found = Evidence()
    for source in sources:
        for item in _items(source):
            found._read_item(item)
    return found
