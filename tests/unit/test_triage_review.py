"""The analyst's review: hostile tenant text stays text, choices map to enums, "leave for later" changes nothing.

Bodies are rendered with markdown-it-py's GFM-like preset with linkify on (tables and bare-URL
autolinks, like the react-markdown + remark-gfm the Airflow UI renders HITL bodies with), and the
HTML is inspected: the only link is the portal link the caller built, and no image or HTML element
comes from the tenant's text. The Airflow UI also links bare URLs and e-mail addresses found in
the *text* after escapes are resolved (mdast-util-gfm-autolink-literal; an analyst's e-mail address
in evidence was linked in the browser test with backslash escapes): so tenant text must sit in code
spans, and the text outside code must hold no such pattern (:data:`AUTOLINKED`, its regular
expressions).
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from typing import Any

import pytest
from markdown_it import MarkdownIt

from airflow_provider_mtp.enums import Classification, Determination
from airflow_provider_mtp.errors import MTPConfigError
from airflow_provider_mtp.triage_review import (
    DECISIONS,
    LEAVE_FOR_LATER,
    Decision,
    HuntFindings,
    break_templates,
    decision_changes,
    escape_markdown,
    review_markdown,
    review_options,
    review_subject,
    review_updates,
)

PORTAL = "https://security.microsoft.com/incidents/42?tid=t-1"

#: Tenant text that would open links, images, HTML, templates, tables, headings, or hide itself.
HOSTILE = [
    "<script>alert(1)</script>",
    '<img src="https://evil.example/x.png" onerror="alert(1)">',
    "[Reset your password](https://evil.example/login)",
    "![pixel](https://evil.example/track.gif)",
    "see https://evil.example/a and www.evil.example and admin@evil.example",
    "<https://evil.example/auto>",
    "{{ conf.get('core', 'fernet_key') }} {% raw %}",
    "cmd.exe /c echo a | b | c",
    "line one\n# Heading\n- item\n    code\n===\n> quote",
    "**bold** _em_ `code` ~~gone~~ &lt;b&gt; &#60;i&#62;",
    "payload\u202egnp.exe\u200b",
    "[a]: https://evil.example/ref\n[a]",
    "javascript:alert(1)",
]


#: What remark-gfm's autolink literal transform links in text nodes (URLs, www., e-mail addresses).
AUTOLINKED = re.compile(r"(https?://|www\.)[-.\w]+|[-.\w+]+@[-\w]+(\.[-\w]+)+", re.IGNORECASE)


class _Tags(HTMLParser):
    """The elements and the links of rendered HTML, and its text outside code and links."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.links: list[str] = []
        self.open: list[str] = []
        self.plain: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.open.append(tag)
        if tag == "a":
            self.links.append(str(dict(attrs).get("href")))

    def handle_endtag(self, tag: str) -> None:
        if tag in self.open:
            del self.open[len(self.open) - 1 - self.open[::-1].index(tag) :]

    def handle_data(self, data: str) -> None:
        if "code" not in self.open and "a" not in self.open:
            self.plain.append(data)


def render(markdown: str) -> _Tags:
    parser = _Tags()
    parser.feed(MarkdownIt("gfm-like").render(markdown))
    return parser


def _incident(text: str) -> dict[str, Any]:
    return {
        "id": "42",
        "displayName": text,
        "severity": "high",
        "status": "active",
        "classification": "unknown",
        "determination": "unknown",
        "assignedTo": text,
        "incidentWebUrl": "https://evil.example/incidents/42",
        "comments": [
            {"comment": text, "createdByDisplayName": text, "createdDateTime": "2026-11-20T11:00:00Z"}
        ],
        "alerts": [
            {
                "title": text,
                "severity": "high",
                "status": "new",
                "category": text,
                "alertWebUrl": "https://evil.example/alert",
                "evidence": [
                    {
                        "@odata.type": "#microsoft.graph.security.processEvidence",
                        "verdict": "malicious",
                        "processCommandLine": text,
                        "imageFile": {"fileName": text, "sha256": "ab" * 32},
                    },
                    {
                        "@odata.type": "#microsoft.graph.security.urlEvidence",
                        "verdict": "suspicious",
                        "url": text,
                    },
                    {
                        "@odata.type": "#microsoft.graph.security.userEvidence",
                        "verdict": "unknown",
                        "userAccount": {"accountName": text, "domainName": "CONTOSO"},
                    },
                ],
            }
        ],
    }


# Hostile text ----------------------------------------------------------------------------------


