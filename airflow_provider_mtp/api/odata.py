"""OData literals and clauses, and the argument checks both back ends share.

The Graph and legacy listings build their ``$filter`` from the same pieces: a datetime literal
that keeps a caller's 7-digit string exact (:func:`odata_datetime`), quoted strings, enum values in
either API's spelling (:func:`filter_values`), half-open ranges (:func:`range_clauses`) and a
``$top`` capped at the back end's maximum (:func:`page_top`). Pure functions: no I/O.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from airflow_provider_mtp.api import mapping
from airflow_provider_mtp.api.listing import Piece
from airflow_provider_mtp.api.raw_filter import checked_odata_filter
from airflow_provider_mtp.common.ticks import timestamp_ticks
from airflow_provider_mtp.common.utc import parse_iso
from airflow_provider_mtp.errors import MTPConfigError

log = logging.getLogger(__name__)

# The literal form OData accepts as is: seconds, 0-7 fraction digits, Z or an offset.
_ODATA_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,7})?(Z|[+-]\d{2}:\d{2})$")


def odata_datetime(value: datetime | str, *, name: str) -> str:
    """An unquoted OData datetime literal.

    A string already in the OData form is kept as given, so a watermark with 7 fractional digits
    (100 ns, which Python's datetime drops) stays exact. Other ISO 8601 strings and datetimes are
    written in UTC; a value without a time zone is taken as UTC.

    :param value: the bound.
    :param name: the argument's name, for the error message.
    :raises MTPConfigError: the value is not a time.
    """
    if isinstance(value, str):
        text = value.strip()
        if _ODATA_DATETIME.match(text):
            return text
        try:
            value = parse_iso(text)
        except ValueError:
            raise MTPConfigError(
                f"{name} must be an ISO 8601 time such as 2024-05-01T00:00:00Z, got {value!r}"
            ) from None
    if not isinstance(value, datetime):
        raise MTPConfigError(f"{name} must be a datetime or an ISO 8601 string, got {type(value).__name__}")
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    value = value.astimezone(UTC)
    text = value.strftime("%Y-%m-%dT%H:%M:%S")
    if value.microsecond:
        text += f".{value.microsecond:06d}"
    return text + "Z"


def odata_string(value: str) -> str:
    """A quoted OData string literal (a single quote is doubled)."""
    return "'" + value.replace("'", "''") + "'"


def filter_values(
    values: str | Iterable[str], table: mapping.EnumMap, *, legacy: bool, extra: Sequence[str] = ()
) -> list[str]:
    """Enum values for a filter, in the dialect's spelling; either dialect and any case accepted.

    An unknown value fails here rather than silently matching nothing.

    :param values: one value or several.
    :param table: the enum.
    :param legacy: spell them the MTP way.
    :param extra: values the service accepts that the table does not list.
    :raises MTPConfigError: a value is unknown; the message lists the accepted ones.
    """
    listed = [values] if isinstance(values, str) else list(values)
    extras = {value.casefold(): value for value in extra}
    spelled = []
    for value in listed:
        if isinstance(value, str) and value.casefold() in extras:
            spelled.append(extras[value.casefold()])
            continue
        try:
            spelled.append(table.require_legacy(value) if legacy else table.require_graph(value))
        except ValueError as exc:
            raise MTPConfigError(str(exc)) from None
    return spelled


def name_list(value: str | Sequence[str] | None, *, name: str) -> tuple[str, ...] | None:
    """A query's list field: one string or a list of non-blank strings, stripped; ``None`` for none.

    :raises MTPConfigError: not a string nor a list of non-blank strings.
    """
    if value is None or value == "":
        return None
    values = [value] if isinstance(value, str) else value
    if not isinstance(values, Sequence) or not all(isinstance(item, str) and item.strip() for item in values):
        raise MTPConfigError(f"{name} must be a string or a list of non-blank strings, got {value!r}")
    return tuple(item.strip() for item in values) or None


def any_of(field: str, literals: Sequence[str]) -> str:
    """``field eq a`` or ``(field eq a or field eq b)``."""
    clauses = [f"{field} eq {literal}" for literal in literals]
    return clauses[0] if len(clauses) == 1 else "(" + " or ".join(clauses) + ")"


def range_clauses(
    field: str, start: datetime | str | None, before: datetime | str | None, *, name: str
) -> list[str]:
    """The half-open range ``[start, before)`` as ``ge`` and ``lt`` clauses."""
    clauses = []
    if start is not None:
        clauses.append(f"{field} ge {odata_datetime(start, name=f'{name}_from')}")
    if before is not None:
        clauses.append(f"{field} lt {odata_datetime(before, name=f'{name}_before')}")
    if start is not None and before is not None and _as_utc(start) > _as_utc(before):
        raise MTPConfigError(f"{name}_from ({start}) is after {name}_before ({before}); the window is empty")
    return clauses


def time_bound(value: datetime | str | None, *, name: str) -> str | None:
    """A query's time bound as the OData literal sent on the wire (``None`` stays ``None``)."""
    return None if value is None else odata_datetime(value, name=name)


def common_clauses(query: Any) -> list[str]:
    """The clauses every Graph listing sends alike: ``assignedTo``, the two time ranges, the raw filter.

    :param query: an ``IncidentQuery`` or ``AlertQuery`` (their fields share these names).
    """
    clauses = []
    if query.assigned_to is not None:
        clauses.append(f"assignedTo eq {odata_string(query.assigned_to)}")
    clauses += range_clauses("createdDateTime", query.created_from, query.created_before, name="created")
    clauses += range_clauses("lastUpdateDateTime", query.updated_from, query.updated_before, name="updated")
    raw = checked_odata_filter(query.odata_filter)
    if raw:
        # Balanced (checked when the query was built), so the parentheses hold all of it: it can
        # only narrow.
        clauses.append(f"({raw})")
    return clauses


def _as_utc(value: datetime | str) -> datetime:
    if isinstance(value, str):
        value = parse_iso(value)
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def check_page_size(page_size: Any) -> None:
    """Refuse a page size that is not a whole number of at least 1 (``None`` is fine).

    :raises MTPConfigError: the page size is a bool, not an int, or below 1.
    """
    if page_size is None:
        return
    if isinstance(page_size, bool) or not isinstance(page_size, int) or page_size < 1:
        raise MTPConfigError(f"page_size must be a whole number of at least 1, got {page_size!r}")


def page_top(page_size: int | None, maximum: int) -> int:
    """``$top`` for a page size: the back end's maximum when ``None``, never above it."""
    check_page_size(page_size)
    if page_size is None:
        return maximum
    if page_size > maximum:
        # The service rejects a larger $top; a smaller page only costs more calls.
        log.debug("page_size %d is above this API's maximum; using %d", page_size, maximum)
    return min(page_size, maximum)


def non_blank(text: Any, *, name: str) -> str:
    if not isinstance(text, str) or not text.strip():
        raise MTPConfigError(f"{name} must be a non-blank string, got {text!r}")
    return text


def incident_window(
    *,
    created_from: datetime | str | None = None,
    created_before: datetime | str | None = None,
    updated_from: datetime | str | None = None,
    updated_before: datetime | str | None = None,
) -> Piece:
    """The time bounds of a listing in 100-ns ticks, the piece every listing plan starts from.

    :raises MTPConfigError: a bound is not a time.
    """
    return Piece(
        created_from=_bound_ticks(created_from, name="created_from"),
        created_before=_bound_ticks(created_before, name="created_before"),
        updated_from=_bound_ticks(updated_from, name="updated_from"),
        updated_before=_bound_ticks(updated_before, name="updated_before"),
    )


def _bound_ticks(value: datetime | str | None, *, name: str) -> int | None:
    if value is None:
        return None
    ticks = timestamp_ticks(odata_datetime(value, name=name))
    if ticks is None:
        raise MTPConfigError(f"{name} must be an ISO 8601 time such as 2024-05-01T00:00:00Z, got {value!r}")
    return ticks
