"""A hunting reply split into its parts as its bytes arrive: schema, stats, and each row with its text.

Sans-I/O: :class:`ReplyScanner` is fed chunks of the body and keeps only the part of the
document not yet handed out (at most a chunk and one row). It finds the top-level keys itself
and decodes each value with the standard library's C scanner (``json.JSONDecoder.raw_decode``),
one row at a time, so a row is parsed once, at about the speed of ``json.loads`` on the whole
document, without the document ever being whole in memory. Each row comes with its exact text
as the service sent it, so a JSON Lines writer can copy it instead of encoding it again.

Both reply shapes are read: Graph's ``schema`` and ``results``, and the legacy API's ``Stats``,
``Schema`` and ``Results`` (key case as it comes). Other top-level keys (``@odata.context``)
are decoded and dropped.
"""

from __future__ import annotations

import codecs
import json
import re
from collections import deque
from typing import Any

__all__ = ["ReplyScanner"]

_ROWS_KEYS = frozenset({"results", "Results"})
_SCHEMA_KEYS = frozenset({"schema", "Schema"})
_STATS_KEYS = frozenset({"Stats", "stats"})
_WHITESPACE = re.compile(r"[ \t\n\r]*")
_DECODER = json.JSONDecoder()

# Where the scanner is in the document.
_START, _KEY, _COLON, _VALUE, _AFTER_VALUE, _ARRAY, _ROW, _AFTER_ROW, _END = range(9)


class ReplyScanner:
    """Feed it the body's bytes; take :attr:`rows` (``(row, text)`` pairs) as they appear.

    :attr:`schema` and :attr:`stats` are set when the scanner passes them. A syntax error shows
    when it is certain: at once for a wrong character between values, at :meth:`finish` for a
    value that never completed.
    """

    def __init__(self) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")()
        self._text = ""
        self._state = _START
        self._key = ""
        #: Rows found and not taken yet: ``(row, its JSON text as sent)``.
        self.rows: deque[tuple[Any, str]] = deque()
        #: The ``schema`` / ``Schema`` value, once passed.
        self.schema: Any = None
        #: The ``Stats`` value, once passed.
        self.stats: Any = None
        #: True once the scanner passed a rows array (whichever spelling).
        self.saw_rows = False
        self._row_seen = False  # a row in the current array: ']' may not follow ','
        self._wait_for = 0  # buffer length worth another try at an unfinished value

    def feed(self, chunk: bytes) -> None:
        """Scan one more chunk of the body.

        :raises ValueError: the body is not JSON (or not UTF-8), or not a JSON object.
        """
        text = self._decoder.decode(chunk)
        self._text = self._text + text if self._text else text
        if len(self._text) >= self._wait_for:
            self._scan(final=False)

    def finish(self) -> None:
        """The body ended: the document must be complete.

        :raises ValueError: the body ended inside the document, or holds more after it.
        """
        self._text += self._decoder.decode(b"", final=True)
        self._scan(final=True)
        if self._state != _END:
            raise ValueError("the body ended inside the document")

    # ----------------------------------------------------------------------------------------------

    def _scan(self, *, final: bool) -> None:
        text, pos, size = self._text, 0, len(self._text)
        state = self._state
        rows = self.rows
        decode = _DECODER.raw_decode
        skip = _WHITESPACE.match
        self._wait_for = 0
        try:
            while True:
                pos = skip(text, pos).end()  # type: ignore[union-attr]
                if pos >= size:
                    break
                if state == _ROW and text[pos] == "{":
                    # Rows one after another with a bare comma between them (a compact reply):
                    # read in this tight loop, without a trip through the states per row.
                    first = pos
                    try:
                        while True:
                            value, end = decode(text, pos)
                            rows.append((value, text[pos:end]))
                            if not text.startswith(",{", end):
                                break
                            pos = end + 1
                    except json.JSONDecodeError:
                        if final:
                            raise
                        self._row_seen = self._row_seen or pos > first
                        self._wait_for = 2 * (size - pos)
                        break  # the row goes on in the next chunks
                    self._row_seen = True
                    state, pos = _AFTER_ROW, end
                    continue
                if state in (_ROW, _VALUE):
                    if state == _ROW and text[pos] == "]" and not self._row_seen:
                        state, pos = _AFTER_VALUE, pos + 1
                        continue
                    try:
                        value, end = decode(text, pos)
                    except json.JSONDecodeError:
                        if final:
                            raise
                        # The value goes on in the next chunks: try again once the buffer has
                        # doubled, so a value of many chunks costs a few parses, not one per chunk.
                        self._wait_for = 2 * (size - pos)
                        break
                    if end >= size and not final and isinstance(value, int | float):
                        break  # a number at the buffer's end may have more digits to come
                    if state == _ROW:
                        rows.append((value, text[pos:end]))
                        self._row_seen = True
                        state = _AFTER_ROW
                    else:
                        self._keep(value)
                        state = _AFTER_VALUE
                    pos = end
                    continue
                char = text[pos]
                if state == _AFTER_ROW:
                    if char == ",":
                        state = _ROW
                    elif char == "]":
                        state = _AFTER_VALUE
                    else:
                        raise ValueError(f"expected ',' or ']' after a row, got {char!r}")
                    pos += 1
                elif state == _START:
                    if char != "{":
                        raise ValueError(f"the reply is not a JSON object (starts with {char!r})")
                    state, pos = _KEY, pos + 1
                elif state == _KEY:
                    if char == "}":
                        state, pos = _END, pos + 1
                        continue
                    try:
                        key, end = decode(text, pos)
                    except json.JSONDecodeError:
                        if final:
                            raise
                        break
                    if not isinstance(key, str):
                        raise ValueError(f"expected a key, got {text[pos:end][:40]!r}")
                    self._key, state, pos = key, _COLON, end
                elif state == _COLON:
                    if char != ":":
                        raise ValueError(f"expected ':' after the key {self._key!r}, got {char!r}")
                    state = _ARRAY if self._key in _ROWS_KEYS else _VALUE
                    pos += 1
                elif state == _ARRAY:
                    if char != "[":
                        # Not an array of rows: read it as any other value (the caller finds no rows).
                        state = _VALUE
                        continue
                    self.saw_rows = True
                    self._row_seen = False
                    state, pos = _ROW, pos + 1
                elif state == _AFTER_VALUE:
                    if char == ",":
                        state = _KEY
                    elif char == "}":
                        state = _END
                    else:
                        raise ValueError(f"expected ',' or '}}' after a value, got {char!r}")
                    pos += 1
                else:  # _END
                    raise ValueError(f"extra data after the document: {text[pos : pos + 40]!r}")
        finally:
            self._state = state
            self._text = text[pos:] if pos < size else ""

    def _keep(self, value: Any) -> None:
        if self._key in _SCHEMA_KEYS:
            self.schema = value
        elif self._key in _STATS_KEYS:
            self.stats = value