@pytest.mark.parametrize("text", HOSTILE, ids=range(len(HOSTILE)))
def test_hostile_tenant_text_stays_text(text: str) -> None:
    found = HuntFindings(title=text, rows=3, window=text, location=text, counts={text: {text: 2}})
    body = review_markdown(_incident(text), findings=[found], portal_url=PORTAL)

    html = render(body)
    assert html.links == [PORTAL], "the only link is the portal link the caller built"
    # Only the elements the builder itself writes: no image, script, code, emphasis, heading or
    # quote made by the tenant's text.
    assert set(html.tags) <= {
        "code",
        "p",
        "strong",
        "a",
        "h3",
        "table",
        "thead",
        "tbody",
        "tr",
        "th",
        "td",
        "ul",
        "li",
    }
    # Nothing outside code would be autolinked by the UI.
    assert not AUTOLINKED.search(" ".join(html.plain)), html.plain
    # Jinja never sees a template in the body.
    assert "{{" not in body
    assert "{%" not in body
    assert "\u202e" not in body
    # The tenant's zero-width space is gone; the only ones left break Jinja's delimiters.
    assert "\u200b" not in body.replace("{\u200b", "{")


def test_hostile_text_is_shown_as_written() -> None:
    """Escaping keeps the characters: the analyst reads what the tenant holds (on one line)."""
    text = "[x](https://evil.example/) <b>*y*</b> {{ z }} a|b `q` ``r``"
    rendered = MarkdownIt("gfm-like").render(escape_markdown(text))
    assert rendered == (
        "<p><code>[x](https://evil.example/) &lt;b&gt;*y*&lt;/b&gt; {\u200b{ z }} a|b `q` ``r``</code></p>\n"
    )
    assert MarkdownIt("gfm-like").render(escape_markdown("`edge`")) == "<p><code>`edge`</code></p>\n"


def test_table_cells_keep_their_pipes() -> None:
    body = review_markdown(_incident("a | b | c"), portal_url=PORTAL)
    html = MarkdownIt("gfm-like").render(body)
    # The alert table has five columns; the tenant's pipes did not add cells.
    header = re.search(r"<thead>(.*?)</thead>", html, re.S)
    assert header is not None
    assert header.group(1).count("<th") == 5
    assert "<td><code>a | b | c</code></td>" in html


def test_line_breaks_control_characters_and_length() -> None:
    assert escape_markdown("a\nb\r\nc\td\u2028e") == "a b c d e"
    assert escape_markdown("x\u202ey\u200bz\x00") == "xyz"
    assert escape_markdown("abcdef", limit=4) == "`abc…`"
    assert escape_markdown(None) == ""
    assert escape_markdown(" \n ") == ""
    assert escape_markdown(42) == "42"
    # Plain words stay plain; an underscore, a dot or an at sign make a code span.
    assert escape_markdown("Mimikatz credential theft-tool 2") == "Mimikatz credential theft-tool 2"
    assert escape_markdown("_em_") == "`_em_`"
    assert escape_markdown("www.evil.example") == "`www.evil.example`"
    assert escape_markdown("a|b", table=True) == "`a\\|b`"


@pytest.mark.parametrize(
    "url",
    ["http://security.microsoft.com/incidents/1", "javascript:alert(1)", "", None, "data:text/html,x"],
)
def test_only_https_portal_links_are_linked(url: str | None) -> None:
    body = review_markdown(_incident("title"), portal_url=url)
    assert render(body).links == []


def test_a_portal_url_cannot_break_out_of_its_link() -> None:
    body = review_markdown(
        _incident("t"), portal_url="https://security.microsoft.com/x) ![a](https://evil.example/"
    )
    html = render(body)
    assert "img" not in html.tags
    assert html.links == ["https://security.microsoft.com/x%29%20!%5Ba%5D%28https://evil.example/"]


# What the review shows -------------------------------------------------------------------------


def test_incident_review_shows_alerts_evidence_findings_and_comments() -> None:
    incident = _incident("Ransomware on ws-01")
    found = HuntFindings(
        title="Process and network events on ws-01",
        rows=17,
        window="2026-11-20T10:00:00+00:00 to 2026-11-20T12:00:00+00:00",
        location="file:///tmp/t.jsonl",
        counts={"processes": {"powershell.exe": 9, "cmd.exe": 3}},
    )
    body = review_markdown(incident, findings=[found], portal_url=PORTAL)
    assert body.startswith("**Incident 42: Ransomware on ws-01**\n")
    assert "### Alerts (1)" in body
    assert "### Evidence (3)" in body
    # Malicious first.
    evidence = body.split("### Evidence", 1)[1]
    assert evidence.index("malicious") < evidence.index("suspicious") < evidence.index("unknown")
    assert "`CONTOSO\\Ransomware on ws-01`" in body
    assert "**Process and network events on ws-01**: rows: 17 over" in body
    assert "most frequent processes: `powershell.exe` (9), `cmd.exe` (3)" in body
    assert "### Latest comments" in body
    assert review_subject(incident) == "Incident 42 (high): Ransomware on ws-01"
    # The subject is a template field that Airflow renders, also on resume: no template survives.
    hostile = review_subject({"id": "1", "severity": "high", "displayName": "a {{ 7 * 7 }} {% x %}\n{# c #}"})
    assert hostile == "Incident 1 (high): a {\u200b{ 7 * 7 }} {\u200b% x %} {\u200b# c #}"


