"""EnumMap: one enum in both dialects, MTP PascalCase and Graph camelCase (part of :mod:`.mapping`).

Pure code, no table: the tables themselves are in :mod:`airflow_provider_mtp.api.mapping_tables`.
Like every ``mapping_*`` module it imports nothing from the client but its siblings (the emulator
shares it through :mod:`airflow_provider_mtp.api.mapping`).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

__all__ = ["EnumMap"]


class EnumMap:
    """One enum in both dialects: MTP PascalCase and Graph camelCase.

    Pairs are ``(mtp, graph)``. A spelling may appear in several pairs (synonyms); in each
    direction the first pair that names it wins, which is how a synonym maps to the canonical
    spelling of the other side. Lookups ignore case.

    :param name: what the enum is called in error messages.
    :param pairs: ``(mtp, graph)`` spellings.
    """

    def __init__(self, name: str, pairs: Iterable[tuple[str, str]]) -> None:
        self.name = name
        self.pairs: tuple[tuple[str, str], ...] = tuple(pairs)
        self._to_graph: dict[str, str] = {}
        self._to_legacy: dict[str, str] = {}
        # Own-dialect spellings are filled after the other dialect's so that, for a word both
        # dialects use, the direct translation wins over the identity.
        for legacy, graph in self.pairs:
            self._to_graph.setdefault(legacy.casefold(), graph)
            self._to_legacy.setdefault(graph.casefold(), legacy)
        for legacy, graph in self.pairs:
            self._to_graph.setdefault(graph.casefold(), graph)
            self._to_legacy.setdefault(legacy.casefold(), legacy)

    @property
    def graph_values(self) -> tuple[str, ...]:
        """Every Graph spelling, in table order."""
        return _unique(graph for _, graph in self.pairs)

    @property
    def legacy_values(self) -> tuple[str, ...]:
        """Every MTP spelling, in table order."""
        return _unique(legacy for legacy, _ in self.pairs)

    def to_graph(self, value: Any) -> Any:
        """The Graph spelling of ``value`` (either dialect, any case); unknown values unchanged.

        :param value: an enum value as received; ``None`` and non-strings pass through.
        """
        if not isinstance(value, str):
            return value
        return self._to_graph.get(value.casefold(), value)

    def to_legacy(self, value: Any) -> Any:
        """The MTP spelling of ``value`` (either dialect, any case); unknown values unchanged.

        :param value: an enum value as received; ``None`` and non-strings pass through.
        """
        if not isinstance(value, str):
            return value
        return self._to_legacy.get(value.casefold(), value)

    def require_graph(self, value: Any) -> str:
        """Like :meth:`to_graph`, but an unknown value raises.

        :param value: an enum value to write.
        :raises ValueError: the value is not a known spelling; the message lists the accepted ones.
        """
        if isinstance(value, str) and value.casefold() in self._to_graph:
            return self._to_graph[value.casefold()]
        raise ValueError(self._invalid(value, self.graph_values, self.legacy_values))

    def require_legacy(self, value: Any) -> str:
        """Like :meth:`to_legacy`, but an unknown value raises.

        :param value: an enum value to write.
        :raises ValueError: the value is not a known spelling; the message lists the accepted ones.
        """
        if isinstance(value, str) and value.casefold() in self._to_legacy:
            return self._to_legacy[value.casefold()]
        raise ValueError(self._invalid(value, self.legacy_values, self.graph_values))

    def _invalid(self, value: Any, primary: tuple[str, ...], other: tuple[str, ...]) -> str:
        known = {spelling.casefold() for spelling in primary}
        aliases = [spelling for spelling in other if spelling.casefold() not in known]
        message = f"Invalid {self.name} {value!r}. Accepted values (case-insensitive): {', '.join(primary)}"
        if aliases:
            message += f"; also accepted: {', '.join(aliases)}"
        return message + "."

    def __repr__(self) -> str:
        return f"EnumMap({self.name!r}, {len(self.pairs)} pairs)"


def _unique(values: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(values))
