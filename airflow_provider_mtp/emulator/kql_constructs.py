"""duckdb-kql's "unsupported construct" errors, worded in KQL terms with the line and column.

The engine names constructs by its parser's rules (``ProjectReorderOperator``,
``source:ParenthesizedExpression``, ``aggregate:AccountName``, ``function:indexof``); clients need
the KQL they wrote (``project-reorder``, ``evaluate bag_unpack``, ``count()`` with an argument,
``indexof()``), and to know whether Kusto would run the query. A function or aggregate Kusto
documents (:data:`KUSTO_FUNCTIONS`) that the engine lacks is "valid KQL that this emulator does
not run"; any other name is unknown to Kusto too and gets Kusto's own "Failed to resolve".
"""

from __future__ import annotations

import re

from antlr4 import CommonTokenStream, InputStream, Token
from duckdb_kql._antlr.KqlLexer import KqlLexer

from airflow_provider_mtp.emulator.hunting_errors import NOT_RUN, HuntingError

#: Kusto functions and aggregates (Kusto documentation, function reference) the engine lacks.
KUSTO_FUNCTIONS = frozenset(
    [
        "around",
        "array_iff",
        "array_iif",
        "array_rotate_left",
        "array_rotate_right",
        "array_shift_left",
        "array_shift_right",
        "array_split",
        "array_strcat",
        "bag_has_key",
        "bag_keys",
        "bag_merge",
        "bag_remove_keys",
        "bag_set_key",
        "bag_zip",
        "base64_decode_toarray",
        "base64_decode_toguid",
        "base64_encode_fromarray",
        "base64_encode_fromguid",
        "bin_at",
        "bin_auto",
        "binary_all_and",
        "binary_all_or",
        "binary_all_xor",
        "buildschema",
        "column_ifexists",
        "convert_angle",
        "count_distinct",
        "count_distinctif",
        "current_cluster_endpoint",
        "current_database",
        "current_principal",
        "current_principal_details",
        "cursor_after",
        "cursor_before_or_at",
        "cursor_current",
        "datetime_local_to_utc",
        "datetime_utc_to_local",
        "dcount_hll",
        "dynamic_to_json",
        "estimate_data_size",
        "extent_id",
        "extent_tags",
        "format_bytes",
        "format_ipv4",
        "format_ipv4_mask",
        "format_timespan",
        "gamma",
        "geo_distance_2points",
        "geo_point_in_circle",
        "geo_point_in_polygon",
        "geo_point_to_geohash",
        "geo_point_to_s2cell",
        "gzip_compress_to_base64_string",
        "gzip_decompress_from_base64_string",
        "has_any_index",
        "has_any_ipv4",
        "has_any_ipv4_prefix",
        "has_ipv4",
        "has_ipv4_prefix",
        "hash",
        "hash_combine",
        "hash_crc32",
        "hash_many",
        "hash_xxhash64",
        "hll",
        "hll_if",
        "hll_merge",
        "indexof_regex",
        "ingestion_time",
        "ipv4_compare",
        "ipv4_is_in_any_range",
        "ipv4_is_in_range",
        "ipv4_is_match",
        "ipv4_is_private",
        "ipv4_netmask_suffix",
        "ipv4_range_to_cidr_list",
        "ipv6_compare",
        "ipv6_is_in_any_range",
        "ipv6_is_in_range",
        "ipv6_is_match",
        "isascii",
        "isutf8",
        "jaccard_index",
        "make_bag",
        "make_bag_if",
        "make_list_if",
        "make_list_with_nulls",
        "make_set_if",
        "maxif",
        "minif",
        "new_guid",
        "next",
        "pack_all",
        "parse_command_line",
        "parse_csv",
        "parse_ipv4_mask",
        "parse_path",
        "parse_user_agent",
        "parse_version",
        "parse_xml",
        "percentile_array_tdigest",
        "percentile_tdigest",
        "percentiles",
        "percentiles_array",
        "percentilesw",
        "percentilesw_array",
        "percentilew",
        "percentrank_tdigest",
        "prev",
        "punycode_from_string",
        "punycode_to_string",
        "rand",
        "range",
        "rank_tdigest",
        "regex_quote",
        "repeat",
        "reverse",
        "row_cumsum",
        "row_number",
        "row_rank_dense",
        "row_rank_min",
        "row_window_session",
        "series_add",
        "series_decompose",
        "series_decompose_anomalies",
        "series_decompose_forecast",
        "series_divide",
        "series_fill_backward",
        "series_fill_const",
        "series_fill_forward",
        "series_fill_linear",
        "series_fir",
        "series_fit_line",
        "series_fit_line_dynamic",
        "series_fit_2lines",
        "series_iir",
        "series_multiply",
        "series_outliers",
        "series_periods_detect",
        "series_seasonal",
        "series_stats",
        "series_stats_dynamic",
        "series_subtract",
        "set_difference",
        "set_intersect",
        "set_union",
        "stdevp",
        "strcmp",
        "string_size",
        "substring_regex",
        "take_anyif",
        "tdigest",
        "tdigest_merge",
        "tohex",
        "todecimal",
        "translate",
        "trim_regex",
        "unixtime_microseconds_todatetime",
        "unixtime_milliseconds_todatetime",
        "unixtime_nanoseconds_todatetime",
        "unixtime_seconds_todatetime",
        "url_decode",
        "url_encode",
        "url_encode_component",
        "variancep",
        "variancepif",
        "welch_test",
        "zip",
        "zlib_compress_to_base64_string",
        "zlib_decompress_from_base64_string",
    ]
)

