"""The Airflow-facing surface without a server: enums, templated connections, task loggers, no
overrides of Airflow's private methods, SOCKS proxies refused."""

from __future__ import annotations

import importlib
import inspect
import json
import logging
import pkgutil
import subprocess
import sys
from enum import StrEnum
from types import SimpleNamespace
from typing import Any

import pytest
from airflow.sdk import DAG, BaseOperator

from airflow_provider_mtp.api import mapping
from airflow_provider_mtp.enums import (
    AlertStatus,
    Classification,
    DetectionSource,
    Determination,
    IncidentStatus,
    ServiceSource,
    Severity,
)
from airflow_provider_mtp.errors import MTPConfigError
from airflow_provider_mtp.hooks import mtp as hook_module
from airflow_provider_mtp.hooks import mtp_async as async_hook_module
from airflow_provider_mtp.hooks.mtp import MTPHook
from airflow_provider_mtp.hooks.mtp_async import MTPAsyncHook
from airflow_provider_mtp.operators import hunting as hunting_module
from airflow_provider_mtp.operators import incidents as incidents_module
from airflow_provider_mtp.operators.hunting import RunHuntingQueryOperator
from airflow_provider_mtp.operators.incidents import AddIncidentCommentOperator, UpdateIncidentOperator
from airflow_provider_mtp.sensors import incidents as sensor_module
from airflow_provider_mtp.sensors.incidents import IncidentSensor
from airflow_provider_mtp.settings import ConnectionSettings
from airflow_provider_mtp.triggers import incidents as trigger_module
from airflow_provider_mtp.triggers.incidents import IncidentTrigger

TASKS = (RunHuntingQueryOperator, UpdateIncidentOperator, AddIncidentCommentOperator, IncidentSensor)
TENANT = "00000000-0000-0000-0000-000000000001"

# Enums --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("enum", "table"),
    [
        (IncidentStatus, mapping.INCIDENT_STATUS),
        (Severity, mapping.SEVERITY),
        (Classification, mapping.CLASSIFICATION),
        (Determination, mapping.DETERMINATION),
        (AlertStatus, mapping.ALERT_STATUS),
        (ServiceSource, mapping.SERVICE_SOURCE),
        (DetectionSource, mapping.DETECTION_SOURCE),
    ],
)
def test_each_enum_holds_the_graph_spellings_of_its_mapping_table(
    enum: type[StrEnum], table: mapping.EnumMap
) -> None:
    assert tuple(member.value for member in enum) == table.graph_values
    for member in enum:
        assert table.to_graph(member) == member.value
        assert table.to_legacy(member) in table.legacy_values


def test_a_member_is_its_plain_string() -> None:
    assert IncidentStatus.IN_PROGRESS == "inProgress"
    assert (
        f"{Determination.MULTI_STAGED_ATTACK}"
        == str(Determination.MULTI_STAGED_ATTACK)
        == "multiStagedAttack"
    )
    assert json.dumps({"status": IncidentStatus.RESOLVED}) == '{"status": "resolved"}'


