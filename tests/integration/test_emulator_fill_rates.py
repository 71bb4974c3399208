"""The synthetic tenant looks like a tenant: columns filled, process trees, hashes, names and joins.

Measured on the emulator's default tenant (seed 7, 30 days, 1,000 events a day, 500 incidents),
the one the fill-rate table in the README describes.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import duckdb
import duckdb_kql
import pytest

from airflow_provider_mtp.emulator.fill_rates import TableFill, main, measure, render
from airflow_provider_mtp.emulator.schema import table_schemas
from airflow_provider_mtp.emulator.tenant import build_tenant
from airflow_provider_mtp.emulator.tenant_data.empty_columns import EMPTY_COLUMNS

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def con() -> Iterator[duckdb.DuckDBPyConnection]:
    connection = duckdb_kql.connect()
    build_tenant(
        connection,
        tenant_id="9a1c3e55-0d3b-4c5e-9f51-2d7c8b6a4e10",
        seed=7,
        now=NOW,
        days=30,
        events_per_day=1000,
        incidents=500,
    )
    yield connection
    connection.close()


@pytest.fixture(scope="module")
def fills(con: duckdb.DuckDBPyConnection) -> dict[str, TableFill]:
    return {fill.table: fill for fill in measure(con)}


def _one(con: duckdb.DuckDBPyConnection, sql: str) -> tuple:  # type: ignore[type-arg]
    row = con.execute(sql).fetchone()
    assert row is not None
    return row


# ---- fill rates --------------------------------------------------------------------------------


def test_every_documented_column_is_filled_or_left_empty_with_a_reason(fills: dict[str, TableFill]) -> None:
    assert set(fills) == set(table_schemas())
    for table, fill in fills.items():
        reasons = EMPTY_COLUMNS.get(table, {})
        assert set(fill.empty) - set(reasons) == set(), f"{table}: empty with no reason given"
        assert set(reasons) - set(fill.empty) == set(), f"{table}: listed as empty but filled"
        assert all(reason.strip() for reason in reasons.values()), table


def test_device_process_events_fill_at_least_60_of_68_columns(fills: dict[str, TableFill]) -> None:
    fill = fills["DeviceProcessEvents"]
    assert fill.documented == 68
    assert len(fill.filled) >= 60, fill.empty
    assert {
        "InitiatingProcessParentFileName",
        "InitiatingProcessParentId",
        "InitiatingProcessParentCreationTime",
        "InitiatingProcessCreationTime",
        "InitiatingProcessSHA1",
        "InitiatingProcessMD5",
    } <= set(fill.filled)


def test_the_table_names_every_empty_column_with_its_reason(fills: dict[str, TableFill]) -> None:
    text = render(list(fills.values()))
    assert "| DeviceProcessEvents | 68 | " in text
    assert "NO REASON GIVEN" not in text
    for table, reasons in EMPTY_COLUMNS.items():
        for column, reason in reasons.items():
            assert f"`{column}`: {reason}" in text, (table, column)
    unexplained = render([TableFill("DeviceInfo", filled=("DeviceId",), empty=("Site",))], reasons={})
    assert "`Site`: NO REASON GIVEN" in unexplained


def test_the_fill_rate_command_prints_the_table(capsys: pytest.CaptureFixture[str]) -> None:
    main(["--days", "1", "--events-per-day", "100", "--incidents", "5"])
    out = capsys.readouterr().out
    assert out.startswith("| hunting table | documented columns | filled | left empty |")
    assert "| DeviceProcessEvents | 68 |" in out


# ---- process trees -----------------------------------------------------------------------------

_PARENT_JOIN = """
    FROM store.DeviceProcessEvents c
    {kind} JOIN store.DeviceProcessEvents p
      ON p.DeviceId = c.DeviceId AND p.ProcessId = c.InitiatingProcessId
     AND p.ProcessCreationTime = c.InitiatingProcessCreationTime
