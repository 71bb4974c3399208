"""The reliability week: a simulated week of incident updates, its ground truth, and the tally.

A :class:`WeekPlan` cuts a week into data intervals. Before the run at the end of interval ``k``
(``T_k``), :class:`Scenario` puts that interval's incident updates into the emulator with explicit
``lastUpdateDateTime`` values: creations, updates (several per incident over the week), runs of
updates sharing one timestamp, updates on the sensor's window edges and one tick either side, late
updates (stamped up to ``lag`` before they are put), and merges (``redirected`` with
``redirectIncidentId``). Then the run reads, while the emulator's ``mutate`` fault plays analysts
updating incidents that match each listing request (stamped with the data clock, set to ``T_k``)
and a chain of faults fails about one API call and one token call in five.

:class:`Ledger` keeps every version of every incident: those put, and those the analysts made
(read back from ``/_emulator/analyst-updates``), each with the *phase* it appeared in (put-phase
``k`` is ``2k``, run ``k`` is ``2k + 1``). From it, the ground truth:

* **sensor**: an update ``(id, t)`` is read by the run whose window holds ``t``. It is *produced*
  (must be delivered, once) when it was in place before that run and no later version of the
  incident appeared before that run ended; otherwise it is *superseded* (may be delivered, never
  twice). The windows tile time, so every produced update has exactly one run that must report it.
* **event trigger**: an update is produced when it was in place for one whole poll, the first poll
  after it appeared (the cursor's ``lag`` covers late updates from there on).

A closing run (or poll) with no new updates and no analysts reads what the last one left behind,
so every final state is produced.
"""

from __future__ import annotations

import email.utils
import importlib.util
import json
import random
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_mtp.common.ticks import (
    duration_ticks,
    format_ticks,
    instant_ticks,
    timestamp_ticks,
)

#: The incident listing of each back end, as the emulator's fault globs see it.
LISTING_PATH = {"graph": "/v1.0/security/incidents", "legacy": "/api/incidents"}
TOKEN_PATH = "/*/oauth2/v2.0/token"

#: Updates put per interval: some intervals fill several pages on both back ends (50 and 100).
SIZES = (60, 90, 130, 180, 240)


def span(delta: timedelta) -> int:
    """A duration in 100-ns ticks."""
    return duration_ticks(delta)


def ticks_of(when: datetime) -> int:
    """A datetime as 100-ns ticks since the epoch."""
    return instant_ticks(when)


def stamp(ticks: int) -> str:
    """100-ns ticks as a Graph timestamp with 7 fractional digits."""
    return format_ticks(ticks)


def ticks_of_stamp(value: Any) -> int:
    ticks = timestamp_ticks(value)
    if ticks is None:
        raise AssertionError(f"unreadable timestamp {value!r}")
    return ticks


@dataclass(frozen=True, kw_only=True)
class WeekPlan:
    """Consecutive intervals; the run at ``T_k = start + k * interval`` reads window ``k``.

    :param start: the start of the first interval.
    :param interval: the data interval.
    :param lag: the sensor's lag: window ``k`` is ``[T_k - interval - lag, T_k - lag)``.
    :param intervals: intervals with updates; one closing run follows them.
    """

    start: datetime
    interval: timedelta
    lag: timedelta
    intervals: int

    @property
    def runs(self) -> int:
        """Runs in all: one per interval, and the closing one."""
        return self.intervals + 1

    def run_at(self, k: int) -> datetime:
        return self.start + k * self.interval

    def window(self, k: int) -> tuple[int, int]:
        """Window ``k`` as ticks, half-open."""
        end = ticks_of(self.run_at(k) - self.lag)
        return end - span(self.interval), end

    def window_of(self, ticks: int) -> int:
        """The run whose window holds ``ticks``."""
        return (ticks - ticks_of(self.start - self.lag)) // span(self.interval) + 1


