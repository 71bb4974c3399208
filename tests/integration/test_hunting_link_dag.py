"""The "Open in advanced hunting" link of a hunting DAG run with ``dag.test()`` against the emulator.

What the emulator received is read off the wire: a spy on ``requests.Session.send`` keeps the
body of every ``runHuntingQuery`` call the task makes (the task runs in this process under
``dag.test()``). The link in XCom must decode to exactly that ``Query``, window bindings and bound
parameters included, and, asked again without Graph's ``Timespan`` (the portal takes none), it
must find the task's rows. The format itself is tested in tests/unit/test_hunting_link.py.
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import datetime
from typing import Any

import pytest
import requests

from airflow_provider_mtp.emulator import DefenderEmulator
from airflow_provider_mtp.hooks.mtp import MTPHook
from airflow_provider_mtp.hunting_link import hunting_query_from_url
from airflow_provider_mtp.links import HUNTING_URL_XCOM_KEY, DefenderHuntingLink
from tests.conftest import TEST_NOW
from tests.dags import hunting_dags
from tests.integration.test_hunting_operator import DAY, HUNTING_ROUTE, MONTH, bindings, direct

LINK_START = "https://security.microsoft.com/v2/advanced-hunting?query=H4sI"
#: Several lines, non-ASCII text, both quote kinds and pipes inside strings and comments.
QUERY = (
    "// Prüfung der Prozesse: \"PowerShell\" | 'cmd' — 李雷 🔍\n"
    "DeviceProcessEvents\n"
    "| where Timestamp >= WindowStart and Timestamp < WindowEnd\n"
    '| where FileName in~ ("powershell.exe", "Überprüfung.exe") or ProcessCommandLine has "a|b"\n'
    "| project Timestamp, DeviceName, FileName, ReportId\n"
    "| order by Timestamp asc, ReportId asc\n"
    "| take 40"
)


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """The JSON bodies of the ``runHuntingQuery`` calls sent from now on, in order."""
    bodies: list[dict[str, Any]] = []
    send = requests.Session.send

    def spy(self: requests.Session, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        if (request.path_url or "").startswith(HUNTING_ROUTE):
            body = request.body.decode() if isinstance(request.body, bytes) else str(request.body)
            bodies.append(json.loads(body))
        return send(self, request, **kwargs)

    monkeypatch.setattr(requests.Session, "send", spy)
    return bodies


def run(dag: Any, conf: dict[str, Any]) -> Any:
    return dag.test(logical_date=datetime.fromisoformat(TEST_NOW), run_conf=conf)


def xcom(dag_run: Any, key: str) -> Any:
    return dag_run.get_task_instance("hunt").xcom_pull(task_ids="hunt", key=key)


def rows_key(rows: list[dict[str, Any]]) -> list[str]:
    return sorted(json.dumps(row, sort_keys=True) for row in rows)


@pytest.mark.usefixtures("airflow_db")
def test_the_link_holds_the_query_the_emulator_received_with_its_parameters_and_window(
    mtp_default_connection: DefenderEmulator, sent: list[dict[str, Any]]
) -> None:
    emulator = mtp_default_connection
    device = direct(
        "DeviceProcessEvents | where Timestamp >= WindowStart | take 1 | project DeviceName", MONTH
    )
    name = device[0]["DeviceName"]
    sent.clear()

    dag_run = run(hunting_dags.params_dag, {"device": name})

    assert str(dag_run.get_task_instance("hunt").state) == "success"
    rows = xcom(dag_run, "return_value")
    assert len(rows) > 0
    (body,) = sent
    url = xcom(dag_run, HUNTING_URL_XCOM_KEY)
    assert url.startswith(LINK_START)
    assert url.endswith(f"&timeRangeId=month&tid={emulator.tenant_id}")
    # What the UI shows: the worker stored get_link()'s answer under the link's own key.
    assert xcom(dag_run, DefenderHuntingLink().xcom_key) == url

    text = hunting_query_from_url(url)
    assert text == body["Query"], "exactly the text the emulator received"
    assert text == (
        f'let device = "{name}";\nlet min_size = long(0);\n'
        + bindings(MONTH)
        + hunting_dags.params_dag.get_task("hunt").query
    )
    # Graph also got the window as Timespan; the portal cannot, and needs not: the text holds it.
    assert body["Timespan"] == MONTH.timespan
    hook = MTPHook()
    try:
        with hook.run_hunting_query(text) as result:
            assert rows_key(list(result.rows)) == rows_key(rows), "the link's query, without Timespan"
    finally:
        hook.session.close()

    assert emulator.client_secret not in url
    assert emulator.client_secret not in text


@pytest.mark.usefixtures("airflow_db", "mtp_default_connection")
def test_multi_line_non_ascii_query_to_a_file_links_the_hashed_text(
    sent: list[dict[str, Any]], tmp_path: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    output = tmp_path / "hunt.jsonl"
    dag_run = run(hunting_dags.conf_dag, {"query": QUERY, "output_path": str(output), **DAY.as_dict()})

    assert str(dag_run.get_task_instance("hunt").state) == "success"
    manifest = xcom(dag_run, "return_value")
    assert manifest["rows"] > 0
    (body,) = sent
    text = hunting_query_from_url(xcom(dag_run, HUNTING_URL_XCOM_KEY))
    assert text == body["Query"] == bindings(DAY) + QUERY
    # The manifest's and the task log's query_sha256 are the hash of the linked text.
    digest = hashlib.sha256(text.encode()).hexdigest()
    assert manifest["query_sha256"] == digest
    logged = re.findall(r"query sha256 ([0-9a-f]{64})", capsys.readouterr().out)
    assert logged == [digest]
