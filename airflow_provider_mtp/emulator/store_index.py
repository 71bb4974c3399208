"""What keeps the emulator's listings (incidents, and alerts across incidents) costing their page.

Shared by the incident store (:mod:`~airflow_provider_mtp.emulator.incidents`) and its alert
index (:mod:`~airflow_provider_mtp.emulator.alerts`):

* :class:`SortKeys`: a row's sort fields read once, when it is stored or changed;
* :class:`KeptOrders`: the ids in each ``$orderby`` asked for, sorted once and then kept in place
  by every change (``bisect``), never re-sorted per request;
* :func:`walk`: one page from a kept order, testing the filter on the stored rows and stopping
  after the page unless the total is asked for;
* :func:`clone` and :func:`format_time`: copies of JSON-shaped data, and the service's stamps.

Stored rows are never changed in place (copy on write), so a page hands out the stored values.
"""

from __future__ import annotations

import bisect
import copy
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from airflow_provider_mtp.common.ticks import format_ticks, instant_ticks, odata_ticks

Row = Mapping[str, Any]

#: Time fields that ``$orderby`` accepts.
TIME_FIELDS = ("createdDateTime", "lastUpdateDateTime")

#: ``(field, descending)`` pairs, most significant first.
OrderBy = tuple[tuple[str, bool], ...]

#: Newest first: the order without ``$orderby``.
NEWEST_FIRST: OrderBy = (("createdDateTime", True),)


def format_time(when: datetime) -> str:
    """A Graph timestamp with 7 fractional digits, as the service stamps updates."""
    return format_ticks(instant_ticks(when))


def time_key(row: Row, field: str) -> int:
    """``field`` of ``row`` in 100-ns ticks; -1 when empty.

    :raises ValueError: the value is not a timestamp.
    """
    value = row.get(field)
    if not value:
        return -1
    if not isinstance(value, str):
        raise ValueError(f"{field} is not a timestamp: {value!r}")
    return odata_ticks(value)


def clone(value: Any) -> Any:
    """A deep copy of JSON-shaped data (dicts, lists, scalars), several times faster than ``deepcopy``."""
    kind = type(value)
    if kind is dict:
        return {key: clone(item) for key, item in value.items()}
    if kind is list:
        return [clone(item) for item in value]
    if kind in (str, int, float, bool) or value is None:
        return value
    return copy.deepcopy(value)


def normalized(orderby: Iterable[tuple[str, bool]] | None) -> OrderBy:
    """``orderby`` without repeated fields: a field's second mention can never break a tie."""
    seen: dict[str, bool] = {}
    for field, descending in orderby or ():
        seen.setdefault(field, descending)
    return tuple(seen.items()) or NEWEST_FIRST


@dataclass(frozen=True)
class SortKeys:
    """A row's sort fields, read once: ticks by time field, and a number that breaks ties.

    :param ticks: 100-ns ticks by time field (-1 when empty).
    :param number: the tie-breaker: an incident's numeric id, an alert's serial number.
    """

    ticks: dict[str, int]
    number: int

    @classmethod
    def of(cls, row: Row, number: int) -> SortKeys:
        """:raises ValueError: a time field that is not a timestamp."""
        return cls(ticks={field: time_key(row, field) for field in TIME_FIELDS}, number=number)

    def rank(self, orderby: OrderBy) -> tuple[int, ...]:
        # Ties fall back to the number, in the first key's direction, so pages never reshuffle.
        ranks = [-self.ticks[field] if descending else self.ticks[field] for field, descending in orderby]
        ranks.append(-self.number if orderby[0][1] else self.number)
        return tuple(ranks)


class KeptOrders:
    """Ids in every ``$orderby`` asked for; not thread-safe (its owner's lock guards it).

    :param keys: the sort keys by id.
    """

    def __init__(self, keys: dict[str, SortKeys]) -> None:
        self.keys = keys
        self._orders: dict[OrderBy, list[str]] = {}

    def __len__(self) -> int:
        return len(self.keys)

    def order(self, orderby: OrderBy) -> list[str]:
        """The ids in ``orderby`` order; sorted once, then kept by :meth:`put` and :meth:`remove`."""
        ids = self._orders.get(orderby)
        if ids is None:
            ids = sorted(self.keys, key=self._ranker(orderby))
            self._orders[orderby] = ids
        return ids

    def _ranker(self, orderby: OrderBy) -> Callable[[str], tuple[int, ...]]:
        keys = self.keys

        def rank(row_id: str) -> tuple[int, ...]:
            return keys[row_id].rank(orderby)

        return rank

    def put(self, row_id: str, keys: SortKeys) -> None:
        """Store a new row's keys, or move a changed row in every kept order (nothing if they are equal)."""
        old = self.keys.get(row_id)
        if old == keys:
            return
        if old is not None:
            self.remove(row_id)
        self.keys[row_id] = keys
        for orderby, ids in self._orders.items():
            bisect.insort(ids, row_id, key=self._ranker(orderby))

    def remove(self, row_id: str) -> None:
        """Forget a row (moved to another owner, or gone)."""
        for orderby, ids in self._orders.items():
            # The row's place, found by its still-stored keys: no scan of the order.
            rank = self._ranker(orderby)
            index = bisect.bisect_left(ids, rank(row_id), key=rank)
            del ids[index]
        del self.keys[row_id]


@dataclass(frozen=True)
class Slice:
    """One page of matching rows.

    :param items: the rows on the page, in order: new dicts whose values are the store's own
        (lists, alerts): read them, never change them in place.
    :param total: how many rows match: when counted, or without a filter (free then); else ``None``.
    :param more: whether matching rows follow the page.
    """

    items: list[dict[str, Any]]
    total: int | None
    more: bool


def walk(
    order: list[str],
    rows: Mapping[str, Row],
    copy_row: Callable[[Row], dict[str, Any]],
    predicate: Callable[[Any], bool] | None,
    *,
    skip: int,
    top: int | None,
    count: bool,
) -> Slice:
    """Rows ``skip`` to ``skip + top`` of those in ``order`` that ``predicate`` keeps.

    :param order: the ids in the listing's order.
    :param rows: the stored rows by id.
    :param copy_row: makes an item from a stored row (a shallow copy, or a kept view).
    :param predicate: keeps a row when true; it sees the stored row and must not change it.
    :param skip: matching rows to pass over.
    :param top: the page size (``None``: all the rest).
    :param count: count every match; without it a filtered walk stops at the first match after the page.
    """
    end = len(order) if top is None else skip + top
    if predicate is None:
        chosen = order[skip:end]
        return Slice(
            items=[copy_row(rows[row_id]) for row_id in chosen],
            total=len(order),
            more=skip + len(chosen) < len(order),
        )
    picked: list[dict[str, Any]] = []
    matched = 0
    for row_id in order:
        row = rows[row_id]
        if not predicate(row):
            continue
        if skip <= matched < end:
            picked.append(copy_row(row))
        matched += 1
        if matched > end and not count:
            break
    return Slice(items=picked, total=matched if count else None, more=matched > skip + len(picked))