@dataclass(frozen=True)
class Version:
    """One state of an incident: its ``lastUpdateDateTime``, the phase it appeared in, and for an
    analyst's update the wall-clock time it was made (to tell which task's listing it interrupted)."""

    ticks: int
    phase: int
    source: str
    at: datetime | None = None


@dataclass
class Ledger:
    """Every version of every incident, in the order they appeared."""

    versions: dict[str, list[Version]] = field(default_factory=dict)

    def current(self, incident_id: str) -> Version | None:
        history = self.versions.get(incident_id)
        return history[-1] if history else None

    def record(
        self, incident_id: str, last_update: str, *, phase: int, source: str, at: datetime | None = None
    ) -> None:
        """A new state; one with the same timestamp as the current one is the same update."""
        ticks = ticks_of_stamp(last_update)
        current = self.current(incident_id)
        if current is not None and ticks == current.ticks:
            return
        if current is not None and ticks < current.ticks:
            raise AssertionError(f"incident {incident_id} went back in time: {current.ticks} -> {ticks}")
        self.versions.setdefault(incident_id, []).append(Version(ticks, phase, source, at))

    def record_analysts(self, updates: Iterable[Mapping[str, Any]], *, phase: int) -> int:
        """The emulator's analyst log; each ``old`` must be what the ledger holds (checks the ledger)."""
        count = 0
        for update in updates:
            incident_id = str(update["id"])
            current = self.current(incident_id)
            old = ticks_of_stamp(update["old"])
            if current is None or current.ticks != old:
                raise AssertionError(
                    f"analyst update of {incident_id} from {update['old']}: ledger disagrees"
                )
            at = datetime.fromisoformat(update["at"]) if update.get("at") else None
            self.record(incident_id, str(update["new"]), phase=phase, source="analyst", at=at)
            count += 1
        return count

    def _pairs(self) -> Iterator[tuple[tuple[str, int], Version, Version | None]]:
        for incident_id, history in self.versions.items():
            for index, version in enumerate(history):
                later = history[index + 1] if index + 1 < len(history) else None
                yield (incident_id, version.ticks), version, later

    def sensor_truth(self, plan: WeekPlan, finished: Mapping[int, datetime] | None = None) -> Truth:
        """Produced and superseded updates when run ``k`` reads window ``k``.

        :param finished: when one task finished in each run (its last try's end). An analyst's
            update made after that, during another task's listing in the same run, does not excuse
            this task: it had read the window by then. Without it, any update during the run does.
        """
        truth = Truth()
        for pair, version, later in self._pairs():
            window = plan.window_of(pair[1])
            read = 2 * window + 1
            end = (finished or {}).get(window)
            if window > plan.runs or version.phase > read - 1:
                truth.unreadable.add(pair)
            elif later is None or later.phase > read or _after(later, end):
                truth.produced.add(pair)
            else:
                truth.superseded.add(pair)
            truth.window[pair] = window
        return truth

    def trigger_truth(self, polls: int) -> Truth:
        """Produced and superseded updates when poll ``k`` follows put-phase ``k``."""
        truth = Truth()
        for pair, version, later in self._pairs():
            first_poll = version.phase + 1 if version.phase % 2 == 0 else version.phase + 2
            if first_poll > 2 * polls + 1:
                truth.unreadable.add(pair)
            elif later is None or later.phase > first_poll:
                truth.produced.add(pair)
            else:
                truth.superseded.add(pair)
            truth.window[pair] = first_poll // 2
        return truth


def _after(version: Version, end: datetime | None) -> bool:
    """An analyst's update made after ``end``."""
    return version.at is not None and end is not None and version.at > end


@dataclass
class Truth:
    produced: set[tuple[str, int]] = field(default_factory=set)
    superseded: set[tuple[str, int]] = field(default_factory=set)
    #: Updates no run could read (put after their window was read, or after the last run).
    unreadable: set[tuple[str, int]] = field(default_factory=set)
    #: The run (or first poll) that reads each update.
    window: dict[tuple[str, int], int] = field(default_factory=dict)


