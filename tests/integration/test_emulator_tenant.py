"""The synthetic tenant: schema, sizes, determinism, incident invariants and ``insert_rows``."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import duckdb
import duckdb_kql
import pytest

from airflow_provider_mtp.emulator.schema import DUCKDB_TYPES, table_schemas
from airflow_provider_mtp.emulator.tenant import (
    ALERT_STATUSES,
    CLASSIFICATIONS,
    DETERMINATIONS,
    FULL_TABLES,
    INCIDENT_STATUSES,
    SEVERITIES,
    TABLE_FRACTIONS,
    Tenant,
    build_tenant,
    create_tables,
    insert_rows,
)

NOW = datetime(2026, 11, 27, 10, 17, 33, 123456, tzinfo=UTC)
DAYS = 3
PER_DAY = 100
INCIDENTS = 60
TENANT_ID = "9a1c3e55-0d3b-4c5e-9f51-2d7c8b6a4e10"

INCIDENT_KEYS = {
    "id",
    "tenantId",
    "incidentWebUrl",
    "redirectIncidentId",
    "displayName",
    "createdDateTime",
    "lastUpdateDateTime",
    "assignedTo",
    "classification",
    "determination",
    "status",
    "severity",
    "customTags",
    "systemTags",
    "description",
    "summary",
    "priorityScore",
    "lastModifiedBy",
    "resolvingComment",
    "comments",
    "alerts",
}
ALERT_KEYS = {
    "id",
    "providerAlertId",
    "incidentId",
    "status",
    "severity",
    "classification",
    "determination",
    "serviceSource",
    "detectionSource",
    "detectorId",
    "tenantId",
    "title",
    "description",
    "recommendedActions",
    "category",
    "assignedTo",
    "alertWebUrl",
    "incidentWebUrl",
    "actorDisplayName",
    "threatDisplayName",
    "threatFamilyName",
    "mitreTechniques",
    "createdDateTime",
    "lastUpdateDateTime",
    "resolvedDateTime",
    "firstActivityDateTime",
    "lastActivityDateTime",
    "comments",
    "evidence",
    "systemTags",
}
EVIDENCE_COMMON = {"@odata.type", "createdDateTime", "verdict", "remediationStatus", "roles", "tags"}
EVIDENCE_ENTITY_TYPES = {
    "Machine",
    "User",
    "File",
    "Process",
    "Ip",
    "Url",
    "MailMessage",
    "Mailbox",
    "RegistryValue",
}
API_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.(\d{1,7}))?Z$")


def _build(
    *,
    seed: int = 7,
    threads: int = 1,
    events_per_day: int = PER_DAY,
    incidents: int = INCIDENTS,
    days: int = DAYS,
) -> tuple[duckdb.DuckDBPyConnection, Tenant]:
    con = duckdb_kql.connect()
    con.execute(f"SET threads = {threads}")
    tenant = build_tenant(
        con,
        tenant_id=TENANT_ID,
        seed=seed,
        now=NOW,
        days=days,
        events_per_day=events_per_day,
        incidents=incidents,
    )
    return con, tenant


@pytest.fixture(scope="module")
def built() -> Iterator[tuple[duckdb.DuckDBPyConnection, Tenant]]:
    con, tenant = _build()
    yield con, tenant
    con.close()


@pytest.fixture
def con(built: tuple[duckdb.DuckDBPyConnection, Tenant]) -> duckdb.DuckDBPyConnection:
    return built[0]


@pytest.fixture
def tenant(built: tuple[duckdb.DuckDBPyConnection, Tenant]) -> Tenant:
    return built[1]


def _count(con: duckdb.DuckDBPyConnection, table: str, where: str = "true") -> int:
    (count,) = con.execute(f'SELECT count(*) FROM store."{table}" WHERE {where}').fetchone()  # type: ignore[misc]
    return int(count)


def _digest(con: duckdb.DuckDBPyConnection, table: str) -> str:
    """Digest of a table's rows in physical (insertion) order."""
    sql = f"SELECT md5(coalesce(string_agg(t::VARCHAR, chr(10) ORDER BY rowid), '')) FROM store.\"{table}\" t"
    (digest,) = con.execute(sql).fetchone()  # type: ignore[misc]
    return str(digest)


def _api_time(value: str) -> datetime:
    assert API_TIME.match(value), value
    return datetime.fromisoformat(value)


def _alerts(tenant: Tenant) -> list[dict[str, Any]]:
    return [alert for incident in tenant.incidents for alert in incident["alerts"]]


