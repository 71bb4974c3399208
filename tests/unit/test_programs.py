"""Programs (``api/request.py``): generators of :class:`ApiRequest` run by ``run`` and ``arun``.

No network: ``send`` is a fake that records each request and answers from canned replies. The
same cases run with the sync runner and the async one, which must take the same steps.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable
from typing import Any

import pytest

from airflow_provider_mtp.api import graph, legacy
from airflow_provider_mtp.api.graph import GraphSecurityApi
from airflow_provider_mtp.api.legacy import LegacyMtpApi
from airflow_provider_mtp.api.request import ApiRequest, Program, arun, run
from airflow_provider_mtp.errors import MTPConfigError, MTPServiceError

COMMENT_BODY = {"@odata.type": "microsoft.graph.security.alertComment", "comment": "x"}


class FakeSend:
    """Records every request and answers each with the next canned reply (or raises it)."""

    def __init__(self, *replies: Any) -> None:
        self.replies = list(replies)
        self.sent: list[ApiRequest] = []

    def __call__(self, request: ApiRequest) -> Any:
        self.sent.append(request)
        reply = self.replies.pop(0)
        if isinstance(reply, BaseException):
            raise reply
        return reply

    async def asend(self, request: ApiRequest) -> Any:
        await asyncio.sleep(0)  # a real suspension point, as a transport's send has
        return self(request)


def run_sync(program: Program[Any], send: FakeSend) -> Any:
    return run(program, send)


def run_async(program: Program[Any], send: FakeSend) -> Any:
    return asyncio.run(arun(program, send.asend))


RUNNERS: dict[str, Callable[[Program[Any], FakeSend], Any]] = {"run": run_sync, "arun": run_async}


@pytest.fixture(params=sorted(RUNNERS))
def runner(request: pytest.FixtureRequest) -> Callable[[Program[Any], FakeSend], Any]:
    return RUNNERS[request.param]


def two_steps(log: list[str]) -> Program[tuple[Any, Any]]:
    """Sends two requests, the second built from the first reply; returns both replies."""
    try:
        first = yield ApiRequest(method="GET", path="/one")
        log.append(f"got {first!r}")
        second = yield ApiRequest(method="POST", path=f"/two/{first['id']}", json={"n": 2}, idempotent=False)
        log.append(f"got {second!r}")
        return first, second
    finally:
        log.append("finally")


# --------------------------------------------------------------------------------------------------
# The runners
# --------------------------------------------------------------------------------------------------


def test_a_program_of_two_requests_gets_each_reply_and_returns(
    runner: Callable[[Program[Any], FakeSend], Any],
) -> None:
    log: list[str] = []
    send = FakeSend({"id": "7"}, {"ok": True})

    result = runner(two_steps(log), send)

    assert result == ({"id": "7"}, {"ok": True})
    assert send.sent == [
        ApiRequest(method="GET", path="/one"),
        ApiRequest(method="POST", path="/two/7", json={"n": 2}, idempotent=False),
    ]
    assert log == ["got {'id': '7'}", "got {'ok': True}", "finally"]


def test_a_program_that_sends_nothing_returns_at_once(
    runner: Callable[[Program[Any], FakeSend], Any],
) -> None:
    def nothing() -> Program[str]:
        return "done"
        yield ApiRequest(method="GET", path="/never")  # pragma: no cover - makes this a generator

    send = FakeSend()
    assert runner(nothing(), send) == "done"
    assert send.sent == []


def test_an_error_from_send_propagates_and_closes_the_program(
    runner: Callable[[Program[Any], FakeSend], Any],
) -> None:
    log: list[str] = []
    program = two_steps(log)
    failure = MTPServiceError("the service failed")
    send = FakeSend({"id": "7"}, failure)

    with pytest.raises(MTPServiceError) as raised:
        runner(program, send)

    assert raised.value is failure, "the transport's error itself, not a wrapper"
    assert [request.path for request in send.sent] == ["/one", "/two/7"]
    assert log == ["got {'id': '7'}", "finally"], "closed at its second yield: its finally ran"
    assert inspect.getgeneratorstate(program) == inspect.GEN_CLOSED


def test_an_error_on_the_first_request_closes_the_program(
    runner: Callable[[Program[Any], FakeSend], Any],
) -> None:
    log: list[str] = []
    program = two_steps(log)
    send = FakeSend(MTPServiceError("down"))

    with pytest.raises(MTPServiceError, match="down"):
        runner(program, send)

    assert log == ["finally"]
    assert inspect.getgeneratorstate(program) == inspect.GEN_CLOSED


def test_an_error_in_the_program_itself_propagates(runner: Callable[[Program[Any], FakeSend], Any]) -> None:
    def checks_the_reply() -> Program[None]:
        reply = yield ApiRequest(method="GET", path="/one")
        raise MTPServiceError(f"unexpected reply {reply!r}")

    send = FakeSend("not a dict")
    with pytest.raises(MTPServiceError, match="unexpected reply 'not a dict'"):
        runner(checks_the_reply(), send)
    assert len(send.sent) == 1


# --------------------------------------------------------------------------------------------------
# Composition with ``yield from``: the back ends' programs
# --------------------------------------------------------------------------------------------------


def test_graph_update_with_only_a_comment_posts_then_reads(
    runner: Callable[[Program[Any], FakeSend], Any],
) -> None:
    # No fields to PATCH: the comment (add_incident_comment, yielded from), then the incident (get_incident).
    comments = {"value": [{"comment": "x", "createdByDisplayName": "app"}]}
    incident = {
        "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#security/incidents/$entity",
        "id": "1",
        "status": "Active",
        "severity": "High",
        "comments": comments["value"],
    }
    send = FakeSend(comments, incident)

    result = runner(GraphSecurityApi().update_incident("1", {}, comment="x"), send)

    assert send.sent == [
        ApiRequest(
            method="POST",
            path="/v1.0/security/incidents/1/comments",
            json=COMMENT_BODY,
            idempotent=False,
            permission=graph.WRITE_PERMISSION,
        ),
        ApiRequest(method="GET", path="/v1.0/security/incidents/1", permission=graph.READ_PERMISSION),
    ]
    # The read's reply, normalised: annotations dropped, enums in Graph's spelling.
    assert result == {"id": "1", "status": "active", "severity": "high", "comments": comments["value"]}


def test_graph_update_with_fields_and_a_comment_patches_then_posts(
    runner: Callable[[Program[Any], FakeSend], Any],
) -> None:
    patched = {"id": "1", "status": "resolved", "classification": "truePositive", "alerts": []}
    comments = {"value": [{"comment": "x"}]}
    send = FakeSend(patched, comments)

    result = runner(
        GraphSecurityApi().update_incident(
            "1", {"status": "resolved", "classification": "truePositive"}, comment="x"
        ),
        send,
    )

    assert [(request.method, request.path, request.idempotent) for request in send.sent] == [
        ("PATCH", "/v1.0/security/incidents/1", True),
        ("POST", "/v1.0/security/incidents/1/comments", False),
    ]
    assert send.sent[0].json == {"status": "resolved", "classification": "truePositive"}
    assert send.sent[1].json == COMMENT_BODY
    assert result == {
        "id": "1",
        "status": "resolved",
        "classification": "truePositive",
        "comments": [{"comment": "x"}],
    }, "no alerts, the comments as the POST returned them"


def test_graph_update_with_nothing_fails_before_any_request(
    runner: Callable[[Program[Any], FakeSend], Any],
) -> None:
    send = FakeSend()
    with pytest.raises(MTPConfigError, match="Nothing to update"):
        runner(GraphSecurityApi().update_incident("1", {}), send)
    assert send.sent == []


def test_legacy_update_with_a_comment_is_one_patch_not_retried_blindly(
    runner: Callable[[Program[Any], FakeSend], Any],
) -> None:
    reply = {"incidentId": 1, "status": "Resolved", "comments": [{"comment": "x"}], "alerts": []}
    send = FakeSend(reply)
    api = LegacyMtpApi(portal="https://security.microsoft.com", tenant=lambda: "tenant-1")

    result = runner(api.update_incident("1", {"status": "resolved"}, comment="x"), send)

    assert send.sent == [
        ApiRequest(
            method="PATCH",
            path="/api/incidents/1",
            json={"status": "Resolved", "comment": "x"},
            idempotent=False,
            permission=legacy.WRITE_PERMISSION,
        )
    ]
    assert result["id"] == "1"
    assert result["status"] == "resolved"
    assert [item["comment"] for item in result["comments"]] == ["x"]
    assert "alerts" not in result


def test_a_failed_comment_ends_the_composed_program_before_the_read(
    runner: Callable[[Program[Any], FakeSend], Any],
) -> None:
    program = GraphSecurityApi().update_incident("1", {}, comment="x")
    send = FakeSend(MTPServiceError("cut off"))

    with pytest.raises(MTPServiceError, match="cut off"):
        runner(program, send)

    assert [request.method for request in send.sent] == ["POST"], "no read after the failed comment"
    assert inspect.getgeneratorstate(program) == inspect.GEN_CLOSED
