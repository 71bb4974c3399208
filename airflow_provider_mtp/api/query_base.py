"""What an incident query and an alert query share: building from keywords, JSON, messages.

:class:`~airflow_provider_mtp.api.incident_query.IncidentQuery` and
:class:`~airflow_provider_mtp.api.alert_query.AlertQuery` are frozen dataclasses that differ in
their fields and checks (each one's ``build``); how they are passed around (``of``, ``replace``,
``to_json``, ``from_json``) and described in messages is the same, and lives here once.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, ClassVar, Self

from airflow_provider_mtp.errors import MTPConfigError

__all__ = ["ListingQuery"]


class ListingQuery:
    """The shared behaviour of a listing's query; subclasses are frozen keyword-only dataclasses.

    A subclass sets :attr:`KIND`, :attr:`LIST_FIELDS` and :attr:`FILTER_FIELDS` and defines
    ``build(**fields)``, which checks and normalises every field.
    """

    #: ``incident`` or ``alert``, for messages and the hooks' method names.
    KIND: ClassVar[str]
    #: Fields held as tuples (JSON lists).
    LIST_FIELDS: ClassVar[tuple[str, ...]]
    #: The filter fields, in messages' order.
    FILTER_FIELDS: ClassVar[tuple[str, ...]]

    @classmethod
    def build(cls, **fields: Any) -> Self:
        raise NotImplementedError

    @classmethod
    def of(cls, query: Self | None = None, /, **fields: Any) -> Self:
        """``query`` itself, or one built from keyword fields; both at once is an error.

        What the hooks' ``list_incidents`` / ``list_alerts`` take: a query, or its fields as keywords.
        """
        if query is None:
            return cls.build(**fields)
        if not isinstance(query, cls):
            raise MTPConfigError(
                f"list_{cls.KIND}s() takes an {cls.__name__} or keyword filters, got {query!r}"
            )
        if fields:
            raise MTPConfigError(
                f"Give either an {cls.__name__} or keyword filters, not both (got "
                f"{', '.join(sorted(fields))} besides the query): add them to the query with query.replace(...)."
            )
        return query

    def replace(self, **changes: Any) -> Self:
        """A copy with ``changes``, checked like ``build``."""
        return self.build(**{**self.to_json(), **changes})

    def to_json(self) -> dict[str, Any]:
        """Every field as a JSON value (lists, strings, numbers, ``None``): trigger kwargs, XCom."""
        data = dataclasses.asdict(self)  # type: ignore[call-overload]
        for name in self.LIST_FIELDS:
            if data[name] is not None:
                data[name] = list(data[name])
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None) -> Self:
        """The query :meth:`to_json` wrote (``None`` is the query with no filters).

        :raises MTPConfigError: the data is not a mapping of known fields.
        """
        if data is None:
            return cls.build()
        if not isinstance(data, Mapping):
            raise MTPConfigError(f"An {cls.KIND} query must be a JSON object, got {type(data).__name__}")
        return cls.build(**data)

    def describe(self) -> str:
        """``status=active, severity=high|medium`` or ``no filters``, for messages (filters only)."""
        parts = []
        for name in self.FILTER_FIELDS:
            value = getattr(self, name)
            if value is None:
                continue
            parts.append(f"{name}={'|'.join(value) if isinstance(value, tuple) else value}")
        return ", ".join(parts) if parts else "no filters"

    @classmethod
    def unknown_fields(cls, fields: Mapping[str, Any]) -> None:
        """Refuse keywords that are not fields of the query.

        :raises MTPConfigError: naming the unknown ones and listing the fields.
        """
        known = [field.name for field in dataclasses.fields(cls)]  # type: ignore[arg-type]
        unknown = sorted(set(fields) - set(known))
        if unknown:
            raise MTPConfigError(
                f"Unknown {cls.KIND} filter {', '.join(map(repr, unknown))}; the filters are: {', '.join(known)}."
            )