# ---- schema ------------------------------------------------------------------------------------


def test_every_table_has_every_column_in_order_and_type(con: duckdb.DuckDBPyConnection) -> None:
    # DESCRIBE spells types canonically (TIMESTAMPTZ is TIMESTAMP WITH TIME ZONE): ask DuckDB for those.
    canonical = {
        duck: con.execute(f"SELECT typeof(CAST(NULL AS {duck}))").fetchone()[0]  # type: ignore[index]
        for duck in set(DUCKDB_TYPES.values())
    }
    for table, columns in table_schemas().items():
        described = con.execute(f'DESCRIBE store."{table}"').fetchall()
        assert [(row[0], row[1]) for row in described] == [
            (name, canonical[DUCKDB_TYPES[kusto]]) for name, kusto in columns
        ], table
    assert len(table_schemas()) == 19


def test_create_tables_is_idempotent_and_empty() -> None:
    con = duckdb_kql.connect()
    create_tables(con)
    create_tables(con)
    for table in table_schemas():
        assert _count(con, table) == 0


def test_every_table_is_generated() -> None:
    generated = {*FULL_TABLES, *TABLE_FRACTIONS, "DeviceInfo", "DeviceNetworkInfo", "IdentityInfo"}
    assert generated | {"AlertInfo", "AlertEvidence"} == set(table_schemas())


# ---- sizes -------------------------------------------------------------------------------------


def test_row_counts_follow_events_per_day_and_days(con: duckdb.DuckDBPyConnection, tenant: Tenant) -> None:
    for table in FULL_TABLES:
        assert _count(con, table) == PER_DAY * DAYS, table
    for table, fraction in TABLE_FRACTIONS.items():
        assert _count(con, table) == round(PER_DAY * fraction) * DAYS, table
    assert _count(con, "DeviceInfo") == _count(con, "DeviceNetworkInfo") == len(tenant.devices) * DAYS
    assert _count(con, "IdentityInfo") == len(tenant.users) * DAYS


def test_each_day_holds_its_share() -> None:
    con, _ = _build(events_per_day=40, incidents=0, days=4)
    start = NOW - timedelta(days=4)
    for day in range(4):
        low, high = start + timedelta(days=day), start + timedelta(days=day + 1)
        where = f"Timestamp >= '{low.isoformat()}' AND Timestamp < '{high.isoformat()}'"
        assert _count(con, "DeviceNetworkEvents", where) == 40
        assert _count(con, "DeviceLogonEvents", where) == 8


def test_zero_events_leaves_tables_empty() -> None:
    con, tenant = _build(events_per_day=0, incidents=0)
    assert tenant.incidents == []
    for table in table_schemas():
        assert _count(con, table) == 0, table


def test_bad_sizes_are_refused() -> None:
    with pytest.raises(ValueError, match="days >= 1"):
        _build(days=0)
    with pytest.raises(ValueError, match="events_per_day >= 0"):
        _build(events_per_day=-1)


def test_devices_and_users(tenant: Tenant) -> None:
    assert len(tenant.devices) == 50
    assert len(tenant.users) == 80
    names = {device.device_name for device in tenant.devices}
    assert {"ws-fin-01", "srv-dc-01", "srv-dc-02"} <= names
    assert len({device.device_id for device in tenant.devices}) == 50
    assert all(re.fullmatch(r"[0-9a-f]{40}", device.device_id) for device in tenant.devices)
    assert len({user.upn for user in tenant.users}) == len({user.account_name for user in tenant.users}) == 80
    assert all(user.sid.startswith("S-1-5-21-") for user in tenant.users)


# ---- determinism -------------------------------------------------------------------------------


def test_two_builds_are_identical_whatever_the_threads(
    con: duckdb.DuckDBPyConnection, tenant: Tenant
) -> None:
    other_con, other = _build(threads=2)
    for table in table_schemas():
        assert _digest(other_con, table) == _digest(con, table), table
    assert other.incidents == tenant.incidents
    assert other.devices == tenant.devices
    assert other.users == tenant.users


def test_another_seed_gives_other_data(con: duckdb.DuckDBPyConnection, tenant: Tenant) -> None:
    other_con, other = _build(seed=8)
    assert _digest(other_con, "DeviceProcessEvents") != _digest(con, "DeviceProcessEvents")
    assert other.incidents != tenant.incidents


# ---- event rows --------------------------------------------------------------------------------


