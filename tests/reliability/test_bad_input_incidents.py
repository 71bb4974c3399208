"""Bad input to the incident operators: refused before any call, with a message that names the field,
the limit and what was seen; and templated tag lists that render as lists (issue 8, "No limits
checked")."""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_mtp.api.incident_limits import MAX_COMMENT_CHARS, MAX_CUSTOM_TAGS, MAX_TAG_CHARS
from airflow_provider_mtp.auth import clear_token_cache
from airflow_provider_mtp.emulator import DefenderEmulator
from airflow_provider_mtp.errors import MTPConfigError
from airflow_provider_mtp.hooks.mtp import MTPHook
from airflow_provider_mtp.operators.incidents import AddIncidentCommentOperator, UpdateIncidentOperator
from tests.conftest import TEST_NOW

DAGS = Path(__file__).parents[1] / "dags"


@pytest.fixture(scope="module")
def small_emulator() -> Iterator[DefenderEmulator]:
    with DefenderEmulator(seed=31, now=TEST_NOW, incidents=3, days=1, events_per_day=5) as emulator:
        yield emulator


@pytest.fixture
def emulator(small_emulator: DefenderEmulator, monkeypatch: pytest.MonkeyPatch) -> DefenderEmulator:
    small_emulator.reset()
    clear_token_cache()
    monkeypatch.setenv("AIRFLOW_CONN_MTP_DEFAULT", small_emulator.airflow_conn)
    return small_emulator


def context() -> dict[str, Any]:
    from types import SimpleNamespace

    ti = SimpleNamespace(
        dag_id="d", task_id="op", run_id="manual__1", map_index=-1, try_number=1, xcom_push=lambda **_: None
    )
    return {"ti": ti}


def refused(emulator: DefenderEmulator, operator: UpdateIncidentOperator) -> str:
    """The operator's MTPConfigError message; asserts that not one request was made."""
    with pytest.raises(MTPConfigError) as caught:
        operator.execute(context())  # type: ignore[arg-type]
    assert emulator.stats()["requests"] == {}, "refused before any call (not even a token request)"
    return str(caught.value)


# Limits --------------------------------------------------------------------------------------------


def test_ten_thousand_tags_of_100_characters_are_refused_before_any_call(emulator: DefenderEmulator) -> None:
    tags = [f"{index:05d}".ljust(100, "x") for index in range(10_000)]
    message = refused(emulator, UpdateIncidentOperator(task_id="op", incident_id="1", tags=tags))
    assert message.startswith("op: tags has 10,000 tags; at most 50 custom tags may be set on an incident.")
    assert len(message) < 300, "the tags themselves are not quoted"


def test_one_tag_over_the_limit_is_refused(emulator: DefenderEmulator) -> None:
    tags = [f"t{index}" for index in range(MAX_CUSTOM_TAGS + 1)]
    message = refused(
        emulator, UpdateIncidentOperator(task_id="op", incident_id="1", tags=tags, add_tags=True)
    )
    assert "tags has 51 tags; at most 50" in message


@pytest.mark.parametrize(
    ("tags", "expected"),
    [
        (["ok", "x" * (MAX_TAG_CHARS + 1)], "tags[1] has 101 characters ('xxxxx"),
        (["ir-42\nDROP"], "tags[0] ('ir-42\\nDROP') contains the control character U+000A"),
        (["a\x00b"], "contains the control character U+0000"),
        (["fine", "  "], "tags[1] is blank ('  ')"),
    ],
    ids=["too-long", "newline", "nul", "blank"],
)
def test_a_bad_tag_is_refused_naming_its_position(
    emulator: DefenderEmulator, tags: list[str], expected: str
) -> None:
    message = refused(emulator, UpdateIncidentOperator(task_id="op", incident_id="1", tags=tags))
    assert expected in message


def test_a_one_megabyte_comment_is_refused_before_any_call(emulator: DefenderEmulator) -> None:
    comment = "A" * (1024 * 1024)
    message = refused(emulator, AddIncidentCommentOperator(task_id="op", incident_id="1", comment=comment))
    assert message.startswith("op: comment has 1,048,576 characters; a comment may have at most 30,000.")
    assert "AAAAAAAAAA" not in message, "the comment is not quoted"


def test_the_hook_refuses_the_same_tags_and_a_huge_comment_before_any_call(
    emulator: DefenderEmulator,
) -> None:
    """Direct hook users get the limits too (the operators check first and append their marker)."""
    hook = MTPHook()
    with pytest.raises(MTPConfigError, match=r"^update_incident\('1'\): tags has 10,000 tags; at most 50"):
        hook.update_incident("1", tags=[f"t{index}" for index in range(10_000)])
    with pytest.raises(MTPConfigError, match=r"^add_incident_comment\('1'\): text has 1,048,576 characters"):
        hook.add_incident_comment("1", "A" * (1024 * 1024))
    with pytest.raises(MTPConfigError, match=r"^update_incident\('1'\): comment has 1,048,576 characters"):
        hook.update_incident("1", status="active", comment="A" * (1024 * 1024))
    assert emulator.stats()["requests"] == {}, "refused before any call (not even a token request)"


