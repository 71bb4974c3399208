"""The triggers' kwargs: one ``query`` (IncidentQuery's JSON form), and rows of the previous release.

Airflow stores a trigger as ``serialize()``'s kwargs and rebuilds it with ``__init__(**kwargs)``,
on the triggerer, possibly after an upgrade: a row written before ``query`` existed carries six
filter kwargs, and must still build a trigger that asks the same question. Running such a trigger
against the emulator is in ``tests/integration/test_incident_triggers.py``.
"""

from __future__ import annotations

import json
from typing import Any, cast

import pytest
from airflow.sdk.serde import deserialize, serialize
from airflow.triggers.base import BaseEventTrigger

from airflow_provider_mtp.api.incident_query import IncidentQuery
from airflow_provider_mtp.enums import Severity
from airflow_provider_mtp.triggers.incidents import IncidentEventTrigger, IncidentTrigger

WINDOW: dict[str, Any] = {
    "window_start": "2026-06-01T00:00:00+00:00",
    "window_end": "2026-06-01T01:00:00+00:00",
}

#: An IncidentTrigger row as the previous release serialised it (six filter kwargs, no ``query``).
OLD_TRIGGER_ROW: dict[str, Any] = {
    **WINDOW,
    "lag_seconds": 300.0,
    "mtp_conn_id": "mtp_default",
    "api": None,
    "status": ["active", "inProgress"],
    "severity": ["high"],
    "assigned_to": None,
    "classification": ["truePositive"],
    "tags": ["watch"],
    "odata_filter": None,
    "min_incidents": 1,
    "max_incidents": 200,
    "include_incidents": True,
    "poke_interval": 60.0,
    "on_empty": "skip",
}

#: An IncidentEventTrigger row of the previous release.
OLD_EVENT_ROW: dict[str, Any] = {
    "mtp_conn_id": "mtp_default",
    "api": None,
    "status": None,
    "severity": "high",
    "assigned_to": None,
    "classification": None,
    "tags": ["watch"],
    "odata_filter": None,
    "start": None,
    "lag_seconds": 300.0,
    "poll_interval": 60.0,
}

FILTER_KWARGS = ("status", "severity", "assigned_to", "classification", "tags", "odata_filter")


def round_trip(kwargs: dict[str, Any]) -> dict[str, Any]:
    """The kwargs as the triggerer gets them back: through JSON and Airflow's serde."""
    return cast("dict[str, Any]", deserialize(serialize(json.loads(json.dumps(kwargs)))))


def test_incident_trigger_serialises_its_filters_as_one_query() -> None:
    query = IncidentQuery.build(
        status="active", severity=["high", "medium"], tags="watch", odata_filter="1 eq 1"
    )
    trigger = IncidentTrigger(**WINDOW, query=query.to_json(), max_incidents=None)

    classpath, kwargs = trigger.serialize()

    assert kwargs["query"] == query.to_json()
    assert not set(FILTER_KWARGS) & set(kwargs), "no filter kwarg besides query"
    rebuilt = IncidentTrigger(**round_trip(kwargs))
    assert rebuilt.serialize() == (classpath, kwargs)
    assert IncidentQuery.from_json(rebuilt.query) == query


def test_a_trigger_takes_the_query_object_too() -> None:
    query = IncidentQuery.build(severity=Severity.HIGH)
    assert IncidentTrigger(**WINDOW, query=query).query == query.to_json()
    assert IncidentEventTrigger(query=query).serialize()[1]["query"] == query.to_json()


def test_an_incident_trigger_row_of_the_previous_release_builds_the_same_question() -> None:
    trigger = IncidentTrigger(**round_trip(OLD_TRIGGER_ROW))

    classpath, kwargs = trigger.serialize()

    assert classpath == "airflow_provider_mtp.triggers.incidents.IncidentTrigger"
    assert not set(FILTER_KWARGS) & set(kwargs)
    assert IncidentQuery.from_json(kwargs["query"]) == IncidentQuery.build(
        status=["active", "inProgress"], severity="high", classification="truePositive", tags="watch"
    )
    assert {name: kwargs[name] for name in ("window_start", "min_incidents", "on_empty")} == {
        "window_start": OLD_TRIGGER_ROW["window_start"],
        "min_incidents": 1,
        "on_empty": "skip",
    }
    # Written again in the new form, it rebuilds to itself.
    assert IncidentTrigger(**round_trip(kwargs)).serialize() == (classpath, kwargs)


def test_an_event_trigger_row_of_the_previous_release_builds_the_same_question() -> None:
    trigger = IncidentEventTrigger(**round_trip(OLD_EVENT_ROW))
    classpath, kwargs = trigger.serialize()
    assert set(kwargs) == {"mtp_conn_id", "api", "query", "start", "lag_seconds", "poll_interval"}
    assert IncidentQuery.from_json(kwargs["query"]) == IncidentQuery.build(severity="high", tags="watch")
    assert IncidentEventTrigger(**round_trip(kwargs)).serialize() == (classpath, kwargs)


def test_the_event_trigger_takes_filter_keywords_and_serialises_only_query() -> None:
    trigger = IncidentEventTrigger(severity="high", tags=["watch"], poll_interval=30)
    classpath, kwargs = trigger.serialize()
    assert kwargs == {
        "mtp_conn_id": "mtp_default",
        "api": None,
        "query": {"severity": "high", "tags": ["watch"]},
        "start": None,
        "lag_seconds": 300.0,
        "poll_interval": 30,
    }
    rebuilt = IncidentEventTrigger(**round_trip(kwargs))
    assert isinstance(rebuilt, BaseEventTrigger)
    assert BaseEventTrigger.hash(classpath, kwargs) == BaseEventTrigger.hash(*rebuilt.serialize())


@pytest.mark.parametrize("trigger", [IncidentTrigger, IncidentEventTrigger], ids=lambda cls: cls.__name__)
def test_an_unknown_keyword_is_a_type_error_and_bad_values_wait_for_run(trigger: type[Any]) -> None:
    window = WINDOW if trigger is IncidentTrigger else {}
    # A TypeError is what the triggerer turns into a failed trigger; it names the filters.
    with pytest.raises(TypeError, match=r"unexpected keyword argument\(s\) 'sevrity'.*severity"):
        trigger(**window, sevrity="high")
    with pytest.raises(TypeError, match=r"takes query as IncidentQuery\.to_json"):
        trigger(**window, query="severity eq 'high'")
    # A bad value is only stored here: run() turns it into an error event (checked in the
    # integration tests), so __init__ never raises anything else on the triggerer.
    assert trigger(**window, severity="urgent").query == {"severity": "urgent"}
