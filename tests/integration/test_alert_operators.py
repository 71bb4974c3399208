"""UpdateAlertOperator, AddAlertCommentOperator and the "Defender alert" link against the emulator;
the evidence helper on the emulator's alerts through both back ends."""

from __future__ import annotations

from typing import Any

import pytest

from airflow_provider_mtp.emulator import DefenderEmulator
from airflow_provider_mtp.errors import MTPConfigError, MTPServiceError
from airflow_provider_mtp.evidence import evidence_of
from airflow_provider_mtp.hooks.mtp import MTPHook
from airflow_provider_mtp.links import ALERT_URL_XCOM_KEY, DefenderAlertLink
from airflow_provider_mtp.operators.alerts import AddAlertCommentOperator, UpdateAlertOperator
from tests.integration import write_operator_checks as checks

PORTAL = "https://security.microsoft.com/alerts"
COMMENTS_ROUTE = "POST /v1.0/security/alerts_v2/{alert_id}/comments"
PATCH_ROUTE = "PATCH /v1.0/security/alerts_v2/{alert_id}"
COMMENTS_PATH = "/v1.0/security/alerts_v2/*/comments"


@pytest.fixture
def emulator(
    defender_emulator: DefenderEmulator, airflow_db: None, monkeypatch: pytest.MonkeyPatch
) -> DefenderEmulator:
    return checks.fresh_emulator(defender_emulator, monkeypatch)


def put_alerts(emulator: DefenderEmulator, *alerts: dict[str, Any]) -> list[dict[str, Any]]:
    """Create alerts (Graph shape) through the emulator's admin route; each without ``incidentId``
    gets an incident of its own."""
    reply = emulator.session.post(f"{emulator.url}/_emulator/alerts", json=list(alerts), timeout=60)
    reply.raise_for_status()
    created: list[dict[str, Any]] = reply.json()["value"]
    return created


def fetch(alert_id: str) -> dict[str, Any]:
    return MTPHook().get_alert(alert_id)


def embedded(alert: dict[str, Any]) -> dict[str, Any]:
    """The alert as its incident embeds it (``get_incident(..., include_alerts=True)``)."""
    incident = MTPHook().get_incident(alert["incidentId"], include_alerts=True)
    (found,) = [item for item in incident["alerts"] if item["id"] == alert["id"]]
    return found


def requests_to(emulator: DefenderEmulator, route: str) -> dict[str, int]:
    return dict(emulator.stats()["requests"].get(route, {}))


# dag.test ----------------------------------------------------------------------------------------


def test_operators_and_link_in_a_dag_fed_by_the_alert_sensor(emulator: DefenderEmulator) -> None:
    (target,) = put_alerts(emulator, {"title": "to triage"})
    first = put_alerts(emulator, {"title": "seen 1", "lastUpdateDateTime": "2026-06-01T00:10:00Z"})[0]
    second = put_alerts(
        emulator,
        {"title": "seen 2", "incidentId": first["incidentId"], "lastUpdateDateTime": "2026-06-01T00:20:00Z"},
    )[0]
    conf = {
        "alert_id": target["id"],
        "owner": "soc@contoso.com",
        "incident_id": first["incidentId"],
        "start": "2026-06-01T00:00:00Z",
        "end": "2026-06-01T01:00:00Z",
    }

    run = checks.load_dag("alerts_operators").test(run_conf=conf)

    assert {(ti.task_id, ti.map_index): str(ti.state) for ti in checks.task_instances(run)} == {
        ("update", -1): "success",
        ("found", -1): "success",
        ("comment", 0): "success",
        ("comment", 1): "success",
        ("classify", 0): "success",
        ("classify", 1): "success",
    }
    updated = fetch(target["id"])
    marker = checks.marker_of("alerts_operators", "update", run.run_id, target["id"])
    assert marker.startswith(f"[airflow:alerts_operators/update/{run.run_id}#-1 ")
    # The same alert through alerts_v2 and through its incident: one store, one state.
    for view in (updated, embedded(target)):
        assert (view["status"], view["assignedTo"]) == ("inProgress", "soc@contoso.com")
        assert (view["classification"], view["determination"]) == ("truePositive", "malware")
        assert checks.comments_with(view, marker) == [f"Triaged by alerts_operators {marker}"]

    summary = checks.xcom(run, "update")
    assert summary["id"] == target["id"]
    assert summary["incidentId"] == target["incidentId"]
    assert (summary["status"], summary["classification"]) == ("inProgress", "truePositive")
    assert summary["lastUpdateDateTime"] == updated["lastUpdateDateTime"]
    assert not {"evidence", "comments"} & set(summary), "a summary, not the whole alert"
    url = f"{PORTAL}/{target['id']}?tid={emulator.tenant_id}"
    assert url == target["alertWebUrl"] == summary["alertWebUrl"]
    assert checks.xcom(run, "update", key=ALERT_URL_XCOM_KEY) == url
    # What the UI shows: the worker stored get_link()'s answer under the link's own key.
    assert checks.xcom(run, "update", key=DefenderAlertLink().xcom_key) == url

    # The sensor's summaries fed the mapped operators, one marker per map index.
    for index, alert in enumerate((first, second)):
        marker = checks.marker_of("alerts_operators", "comment", run.run_id, alert["id"], index)
        after = fetch(alert["id"])
        assert checks.comments_with(after, marker) == [f"Seen by Airflow {marker}"]
        assert (after["classification"], after["determination"]) == ("falsePositive", "clean")
        assert checks.xcom(run, "comment", map_index=index)["id"] == alert["id"]
        assert (
            checks.xcom(run, "classify", key=DefenderAlertLink().xcom_key, map_index=index)
            == alert["alertWebUrl"]
        )