def test_alert_review_uses_the_alert_and_its_own_evidence() -> None:
    alert = {
        "id": "da123",
        "title": "Suspicious PowerShell",
        "severity": "medium",
        "status": "new",
        "description": "Encoded\ncommand",
        "serviceSource": "microsoftDefenderForEndpoint",
        "detectionSource": "antivirus",
        "category": "Execution",
        "firstActivityDateTime": "2026-11-20T10:00:00Z",
        "lastActivityDateTime": "2026-11-20T10:05:00Z",
        "evidence": [
            {
                "@odata.type": "#microsoft.graph.security.deviceEvidence",
                "deviceDnsName": "ws-01.contoso.local",
            },
            {
                "@odata.type": "#microsoft.graph.security.ipEvidence",
                "ipAddress": "203.0.113.9",
                "verdict": "malicious",
            },
        ],
    }
    body = review_markdown(alert, portal_url="https://security.microsoft.com/alerts/da123")
    assert body.startswith("**Alert da123: Suspicious PowerShell**")
    assert "### Alerts" not in body
    assert "> Encoded command" in body
    assert "| ip | `203.0.113.9` | malicious |" in body
    assert "`ws-01.contoso.local`" in body
    assert "No enrichment hunt ran." in body
    assert review_subject(alert) == "Alert da123 (medium): Suspicious PowerShell"


def test_long_lists_are_cut() -> None:
    incident = _incident("t")
    incident["alerts"] = [{"title": f"alert {n}", "evidence": []} for n in range(30)]
    body = review_markdown(incident)
    assert "### Alerts (30)" in body
    assert "…and 18 more." in body


# Choices and the update they ask for -------------------------------------------------------------


def test_options_are_the_decisions_then_leave_for_later() -> None:
    options = review_options()
    assert options[-1] == LEAVE_FOR_LATER
    assert options[:-1] == [decision.label for decision in DECISIONS]
    assert len(set(options)) == len(options)
    for decision in DECISIONS:
        assert isinstance(decision.classification, Classification)
        assert isinstance(decision.determination, Determination)


def test_duplicate_labels_are_refused() -> None:
    twice = (DECISIONS[0], DECISIONS[0])
    with pytest.raises(MTPConfigError, match="unique labels"):
        review_options(twice)
    with pytest.raises(MTPConfigError, match="unique labels"):
        review_options((Decision(LEAVE_FOR_LATER, Classification.UNKNOWN, Determination.UNKNOWN),))


@pytest.mark.parametrize("decision", DECISIONS, ids=lambda decision: decision.label)
def test_each_choice_maps_to_its_classification_and_determination(decision: Decision) -> None:
    result = {"chosen_options": [decision.label], "responded_by_user": {"id": "7", "name": "Alice\nBob"}}
    assert decision_changes(result) == {
        "classification": decision.classification.value,
        "determination": decision.determination.value,
        "comment": f"Airflow review: {decision.label}, chosen by Alice Bob.",
    }


@pytest.mark.parametrize(
    "result",
    [
        {"chosen_options": [LEAVE_FOR_LATER], "responded_by_user": {"id": "1", "name": "a"}},
        # Nobody answered before the timeout: the default, recorded without a user.
        {"chosen_options": [LEAVE_FOR_LATER], "responded_by_user": None, "timedout": True},
        {"chosen_options": [DECISIONS[0].label], "responded_by_user": None, "timedout": True},
        {"chosen_options": []},
        None,
    ],
)
def test_leave_for_later_and_timeouts_change_nothing(result: dict[str, Any] | None) -> None:
    assert decision_changes(result) is None


@pytest.mark.parametrize(
    "chosen", [["Close it"], [DECISIONS[0].label, DECISIONS[1].label]], ids=["unknown", "several"]
)
def test_an_answer_the_review_did_not_offer_fails(chosen: list[str]) -> None:
    with pytest.raises(MTPConfigError, match="is not one of its options"):
        decision_changes({"chosen_options": chosen})


def test_updates_only_for_the_reviews_that_chose() -> None:
    results: list[dict[str, Any]] = [
        {"chosen_options": [DECISIONS[0].label], "responded_by_user": {"id": "a", "name": "a"}},
        {"chosen_options": [LEAVE_FOR_LATER]},
        {"chosen_options": [DECISIONS[6].label]},
    ]
    updates = review_updates(["1", "2", 3], results, id_field="alert_id")
    assert [update["alert_id"] for update in updates] == ["1", "3"]
    assert updates[1] == {
        "alert_id": "3",
        "classification": "falsePositive",
        "determination": "clean",
        "comment": "Airflow review: False positive: not malicious, chosen by an analyst.",
    }
    with pytest.raises(MTPConfigError, match="map order"):
        review_updates(["1"], results)


def test_break_templates_leaves_no_jinja_delimiter() -> None:
    assert break_templates("a {{ x }} {%- y %} {# z #} {{{ w }}} {x}") == (
        "a {\u200b{ x }} {\u200b%- y %} {\u200b# z #} {\u200b{\u200b{ w }}} {x}"
    )
