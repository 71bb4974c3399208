"""Alerts on the legacy MTP API, which has no alerts endpoint: read through the incidents that embed them.

``/api/incidents`` always embeds each incident's alerts. An alert's own update (status, owner,
classification, comment) also stamps its incident's ``lastUpdateTime``, so an incident holds every
alert updated in a window ``[from, before)`` only if it was itself updated at or after ``from``:
the listing asks for incidents with ``lastUpdateTime ge from`` (no upper bound: the incident may
have changed again since, for another of its alerts) and keeps the embedded alerts whose own
``lastUpdateDateTime`` (and ``createdDateTime``) lie in the query's ranges and that pass every
filter, applied here.

That incident window reaches into the present, and an incident updated while such a window is
read can jump to a part already read (see :mod:`airflow_provider_mtp.api.listing`). So it is read in
two passes: first the incidents updated from ``from`` to a little before the listing began (a
window in the past: nothing moves into it, so nothing is missed), then those updated since then,
which is where an incident updated during the first pass goes. The margin covers a clock
difference between this machine and the service. The second pass is small (usually one page, read
at once); only when it needs several pages can an incident updated during it be missed here, and
the sensors' windows lie in the past by ``lag`` while the event trigger's cursor asks again. The
split is read from this machine's clock: against a service whose clock ran more than the margin
behind it, the second pass would find nothing and the listing would be as exact as one pass. The
Graph back end has no such gap.

Updating or commenting an alert is not possible on this API: those methods fail before any call.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from airflow_provider_mtp.api.alert_query import AlertQuery
from airflow_provider_mtp.api.incident_query import IncidentQuery
from airflow_provider_mtp.api.listing import IncidentPages
from airflow_provider_mtp.api.odata import check_page_size
from airflow_provider_mtp.common.ticks import format_ticks, instant_ticks, timestamp_ticks
from airflow_provider_mtp.errors import MTPConfigError

__all__ = ["CLOCK_MARGIN", "LEGACY_ALERT_UPDATE_REFUSAL", "LegacyAlertPasses", "refuse_alert_update"]

#: How far before the first pass began the second pass starts: more than any sane clock difference.
CLOCK_MARGIN = timedelta(minutes=5)

LEGACY_ALERT_UPDATE_REFUSAL = (
    "The legacy MTP API cannot {action} an alert: it has no alerts endpoint (alerts are only read, "
    "through their incidents). Use the Microsoft Graph security API: set the connection's extra "
    "'api' to 'graph' (or pass api='graph' to the hook or operator), with SecurityAlert.ReadWrite.All "
    "granted to the app; or update the alert's incident instead (UpdateIncidentOperator)."
)

#: Builds the legacy incident listing of a query (the back end's converter bound in).
IncidentLister = Callable[[IncidentQuery], IncidentPages]


def refuse_alert_update(action: str) -> MTPConfigError:
    """The error for an alert update or comment on the legacy API (raised before any call)."""
    return MTPConfigError(LEGACY_ALERT_UPDATE_REFUSAL.format(action=action))


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, kw_only=True)
class LegacyAlertPasses:
    """The legacy description of an alert listing (an :class:`~airflow_provider_mtp.api.listing.AlertPasses`).

    :param query: the alert listing.
    :param incidents: the back end's incident listing of an incident query (alerts embedded,
        converted to the Graph shape).
    :param now: the clock the second pass starts from (a test moves it).
    """

    query: AlertQuery
    incidents: IncidentLister
    now: Callable[[], datetime] = _utcnow

    @classmethod
    def build(
        cls, query: AlertQuery, incidents: IncidentLister, *, now: Callable[[], datetime] = _utcnow
    ) -> LegacyAlertPasses:
        """The listing of ``query``, checked before any call.

        :raises MTPConfigError: an ``odata_filter`` (there is no alerts endpoint to send it to).
        """
        if query.odata_filter is not None:
            raise MTPConfigError(
                "odata_filter cannot be applied to alerts on the legacy MTP API (it has no alerts "
                "endpoint; alerts are read through their incidents): use the query's fields (status, "
                "severity, service_source, ...), or api='graph' for a raw alerts_v2 $filter."
            )
        check_page_size(query.page_size)
        passes = cls(query=query, incidents=incidents, now=now)
        passes.incidents(passes._incident_query(query.updated_from))  # checked now, not mid-listing
        return passes

    def _incident_query(self, updated_from: str | None) -> IncidentQuery:
        return IncidentQuery.build(
            updated_from=updated_from, include_alerts=True, page_size=self.query.page_size
        )

    def listings(self) -> Iterator[IncidentPages]:
        """The incidents updated from the window's start to a little before now, then those since."""
        split = instant_ticks(self.now() - CLOCK_MARGIN)
        window_from = timestamp_ticks(self.query.updated_from)
        if window_from is None or split > window_from:
            first = IncidentQuery.build(
                updated_from=self.query.updated_from,
                updated_before=format_ticks(split),
                include_alerts=True,
                page_size=self.query.page_size,
            )
            yield self.incidents(first)
            yield self.incidents(self._incident_query(format_ticks(split)))
        else:
            yield self.incidents(self._incident_query(self.query.updated_from))

    def alerts(self, item: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
        """The incident's embedded alerts in the query's ranges that pass every filter."""
        for alert in item.get("alerts") or ():
            if (
                isinstance(alert, dict)
                and self.query.in_window(alert)
                and self.query.keeps(alert, local_only=False)
            ):
                yield alert
