"""The alert enrichment example (``example_dags/mtp_alert_enrichment.py``) run with ``dag.test()`` against the emulator.

A few of the seeded tenant's new alerts on devices are stamped as updated inside the run's window
(``POST /_emulator/alerts``): one a detector alert the DAG's ``KNOWN_BENIGN`` table closes, the
others for the analyst. :class:`demo.analyst.Analyst` answers the reviews through the endpoint the
UI's form calls; the test then reads the alerts back from the emulator: one enrichment comment
each (a second run adds none), the benign one resolved as the table says, the analyst's choice
applied, and every hunt sent with the device as a bound parameter (the hunting link holds the exact
text sent). On the legacy API the run fails before any hunt, saying to use Graph.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_mtp.auth import clear_token_cache
from airflow_provider_mtp.emulator import DefenderEmulator
from airflow_provider_mtp.evidence import evidence_of
from airflow_provider_mtp.hooks.mtp import MTPHook
from airflow_provider_mtp.hunting_link import hunting_query_from_url
from airflow_provider_mtp.links import HUNTING_URL_XCOM_KEY
from airflow_provider_mtp.triage_review import LEAVE_FOR_LATER
from demo.analyst import Analyst, Review
from tests.conftest import TEST_NOW
from tests.integration.write_operator_checks import task_instances, xcom

#: The run's data interval: the hour before the tenant's data time.
INTERVAL_END = datetime.fromisoformat(TEST_NOW.replace("Z", "+00:00"))
INTERVAL_START = INTERVAL_END - timedelta(hours=1)
CHOICE = "True positive: malware"
#: A file name that Airflow would render as a template if it reached a template field unbroken.
HOSTILE = "{{ 7 * 7 }}.exe"
HOSTILE_RUNS = 20


@pytest.fixture(scope="module")
def example() -> Any:
    """The example DAG's module (its ``dag``, ``KNOWN_BENIGN``, ``DEVICE_ACTIVITY``...), through the
    tests' dags folder (``dag.test()`` serialises only DAGs found there)."""
    from tests.dags import example_alert_enrichment

    return example_alert_enrichment.example