def test_a_comment_at_the_limit_is_posted(emulator: DefenderEmulator) -> None:
    incident = emulator.put_incidents({"displayName": "long comment"})[0]
    comment = "B" * MAX_COMMENT_CHARS
    AddIncidentCommentOperator(task_id="op", incident_id=incident["id"], comment=comment).execute(context())  # type: ignore[arg-type]
    (posted,) = MTPHook().get_incident(incident["id"], include_alerts=False)["comments"]
    assert posted["comment"].startswith(comment + " [airflow:d/op/manual__1#-1 ")


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        (
            {"comment_settle_seconds": -1},
            "op: comment_settle_seconds is -1; give a number of seconds, at least 0.",
        ),
        ({"comment_settle_seconds": float("inf")}, "op: comment_settle_seconds is inf;"),
        (
            {"comment_settle_interval": 0},
            "op: comment_settle_interval is 0; give a number of seconds, above 0.",
        ),
    ],
)
def test_bad_settle_arguments_are_refused(
    emulator: DefenderEmulator, kwargs: dict[str, Any], expected: str
) -> None:
    operator = AddIncidentCommentOperator(task_id="op", incident_id="1", comment="hi", **kwargs)
    assert refused(emulator, operator).startswith(expected)


# Templated tag lists --------------------------------------------------------------------------------


def run_templated(conf: dict[str, Any]) -> Any:
    spec = importlib.util.spec_from_file_location(
        "mtp_test_dag_templated_tags", DAGS / "incidents_operator_templated_tags.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.dag.test(run_conf=conf)


@pytest.mark.usefixtures("airflow_db")
def test_a_template_that_renders_a_list_sets_that_list(
    emulator: DefenderEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``tags="{{ dag_run.conf['tags'] }}"`` renders the text ``['ir-42', 'phish']``: two tags, not one.
    The connection id comes from a template too (``mtp_default`` is not even defined)."""
    monkeypatch.setenv("AIRFLOW_CONN_MTP_TEMPLATED", emulator.airflow_conn)
    monkeypatch.delenv("AIRFLOW_CONN_MTP_DEFAULT")
    incident = emulator.put_incidents({"displayName": "templated", "customTags": ["old"]})[0]

    run = run_templated(
        {"incident_id": incident["id"], "tags": ["ir-42", "phish"], "conn_id": "mtp_templated"}
    )

    assert str(run.state) == "success"
    monkeypatch.setenv("AIRFLOW_CONN_MTP_DEFAULT", emulator.airflow_conn)
    assert MTPHook().get_incident(incident["id"], include_alerts=False)["customTags"] == ["ir-42", "phish"]


@pytest.mark.parametrize(
    ("rendered", "expected"),
    [
        ("['a', 'b']", ["a", "b"]),
        ('["a","b"]', ["a", "b"]),
        (" [ 'spaced' ] ", ["spaced"]),
        ("ir-42", ["ir-42"]),
        ("a, b", ["a, b"]),
    ],
    ids=["python-literal", "json", "padded", "one-tag", "comma-text-is-one-tag"],
)
def test_rendered_tag_text_becomes_the_list_it_spells(
    emulator: DefenderEmulator, rendered: str, expected: list[str]
) -> None:
    incident = emulator.put_incidents({"displayName": "rendered"})[0]
    UpdateIncidentOperator(task_id="op", incident_id=incident["id"], tags=rendered).execute(context())  # type: ignore[arg-type]
    assert MTPHook().get_incident(incident["id"], include_alerts=False)["customTags"] == expected


@pytest.mark.parametrize(
    "rendered",
    ["[1, 2]", "['a', ['b']]", "[prod", "[not a list]", json.dumps([{"tag": "a"}])],
    ids=["numbers", "nested", "unclosed", "bare-words", "objects"],
)
def test_rendered_text_that_looks_like_a_list_but_is_not_one_of_strings_is_refused(
    emulator: DefenderEmulator, rendered: str
) -> None:
    message = refused(emulator, UpdateIncidentOperator(task_id="op", incident_id="1", tags=rendered))
    assert message.startswith(f"op: tags is the text {rendered!r}, which starts with '[' but is not a list")
    assert "tags=['[x]']" in message


def test_tags_and_the_connection_id_are_templated() -> None:
    assert "tags" in UpdateIncidentOperator.template_fields
    assert "mtp_conn_id" in UpdateIncidentOperator.template_fields
    assert "mtp_conn_id" in AddIncidentCommentOperator.template_fields
