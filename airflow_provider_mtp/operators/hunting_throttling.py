"""The hunting operator's throttling deferrals: when to defer, and the count kept across resumes."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, NoReturn

from airflow_provider_mtp.errors import MTPThrottledError

if TYPE_CHECKING:
    from airflow.sdk import BaseOperator as _TaskBase
    from airflow.sdk import Context

    from airflow_provider_mtp.hunting_plan import HuntProgress
    from airflow_provider_mtp.outputs import OutputTarget
else:
    _TaskBase = object

__all__ = ["DEFAULT_THROTTLE_WAIT_S", "MAX_THROTTLE_DEFER_S", "THROTTLING_XCOM_KEY", "HuntThrottling"]

#: Seconds to defer when the service throttled without saying how long to wait.
DEFAULT_THROTTLE_WAIT_S = 60.0
#: The longest one throttling deferral sleeps. Defender's quotas reset within the hour (the CPU
#: budget every 15 minutes); a longer ``Retry-After`` (a far-off HTTP date, a clock gone wrong) is
#: asked again after this long instead of parking the task for days.
MAX_THROTTLE_DEFER_S = 3600.0
#: XCom key of the throttling deferrals so far, for a resume whose deferral kwargs were lost.
THROTTLING_XCOM_KEY = "mtp_hunt_throttling"


class HuntThrottling(_TaskBase):
    """The throttling deferrals of :class:`~airflow_provider_mtp.operators.hunting.RunHuntingQueryOperator`.

    A mixin: at run time it derives from ``object`` only; the type checker sees a
    :class:`~airflow.sdk.BaseOperator`, so ``self.log`` and the other task members check. The
    operator's own arguments it reads are declared below.
    """

    deferrable: bool
    max_throttle_deferrals: int
    _target: OutputTarget | None

    def _defer_or_raise(self, context: Context, progress: HuntProgress, exc: MTPThrottledError) -> NoReturn:
        if not self.deferrable:
            raise exc
        wait = exc.retry_after if exc.retry_after is not None else DEFAULT_THROTTLE_WAIT_S
        if progress.deferrals >= self.max_throttle_deferrals:
            times = f"{progress.deferrals} time{'' if progress.deferrals == 1 else 's'}"
            raise MTPThrottledError(
                f"Defender kept throttling the hunt: the task deferred {times} "
                f"({progress.deferred_s:.0f} s in all), as many as max_throttle_deferrals="
                f"{self.max_throttle_deferrals} allows, and the service still asks to wait {wait:.0f} s "
                f"({exc.service_message or exc}). The tenant's hunting quota is used up by other hunts or "
                "this one is too heavy: run the task again later, spread the hunts (a smaller pool, longer "
                "schedule intervals, a narrower query), or raise max_throttle_deferrals.",
                retry_after=exc.retry_after,
                status=exc.status,
                code=exc.code,
                service_message=exc.service_message,
                request_id=exc.request_id,
            ) from exc
        from airflow.providers.standard.triggers.temporal import DateTimeTrigger

        delay = min(max(wait, 1.0), MAX_THROTTLE_DEFER_S)
        progress.deferrals += 1
        progress.deferred_s += delay
        moment = datetime.now(UTC) + timedelta(seconds=delay)
        self.log.info(
            "Defender throttled the hunt for %.0f s; deferring until %s (deferral %d of at most %d; %d "
            "piece(s) done, %d to go)",
            wait,
            moment.isoformat(timespec="seconds"),
            progress.deferrals,
            self.max_throttle_deferrals,
            len(progress.done),
            len(progress.pending),
        )
        if self._target is not None:
            self._target.save_checkpoint(progress.token, progress.to_json())
        self._save_throttling(context, progress)
        self.defer(
            trigger=DateTimeTrigger(moment=moment),
            method_name="execute_complete",
            kwargs={"progress": progress.to_json()},
        )

    @staticmethod
    def _save_throttling(context: Context, progress: HuntProgress) -> None:
        """Keep the deferral count where a resume finds it even if the deferral's kwargs are lost."""
        ti = context.get("ti")
        push = getattr(ti, "xcom_push", None)
        if push is not None:
            push(
                key=THROTTLING_XCOM_KEY,
                value={
                    "token": progress.token,
                    "deferrals": progress.deferrals,
                    "deferred_s": progress.deferred_s,
                },
            )

    def _restore_throttling(self, context: Context, progress: HuntProgress) -> None:
        """The deferral count of this try so far, from :meth:`_save_throttling`, into ``progress``."""
        ti = context.get("ti")
        pull = getattr(ti, "xcom_pull", None)
        if pull is None:
            return
        try:
            saved = pull(task_ids=self.task_id, key=THROTTLING_XCOM_KEY)
        except Exception as exc:  # an XCom backend's failure must not hide the hunt's own outcome
            self.log.warning("Could not read the throttling deferrals so far: %s", exc)
            return
        if isinstance(saved, Mapping) and saved.get("token") == progress.token:
            progress.deferrals = int(saved.get("deferrals", 0))
            progress.deferred_s = float(saved.get("deferred_s", 0.0))
