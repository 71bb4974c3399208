"""The synthetic tenant's devices and users, drawn from ``random.Random(seed)``."""

from __future__ import annotations

import random
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from airflow_provider_mtp.emulator.tenant_data.estate import (
    AD_DOMAIN,
    CITIES,
    DC_IPS,
    DEVICE_DOMAINS,
    DEVICE_MODELS,
    DOMAIN,
    FIRST_NAMES,
    JOB_TITLES,
    LAST_NAMES,
    NETBIOS_DOMAIN,
    OFFICE_EGRESS_IP,
    OS_DETAILS,
    RISK_SCORES,
    SERVERS,
    SOC_ANALYSTS,
    SPECIAL_ACCOUNTS,
    USER_COUNT,
    WORKSTATION_GROUPS,
)

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, kw_only=True)
class Device:
    """One onboarded device; ``device_name`` is what hunting tables show in ``DeviceName``."""

    device_id: str
    device_name: str
    dns_name: str = ""
    os_platform: str = "Windows11"
    os_version: str = ""
    os_build: int | None = None
    client_version: str = ""
    device_type: str = "Workstation"
    role: str = ""
    ip: str = ""
    public_ip: str = OFFICE_EGRESS_IP
    mac: str = ""
    aad_device_id: str = ""
    rbac_group: str = ""
    rbac_group_id: int = 0
    risk_score: str = "none"
    exposure_level: str = "Low"
    vendor: str = ""
    model: str = ""
    first_seen: datetime = _EPOCH
    primary_user: str = ""  # account name


@dataclass(frozen=True, kw_only=True)
class User:
    """One directory account; ``account_name`` is the SAM name hunting tables show."""

    account_name: str
    account_domain: str
    upn: str
    sid: str
    object_id: str
    display_name: str
    given_name: str = ""
    surname: str = ""
    department: str = ""
    job_title: str = ""
    city: str = ""
    country: str = ""
    kind: str = "user"  # "user", "analyst", "admin", "service"


def _guid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def make_users(rng: random.Random) -> list[User]:
    """80 accounts: SOC analysts first, then employees, then built-in and service accounts."""
    domain_sid = "S-1-5-21-" + "-".join(str(rng.randrange(10**9, 4 * 10**9)) for _ in range(3))
    names = [(first, last) for first in FIRST_NAMES for last in LAST_NAMES]
    rng.shuffle(names)
    people = USER_COUNT - len(SPECIAL_ACCOUNTS)
    departments = [group[2] for group in WORKSTATION_GROUPS]
    users: list[User] = []
    taken: set[str] = set()
    for index, (first, last) in enumerate(names[:people]):
        department = "Security Operations" if index < SOC_ANALYSTS else departments[index % len(departments)]
        account = _unique(f"{first[0]}{last}".lower(), taken)
        city, country = rng.choice(CITIES)
        users.append(
            User(
                account_name=account,
                account_domain=NETBIOS_DOMAIN,
                upn=f"{first}.{last}@{DOMAIN}".lower(),
                sid=f"{domain_sid}-{1100 + index}",
                object_id=_guid(rng),
                display_name=f"{first} {last}",
                given_name=first,
                surname=last,
                department=department,
                job_title=rng.choice(JOB_TITLES[department]),
                city=city,
                country=country,
                kind="analyst" if index < SOC_ANALYSTS else "user",
            )
        )
    for account, display, department, title, rid in SPECIAL_ACCOUNTS:
        users.append(
            User(
                account_name=account,
                account_domain=NETBIOS_DOMAIN,
                upn=f"{account}@{DOMAIN}",
                sid=f"{domain_sid}-{rid}",
                object_id=_guid(rng),
                display_name=display,
                department=department,
                job_title=title,
                city="Seattle",
                country="US",
                kind="admin" if rid == 500 else "service",
            )
        )
    return users


def _unique(name: str, taken: set[str]) -> str:
    candidate, suffix = name, 2
    while candidate in taken:
        candidate, suffix = f"{name}{suffix}", suffix + 1
    taken.add(candidate)
    return candidate


def dns_domain(name: str) -> str:
    """The DNS domain of a device, by its name prefix."""
    return next(
        (domain for prefix, domain in DEVICE_DOMAINS.items() if name.startswith(prefix + "-")), AD_DOMAIN
    )


def make_devices(rng: random.Random, users: Sequence[User], *, now: datetime) -> list[Device]:
    """50 devices: department workstations (each with a primary user), then servers."""
    by_department: dict[str, list[User]] = {}
    for user in users:
        if user.kind == "user":
            by_department.setdefault(user.department, []).append(user)
    it_staff = by_department.get("IT", [u for u in users if u.kind == "user"])
    devices: list[Device] = []
    for subnet, (prefix, count, department) in enumerate(WORKSTATION_GROUPS, start=1):
        owners = by_department.get(department) or it_staff
        for number in range(1, count + 1):
            platform = "Windows11" if rng.random() < 0.7 else "Windows10"
            vendor, model = rng.choice(DEVICE_MODELS)
            devices.append(
                _device(
                    rng,
                    name=f"{prefix}-{number:02d}",
                    platform=platform,
                    ip=f"10.1.{subnet}.{rng.randrange(20, 250)}",
                    kind="Workstation",
                    role="",
                    group=f"{department} workstations",
                    group_id=subnet,
                    vendor=vendor,
                    model=model,
                    owner=rng.choice(owners).account_name,
                    now=now,
                )
            )
    for number, (name, platform, role) in enumerate(SERVERS):
        ip = DC_IPS[number] if number < len(DC_IPS) else f"10.0.0.{20 + number}"
        tier0 = role == "DomainController"
        devices.append(
            _device(
                rng,
                name=name,
                platform=platform,
                ip=ip,
                kind="Server",
                role=role,
                group="Tier 0 servers" if tier0 else "Servers",
                group_id=20 if tier0 else 21,
                vendor="VMware, Inc.",
                model="VMware7,1",
                owner=rng.choice(it_staff).account_name,
                now=now,
            )
        )
    return devices


def _device(
    rng: random.Random,
    *,
    name: str,
    platform: str,
    ip: str,
    kind: str,
    role: str,
    group: str,
    group_id: int,
    vendor: str,
    model: str,
    owner: str,
    now: datetime,
) -> Device:
    version, build, client = OS_DETAILS[platform]
    return Device(
        device_id=f"{rng.getrandbits(160):040x}",
        device_name=name,
        dns_name=f"{name}.{dns_domain(name)}",
        os_platform=platform,
        os_version=version,
        os_build=build,
        client_version=client,
        device_type=kind,
        role=role,
        ip=ip,
        mac="00-15-5D-" + "-".join(f"{rng.randrange(256):02X}" for _ in range(3)),
        aad_device_id="" if platform == "Linux" else _guid(rng),
        rbac_group=group,
        rbac_group_id=group_id,
        risk_score=rng.choice(RISK_SCORES),
        exposure_level=rng.choice(("Low", "Medium", "High")),
        vendor=vendor,
        model=model,
        first_seen=(now - timedelta(days=rng.randrange(90, 900), seconds=rng.randrange(86_400))).replace(
            microsecond=rng.randrange(1_000_000)
        ),
        primary_user=owner,
    )