def test_a_retried_update_posts_its_comment_once(emulator: DefenderEmulator) -> None:
    (alert,) = put_alerts(emulator, {"title": "retry me"})

    run = checks.load_dag("alerts_operator_retry").test(run_conf={"alert_id": alert["id"]})

    (ti,) = checks.task_instances(run)
    assert (str(ti.state), ti.try_number) == ("success", 2), "try 1 crashed after the comment; try 2 passed"
    after = fetch(alert["id"])
    marker = checks.marker_of("alerts_operator_retry", "resolve", run.run_id, alert["id"])
    assert checks.comments_with(after, marker) == [f"Closed by Airflow {marker}"]
    assert (after["status"], after["classification"], after["determination"]) == (
        "resolved",
        "falsePositive",
        "clean",
    )
    assert requests_to(emulator, COMMENTS_ROUTE) == {"200": 1}
    assert requests_to(emulator, PATCH_ROUTE) == {"200": 2}, "the field changes, sent again: harmless"


@checks.late_comment_cases
def test_a_comment_whose_reply_was_lost_is_on_the_alert_once(
    emulator: DefenderEmulator,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    dag_attr: str,
    apply_after_s: float,
) -> None:
    """The comment POST times out (1 s) and the service applies it 2-2.5 s after it arrived, with
    ``retries=1`` and ``retry_delay=0``: the try re-reads instead of posting again, and with a
    short re-reading period (1 s) the retry re-reads before it posts."""
    checks.use_timeout(monkeypatch, 1.0)
    emulator.inject_fault(path=COMMENTS_PATH, method="POST", kind="late", apply_after_s=apply_after_s)
    (alert,) = put_alerts(emulator, {"title": "late comment"})

    run = checks.load_dag("alerts_operator_late_comment", dag_attr).test(run_conf={"alert_id": alert["id"]})

    (ti,) = checks.task_instances(run)
    marker = checks.marker_of(run.dag_id, "resolve", run.run_id, alert["id"])
    comments = checks.comments_after(apply_after_s, lambda: fetch(alert["id"]), marker)
    writes = requests_to(emulator, COMMENTS_ROUTE)
    with capsys.disabled():
        print(
            f"\n[late alert comment, {dag_attr}] task {ti.state} after try {ti.try_number}; "
            f"marked comments on the alert: {len(comments)}; comment writes: {writes}"
        )
    assert str(ti.state) == "success"
    assert comments == [f"Closed by Airflow {marker}"]
    assert fetch(alert["id"])["status"] == "resolved"
    assert writes == {"499": 1}, "one comment write, held until the client gave up, never sent again"


# The legacy API cannot write alerts ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("operator_class", "kwargs", "action"),
    [
        (UpdateAlertOperator, {"status": "resolved", "comment": "done"}, "update"),
        (AddAlertCommentOperator, {"comment": "hello"}, "comment on"),
    ],
    ids=["update", "comment"],
)
def test_on_the_legacy_api_the_operators_fail_before_any_call(
    emulator: DefenderEmulator,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    operator_class: type[UpdateAlertOperator],
    kwargs: dict[str, Any],
    action: str,
) -> None:
    operator = operator_class(task_id="op", alert_id="da1", **kwargs)
    checks.use_back_end(emulator, monkeypatch, "legacy")
    ctx = checks.context()

    with pytest.raises(MTPConfigError) as caught:
        operator.execute(ctx)  # type: ignore[arg-type]

    message = str(caught.value)
    with capsys.disabled():
        print(f"\n[legacy alert {action}] {message}")
    assert message.startswith(f"op: The legacy MTP API cannot {action} an alert")
    assert "set the connection's extra 'api' to 'graph' (or pass api='graph'" in message
    assert emulator.stats()["requests"] == {}, "refused before any call (not even a token request)"
    assert ctx["ti"].pushed == {}, "no link to an alert nothing was done to"


