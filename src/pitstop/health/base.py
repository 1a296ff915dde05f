"""Check, CheckContext, CheckResult and Threshold: the vocabulary of health checks.

A check reports an unhealthy target as data (a CheckResult with a status). It raises only when
the check itself is broken; the runner then records `unknown` with the error.
"""

from __future__ import annotations

import abc
import math
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pitstop.core.clock import Clock
from pitstop.core.registry import Registry
from pitstop.core.types import Severity, Status
from pitstop.storage.engine import Database

if TYPE_CHECKING:
    from pitstop.config.models import Settings
    from pitstop.storage.repos.assets import AssetRepo, SensorInfo
    from pitstop.storage.repos.jobs import JobRepo
    from pitstop.storage.repos.readings import ReadingRepo

Direction = Literal["above", "below"]


@dataclass(frozen=True, slots=True)
class Threshold:
    """Levels for one observed metric. `direction` says which side is bad: "above" (cpu %) or
    "below" (free disk %). `clear` is where a raised condition clears (hysteresis); it defaults
    to the warning level, or the critical level when there is no warning level."""

    metric: str
    direction: Direction = "above"
    warning: float | None = None
    critical: float | None = None
    target: float | None = None
    clear: float | None = None

    def __post_init__(self) -> None:
        if self.direction not in ("above", "below"):
            raise ValueError(f"{self.metric}: direction must be 'above' or 'below'")
        if self.warning is None and self.critical is None:
            raise ValueError(f"{self.metric}: a threshold needs a warning or a critical level")
        if self.warning is not None and self.critical is not None and self._worse(self.warning, self.critical):
            raise ValueError(f"{self.metric}: the critical level must be at least as bad as the warning level")
        if self.clear is not None and self._worse(self.clear, self.raise_level):
            raise ValueError(f"{self.metric}: the clear level must not be worse than the level that raises")

    def _worse(self, a: float, b: float) -> bool:
        """True when `a` is strictly worse than `b`."""
        return a > b if self.direction == "above" else a < b

    def _at_or_past(self, value: float, level: float) -> bool:
        """Bad at `level`: "above" is bad from the level up (cpu < 70 % is fine), "below" is bad
        under it (at least 20 % free is fine), as the maintenance guides write them."""
        return value >= level if self.direction == "above" else value < level

    @property
    def raise_level(self) -> float:
        level = self.warning if self.warning is not None else self.critical
        assert level is not None
        return level

    @property
    def clear_level(self) -> float:
        return self.clear if self.clear is not None else self.raise_level

    def status(self, value: float) -> Status:
        if math.isnan(value):
            return Status.UNKNOWN
        if self.critical is not None and self._at_or_past(value, self.critical):
            return Status.CRITICAL
        if self.warning is not None and self._at_or_past(value, self.warning):
            return Status.WARNING
        return Status.HEALTHY

    def is_clear(self, value: float) -> bool:
        """Strictly on the good side of the clear level."""
        if math.isnan(value):
            return False
        return self.status(value) is Status.HEALTHY and not self._at_or_past(value, self.clear_level)

    @classmethod
    def of(cls, metric: str, data: Mapping[str, Any]) -> Threshold:
        return cls(metric=metric, **{k: v for k, v in data.items() if v is not None})


@dataclass(frozen=True, slots=True, kw_only=True)
class CheckResult:
    check: str
    target: str
    status: Status
    summary: str
    checked_at: datetime
    issue_key: str | None = None
    observed: Mapping[str, float] = field(default_factory=dict)
    duration_s: float = 0.0
    error: str | None = None
    clear: bool | None = None  # past every clear level (hysteresis); None: same as healthy

    @property
    def incident_key(self) -> str | None:
        return f"{self.issue_key}:{self.target}" if self.issue_key else None

    @property
    def is_clear(self) -> bool:
        return self.status is Status.HEALTHY if self.clear is None else self.clear

    def as_dict(self) -> dict[str, Any]:
        return {
            "check": self.check,
            "target": self.target,
            "status": self.status.value,
            "summary": self.summary,
            "issue_key": self.issue_key,
            "observed": dict(self.observed),
            "checked_at": self.checked_at.isoformat(),
            "duration_s": round(self.duration_s, 6),
            "error": self.error,
        }


def severity_of(status: Status) -> Severity:
    return {Status.CRITICAL: Severity.CRITICAL, Status.WARNING: Severity.WARNING}.get(status, Severity.INFO)


