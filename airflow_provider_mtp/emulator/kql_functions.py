"""KQL functions duckdb-kql lacks, as DuckDB SQL macros on the emulator's connection.

``hash(x [, mod])`` is Kusto's xxhash64 (seed 0) of the value's bytes: a string's UTF-8, a
long's or int's eight little-endian bytes, a datetime's ticks (Kusto documentation, hash(): the
three documented examples are in the battery). The macros do the 64-bit arithmetic in
``UHUGEINT`` modulo 2^64 and read the bytes from the hex text of the value; the rewrite turns
``hash(...)`` into the macro's name (:data:`HASH`, :data:`HASH_MOD`) and the translator learns the
names as two more rows of its function table, which is the table's documented way to grow.
"""

from __future__ import annotations

import threading

import duckdb
from duckdb_kql.translate import functions as kql_functions

#: What ``hash(x)`` and ``hash(x, mod)`` become before translation.
HASH = "mtp_hash"
HASH_MOD = "mtp_hash_mod"

_P1, _P2, _P3, _P4, _P5 = (
    11400714785074694791,
    14029467366897019727,
    1609587929392839161,
    9650029242287828579,
    2870177450012600261,
)
_M = "18446744073709551616::UHUGEINT"


def _bind(value: str, name: str, body: str) -> str:
    """``body`` with ``name`` bound to ``value`` once (a macro argument is pasted at each use)."""
    return f"list_transform([{value}], lambda {name}: {body})[1]"


_U = "::UHUGEINT"
_ROUND = f"mtp_xxh_m(mtp_xxh_rotl(mtp_xxh_m(acc + w * {_P2}{_U}), 31) * {_P1}{_U})"
_LANES = ", ".join(
    f"mtp_xxh_lane(h, n, {k}, {seed})" for k, seed in enumerate(((_P1 + _P2) % 2**64, _P2, 0, (-_P1) % 2**64))
)
_CONVERGE = (
    "mtp_xxh_merge(mtp_xxh_merge(mtp_xxh_merge(mtp_xxh_merge(mtp_xxh_m("
    "mtp_xxh_rotl(v[1], 1) + mtp_xxh_rotl(v[2], 7) + mtp_xxh_rotl(v[3], 12) + mtp_xxh_rotl(v[4], 18)), "
    "v[1]), v[2]), v[3]), v[4])"
)
_AVALANCHE = _bind(
    f"mtp_xxh_m(xor(x, x >> 33{_U}) * {_P2}{_U})",
    "a",
    _bind(f"mtp_xxh_m(xor(a, a >> 29{_U}) * {_P3}{_U})", "b", f"xor(b, b >> 32{_U})"),
)

