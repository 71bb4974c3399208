"""Untrusted values as bound KQL parameters, and the KQL token scan the hunting operator needs.

A value typed into the UI trigger form must never become KQL syntax. Like a SQL driver's bound
parameters, :func:`bind` turns values into typed ``let`` statements placed before the query::

    bind({"device": 'x" | union * | take 1 //'}, {})
    # let device = "x\\" | union * | take 1 //";

and the query refers to ``device`` by name. The **type of each value is declared**
(``string`` by default), never guessed from its rendered text: a rendered ``"5"`` without a
declared type stays the string ``"5"``.

Kinds (:data:`KINDS`; aliases in brackets):

=================================  =======================================================
``string`` [``str``]               ``"..."``; every Python string except lone surrogates
``datetime`` [``date``]            ``datetime(2026-11-01T00:00:00.0000000Z)``; aware or naive
                                   (naive means UTC, as in Kusto) datetimes, dates, ISO 8601
``timespan`` [``time``]            ``timespan(1.02:03:04.0000000)``; ``timedelta``, ``1d``,
                                   ``2h``, ``1.02:03:04``, ISO 8601 ``PT5M``
``long`` [``int64``]               ``long(5)``; ``int`` or decimal digits, 64-bit
``int`` [``int32``]                ``int(5)``; 32-bit
``real`` [``number``, ``double``]  ``real(0.1)``, ``real(nan)``, ``real(+inf)``
``bool`` [``boolean``]             ``true``/``false``; also the text ``true``/``false``, any case
``dynamic``                        ``dynamic(...)`` of a JSON-like value (or JSON text)
``list`` / ``list[<kind>]``        ``dynamic([...])``; a list, or its JSON (or Python) text;
                                   with ``list[long]`` etc. each element is of that kind
=================================  =======================================================

``None`` becomes a typed null (``long(null)``) for every kind but ``string``: Kusto strings have
no null, so ``None`` is refused there (pass ``""``).

Strings are written in double quotes with Kusto's backslash escapes for ``\\``, ``"``, newline,
carriage return and tab; every other character is written as itself, which Kusto's grammar
(``microsoft/Kusto-Query-Language``, ``STRINGLITERAL``) allows inside a double-quoted string,
including other control characters, NUL, ``U+2028`` and characters beyond the BMP. Unicode
escapes (``\\u0041``) are deliberately not used: Kusto's documentation does not promise them and
duckdb-kql (the emulator's engine) reads them as plain text. A lone surrogate cannot travel in
UTF-8 at all and is refused. The test suite round-trips generated strings through the engine.

Jinja filters with the same escaping are in :data:`KQL_FILTERS`, for authors who template KQL
themselves::

    DAG(..., user_defined_filters=KQL_FILTERS)
    # | where DeviceName == {{ params.device | kql_string }}

:class:`~airflow_provider_mtp.operators.hunting.RunHuntingQueryOperator` adds them to its own
template rendering, so there they work without the DAG-level setting.

The module also scans KQL into tokens (:func:`tokenize`), enough to tell whether a query uses a
name such as ``WindowStart`` as code rather than inside a string or a comment, and which parts
of a query make its rows depend on the whole time window (:func:`window_dependent_parts`).
"""

from __future__ import annotations

import ast
import itertools
import json
import math
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from airflow_provider_mtp.common.durations import InvalidDurationError, iso_duration
from airflow_provider_mtp.common.ticks import TICKS_PER_SECOND as _TICKS_PER_SECOND
from airflow_provider_mtp.common.ticks import duration_ticks
from airflow_provider_mtp.errors import MTPConfigError

__all__ = [
    "KINDS",
    "KQL_FILTERS",
    "RESERVED_NAMES",
    "WINDOW_FUNCTIONS",
    "WINDOW_NAMES",
    "WINDOW_OPERATORS",
    "Token",
    "bind",
    "defined_names",
    "literal",
    "normalise_kind",
    "referenced_names",
    "tokenize",
    "validate_name",
    "window_dependent_parts",
]

#: The kinds :func:`literal` writes (``list[<kind>]`` too).
KINDS = ("string", "datetime", "timespan", "long", "int", "real", "bool", "dynamic", "list")
_ALIASES = {
    "string": "string",
    "str": "string",
    "datetime": "datetime",
    "date": "datetime",
    "timespan": "timespan",
    "time": "timespan",
    "long": "long",
    "int64": "long",
    "int": "int",
    "int32": "int",
    "real": "real",
    "number": "real",
    "double": "real",
    "float": "real",
    "bool": "bool",
    "boolean": "bool",
    "dynamic": "dynamic",
    "list": "list",
}
_LIST_KIND = re.compile(r"^list\[\s*([a-z0-9]+)\s*\]$")

