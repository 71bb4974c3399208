"""UpdateIncidentOperator, AddIncidentCommentOperator and the portal link against the emulator."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from airflow_provider_mtp.comment_markers import comment_marker, marker_key
from airflow_provider_mtp.emulator import DefenderEmulator
from airflow_provider_mtp.errors import MTPConfigError, MTPError, MTPServiceError
from airflow_provider_mtp.hooks.mtp import MTPHook
from airflow_provider_mtp.links import INCIDENT_URL_XCOM_KEY, DefenderIncidentLink
from airflow_provider_mtp.operators.incidents import AddIncidentCommentOperator, UpdateIncidentOperator
from tests.integration.write_operator_checks import (
    FakeTime,
    comments_after,
    comments_with,
    context,
    fresh_emulator,
    late_comment_cases,
    load_dag,
    marker_of,
    on_fake_time,
    task_instances,
    use_back_end,
    use_timeout,
    xcom,
)

PORTAL = "https://security.microsoft.com/incidents"


@pytest.fixture
def emulator(
    defender_emulator: DefenderEmulator, airflow_db: None, monkeypatch: pytest.MonkeyPatch
) -> DefenderEmulator:
    return fresh_emulator(defender_emulator, monkeypatch)


def fetch(incident_id: str) -> dict[str, Any]:
    return MTPHook().get_incident(incident_id, include_alerts=False)


# dag.test ----------------------------------------------------------------------------------------


def test_operators_and_link_in_a_dag_fed_by_the_sensor(emulator: DefenderEmulator) -> None:
    target = emulator.put_incidents({"displayName": "to triage", "customTags": ["existing", "Airflow"]})[0]
    found = emulator.put_incidents(
        {"displayName": "seen 1", "customTags": ["triage"], "lastUpdateDateTime": "2026-06-01T00:10:00Z"},
        {"displayName": "seen 2", "customTags": ["triage"], "lastUpdateDateTime": "2026-06-01T00:20:00Z"},
    )
    conf = {
        "incident_id": target["id"],
        "tag": "ir-42",
        "start": "2026-06-01T00:00:00Z",
        "end": "2026-06-01T01:00:00Z",
    }

    run = load_dag("incidents_operators").test(run_conf=conf)

    assert {(ti.task_id, ti.map_index): str(ti.state) for ti in task_instances(run)} == {
        ("update", -1): "success",
        ("found", -1): "success",
        ("comment", 0): "success",
        ("comment", 1): "success",
    }
    updated = fetch(target["id"])
    assert updated["status"] == "inProgress"
    assert updated["assignedTo"] == "soc@contoso.com"
    assert (updated["classification"], updated["determination"]) == ("truePositive", "malware")
    assert updated["customTags"] == ["existing", "Airflow", "ir-42"], "merged, not replaced (any case)"
    marker = marker_of("incidents_operators", "update", run.run_id, target["id"])
    assert marker.startswith(f"[airflow:incidents_operators/update/{run.run_id}#-1 ")
    assert comments_with(updated, marker) == [f"Triaged by incidents_operators {marker}"]

    summary = xcom(run, "update")
    assert summary["id"] == target["id"]
    assert summary["status"] == "inProgress"
    assert summary["last_update"] == updated["lastUpdateDateTime"]
    url = f"{PORTAL}/{target['id']}?tid={emulator.tenant_id}"
    assert xcom(run, "update", key=INCIDENT_URL_XCOM_KEY) == url
    # What the UI shows: the worker stored get_link()'s answer under the link's own key.
    assert xcom(run, "update", key=DefenderIncidentLink().xcom_key) == url

    # The sensor's summaries fed the mapped comment operator, one marker per map index.
    for index, incident in enumerate(found):
        marker = marker_of("incidents_operators", "comment", run.run_id, incident["id"], index)
        assert comments_with(fetch(incident["id"]), marker) == [f"Seen by Airflow {marker}"]
        assert xcom(run, "comment", map_index=index)["id"] == incident["id"]
        assert xcom(run, "comment", key=DefenderIncidentLink().xcom_key, map_index=index).endswith(
            f"/incidents/{incident['id']}?tid={emulator.tenant_id}"
        )


@pytest.mark.parametrize("api", ["graph", "legacy"])
def test_a_retried_update_posts_its_comment_once(
    emulator: DefenderEmulator, monkeypatch: pytest.MonkeyPatch, api: str
) -> None:
    use_back_end(emulator, monkeypatch, api)
    incident = emulator.put_incidents({"displayName": "retry me"})[0]

    run = load_dag("incidents_operator_retry").test(run_conf={"incident_id": incident["id"]})

    (ti,) = task_instances(run)
    assert (str(ti.state), ti.try_number) == ("success", 2), "try 1 crashed after the comment; try 2 passed"
    after = fetch(incident["id"])
    marker = marker_of("incidents_operator_retry", "resolve", run.run_id, incident["id"])
    assert comments_with(after, marker) == [f"Closed by Airflow {marker}"]
    assert (after["status"], after["classification"], after["determination"]) == (
        "resolved",
        "falsePositive",
        "clean",
    )
    requests = emulator.stats()["requests"]
    if api == "graph":
        assert requests["POST /v1.0/security/incidents/{incident_id}/comments"] == {"200": 1}
        assert requests["PATCH /v1.0/security/incidents/{incident_id}"] == {"200": 2}
    else:
        # The legacy API adds comments through the PATCH: one with the comment, one without.
        assert requests["PATCH /api/incidents/{incident_id}"] == {"200": 2}


# Direct calls -------------------------------------------------------------------------------------


def test_the_same_task_instance_comments_once_another_run_again(emulator: DefenderEmulator) -> None:
    incident = emulator.put_incidents({"displayName": "twice"})[0]
    operator = AddIncidentCommentOperator(task_id="op", incident_id=incident["id"], comment="hello")
    first = context()
    operator.execute(first)  # type: ignore[arg-type]
    operator.execute(context())  # type: ignore[arg-type]
    operator.execute(context(run_id="manual__2"))  # type: ignore[arg-type]
    comments = [c["comment"] for c in fetch(incident["id"])["comments"]]
    assert comments == [
        f"hello {marker_of('d', 'op', 'manual__1', incident['id'])}",
        f"hello {marker_of('d', 'op', 'manual__2', incident['id'])}",
    ]
    assert first["ti"].pushed == {
        INCIDENT_URL_XCOM_KEY: f"{PORTAL}/{incident['id']}?tid={emulator.tenant_id}"
    }


def test_tags_replace_unless_add_tags(emulator: DefenderEmulator) -> None:
    incident = emulator.put_incidents({"customTags": ["a", "b"]})[0]
    UpdateIncidentOperator(task_id="op", incident_id=incident["id"], tags=["b", "c"]).execute(context())  # type: ignore[arg-type]
    assert fetch(incident["id"])["customTags"] == ["b", "c"]
    summary = UpdateIncidentOperator(
        task_id="op", incident_id=incident["id"], tags="D", add_tags=True, assigned_to=""
    ).execute(context())  # type: ignore[arg-type]
    after = fetch(incident["id"])
    assert after["customTags"] == ["b", "c", "D"]
    assert after["assignedTo"] in (None, "")
    assert summary["last_update"] == after["lastUpdateDateTime"]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"status": "closed"}, "Invalid incident status 'closed'"),
        ({"classification": "maybe", "comment": "x"}, "Invalid classification 'maybe'"),
        ({"determination": "aliens"}, "Invalid determination 'aliens'"),
        ({"tags": [1, 2]}, "tags must be a list of strings"),
        ({"comment": "   "}, "nothing to do"),
        ({}, "nothing to do"),
        ({"incident_id": "", "status": "active"}, "incident_id must name an incident"),
    ],
)
def test_values_are_checked_before_any_call(
    emulator: DefenderEmulator, kwargs: dict[str, Any], match: str
) -> None:
    kwargs.setdefault("incident_id", "1001")
    with pytest.raises(MTPConfigError, match=match):
        UpdateIncidentOperator(task_id="op", **kwargs).execute(context())  # type: ignore[arg-type]
    assert emulator.stats()["requests"] == {}


def test_templated_fields_and_link_are_declared() -> None:
    assert UpdateIncidentOperator.template_fields == (
        "incident_id",
        "status",
        "assigned_to",
        "classification",
        "determination",
        "tags",
        "comment",
        "mtp_conn_id",
    )
    assert AddIncidentCommentOperator.template_fields == UpdateIncidentOperator.template_fields
    (link,) = UpdateIncidentOperator.operator_extra_links
    assert isinstance(link, DefenderIncidentLink)
    assert link.name == "Defender incident"


# A comment the service applies late ----------------------------------------------------------------

#: The write each back end adds a comment with.
COMMENT_WRITES = {
    "graph": (
        "POST",
        "/v1.0/security/incidents/*/comments",
        "POST /v1.0/security/incidents/{incident_id}/comments",
    ),
    "legacy": ("PATCH", "/api/incidents/*", "PATCH /api/incidents/{incident_id}"),
}


@pytest.mark.parametrize("api", ["graph", "legacy"])
@late_comment_cases
def test_a_comment_applied_after_the_client_gave_up_is_on_the_incident_once(
    emulator: DefenderEmulator,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    api: str,
    dag_attr: str,
    apply_after_s: float,
) -> None:
    """Issue 8, Must show 5: the write times out (1 s), the service applies it 2-2.5 s after it
    arrived, ``retries=1`` with ``retry_delay=0``. Before, the retry read the incident before the
    late comment landed and posted a second one. Now the first try re-reads instead of writing
    again; with a short re-reading period (1 s) it fails and the retry re-reads before posting."""
    use_back_end(emulator, monkeypatch, api)
    use_timeout(monkeypatch, 1.0)
    method, path, route = COMMENT_WRITES[api]
    emulator.inject_fault(path=path, method=method, kind="late", apply_after_s=apply_after_s)
    incident = emulator.put_incidents({"displayName": "late comment"})[0]

    run = load_dag("incidents_operator_late_comment", dag_attr).test(run_conf={"incident_id": incident["id"]})

    (ti,) = task_instances(run)
    marker = marker_of(run.dag_id, "resolve", run.run_id, incident["id"])
    graph = MTPHook(api="graph")
    comments = comments_after(
        apply_after_s, lambda: graph.get_incident(incident["id"], include_alerts=False), marker
    )
    writes = emulator.stats()["requests"][route]
    after = fetch(incident["id"])
    with capsys.disabled():
        print(
            f"\n[late comment, {api}, {dag_attr}] task {ti.state} after try {ti.try_number}; "
            f"marked comments on the incident: {len(comments)}; comment writes: {writes}"
        )
    assert str(ti.state) == "success"
    assert comments == [f"Closed by Airflow {marker}"]
    assert after["status"] == "resolved"
    # One write with the comment, held until the client gave up (499), and never sent again. The
    # legacy retry then sends its field changes alone (a PATCH without comment: the 200).
    retried_fields = api == "legacy" and ti.try_number == 2
    assert writes == ({"499": 1, "200": 1} if retried_fields else {"499": 1})


# Re-reading instead of writing again, on a fake clock ------------------------------------------------


def commenting(incident_id: str, fake: FakeTime, **kwargs: Any) -> AddIncidentCommentOperator:
    operator = AddIncidentCommentOperator(task_id="op", incident_id=incident_id, comment="hello", **kwargs)
    return on_fake_time(operator, fake)


def comment_writes(emulator: DefenderEmulator, api: str) -> dict[str, int]:
    return dict(emulator.stats()["requests"].get(COMMENT_WRITES[api][2], {}))


def fail_next_comment_write(emulator: DefenderEmulator, api: str, status: int) -> None:
    """A status fault answers before the route runs: the service surely did NOT apply this write."""
    method, path, _ = COMMENT_WRITES[api]
    emulator.inject_fault(path=path, method=method, status=status)


@pytest.mark.parametrize("api", ["graph", "legacy"])
def test_after_an_unknown_outcome_the_operator_rereads_and_finds_the_late_comment(
    emulator: DefenderEmulator, monkeypatch: pytest.MonkeyPatch, api: str
) -> None:
    """A 504 on the comment write: the operator re-reads instead of writing again; the comment
    "arrives" (the test posts it, as the service would apply it late) after the third re-read."""
    use_back_end(emulator, monkeypatch, api)
    incident = emulator.put_incidents({"displayName": "unknown outcome"})[0]
    marker = marker_of("d", "op", "manual__1", incident["id"])
    fail_next_comment_write(emulator, api, 504)

    def late_apply(sleeps: int) -> None:
        if sleeps == 3:
            MTPHook().add_incident_comment(incident["id"], f"hello {marker}")

    fake = FakeTime(late_apply)
    summary = commenting(incident["id"], fake).execute(context())  # type: ignore[arg-type]

    assert summary["id"] == incident["id"]
    assert fake.sleeps == [10.0, 10.0, 10.0], "re-read every 10 s until the marker showed up"
    assert comments_with(fetch(incident["id"]), marker) == [f"hello {marker}"]
    assert comment_writes(emulator, api) == {"504": 1, "200": 1}, "the 200 is the late apply, not a retry"


@pytest.mark.parametrize("api", ["graph", "legacy"])
def test_after_an_unknown_outcome_with_no_comment_the_try_fails_without_writing_again(
    emulator: DefenderEmulator, monkeypatch: pytest.MonkeyPatch, api: str
) -> None:
    use_back_end(emulator, monkeypatch, api)
    incident = emulator.put_incidents({"displayName": "never arrives"})[0]
    fail_next_comment_write(emulator, api, 502)
    fake = FakeTime()

    with pytest.raises(
        MTPServiceError, match=r"did not appear in 6 re-reads over 60 s\. Nothing was sent again"
    ):
        commenting(incident["id"], fake).execute(context())  # type: ignore[arg-type]

    assert sum(fake.sleeps) == 60.0
    assert comment_writes(emulator, api) == {"502": 1}
    assert fetch(incident["id"])["comments"] == []


def test_a_refused_comment_write_is_not_waited_on(emulator: DefenderEmulator) -> None:
    """A 400 says the service did not act: the error is raised at once, with no re-reading."""
    incident = emulator.put_incidents({"displayName": "refused"})[0]
    fail_next_comment_write(emulator, "graph", 400)
    fake = FakeTime()

    with pytest.raises(MTPError, match="rejected the request"):
        commenting(incident["id"], fake).execute(context())  # type: ignore[arg-type]

    assert fake.sleeps == []
    assert comment_writes(emulator, "graph") == {"400": 1}


def test_a_retry_rereads_for_the_settle_period_before_it_posts(emulator: DefenderEmulator) -> None:
    incident = emulator.put_incidents({"displayName": "retry posts"})[0]
    marker = marker_of("d", "op", "manual__1", incident["id"])
    fake = FakeTime()

    commenting(incident["id"], fake, comment_settle_seconds=5, comment_settle_interval=2).execute(
        context(try_number=2)  # type: ignore[arg-type]
    )

    assert fake.sleeps == [2.0, 2.0, 1.0], "three re-reads over 5 s, then the post"
    assert comments_with(fetch(incident["id"]), marker) == [f"hello {marker}"]
    assert comment_writes(emulator, "graph") == {"200": 1}


def test_a_retry_that_sees_the_earlier_tries_comment_arrive_does_not_post(emulator: DefenderEmulator) -> None:
    incident = emulator.put_incidents({"displayName": "retry sees it"})[0]
    marker = marker_of("d", "op", "manual__1", incident["id"])

    def late_apply(sleeps: int) -> None:
        if sleeps == 2:
            MTPHook().add_incident_comment(incident["id"], f"hello {marker}")

    fake = FakeTime(late_apply)
    commenting(incident["id"], fake).execute(context(try_number=3))  # type: ignore[arg-type]

    assert fake.sleeps == [10.0, 10.0]
    assert comments_with(fetch(incident["id"]), marker) == [f"hello {marker}"]
    assert comment_writes(emulator, "graph") == {"200": 1}, "only the late apply the test made"


# Nobody else can suppress the comment -----------------------------------------------------------------


def test_a_marker_posted_first_by_someone_else_does_not_suppress_the_comment(
    emulator: DefenderEmulator,
) -> None:
    """Another user posts the old predictable marker, and the new format computed with a guessed
    key, before the task runs: the task still posts its own comment, once."""
    incident = emulator.put_incidents({"displayName": "pre-empted"})[0]
    settings = MTPHook().settings
    guessed_key = marker_key(dataclasses.replace(settings, client_secret="a guess"))
    forged = [
        "hello [airflow:d/op/manual__1#-1]",
        "hello "
        + comment_marker(
            guessed_key,
            dag_id="d",
            task_id="op",
            run_id="manual__1",
            map_index=-1,
            incident_id=incident["id"],
        ),
    ]
    for text in forged:
        MTPHook().add_incident_comment(incident["id"], text)
    marker = marker_of("d", "op", "manual__1", incident["id"])
    assert all(marker not in text for text in forged)

    AddIncidentCommentOperator(task_id="op", incident_id=incident["id"], comment="hello").execute(context())  # type: ignore[arg-type]

    comments = [c["comment"] for c in fetch(incident["id"])["comments"]]
    assert comments == [*forged, f"hello {marker}"]