@dataclass
class Tally:
    """What one (mode, back end) delivered, against the ground truth."""

    label: str
    truth: Truth
    #: ``(id, ticks, run)`` for each update delivered, in delivery order.
    delivered: list[tuple[str, int, int]]

    @property
    def keys(self) -> Counter[tuple[str, int]]:
        return Counter((incident_id, ticks) for incident_id, ticks, _ in self.delivered)

    @property
    def missed(self) -> list[tuple[str, int]]:
        keys = self.keys
        return sorted(pair for pair in self.truth.produced if pair not in keys)

    @property
    def duplicated(self) -> int:
        return sum(count - 1 for count in self.keys.values())

    @property
    def foreign(self) -> list[tuple[str, int]]:
        """Delivered updates the ledger never had (a wrong timestamp, or another incident)."""
        known = self.truth.produced | self.truth.superseded
        return sorted(pair for pair in self.keys if pair not in known)

    def misplaced(self) -> list[tuple[str, int, int]]:
        """Updates delivered by a run whose window does not hold them (sensor only)."""
        return [item for item in self.delivered if self.truth.window.get(item[:2], item[2]) != item[2]]

    def line(self) -> str:
        keys = self.keys
        produced = self.truth.produced
        superseded = self.truth.superseded
        return (
            f"{self.label}: produced {len(produced)} delivered {sum(1 for pair in produced if pair in keys)} "
            f"missed {len(self.missed)} duplicated {self.duplicated} superseded {len(superseded)} "
            f"(delivered {sum(1 for pair in superseded if pair in keys)} of them)"
        )

    def explain(self, limit: int = 5) -> str:
        """The first missed and foreign updates, for a failure message."""
        parts = []
        for incident_id, ticks in self.missed[:limit]:
            parts.append(
                f"missed {incident_id}@{stamp(ticks)} (run {self.truth.window[(incident_id, ticks)]})"
            )
        for incident_id, ticks in self.foreign[:limit]:
            parts.append(f"foreign {incident_id}@{stamp(ticks)}")
        return "; ".join(parts)


class Scenario:
    """The updates of each interval, drawn from a seed, chosen against the ledger.

    :param plan: the week.
    :param seed: the seed of every draw.
    :param first_id: ids of created incidents count up from here (above the emulator's own).
    """

    def __init__(self, plan: WeekPlan, *, seed: int, first_id: int = 5000) -> None:
        self.plan = plan
        self.rng = random.Random(seed)
        self.next_id = first_id
        self.kinds: Counter[str] = Counter()

    def _new_id(self) -> str:
        self.next_id += 1
        return str(self.next_id)

    def interval(self, k: int, ledger: Ledger) -> list[dict[str, Any]]:
        """Incidents to put (Graph shape, in order) before run ``k``: updates made in ``(T_{k-1}, T_k]``."""
        rng, plan = self.rng, self.plan
        low, high = ticks_of(plan.run_at(k - 1)), ticks_of(plan.run_at(k))
        lag = span(plan.lag)
        edge = high - lag
        # (put at, stamped, kind); stamps never after the time they are put, nor more than lag before.
        events: list[tuple[int, int, str]] = []
        for _ in range(rng.choice(SIZES)):
            draw = rng.random()
            put_at = rng.randrange(low + 1, high + 1)
            if draw < 0.35:
                events.append((put_at, put_at, "create"))
            elif draw < 0.82:
                events.append((put_at, put_at, "update"))
            elif draw < 0.96:
                put_at = rng.randrange(low + lag + 1, high + 1)
                events.append((put_at, put_at - rng.randrange(0, lag + 1), "late"))
            else:
                events.append((put_at, put_at, "merge"))
        burst_at = rng.randrange(low + 1, high + 1)
        events += [(burst_at, burst_at, "same-time") for _ in range(rng.randint(8, 30))]
        for offset in (-1, 0, 1):
            events.append((high, edge + offset, "edge"))
        events.sort(key=lambda event: event[0])

        latest = {incident_id: history[-1].ticks for incident_id, history in ledger.versions.items()}
        puts: list[dict[str, Any]] = []

        def pick(before: int, avoid: Sequence[str] = ()) -> str | None:
            # Mostly incidents this interval has not touched yet: several updates per incident over
            # the week, and some (superseded before any run reads them) within one interval.
            limits = (low - lag, before) if rng.random() < 0.85 else (before,)
            for limit in limits:
                candidates = [
                    incident_id
                    for incident_id, ticks in latest.items()
                    if ticks < limit and incident_id not in avoid
                ]
                if candidates:
                    return rng.choice(candidates)
            return None

        for _, ticks, kind in events:
            text = stamp(ticks)
            target = None if kind == "create" else pick(ticks)
            if kind == "merge":
                into = pick(ticks, avoid=[target] if target else [])
                if target is not None and into is not None:
                    puts.append(
                        {
                            "id": target,
                            "status": "redirected",
                            "redirectIncidentId": into,
                            "lastUpdateDateTime": text,
                        }
                    )
                    puts.append({"id": into, "lastUpdateDateTime": text})
                    latest[target] = latest[into] = ticks
                    self.kinds["merge"] += 1
                    continue
                target = None
            if target is None or (kind == "same-time" and rng.random() < 0.3):
                incident_id = self._new_id()
                puts.append(
                    {
                        "id": incident_id,
                        "displayName": f"week incident {incident_id}",
                        "severity": rng.choice(("low", "medium", "high")),
                        "createdDateTime": text,
                        "lastUpdateDateTime": text,
                    }
                )
                latest[incident_id] = ticks
                self.kinds["create" if kind in ("create", "update", "merge") else kind] += 1
                continue
            puts.append(
                {
                    "id": target,
                    "status": rng.choice(("active", "inProgress", "resolved")),
                    "lastUpdateDateTime": text,
                }
            )
            latest[target] = ticks
            self.kinds[kind] += 1
        return puts