#: The names the hunting operator binds to its time window.
WINDOW_NAMES = ("WindowStart", "WindowEnd")

#: Words of Microsoft's KQL grammar (``KqlTokens.g4``) that cannot be ``let`` names: the
#: keyword tokens, the type names and the boolean literals. ``let where = 1`` is a syntax error.
RESERVED_NAMES = frozenset(
    """
    access accumulate aggregations alias all and anomalychart anomalycolumns areachart as asc axes
    bagexpansion barchart base between bin bin_legacy by card cluster columnchart consume contains
    containscs contains_cs count database datascope datatable declare decodeblocks default delta desc
    distinct edges endswith endswith_cs entity_group evaluate execute expandoutput extend externaldata
    external_data facet filter find first flags fork from getschema has has_all has_any has_cs
    hasprefix hasprefix_cs hassuffix hassuffix_cs hidden hot hotcache hotdata hotindex id in into
    invoke isfuzzy join kind ladderchart last legend let like likecs limit linear linechart list
    lookup log map materialize mvapply mvexpand nodes none nooptimization notcontains notcontainscs
    notlike notlikecs null nulls of on optional or order others output pack panels parse partition
    pattern piechart pivotchart plugin print project query_parameters range reduce regex relaxed
    render replace restrict sample scan scatterchart search serialize series set simple sort stacked
    stacked100 stackedareachart startswith startswith_cs step summarize table take threshold
    timechart timeline timepivot title to top toscalar totable treemap typeof union unstacked uuid
    view visible where with withsource with_itemindex with_match_id with_node_id with_source
    with_step_name xaxis xcolumn xmax xmin xtitle yaxis ycolumns ymax ymin ysplit ytitle
    bool boolean date datetime decimal double dynamic float guid int int8 int16 int32 int64 long
    string real time timespan uint uint8 uint16 uint32 uint64 ulong uniqueid
    true false True False TRUE FALSE not
    """.split()  # noqa: SIM905 - a block of words reads (and diffs) better than 220 quoted strings
)
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

_INT64 = (-(2**63), 2**63 - 1)
_INT32 = (-(2**31), 2**31 - 1)
_TICKS_PER_DAY = 86_400 * _TICKS_PER_SECOND

_STRING_ESCAPES = str.maketrans({"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t"})
_SURROGATE = re.compile("[\ud800-\udfff]")
_ISO_DATETIME = re.compile(
    r"^(\d{4}-\d{2}-\d{2})(?:[T ](\d{2}:\d{2}(?::\d{2}(?:\.(\d{1,7}))?)?))?\s*(Z|z|[+-]\d{2}:?\d{2})?$"
)
_TIMESPAN_UNITS = {
    "d": _TICKS_PER_DAY,
    "day": _TICKS_PER_DAY,
    "days": _TICKS_PER_DAY,
    "h": 3600 * _TICKS_PER_SECOND,
    "hr": 3600 * _TICKS_PER_SECOND,
    "hrs": 3600 * _TICKS_PER_SECOND,
    "hour": 3600 * _TICKS_PER_SECOND,
    "hours": 3600 * _TICKS_PER_SECOND,
    "m": 60 * _TICKS_PER_SECOND,
    "min": 60 * _TICKS_PER_SECOND,
    "minute": 60 * _TICKS_PER_SECOND,
    "minutes": 60 * _TICKS_PER_SECOND,
    "s": _TICKS_PER_SECOND,
    "sec": _TICKS_PER_SECOND,
    "second": _TICKS_PER_SECOND,
    "seconds": _TICKS_PER_SECOND,
    "ms": _TICKS_PER_SECOND // 1000,
    "millisecond": _TICKS_PER_SECOND // 1000,
    "milliseconds": _TICKS_PER_SECOND // 1000,
    "microsecond": 10,
    "microseconds": 10,
    "tick": 1,
    "ticks": 1,
}
_TOO_LONG = "it is longer than Kusto's timespan range (10,675,199 days)"
_TIMESPAN_UNIT = re.compile(r"^(\d+(?:\.\d+)?)\s*([a-z]+)$")
_TIMESPAN_CLOCK = re.compile(r"^(-)?(?:(\d+)\.)?(\d{1,2}):(\d{2})(?::(\d{2})(?:\.(\d{1,7}))?)?$")


