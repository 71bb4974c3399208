"""The hunting operator's checks of the query before any call: the window's names, split validity."""

from __future__ import annotations

from typing import TYPE_CHECKING

from airflow_provider_mtp import kql
from airflow_provider_mtp.errors import MTPConfigError

if TYPE_CHECKING:
    from airflow.sdk import BaseOperator as _TaskBase

    from airflow_provider_mtp.windows import Window
else:
    _TaskBase = object

__all__ = ["HuntQueryChecks"]


class HuntQueryChecks(_TaskBase):
    """The query checks of :class:`~airflow_provider_mtp.operators.hunting.RunHuntingQueryOperator`.

    A mixin: at run time it derives from ``object`` only; the type checker sees a
    :class:`~airflow.sdk.BaseOperator`, so ``self.log`` and the other task members check. The
    operator's own arguments it reads are declared below.
    """

    split_on_limit: bool
    split_validity: str

    def _check_window_names(self, query: str, window: Window | None) -> None:
        names = kql.WINDOW_NAMES
        own = kql.defined_names(query) & set(names)
        if own:
            raise MTPConfigError(
                f"The query binds {', '.join(sorted(own))} itself, which would hide the run's window: "
                "rename its own binding, and use start/end or lookback to set the window"
            )
        used = kql.referenced_names(query, names)
        if window is None:
            if used:
                raise MTPConfigError(
                    f"The query uses {', '.join(sorted(used))}, but this run has no window: set "
                    "start/end or lookback, or schedule the DAG with a timetable that gives data "
                    "intervals (e.g. a timedelta or @daily)"
                )
            if self.split_on_limit:
                raise MTPConfigError(
                    "split_on_limit needs a window to split: set start/end or lookback, or use a "
                    "schedule with data intervals"
                )
            return
        missing = [name for name in names if name not in used]
        if not missing:
            return
        if self.split_on_limit:
            raise MTPConfigError(
                f"split_on_limit needs the query to filter on the window, but it never uses "
                f"{' or '.join(missing)}: add | where Timestamp >= WindowStart and Timestamp < WindowEnd"
            )
        self.log.warning(
            "The query never uses %s: the run's window %s reaches it only as Graph's Timespan (the "
            "legacy API searches the last 30 days). Add | where Timestamp >= WindowStart and "
            "Timestamp < WindowEnd.",
            " or ".join(missing),
            window.label(),
        )

    def _check_split_validity(self, query: str) -> None:
        if not self.split_on_limit or self.split_validity == "rows_independent":
            return
        found = kql.window_dependent_parts(query)
        if found:
            raise MTPConfigError(
                f"split_on_limit=True cannot split this query: its rows depend on the whole window "
                f"({'; '.join(found)}), so pieces run one by one would not add up to the whole window's "
                "result (a take 100000 takes 100,000 rows per piece). Remove split_on_limit (the task then "
                "fails on the row limit and says so), or narrow the window or the query; if every row "
                'really depends only on its own piece, set split_validity="rows_independent".'
            )
