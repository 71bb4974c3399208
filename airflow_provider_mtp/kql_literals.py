"""Typed values as KQL literals: the kinds, their aliases, and the writers of each kind.

A value becomes a literal of its **declared** kind (``string`` by default), never of a kind
guessed from its text. The kinds and the escaping rules are described in
:mod:`airflow_provider_mtp.kql`, which re-exports :func:`literal`, :func:`normalise_kind` and
:data:`KINDS`.
"""

from __future__ import annotations

import ast
import json
import math
import re
from datetime import UTC, date, datetime, timedelta
from typing import Any

from airflow_provider_mtp.common.durations import InvalidDurationError, iso_duration
from airflow_provider_mtp.common.ticks import TICKS_PER_SECOND as _TICKS_PER_SECOND
from airflow_provider_mtp.common.ticks import duration_ticks
from airflow_provider_mtp.errors import MTPConfigError

__all__ = ["KINDS", "literal", "normalise_kind"]

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
    :param kind: see the docstring of :mod:`airflow_provider_mtp.kql`; ``string`` by default.
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