def test_the_enums_module_imports_no_airflow() -> None:
    code = (
        "import sys, airflow_provider_mtp.enums; "
        "print(sorted(m for m in sys.modules if m == 'airflow' or m.startswith('airflow.')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_sensor_filters_given_as_enums_become_plain_json_trigger_kwargs() -> None:
    from airflow.serialization.serialized_objects import BaseSerialization

    sensor = IncidentSensor(
        task_id="sensor",
        status=[IncidentStatus.ACTIVE, IncidentStatus.IN_PROGRESS],
        severity=Severity.HIGH,
        classification=Classification.TRUE_POSITIVE,
    )
    trigger = IncidentTrigger(
        window_start="2026-06-01T00:00:00Z",
        window_end="2026-06-01T01:00:00Z",
        query=sensor._query().to_json(),
    )
    kwargs = trigger.serialize()[1]
    query = kwargs["query"]
    assert (query["status"], query["severity"], query["classification"]) == (
        ["active", "inProgress"],
        ["high"],
        ["truePositive"],
    )
    assert {type(v) for v in [*query["status"], *query["severity"], *query["classification"]]} == {str}
    assert json.loads(json.dumps(kwargs)) == kwargs
    assert BaseSerialization.serialize(kwargs) == BaseSerialization.serialize(json.loads(json.dumps(kwargs)))


def test_a_trigger_built_directly_with_enum_members_serialises_their_values() -> None:
    from airflow.serialization.serialized_objects import BaseSerialization

    trigger = IncidentTrigger(
        window_start="2026-06-01T00:00:00Z",
        window_end="2026-06-01T01:00:00Z",
        status=[IncidentStatus.ACTIVE],
        severity=[Severity.LOW],
    )
    kwargs = trigger.serialize()[1]
    assert json.loads(json.dumps(kwargs))["query"]["status"] == ["active"]
    encoded = BaseSerialization.serialize(kwargs)
    assert json.loads(json.dumps(encoded)) == encoded
    assert BaseSerialization.deserialize(encoded)["query"]["severity"] == ["low"]


def test_update_values_given_as_enums_are_checked_like_strings() -> None:
    body = mapping.graph_update_body(
        status=IncidentStatus.RESOLVED,
        classification=Classification.FALSE_POSITIVE,
        determination=Determination.NOT_MALICIOUS,
    )
    assert json.loads(json.dumps(body)) == {
        "status": "resolved",
        "classification": "falsePositive",
        "determination": "notMalicious",
    }


# Templated connection, task loggers ---------------------------------------------------------------


@pytest.mark.parametrize("task", TASKS, ids=lambda task: task.__name__)
def test_every_task_templates_its_connection_id(task: type[BaseOperator]) -> None:
    assert "mtp_conn_id" in task.template_fields


@pytest.mark.parametrize(
    "module",
    [hunting_module, incidents_module, sensor_module, trigger_module, hook_module, async_hook_module],
    ids=lambda module: module.__name__,
)
def test_tasks_triggers_and_hooks_log_through_their_own_logger(module: Any) -> None:
    # self.log reaches the task's (or trigger's) log; a module logger is not routed there.
    loggers = [name for name, value in vars(module).items() if isinstance(value, logging.Logger)]
    assert loggers == []


# No override of Airflow's private methods ----------------------------------------------------------


def provider_classes_on_airflow_bases() -> list[type]:
    """Every class of the client (not the emulator) that derives from an Airflow class."""
    import airflow_provider_mtp

    found: dict[str, type] = {}
    for info in pkgutil.walk_packages(airflow_provider_mtp.__path__, "airflow_provider_mtp."):
        if ".emulator" in info.name:
            continue
        for value in vars(importlib.import_module(info.name)).values():
            if (
                isinstance(value, type)
                and value.__module__ == info.name
                and any(base.__module__.split(".")[0] == "airflow" for base in value.__mro__)
            ):
                found[value.__qualname__] = value
    return [found[name] for name in sorted(found)]


def test_the_search_for_airflow_subclasses_finds_the_tasks_hooks_and_triggers() -> None:
    found = set(provider_classes_on_airflow_bases())
    assert {*TASKS, IncidentTrigger, MTPHook, MTPAsyncHook} <= found


@pytest.mark.parametrize("cls", provider_classes_on_airflow_bases(), ids=lambda cls: cls.__qualname__)
def test_no_class_overrides_a_private_airflow_method(cls: type) -> None:
    airflow_bases = [base for base in cls.__mro__ if base.__module__.split(".")[0] == "airflow"]
    # Airflow caches its own name-mangled attributes on subclasses at run time (BaseOperator sets
    # `_BaseOperator__serialized_fields` once a DAG is serialised): those are Airflow's, not ours.
    airflows_own = tuple(f"_{base.__name__}__" for base in airflow_bases)
    own = {
        name
        for klass in cls.__mro__
        if klass.__module__.startswith("airflow_provider_mtp")
        for name in vars(klass)
        if name.startswith("_")
        and not name.startswith("__")
        and not name.startswith(airflows_own)
        and name != "_abc_impl"  # ABCMeta's own
    }
    overridden = sorted(name for name in own if any(name in vars(base) for base in airflow_bases))
    assert overridden == []


def test_render_template_keeps_the_signature_the_hunting_operator_overrides() -> None:
    # The operator adds the KQL filters in BaseOperator.render_template (public API); if Airflow
    # changes that signature, this fails before the templates do.
    ours = inspect.signature(RunHuntingQueryOperator.render_template)
    airflows = inspect.signature(BaseOperator.render_template)
    assert (
        list(ours.parameters)
        == list(airflows.parameters)
        == ["self", "content", "context", "jinja_env", "seen_oids"]
    )


def test_the_kql_filters_work_in_a_mapped_tasks_templates() -> None:
    with DAG("mapped_filters", schedule=None) as dag:
        op = RunHuntingQueryOperator.partial(task_id="hunt").expand(
            query=["T | where A == {{ 'x' | kql_string }}", "T | where B == {{ 'y\"' | kql_string }}"]
        )
    context: dict[str, Any] = {
        "ti": SimpleNamespace(map_index=1, task=op),
        "expanded_ti_count": 2,
        "dag": dag,
        "dag_run": SimpleNamespace(conf={}),
        "params": {},
    }
    op.render_template_fields(context)  # type: ignore[arg-type]
    assert context["task"].query == 'T | where B == "y\\""'


# SOCKS proxies ------------------------------------------------------------------------------------


@pytest.mark.parametrize("scheme", ["socks5", "socks5h", "socks4", "socks4a", "SOCKS5"])
def test_a_socks_proxy_is_refused_naming_proxy_and_what_works(scheme: str) -> None:
    with pytest.raises(MTPConfigError) as caught:
        ConnectionSettings.from_connection(
            conn_id="mtp_socks",
            login="app",
            password="app-secret",
            extra={"tenant_id": TENANT, "proxy": f"{scheme}://user:proxy-pass-99@proxy.internal:1080"},
        )
    message = str(caught.value)
    assert message.startswith(f"Connection 'mtp_socks': proxy is a SOCKS proxy ({scheme.lower()}://)")
    assert "use an http:// or https:// proxy" in message
    assert "proxy-pass-99" not in message


@pytest.mark.parametrize("proxy", ["http://proxy.internal:3128", "https://u:p@proxy.internal:8443"])
def test_http_proxies_are_still_accepted(proxy: str) -> None:
    settings = ConnectionSettings.from_connection(
        conn_id="mtp_http", login="app", password="app-secret", extra={"tenant_id": TENANT, "proxy": proxy}
    )
    assert settings.proxy == proxy