@dataclass
class CheckContext:
    """What a check may use. Everything is injected, so tests use real services with a FrozenClock."""

    clock: Clock
    db: Database
    settings: Settings | None = None
    readings: ReadingRepo | None = None
    assets: AssetRepo | None = None
    jobs: JobRepo | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class Check(abc.ABC):
    """One kind of check, instantiated once per target and kept between rounds (checks that read
    incrementally, like the log file check, keep their position on the instance)."""

    name: ClassVar[str]
    issue: ClassVar[str]  # the issue key it raises, "<area>.<condition>", e.g. "disk.low"
    timeout_s: ClassVar[float] = 10.0
    default_target: ClassVar[str] = ""  # "{data_dir}" is filled in; "*" on an asset check means every asset
    per_asset: ClassVar[bool] = False  # the target is an asset name
    # The target is one sensor, "<asset>/<sensor>": "*" means every sensor the check applies to,
    # an asset name every one of that asset's (pitstop.health.specs.resolve expands both).
    per_sensor: ClassVar[bool] = False
    default_thresholds: ClassVar[tuple[Threshold, ...]] = ()
    waits_on_network: ClassVar[bool] = False  # True: runs in the runner's pool; False: inline, one after another
    # True: the result is the same from any machine (a device over the network, stored readings),
    # so a fleet's workers may run the check as its asset's job; False: it judges the machine it
    # runs on or keeps what it learnt there (disk, a log file, a camera's reference frame)
    runs_anywhere: ClassVar[bool] = False

    def runs_on_any_machine(self) -> bool:
        """Whether this instance may run on any machine of a fleet (`runs_anywhere`, or what its
        parameters say: a serial line is one machine's)."""
        return self.runs_anywhere

    def __init__(
        self,
        target: str,
        *,
        thresholds: Mapping[str, Threshold] | None = None,
        params: Mapping[str, Any] | None = None,
    ) -> None:
        self.target = target
        self.thresholds = {t.metric: t for t in self.default_thresholds} | dict(thresholds or {})
        self.params = dict(params or {})
        self.configure(**self.params)

    @classmethod
    def skips(cls, sensor: SensorInfo) -> str | None:
        """Why a per-sensor check does not apply to `sensor` ("has no alarm limits"); None when it does."""
        return None

    # The sensors a per-asset check reads, by role: role -> default sensor name (a parameter of
    # the role's name renames it). Its target `*` covers only the assets that have all of them.
    roles: ClassVar[Mapping[str, str]] = {}

    @classmethod
    def sensor_names(cls, params: Mapping[str, Any]) -> dict[str, str]:
        """role -> the sensor name the check reads for it, given the check's parameters."""
        return {role: str(params.get(role, name)) for role, name in cls.roles.items()}

    @classmethod
    def skips_asset(cls, sensors: Collection[str], params: Mapping[str, Any]) -> str | None:
        """Why a per-asset check does not apply to an asset with these sensors (by name), given the
        check's parameters; None when it does."""
        missing = sorted(set(cls.sensor_names(params).values()) - set(sensors))
        return f"has no sensor {', '.join(missing)}" if missing else None

    def configure(self, **params: Any) -> None:
        """Take the check's parameters; raise ValueError naming a bad one. Default: none allowed."""
        if params:
            raise ValueError(f"check {self.name!r} takes no parameters, got {', '.join(sorted(params))}")

    @abc.abstractmethod
    def run(self, ctx: CheckContext, /) -> CheckResult: ...

    # -- helpers for subclasses -----------------------------------------------------------------

    def judge(self, ctx: CheckContext, observed: Mapping[str, float], summary: str) -> CheckResult:
        """A result whose status is the worst over the thresholds of the observed metrics."""
        status, clear = Status.HEALTHY, True
        reasons = []
        for metric, value in observed.items():
            threshold = self.thresholds.get(metric)
            if threshold is None:
                continue
            s = threshold.status(value)
            clear = clear and threshold.is_clear(value)
            if s is not Status.HEALTHY:
                level = threshold.critical if s is Status.CRITICAL else threshold.warning
                side = ">=" if threshold.direction == "above" else "<"
                reasons.append(f"{metric} {_fmt(value)} {side} {_fmt(level)}")
            status = worst(status, s)
        text = summary if not reasons else f"{summary} ({'; '.join(reasons)})"
        return self.result(ctx, status, text, observed=observed, clear=clear)

    def result(
        self,
        ctx: CheckContext,
        status: Status,
        summary: str,
        *,
        observed: Mapping[str, float] | None = None,
        clear: bool | None = None,
    ) -> CheckResult:
        return CheckResult(
            check=self.name,
            target=self.target,
            status=status,
            summary=summary,
            checked_at=ctx.clock.now(),
            issue_key=self.issue,
            observed=dict(observed or {}),
            clear=clear,
        )


_ORDER = {Status.HEALTHY: 0, Status.UNKNOWN: 1, Status.WARNING: 2, Status.CRITICAL: 3}


def worst(a: Status, b: Status) -> Status:
    return a if _ORDER[a] >= _ORDER[b] else b


def _fmt(value: float | None) -> str:
    if value is None:
        return "?"
    return f"{value:.4g}"


checks: Registry[Check] = Registry("check", "pitstop.checks")