def put_interval(emulator: Any, puts: Sequence[Mapping[str, Any]], ledger: Ledger, *, phase: int) -> None:
    """Put the interval's incidents and record what the emulator stored."""
    for start in range(0, len(puts), 500):
        for incident in emulator.put_incidents(*puts[start : start + 500]):
            ledger.record(str(incident["id"]), incident["lastUpdateDateTime"], phase=phase, source="put")


# Faults -------------------------------------------------------------------------------------------


def http_date(seconds_ahead: float) -> str:
    return email.utils.format_datetime(datetime.now(UTC) + timedelta(seconds=seconds_ahead), usegmt=True)


#: API faults, one in five calls: throttling in every form, gateway errors, drops, slow and
#: malformed replies, and an expired token (401) mid-paging. ``Retry-After`` waits are real
#: sleeps, so they are short: 0 s, or an HTTP date that has just passed (a misread date shows as a
#: wait longer than the hook sleeps, which fails the task).
API_FAULTS: tuple[dict[str, Any], ...] = (
    {"status": 429, "retry_after": 0},
    {"status": 429, "retry_after": "date"},
    {"status": 429, "message": "Too many requests."},
    {"status": 500},
    {"status": 502},
    {"status": 503},
    {"status": 503, "retry_after": 0},
    {"status": 504},
    {"kind": "drop"},
    {"kind": "malformed"},
    {"delay_s": 0.2},
    {"status": 401},
)
#: Entra ID faults on the token endpoint (fewer calls: here a wait of a whole second is affordable).
TOKEN_FAULTS: tuple[dict[str, Any], ...] = (
    {"status": 429, "retry_after": 1},
    {"status": 429, "retry_after": "date"},
    {"status": 500},
    {"status": 502},
    {"status": 503},
    {"status": 503, "retry_after": 0},
    {"status": 504},
    {"kind": "drop"},
    {"delay_s": 0.2},
)