def _error(what: str, value: Any, kind: str, fix: str) -> MTPConfigError:
    shown = repr(value)
    if len(shown) > 80:
        shown = shown[:77] + "..."
    return MTPConfigError(f"{what}: cannot make a KQL {kind} of {shown} ({type(value).__name__}); {fix}")


def normalise_kind(kind: str) -> str:
    """The canonical name of a declared kind: ``number`` is ``real``, ``list[str]`` is ``list[string]``.

    :param kind: a kind from :data:`KINDS`, an alias, or ``list[<kind>]``.
    :raises MTPConfigError: the kind is unknown.
    """
    if not isinstance(kind, str):
        raise MTPConfigError(f"A KQL parameter type must be a string such as 'long', not {kind!r}")
    text = kind.strip().lower()
    match = _LIST_KIND.match(text)
    if match:
        element = normalise_kind(match.group(1))
        if element in ("dynamic", "list") or element.startswith("list["):
            raise MTPConfigError(f"list[...] takes a scalar kind, not {kind!r}")
        return f"list[{element}]"
    if text not in _ALIASES:
        accepted = ", ".join((*KINDS, "list[<kind>]"))
        raise MTPConfigError(f"Unknown KQL parameter type {kind!r}; accepted: {accepted}")
    return _ALIASES[text]


# --------------------------------------------------------------------------------------------------
# Literals
# --------------------------------------------------------------------------------------------------


def literal(value: Any, kind: str = "string", *, what: str = "value") -> str:
    """A KQL literal of ``value`` read as ``kind``; nothing in ``value`` can become KQL syntax.

    :param value: the value; its Python type must suit ``kind`` (a string is parsed only when
        ``kind`` says what it holds, e.g. ``"5"`` with ``long``).
    :param kind: see the module docstring; ``string`` by default.
    :param what: how to name the value in errors (``query_parameters['device']``).
    :raises MTPConfigError: the value cannot be read as ``kind``.
    """
    canonical = normalise_kind(kind)
    if canonical.startswith("list"):
        return _list_literal(value, canonical, what)
    if value is None:
        if canonical == "string":
            raise _error(what, value, "string", "Kusto strings have no null: pass '' instead")
        return f"{canonical}(null)"
    if canonical == "string":
        return _string_literal(value, what)
    if canonical == "datetime":
        return f"datetime({_datetime_text(value, what)})"
    if canonical == "timespan":
        return f"timespan({_timespan_text(_timespan_ticks(value, what))})"
    if canonical in ("long", "int"):
        return f"{canonical}({_integer(value, canonical, what)})"
    if canonical == "real":
        return f"real({_real_text(_real(value, what))})"
    if canonical == "bool":
        return "true" if _bool(value, what) else "false"
    return f"dynamic({_dynamic_element(_parse_json_text(value, what, 'dynamic'), what)})"


def _string_literal(value: Any, what: str) -> str:
    if not isinstance(value, str):
        raise _error(what, value, "string", "declare its type (e.g. 'long', 'datetime') or pass it as text")
    bad = _SURROGATE.search(value)
    if bad:
        raise _error(
            what,
            value,
            "string",
            f"it holds a lone surrogate (U+{ord(bad.group()):04X} at {bad.start()}), which UTF-8 cannot carry",
        )
    return '"' + value.translate(_STRING_ESCAPES) + '"'


def _datetime_text(value: Any, what: str) -> str:
    """``YYYY-MM-DDTHH:MM:SS.fffffffZ``; a 7th fractional digit given in text is kept."""
    extra_digit = "0"
    if isinstance(value, str):
        match = _ISO_DATETIME.match(value.strip())
        if match is None:
            raise _error(what, value, "datetime", "give an ISO 8601 time such as 2026-11-01T00:00:00Z")
        fraction = match.group(3) or ""
        if len(fraction) == 7:
            extra_digit = fraction[6]
        try:
            value = datetime.fromisoformat(value.strip().replace("z", "Z"))
        except ValueError:
            raise _error(what, value, "datetime", "give a real calendar time (month 1-12, ...)") from None
    elif isinstance(value, date) and not isinstance(value, datetime):
        value = datetime(value.year, value.month, value.day, tzinfo=UTC)
    if not isinstance(value, datetime):
        raise _error(what, value, "datetime", "give a datetime, a date or an ISO 8601 string")
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)  # Kusto reads a datetime without a zone as UTC.
    try:
        value = value.astimezone(UTC)
    except (OverflowError, ValueError):
        raise _error(what, value, "datetime", "it falls outside years 1-9999 in UTC") from None
    # Not strftime: its %Y writes year 999 as "999", and Kusto wants four digits.
    return (
        f"{value.year:04d}-{value.month:02d}-{value.day:02d}T{value.hour:02d}:{value.minute:02d}:"
        f"{value.second:02d}.{value.microsecond:06d}{extra_digit}Z"
    )