#: Parser rule -> what a KQL author calls it, where the source text alone does not say.
_RULE_NAMES = {
    "ParenthesizedExpression": "( ... ) as a tabular source",
    "TypeLiteralExpression": "typeof()",
    "StringStarOperatorExpression": "* has",
    "ExternalDataExpression": "externaldata",
    "SearchOperator": "search",
    "FindOperator": "find",
}
#: Names the emulator's rewrites give Kusto functions -> the Kusto name.
_OWN_NAMES = {"mtp_hash": "hash", "mtp_hash_mod": "hash"}
_HINT_NOISE = re.compile(
    r"\s*\(?(?:not implemented in this wave|no DuckDB mapping in this wave)[^)]*\)?|;?\s*see translate/\S+"
)
_ARITY = re.compile(r"takes \(([\d, ]+)\) argument\(s\), got (\d+)")


def _tokens_at(text: str, line: int, column: int) -> list[Token]:
    lexer = KqlLexer(InputStream(text))
    lexer.removeErrorListeners()
    stream = CommonTokenStream(lexer)
    stream.fill()
    visible = [token for token in stream.tokens if token.channel == Token.DEFAULT_CHANNEL]
    return [
        token for token in visible if (token.line, token.column) >= (line, column) and token.type != Token.EOF
    ]


def _keyword_at(text: str, line: int, column: int, rule: str) -> str:
    tokens = _tokens_at(text, line, column)
    if not tokens or rule in _RULE_NAMES:
        return _RULE_NAMES.get(rule, rule)
    keyword = str(tokens[0].text)
    if keyword.lower() == "evaluate" and len(tokens) > 1:
        return f"evaluate {tokens[1].text}"
    return keyword


def _arity(hint: str) -> str:
    match = _ARITY.search(hint)
    if match is None:
        return hint
    counts = [int(n) for n in match.group(1).replace(" ", "").split(",") if n]
    expected = " or ".join(str(n) for n in counts) if len(counts) < 3 else f"{min(counts)} to {max(counts)}"
    return f"it takes {expected} argument(s), not {match.group(2)}"


def _clean(hint: str | None) -> str:
    text = _HINT_NOISE.sub("", hint or "").strip(" ;")
    return _arity(text)


def _relocate(span: tuple[int, int], text: str, original: str) -> tuple[int, int] | None:
    """``span`` in ``text`` (the rewritten query) as the place of the same word in ``original``."""
    tokens = _tokens_at(text, span[0], span[1])
    if not tokens:
        return None
    word = str(tokens[0].text).lower()
    same = [token for token in _tokens_at(original, 1, 0) if str(token.text).lower() == word]
    return (same[0].line, same[0].column) if same else None


def unsupported_construct(
    construct: str,
    hint: str | None,
    span: tuple[int, int] | None,
    text: str,
    original: str | None = None,
) -> HuntingError:
    """The 400 for one of duckdb-kql's ``KqlUnsupportedError``.

    :param construct: the engine's construct name.
    :param hint: the engine's hint (kept when it helps, such as an argument count).
    :param span: ``(line, column)`` with a 0-based column, if the engine gave one.
    :param text: the KQL the engine was given.
    :param original: the query as the client sent it, when the emulator rewrote it: positions are
        given in that text.
    """
    label_span = span
    if span is not None and original is not None and original != text:
        span = _relocate(span, text, original)
    where = f" at line {span[0]}, column {span[1] + 1}" if span else ""
    why = _clean(hint)
    if ": " in construct:
        # A sentence, not a name ("summarize: column 'x' outside an aggregate"): Kusto refuses it too.
        operator, detail = construct.split(": ", 1)
        return HuntingError(f"'{operator}' operator{where}: {detail}.", kind="semantic")
    kind, _, name = construct.rpartition(":")
    if kind in ("function", "aggregate"):
        name = _OWN_NAMES.get(name, name)
        label = f"{name}()"
        known = name.lower() in KUSTO_FUNCTIONS
        if why.startswith("it takes"):
            return HuntingError(f"'{label}'{where}: {why}.", kind="semantic")
        if not known:
            return HuntingError(f"Failed to resolve scalar expression named '{name}'{where}", kind="semantic")
        return HuntingError(f"'{label}'{where} {NOT_RUN}.", kind="unsupported")
    if kind == "let function":
        return HuntingError(f"'let {name} = (...) {{ ... }}'{where} {NOT_RUN}: {why}.", kind="unsupported")
    if kind == "operator":
        return HuntingError(f"'{name}'{where} {NOT_RUN}.", kind="unsupported")
    rule = name
    label = (
        _keyword_at(text, label_span[0], label_span[1], rule) if label_span else _RULE_NAMES.get(rule, rule)
    )
    if label == rule:
        # A rule name with no source position: say what kind of thing it is, not the rule.
        label = re.sub(r"(Operator|Expression)$", "", rule)
        label = re.sub(r"(?<=[a-z])(?=[A-Z])", "-", label).lower()
    return HuntingError(f"'{label}'{where} {NOT_RUN}.", kind="unsupported")