"""


def test_a_childs_initiating_process_is_its_parents_row(con: duckdb.DuckDBPyConnection) -> None:
    total, linked, mismatched = _one(
        con,
        "SELECT count(*), count(p.ProcessId), count(*) FILTER (WHERE p.ProcessId IS NOT NULL AND ("
        " p.FileName <> c.InitiatingProcessFileName OR p.ProcessCommandLine <> c.InitiatingProcessCommandLine"
        " OR p.FolderPath <> c.InitiatingProcessFolderPath OR p.SHA256 <> c.InitiatingProcessSHA256"
        " OR p.ProcessUniqueId <> c.InitiatingProcessUniqueId OR p.AccountName <> c.InitiatingProcessAccountName"
        " OR p.ProcessIntegrityLevel <> c.InitiatingProcessIntegrityLevel"
        " OR p.InitiatingProcessId <> c.InitiatingProcessParentId"
        " OR p.InitiatingProcessFileName <> c.InitiatingProcessParentFileName"
        " OR p.InitiatingProcessCreationTime <> c.InitiatingProcessParentCreationTime))"
        + _PARENT_JOIN.format(kind="LEFT"),
    )
    assert linked > total / 3, (linked, total)
    assert mismatched == 0


def test_parents_are_created_before_their_children(con: duckdb.DuckDBPyConnection) -> None:
    (backwards,) = _one(
        con,
        "SELECT count(*) FROM store.DeviceProcessEvents WHERE NOT ("
        " InitiatingProcessParentCreationTime < InitiatingProcessCreationTime"
        " AND InitiatingProcessCreationTime < ProcessCreationTime AND ProcessCreationTime = Timestamp)",
    )
    assert backwards == 0
    (unparented,) = _one(
        con,
        "SELECT count(*) FROM store.DeviceProcessEvents WHERE InitiatingProcessParentFileName IS NULL"
        " OR InitiatingProcessParentId IS NULL OR InitiatingProcessId IS NULL",
    )
    assert unparented == 0


def test_process_trees_are_at_least_four_levels_deep(con: duckdb.DuckDBPyConnection) -> None:
    link = "JOIN store.DeviceProcessEvents {c} ON {c}.DeviceId = {p}.DeviceId AND {c}.InitiatingProcessId = {p}.ProcessId AND {c}.InitiatingProcessCreationTime = {p}.ProcessCreationTime"
    joins = " ".join(link.format(p=p, c=c) for p, c in (("a", "b"), ("b", "c"), ("c", "d")))
    (chains,) = _one(con, f"SELECT count(*) FROM store.DeviceProcessEvents a {joins}")
    assert chains > 0
    # A suspicious chain: Office spawns PowerShell, which spawns a shell, which runs discovery.
    (macro,) = _one(
        con,
        f"SELECT count(*) FROM store.DeviceProcessEvents a {joins} WHERE a.FileName = 'WINWORD.EXE'"
        " AND b.ProcessCommandLine LIKE '%EncodedCommand%' AND d.FileName IN ('whoami.exe', 'nltest.exe')",
    )
    assert macro > 0


def test_boot_processes_have_one_identity_per_device_and_day_across_tables(
    con: duckdb.DuckDBPyConnection,
) -> None:
    boot = "InitiatingProcessFileName IN ('svchost.exe', 'services.exe', 'lsass.exe', 'explorer.exe')"
    columns = "DeviceId, InitiatingProcessFileName, InitiatingProcessCreationTime, InitiatingProcessId, InitiatingProcessUniqueId"
    tables = ("DeviceProcessEvents", "DeviceNetworkEvents", "DeviceFileEvents", "DeviceRegistryEvents")
    union = " UNION ALL ".join(
        f"SELECT DISTINCT '{t}' AS t, {columns} FROM store.{t} WHERE {boot}" for t in tables
    )
    processes, tables_sharing, ambiguous = _one(
        con,
        f"SELECT count(*), max(t), count(*) FILTER (WHERE ids > 1) FROM ("
        f" SELECT count(DISTINCT t) AS t, count(DISTINCT (InitiatingProcessId, InitiatingProcessUniqueId)) AS ids"
        f" FROM ({union}) GROUP BY DeviceId, InitiatingProcessFileName, InitiatingProcessCreationTime)",
    )
    assert processes > 100
    assert tables_sharing == len(tables), "a boot process seen in every Device table"
    assert ambiguous == 0


# ---- files, devices, accounts ------------------------------------------------------------------


def test_a_file_has_the_same_hashes_and_size_everywhere(con: duckdb.DuckDBPyConnection) -> None:
    files = """
        SELECT lower(FolderPath) AS path, SHA1, SHA256, MD5, FileSize FROM store.DeviceProcessEvents
        UNION ALL SELECT lower(InitiatingProcessFolderPath), InitiatingProcessSHA1, InitiatingProcessSHA256,
            InitiatingProcessMD5, InitiatingProcessFileSize FROM store.DeviceProcessEvents
        UNION ALL SELECT lower(InitiatingProcessFolderPath), InitiatingProcessSHA1, InitiatingProcessSHA256,
            InitiatingProcessMD5, InitiatingProcessFileSize FROM store.DeviceNetworkEvents
        UNION ALL SELECT lower(FolderPath), SHA1, SHA256, MD5, FileSize FROM store.DeviceFileEvents
        UNION ALL SELECT lower(FolderPath), SHA1, SHA256, MD5, FileSize FROM store.DeviceImageLoadEvents
        UNION ALL SELECT lower(FolderPath), SHA1, SHA256, MD5, FileSize FROM store.DeviceEvents
        UNION ALL SELECT lower(FolderPath || '\\' || FileName), SHA1, SHA256, NULL, FileSize FROM store.AlertEvidence
    """
    paths, inconsistent = _one(
        con,
        f"SELECT count(*), count(*) FILTER (WHERE n > 1) FROM ("
        f" SELECT path, greatest(count(DISTINCT SHA1), count(DISTINCT SHA256), count(DISTINCT MD5),"
        f" count(DISTINCT FileSize)) AS n FROM ({files}) WHERE path IS NOT NULL AND SHA256 IS NOT NULL GROUP BY path)",
    )
    assert paths > 100
    assert inconsistent == 0
    # An alert's file is the file the Device tables saw.
    (matched,) = _one(
        con,
        "SELECT count(DISTINCT e.SHA256) FROM store.AlertEvidence e JOIN store.DeviceProcessEvents p"
        " ON p.SHA256 = e.SHA256 AND p.FileName = e.FileName WHERE e.EntityType = 'Process'",
    )
    assert matched >= 3


def test_device_names_are_fqdns_in_several_domains(con: duckdb.DuckDBPyConnection) -> None:
    names = [row[0] for row in con.execute("SELECT DISTINCT DeviceName FROM store.DeviceInfo").fetchall()]
    assert len(names) == 50
    assert all(name == name.lower() and name.count(".") >= 2 for name in names), names
    domains = {name.split(".", 1)[1] for name in names}
    assert {"contoso.local", "emea.contoso.local"} <= domains
    assert len(domains) >= 3
    for table in ("DeviceProcessEvents", "DeviceNetworkEvents", "DeviceLogonEvents", "AlertEvidence"):
        (unknown,) = _one(
            con,
            f'SELECT count(*) FROM store."{table}" t WHERE DeviceName IS NOT NULL'
            " AND DeviceName NOT IN (SELECT DeviceName FROM store.DeviceInfo)",
        )
        assert unknown == 0, table


def test_logons_have_the_logon_types_real_data_has(con: duckdb.DuckDBPyConnection) -> None:
    types = {
        row[0] for row in con.execute("SELECT DISTINCT LogonType FROM store.DeviceLogonEvents").fetchall()
    }
    assert {
        "Interactive",
        "Network",
        "RemoteInteractive",
        "Unlock",
        "Service",
        "Batch",
        "CachedInteractive",
    } <= types
    (system_sessions,) = _one(
        con, "SELECT count(*) FROM store.DeviceProcessEvents WHERE AccountName = 'system' AND LogonId <> 999"
    )
    assert system_sessions == 0


# ---- joins -------------------------------------------------------------------------------------


def test_mail_urls_and_clicks_join_their_messages(con: duckdb.DuckDBPyConnection) -> None:
    for table in ("EmailUrlInfo", "EmailAttachmentInfo", "UrlClickEvents"):
        (orphans,) = _one(
            con, f"SELECT count(*) FROM store.{table} t ANTI JOIN store.EmailEvents USING (NetworkMessageId)"
        )
        assert orphans == 0, table
    (unlisted,) = _one(
        con,
        "SELECT count(*) FROM store.UrlClickEvents c ANTI JOIN store.EmailUrlInfo u USING (NetworkMessageId, Url)",
    )
    assert unlisted == 0


def test_clicked_and_mailed_urls_join_device_network_events(con: duckdb.DuckDBPyConnection) -> None:
    domains = [
        row[0]
        for row in con.execute(
            "SELECT DISTINCT u.UrlDomain FROM store.EmailUrlInfo u"
            " JOIN store.DeviceNetworkEvents n ON n.RemoteUrl = u.UrlDomain"
        ).fetchall()
    ]
    assert "login.micros0ft-security.example" in domains
    assert len(domains) >= 5
    (c2,) = _one(
        con,
        "SELECT count(*) FROM store.AlertEvidence e JOIN store.DeviceNetworkEvents n ON n.RemoteIP = e.RemoteIP"
        " WHERE e.EntityType = 'Ip'",
    )
    assert c2 > 0


# ---- every hour holds process events -------------------------------------------------------------


@pytest.mark.parametrize("hour", [2, 12, 21])
def test_every_hour_of_the_window_holds_process_events(hour: int) -> None:
    """A scheduled hunt of the last hour finds rows whatever the time of day.

    Five rows share a tree's moment, so trees placed at random left whole night hours empty (the
    end-to-end hourly hunt found nothing at 02:00); a share of them is spread evenly instead.
    """
    connection = duckdb_kql.connect()
    try:
        build_tenant(
            connection,
            tenant_id="9a1c3e55-0d3b-4c5e-9f51-2d7c8b6a4e10",
            seed=7,
            now=datetime(2026, 11, 20, hour, 0, tzinfo=UTC),
            days=2,
            events_per_day=1000,
            incidents=5,
        )
        hours, least = _one(
            connection,
            "SELECT count(*), min(n) FROM (SELECT date_trunc('hour', Timestamp) AS h, count(*) AS n "
            "FROM store.DeviceProcessEvents GROUP BY h)",
        )
    finally:
        connection.close()
    assert hours == 48, f"{48 - hours} of the window's 48 hours have no process event"
    assert least >= 5
