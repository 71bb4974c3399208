"""The "Open in advanced hunting" link: the query in the URL and back, per cloud, and on the operator.

The link's format is in ``defender-api.md`` ("Portal deep link"): the KQL as UTF-16LE, gzip, then
Base64, under ``query=``. The decoding here is written out independently of the module's inverse
(:func:`~airflow_provider_mtp.hunting_link.hunting_query_from_url`), so a wrong encoding in both
directions (UTF-8, say) still fails. The hunting operator is run with the fake hook of
tests/unit/test_hunting_operator.py; the emulator's side is in
tests/integration/test_hunting_link_dag.py.
"""

from __future__ import annotations

import base64
import gzip
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from airflow_provider_mtp.clouds import CLOUDS
from airflow_provider_mtp.hunting_link import (
    MAX_URL_LENGTH,
    advanced_hunting_url,
    encode_hunting_query,
    hunting_query_from_url,
)
from airflow_provider_mtp.links import HUNTING_URL_XCOM_KEY, DefenderHuntingLink, hunting_portal_url
from airflow_provider_mtp.operators import hunting
from airflow_provider_mtp.operators.hunting import RunHuntingQueryOperator
from airflow_provider_mtp.settings import ConnectionSettings
from tests.unit.test_hunting_operator import LIMIT, QUERY, TENANT, by_window, context, operator

PORTAL = "https://security.microsoft.com"
#: Several lines, non-ASCII letters (one beyond the BMP), both quote kinds, escapes, pipes, a tab.
KQL = (
    'let device = "ws-01 \\"quoted\\"";\n'
    "DeviceProcessEvents\r\n"
    "| where Timestamp >= WindowStart and Timestamp < WindowEnd\n"
    "| where ProcessCommandLine has 'Invoke-Expression' or FileName =~ \"Überprüfung.exe\"\n"
    '\t| where AccountName in~ ("josé", "李雷", "Ωmega") // comment 🔍 with | and ;\n'
    "| project Timestamp, DeviceName, FileName"
)

#: Random-looking literals barely compress: a link of this query is over the limit.
LONG = "\n".join(f"| where X != '{n * 7919 % 100003:05x}{n:x}'" for n in range(1200))


def decoded(url: str) -> str:
    """The query a link carries, decoded here by the format's rules (not by the module)."""
    (value,) = parse_qs(urlsplit(url).query)["query"]
    return gzip.decompress(base64.b64decode(value, validate=True)).decode("utf-16-le")


def settings_for(cloud: str, tenant: str = TENANT) -> ConnectionSettings:
    return ConnectionSettings.from_connection(
        conn_id="mtp_test",
        login="client-id",
        password="the-client-secret",
        extra={"tenant_id": tenant, "cloud": cloud},
    )


# --------------------------------------------------------------------------------------------
# The URL
# --------------------------------------------------------------------------------------------


def test_the_link_decodes_back_to_the_exact_query_text() -> None:
    url = advanced_hunting_url(PORTAL, KQL, tenant_id=TENANT)
    assert url is not None
    assert decoded(url) == KQL
    assert hunting_query_from_url(url) == KQL
    split = urlsplit(url)
    assert f"{split.scheme}://{split.netloc}{split.path}" == f"{PORTAL}/v2/advanced-hunting"
    assert parse_qs(split.query) == {
        "query": [encode_hunting_query(KQL)],
        "timeRangeId": ["month"],
        "tid": [TENANT],
    }
    # Only unreserved characters and percent escapes: nothing a browser or a chat client rewrites.
    assert all(c.isascii() and (c.isalnum() or c in "%-._~:/?&=") for c in url)


def test_the_query_is_utf16le_gzip_base64_and_starts_h4si() -> None:
    url = advanced_hunting_url(PORTAL, KQL)
    assert url is not None
    assert "query=H4sI" in url, "the gzip header in Base64"
    (value,) = parse_qs(urlsplit(url).query)["query"]
    raw = gzip.decompress(base64.b64decode(value))
    assert raw == KQL.encode("utf-16-le"), "UTF-16LE: the portal's editor shows garbage for UTF-8"
    assert not raw.startswith(b"\xff\xfe"), "no byte-order mark"
    assert "tid=" not in url, "no tenant given, no tid"


def test_the_same_query_always_gets_the_same_link() -> None:
    assert advanced_hunting_url(PORTAL, KQL) == advanced_hunting_url(PORTAL, KQL)


@pytest.mark.parametrize("name", sorted(CLOUDS))
def test_each_cloud_links_to_its_own_portal_with_its_tenant(name: str) -> None:
    settings = settings_for(name, tenant="contoso.onmicrosoft.com")
    url = hunting_portal_url(settings, KQL)
    assert url is not None
    assert url.startswith(f"{CLOUDS[name].portal}/v2/advanced-hunting?query=H4sI")
    assert parse_qs(urlsplit(url).query)["tid"] == ["contoso.onmicrosoft.com"]
    assert hunting_query_from_url(url) == KQL
    assert "the-client-secret" not in url
    assert "the-client-secret" not in decoded(url)


def test_the_sovereign_portals_are_the_reference_hosts() -> None:
    hosts = {name: urlsplit(hunting_portal_url(settings_for(name), "T") or "").netloc for name in CLOUDS}
    assert hosts == {
        "global": "security.microsoft.com",
        "gcc": "security.microsoft.com",
        "gcc_high": "security.microsoft.us",
        "dod": "security.apps.mil",
        "china": "security.microsoft.com",
    }


