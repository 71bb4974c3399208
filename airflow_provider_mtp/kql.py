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

import re
from collections.abc import Callable, Mapping
from typing import Any

from airflow_provider_mtp.errors import MTPConfigError
from airflow_provider_mtp.kql_literals import KINDS, literal, normalise_kind
from airflow_provider_mtp.kql_tokens import Token, defined_names, referenced_names, tokenize
from airflow_provider_mtp.kql_window_dependence import ROW_PLUGINS as ROW_PLUGINS
from airflow_provider_mtp.kql_window_dependence import TIME_COLUMNS as TIME_COLUMNS
from airflow_provider_mtp.kql_window_dependence import (
    WINDOW_FUNCTIONS,
    WINDOW_OPERATORS,
    window_dependent_parts,
)

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