def test_api_graph_on_the_operator_overrides_a_legacy_connection(
    emulator: DefenderEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    checks.use_back_end(emulator, monkeypatch, "legacy")
    (alert,) = put_alerts(emulator, {"title": "graph wins"})
    operator = UpdateAlertOperator(task_id="op", alert_id=alert["id"], status="inProgress", api="graph")
    assert operator.execute(checks.context())["status"] == "inProgress"  # type: ignore[arg-type]


# Values and declarations ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"status": "closed"}, "op: status: Invalid alert status 'closed'"),
        ({"status": "redirected", "comment": "x"}, "Invalid alert status 'redirected'"),
        ({"classification": "maybe"}, "op: classification: Invalid classification 'maybe'"),
        ({"determination": "aliens"}, "Invalid determination 'aliens'"),
        ({"assigned_to": 7}, "assigned_to must be a string"),
        ({"comment": "   "}, "op: nothing to do for alert da1: give a field to change or a comment."),
        ({"comment": "A" * 30_001}, "op: comment has 30,001 characters; a comment may have at most 30,000."),
        ({"comment": 5}, "comment must be a string"),
        ({}, "nothing to do"),
        ({"alert_id": "", "status": "new"}, "alert_id must name an alert, got ''"),
        ({"alert_id": None, "status": "new"}, "alert_id must name an alert, got None"),
        ({"status": "new", "comment": "x", "comment_settle_seconds": -1}, "comment_settle_seconds is -1"),
    ],
)
def test_values_are_checked_before_any_call(
    emulator: DefenderEmulator, kwargs: dict[str, Any], match: str
) -> None:
    kwargs.setdefault("alert_id", "da1")
    with pytest.raises(MTPConfigError) as caught:
        UpdateAlertOperator(task_id="op", **kwargs).execute(checks.context())  # type: ignore[arg-type]
    assert match in str(caught.value)
    assert emulator.stats()["requests"] == {}


def test_either_spelling_and_the_enums_are_accepted(emulator: DefenderEmulator) -> None:
    from airflow_provider_mtp.enums import AlertStatus, Classification, Determination

    (alert,) = put_alerts(emulator, {"title": "spellings"})
    UpdateAlertOperator(
        task_id="op", alert_id=alert["id"], status="InProgress", classification="TruePositive"
    ).execute(checks.context())  # type: ignore[arg-type]
    summary = UpdateAlertOperator(
        task_id="op",
        alert_id=alert["id"],
        status=AlertStatus.RESOLVED,
        classification=Classification.INFORMATIONAL_EXPECTED_ACTIVITY,
        determination=Determination.SECURITY_TESTING,
        assigned_to="",
    ).execute(checks.context())  # type: ignore[arg-type]
    after = fetch(alert["id"])
    assert (after["status"], after["classification"], after["determination"]) == (
        "resolved",
        "informationalExpectedActivity",
        "securityTesting",
    )
    assert after["assignedTo"] in (None, "")
    assert summary["lastUpdateDateTime"] == after["lastUpdateDateTime"]


def test_templated_fields_and_link_are_declared() -> None:
    assert UpdateAlertOperator.template_fields == (
        "alert_id",
        "status",
        "classification",
        "determination",
        "assigned_to",
        "comment",
        "mtp_conn_id",
    )
    assert AddAlertCommentOperator.template_fields == UpdateAlertOperator.template_fields
    (link,) = UpdateAlertOperator.operator_extra_links
    assert isinstance(link, DefenderAlertLink)
    assert link.name == "Defender alert"


# Re-reading instead of writing again, on a fake clock ------------------------------------------------


def commenting(alert_id: str, fake: checks.FakeTime, **kwargs: Any) -> AddAlertCommentOperator:
    operator = AddAlertCommentOperator(task_id="op", alert_id=alert_id, comment="hello", **kwargs)
    return checks.on_fake_time(operator, fake)


