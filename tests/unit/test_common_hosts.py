"""Loopback hosts (common/hosts.py): where plain http is allowed, decided once for settings and transport."""

from __future__ import annotations

import pytest

from airflow_provider_mtp.common.hosts import LOOPBACK_NAMES, is_loopback


@pytest.mark.parametrize(
    "host",
    [
        "localhost",
        "LocalHost",
        "localhost.localdomain",
        "ip6-localhost",
        "ip6-loopback",
        "IP6-LOCALHOST",
        "127.0.0.1",
        "127.0.0.53",
        "127.255.255.254",
        "::1",
        "[::1]",
        "0:0:0:0:0:0:0:1",
        "::ffff:127.0.0.1",
    ],
)
def test_loopback(host: str) -> None:
    assert is_loopback(host)


@pytest.mark.parametrize(
    "host",
    [
        None,
        "",
        "example.com",
        "localhost.example.com",
        "my-localhost",
        "128.0.0.1",
        "10.0.0.1",
        "0.0.0.0",
        "::",
        "[::2]",
        "::ffff:10.0.0.1",
        "[127.0.0.1",
    ],
)
def test_not_loopback(host: str | None) -> None:
    assert not is_loopback(host)


def test_the_names_are_the_ones_distributions_map_to_loopback() -> None:
    assert {"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"} == LOOPBACK_NAMES
