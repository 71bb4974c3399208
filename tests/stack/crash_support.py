"""What the crash tests share: their stack (the compose stack with short failure timeouts), counts, data.

:func:`crash_stack` is :func:`tests.stack.harness.compose_stack` with two additions, both made
where the compose file would make them in a real deployment (an ``environment:`` override and a
mounted dags folder):

* :data:`CRASH_ENV`, the timeouts after which Airflow notices a dead process, made short so a
  crash is noticed within a test (the defaults, and why each matters, are in the comments);
* a dags folder holding the example DAGs and the crash tests' own ``tests/stack/dags/``.

:class:`Counts` is the line each crash test prints: ``<crash>: expected=E delivered=D missed=M
duplicated=X``, also appended to ``tests/artifacts/stack-crash-counts.log``.
"""

from __future__ import annotations

import json
import re
import shutil
import tempfile
from collections import Counter
from collections.abc import Hashable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest

from tests.e2e.harness import ARTIFACTS, DAGS_FOLDER, EXAMPLE_DAG_IDS, WebhookSink
from tests.stack import harness
from tests.stack.compose import Instance, Layout

CRASH_DAGS = Path(__file__).resolve().parent / "dags"
CRASH_DAG_IDS = ("stack_crash_hunt", "stack_crash_sensors")
#: Outside ``tests/artifacts/stack/``, which every stack start empties.
COUNTS_LOG = ARTIFACTS / "stack-crash-counts.log"

#: What the crash tests set on every Airflow process, on top of the compose file's environment.
CRASH_ENV = {
    # A task whose worker died stops heartbeating; the scheduler fails that try (and retries it
    # elsewhere) after this many seconds without a heartbeat. Default 300.
    "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "30",
    # How often the scheduler looks for such tasks. Default 10.
    "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "5",
    # How often a scheduler adopts the tasks of a scheduler that died (its job stopped
    # heartbeating for [scheduler] scheduler_health_check_threshold, 30 s). Default 300.
    "AIRFLOW__SCHEDULER__ORPHANED_TASKS_CHECK_INTERVAL": "20",
    # An AssetWatcher's trigger is registered when its DAG is parsed unpaused: parse again soon
    # after a test unpauses one. Default 30.
    "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "10",
    # The event-driven example's poll (its default is 60 s).
    "MTP_INCIDENT_POLL_SECONDS": "5",
}
#: Airflow's own knobs the tests rely on at their defaults (documented, not set): Celery's
#: ``task_acks_late`` is on and Redis redelivers an unacknowledged task only after
#: ``[celery_broker_transport_options] visibility_timeout`` (86400 s), so it is the heartbeat
#: timeout above, not Celery, that retries a dead worker's task.


@dataclass(frozen=True)
class Counts:
    """What a crash test expected, what arrived, what is missing and what arrived twice."""

    crash: str
    expected: int
    delivered: int
    missed: int
    duplicated: int

    @classmethod
    def of(cls, crash: str, expected: Iterable[Hashable], delivered: Iterable[Hashable]) -> Counts:
        """Count ``delivered`` (keys, repeats included) against the set ``expected``."""
        wanted = set(expected)
        seen = Counter(delivered)
        return cls(
            crash=crash,
            expected=len(wanted),
            delivered=sum(seen.values()),
            missed=len(wanted - set(seen)),
            duplicated=sum(count - 1 for count in seen.values()),
        )

    def line(self) -> str:
        return (
            f"{self.crash}: expected={self.expected} delivered={self.delivered} "
            f"missed={self.missed} duplicated={self.duplicated}"
        )

    def report(self) -> Counts:
        """Print the line and append it to the stack's artifacts; returns itself."""
        print(self.line())
        COUNTS_LOG.parent.mkdir(parents=True, exist_ok=True)
        with COUNTS_LOG.open("a") as log:
            log.write(self.line() + "\n")
        return self


def _dags_folder(root: Path) -> Path:
    """The example DAGs and the crash tests' DAGs in one folder (Airflow reads one dags folder)."""
    folder = root / "dags"
    folder.mkdir()
    for source in (*sorted(DAGS_FOLDER.glob("*.py")), *sorted(CRASH_DAGS.glob("*.py"))):
        shutil.copy(source, folder / source.name)
    return folder


