"""The demo's alert enrichment step: alerts staged in the hour, and what the run did, read back from the emulator.

``python -m demo`` runs ``mtp_alert_enrichment`` with ``airflow dags test`` for the hour ending at
the data time. Before the run, :func:`touch_alerts` stamps a few new alerts on devices as updated
20 minutes before the data time (``POST /_emulator/alerts``), one of them a detector alert the
DAG's ``KNOWN_BENIGN`` table closes, so the hour has work at any time of day. After it,
:func:`read_back` counts what the run left behind: the hunts' files in ``demo-output/`` and, from
the emulator, the alerts carrying the DAG's comments, closed as benign, or classified as the
analyst chose. None of the figures is the DAG's own claim.
"""

from __future__ import annotations

import importlib.util
import re
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from types import ModuleType

    from airflow_provider_mtp.emulator import DefenderEmulator
    from airflow_provider_mtp.hooks.mtp import MTPHook

DAG_ID = "mtp_alert_enrichment"
EXAMPLE = Path(__file__).resolve().parent.parent / "example_dags" / f"{DAG_ID}.py"
#: The comment markers UpdateAlertOperator appends, per task of the DAG.
ENRICHMENT_MARKER = f"[airflow:{DAG_ID}/update_alert/"
REVIEW_MARKER = f"[airflow:{DAG_ID}/apply_review/"
#: "Airflow enrichment: 12 events on ws-01, ...": the figure the comment states.
_EVENTS = re.compile(r"^Airflow enrichment: (\d+) events on ")


def example() -> ModuleType:
    """The example DAG's module: its ``KNOWN_BENIGN`` table and ``known_benign()`` rule."""
    spec = importlib.util.spec_from_file_location(f"demo_{DAG_ID}", EXAMPLE)
    if spec is None or spec.loader is None:
        raise RuntimeError(f"cannot load {EXAMPLE}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _on_a_device(alert: Mapping[str, Any]) -> bool:
    from airflow_provider_mtp.evidence import evidence_of

    return bool(evidence_of(alert).device_names)


def touch_alerts(hook: MTPHook, emulator: DefenderEmulator, when: datetime, others: int = 2) -> list[str]:
    """Stamp one known-benign and ``others`` other new, high/medium alerts on devices as updated at ``when``.

    :return: the alerts stamped (the benign one first); empty when the tenant has no benign one.
    """
    rules = example()
    stamp = when.strftime("%Y-%m-%dT%H:%M:%SZ")
    candidates = [
        alert
        for alert in hook.list_alerts(status="new", severity=["high", "medium"], created_before=when)
        if _on_a_device(alert)
    ]
    benign = [alert["id"] for alert in candidates if rules.known_benign(alert)][:1]
    if not benign:
        return []
    chosen = benign + [alert["id"] for alert in candidates if not rules.known_benign(alert)][:others]
    emulator.put_alerts(*({"id": alert_id, "lastUpdateDateTime": stamp} for alert_id in chosen))
    return chosen


def _comments(alert: Mapping[str, Any], marker: str) -> list[str]:
    return [
        str(item.get("comment")) for item in alert.get("comments") or () if marker in str(item.get("comment"))
    ]


def read_back(
    hook: MTPHook, *, since: datetime, folder: Path, review_values: Sequence[str]
) -> dict[str, Any]:
    """What the run left: hunt files and rows, and the alerts the emulator shows it changed.

    :param since: a time before the run (alerts it changed were updated after it).
    :param folder: where the run's hunts wrote their files.
    :param review_values: the classification and determination the demo's analyst chose.
    """
    files = sorted(folder.rglob("*.jsonl")) if folder.exists() else []
    figures: dict[str, Any] = {
        "hunted": len(files),
        "rows": sum(len(path.read_text().splitlines()) for path in files),
        "commented": 0,
        "events": 0,
        "benign": 0,
        "analyst": 0,
    }
    for alert in hook.list_alerts(updated_from=since):
        enrichment = _comments(alert, ENRICHMENT_MARKER)
        if not enrichment:
            continue
        figures["commented"] += 1
        match = _EVENTS.match(enrichment[0])
        figures["events"] += int(match.group(1)) if match else 0
        closed = (alert.get("status"), alert.get("classification")) == (
            "resolved",
            "informationalExpectedActivity",
        )
        figures["benign"] += closed and "Closed as known benign" in enrichment[0]
        figures["analyst"] += bool(_comments(alert, REVIEW_MARKER)) and (
            alert.get("classification"),
            alert.get("determination"),
        ) == tuple(review_values)
    return figures


def since(data_time: datetime) -> datetime:
    """A time before any change the run makes: the start of its (lag-shifted) hour."""
    return data_time - timedelta(hours=1, minutes=10)


def report_line(figures: Mapping[str, Any]) -> str:
    """The demo's summary line for the step."""
    return (
        f"5. mtp_alert_enrichment: {figures['hunted']} alerts hunted ({figures['rows']} rows), "
        f"{figures['commented']} commented, {figures['benign']} classified benign, {figures['analyst']} "
        "classified by the analyst (read back from the emulator)"
    )