def fault_chain(
    rng: random.Random,
    *,
    path: str,
    method: str,
    kinds: Sequence[Mapping[str, Any]],
    rate: float,
    length: int,
) -> list[dict[str, Any]]:
    """Faults that fail about ``rate`` of the matching calls: each lets a geometric gap through first."""
    chain: list[dict[str, Any]] = []
    if rate <= 0:
        return chain
    for _ in range(length):
        gap = 0
        while rng.random() >= rate:
            gap += 1
        spec = {"path": path, "method": method, "after": gap, "count": 1, **rng.choice(kinds)}
        if spec.get("retry_after") == "date":
            spec["retry_after"] = http_date(0)
        chain.append(spec)
    return chain


def run_faults(
    rng: random.Random,
    *,
    api: str,
    analysts: bool,
    burst: bool = False,
    token_burst: bool = False,
    seed: int,
    rate: float = 0.2,
) -> list[dict[str, Any]]:
    """Every fault of one run: analysts on each listing, 20 % API and token faults, maybe a burst.

    A burst is six 503s in a row on the listing: more than the transport's attempts, so the task
    try fails and Airflow's retry (or the event trigger's next poll) has to pick it up. A token
    burst is a 401 on the first listing call (the token expired) and then seven 503s from Entra
    ID: more than the token client's attempts, so the renewal fails the same way.
    """
    listing = LISTING_PATH[api]
    specs: list[dict[str, Any]] = []
    if analysts:
        specs.append(
            {
                "path": listing,
                "method": "GET",
                "kind": "mutate",
                "n": 2,
                "probability": 0.5,
                "count": 1_000_000,
                "seed": seed,
            }
        )
    chain = fault_chain(rng, path=listing, method="GET", kinds=API_FAULTS, rate=rate, length=60)
    if burst:
        chain.insert(rng.randrange(1, 4), {"path": listing, "method": "GET", "status": 503, "count": 6})
    tokens = fault_chain(rng, path=TOKEN_PATH, method="POST", kinds=TOKEN_FAULTS, rate=rate, length=30)
    if token_burst:
        chain.insert(0, {"path": listing, "method": "GET", "status": 401, "count": 1})
        tokens.insert(0, {"path": TOKEN_PATH, "method": "POST", "status": 503, "count": 7})
    return specs + chain + tokens


def faults_fired(registered: Sequence[Mapping[str, Any]], pending: Sequence[Mapping[str, Any]]) -> int:
    """Faults used up, from what was registered and what is still pending (analysts aside)."""

    def total(specs: Sequence[Mapping[str, Any]]) -> int:
        return sum(int(spec.get("count", 1)) for spec in specs if spec.get("kind") != "mutate")

    return total(registered) - total(pending)


def fast_backoff(attempt: int, *, base: float, cap: float, rng: random.Random | None = None) -> float:
    """Backoff for the simulation: the real schedule's shape, in hundredths of its seconds."""
    return min(cap, base * 2 ** (attempt - 1)) / 100


# Test plumbing ------------------------------------------------------------------------------------

DAGS = Path(__file__).parents[1] / "dags"


def load_module(name: str) -> Any:
    """``tests/dags/<name>.py`` (the file must be in the dags folder for dag.test)."""
    spec = importlib.util.spec_from_file_location(f"mtp_reliability_dag_{name}", DAGS / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def fast_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    """Backoff in hundredths of its seconds, for API calls and Entra ID calls alike.

    Only the backoff: a ``Retry-After`` the service sends is still slept as asked (keep it small).
    Both retry through :class:`~airflow_provider_mtp.retrying.RetryBudget`, which looks
    ``backoff_wait`` up in the retrying module.
    """
    from airflow_provider_mtp import retrying

    monkeypatch.setattr(retrying, "backoff_wait", fast_backoff)


def use_back_end(emulator: Any, monkeypatch: pytest.MonkeyPatch, api: str) -> None:
    """``mtp_default`` pointed at the emulator, on the ``graph`` or ``legacy`` back end."""
    conn = json.loads(emulator.airflow_conn)
    conn["extra"]["api"] = api
    monkeypatch.setenv("AIRFLOW_CONN_MTP_DEFAULT", json.dumps(conn))
