"""KQL ``externaldata`` on the emulator: files from ``--externaldata-dir``, content from the admin API, no network."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from airflow_provider_mtp.emulator import DefenderEmulator
from tests.integration.conftest import GRAPH, MTP, graph_hunt, legacy_hunt, token

IOCS = "https://iocs.example.test/feed.csv"
QUERY = (
    "let iocs = externaldata (Indicator:string, Score:long) "
    f'[@"{IOCS}"] with (format="csv", ignoreFirstRecord=true);\n'
    "iocs | where Score > 50 | project Indicator"
)


@pytest.fixture(scope="module")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DefenderEmulator]:
    folder: Path = tmp_path_factory.mktemp("externaldata")
    (folder / "feed.csv").write_text("Indicator,Score\nevil.example,90\nbenign.example,10\n10.0.0.66,70\n")
    (folder / "externaldata.json").write_text(json.dumps({IOCS: "feed.csv"}))
    with DefenderEmulator(
        events_per_day=0, incidents=0, quotas=False, extra_args=["--externaldata-dir", str(folder)]
    ) as running:
        yield running


def test_both_apis_read_the_registered_file(emulator: DefenderEmulator) -> None:
    graph = graph_hunt(emulator, token(emulator, GRAPH), QUERY)
    legacy = legacy_hunt(emulator, token(emulator, MTP), QUERY)
    assert graph.status_code == legacy.status_code == 200, graph.text
    assert (
        graph.json()["results"]
        == legacy.json()["Results"]
        == [
            {"Indicator": "evil.example"},
            {"Indicator": "10.0.0.66"},
        ]
    )


def test_admin_api_registers_content(emulator: DefenderEmulator) -> None:
    url = "https://lists.example.test/users.txt"
    reply = emulator.session.post(
        f"{emulator.url}/_emulator/externaldata", json={"url": url, "content": "alice\nbob\n"}, timeout=30
    )
    assert reply.status_code == 200
    assert url in reply.json()["urls"]
    hunt = graph_hunt(
        emulator, token(emulator, GRAPH), f'externaldata (User:string) ["{url}"] with (format="txt")'
    )
    assert hunt.status_code == 200, hunt.text
    assert hunt.json()["results"] == [{"User": "alice"}, {"User": "bob"}]


def test_admin_api_refuses_a_body_without_content(emulator: DefenderEmulator) -> None:
    reply = emulator.session.post(f"{emulator.url}/_emulator/externaldata", json={"url": "x"}, timeout=30)
    assert reply.status_code == 400


def test_an_unregistered_url_is_refused_in_each_api_shape(emulator: DefenderEmulator) -> None:
    query = 'externaldata (a:string) ["https://not-registered.example.test/a.csv"]'
    graph = graph_hunt(emulator, token(emulator, GRAPH), query)
    legacy = legacy_hunt(emulator, token(emulator, MTP), query)
    assert graph.status_code == legacy.status_code == 400
    message = graph.json()["error"]["message"]
    assert message == legacy.json()["error"]["message"]
    assert message.startswith("'externaldata' at line 1, column 1: the emulator has no network access")
    assert "https://not-registered.example.test/a.csv" in message


def test_admin_api_reads_a_file_of_the_folder_by_name(emulator: DefenderEmulator) -> None:
    url = "https://iocs.example.test/again.csv"
    reply = emulator.session.post(
        f"{emulator.url}/_emulator/externaldata", json={"url": url, "file": "feed.csv"}, timeout=30
    )
    assert reply.status_code == 200, reply.text
    hunt = graph_hunt(
        emulator,
        token(emulator, GRAPH),
        f'externaldata (Indicator:string, Score:long) ["{url}"] with (ignoreFirstRecord=true) | count',
    )
    assert hunt.status_code == 200, hunt.text
    assert hunt.json()["results"] == [{"Count": 3}]


@pytest.mark.parametrize("name", ["/etc/passwd", "../../../../../../etc/passwd", "sub/../../feed.csv"])
def test_admin_api_reads_no_file_outside_the_folder(emulator: DefenderEmulator, name: str) -> None:
    """The admin routes have no authentication: a path outside the folder must not become readable."""
    url = "https://leak.example.test/x"
    reply = emulator.session.post(
        f"{emulator.url}/_emulator/externaldata", json={"url": url, "file": name}, timeout=30
    )
    assert reply.status_code == 400
    assert "is not a file of the --externaldata-dir folder" in reply.json()["error"]["message"]
    hunt = graph_hunt(
        emulator, token(emulator, GRAPH), f'externaldata (Line:string) ["{url}"] with (format="txt")'
    )
    assert hunt.status_code == 400
    assert "no content registered" in hunt.json()["error"]["message"]


def test_without_a_folder_the_admin_api_reads_no_file(defender_emulator: DefenderEmulator) -> None:
    reply = defender_emulator.session.post(
        f"{defender_emulator.url}/_emulator/externaldata",
        json={"url": "https://leak.example.test/y", "file": "externaldata.json"},
        timeout=30,
    )
    assert reply.status_code == 400
    assert "started without it" in reply.json()["error"]["message"]