def test_timestamps_lie_in_the_window_and_rows_are_ordered(con: duckdb.DuckDBPyConnection) -> None:
    low, high = NOW - timedelta(days=DAYS), NOW
    for table in table_schemas():
        rows = con.execute(
            f'SELECT min("Timestamp"), max("Timestamp"), '
            f'count(*) FILTER (WHERE microsecond("Timestamp") % 1000000 <> 0), count(*) FROM store."{table}"'
        ).fetchone()
        assert rows is not None
        first, last, fractional, total = rows
        assert first >= low, table
        assert last < high, table
        assert fractional > 0, table
        (unordered,) = con.execute(
            f'SELECT count(*) FROM (SELECT "Timestamp" < lag("Timestamp") OVER (ORDER BY rowid) AS back '
            f'FROM store."{table}") WHERE back'
        ).fetchone()  # type: ignore[misc]
        assert unordered == 0, table
        assert total > 0, table


def test_event_rows_use_the_tenants_devices_and_users(con: duckdb.DuckDBPyConnection, tenant: Tenant) -> None:
    device_ids = {device.device_id for device in tenant.devices}
    for table in ("DeviceProcessEvents", "DeviceNetworkEvents", "DeviceFileEvents", "DeviceLogonEvents"):
        seen = {row[0] for row in con.execute(f'SELECT DISTINCT DeviceId FROM store."{table}"').fetchall()}
        assert seen <= device_ids, table
    upns = {user.upn for user in tenant.users}
    recipients = con.execute(
        "SELECT DISTINCT RecipientEmailAddress FROM store.EmailEvents WHERE EmailDirection = 'Inbound'"
    ).fetchall()
    assert {row[0] for row in recipients} <= upns


def test_email_counts_match_their_detail_rows(con: duckdb.DuckDBPyConnection) -> None:
    mismatches = con.execute(
        """
        SELECT count(*) FROM store.EmailEvents e
        LEFT JOIN (SELECT NetworkMessageId, count(*) AS n FROM store.EmailUrlInfo GROUP BY ALL) u USING (NetworkMessageId)
        WHERE e.UrlCount <> coalesce(u.n, 0)
        """
    ).fetchone()
    assert mismatches == (0,)
    orphans = con.execute(
        "SELECT count(*) FROM store.EmailAttachmentInfo a ANTI JOIN store.EmailEvents e USING (NetworkMessageId)"
    ).fetchone()
    assert orphans == (0,)


def test_demo_hunts_find_something() -> None:
    con, _ = _build(events_per_day=1000, days=2, incidents=0)
    for view in table_schemas():
        con.execute(f'CREATE VIEW main."{view}" AS SELECT * FROM store."{view}"')
    hunts = [
        'DeviceProcessEvents | where FileName == "powershell.exe" and ProcessCommandLine has "EncodedCommand"',
        'DeviceProcessEvents | where FileName in~ ("mimikatz.exe", "psexec.exe")',
        'DeviceNetworkEvents | where RemoteUrl contains "evil"',
        'DeviceLogonEvents | where ActionType == "LogonFailed" and AccountName =~ "administrator"',
        'EmailEvents | where ThreatTypes has "Phish" and EmailDirection == "Inbound"',
        'DeviceInfo | where OSPlatform startswith "Windows"',
    ]
    for hunt in hunts:
        assert len(duckdb_kql.query(con, hunt, query_now=NOW).fetchall()) > 0, hunt


# ---- incidents ---------------------------------------------------------------------------------


def test_incidents_have_the_graph_shape(tenant: Tenant) -> None:
    assert len(tenant.incidents) == INCIDENTS
    for index, incident in enumerate(tenant.incidents):
        assert set(incident) == INCIDENT_KEYS
        assert incident["id"] == str(1000 + index)
        assert incident["tenantId"] == TENANT_ID
        assert incident["incidentWebUrl"] == (
            f"https://security.microsoft.com/incidents/{incident['id']}?tid={TENANT_ID}"
        )
        assert incident["status"] in INCIDENT_STATUSES
        assert incident["severity"] in SEVERITIES
        assert incident["classification"] in CLASSIFICATIONS
        assert incident["determination"] in DETERMINATIONS[incident["classification"]]
        assert 0 <= incident["priorityScore"] <= 100
        assert isinstance(incident["customTags"], list)
        assert isinstance(incident["systemTags"], list)
        assert incident["summary"] is None
        assert incident["resolvingComment"] is None
        assert 1 <= len(incident["alerts"]) <= 4
        assert incident["severity"] == max((a["severity"] for a in incident["alerts"]), key=SEVERITIES.index)
        for comment in incident["comments"]:
            assert set(comment) == {"comment", "createdByDisplayName", "createdDateTime"}


