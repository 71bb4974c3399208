"""The Defender portal's advanced-hunting deep link: a KQL query in the URL, and back.

The portal opens a query in its hunting editor from
``https://<portal>/v2/advanced-hunting?query=<q>&timeRangeId=<range>``, where ``<q>`` is the
query encoded as UTF-16LE, gzip-compressed, then Base64 (the editor shows garbage for UTF-8).
Such links start ``H4sI``: the gzip header in Base64. Here the Base64 is the standard alphabet,
percent-encoded in the URL; :func:`hunting_query_from_url` also reads the URL-safe alphabet.

Pure: no client, no Airflow; the portal host and the tenant come from the caller.
"""

from __future__ import annotations

import base64
import binascii
import gzip
import zlib
from urllib.parse import parse_qs, quote, urlsplit

__all__ = [
    "DEFAULT_TIME_RANGE",
    "MAX_URL_LENGTH",
    "TIME_RANGES",
    "advanced_hunting_url",
    "encode_hunting_query",
    "hunting_query_from_url",
]

#: Longest link made, in characters. Browsers take far longer URLs, but the proxies and servers on
#: the way (Azure Front Door, common reverse proxies) refuse a request line over about 8 KB; a link
#: over this is left out rather than handed to a user to fail. Gzip shrinks KQL several times over,
#: so this holds queries of roughly 10 to 30 KB of text.
MAX_URL_LENGTH = 8000
#: The editor's time ranges a link may name (the values seen in the portal's own links).
TIME_RANGES = ("day", "week", "month")
#: The widest range, the whole 30 days advanced hunting keeps: a query's own time filter then
#: decides its rows (the narrower range wins), whenever the link is opened.
DEFAULT_TIME_RANGE = "month"
_PATH = "v2/advanced-hunting"


def encode_hunting_query(query: str) -> str:
    """``query`` as the link's ``query`` value before percent-encoding: UTF-16LE, gzip, Base64.

    The gzip header's time is fixed at 0, so a query always gets the same link.

    :param query: the KQL.
    """
    return base64.b64encode(gzip.compress(query.encode("utf-16-le"), mtime=0)).decode("ascii")


def advanced_hunting_url(
    portal: str,
    query: str,
    *,
    tenant_id: str | None = None,
    time_range: str = DEFAULT_TIME_RANGE,
    max_length: int | None = MAX_URL_LENGTH,
) -> str | None:
    """The portal link that opens ``query`` in the advanced-hunting editor, or ``None`` if too long.

    :param portal: the cloud's portal origin, e.g. ``https://security.microsoft.com``.
    :param query: the KQL, exactly as the editor should show it.
    :param tenant_id: appended as ``&tid=`` (the portal's tenant switch, as on incident links);
        omitted when ``None``.
    :param time_range: the editor's time range, one of :data:`TIME_RANGES`.
    :param max_length: the longest URL returned (``None``: no limit).
    :raises ValueError: an unknown ``time_range``.
    """
    if time_range not in TIME_RANGES:
        raise ValueError(f"time_range must be one of {', '.join(TIME_RANGES)}, got {time_range!r}")
    url = (
        f"{portal.rstrip('/')}/{_PATH}?query={quote(encode_hunting_query(query), safe='')}"
        f"&timeRangeId={time_range}"
    )
    if tenant_id is not None:
        url += f"&tid={quote(tenant_id, safe='')}"
    return url if max_length is None or len(url) <= max_length else None


def hunting_query_from_url(url: str) -> str:
    """The KQL an advanced-hunting link opens: the inverse of :func:`advanced_hunting_url`.

    Reads standard or URL-safe Base64, with or without its ``=`` padding.

    :param url: the link.
    :raises ValueError: the URL has no ``query`` value, or it is not gzip-compressed UTF-16LE text
        in Base64.
    """
    values = parse_qs(urlsplit(url).query).get("query")
    if not values:
        raise ValueError("the URL has no query= value: not an advanced-hunting link")
    # A '+' left unescaped in the URL reads back as a space.
    encoded = values[0].replace(" ", "+").replace("-", "+").replace("_", "/")
    try:
        packed = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
        return gzip.decompress(packed).decode("utf-16-le")
    except (binascii.Error, zlib.error, OSError, EOFError, UnicodeDecodeError) as exc:
        raise ValueError(
            f"the URL's query= value is not Base64 of gzip-compressed UTF-16LE KQL: {exc}"
        ) from exc
