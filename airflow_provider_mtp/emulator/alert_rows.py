"""The AlertInfo and AlertEvidence hunting rows follow the incident store's alerts.

The store tells :class:`AlertRows` of every alert it creates or changes (an
:class:`~airflow_provider_mtp.emulator.alerts.AlertListener`); the rows of such an alert are
derived again from the alert as it is now and, when they differ from the rows in the tables,
replace them (deleted by ``AlertId``, then inserted): each alert keeps exactly its own rows. Most
changes leave the rows as they are (status, classification, comments and update times have no
hunting column), and then nothing is written.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from typing import Any

import duckdb

from airflow_provider_mtp.emulator.store_index import Row
from airflow_provider_mtp.emulator.synthetic.alert_tables import (
    ALERT_TABLES,
    alert_evidence_rows,
    alert_info_rows,
    rows_of_alert,
)
from airflow_provider_mtp.emulator.synthetic.hunting_tables import insert_rows

#: One alert's rows: its AlertInfo row(s), then its AlertEvidence rows.
_Rows = tuple[list[dict[str, Any]], list[dict[str, Any]]]


class AlertRows:
    """Keeps the alert hunting tables equal to the store's alerts.

    :param con: the DuckDB connection holding schema ``store``.
    :param lock: guards ``con`` (the hunting engine's lock).
    :param incidents: the incidents whose rows the tables hold now (the seed, written by
        :func:`~airflow_provider_mtp.emulator.tenant.build_tenant`).
    """

    def __init__(
        self, *, con: duckdb.DuckDBPyConnection, lock: threading.Lock, incidents: Iterable[Row]
    ) -> None:
        self._con = con
        self._lock = lock
        self._written: dict[str, _Rows] = self._derive(incidents)
        self._seeded = {table: self._expected_count(table) for table in ALERT_TABLES}
        self._changed = False

    @staticmethod
    def _derive(incidents: Iterable[Row]) -> dict[str, _Rows]:
        return {
            str(alert["id"]): rows_of_alert(alert)
            for incident in incidents
            for alert in incident.get("alerts") or ()
        }

    def _expected_count(self, table: str) -> int:
        index = ALERT_TABLES.index(table)
        return sum(len(rows[index]) for rows in self._written.values())

    def alerts_changed(self, changed: Sequence[Row], removed: Sequence[str]) -> None:
        """Rewrite the rows of the alerts whose rows differ now; drop those of removed alerts."""
        fresh = {str(alert["id"]): rows_of_alert(alert) for alert in changed}
        replaced = {alert_id: rows for alert_id, rows in fresh.items() if self._written.get(alert_id) != rows}
        gone = [alert_id for alert_id in removed if alert_id in self._written]
        if not replaced and not gone:
            return
        ids = [*replaced, *gone]
        with self._lock:
            # One transaction: rows a table refuses (a test's bad evidence value) leave the old ones.
            self._con.execute("BEGIN TRANSACTION")
            try:
                for index, table in enumerate(ALERT_TABLES):
                    self._con.execute(
                        f'DELETE FROM store."{table}" WHERE "AlertId" IN (SELECT unnest(?))', [ids]
                    )
                    insert_rows(self._con, table, [row for rows in replaced.values() for row in rows[index]])
            except BaseException:
                self._con.execute("ROLLBACK")
                raise
            self._con.execute("COMMIT")
        for alert_id in gone:
            del self._written[alert_id]
        self._written.update(replaced)
        self._changed = True

    def alerts_reset(self, incidents: Iterable[Row]) -> None:
        """Back to the seed's rows: rewritten whole when alerts changed or rows were loaded since."""
        seeded = list(incidents)
        with self._lock:
            counts = {table: self._count(table) for table in ALERT_TABLES}
            if not self._changed and counts == self._seeded:
                return
            for table in ALERT_TABLES:
                self._con.execute(f'DELETE FROM store."{table}"')
            insert_rows(self._con, "AlertInfo", alert_info_rows(seeded))
            insert_rows(self._con, "AlertEvidence", alert_evidence_rows(seeded))
        self._written = self._derive(seeded)
        self._changed = False

    def _count(self, table: str) -> int:
        (count,) = self._con.execute(f'SELECT count(*) FROM store."{table}"').fetchone() or (0,)
        return int(count)