@contextmanager
def crash_stack() -> Iterator[harness.ComposeStack]:
    """The compose stack, ready, with :data:`CRASH_ENV`, the crash DAGs and a webhook sink."""
    root = Path(tempfile.mkdtemp(prefix="mtp-crash-dags-"))
    dags = _dags_folder(root)
    webhook = WebhookSink().start()
    # The triage example posts its summary to the `mtp_webhook` connection, which the compose
    # file leaves to the user: here it is the sink in this process.
    extra = {**CRASH_ENV, "AIRFLOW_CONN_MTP_WEBHOOK": json.dumps({"conn_type": "http", "host": webhook.url})}
    planned = harness.plan

    def crash_plan(compose: dict[str, Any], layout: Layout) -> dict[str, Instance]:
        layout.dags = dags  # before plan() reads it into every service's environment
        instances = planned(compose, layout)
        for instance in instances.values():
            if instance.kind in ("airflow", "init"):
                instance.env.update(extra)
        return instances

    try:
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(harness, "plan", crash_plan)
            with harness.compose_stack(dag_ids=(*EXAMPLE_DAG_IDS, *CRASH_DAG_IDS)) as stack:
                stack.webhook = webhook
                yield stack
    finally:
        webhook.stop()
        shutil.rmtree(root, ignore_errors=True)


# --------------------------------------------------------------------------------------------------
# Data and outputs
# --------------------------------------------------------------------------------------------------


def data_now(stack: harness.ComposeStack) -> datetime:
    """The emulator's data clock (its tenant's "now")."""
    return datetime.fromisoformat(str(stack.emulator.info["now"]).replace("Z", "+00:00"))


def instant(text: str) -> datetime:
    """An ISO 8601 timestamp (``Z`` or an offset, up to 7 fractional digits) as a datetime."""
    match = re.fullmatch(r"([^.]+)(?:\.(\d+))?(.*)", text.replace("Z", "+00:00"))
    assert match is not None, text
    head, digits, zone = match.groups()
    return datetime.fromisoformat(f"{head}.{(digits or '0')[:6]}{zone}")


def graph_time(when: datetime) -> str:
    """Graph's timestamp format: 7 fractional digits, ``Z``."""
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f") + "0Z"


def load_hunt_rows(stack: harness.ComposeStack, prefix: str, rows: int) -> tuple[datetime, datetime]:
    """Append ``rows`` process events of devices ``<prefix>-<n>``, unique ``ReportId``s; their window.

    The window is a day ending two hours before the data clock, well inside hunting's 30 days.
    """
    end = data_now(stack).replace(minute=0, second=0, microsecond=0) - timedelta(hours=2)
    start = end - timedelta(days=1)
    step = (end - start) / rows
    batch = 5000
    for first in range(0, rows, batch):
        chunk = [
            {
                "Timestamp": graph_time(start + step * index),
                "ReportId": index,
                "DeviceName": f"{prefix}-{index % 50:02d}",
                "FileName": "crash.exe",
            }
            for index in range(first, min(rows, first + batch))
        ]
        assert stack.emulator.load_rows("DeviceProcessEvents", chunk) == len(chunk)
    return start, end


def hunt_faults(stack: harness.ComposeStack, *, splits: int, delay_s: float) -> None:
    """The next ``splits`` hunts get Defender's timeout error (the window is split), later ones a delay."""
    path = "/v1.0/security/*runHuntingQuery"
    limit = {"path": path, "method": "POST", "status": 400, "code": "BadRequest",
             "message": "Query exceeded the timeout period.", "count": splits}  # fmt: skip
    slow = {"path": path, "method": "POST", "delay_s": delay_s, "count": 10_000}
    stack.emulator.inject_faults(*([limit] if splits else []), slow)


def local_path(uri: str) -> Path:
    """A ``file://`` URI as a local path."""
    return Path(urlparse(uri).path) if uri.startswith("file://") else Path(uri)


def output_uri(stack: harness.ComposeStack, folder: str, name: str) -> str:
    """Where a crash test's hunt writes: a folder per test, so leftovers are told apart."""
    return f"{stack.layout.outputs.as_uri()}/crash/{folder}/{name}"


def report_ids(path: Path) -> list[int]:
    """Every row's ``ReportId`` in a JSON Lines output, repeats included."""
    return [int(json.loads(line)["ReportId"]) for line in path.read_text().splitlines() if line.strip()]


def leftovers(folder: Path, finals: Iterable[str]) -> list[str]:
    """Anything in ``folder`` that is not one of the final outputs: part folders, temporary files."""
    if not folder.exists():
        return []
    wanted = set(finals)
    return sorted(str(path.relative_to(folder)) for path in folder.rglob("*") if path.name not in wanted)
