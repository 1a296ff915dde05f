"""Small value types shared by every part of pitstop."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum


class Role(StrEnum):
    """API key roles, ordered: each role may do what the ones before it may."""

    VIEWER = "viewer"
    OPERATOR = "operator"
    ADMIN = "admin"

    @property
    def rank(self) -> int:
        return list(Role).index(self)

    def allows(self, needed: Role) -> bool:
        return self.rank >= needed.rank


class Severity(StrEnum):
    """How bad a finding or incident is, ordered from least to most."""

    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"
    EMERGENCY = "emergency"

    @property
    def rank(self) -> int:
        return list(Severity).index(self)


class Status(StrEnum):
    """Health of a check target, an asset, a site or the installation."""

    HEALTHY = "healthy"
    WARNING = "warning"
    CRITICAL = "critical"
    UNKNOWN = "unknown"


class JobOutcome(StrEnum):
    OK = "ok"
    FAILED = "failed"
    SKIPPED = "skipped"


@dataclass(frozen=True, slots=True)
class Reading:
    """One value of one sensor of one asset at one instant."""

    asset: str
    sensor: str
    ts: datetime
    value: float


def to_epoch_us(ts: datetime) -> int:
    """Readings are keyed by integer microseconds since the epoch (UTC)."""
    if ts.tzinfo is None:
        raise ValueError("timestamp must be timezone-aware")
    delta = ts - EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def from_epoch_us(us: int) -> datetime:
    return datetime.fromtimestamp(us / 1_000_000, tz=UTC)


EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
