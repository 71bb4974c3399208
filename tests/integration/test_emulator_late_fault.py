"""The emulator's ``late`` fault: a write the service applies after the client stopped waiting.

Raw HTTP: the comment is not there while the client waits, is there once ``apply_after_s`` has
passed, and the request is counted once, whatever the client saw (a timeout, a cut-off body, or,
when it waited long enough, the route's own reply).
"""

from __future__ import annotations

import time
from typing import Any

import pytest
import requests

from airflow_provider_mtp.emulator import DefenderEmulator
from tests.integration.conftest import GRAPH, MTP, token

GRAPH_COMMENTS = "POST /v1.0/security/incidents/{incident_id}/comments"
LEGACY_PATCH = "PATCH /api/incidents/{incident_id}"


@pytest.fixture
def emulator(defender_emulator: DefenderEmulator) -> DefenderEmulator:
    defender_emulator.reset()
    return defender_emulator


def send(
    emulator: DefenderEmulator, method: str, path: str, bearer: str, timeout: float, **kwargs: Any
) -> Any:
    return requests.request(
        method,
        f"{emulator.url}{path}",
        headers={"Authorization": f"Bearer {bearer}"},
        verify=emulator.ca_bundle,
        timeout=timeout,
        **kwargs,
    )


def graph_comments(emulator: DefenderEmulator, bearer: str, incident_id: str) -> list[str]:
    reply = send(emulator, "GET", f"/v1.0/security/incidents/{incident_id}", bearer, 30)
    reply.raise_for_status()
    return [item["comment"] for item in reply.json().get("comments") or []]


def after(started: float, seconds: float) -> None:
    time.sleep(max(0.0, started + seconds - time.monotonic()))


def test_a_held_comment_post_times_out_then_the_comment_appears(emulator: DefenderEmulator) -> None:
    bearer = token(emulator, GRAPH)
    incident = emulator.put_incidents({"displayName": "late"})[0]
    emulator.inject_fault(
        path="/v1.0/security/incidents/*/comments", method="POST", kind="late", apply_after_s=0.6
    )
    started = time.monotonic()
    with pytest.raises(requests.exceptions.ReadTimeout):
        send(
            emulator,
            "POST",
            f"/v1.0/security/incidents/{incident['id']}/comments",
            bearer,
            0.2,
            json={"@odata.type": "microsoft.graph.security.alertComment", "comment": "late one"},
        )
    assert graph_comments(emulator, bearer, incident["id"]) == [], "not applied yet"
    after(started, 0.9)
    assert graph_comments(emulator, bearer, incident["id"]) == ["late one"]
    assert emulator.stats()["requests"][GRAPH_COMMENTS] == {"499": 1}, "one request, the client gave up"


def test_a_late_legacy_patch_with_delay_is_cut_off_then_applied(emulator: DefenderEmulator) -> None:
    bearer = token(emulator, MTP)
    incident = emulator.put_incidents({"displayName": "late legacy"})[0]
    emulator.inject_fault(
        path="/api/incidents/*", method="PATCH", kind="late", apply_after_s=0.5, delay_s=0.1
    )
    started = time.monotonic()
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        send(
            emulator,
            "PATCH",
            f"/api/incidents/{incident['id']}",
            bearer,
            5,
            json={"status": "Resolved", "comment": "late legacy one"},
        ).json()
    after(started, 0.8)
    graph_bearer = token(emulator, GRAPH)
    assert graph_comments(emulator, graph_bearer, incident["id"]) == ["late legacy one"]
    assert emulator.stats()["requests"][LEGACY_PATCH] == {"200": 1}, "the cut-off 200"


def test_a_client_that_waits_long_enough_gets_the_routes_reply(emulator: DefenderEmulator) -> None:
    bearer = token(emulator, GRAPH)
    incident = emulator.put_incidents({"displayName": "slow"})[0]
    emulator.inject_fault(
        path="/v1.0/security/incidents/*/comments", method="POST", kind="late", apply_after_s=0.2
    )
    reply = send(
        emulator,
        "POST",
        f"/v1.0/security/incidents/{incident['id']}/comments",
        bearer,
        10,
        json={"@odata.type": "microsoft.graph.security.alertComment", "comment": "slow one"},
    )
    assert reply.status_code == 200
    assert [item["comment"] for item in reply.json()["value"]] == ["slow one"]
    assert graph_comments(emulator, bearer, incident["id"]) == ["slow one"]
    assert emulator.stats()["requests"][GRAPH_COMMENTS] == {"200": 1}


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"kind": "late"}, "A 'late' fault needs 'apply_after_s'"),
        ({"kind": "late", "apply_after_s": -1}, "A 'late' fault needs 'apply_after_s'"),
        ({"status": 503, "apply_after_s": 1}, "'apply_after_s' is for 'late' faults only."),
    ],
)
def test_late_fault_specs_are_checked(emulator: DefenderEmulator, spec: dict[str, Any], message: str) -> None:
    with pytest.raises(requests.HTTPError) as caught:
        emulator.inject_fault(path="/v1.0/*", **spec)
    assert message in caught.value.response.json()["error"]["message"]
