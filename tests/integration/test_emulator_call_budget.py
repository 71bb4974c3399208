"""The emulator's hunting call budget per tenant per sliding minute: ``--hunting-calls-per-minute``, ``POST /_emulator/quotas``."""

from __future__ import annotations

import pytest
import requests

from airflow_provider_mtp.emulator import DefenderEmulator
from airflow_provider_mtp.emulator.__main__ import parse_args
from tests.integration.conftest import GRAPH, MTP, graph_hunt, legacy_hunt, token


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
