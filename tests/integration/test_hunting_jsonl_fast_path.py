"""Must show 4 of issue 13: the JSON Lines fast path writes what ``json.dumps(row)`` per line would.

The operator copies each row's JSON text as the service sent it (see
:mod:`airflow_provider_mtp.outputs`). What that means, and what these tests hold it to:

* Against the emulator (which, like Defender, sends compact JSON with UTF-8 text), every line is
  byte for byte ``json.dumps(row, ensure_ascii=False, separators=(",", ":"))`` of the same row
  read with ``requests`` + ``response.json()``; from plain ``json.dumps(row)`` it differs only in
  those two documented ways (no spaces after separators, non-ASCII text as UTF-8), and it is
  the same value with the same key order.
* A reply whose rows are pretty-printed (a raw line break inside a row's text) gets those rows
  encoded again, compact; a row on one line keeps its text exactly as sent.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests

from airflow_provider_mtp.api.models import HuntingResult
from airflow_provider_mtp.emulator import DefenderEmulator
from airflow_provider_mtp.outputs import OutputTarget
from tests.conftest import TEST_NOW
from tests.dags import hunting_dags
from tests.integration.conftest import GRAPH, graph_hunt, token

NOW = datetime.fromisoformat(TEST_NOW)

#: Unicode (2- to 4-byte UTF-8, a raw U+2028), escapes, nested dynamic values, nulls, the largest
#: longs, doubles at the ends of their range, NaN and infinities (Kusto sends them as strings).
TRICKY = (
    'print Text = "é ✓ 𝄞 \\"quoted\\" back\\\\slash tab\\t nl\\n cr\\r sep\u2028end", '
    'Bag = parse_json(\'{"x": [1, {"y": null, "z": [true, 1.5, "ü"]}], "e": {}}\'), '
    "Big = 9223372036854775807, Neg = -9223372036854775807, Nan = real(nan), Inf = real(+inf), "
    "NInf = real(-inf), Small = 1e-300, Huge = 1.5e300, Third = 1.0 / 3, Null = dynamic(null), "
    "Empty = tostring(dynamic(null)), When = datetime(2026-11-18T01:02:03.4567891Z), Span = 1d, "
    "Yes = true"
)
#: Ordinary rows, many of them, in a fixed order.
BULK = (
    "DeviceProcessEvents\n"
    "| where Timestamp >= WindowStart and Timestamp < WindowEnd\n"
    "| order by Timestamp asc, ReportId asc\n"
    "| take 2000\n"
    "| project Timestamp, DeviceName, FileName, ProcessCommandLine, FileSize, AdditionalFields, "
    "IsProcessRemoteSession"
)


def _compact(row: Any) -> str:
    return json.dumps(row, ensure_ascii=False, separators=(",", ":"))


@pytest.fixture
def emulator(airflow_db: None, mtp_default_connection: DefenderEmulator) -> DefenderEmulator:
    """The session emulator, reset, as ``mtp_default``."""
    return mtp_default_connection


def _operator_lines(query: str, output: Path) -> list[bytes]:
    """Run the hunting DAG to ``output`` (JSON Lines); the file's lines, each with its ``\\n``."""
    dag_run = hunting_dags.no_split_dag.test(
        logical_date=NOW, run_conf={"query": query, "output_path": str(output)}
    )
    ti = dag_run.get_task_instance("hunt")
    assert str(ti.state) == "success"
    data = output.read_bytes()
    assert data.endswith(b"\n")
    assert b"\r" not in data
    return data.split(b"\n")[:-1]


def _service_rows(emulator: DefenderEmulator, query: str) -> list[dict[str, Any]]:
    """The same hunt read the naive way: ``requests`` + ``response.json()``.

    The window's bindings are what the operator sends before the query (a 30-day lookback
    ending at the run's date); the rows here do not depend on them beyond the ``where``.
    """
    start = NOW.replace(tzinfo=None) - hunting_dags.LOOKBACK
    bindings = (
        f"let WindowStart = datetime({start.isoformat()}Z);\n"
        f"let WindowEnd = datetime({NOW.replace(tzinfo=None).isoformat()}Z);\n"
    )
    reply = graph_hunt(emulator, token(emulator, GRAPH), bindings + query)
    assert reply.status_code == 200, reply.text
    rows: list[dict[str, Any]] = reply.json()["results"]
    return rows


@pytest.mark.parametrize("query", [TRICKY, BULK], ids=["tricky-values", "2000-rows"])
def test_jsonl_line_is_json_dumps_of_the_row(emulator: DefenderEmulator, tmp_path: Path, query: str) -> None:
    lines = _operator_lines(query, tmp_path / "hunt.jsonl")
    rows = _service_rows(emulator, query)

    assert len(lines) == len(rows) > 0
    for line, row in zip(lines, rows, strict=True):
        # Byte for byte, with the two documented differences from json.dumps's defaults.
        assert line == _compact(row).encode("utf-8")
        # The same value, key order included, as plain json.dumps(row) writes it.
        assert json.dumps(json.loads(line)) == json.dumps(row)
    if query == TRICKY:
        (row,) = rows
        assert row["Big"] == 9223372036854775807
        assert row["Nan"] == "NaN"
        assert row["Null"] is None
        assert "\u2028" in row["Text"]
        assert "\u2028".encode() in lines[0]


# --------------------------------------------------------------------------------------------
# A pretty-printed reply, from a small local server
# --------------------------------------------------------------------------------------------

ROWS: list[dict[str, Any]] = [
    {"Text": 'é "q" \\ line\nbreak', "Bag": {"a": [1, None, {"b": "ü"}]}, "Big": 12345678901234567890},
    {"Text": "plain", "Bag": None, "Big": -1},
    {"Text": "tab\there", "Bag": [], "Big": 0},
]
SCHEMA = [
    {"name": "Text", "type": "String"},
    {"name": "Bag", "type": "Object"},
    {"name": "Big", "type": "Int64"},
]
#: Row texts as a pretty-printing service might send them: the first two span lines, the third is
#: on one line but spaced and ASCII-escaped (json.dumps's defaults).
SENT = [json.dumps(ROWS[0], indent=2), json.dumps(ROWS[1], indent="\t"), json.dumps(ROWS[2])]
BODY = (
    '{\n  "schema": ' + json.dumps(SCHEMA, indent=2) + ',\n  "results": [\n' + ",\n".join(SENT) + "\n  ]\n}\n"
).encode()


class _Pretty(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(BODY)))
        self.end_headers()
        self.wfile.write(BODY)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def pretty_server() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Pretty)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hunt"
    finally:
        server.shutdown()
        server.server_close()


def test_pretty_printed_rows_are_written_compact_one_per_line(pretty_server: str, tmp_path: Path) -> None:
    assert any("\n" in text for text in SENT)
    response = requests.post(pretty_server, json={"Query": "x"}, stream=True, timeout=30)
    target = OutputTarget(str(tmp_path / "pretty.jsonl"))
    part = target.part("token", 0)
    with HuntingResult.from_response(response, chunk_size=7) as result:
        assert result.schema == SCHEMA
        written = target.write_part(part, result.schema, result.rows_with_text)

    lines = part.read_bytes().split(b"\n")
    assert written == len(ROWS)
    assert lines[-1] == b""
    # Rows whose text holds a line break: encoded again, compact. A one-line row: as sent.
    assert lines[:-1] == [_compact(ROWS[0]).encode(), _compact(ROWS[1]).encode(), SENT[2].encode()]
    assert [json.loads(line) for line in lines[:-1]] == ROWS
