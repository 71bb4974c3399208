"""The emulator's per-tenant hunting budgets, on a clock the test moves: CPU on 15-minute cycles, calls per minute."""

from __future__ import annotations

import pytest

from airflow_provider_mtp.emulator import limits
from airflow_provider_mtp.emulator.limits import CpuBudget, CpuQuotaExceeded, QuotaExceeded, Quotas
from airflow_provider_mtp.error_replies import hunting_quota_reset


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    fake = FakeClock()
    monkeypatch.setattr(limits.time, "monotonic", fake)
    return fake


def test_a_tenant_over_its_budget_waits_for_the_next_cycle(clock: FakeClock) -> None:
    budget = CpuBudget(10.0, cycle_s=900)
    budget.check("t1")
    budget.charge("t1", 6.0)
    budget.check("t1")
    budget.charge("t1", 5.0)  # a running query is charged in full, past the budget
    clock.now += 300
    with pytest.raises(CpuQuotaExceeded) as caught:
        budget.check("t1")
    assert caught.value.retry_after == 600
    assert str(caught.value) == (
        "You have exceeded processing resources allocated to this tenant. You can run queries again in 00:10:00."
    )
    budget.check("t2")  # per tenant
    clock.now += 600
    budget.check("t1")
    assert budget.snapshot()["used_s"] == {}


def test_the_client_reads_the_wait_from_the_message(clock: FakeClock) -> None:
    budget = CpuBudget(1.0, cycle_s=900)
    budget.charge("t1", 2.0)
    clock.now += 899.5
    with pytest.raises(CpuQuotaExceeded) as caught:
        budget.check("t1")
    assert caught.value.retry_after == 1
    assert hunting_quota_reset(str(caught.value)) == (True, 1.0)


def test_quotas_off_never_refuse_but_still_count(clock: FakeClock) -> None:
    quotas = Quotas(enabled=False, cpu_seconds=1.0)
    quotas.cpu.charge("t1", 5.0)
    quotas.cpu.check("t1")
    assert quotas.cpu.snapshot() == {"budget_s": 1.0, "cycle_s": 900, "enabled": False, "used_s": {"t1": 5.0}}


def test_a_reset_refills_the_budget(clock: FakeClock) -> None:
    quotas = Quotas(cpu_seconds=1.0)
    quotas.cpu.charge("t1", 5.0)
    with pytest.raises(CpuQuotaExceeded):
        quotas.cpu.check("t1")
    quotas.reset()
    quotas.cpu.check("t1")


def test_the_default_hunting_budget_is_45_calls_a_minute(clock: FakeClock) -> None:
    quotas = Quotas()
    for _ in range(45):
        quotas.take("hunting", "t1")
    with pytest.raises(QuotaExceeded) as caught:
        quotas.take("hunting", "t1")
    assert str(caught.value) == "API calls quota exceeded! maximum allowed 45 per 00:01:00"


def test_a_smaller_hunting_budget_refuses_sooner_and_refills_on_the_sliding_minute(clock: FakeClock) -> None:
    quotas = Quotas(hunting_per_minute=2)
    quotas.take("hunting", "t1")
    clock.now += 20
    quotas.take("hunting", "t1")
    with pytest.raises(QuotaExceeded) as caught:
        quotas.take("hunting", "t1")
    assert caught.value.retry_after == 40  # the first call leaves the window 60 s after it was made
    assert str(caught.value) == "API calls quota exceeded! maximum allowed 2 per 00:01:00"
    quotas.take("hunting", "t2")  # per tenant
    quotas.take("legacy-incidents-list", "t1")  # the other budgets keep their sizes
    clock.now += 40
    quotas.take("hunting", "t1")
