"""The analyst's review of an incident or an alert: the summary they read, the choices, the update they cause.

Pure helpers for a human-in-the-loop task (Airflow's ``HITLOperator`` family, in the standard
provider) between a hunt and an update operator; resource-neutral, so the incident triage and the
alert enrichment examples share them:

* :func:`review_subject` and :func:`review_markdown`: what the analyst reads, from an incident or a
  Graph-shape alert (title, severity, status, alerts, the evidence pulled out, what the hunts
  found, a portal link). Everything that comes from the tenant (titles, comments, command lines,
  user names) is untrusted: it is escaped so it stays text, and cannot open a link, an image,
  HTML or a template.
* :data:`DECISIONS` and :func:`review_options`: the choices, labels mapping to a
  ``classification`` and ``determination`` of :mod:`airflow_provider_mtp.enums`, plus
  :data:`LEAVE_FOR_LATER`, which changes nothing (and is the default when nobody answers).
* :func:`decision_changes` and :func:`review_updates`: the HITL task's result (its XCom) turned into
  the update operator's arguments, so the update applies exactly what was chosen; "leave for
  later" gives no update at all.

No client, no hook and no Airflow: the callers read and write Defender.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlsplit

from airflow_provider_mtp.enums import Classification, Determination
from airflow_provider_mtp.errors import MTPConfigError

__all__ = [
    "DECISIONS",
    "LEAVE_FOR_LATER",
    "Decision",
    "HuntFindings",
    "break_templates",
    "decision_changes",
    "escape_markdown",
    "review_markdown",
    "review_options",
    "review_subject",
    "review_updates",
]

#: The choice that changes nothing: the resource stays as it is for a later look.
LEAVE_FOR_LATER = "Leave for later"


@dataclass(frozen=True)
class Decision:
    """One choice the analyst may pick: a label and the values it sets.

    :param label: what the form shows (unique among the choices).
    :param classification: the ``classification`` it sets.
    :param determination: the ``determination`` it sets.
    """

    label: str
    classification: Classification
    determination: Determination


#: The default choices: the common determinations of each classification (defender-api.md s. 5).
DECISIONS: tuple[Decision, ...] = (
    Decision("True positive: malware", Classification.TRUE_POSITIVE, Determination.MALWARE),
    Decision(
        "True positive: multi-staged attack", Classification.TRUE_POSITIVE, Determination.MULTI_STAGED_ATTACK
    ),
    Decision(
        "True positive: compromised account", Classification.TRUE_POSITIVE, Determination.COMPROMISED_ACCOUNT
    ),
    Decision("True positive: phishing", Classification.TRUE_POSITIVE, Determination.PHISHING),
    Decision(
        "Expected activity: security testing",
        Classification.INFORMATIONAL_EXPECTED_ACTIVITY,
        Determination.SECURITY_TESTING,
    ),
    Decision(
        "Expected activity: line-of-business application",
        Classification.INFORMATIONAL_EXPECTED_ACTIVITY,
        Determination.LINE_OF_BUSINESS_APPLICATION,
    ),
    Decision("False positive: not malicious", Classification.FALSE_POSITIVE, Determination.CLEAN),
    Decision(
        "False positive: not enough data",
        Classification.FALSE_POSITIVE,
        Determination.NOT_ENOUGH_DATA_TO_VALIDATE,
    ),
)

#: Longest piece of tenant text shown in one place (a title, a command line, a comment).
TEXT_LIMIT = 200
#: Rows shown per table before "and N more".
MAX_ROWS = 12
#: Recent comments shown.
MAX_COMMENTS = 3

# Tenant text goes into inline code spans: CommonMark renders a code span's content as it is, with
# no emphasis, link, image, HTML or entity, and GFM's autolink literals (bare URLs, www., e-mail
# addresses, which the Airflow UI links even after backslash escapes) are not looked for in code.
# What a code span cannot neutralise is handled apart: its own backtick fence (a longer one), a
# table cell's pipe (escaped, which GFM reads inside code in a table) and Jinja's delimiters.
_BACKTICKS = re.compile(r"`+")
# Words of ASCII letters and digits (with spaces and inner hyphens) are Markdown nothing can turn
# into markup or a link: they are shown as plain text (severities, statuses, most titles).
_PLAIN_WORDS = re.compile(r"[A-Za-z0-9]+(?:[ -][A-Za-z0-9]+)*")
_JINJA_OPENERS = re.compile(r"\{(?=[{%#])")
_SPACES = re.compile(r"\s+")
_BREAKS = "\t\n\r\f\v\u2028\u2029\x85"


def break_templates(text: str) -> str:
    """``text`` with Jinja's ``{{``, ``{%`` and ``{#`` broken by a zero-width space.

    For tenant text that reaches a template field through XCom: Airflow renders a mapped
    operator's templated values that came from XCom (``expand_kwargs``), so a title or file name
    holding ``{{ ... }}`` would otherwise run as a template in the worker.
    """
    return _JINJA_OPENERS.sub("{\u200b", text)


def _one_line(value: Any, limit: int) -> str:
    """Untrusted text on one line: control and format characters dropped, cut to ``limit``."""
    if value is None:
        return ""
    text = "".join(
        " " if char in _BREAKS else char
        for char in str(value)
        if char in _BREAKS or unicodedata.category(char) not in ("Cc", "Cf", "Cs", "Co")
    )
    text = _SPACES.sub(" ", text).strip()
    return text if len(text) <= limit else text[: max(limit - 1, 0)].rstrip() + "…"


def escape_markdown(value: Any, limit: int = TEXT_LIMIT, *, table: bool = False) -> str:
    """Untrusted text as inert Markdown, on one line, cut to ``limit``: plain words, else an inline code span.

    Plain ASCII words (letters and digits, spaces, inner hyphens) stay as they are. Anything else
    becomes an inline code span, which shows the text as it is (monospace), and nothing in it is Markdown: not a link, an
    image, HTML, emphasis or a bare URL or e-mail address that would be linked. Line breaks and
    tabs become spaces; Unicode control and format characters (bidirectional overrides, zero-width
    characters) are dropped, so what the analyst reads is what is there. Jinja's ``{{``, ``{%``
    and ``{#`` get a zero-width space between their characters, so a body that some caller does
    render as a template stays text.

    :param value: anything; ``None`` or blank gives ``""``.
    :param limit: the most characters kept (an ellipsis marks a cut).
    :param table: the span is in a GFM table cell: its ``|`` are escaped (GFM reads ``\\|`` as a
        pipe, also inside code, in a table; elsewhere the backslash would show).
    """
    text = _one_line(value, limit)
    if not text or _PLAIN_WORDS.fullmatch(text):
        return text
    text = break_templates(text)
    if table:
        text = text.replace("|", "\\|")
    fence = "`" * (max((len(run) for run in _BACKTICKS.findall(text)), default=0) + 1)
    # A space each side keeps a backtick at either end off the fence (CommonMark strips one each).
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def _link(label: str, url: str | None) -> str:
    """A Markdown link to a URL the caller built (never one the tenant sent); none unless it is https."""
    if not url or urlsplit(url).scheme != "https":
        return ""
    # Percent-encode what could end or break the link destination.
    return f"[{label}]({quote(url, safe=':/?&=#%+,;@~!$*.-_')})"


@dataclass(frozen=True)
class HuntFindings:
    """What one enrichment hunt found, as the review shows it.

    :param title: what was hunted, e.g. ``"Process and network events on ws-01"`` (shown escaped).
    :param rows: how many rows it returned.
    :param window: the span it covered, as text (e.g. two ISO 8601 instants joined by " to ").
    :param location: where the rows are (a file URI), shown as text.
    :param counts: the most frequent values per column: ``{"processes": {"cmd.exe": 4}}``.
    """

    title: str
    rows: int
    window: str | None = None
    location: str | None = None
    counts: Mapping[str, Mapping[str, int]] = field(default_factory=dict)


def _is_incident(resource: Mapping[str, Any]) -> bool:
    """Incidents have a ``displayName`` (and ``alerts`` when expanded); alerts have a ``title``."""
    return "displayName" in resource or "alerts" in resource


def review_subject(resource: Mapping[str, Any]) -> str:
    """The review's one-line subject: ``Incident 42 (high): <title>`` or ``Alert da63... (medium): <title>``.

    Plain text (the UI shows the subject as text), on one line, with Jinja's ``{{``, ``{%`` and
    ``{#`` broken by a zero-width space: ``subject`` is a template field of ``HITLOperator``, and a
    mapped one's value from XCom was rendered too (a title holding ``{{ 7 * 7 }}`` showed as ``49``
    in the browser test before this), which would let a tenant's title read Airflow's templates.
    """
    kind = "Incident" if _is_incident(resource) else "Alert"
    title = resource.get("displayName") if kind == "Incident" else resource.get("title")
    subject = f"{kind} {_one_line(resource.get('id'), 60)} ({_one_line(resource.get('severity'), 20)}): {_one_line(title, 150)}"
    return break_templates(subject)


def _cell(value: Any, limit: int = TEXT_LIMIT, *, table: bool = False) -> str:
    return escape_markdown(value, limit, table=table) or "-"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]], total: int) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    if total > len(rows):
        lines.append(f"\n…and {total - len(rows)} more.")
    return lines


def _evidence_kind(evidence: Mapping[str, Any]) -> str:
    name = str(evidence.get("@odata.type") or "").rsplit(".", 1)[-1]
    return name.removesuffix("Evidence") or "evidence"


def _account(account: Any) -> str | None:
    if not isinstance(account, Mapping):
        return None
    name = account.get("accountName")
    domain = account.get("domainName")
    upn = account.get("userPrincipalName")
    text = f"{domain}\\{name}" if domain and name else name or upn
    return f"{text} ({upn})" if upn and text != upn else text


def _file(details: Any) -> str | None:
    if not isinstance(details, Mapping):
        return None
    name = details.get("fileName")
    sha = details.get("sha256") or details.get("sha1")
    return f"{name} (sha256 {sha})" if name and sha else name or sha


def evidence_item(evidence: Mapping[str, Any]) -> tuple[str, str]:
    """An evidence item's kind and what it names (untrusted text, not yet escaped)."""
    kind = _evidence_kind(evidence)
    if kind == "device":
        what = evidence.get("deviceDnsName") or evidence.get("hostName")
        platform = evidence.get("osPlatform")
        text = f"{what} ({platform})" if what and platform else what
    elif kind == "user":
        text = _account(evidence.get("userAccount"))
    elif kind == "process":
        image = _file(evidence.get("imageFile"))
        text = (
            f"{image}: {evidence.get('processCommandLine')}" if evidence.get("processCommandLine") else image
        )
    elif kind == "file":
        text = _file(evidence.get("fileDetails"))
    elif kind == "ip":
        text = evidence.get("ipAddress")
    elif kind == "url":
        text = evidence.get("url")
    elif kind in ("mailbox", "analyzedMessage"):
        text = evidence.get("primaryAddress") or evidence.get("subject") or evidence.get("senderIp")
    elif kind == "registryKey":
        text = evidence.get("registryKey")
    else:
        text = evidence.get("displayName") or evidence.get("name")
    return kind, str(text) if text else ""


def _evidence_rows(alerts: Iterable[Mapping[str, Any]]) -> list[list[str]]:
    seen: set[tuple[str, str, str]] = set()
    rows = []
    for alert in alerts:
        for evidence in alert.get("evidence") or ():
            if not isinstance(evidence, Mapping):
                continue
            kind, what = evidence_item(evidence)
            key = (kind, what, str(evidence.get("verdict")))
            if key in seen:
                continue
            seen.add(key)
            rows.append(
                [
                    _cell(kind, 40, table=True),
                    _cell(what, 300, table=True),
                    _cell(evidence.get("verdict"), 30, table=True),
                ]
            )
    # What Defender judged malicious first, then suspicious, then the rest (a stable sort).
    order = {"malicious": 0, "suspicious": 1}
    return sorted(rows, key=lambda row: order.get(row[2], 2))


def _activity(alert: Mapping[str, Any], *, table: bool = False) -> str:
    first = alert.get("firstActivityDateTime") or alert.get("createdDateTime")
    last = alert.get("lastActivityDateTime")
    if last and last != first:
        return f"{_cell(first, 40, table=table)} to {_cell(last, 40, table=table)}"
    return _cell(first, 40, table=table)


def _findings_lines(findings: Sequence[HuntFindings]) -> list[str]:
    lines = ["", "### What the hunts found"]
    if not findings:
        return [*lines, "No enrichment hunt ran."]
    for found in findings:
        where = f" Rows in {escape_markdown(found.location, 300)}." if found.location else ""
        span = f" over {escape_markdown(found.window, 100)}" if found.window else ""
        lines.append(f"- **{escape_markdown(found.title)}**: rows: {int(found.rows)}{span}.{where}")
        for column, values in found.counts.items():
            top = sorted(values.items(), key=lambda item: (-item[1], str(item[0])))[:5]
            shown = ", ".join(f"{escape_markdown(value, 80)} ({int(count)})" for value, count in top)
            lines.append(f"  - most frequent {escape_markdown(column, 40)}: {shown or '-'}")
    return lines


def review_markdown(
    resource: Mapping[str, Any],
    *,
    findings: Sequence[HuntFindings] = (),
    portal_url: str | None = None,
) -> str:
    """The review's body: the incident or alert, its alerts and evidence, the hunts' findings, a portal link.

    :param resource: an incident (Graph shape, with its ``alerts`` for the alert and evidence
        tables) or a Graph-shape alert (``alerts_v2``; its own ``evidence``).
    :param findings: what the enrichment hunts found.
    :param portal_url: the resource's page in the Defender portal, built by the caller from the
        connection (e.g. :func:`airflow_provider_mtp.links.incident_portal_url`); a URL the tenant
        sent is never linked. Only ``https`` URLs are linked.
    """
    incident = _is_incident(resource)
    kind = "Incident" if incident else "Alert"
    title = resource.get("displayName") if incident else resource.get("title")
    lines = [
        f"**{kind} {escape_markdown(resource.get('id'), 60)}: {escape_markdown(title)}**",
        "",
        f"Severity **{_cell(resource.get('severity'), 30)}** · status **{_cell(resource.get('status'), 30)}** · "
        f"classification {_cell(resource.get('classification'), 40)} / {_cell(resource.get('determination'), 40)}"
        f" · assigned to {_cell(resource.get('assignedTo'), 100)}",
    ]
    if not incident:
        lines.append(
            f"Detected by {_cell(resource.get('detectionSource'), 60)} ({_cell(resource.get('serviceSource'), 60)}),"
            f" category {_cell(resource.get('category'), 60)}, activity {_activity(resource)}"
        )
        if resource.get("description"):
            lines += ["", f"> {escape_markdown(resource.get('description'), 500)}"]
    link = _link("Open in the Microsoft Defender portal", portal_url)
    if link:
        lines += ["", link]
    alerts: list[Mapping[str, Any]] = (
        [alert for alert in resource.get("alerts") or () if isinstance(alert, Mapping)]
        if incident
        else [resource]
    )
    if incident:
        rows = [
            [
                _cell(alert.get("title"), table=True),
                _cell(alert.get("severity"), 30, table=True),
                _cell(alert.get("status"), 30, table=True),
                _cell(alert.get("category"), 60, table=True),
                _activity(alert, table=True),
            ]
            for alert in alerts[:MAX_ROWS]
        ]
        lines += ["", f"### Alerts ({len(alerts)})"]
        lines += (
            _table(["Alert", "Severity", "Status", "Category", "Activity"], rows, len(alerts))
            if rows
            else ["None."]
        )
    evidence = _evidence_rows(alerts)
    lines += ["", f"### Evidence ({len(evidence)})"]
    lines += (
        _table(["Kind", "What", "Verdict"], evidence[:MAX_ROWS], len(evidence)) if evidence else ["None."]
    )
    lines += _findings_lines(findings)
    comments = [item for item in resource.get("comments") or () if isinstance(item, Mapping)][-MAX_COMMENTS:]
    if comments:
        lines += ["", "### Latest comments"]
        lines += [
            f"- {_cell(item.get('createdByDisplayName'), 80)}, {_cell(item.get('createdDateTime'), 40)}: "
            f"{escape_markdown(item.get('comment'))}"
            for item in comments
        ]
    return "\n".join(lines) + "\n"


def review_options(decisions: Sequence[Decision] = DECISIONS) -> list[str]:
    """The form's options: each decision's label, then :data:`LEAVE_FOR_LATER`."""
    labels = [decision.label for decision in decisions]
    if len(set(labels)) != len(labels) or LEAVE_FOR_LATER in labels:
        raise MTPConfigError(
            f"review choices must have unique labels other than {LEAVE_FOR_LATER!r}, got {labels}"
        )
    return [*labels, LEAVE_FOR_LATER]


def decision_changes(
    result: Mapping[str, Any] | None, decisions: Sequence[Decision] = DECISIONS
) -> dict[str, str] | None:
    """The update a review's result asks for, or ``None`` for "leave for later" (also after a timeout).

    :param result: the HITL task's return value (XCom): ``chosen_options``, ``responded_by_user``,
        ``timedout``.
    :param decisions: the choices the review offered.
    :return: ``classification``, ``determination`` and a ``comment`` saying who chose what, as the
        update operator's arguments.
    :raises MTPConfigError: the result holds an option the review did not offer, or several.
    """
    if not result:
        return None
    chosen = list(result.get("chosen_options") or ())
    by_label = {decision.label: decision for decision in decisions}
    unknown = [option for option in chosen if option not in by_label and option != LEAVE_FOR_LATER]
    if unknown or len(chosen) > 1:
        raise MTPConfigError(
            f"the review's answer {chosen!r} is not one of its options {review_options(decisions)}: give the "
            "review task the same decisions as this call"
        )
    if not chosen or chosen[0] == LEAVE_FOR_LATER or result.get("timedout"):
        return None
    decision = by_label[chosen[0]]
    user = result.get("responded_by_user") or {}
    who = (
        _one_line(user.get("name") or user.get("id") or "an analyst", 100)
        if isinstance(user, Mapping)
        else "an analyst"
    )
    return {
        "classification": decision.classification.value,
        "determination": decision.determination.value,
        "comment": f"Airflow review: {decision.label}, chosen by {who}.",
    }


def review_updates(
    resource_ids: Sequence[Any],
    results: Sequence[Mapping[str, Any] | None],
    *,
    id_field: str = "incident_id",
    decisions: Sequence[Decision] = DECISIONS,
) -> list[dict[str, Any]]:
    """The update operator's arguments for every review that chose a decision (``expand_kwargs`` input).

    :param resource_ids: the reviewed incidents or alerts, in the reviews' order (map index).
    :param results: the reviews' results, same order.
    :param id_field: the update operator's id argument: ``incident_id`` or ``alert_id``.
    :param decisions: the choices the reviews offered.
    """
    if len(resource_ids) != len(results):
        raise MTPConfigError(
            f"{len(resource_ids)} resources but {len(results)} review results: pass both in map order"
        )
    updates = []
    for resource_id, result in zip(resource_ids, results, strict=True):
        changes = decision_changes(result, decisions)
        if changes is not None:
            updates.append({id_field: str(resource_id), **changes})
    return updates