def _timespan_ticks(value: Any, what: str) -> int:
    """A duration as 100 ns ticks, Kusto's unit."""
    if isinstance(value, timedelta):
        ticks = duration_ticks(value)
    elif isinstance(value, str):
        ticks = _parse_timespan(value.strip(), what)
    else:
        raise _error(what, value, "timespan", "give a timedelta or text such as 1d, 2h, 00:30:00 or PT5M")
    if not _INT64[0] <= ticks <= _INT64[1]:
        raise _error(what, value, "timespan", _TOO_LONG)
    return ticks


def _parse_timespan(text: str, what: str) -> int:
    unit = _TIMESPAN_UNIT.match(text.lower())
    if unit and unit.group(2) in _TIMESPAN_UNITS:
        return _scaled(unit.group(1), _TIMESPAN_UNITS[unit.group(2)])
    clock = _TIMESPAN_CLOCK.match(text)
    if clock:
        sign, days, hours, minutes, seconds, fraction = clock.groups()
        if int(hours) > 23 or int(minutes) > 59 or int(seconds or 0) > 59:
            raise _error(what, text, "timespan", "hours must be 0-23, minutes and seconds 0-59")
        ticks = (
            int(days or 0) * _TICKS_PER_DAY
            + (int(hours) * 3600 + int(minutes) * 60 + int(seconds or 0)) * _TICKS_PER_SECOND
            + int((fraction or "").ljust(7, "0"))
        )
        return -ticks if sign else ticks
    try:
        # ISO 8601 (PT5M, -P1DT12H), read to the microsecond by pendulum; years and months refused.
        return duration_ticks(iso_duration(text, signed=True))
    except InvalidDurationError as exc:
        if exc.too_long:
            raise _error(what, text, "timespan", _TOO_LONG) from None
    raise _error(what, text, "timespan", "give text such as 1d, 2h, 30m, 1.02:03:04 or PT5M, or a timedelta")


def _scaled(number: str, ticks_per_unit: int) -> int:
    whole, _, fraction = number.partition(".")
    value = int(whole) * ticks_per_unit
    if fraction:
        value += int(fraction) * ticks_per_unit // 10 ** len(fraction)
    return value


def _timespan_text(ticks: int) -> str:
    """``[-]d.hh:mm:ss.fffffff``, the form Kusto writes."""
    sign = "-" if ticks < 0 else ""
    days, rest = divmod(abs(ticks), _TICKS_PER_DAY)
    seconds, fraction = divmod(rest, _TICKS_PER_SECOND)
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    return f"{sign}{days}.{hours:02d}:{minutes:02d}:{seconds:02d}.{fraction:07d}"


def _integer(value: Any, kind: str, what: str) -> int:
    if isinstance(value, bool):
        raise _error(what, value, kind, "a bool is not a number here: declare the type 'bool'")
    if isinstance(value, str) and re.fullmatch(r"\s*[+-]?\d+\s*", value):
        value = int(value)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if not isinstance(value, int):
        raise _error(what, value, kind, "give a whole number or its decimal digits")
    low, high = _INT64 if kind == "long" else _INT32
    if not low <= value <= high:
        raise _error(what, value, kind, f"it is outside the {kind} range {low}..{high}")
    return value


def _real(value: Any, what: str) -> float:
    if isinstance(value, bool):
        raise _error(what, value, "real", "a bool is not a number here: declare the type 'bool'")
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        text = value.strip().lower()
        specials = {"nan": math.nan, "inf": math.inf, "+inf": math.inf, "-inf": -math.inf}
        specials |= {"infinity": math.inf, "+infinity": math.inf, "-infinity": -math.inf}
        if text in specials:
            return specials[text]
        if re.fullmatch(r"[+-]?(\d+(\.\d*)?|\.\d+)(e[+-]?\d+)?", text):
            return float(text)
    raise _error(what, value, "real", "give a number or its decimal text")


