"""Alert, Delivery and the Notifier protocol."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from pitstop.core.types import Severity


@dataclass(frozen=True, slots=True)
class AlertItem:
    key: str
    event: str  # firing, repeat, resolved, escalated
    severity: Severity
    summary: str
    at: datetime
    labels: Mapping[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "event": self.event,
            "severity": self.severity.value,
            "summary": self.summary,
            "at": self.at.isoformat(),
            "labels": dict(self.labels),
        }


@dataclass(frozen=True, slots=True)
class Alert:
    """One message: the alerts of one group (same grouping labels) decided in one round."""

    group: Mapping[str, str]
    items: tuple[AlertItem, ...]

    @property
    def severity(self) -> Severity:
        return max((i.severity for i in self.items), key=lambda s: s.rank)

    @property
    def event(self) -> str:
        events = {i.event for i in self.items}
        return events.pop() if len(events) == 1 else "mixed"

    @property
    def title(self) -> str:
        where = ", ".join(f"{k}={v}" for k, v in self.group.items() if v)
        first = self.items[0]
        head = f"[{self.severity.value.upper()}] {self.event}"
        if len(self.items) == 1:
            return f"{head}: {first.key}" + (f" ({where})" if where else "")
        return f"{head}: {len(self.items)} alerts" + (f" ({where})" if where else "")

    @property
    def text(self) -> str:
        lines = [self.title]
        for i in self.items:
            lines.append(f"- {i.event} {i.key}: {i.summary}")
        return "\n".join(lines)

    def as_dict(self) -> dict[str, Any]:
        return {
            "title": self.title,
            "severity": self.severity.value,
            "event": self.event,
            "group": dict(self.group),
            "alerts": [i.as_dict() for i in self.items],
        }


@dataclass(frozen=True, slots=True)
class Delivery:
    channel: str
    ok: bool
    error: str | None = None


class Notifier(Protocol):
    """Sends one alert once. It never retries (the router does) and never raises for a failed
    delivery: it returns Delivery(ok=False, error=...) without secrets in the error."""

    name: str

    def send(self, alert: Alert) -> Delivery: ...
