"""The event-table writer's common part: SQL fragments (hash-based picks, timestamps, joins) and plumbing."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

import duckdb

from airflow_provider_mtp.emulator.schema import DUCKDB_TYPES, table_schemas
from airflow_provider_mtp.emulator.synthetic.estate import Device, User
from airflow_provider_mtp.emulator.tenant_data.estate import FULL_TABLES, TABLE_FRACTIONS

_DAY_US = 86_400_000_000


def _sql_str(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _duck_type(value: Any) -> str:
    if isinstance(value, bool):
        return "BOOLEAN"
    if isinstance(value, int):
        return "BIGINT"
    if isinstance(value, float):
        return "DOUBLE"
    return "VARCHAR"


class EventSQL:
    """What every event-table writer shares: SQL fragments and the plumbing of set-based inserts.

    Every pseudo-random choice is a hash of the row index (see :mod:`~airflow_provider_mtp.emulator.tenant`).

    Small Python-side tables (``_mtp_dev``, ``_mtp_usr`` and one per profile list) are joined in;
    profile tables are expanded to one row per weight unit (``slot``) so a hash picks by weight.
    """

    def __init__(
        self,
        con: duckdb.DuckDBPyConnection,
        *,
        seed: int,
        now: datetime,
        days: int,
        devices: Sequence[Device],
        users: Sequence[User],
    ) -> None:
        self.con = con
        self.seed = seed
        self.now = now
        self.days = days
        self.start = now - timedelta(days=days)
        self.devices = devices
        self.users = users
        self.temp_tables: list[str] = []
        self.weights: dict[str, int] = {}
        # Employees come first in `users`; mail and cloud activity is theirs, not the service accounts'.
        self.people = sum(1 for user in users if user.kind in ("user", "analyst"))
        # Part of every hash salt: without it, row i of two tables would share its time and picks.
        self.scope = ""

    def rand(self, salt: str, modulo: int, key: str = "b.i") -> str:
        """A number in ``[0, modulo)`` fixed by (key, seed, salt)."""
        return f"(hash({key}, {self.seed}, '{self.scope}/{salt}') % {max(modulo, 1)})::BIGINT"

    def pick(self, values: Sequence[str], salt: str, key: str = "b.i") -> str:
        """One of ``values``, uniformly."""
        listed = ", ".join(_sql_str(value) for value in values)
        return f"list_element([{listed}], 1 + {self.rand(salt, len(values), key)})"

    def guid(self, salt: str, key: str = "b.i") -> str:
        return f"md5(concat('{self.seed}', '{salt}', {key}))::UUID::VARCHAR"

    def day_offset(self, key: str = "b.i") -> str:
        """Microseconds into a row's 24-hour slot; 70 % fall in 07:00-19:00 UTC on the clock."""
        anytime = self.rand("tsa", _DAY_US, key)
        return (
            f"CASE WHEN {self.rand('tsk', 100, key)} < 70 THEN {self.working_offset(key)} ELSE {anytime} END"
        )

    def working_offset(self, key: str = "b.i") -> str:
        """Microseconds into a row's 24-hour slot that fall in 07:00-19:00 UTC on the clock."""
        midnight = self.start.replace(hour=0, minute=0, second=0, microsecond=0)
        since_midnight = (self.start - midnight) // timedelta(microseconds=1)
        # Shift so that offset 0 of the working window is 07:00 on the clock, wrapping within the slot.
        seven = (7 * 3_600_000_000 - since_midnight) % _DAY_US
        return f"({seven} + {self.rand('tsw', 43_200_000_000, key)}) % {_DAY_US}"

    def timestamp(self, per_day: int, key: str = "b.i") -> str:
        """Row ``i`` falls in the ``i // per_day``-th 24 hours after the start; 70 % in 07:00-19:00 UTC.

        Offsets stay inside the row's own 24 hours, so each holds exactly ``per_day`` rows.
        """
        return f"({self.day_start(f'({key} // {per_day})')} + to_microseconds({self.day_offset(key)}))"

    def day_start(self, day: str) -> str:
        """The start of day slot ``day`` (0 is the window's first 24 hours)."""
        return f"(TIMESTAMPTZ '{self.start.isoformat()}' + to_microseconds(({day}) * {_DAY_US}))"

    def fill(
        self,
        template: str,
        *,
        user: str = "u.account_name",
        host: str = "d2.device_name",
        salt: str = "n",
        key: str = "b.i",
    ) -> str:
        """Replace ``{user}``, ``{host}`` and ``{n}`` in a template expression.

        ``{n}`` is one number per row (same salt), so a file name and its path in one row agree.
        """
        number = f"CAST(100 + {self.rand(salt, 900, key)} AS VARCHAR)"
        return f"replace(replace(replace({template}, '{{user}}', {user}), '{{host}}', {host}), '{{n}}', {number})"

    def base(self, rows: int, per_day: int) -> str:
        return f"(SELECT range AS i, {self.timestamp(per_day, 'range')} AS _ts FROM range({rows})) b"

    def device_join(
        self, alias: str = "d", salt: str = "dev", key: str = "b.i", *, windows_only: bool = False
    ) -> str:
        """A device by hash; ``windows_only`` leaves out the Linux servers (listed last)."""
        count = len(self.devices)
        if windows_only:
            count = sum(1 for device in self.devices if device.os_platform != "Linux")
            if any(device.os_platform == "Linux" for device in self.devices[:count]):
                raise ValueError("the Linux devices must come last")
        return f"JOIN _mtp_dev {alias} ON {alias}.idx = {self.rand(salt, count, key)}"

    def owner_join(self, alias: str = "u", device: str = "d", salt: str = "usr", key: str = "b.i") -> str:
        """Mostly the device's primary user, sometimes anyone (shared and admin logons)."""
        other = self.rand(salt, len(self.users), key)
        return f"JOIN _mtp_usr {alias} ON {alias}.idx = CASE WHEN {self.rand(salt + 'o', 10, key)} < 8 THEN {device}.owner_idx ELSE {other} END"

    def user_join(self, alias: str = "u", salt: str = "usr", *, people_only: bool = False) -> str:
        count = self.people if people_only else len(self.users)
        return f"JOIN _mtp_usr {alias} ON {alias}.idx = {self.rand(salt, count)}"

    def profile_join(self, name: str, alias: str = "p", key: str = "b.i") -> str:
        return f"JOIN _mtp_{name} {alias} ON {alias}.slot = {self.rand(name, self.weights[name], key)}"

    def temp_table(self, name: str, rows: Sequence[Mapping[str, Any]]) -> None:
        """Create ``_mtp_<name>`` from Python rows (column types from the first row)."""
        columns = list(rows[0])
        types = {column: _duck_type(rows[0][column]) for column in columns}
        body = ", ".join(f'"{column}" {types[column]}' for column in columns)
        table = f"_mtp_{name}"
        self.con.execute(f"CREATE OR REPLACE TEMP TABLE {table} ({body})")
        placeholders = "(" + ", ".join("?" for _ in columns) + ")"
        params = [row[column] for row in rows for column in columns]
        self.con.execute(f"INSERT INTO {table} VALUES {', '.join([placeholders] * len(rows))}", params)
        self.temp_tables.append(table)

    def profile_table(self, name: str, profiles: Sequence[Mapping[str, Any]]) -> None:
        """A profile list expanded to one row per weight unit, numbered by ``slot``."""
        self.temp_table(f"{name}_raw", [{"pidx": index, **profile} for index, profile in enumerate(profiles)])
        self.con.execute(
            f"CREATE OR REPLACE TEMP TABLE _mtp_{name} AS "
            f"SELECT unnest(range(lo, lo + weight)) AS slot, * EXCLUDE (lo) FROM ("
            f"  SELECT *, (sum(weight) OVER (ORDER BY pidx) - weight)::BIGINT AS lo FROM _mtp_{name}_raw)"
        )
        self.temp_tables.append(f"_mtp_{name}")
        self.weights[name] = sum(int(profile["weight"]) for profile in profiles)

    def insert(self, table: str, columns: Mapping[str, str], source: str, order: str = "b._ts, b.i") -> None:
        """``INSERT ... SELECT`` with every column in documented order; unnamed ones are NULL."""
        schema = table_schemas()[table]
        unknown = set(columns) - {name for name, _ in schema}
        if unknown:
            raise ValueError(f"generator names unknown columns of {table}: {sorted(unknown)}")
        select = ", ".join(
            f'CAST({columns.get(name, "NULL")} AS {DUCKDB_TYPES[kusto]}) AS "{name}"'
            for name, kusto in schema
        )
        self.con.execute(f'INSERT INTO store."{table}" SELECT {select} {source} ORDER BY {order}')

    def rows_per_day(self, table: str, events_per_day: int) -> int:
        if table in FULL_TABLES:
            return events_per_day
        return round(events_per_day * TABLE_FRACTIONS[table])

    def snapshot_source(self, table: str, count: int) -> str:
        """One row per (day, entity): index ``i`` is ``day * count + entity``."""
        rows = self.days * count
        return f"FROM (SELECT range AS i, {self.timestamp(count, 'range')} AS _ts FROM range({rows})) b JOIN {table} ON {table}.idx = b.i % {count}"

    def account_columns(self, prefix: str, kind: str = "p.account") -> dict[str, str]:
        """Account columns for a row run either by the user ``u`` or by the local system."""
        system = f"{kind} = 'system'"
        return {
            f"{prefix}AccountDomain": f"CASE WHEN {system} THEN 'nt authority' ELSE lower(u.account_domain) END",
            f"{prefix}AccountName": f"CASE WHEN {system} THEN 'system' ELSE u.account_name END",
            f"{prefix}AccountSid": f"CASE WHEN {system} THEN 'S-1-5-18' ELSE u.sid END",
            f"{prefix}AccountUpn": f"CASE WHEN {system} THEN NULL ELSE u.upn END",
            f"{prefix}AccountObjectId": f"CASE WHEN {system} THEN NULL ELSE u.object_id END",
        }