def _real_text(number: float) -> str:
    if math.isnan(number):
        return "nan"
    if math.isinf(number):
        return "+inf" if number > 0 else "-inf"
    return repr(number)


def _bool(value: Any, what: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise _error(what, value, "bool", "give True/False or the text 'true'/'false'")


def _parse_json_text(value: Any, what: str, kind: str) -> Any:
    """A dynamic value given as text (a rendered template) read as JSON, else as a Python literal."""
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except ValueError:
        pass
    try:
        # Jinja renders a list as its Python repr (['a', 'b']); literal_eval reads only literals.
        return ast.literal_eval(value.strip())
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        raise _error(what, value, kind, "the text is neither JSON nor a Python literal") from None


def _list_literal(value: Any, kind: str, what: str) -> str:
    if value is None:
        return "dynamic(null)"
    value = _parse_json_text(value, what, kind)
    if not isinstance(value, list | tuple):
        raise _error(what, value, kind, 'give a list (or its JSON text such as ["a", "b"])')
    match = _LIST_KIND.match(kind)
    element_kind = match.group(1) if match else None
    elements = []
    for index, element in enumerate(value):
        where = f"{what}[{index}]"
        if element_kind is not None:
            elements.append(_typed_element(element, element_kind, where))
        elif isinstance(element, dict | list | tuple):
            raise _error(where, element, "list element", "nest values with the type 'dynamic'")
        else:
            elements.append(_dynamic_element(element, where))
    return f"dynamic([{', '.join(elements)}])"


def _typed_element(value: Any, kind: str, what: str) -> str:
    """One element of a ``list[<kind>]``, spelled as a dynamic literal allows."""
    if value is None:
        if kind == "string":
            raise _error(what, value, "string", "Kusto strings have no null: pass '' instead")
        return "null"
    if kind == "string":
        return _string_literal(value, what)
    if kind == "datetime":
        return f"datetime({_datetime_text(value, what)})"
    if kind == "timespan":
        return f"timespan({_timespan_text(_timespan_ticks(value, what))})"
    if kind in ("long", "int"):
        return str(_integer(value, kind, what))
    if kind == "real":
        return _finite(_real(value, what), what)
    return "true" if _bool(value, what) else "false"


def _finite(number: float, what: str) -> str:
    if not math.isfinite(number):
        raise _error(what, number, "dynamic number", "NaN and infinity cannot sit in a dynamic value")
    return repr(number)


def _dynamic_element(value: Any, what: str, depth: int = 0) -> str:
    """A value inside ``dynamic(...)``: strings, numbers, bools, null, times, lists, property bags."""
    if depth > 64:
        raise _error(what, value, "dynamic", "it is nested more than 64 levels deep")
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(_integer(value, "long", what))
    if isinstance(value, float):
        return _finite(value, what)
    if isinstance(value, str):
        return _string_literal(value, what)
    if isinstance(value, datetime | date):
        return f"datetime({_datetime_text(value, what)})"
    if isinstance(value, timedelta):
        return f"timespan({_timespan_text(_timespan_ticks(value, what))})"
    if isinstance(value, list | tuple):
        items = (_dynamic_element(item, f"{what}[{i}]", depth + 1) for i, item in enumerate(value))
        return "[" + ", ".join(items) + "]"
    if isinstance(value, dict):
        pairs = []
        for key, item in value.items():
            if not isinstance(key, str):
                raise _error(what, key, "dynamic key", "property-bag keys must be strings")
            pairs.append(
                f"{_string_literal(key, what)}: {_dynamic_element(item, f'{what}[{key!r}]', depth + 1)}"
            )
        return "{" + ", ".join(pairs) + "}"
    raise _error(what, value, "dynamic", "give JSON-like values (str, int, float, bool, None, list, dict)")


# --------------------------------------------------------------------------------------------------
# Binding
# --------------------------------------------------------------------------------------------------


def validate_name(name: Any, *, what: str = "parameter") -> str:
    """``name`` if it can be a KQL ``let`` name; else a clear error.

    :param name: the candidate.
    :param what: how to name it in the error.
    :raises MTPConfigError: not an identifier, a reserved word, or a window name.
    """
    if not isinstance(name, str) or not _NAME.match(name):
        raise MTPConfigError(
            f"{what} name {name!r} is not a KQL identifier: use letters, digits and '_', not starting "
            "with a digit (e.g. device_name)"
        )
    if name.startswith("__") or name in RESERVED_NAMES:
        raise MTPConfigError(
            f"{what} name {name!r} is a KQL keyword or reserved word; rename it (e.g. p_{name})"
        )
    if name in WINDOW_NAMES:
        raise MTPConfigError(
            f"{what} name {name!r} is reserved: the hunting operator binds {' and '.join(WINDOW_NAMES)} "
            "to the run's time window; use start/end or lookback to set the window"
        )
    return name


def bind(parameters: Mapping[str, Any] | None, types: Mapping[str, str] | None = None) -> str:
    """``let name = <literal>;`` lines, one per parameter, sorted by name, each ending in a newline.

    :param parameters: name -> value.
    :param types: name -> declared kind; a parameter without one is a ``string``.
    :raises MTPConfigError: a bad name, an unknown kind, a type for an unknown parameter, or a
        value that cannot be read as its kind.
    """
    parameters = dict(parameters or {})
    types = dict(types or {})
    unknown = sorted(set(types) - set(parameters))
    if unknown:
        raise MTPConfigError(
            f"parameter_types names {', '.join(map(repr, unknown))}, which query_parameters does not have"
        )
    lines = []
    for name in sorted(parameters):
        validate_name(name, what="query_parameters")
        value = literal(parameters[name], types.get(name, "string"), what=f"query_parameters[{name!r}]")
        lines.append(f"let {name} = {value};\n")
    return "".join(lines)


def _filter(kind: str) -> Callable[[Any], str]:
    def render(value: Any) -> str:
        return literal(value, kind, what=f"kql_{kind} filter")

    render.__name__ = f"kql_{kind}"
    render.__doc__ = f"Jinja filter: ``value`` as a KQL {kind} literal."
    return render


def kql_list(value: Any, kind: str | None = None) -> str:
    """Jinja filter: ``{{ values | kql_list }}`` or ``{{ ids | kql_list('long') }}`` -> ``dynamic([...])``."""
    return literal(value, f"list[{kind}]" if kind else "list", what="kql_list filter")


def kql(value: Any, kind: str = "string") -> str:
    """Jinja filter: ``{{ value | kql('datetime') }}``, any kind by name."""
    return literal(value, kind, what="kql filter")


#: Jinja filters writing KQL literals: ``DAG(..., user_defined_filters=KQL_FILTERS)``.
KQL_FILTERS: dict[str, Callable[..., str]] = {
    "kql": kql,
    "kql_string": _filter("string"),
    "kql_datetime": _filter("datetime"),
    "kql_timespan": _filter("timespan"),
    "kql_long": _filter("long"),
    "kql_int": _filter("int"),
    "kql_real": _filter("real"),
    "kql_bool": _filter("bool"),
    "kql_dynamic": _filter("dynamic"),
    "kql_list": kql_list,
}


# --------------------------------------------------------------------------------------------------
# Tokens
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Token:
    """One KQL token: ``identifier``, ``string``, ``number`` or ``punctuation``.

    :param kind: the token's kind.
    :param text: its text as written.
    :param start: its offset in the query.
    """

    kind: str
    text: str
    start: int


_LINE_ENDS = "\n\r\u2028\u2029"
_IDENTIFIER = re.compile(r"[A-Za-z_$][A-Za-z0-9_]*")
_NUMBER = re.compile(r"[0-9][0-9A-Za-z_]*")


def _string_end(query: str, start: int) -> int:
    """The offset just past the string literal at ``start`` (after any ``h``/``H`` prefix).

    Follows Kusto's grammar: ``"..."``/``'...'`` with backslash escapes, ``@"..."``/``@'...'``
    with doubled quotes, and multi-line ``````...`````` / ``~~~...~~~``. An unterminated literal
    runs to the end of its line (or of the query, for the multi-line forms).
    """
    length = len(query)
    for fence in ("```", "~~~"):
        if query.startswith(fence, start):
            close = query.find(fence, start + 3)
            return length if close < 0 else close + 3
    verbatim = query[start] == "@"
    position = start + 1 if verbatim else start
    quote = query[position]
    position += 1
    while position < length:
        char = query[position]
        if char in "\n\r":
            return position
        if not verbatim and char == "\\":
            position += 2
            continue
        if char == quote:
            if verbatim and query.startswith(quote, position + 1):
                position += 2
                continue
            return position + 1
        position += 1
    return length


def _starts_string(query: str, position: int) -> bool:
    rest = query[position : position + 3]
    return rest[:1] in ("'", '"') or rest[:2] in ("@'", '@"') or rest in ("```", "~~~")


def tokenize(query: str) -> Iterator[Token]:
    """The query's tokens, without whitespace and comments.

    Not a parser: enough to tell code from strings and comments (every string form, including
    verbatim, multi-line and obfuscated ``h"..."`` literals).

    :param query: the KQL text.
    """
    position, length = 0, len(query)
    while position < length:
        char = query[position]
        if char.isspace() or char == "\ufeff":
            position += 1
            continue
        if query.startswith("//", position):
            while position < length and query[position] not in _LINE_ENDS:
                position += 1
            continue
        start = position
        if char in "hH" and _starts_string(query, position + 1):
            end = _string_end(query, position + 1)
            yield Token("string", query[start:end], start)
            position = end
            continue
        if _starts_string(query, position):
            end = _string_end(query, position)
            yield Token("string", query[start:end], start)
            position = end
            continue
        match = _IDENTIFIER.match(query, position) or None
        if match:
            yield Token("identifier", match.group(), start)
            position = match.end()
            continue
        number = _NUMBER.match(query, position)
        if number:
            yield Token("number", number.group(), start)
            position = number.end()
            continue
        width = 2 if query.startswith("..", position) else 1  # a range, not a member access
        yield Token("punctuation", query[position : position + width], start)
        position += width


def referenced_names(query: str, names: tuple[str, ...] | None = None) -> set[str]:
    """Identifiers the query uses as code (not in strings or comments, not after a ``.``).

    :param query: the KQL text.
    :param names: only report these (default: every identifier).
    """
    found: set[str] = set()
    previous: Token | None = None
    for token in tokenize(query):
        member = previous is not None and previous.text == "."
        if token.kind == "identifier" and not member and (names is None or token.text in names):
            found.add(token.text)
        previous = token
    return found


def defined_names(query: str) -> set[str]:
    """Names the query itself binds with ``let <name> =``."""
    found: set[str] = set()
    tokens = list(tokenize(query))
    for first, second, third in zip(tokens, tokens[1:], tokens[2:], strict=False):
        if first.text == "let" and second.kind == "identifier" and third.text == "=":
            found.add(second.text)
    return found


# --------------------------------------------------------------------------------------------------
# Rows that depend on the whole window
# --------------------------------------------------------------------------------------------------

#: Tabular operators (after a ``|``) whose rows depend on every row of their input, so a window
#: run in pieces does not give the whole window's rows: the first N, a sample, one row per
#: distinct value, counts, row numbers, series and groups over the window.
WINDOW_OPERATORS = frozenset(
    {
        "take",
        "limit",
        "top",
        "top-nested",
        "top-hitters",
        "distinct",
        "count",
        "sample",
        "sample-distinct",
        "serialize",
        "make-series",
        "reduce",
        "scan",
        "partition",
        "facet",
    }
)
#: Functions whose value depends on other rows of the input (order, neighbours, a scalar of all).
WINDOW_FUNCTIONS = frozenset(
    {
        "row_number",
        "row_cumsum",
        "row_rank_dense",
        "row_rank_min",
        "row_window_session",
        "prev",
        "next",
        "toscalar",
    }
)
#: ``evaluate`` plugins that work row by row; every other plugin looks at all its input.
ROW_PLUGINS = frozenset({"bag_unpack", "ipv4_lookup", "ipv6_lookup"})
#: The time column of Defender's hunting tables (``TimeGenerated`` in the unified portal).
TIME_COLUMNS = ("Timestamp", "TimeGenerated")
#: Functions of a time column that group by time (a row's group is fixed by its own time).
_TIME_BINS = frozenset({"bin", "bin_at", "floor", "startofday", "startofweek", "startofmonth", "startofyear"})
_OPEN, _CLOSE = "([{", ")]}"


def _operator_at(tokens: list[Token], index: int) -> tuple[str, int]:
    """The operator name starting at ``tokens[index]`` (``top-nested``: joined) and the index after it."""
    name, position = tokens[index].text, index + 1
    while (
        position + 1 < len(tokens)
        and tokens[position].text == "-"
        and tokens[position + 1].kind == "identifier"
        and tokens[position].start == tokens[position - 1].start + len(tokens[position - 1].text)
        and tokens[position + 1].start == tokens[position].start + 1
    ):
        name += "-" + tokens[position + 1].text
        position += 2
    return name, position


def _clause(tokens: list[Token], start: int) -> list[tuple[Token, int]]:
    """The tokens of the operator clause from ``start`` to the next ``|``/``;`` at its own level,
    each with its nesting depth relative to the clause."""
    clause: list[tuple[Token, int]] = []
    depth = 0
    for token in tokens[start:]:
        if token.kind == "punctuation" and token.text in _CLOSE:
            if depth == 0:
                break
            depth -= 1
        elif depth == 0 and token.kind == "punctuation" and token.text in ("|", ";"):
            break
        clause.append((token, depth))
        if token.kind == "punctuation" and token.text in _OPEN:
            depth += 1
    return clause


def _after_keyword(clause: list[tuple[Token, int]], keyword: str) -> list[tuple[Token, int]] | None:
    for position, (token, depth) in enumerate(clause):
        if depth == 0 and token.kind == "identifier" and token.text == keyword:
            return clause[position + 1 :]
    return None


def _groups_by_time(clause: list[tuple[Token, int]], time_columns: tuple[str, ...]) -> bool:
    """True when a ``summarize`` clause's ``by`` holds the time column, bare or binned."""
    by = _after_keyword(clause, "by")
    if by is None:
        return False
    for position, (token, depth) in enumerate(by):
        if token.text not in time_columns or token.kind != "identifier":
            continue
        if depth == 0:
            return True
        # bin(Timestamp, 1h): the column is the first argument of a time-bin function.
        if (
            depth == 1
            and position >= 2
            and by[position - 1][0].text == "("
            and by[position - 2][0].text in _TIME_BINS
        ):
            return True
    return False


def _joins_on_time(clause: list[tuple[Token, int]], time_columns: tuple[str, ...]) -> bool:
    on = _after_keyword(clause, "on")
    return on is not None and any(
        token.kind == "identifier" and token.text in time_columns for token, _ in on
    )


def _line(query: str, token: Token) -> int:
    return query.count("\n", 0, token.start) + 1


def window_dependent_parts(query: str, *, time_columns: tuple[str, ...] = TIME_COLUMNS) -> list[str]:
    """What in ``query`` makes its rows depend on the whole window, so it cannot run in pieces.

    Found (in code only: strings and comments are skipped by :func:`tokenize`):

    * after a ``|``: the operators of :data:`WINDOW_OPERATORS`; ``summarize`` unless its ``by``
      holds the time column (``by Timestamp`` or ``by bin(Timestamp, 1h)``); ``join`` unless its
      ``on`` names the time column; ``evaluate`` with a plugin not in :data:`ROW_PLUGINS`;
    * anywhere: calls of :data:`WINDOW_FUNCTIONS` (``row_number()``, ``prev()``, ``toscalar()``...).

    Filters and projections (``where``, ``project``, ``extend``, ``parse``, ``mv-expand``),
    ``union``, ``lookup`` and ``order by`` are row by row. Not a parser: a query the check cannot
    see into (a stored function) passes.

    :param query: the KQL text.
    :param time_columns: the names of the column the window filters on.
    :return: one description per finding, such as ``take (line 4)``, in query order.
    """
    tokens = list(tokenize(query))
    found: list[str] = []
    for index, token in enumerate(tokens):
        following = tokens[index + 1] if index + 1 < len(tokens) else None
        previous = tokens[index - 1] if index else None
        if (
            token.kind == "identifier"
            and token.text in WINDOW_FUNCTIONS
            and following is not None
            and following.text == "("
            and (previous is None or previous.text != ".")
        ):
            found.append(f"{token.text}() (line {_line(query, token)})")
            continue
        if token.text != "|" or following is None or following.kind != "identifier":
            continue
        name, after = _operator_at(tokens, index + 1)
        where = f"line {_line(query, following)}"
        clause = _clause(tokens, after)
        if name in WINDOW_OPERATORS:
            found.append(f"{name} ({where})")
        elif name == "summarize" and not _groups_by_time(clause, time_columns):
            found.append(
                f"summarize without a by {time_columns[0]} or by bin({time_columns[0]}, ...) ({where})"
            )
        elif name == "join" and not _joins_on_time(clause, time_columns):
            found.append(f"join not on {time_columns[0]} ({where})")
        elif name == "evaluate":
            # The plugin is the call: evaluate [hint.x = y] plugin(args).
            plugin = next(
                (
                    item.text
                    for (item, depth), (after_item, _) in itertools.pairwise(clause)
                    if depth == 0 and item.kind == "identifier" and after_item.text == "("
                ),
                "",
            )
            if plugin not in ROW_PLUGINS:
                found.append(f"evaluate {plugin} ({where})")
    return found
