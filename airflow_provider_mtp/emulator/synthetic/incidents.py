"""Incidents with their embedded alerts, in the Graph shape; times are ticks quantised to 0-7 fractional digits."""

from __future__ import annotations

import random
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from airflow_provider_mtp.common.ticks import TICKS_PER_SECOND as _TICKS_PER_SECOND
from airflow_provider_mtp.common.ticks import instant_ticks
from airflow_provider_mtp.emulator.synthetic.estate import Device, User
from airflow_provider_mtp.emulator.synthetic.evidence import AlertContext, Evidence, format_ticks
from airflow_provider_mtp.emulator.tenant_data.incidents import (
    ALERT_ID_PREFIXES,
    ALERT_TEMPLATES,
    COMMENT_TEXTS,
    CUSTOM_TAGS,
    DETERMINATIONS,
    FRACTION_DIGITS,
    SCENARIOS,
    SEVERITIES,
    Scenario,
)

#: .NET ticks (100 ns since 0001-01-01) at the Unix epoch: alert ids embed .NET ticks.
_DOTNET_EPOCH_TICKS = 621_355_968_000_000_000


class IncidentFactory:
    """Builds incidents with embedded alerts; times are ticks quantised to 0-7 fractional digits."""

    def __init__(
        self,
        rng: random.Random,
        *,
        tenant_id: str,
        portal: str,
        now: datetime,
        days: int,
        devices: Sequence[Device],
        users: Sequence[User],
    ) -> None:
        self.rng = rng
        self.tenant_id = tenant_id
        self.portal = portal
        # One tick of headroom: a 7-digit time then never passes `now`.
        self.now = instant_ticks(now) - 1
        self.start = instant_ticks(now - timedelta(days=days))
        self.devices = devices
        self.users = users
        self.workstations = [d for d in devices if d.device_type == "Workstation"]
        self.servers = [d for d in devices if d.device_type == "Server" and d.role != "DomainController"]
        self.dcs = [d for d in devices if d.role == "DomainController"]
        self.people = [u for u in users if u.kind == "user"]
        self.analysts = [u for u in users if u.kind == "analyst"]
        self.user_by_name = {u.account_name: u for u in users}
        self.alert_ids: set[str] = set()

    # ---- time ----------------------------------------------------------------------------------

    def within(self, low: int, high: int, raw: float | None = None) -> int:
        """A quantised time in ``[low, high]``: floor to the chosen precision, else round up."""
        high = max(low, high)
        value = min(high, max(low, int(raw if raw is not None else self.rng.uniform(low, high))))
        step = 10 ** (7 - self.rng.choice(FRACTION_DIGITS))
        floored = value - value % step
        if floored >= low:
            return floored
        ceiled = floored + step
        return ceiled if ceiled <= high else value

    def created_time(self) -> int:
        """Incident creation: a fifth in the last six hours, the rest over the whole window."""
        earliest = min(self.start + 3 * 3600 * _TICKS_PER_SECOND, self.now - 600 * _TICKS_PER_SECOND)
        recent = self.now - int(self.rng.uniform(600, 6 * 3600)) * _TICKS_PER_SECOND
        raw = (
            recent
            if self.rng.random() < 0.2
            else self.rng.uniform(earliest, self.now - 600 * _TICKS_PER_SECOND)
        )
        return self.within(earliest, self.now, raw)

    def updated_time(self, created: int) -> int:
        """Last update: untouched, some hours later, or in the last few hours."""
        roll = self.rng.random()
        if roll < 0.3:
            raw = created + self.rng.uniform(1, 120) * _TICKS_PER_SECOND
        elif roll < 0.5:
            raw = self.now - self.rng.uniform(60, 3 * 3600) * _TICKS_PER_SECOND
        else:
            raw = self.rng.uniform(created, self.now)
        return self.within(created, self.now, raw)

    # ---- incidents -----------------------------------------------------------------------------

    def build(self, count: int) -> list[dict[str, Any]]:
        incidents = [self.incident(str(1000 + index)) for index in range(count)]
        self.redirect_some(incidents)
        return incidents

    def redirect_some(self, incidents: list[dict[str, Any]]) -> None:
        """About 3 % are merged into another incident; at least one once there are ten."""
        chosen = [index for index in range(len(incidents)) if self.rng.random() < 0.03]
        if not chosen and len(incidents) >= 10:
            chosen = [self.rng.randrange(len(incidents))]
        targets = [index for index in range(len(incidents)) if index not in chosen]
        for index in chosen:
            if not targets:
                break
            incident = incidents[index]
            incident["status"] = "redirected"
            incident["redirectIncidentId"] = incidents[self.rng.choice(targets)]["id"]

    def incident(self, incident_id: str) -> dict[str, Any]:
        scenario = self.rng.choices(SCENARIOS, weights=[s.weight for s in SCENARIOS])[0]
        device, user, peer = self.cast(scenario)
        created = self.created_time()
        updated = self.updated_time(created)
        status = self.rng.choices(("active", "inProgress", "resolved"), weights=(45, 20, 35))[0]
        classification, determination = self.verdict(status, scenario)
        assigned = (
            None if status == "active" and self.rng.random() < 0.6 else self.rng.choice(self.analysts).upn
        )
        keys = self.alert_keys(scenario)
        web_url = f"{self.portal}/incidents/{incident_id}?tid={self.tenant_id}"
        context = AlertContext(
            incident_id=incident_id,
            web_url=web_url,
            created=created,
            updated=updated,
            status=status,
            classification=classification,
            determination=determination,
            assigned_to=assigned,
            device=device,
            user=user,
            peer=peer,
        )
        alerts = [self.alert(key, context, first=index == 0) for index, key in enumerate(keys)]
        severity = max((alert["severity"] for alert in alerts), key=SEVERITIES.index)
        return {
            "id": incident_id,
            "tenantId": self.tenant_id,
            "incidentWebUrl": web_url,
            "redirectIncidentId": None,
            "displayName": scenario.name.format(device=device.device_name, user=user.display_name),
            "createdDateTime": format_ticks(created),
            "lastUpdateDateTime": format_ticks(updated),
            "assignedTo": assigned,
            "classification": classification,
            "determination": determination,
            "status": status,
            "severity": severity,
            "customTags": self.rng.sample(CUSTOM_TAGS, self.rng.choice((0, 0, 1, 1, 2))),
            "systemTags": list(scenario.system_tags),
            "description": ALERT_TEMPLATES[keys[0]].description if self.rng.random() < 0.5 else None,
            "summary": None,
            "priorityScore": self.priority(severity),
            "lastModifiedBy": assigned or "Microsoft 365 Defender-AlertCorrelation",
            "resolvingComment": None,
            "comments": self.comments(status, created, updated, assigned),
            "alerts": alerts,
        }

    def cast(self, scenario: Scenario) -> tuple[Device, User, Device]:
        """The incident's main device, its user, and a second device for lateral movement."""
        pool = {"dc": self.dcs, "server": self.servers}.get(scenario.device_kind, self.workstations)
        device = self.rng.choice(pool)
        owner = self.user_by_name.get(device.primary_user)
        user = (
            owner
            if owner and owner.kind == "user" and pool is self.workstations
            else self.rng.choice(self.people)
        )
        if pool is self.dcs:
            # Identity alerts point at a user's workstation as the source, the DC as the target.
            device, peer = self.rng.choice(self.workstations), device
        else:
            peer = self.rng.choice([d for d in self.devices if d is not device])
        return device, user, peer

    def verdict(self, status: str, scenario: Scenario) -> tuple[str, str]:
        roll = self.rng.random()
        if status == "resolved":
            classification = (
                "truePositive"
                if roll < 0.55
                else "falsePositive"
                if roll < 0.75
                else "informationalExpectedActivity"
            )
        elif (status == "inProgress" and roll < 0.4) or roll < 0.1:
            classification = "truePositive"
        else:
            return "unknown", "unknown"
        choices = (
            scenario.determinations if classification == "truePositive" else DETERMINATIONS[classification]
        )
        return classification, self.rng.choice(choices)

    def alert_keys(self, scenario: Scenario) -> list[str]:
        count = self.rng.choice((1, 1, 1, 2, 2, 3, 4))
        extra = [self.rng.choice(scenario.alerts) for _ in range(count - 1)]
        return [scenario.alerts[0], *extra]

    def priority(self, severity: str) -> int:
        low, high = {"informational": (0, 15), "low": (5, 40), "medium": (30, 85), "high": (70, 100)}[
            severity
        ]
        return self.rng.randint(low, high)

    def comments(self, status: str, created: int, updated: int, assigned: str | None) -> list[dict[str, Any]]:
        if status == "active" and self.rng.random() < 0.7:
            return []
        author = assigned or self.rng.choice(self.analysts).upn
        times = sorted(self.within(created, updated) for _ in range(self.rng.choice((0, 1, 1, 2, 3))))
        return [
            {
                "comment": self.rng.choice(COMMENT_TEXTS),
                "createdByDisplayName": author,
                "createdDateTime": format_ticks(t),
            }
            for t in times
        ]

    # ---- alerts --------------------------------------------------------------------------------

    def alert(self, key: str, ctx: AlertContext, *, first: bool) -> dict[str, Any]:
        template = ALERT_TEMPLATES[key]
        second = _TICKS_PER_SECOND
        created = (
            self.within(ctx.created, min(ctx.updated, ctx.created + 5 * second))
            if first
            else self.within(ctx.created, ctx.updated)
        )
        updated = self.within(created, ctx.updated)
        first_activity = self.within(
            max(self.start, created - 2 * 3600 * second), max(self.start, created - 60 * second)
        )
        first_activity = min(first_activity, created)
        last_activity = self.within(first_activity, created)
        resolved = ctx.status == "resolved"
        status = (
            "resolved"
            if resolved
            else "inProgress"
            if ctx.status == "inProgress"
            else self.rng.choice(("new", "new", "inProgress"))
        )
        alert_id = self.alert_id(template.service_source, created)
        severity = template.severity if self.rng.random() < 0.8 else self.rng.choice(SEVERITIES)
        return {
            "id": alert_id,
            "providerAlertId": alert_id,
            "incidentId": ctx.incident_id,
            "status": status,
            "severity": severity,
            "classification": ctx.classification,
            "determination": ctx.determination,
            "serviceSource": template.service_source,
            "detectionSource": template.detection_source,
            "detectorId": str(uuid.uuid5(uuid.NAMESPACE_URL, f"mtp-emulator/detector/{key}")),
            "tenantId": self.tenant_id,
            "title": template.title,
            "description": template.description,
            "recommendedActions": template.recommended_actions,
            "category": template.category,
            "assignedTo": ctx.assigned_to,
            "alertWebUrl": f"{self.portal}/alerts/{alert_id}?tid={self.tenant_id}",
            "incidentWebUrl": ctx.web_url,
            "actorDisplayName": None,
            "threatDisplayName": template.threat_family,
            "threatFamilyName": template.threat_family,
            "mitreTechniques": list(template.mitre),
            "createdDateTime": format_ticks(created),
            "lastUpdateDateTime": format_ticks(updated),
            "resolvedDateTime": format_ticks(updated) if resolved else None,
            "firstActivityDateTime": format_ticks(first_activity),
            "lastActivityDateTime": format_ticks(last_activity),
            "comments": [],
            "evidence": Evidence(self.rng, template, ctx, created, resolved).build(),
            "systemTags": [],
        }

    def alert_id(self, service: str, created: int) -> str:
        """``da638501234567890123_1053928211``: a prefix, .NET ticks, and a number (maybe negative)."""
        while True:
            number = self.rng.randrange(-(2**31), 2**31)
            alert_id = f"{ALERT_ID_PREFIXES[service]}{created + _DOTNET_EPOCH_TICKS}_{number}"
            if alert_id not in self.alert_ids:
                self.alert_ids.add(alert_id)
                return alert_id
