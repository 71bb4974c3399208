"""The analyst in the loop through ``dag.test()``: HITL reviews answered as the UI does, the choice applied.

``tests/dags/incidents_review.py`` asks one review per incident (``HITLOperator``, mapped) and
applies the answers with ``UpdateIncidentOperator``. ``dag.test()`` keeps the run alive while a
review waits; :class:`demo.analyst.Analyst` answers from a thread through the endpoint the UI's form
calls, and the test reads the incidents back from the emulator. The update's first try crashes
after its write (the reply lost, as far as Airflow knows) and is retried: the incident carries the
answer as chosen, with one comment.
"""

from __future__ import annotations

from typing import Any

import pytest

from airflow_provider_mtp.auth import clear_token_cache
from airflow_provider_mtp.emulator import DefenderEmulator
from airflow_provider_mtp.hooks.mtp import MTPHook
from airflow_provider_mtp.triage_review import LEAVE_FOR_LATER, review_options
from demo.analyst import Analyst, Review, answer, waiting_reviews
from tests.integration.test_incident_operators import load_dag, task_instances, xcom

HOSTILE_TITLE = "Fake <img src=x onerror=alert(1)> [click](https://evil.example/) {{ 7 * 7 }}"
CHOICE = "True positive: malware"


@pytest.fixture
def emulator(
    defender_emulator: DefenderEmulator, airflow_db: None, monkeypatch: pytest.MonkeyPatch
) -> DefenderEmulator:
    defender_emulator.reset()
    clear_token_cache()
    monkeypatch.setenv("AIRFLOW_CONN_MTP_DEFAULT", defender_emulator.airflow_conn)
    return defender_emulator


def _choose(reviews: dict[str, str]) -> Any:
    """The option per incident, by the incident id the review's subject names."""

    def choose(review: Review) -> str:
        assert review.options == tuple(review_options())
        return next(
            option for incident_id, option in reviews.items() if f"Incident {incident_id} " in review.subject
        )

    return choose


def test_reviews_answered_as_in_the_ui_are_applied_exactly(emulator: DefenderEmulator) -> None:
    decided, later = emulator.put_incidents(
        {"displayName": HOSTILE_TITLE, "classification": "unknown", "determination": "unknown"},
        {"displayName": "left for later", "classification": "unknown", "determination": "unknown"},
    )
    choices = {decided["id"]: CHOICE, later["id"]: LEAVE_FOR_LATER}
    conf = {"incident_ids": [decided["id"], later["id"]], "rows": 42}

    with Analyst("incidents_review", _choose(choices), user="alice") as analyst:
        run = load_dag("incidents_review").test(run_conf=conf)
    assert not analyst.errors, analyst.errors

    # Both reviews were asked and answered once each, with what the analyst saw.
    asked = {answer.review.map_index: answer for answer in analyst.answers}
    assert sorted(asked) == [0, 1]
    assert asked[0].option == CHOICE
    assert asked[1].option == LEAVE_FOR_LATER
    body = asked[0].review.body
    # The tenant's title is a code span (tests/unit/test_triage_review.py renders such bodies), and
    # Jinja's delimiters are broken.
    assert "`Fake <img src=x onerror=alert(1)> [click](https://evil.example/) {\u200b{ 7 * 7 }}`" in body
    assert "{{" not in body
    # The subject, a template field Airflow renders, holds no template: the title's {{ 7 * 7 }} is
    # neither 49 nor a template.
    assert asked[0].review.subject.endswith("{\u200b{ 7 * 7 }}")
    assert "rows: 42" in body
    assert (
        f"[Open in the Microsoft Defender portal](https://security.microsoft.com/incidents/{decided['id']}?tid="
        in body
    )

    states = {(ti.task_id, ti.map_index): (str(ti.state), ti.try_number) for ti in task_instances(run)}
    assert states == {
        ("requests", -1): ("success", 1),
        ("review", 0): ("success", 1),
        ("review", 1): ("success", 1),
        ("answers", -1): ("success", 1),
        # Try 1 wrote the answer and crashed before it saw the reply; try 2 wrote the same again.
        ("apply_review", 0): ("success", 2),
    }
    assert xcom(run, "review", map_index=0)["chosen_options"] == [CHOICE]
    assert xcom(run, "review", map_index=0)["responded_by_user"] == {"id": "alice", "name": "alice"}

    hook = MTPHook()
    applied = hook.get_incident(decided["id"], include_alerts=False)
    assert (applied["classification"], applied["determination"]) == ("truePositive", "malware")
    comments = [c["comment"] for c in applied["comments"] if c["comment"].startswith("Airflow review:")]
    assert len(comments) == 1
    assert comments[0].startswith(
        f"Airflow review: {CHOICE}, chosen by alice. [airflow:incidents_review/apply_review/"
    )
    untouched = hook.get_incident(later["id"], include_alerts=False)
    assert (untouched["classification"], untouched["determination"]) == ("unknown", "unknown")
    assert untouched["lastUpdateDateTime"] == later["lastUpdateDateTime"]
    assert untouched["comments"] == later["comments"]


def test_a_second_answer_is_refused(emulator: DefenderEmulator) -> None:
    """The response is recorded once (409 from the endpoint): a retried update cannot apply another one."""
    from fastapi import HTTPException

    (incident,) = emulator.put_incidents({"displayName": "answered twice"})
    seen: list[Review] = []

    def choose(review: Review) -> str:
        seen.append(review)
        return "False positive: not malicious"

    with Analyst("incidents_review", choose):
        load_dag("incidents_review").test(run_conf={"incident_ids": [incident["id"]]})
    assert len(seen) == 1
    assert waiting_reviews("incidents_review") == []
    with pytest.raises(HTTPException) as refused:
        answer(seen[0], CHOICE)
    assert refused.value.status_code == 409
    after = MTPHook().get_incident(incident["id"], include_alerts=False)
    assert (after["classification"], after["determination"]) == ("falsePositive", "clean")
