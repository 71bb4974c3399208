"""Secrets kept out of messages and logs: credentials in URLs, and values given to Airflow's masker.

A URL from the connection (``api_url``, ``login_url``, ``proxy``) or from a reply may carry a
``user:password@`` part; proxies legitimately do. Airflow's secrets masker only hides values it
was told about, and messages also reach places it does not see (``test_connection``, the UI), so
every message that shows a URL shows it through :func:`mask_url` (or :func:`mask_urls` for free
text such as a library's exception). Secrets the provider holds (connection secrets, tokens) are
registered with Airflow's secrets masker through :func:`mask_secrets`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import urlsplit

#: What replaces a URL's user part.
MASK = "***"

# scheme://, then the authority up to its last "@": a password may hold a raw "@", and the host
# part never does.
_USERINFO = re.compile(r"(?P<scheme>\b[a-z][a-z0-9+.\-]*://)[^\s/?#'\"<>\\]*@", re.IGNORECASE)


def mask_url(url: str) -> str:
    """``url`` with its user part, if any, replaced by ``***`` (``http://***@proxy:3128``).

    A value without a scheme (``user:pw@proxy:3128``) is masked the same way.

    :param url: a URL, or a value meant to be one.
    """
    if "://" in url:
        return mask_urls(url)
    authority, slash, rest = url.partition("/")
    if "@" not in authority:
        return url
    return f"{MASK}@{authority.rpartition('@')[2]}{slash}{rest}"


def mask_urls(text: str) -> str:
    """``text`` with the user part of every ``scheme://user:password@host`` in it masked.

    :param text: free text, such as an exception's message.
    """
    return _USERINFO.sub(rf"\g<scheme>{MASK}@", text)


def netloc(url: str) -> str:
    """``host[:port]`` of ``url``, with a user part shown as ``***@``; for messages about hosts.

    :param url: an absolute URL.
    """
    try:
        location = urlsplit(url).netloc
    except ValueError:
        return mask_url(url)
    return mask_url(location) if "@" in location else location


def mask_secrets(values: Iterable[str]) -> None:
    """Register each non-empty value with Airflow's secrets masker (task logs and the supervisor's).

    :param values: secrets, e.g. a connection's password or a new access token.
    """
    # The one Airflow import of this module, made here so the client imports without Airflow's SDK.
    from airflow.sdk.log import mask_secret

    for value in values:
        if value:
            mask_secret(value)