def test_the_same_task_instance_comments_once_another_run_again(emulator: DefenderEmulator) -> None:
    (alert,) = put_alerts(emulator, {"title": "twice"})
    first = checks.context()
    AddAlertCommentOperator(task_id="op", alert_id=alert["id"], comment="hello").execute(first)  # type: ignore[arg-type]
    commenting(alert["id"], checks.FakeTime(), comment_settle_seconds=0).execute(checks.context(try_number=2))  # type: ignore[arg-type]
    AddAlertCommentOperator(task_id="op", alert_id=alert["id"], comment="hello").execute(
        checks.context(run_id="manual__2")  # type: ignore[arg-type]
    )
    assert [c["comment"] for c in fetch(alert["id"])["comments"]] == [
        f"hello {checks.marker_of('d', 'op', 'manual__1', alert['id'])}",
        f"hello {checks.marker_of('d', 'op', 'manual__2', alert['id'])}",
    ]
    assert first["ti"].pushed == {ALERT_URL_XCOM_KEY: alert["alertWebUrl"]}


def test_after_an_unknown_outcome_the_operator_rereads_and_finds_the_late_comment(
    emulator: DefenderEmulator,
) -> None:
    """A 504 on the comment POST: the operator re-reads instead of posting again; the comment
    "arrives" (the test posts it, as the service would apply it late) after the second re-read."""
    (alert,) = put_alerts(emulator, {"title": "unknown outcome"})
    marker = checks.marker_of("d", "op", "manual__1", alert["id"])
    emulator.inject_fault(path=COMMENTS_PATH, method="POST", status=504)

    def late_apply(sleeps: int) -> None:
        if sleeps == 2:
            MTPHook().add_alert_comment(alert["id"], f"hello {marker}")

    fake = checks.FakeTime(late_apply)
    summary = commenting(alert["id"], fake).execute(checks.context())  # type: ignore[arg-type]

    assert summary["id"] == alert["id"]
    assert fake.sleeps == [10.0, 10.0]
    assert checks.comments_with(fetch(alert["id"]), marker) == [f"hello {marker}"]
    assert requests_to(emulator, COMMENTS_ROUTE) == {"504": 1, "200": 1}, "the 200 is the late apply"


def test_after_an_unknown_outcome_with_no_comment_the_try_fails_without_posting_again(
    emulator: DefenderEmulator,
) -> None:
    (alert,) = put_alerts(emulator, {"title": "never arrives"})
    emulator.inject_fault(path=COMMENTS_PATH, method="POST", status=502)

    with pytest.raises(MTPServiceError, match=r"op: alert \S+: the write with the comment failed") as caught:
        commenting(alert["id"], checks.FakeTime(), comment_settle_seconds=20).execute(checks.context())  # type: ignore[arg-type]

    assert "did not appear in 2 re-reads over 20 s. Nothing was sent again" in str(caught.value)
    assert "re-reads the alert for up to 20 s before it posts" in str(caught.value)
    assert requests_to(emulator, COMMENTS_ROUTE) == {"502": 1}
    assert fetch(alert["id"])["comments"] == []


# Evidence ---------------------------------------------------------------------------------------------


def test_the_evidence_helper_reads_the_same_things_from_both_back_ends(
    emulator: DefenderEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The emulator's synthetic alerts, as Graph serves them and as the legacy API embeds them
    (devices and entities, mapped): the same devices, users, files and URLs."""
    incidents = MTPHook().list_incidents(created_from="2000-01-01T00:00:00Z")
    graph_incidents = [
        MTPHook().get_incident(item["id"], include_alerts=True) for item in list(incidents)[:10]
    ]
    checks.use_back_end(emulator, monkeypatch, "legacy")
    legacy_incidents = [MTPHook().get_incident(item["id"], include_alerts=True) for item in graph_incidents]

    from_graph, from_legacy = evidence_of(graph_incidents), evidence_of(legacy_incidents)

    assert all((from_graph.devices, from_graph.users, from_graph.files, from_graph.ips, from_graph.urls))
    # Compared as sorted lists: the legacy alert lists its devices before its entities, so a device
    # first named by a file's device id can come later there.
    assert sorted((d.mde_device_id, d.device_dns_name, d.host_name) for d in from_legacy.devices) == sorted(
        (d.mde_device_id, d.device_dns_name, d.host_name) for d in from_graph.devices
    )
    assert all(device.last_ip_address for device in from_graph.devices if device.device_dns_name)
    assert sorted(map(repr, from_legacy.users)) == sorted(map(repr, from_graph.users))
    assert sorted(map(repr, from_legacy.files)) == sorted(map(repr, from_graph.files))
    assert sorted(from_legacy.urls) == sorted(from_graph.urls)
    assert set(from_legacy.ips) <= set(from_graph.ips), "the legacy API drops a message's sender address"
    assert from_graph.other_kinds == []