def test_redirected_incidents_point_at_existing_ones(tenant: Tenant) -> None:
    ids = {incident["id"] for incident in tenant.incidents}
    redirected = [incident for incident in tenant.incidents if incident["status"] == "redirected"]
    assert redirected
    for incident in tenant.incidents:
        target = incident["redirectIncidentId"]
        if incident["status"] == "redirected":
            assert target in ids
            assert target != incident["id"]
        else:
            assert target is None


def test_incident_times_are_ordered_and_in_the_window(tenant: Tenant) -> None:
    low = NOW - timedelta(days=DAYS)
    recent = 0
    for incident in tenant.incidents:
        created = _api_time(incident["createdDateTime"])
        updated = _api_time(incident["lastUpdateDateTime"])
        assert low <= created <= updated <= NOW
        recent += updated >= NOW - timedelta(hours=6)
        for comment in incident["comments"]:
            assert created <= _api_time(comment["createdDateTime"]) <= updated
        for alert in incident["alerts"]:
            first = _api_time(alert["firstActivityDateTime"])
            last = _api_time(alert["lastActivityDateTime"])
            alert_created = _api_time(alert["createdDateTime"])
            alert_updated = _api_time(alert["lastUpdateDateTime"])
            assert first <= last <= alert_created <= alert_updated <= updated
            assert created <= alert_created
            if alert["resolvedDateTime"] is not None:
                assert _api_time(alert["resolvedDateTime"]) <= alert_updated
    assert recent > 0


def test_api_timestamps_vary_in_fractional_digits(tenant: Tenant) -> None:
    digits = set()
    for incident in tenant.incidents:
        for item in (incident, *incident["alerts"]):
            for key in ("createdDateTime", "lastUpdateDateTime"):
                match = API_TIME.match(item[key])
                assert match, item[key]
                digits.add(len(match.group(1) or ""))
    assert {0, 7} <= digits
    assert len(digits) >= 5


def test_alerts_have_the_alerts_v2_shape(tenant: Tenant) -> None:
    ids = [alert["id"] for alert in _alerts(tenant)]
    assert len(ids) == len(set(ids))
    device_ids = {device.device_id for device in tenant.devices}
    for incident in tenant.incidents:
        for alert in incident["alerts"]:
            assert set(alert) == ALERT_KEYS
            assert re.fullmatch(r"(da|fa|aa|ca)\d{18}_-?\d+", alert["id"]), alert["id"]
            assert alert["providerAlertId"] == alert["id"]
            assert alert["incidentId"] == incident["id"]
            assert alert["status"] in ALERT_STATUSES
            assert alert["severity"] in SEVERITIES
            assert alert["serviceSource"].startswith("microsoftDefenderFor")
            assert (alert["status"] == "resolved") == (alert["resolvedDateTime"] is not None)
            assert alert["incidentWebUrl"] == incident["incidentWebUrl"]
            assert alert["evidence"]
            for evidence in alert["evidence"]:
                assert set(evidence) >= EVIDENCE_COMMON
                assert evidence["@odata.type"].startswith("#microsoft.graph.security.")
                if "mdeDeviceId" in evidence:
                    assert evidence["mdeDeviceId"] in device_ids


# ---- AlertInfo and AlertEvidence ---------------------------------------------------------------


def test_alert_info_matches_the_incidents(con: duckdb.DuckDBPyConnection, tenant: Tenant) -> None:
    alerts = {alert["id"]: alert for alert in _alerts(tenant)}
    rows = con.execute('SELECT AlertId, "Timestamp", Title, Severity FROM store.AlertInfo').fetchall()
    assert sorted(row[0] for row in rows) == sorted(alerts)
    for alert_id, timestamp, title, severity in rows:
        alert = alerts[alert_id]
        created = _api_time(alert["createdDateTime"])
        assert timestamp == created
        assert title == alert["title"]
        assert severity == alert["severity"].capitalize()


