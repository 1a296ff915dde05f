"""Incident values: states, changes, the key format."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from pitstop.core.types import Severity
from pitstop.errors import InvalidInput

# <area>.<condition>:<target>, e.g. "disk.low:/var/lib/vms", "asset.anomaly:ahu-3".
KEY = re.compile(
    r"^(?P<area>[a-z][a-z0-9_-]{0,49})\.(?P<condition>[a-z][a-z0-9_.-]{0,99}):(?P<target>[^\x00-\x1f]{1,340})$"
)


class IncidentState(StrEnum):
    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    SUPPRESSED = "suppressed"
    RESOLVED = "resolved"

    @property
    def active(self) -> bool:
        return self is not IncidentState.RESOLVED


class Change(StrEnum):
    """What a registry call did. Only changes other than NONE notify."""

    NONE = "none"
    OPENED = "opened"
    UPDATED = "updated"
    ACKNOWLEDGED = "acknowledged"
    ASSIGNED = "assigned"
    SUPPRESSED = "suppressed"
    RESOLVED = "resolved"
    ESCALATED = "escalated"  # people were paged; the state does not change


@dataclass(frozen=True, slots=True)
class Incident:
    id: int
    key: str
    state: IncidentState
    severity: Severity
    title: str
    detail: str | None
    source: str
    assignee: str | None
    opened_at: datetime
    updated_at: datetime
    resolved_at: datetime | None

    @property
    def area(self) -> str:
        return parse_key(self.key)[0]

    @property
    def condition(self) -> str:
        return parse_key(self.key)[1]

    @property
    def target(self) -> str:
        return parse_key(self.key)[2]

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "key": self.key,
            "state": self.state.value,
            "severity": self.severity.value,
            "title": self.title,
            "detail": self.detail,
            "source": self.source,
            "assignee": self.assignee,
            "opened_at": self.opened_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
            "resolved_at": self.resolved_at.isoformat() if self.resolved_at else None,
        }


@dataclass(frozen=True, slots=True)
class IncidentEvent:
    """One row of an incident's timeline: who or what moved it from which state to which."""

    id: int
    incident_id: int
    at: datetime
    actor: str
    action: str
    from_state: IncidentState | None
    to_state: IncidentState
    detail: dict[str, Any]


def parse_key(key: str) -> tuple[str, str, str]:
    """(area, condition, target) of a valid key; InvalidInput naming the problem otherwise."""
    match = KEY.match(key)
    if match is None:
        raise InvalidInput(
            f"incident key {key[:80]!r} is not <area>.<condition>:<target> (lowercase area and condition)"
        )
    return match["area"], match["condition"], match["target"]
