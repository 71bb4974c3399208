"""The emulator's deterministic synthetic tenant: devices, users, hunting tables and incidents.

Everything is derived from ``(seed, now, days, events_per_day, incidents)``: two builds with the
same arguments give byte-identical tables and incidents, whatever DuckDB's thread count.

* **Devices and users** (50 and 80) and **incidents** come from ``random.Random(seed)`` in Python;
  they are few.
* **Event rows** are generated inside DuckDB, vectorised: ``range()`` gives a row index ``i`` and
  every pseudo-random choice is ``hash(i, seed, '<table>/<salt>') % n``. DuckDB's ``random()`` is
  not used: its sequence depends on the thread layout. Choices that must agree (a file name with
  its path, hash and parent process) come from one weighted *profile* row, joined by a hash-picked
  slot.
* Timestamps are tz-aware UTC with microseconds, spread over ``[now - days, now)``: day slot ``d``
  holds exactly the rows ``i`` with ``i // per_day == d``, 70 % of them in 07:00-19:00 UTC.
  Rows are inserted ordered by ``(Timestamp, i)``.

Rows per day, with ``N = events_per_day``:

* DeviceProcessEvents, DeviceNetworkEvents, DeviceFileEvents, EmailEvents (:data:`FULL_TABLES`):
  ``N`` each.
* The other event tables: ``round(N * TABLE_FRACTIONS[table])``, i.e. DeviceLogonEvents 0.2,
  EmailUrlInfo 0.2, DeviceEvents 0.1, DeviceRegistryEvents 0.1, DeviceImageLoadEvents 0.1,
  EmailAttachmentInfo 0.1, IdentityLogonEvents 0.1, CloudAppEvents 0.1, UrlClickEvents 0.05,
  IdentityDirectoryEvents 0.02.
* DeviceInfo and DeviceNetworkInfo: one row per device per day; IdentityInfo: one per user per day.
* AlertInfo and AlertEvidence: one row per alert, and per evidence item, of the incidents.

``events_per_day=0`` leaves every table but AlertInfo and AlertEvidence empty (golden tests load
their own rows with :func:`insert_rows`; they pass ``incidents=0`` to get those empty too).

Incidents and their alerts are in the Graph shape (defender-api.md sections 3.2 and 3.5); their
timestamps are strings with 0 to 7 fractional digits, as the service sends them, never later than
``now``. AlertInfo and AlertEvidence hold exactly the incidents' alerts and evidence, with the
tenant's device ids, names and accounts, so hunting joins with the Device tables work.

This module holds :func:`build_tenant` and re-exports the names other code imports from here. The
value tables (names, domains, command lines, profiles, alert templates, scenarios) are data in
:mod:`~airflow_provider_mtp.emulator.tenant_data`; the code that turns them into a tenant is in
:mod:`~airflow_provider_mtp.emulator.synthetic`: ``estate`` (devices and users), ``events`` and the
``*_tables``/``*_events`` modules it combines (one per group of hunting tables), ``incidents`` and
``evidence`` (incidents and their alerts), ``alert_tables`` (AlertInfo and AlertEvidence) and
``hunting_tables`` (creating tables and :func:`insert_rows`).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import duckdb

from airflow_provider_mtp.emulator.synthetic.alert_tables import alert_evidence_rows, alert_info_rows
from airflow_provider_mtp.emulator.synthetic.estate import Device, User, make_devices, make_users
from airflow_provider_mtp.emulator.synthetic.events import EventWriter
from airflow_provider_mtp.emulator.synthetic.evidence import format_ticks
from airflow_provider_mtp.emulator.synthetic.hunting_tables import create_tables, insert_rows
from airflow_provider_mtp.emulator.synthetic.incidents import IncidentFactory
from airflow_provider_mtp.emulator.tenant_data.estate import (
    FULL_TABLES,
    PER_DEVICE_TABLES,
    PER_USER_TABLES,
    TABLE_FRACTIONS,
)
from airflow_provider_mtp.emulator.tenant_data.incidents import (
    ALERT_STATUSES,
    CLASSIFICATIONS,
    DETERMINATIONS,
    INCIDENT_STATUSES,
    SEVERITIES,
)

__all__ = [
    "ALERT_STATUSES",
    "CLASSIFICATIONS",
    "DETERMINATIONS",
    "FULL_TABLES",
    "INCIDENT_STATUSES",
    "PER_DEVICE_TABLES",
    "PER_USER_TABLES",
    "SEVERITIES",
    "TABLE_FRACTIONS",
    "Device",
    "Tenant",
    "User",
    "alert_evidence_rows",
    "alert_info_rows",
    "build_tenant",
    "create_tables",
    "format_ticks",
    "insert_rows",
]


@dataclass(kw_only=True)
class Tenant:
    """The generated tenant: what the hunting tables and the incident store were built from."""

    tenant_id: str
    devices: list[Device]
    users: list[User]
    incidents: list[dict[str, Any]]


def build_tenant(
    con: duckdb.DuckDBPyConnection,
    *,
    tenant_id: str,
    seed: int,
    now: datetime,
    days: int,
    events_per_day: int,
    incidents: int,
    portal: str = "https://security.microsoft.com",
) -> Tenant:
    """Create the tables, fill them and return the tenant.

    :param con: the DuckDB connection (from ``duckdb_kql.connect()``).
    :param tenant_id: the directory id written into incidents and alerts.
    :param seed: seed of every pseudo-random choice.
    :param now: the data time; every timestamp is before it (naive values are taken as UTC).
    :param days: days of history, ending at ``now``.
    :param events_per_day: rows per day in each of the four large tables (see the module docstring).
    :param incidents: number of incidents.
    :param portal: portal origin for ``incidentWebUrl`` and ``alertWebUrl``.
    """
    if days < 1 or events_per_day < 0 or incidents < 0:
        raise ValueError(
            f"need days >= 1, events_per_day >= 0, incidents >= 0 (got {days}, {events_per_day}, {incidents})"
        )
    now = now.replace(tzinfo=UTC) if now.tzinfo is None else now.astimezone(UTC)
    rng = random.Random(seed)
    users = make_users(rng)
    devices = make_devices(rng, users, now=now)
    create_tables(con)
    if events_per_day:
        EventWriter(con, seed=seed, now=now, days=days, devices=devices, users=users).write_all(
            events_per_day
        )
    incident_list = IncidentFactory(
        rng, tenant_id=tenant_id, portal=portal.rstrip("/"), now=now, days=days, devices=devices, users=users
    ).build(incidents)
    insert_rows(con, "AlertInfo", alert_info_rows(incident_list))
    insert_rows(con, "AlertEvidence", alert_evidence_rows(incident_list))
    return Tenant(tenant_id=tenant_id, devices=devices, users=users, incidents=incident_list)
