"""The reply scanner: rows (with their text as sent), schema and stats, however the bytes are cut."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest

from airflow_provider_mtp.api.reply_scan import ReplyScanner
from airflow_provider_mtp.row_writers import JsonLinesWriter

GRAPH_REPLY = (
    '{"@odata.context":"https://graph.microsoft.com/v1.0/$metadata#x",'
    '"schema":[{"name":"A","type":"String"},{"name":"N","type":"Int64"}],'
    '"results":[{"A":"é 𝄞 \\"q\\" \\u00e9 ,]}","N":12345678901234567890},{"A":null,"N":-1.5e3},'
    '{"A":"x","N":{"deep":[1,[2,{"k":"v"}]]}}]}'
).encode()
LEGACY_REPLY = (
    b'{ "Stats" : {"ExecutionTime": 0.1},\n "Schema": [ {"Name": "A", "Type": "String"} ],\n'
    b' "Results": [\n  {"A": "one"} ,\n  {\n   "A": "two"\n  }\n ]\n}\n'
)


def scan(body: bytes, step: int) -> ReplyScanner:
    scanner = ReplyScanner()
    kept = []
    for start in range(0, len(body), step):
        scanner.feed(body[start : start + step])
        kept.extend(scanner.rows)
        scanner.rows.clear()
    scanner.finish()
    scanner.rows.extendleft(reversed(kept))
    return scanner


@pytest.mark.parametrize("body", [GRAPH_REPLY, LEGACY_REPLY], ids=["graph", "legacy"])
def test_every_cut_of_the_bytes_gives_the_same_rows_and_texts(body: bytes) -> None:
    document = json.loads(body)
    rows = document.get("results", document.get("Results"))
    for step in range(1, 40):
        scanner = scan(body, step)
        assert [row for row, _ in scanner.rows] == rows
        # Each text is the row's exact slice of the reply.
        assert all(text.encode() in body and json.loads(text) == row for row, text in scanner.rows)
        assert scanner.schema == document.get("schema", document.get("Schema"))
        assert scanner.stats == document.get("Stats")


def test_a_row_longer_than_many_chunks_is_read_whole() -> None:
    big = {"A": "x" * 300_000, "B": list(range(20_000))}
    body = json.dumps({"schema": [], "results": [big, {"A": 1}]}).encode()
    scanner = scan(body, 1000)
    assert [row for row, _ in scanner.rows] == [big, {"A": 1}]


def test_schema_after_the_rows_and_empty_results() -> None:
    scanner = scan(b'{"results":[],"schema":[{"name":"A","type":"Int64"}]}', 3)
    assert list(scanner.rows) == []
    assert scanner.schema == [{"name": "A", "type": "Int64"}]
    assert scanner.saw_rows


def test_a_number_cut_at_the_end_of_a_chunk_waits_for_its_digits() -> None:
    scanner = ReplyScanner()
    scanner.feed(b'{"Stats":12')
    scanner.feed(b'34,"results":[]}')
    scanner.finish()
    assert scanner.stats == 1234


@pytest.mark.parametrize(
    "body",
    [
        b'{"results":[{"a":1},]}',
        b'{"results":[{"a":1}',
        b"[1]",
        b'{"a":1}x',
        b'{"results":[{"a":1}}',
        b'{"results":[{"a":1}]',
        b'{"results":[{"a":"\xff"}]}',
        b"",
    ],
)
def test_what_is_not_one_whole_json_object_is_refused(body: bytes) -> None:
    with pytest.raises(ValueError, match=r"."):
        scan(body, 4)


def _jsonl(*pairs: tuple[dict[str, Any], str | None]) -> bytes:
    stream = io.BytesIO()
    writer = JsonLinesWriter(stream, [])
    for row, text in pairs:
        writer.write(row, text)
    writer.close()
    return stream.getvalue()


def test_jsonl_copies_one_line_texts_and_encodes_the_others_again() -> None:
    row = {"a": "é", "b": [1, None]}
    spaced = json.dumps(row)  # '{"a": "\\u00e9", "b": [1, null]}': kept as sent
    assert _jsonl((row, spaced)) == spaced.encode() + b"\n"
    compact = '{"a":"é","b":[1,null]}\n'.encode()
    for pretty in (json.dumps(row, indent=2), '{"a":"é",\r"b":[1,null]}'):
        assert _jsonl((row, pretty)) == compact
    assert _jsonl((row, None)) == compact