@pytest.fixture
def emulator(
    defender_emulator: DefenderEmulator,
    airflow_db: None,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> DefenderEmulator:
    defender_emulator.reset()
    clear_token_cache()
    monkeypatch.setenv("AIRFLOW_CONN_MTP_DEFAULT", defender_emulator.airflow_conn)
    monkeypatch.setenv("MTP_OUTPUT_ROOT", tmp_path.as_uri())
    return defender_emulator


def stage_alerts(emulator: DefenderEmulator, example: Any, others: int = 2) -> tuple[str, list[str]]:
    """Stamp one known-benign and ``others`` other new alerts on devices as updated in the run's window.

    :return: the benign alert's id and the others' ids.
    """
    stamp = (INTERVAL_END - timedelta(minutes=20)).strftime("%Y-%m-%dT%H:%M:%S.0000000Z")
    candidates = [
        alert
        for alert in MTPHook().list_alerts(status="new", severity=["high", "medium"])
        if evidence_of(alert).device_names and alert["createdDateTime"] < stamp
    ]
    benign = [alert["id"] for alert in candidates if example.known_benign(alert)]
    rest = [alert["id"] for alert in candidates if not example.known_benign(alert)]
    assert benign, "the seeded tenant has no new alert that KNOWN_BENIGN closes"
    assert len(rest) >= others, "the seeded tenant has too few new alerts on devices"
    chosen = [benign[0], *rest[:others]]
    emulator.put_alerts(*({"id": alert_id, "lastUpdateDateTime": stamp} for alert_id in chosen))
    return benign[0], rest[:others]


def _choose(decided: str) -> Any:
    def choose(review: Review) -> str:
        return CHOICE if f"Alert {decided} " in review.subject else LEAVE_FOR_LATER

    return choose


def _ours(alert: dict[str, Any], prefix: str) -> list[str]:
    return [item["comment"] for item in alert.get("comments") or () if item["comment"].startswith(prefix)]


def test_alerts_are_hunted_commented_classified_and_reviewed(
    emulator: DefenderEmulator, example: Any
) -> None:
    benign, others = stage_alerts(emulator, example)
    decided = others[0]
    # A process whose name is a template, run often on the decided alert's device while it fired
    # (the most frequent process of its hunt, so the comment names it).
    alert = MTPHook().get_alert(decided)
    device = evidence_of(alert).device_names[0]
    started = datetime.fromisoformat(alert["createdDateTime"].replace("Z", "+00:00"))
    rows = [
        {"Timestamp": (started + timedelta(seconds=n)).isoformat(), "DeviceName": device, "FileName": HOSTILE}
        for n in range(HOSTILE_RUNS)
    ]
    assert emulator.load_rows("DeviceProcessEvents", rows) == HOSTILE_RUNS

    with Analyst("mtp_alert_enrichment", _choose(decided), user="alice") as analyst:
        run = example.dag.test(logical_date=INTERVAL_END)
    assert not analyst.errors, analyst.errors
    states = {(ti.task_id, ti.map_index): str(ti.state) for ti in task_instances(run)}
    assert str(run.state) == "success", states
    assert (run.data_interval_start, run.data_interval_end) == (INTERVAL_START, INTERVAL_END)

    targets = xcom(run, "find_devices")
    enriched = [target["alert_id"] for target in targets]
    assert {benign, *others} <= set(enriched), enriched
    hook = MTPHook()
    for index, target in enumerate(targets):
        alert = hook.get_alert(target["alert_id"])
        # One enrichment comment per alert, with the run's marker.
        (comment,) = _ours(alert, example.COMMENT_PREFIX)
        assert f"/update_alert/{run.run_id}#{index}" in comment
        assert f" events on {target['device']}, " in comment
        # The hunt: the device reached KQL only as a bound parameter, before the unchanged query.
        sent = hunting_query_from_url(xcom(run, "device_activity", key=HUNTING_URL_XCOM_KEY, map_index=index))
        assert sent.startswith(f'let device = "{target["device"]}";\nlet WindowStart = datetime(')
        assert sent.endswith(example.DEVICE_ACTIVITY.strip()) or sent.endswith(example.DEVICE_ACTIVITY)
        assert target["device"] not in example.DEVICE_ACTIVITY

    # The hostile file name reached Defender as text, never rendered.
    (decided_comment,) = _ours(hook.get_alert(decided), example.COMMENT_PREFIX)
    assert f"processes: {{\u200b{{ 7 * 7 }}}}.exe ({HOSTILE_RUNS})" in decided_comment
    assert "49.exe" not in decided_comment

    # The known-benign alert is closed as the table says, without a review.
    closed = hook.get_alert(benign)
    rule = example.known_benign(closed)
    assert (closed["status"], closed["classification"], closed["determination"]) == (
        "resolved",
        "informationalExpectedActivity",
        rule.determination.value,
    )
    assert rule.reason in _ours(closed, example.COMMENT_PREFIX)[0]
    reviewed = {answer.review.subject.split(" ")[1] for answer in analyst.answers}
    assert benign not in reviewed
    assert set(others) <= reviewed
    # The analyst's choice, exactly; "Leave for later" changed nothing.
    chosen = hook.get_alert(decided)
    assert (chosen["classification"], chosen["determination"]) == ("truePositive", "malware")
    assert any(
        "Airflow review: True positive: malware, chosen by alice." in item["comment"]
        for item in chosen["comments"]
    )
    left = hook.get_alert(others[1])
    assert (left["status"], left["classification"]) == ("new", "unknown")
    summary = xcom(run, "summary")
    assert summary["alerts"] == len(targets)
    assert summary["benign"] >= 1
    assert summary["classified"] == 1
    assert summary["reviewed"] == len(analyst.answers)

    # Our own updates moved the alerts into the next hour's window; its run enriches none again
    # (the benign ones are resolved, the others carry their comment) and asks nobody.
    with Analyst("mtp_alert_enrichment", _choose(decided)) as again:
        later = example.dag.test(logical_date=INTERVAL_END + timedelta(hours=1))
    assert not again.errors, again.errors
    assert str(later.state) == "success"
    assert set(others) <= {alert["id"] for alert in xcom(later, "wait_for_alerts")}
    assert xcom(later, "find_devices") == []
    for target in targets:
        assert len(_ours(hook.get_alert(target["alert_id"]), example.COMMENT_PREFIX)) == 1
    assert not again.answers


def test_a_legacy_connection_fails_before_any_hunt(
    emulator: DefenderEmulator,
    example: Any,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The legacy API lists alerts (through incidents) but cannot comment on or classify them."""
    conn = json.loads(emulator.airflow_conn)
    conn["extra"]["api"] = "legacy"
    monkeypatch.setenv("AIRFLOW_CONN_MTP_DEFAULT", json.dumps(conn))
    stage_alerts(emulator, example, others=1)

    run = example.dag.test(logical_date=INTERVAL_END)
    states = {(ti.task_id, ti.map_index): str(ti.state) for ti in task_instances(run)}
    assert str(run.state) == "failed"
    assert states[("wait_for_alerts", -1)] == "success"  # the legacy API lists alerts
    assert states[("find_devices", -1)] == "failed"
    assert all(state != "success" for (task_id, _), state in states.items() if task_id == "device_activity")
    routes = emulator.stats()["requests"]
    assert not [route for route in routes if "unting" in route], routes  # no hunt on either API
    output = capsys.readouterr()
    assert (
        "mtp_alert_enrichment comments on and classifies alerts, which only the Microsoft Graph security "
        "API can do, but the connection 'mtp_default' uses the legacy MTP API: set its extra 'api' to "
        "'graph'" in output.out + output.err
    )
