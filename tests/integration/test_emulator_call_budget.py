"""The emulator's hunting call budget per tenant per sliding minute: ``--hunting-calls-per-minute``, ``POST /_emulator/quotas``."""

from __future__ import annotations

import pytest
import requests

from airflow_provider_mtp.emulator import DefenderEmulator, limits
from airflow_provider_mtp.emulator.__main__ import parse_args
from airflow_provider_mtp.emulator.limits import QuotaExceeded, Quotas
from tests.integration.conftest import GRAPH, MTP, graph_hunt, legacy_hunt, token


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


def test_the_option_reaches_the_config_and_refuses_zero(capsys: pytest.CaptureFixture[str]) -> None:
    config, _ = parse_args(["--hunting-calls-per-minute", "12"])
    assert config.hunting_calls_per_minute == 12
    assert parse_args([])[0].hunting_calls_per_minute == 45
    with pytest.raises(SystemExit):
        parse_args(["--hunting-calls-per-minute", "0"])
    assert "--hunting-calls-per-minute must be at least 1" in capsys.readouterr().err


def test_the_budget_changes_while_running_and_reset_restores_it(strict_emulator: DefenderEmulator) -> None:
    strict_emulator.reset()
    assert strict_emulator.stats()["quotas"] == {"enabled": True, "hunting_per_minute": 45}
    try:
        assert strict_emulator.set_hunting_budget(2) == {"enabled": True, "hunting_per_minute": 2}
        graph, mtp = token(strict_emulator, GRAPH), token(strict_emulator, MTP)
        assert graph_hunt(strict_emulator, graph, "range x from 1 to 2 step 1").status_code == 200
        assert legacy_hunt(strict_emulator, mtp, "range x from 1 to 2 step 1").status_code == 200
        refused = graph_hunt(strict_emulator, graph, "range x from 1 to 2 step 1")
        assert refused.status_code == 429  # both APIs share the one budget
        assert 1 <= int(refused.headers["Retry-After"]) <= 60
        assert "maximum allowed 2 per 00:01:00" in refused.text
        bad = requests.post(
            f"{strict_emulator.url}/_emulator/quotas",
            json={"hunting_per_minute": 0},
            verify=strict_emulator.ca_bundle,
            timeout=30,
        )
        assert bad.status_code == 400
        assert bad.json()["error"]["message"].startswith('Send {"hunting_per_minute": n}')
    finally:
        strict_emulator.reset()
    assert strict_emulator.stats()["quotas"]["hunting_per_minute"] == 45
    assert (
        graph_hunt(strict_emulator, token(strict_emulator, GRAPH), "range x from 1 to 2 step 1").status_code
        == 200
    )