_MACROS = [
    f"CREATE OR REPLACE MACRO mtp_xxh_m(x) AS (x % {_M})",
    "CREATE OR REPLACE MACRO mtp_xxh_rotl(x, r) AS "
    f"({_bind('x', 'y', 'mtp_xxh_m((y << CAST(r AS UHUGEINT)) | (y >> CAST(64 - r AS UHUGEINT)))')})",
    f"CREATE OR REPLACE MACRO mtp_xxh_round(acc, w) AS ({_ROUND})",
    f"CREATE OR REPLACE MACRO mtp_xxh_merge(acc, v) AS "
    f"(mtp_xxh_m(xor(acc, mtp_xxh_round(0{_U}, v)) * {_P1}{_U} + {_P4}{_U}))",
    # Little-endian words out of the hex text of the bytes (2 hex digits a byte).
    "CREATE OR REPLACE MACRO mtp_xxh_word(h, i, n) AS (('0x' || array_to_string(list_reverse("
    "list_transform(range(n), lambda k: substr(h, 2 * (i + k) + 1, 2))), ''))::UHUGEINT)",
    "CREATE OR REPLACE MACRO mtp_xxh_lane(h, n, k, v0) AS (list_reduce(list_prepend(v0::UHUGEINT, "
    "list_transform(range(n // 32), lambda s: mtp_xxh_word(h, 32 * s + 8 * k, 8))), "
    "lambda acc, w: mtp_xxh_round(acc, w)))",
    f"CREATE OR REPLACE MACRO mtp_xxh_stripes(h, n) AS (CASE WHEN n >= 32 THEN "
    f"{_bind(f'[{_LANES}]', 'v', _CONVERGE)} ELSE {_P5}{_U} END)",
    # The tail after the stripes: 8-byte words, one 4-byte word, single bytes.
    "CREATE OR REPLACE MACRO mtp_xxh_words(h, n, acc) AS (list_reduce(list_prepend(acc, "
    "list_transform(range((n - (n // 32) * 32) // 8), lambda j: mtp_xxh_word(h, (n // 32) * 32 + 8 * j, 8))), "
    f"lambda a, w: mtp_xxh_m(mtp_xxh_rotl(xor(a, mtp_xxh_round(0{_U}, w)), 27) * {_P1}{_U} + {_P4}{_U})))",
    "CREATE OR REPLACE MACRO mtp_xxh_half(h, n, acc) AS (CASE WHEN n % 8 >= 4 THEN "
    f"mtp_xxh_m(mtp_xxh_rotl(xor(acc, mtp_xxh_m(mtp_xxh_word(h, n - n % 8, 4) * {_P1}{_U})), 23) "
    f"* {_P2}{_U} + {_P3}{_U}) ELSE acc END)",
    "CREATE OR REPLACE MACRO mtp_xxh_bytes(h, n, acc) AS (list_reduce(list_prepend(acc, "
    "list_transform(range(n % 4), lambda j: mtp_xxh_word(h, n - n % 4 + j, 1))), "
    f"lambda a, b: mtp_xxh_m(mtp_xxh_rotl(xor(a, mtp_xxh_m(b * {_P5}{_U})), 11) * {_P1}{_U})))",
    f"CREATE OR REPLACE MACRO mtp_xxh_avalanche(x) AS ({_AVALANCHE})",
    "CREATE OR REPLACE MACRO mtp_xxh64_hex(h0) AS ("
    + _bind(
        "h0",
        "h",
        _bind(
            "length(h) // 2",
            "n",
            "mtp_xxh_avalanche(mtp_xxh_bytes(h, n, mtp_xxh_half(h, n, mtp_xxh_words(h, n, "
            "mtp_xxh_m(mtp_xxh_stripes(h, n) + CAST(n AS UHUGEINT))))))",
        ),
    )
    + ")",
    # Eight little-endian bytes of a 64-bit value, as hex text in memory order.
    "CREATE OR REPLACE MACRO mtp_xxh_u64_hex(v) AS (array_to_string(list_reverse(list_transform(range(8), "
    "lambda k: substr(lpad(printf('%x', v), 16, '0'), 2 * k + 1, 2))), ''))",
    # The unsigned hash of a KQL value, by its type.
    "CREATE OR REPLACE MACRO mtp_kql_hash_u(x) AS (CASE "
    "WHEN typeof(x) IN ('TIMESTAMP', 'TIMESTAMP WITH TIME ZONE') THEN mtp_xxh64_hex(mtp_xxh_u64_hex("
    "(epoch_us(TRY_CAST(x AS TIMESTAMP)) * 10 + 621355968000000000)::UHUGEINT)) "
    "WHEN typeof(x) IN ('BIGINT', 'INTEGER', 'SMALLINT', 'TINYINT') THEN mtp_xxh64_hex(mtp_xxh_u64_hex("
    f"mtp_xxh_m((TRY_CAST(x AS HUGEINT) + {_M}::HUGEINT)::UHUGEINT))) "
    "ELSE mtp_xxh64_hex(hex(encode(CAST(x AS VARCHAR)))) END)",
    f"CREATE OR REPLACE MACRO {HASH}(x) AS ("
    + _bind(
        "mtp_kql_hash_u(x)",
        "u",
        f"CASE WHEN u >= 9223372036854775808{_U} THEN (u::HUGEINT - {_M}::HUGEINT)::BIGINT ELSE u::BIGINT END",
    )
    + ")",
    f"CREATE OR REPLACE MACRO {HASH_MOD}(x, m) AS ((mtp_kql_hash_u(x) % m::UHUGEINT)::BIGINT)",
]

_lock = threading.Lock()


def teach_translator() -> None:
    """Add the macros' names to duckdb-kql's function table (idempotent)."""
    with _lock:
        table = kql_functions.SCALAR_FUNCTIONS
        if HASH not in table:
            table[HASH] = kql_functions.FunctionSpec(HASH, "template", f"{HASH}({{0}})", (1,))
            table[HASH_MOD] = kql_functions.FunctionSpec(
                HASH_MOD, "template", f"{HASH_MOD}({{0}}, {{1}})", (2,)
            )


def install(con: duckdb.DuckDBPyConnection) -> None:
    """Create the macros on ``con`` (cursors of it see them) and teach the translator their names.

    :param con: the connection holding the hunting tables.
    """
    teach_translator()
    for statement in _MACROS:
        con.execute(statement)