def test_alert_evidence_matches_the_incidents(con: duckdb.DuckDBPyConnection, tenant: Tenant) -> None:
    expected = sum(len(alert["evidence"]) for alert in _alerts(tenant))
    assert _count(con, "AlertEvidence") == expected
    entity_types = {
        row[0] for row in con.execute("SELECT DISTINCT EntityType FROM store.AlertEvidence").fetchall()
    }
    assert entity_types <= EVIDENCE_ENTITY_TYPES
    (unknown_alerts,) = con.execute(
        "SELECT count(*) FROM store.AlertEvidence e ANTI JOIN store.AlertInfo i USING (AlertId)"
    ).fetchone()  # type: ignore[misc]
    assert unknown_alerts == 0
    # Evidence devices are tenant devices, so hunting joins with the Device tables work.
    (joined,) = con.execute(
        """
        SELECT count(*) FROM store.AlertEvidence e
        JOIN (SELECT DISTINCT DeviceId, DeviceName FROM store.DeviceInfo) d USING (DeviceId)
        WHERE e.EntityType = 'Machine' AND e.DeviceName = d.DeviceName
        """
    ).fetchone()  # type: ignore[misc]
    assert joined == _count(con, "AlertEvidence", "EntityType = 'Machine'") > 0


# ---- insert_rows -------------------------------------------------------------------------------


@pytest.fixture
def empty() -> duckdb.DuckDBPyConnection:
    con = duckdb_kql.connect()
    create_tables(con)
    return con


def test_insert_rows_appends_typed_rows(empty: duckdb.DuckDBPyConnection) -> None:
    rows = [
        {
            "Timestamp": "2026-11-20T08:43:35.5533333Z",
            "DeviceName": "ws-fin-01",
            "ActionType": "ProcessCreated",
            "FileName": "cmd.exe",
            "ProcessId": 4242,
            "IsProcessRemoteSession": "true",
            "AdditionalFields": {"Role": "admin", "Score": 60},
        },
        {"Timestamp": datetime(2026, 11, 20, 9, 0), "FileName": "powershell.exe", "ProcessId": "17"},
    ]
    assert insert_rows(empty, "DeviceProcessEvents", rows) == 2
    result = empty.execute(
        'SELECT "Timestamp", DeviceName, FileName, ProcessId, IsProcessRemoteSession, AdditionalFields, SHA256 '
        "FROM store.DeviceProcessEvents ORDER BY rowid"
    ).fetchall()
    assert result[0][0] == datetime(2026, 11, 20, 8, 43, 35, 553333, tzinfo=UTC)
    assert result[0][1:5] == ("ws-fin-01", "cmd.exe", 4242, True)
    assert result[0][5] == '{"Role": "admin", "Score": 60}'
    assert result[0][6] is None
    assert result[1][0] == datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
    assert result[1][1] is None
    assert result[1][3] == 17


def test_insert_rows_stores_dynamic_values_as_json(empty: duckdb.DuckDBPyConnection) -> None:
    rows: list[dict[str, Any]] = [
        {"AccountUpn": "a@contoso.com", "Tags": ["vip"], "AssignedRoles": '["Security Reader"]'},
        {"AccountUpn": "b@contoso.com", "Tags": "not json"},
    ]
    insert_rows(empty, "IdentityInfo", rows)
    stored = empty.execute(
        "SELECT Tags::VARCHAR, AssignedRoles::VARCHAR FROM store.IdentityInfo ORDER BY rowid"
    ).fetchall()
    assert stored == [('["vip"]', '["Security Reader"]'), ('"not json"', None)]


def test_insert_rows_with_nothing_adds_nothing(empty: duckdb.DuckDBPyConnection) -> None:
    assert insert_rows(empty, "AlertInfo", []) == 0
    assert insert_rows(empty, "AlertInfo", [{}]) == 1
    assert _count(empty, "AlertInfo") == 1


@pytest.mark.parametrize(
    ("table", "rows", "message"),
    [
        ("DeviceProcessEvent", [{"FileName": "x"}], "unknown table 'DeviceProcessEvent'"),
        ("DeviceProcessEvents", [{"FileNam": "x"}], "unknown column 'FileNam' in table DeviceProcessEvents"),
        ("DeviceNetworkEvents", [{"RemotePort": "https"}], r"DeviceNetworkEvents\.RemotePort"),
        ("DeviceNetworkEvents", [{"Timestamp": "yesterday"}], r"DeviceNetworkEvents\.Timestamp"),
        ("DeviceLogonEvents", [{"IsLocalAdmin": "maybe"}], r"DeviceLogonEvents\.IsLocalAdmin"),
        ("AlertInfo", ["not a row"], "row 0 .*not an object"),
    ],
)
def test_insert_rows_refuses_bad_input(
    empty: duckdb.DuckDBPyConnection, table: str, rows: list[Any], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        insert_rows(empty, table, rows)
    if table in table_schemas():
        assert _count(empty, table) == 0
