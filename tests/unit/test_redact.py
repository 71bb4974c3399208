"""Credentials in URLs are masked before a URL reaches a message (issue 8, "Secret in an error")."""

from __future__ import annotations

import pytest

from airflow_provider_mtp.redact import mask_secrets, mask_url, mask_urls, netloc


@pytest.mark.parametrize(
    ("url", "masked"),
    [
        ("http://user:pw@proxy.corp:3128", "http://***@proxy.corp:3128"),
        ("https://token@gw.example.com/path?q=1", "https://***@gw.example.com/path?q=1"),
        # A raw "@" in the password: everything up to the host's "@" is the user part.
        ("socks5h://u:p@ss@proxy:1080", "socks5h://***@proxy:1080"),
        ("user:pw@proxy.corp:3128", "***@proxy.corp:3128"),
        ("https://graph.microsoft.com/v1.0/security", "https://graph.microsoft.com/v1.0/security"),
        ("proxy.corp:3128", "proxy.corp:3128"),
        # An "@" after the authority is not a user part.
        ("https://host/users/a@b.com", "https://host/users/a@b.com"),
    ],
)
def test_mask_url_replaces_only_the_user_part(url: str, masked: str) -> None:
    assert mask_url(url) == masked


def test_mask_urls_masks_every_url_in_free_text() -> None:
    text = "ProxyError('http://alice:S3cret@proxy:3128') then 'https://bob:Other@login.example/x' for a@b.com"
    assert (
        mask_urls(text)
        == "ProxyError('http://***@proxy:3128') then 'https://***@login.example/x' for a@b.com"
    )


def test_netloc_shows_host_and_port_and_masks_a_user_part() -> None:
    assert netloc("https://127.0.0.1:8443/v1.0") == "127.0.0.1:8443"
    assert netloc("https://user:pw@evil.example/next") == "***@evil.example"
    assert "pw" not in netloc("https://user:pw@[::1/broken")


def test_mask_secrets_registers_each_non_empty_value_with_airflow(monkeypatch: pytest.MonkeyPatch) -> None:
    import airflow.sdk.log

    masked: list[str] = []
    monkeypatch.setattr(airflow.sdk.log, "mask_secret", lambda value, name=None: masked.append(value))
    mask_secrets(["s3cret", "", "token.value"])
    assert masked == ["s3cret", "token.value"], "an empty value would mask nothing and is skipped"