def test_a_query_over_the_limit_gets_no_link() -> None:
    full = advanced_hunting_url(PORTAL, LONG, max_length=None)
    assert full is not None
    assert len(full) > MAX_URL_LENGTH
    assert advanced_hunting_url(PORTAL, LONG) is None
    assert hunting_query_from_url(full) == LONG, "the unlimited link still holds it all"


def test_url_safe_and_unpadded_base64_read_back_too() -> None:
    safe = base64.urlsafe_b64encode(gzip.compress(KQL.encode("utf-16-le"))).decode().rstrip("=")
    assert hunting_query_from_url(f"{PORTAL}/v2/advanced-hunting?query={safe}&timeRangeId=day") == KQL
    # Standard Base64 pasted without percent-encoding: its '+' reads back as a space.
    plain = encode_hunting_query(KQL)
    assert hunting_query_from_url(f"{PORTAL}/v2/advanced-hunting?query={plain}") == KQL


@pytest.mark.parametrize(
    ("url", "message"),
    [
        (f"{PORTAL}/v2/advanced-hunting?timeRangeId=day", "has no query= value"),
        (f"{PORTAL}/v2/advanced-hunting?query=bm90IGd6aXA", "not Base64 of gzip-compressed UTF-16LE"),
        (f"{PORTAL}/v2/advanced-hunting?query=%%%", "not Base64 of gzip-compressed UTF-16LE"),
    ],
)
def test_a_url_that_is_not_a_hunting_link_is_refused(url: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        hunting_query_from_url(url)


def test_an_unknown_time_range_is_refused() -> None:
    with pytest.raises(ValueError, match="time_range must be one of day, week, month"):
        advanced_hunting_url(PORTAL, "T", time_range="year")


# --------------------------------------------------------------------------------------------
# On the operator
# --------------------------------------------------------------------------------------------


def pushed(ctx: dict[str, Any]) -> Any:
    return ctx["ti"].xcoms.get(HUNTING_URL_XCOM_KEY)


def test_the_operator_links_the_exact_text_it_sent() -> None:
    op, hook = operator(
        by_window(),
        query=KQL.split("\n", 1)[1],
        query_parameters={"device": 'x" | union * | take 1 //', "n": "5"},
        parameter_types={"n": "long"},
    )
    ctx = context()
    op.execute(ctx)
    ((sent, timespan),) = hook.calls
    url = pushed(ctx)
    assert hunting_query_from_url(url) == decoded(url) == sent
    assert sent.startswith('let device = "x\\" | union * | take 1 //";\nlet n = long(5);\nlet WindowStart = ')
    assert timespan == "2026-11-01T00:00:00.0000000Z/2026-11-03T00:00:00.0000000Z"
    assert "let WindowEnd = datetime(2026-11-03T00:00:00.0000000Z);\n" in sent, (
        "Graph's Timespan, in the text"
    )
    assert url.startswith(f"{PORTAL}/v2/advanced-hunting?query=H4sI")
    assert url.endswith(f"&timeRangeId=month&tid={TENANT}")


def test_a_split_hunt_links_the_whole_windows_query(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hunting, "HUNTING_ROW_LIMIT", LIMIT)  # 2,400 rows: split into quarters
    op, hook = operator(by_window(per_hour=50), split_on_limit=True, max_xcom_rows=5000)
    ctx = context()
    op.execute(ctx)
    texts = [sent for sent, _ in hook.calls]
    assert len(texts) == 7, "the whole window, its two halves, then four quarters"
    text = hunting_query_from_url(pushed(ctx))
    assert texts[0] == text, "the first try, over the whole window"
    assert texts.count(text) == 1, "no piece's text"
    assert text == (
        "let WindowStart = datetime(2026-11-01T00:00:00.0000000Z);\n"
        "let WindowEnd = datetime(2026-11-03T00:00:00.0000000Z);\n" + QUERY
    )


def test_the_link_is_pushed_before_the_first_call() -> None:
    op, _ = operator(lambda text, timespan: ValueError("the service is down"))
    ctx = context()
    with pytest.raises(ValueError, match="the service is down"):
        op.execute(ctx)
    assert hunting_query_from_url(pushed(ctx)).endswith(QUERY)


def test_too_long_a_query_gets_no_link_and_one_log_line(capsys: pytest.CaptureFixture[str]) -> None:
    long = QUERY + "\n" + LONG
    op, hook = operator(by_window(), query=long)
    ctx = context()
    op.execute(ctx)
    assert pushed(ctx) is None
    assert len(hook.calls) == 1, "the hunt itself still runs"
    (sent, _) = hook.calls[0]
    link = advanced_hunting_url(PORTAL, sent, tenant_id=TENANT, max_length=None) or ""
    lines = [line for line in capsys.readouterr().out.splitlines() if "Open in advanced hunting" in line]
    assert len(lines) == 1, lines
    assert len(link) > MAX_URL_LENGTH
    assert (
        f"No 'Open in advanced hunting' link: the query as sent ({len(sent):,} characters) makes a link "
        f"of {len(link):,} characters, over the 8,000 a link may have"
    ) in lines[0]
    assert f"[{op.log.name}]" in lines[0]


def test_the_link_is_declared_on_the_operator() -> None:
    (link,) = RunHuntingQueryOperator.operator_extra_links
    assert isinstance(link, DefenderHuntingLink)
    assert link.name == "Open in advanced hunting"
    assert link.url_key == HUNTING_URL_XCOM_KEY == "hunting_url"


def test_the_provider_registers_the_link() -> None:
    from airflow_provider_mtp.get_provider_info import get_provider_info

    links = get_provider_info()["extra-links"]
    assert "airflow_provider_mtp.links.DefenderHuntingLink" in links
    assert "airflow_provider_mtp.links.DefenderIncidentLink" in links
