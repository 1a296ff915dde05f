"""From settings to the list of check targets: defaults < profiles < the user's own entries."""

from __future__ import annotations

import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from pitstop.config.health import AlertRuleSettings, CheckSettings, HealthSettings, ThresholdSettings
from pitstop.errors import ConfigError
from pitstop.health.base import Check, Threshold, checks
from pitstop.storage.repos.assets import AssetRow, SensorInfo

DEFAULT_CHECKS = (
    "cpu",
    "memory",
    "disk",
    "database",
    "heartbeat",
    "freshness",
    "limits",
    "frozen",
    "setpoint",
    "heat_balance",
    "coil_ua",
)


class Profile(BaseModel):
    """A ready set of checks, thresholds and alert rules (src/pitstop/profiles/<name>.toml).

    ``[rules."cpu.high"]`` holds an alert rule by issue or incident key, as
    ``[health.alerts.rules]`` does (e.g. ``for_s``: how long the condition must hold before the
    incident opens); the user's own rules override it field by field."""

    model_config = ConfigDict(extra="forbid")
    description: str = ""
    checks: list[CheckSettings] = Field(default_factory=list)
    thresholds: dict[str, dict[str, ThresholdSettings]] = Field(default_factory=dict)
    rules: dict[str, AlertRuleSettings] = Field(default_factory=dict)


@dataclass(frozen=True)
class CheckSpec:
    check: str
    target: str
    asset: str | None = None
    site: str | None = None
    scope: str | None = None
    labels: Mapping[str, str] = field(default_factory=dict)
    params: Mapping[str, Any] = field(default_factory=dict, repr=False)  # may hold secrets
    thresholds: Mapping[str, Threshold] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return f"{self.check}:{self.target}"

    def alert_labels(self) -> dict[str, str]:
        labels = {"check": self.check, "target": self.target, **self.labels}
        for name in ("asset", "site", "scope"):
            value = getattr(self, name)
            if value:
                labels[name] = value
        labels.setdefault("scope", "asset" if self.asset else "installation")
        return labels


def profile_names() -> list[str]:
    return sorted(
        p.name.removesuffix(".toml") for p in resources.files("pitstop.profiles").iterdir() if p.name.endswith(".toml")
    )


def load_profile(name: str) -> Profile:
    if name.endswith(".toml") or "/" in name:
        text, origin = _read(Path(name)), name
    else:
        ref = resources.files("pitstop.profiles") / f"{name}.toml"
        if not ref.is_file():
            raise ConfigError(f"health.include: no profile {name!r}; ready profiles: {', '.join(profile_names())}")
        text, origin = ref.read_text(), f"profile {name}"
    try:
        return Profile.model_validate(tomllib.loads(text))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{origin}: not valid TOML: {exc}") from None
    except ValidationError as exc:
        err = exc.errors()[0]
        raise ConfigError(f"{origin}: {'.'.join(str(p) for p in err['loc'])}: {err['msg']}") from None


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError as exc:
        raise ConfigError(f"health.include: cannot read {path}: {exc.strerror}") from None


def resolve(
    settings: HealthSettings,
    *,
    data_dir: Path,
    assets: Sequence[AssetRow] = (),
    sensors: Sequence[SensorInfo] = (),
) -> list[CheckSpec]:
    """Every enabled check target, with thresholds merged and `*` and asset targets expanded.

    A per-asset check's `*` is every asset it applies to (`Check.skips_asset`: a loop check only
    the units with the loop's sensors). A per-sensor check's targets are single sensors,
    `<asset>/<sensor>`: its `*` is every sensor it applies to, an asset name that asset's. When
    entries give the same target the most specific one wins (a named sensor over its asset over
    `*`), disabled ones too: `enabled = false` on `ahu-1/UCTSP` takes that one sensor out of `*`.
    An enabled target naming no such asset or sensor, or a sensor the check does not apply to, is a
    ConfigError; a disabled one is a placeholder (a profile's example target) and covers nothing."""
    import pitstop.health.checks  # noqa: F401 - registers the built-ins

    entries: dict[tuple[str, str], CheckSettings] = {}
    thresholds: dict[str, dict[str, dict[str, Any]]] = {}

    def add(items: Sequence[CheckSettings], levels: Mapping[str, Mapping[str, ThresholdSettings]]) -> None:
        for check_name, metrics in levels.items():
            for metric, given in metrics.items():
                per_check = thresholds.setdefault(check_name, {})
                per_check[metric] = _merge(per_check.get(metric, {}), given.model_dump(exclude_unset=True))
        for item in items:
            if item.check not in checks:
                raise ConfigError(f"health.checks: unknown check {item.check!r}; known: {', '.join(checks.names())}")
            target = item.target or checks.get(item.check).default_target
            key = (item.check, target)
            if key in entries:  # a later entry overrides an earlier one field by field
                item = entries[key].model_copy(update=item.model_dump(exclude_unset=True))
            entries[key] = item

    if settings.default_checks:
        add([CheckSettings(check=name) for name in DEFAULT_CHECKS], {})
    for name in settings.include:
        profile = load_profile(name)
        add(profile.checks, profile.thresholds)
    add(settings.checks, settings.thresholds)

    by_name = {a.name: a for a in assets}
    names_of: dict[str, set[str]] = {a.name: set() for a in assets}  # each asset's sensor names
    for s in sensors:
        names_of.setdefault(s.asset, set()).add(s.name)
    chosen: dict[str, tuple[int, CheckSpec | None]] = {}  # spec id -> (how specific, spec or disabled)
    for (check_name, target), item in entries.items():
        cls = checks.get(check_name)
        targets: list[tuple[str, str | None, int]]  # (target, its asset, how specific)
        if cls.per_sensor:
            targets = _sensor_targets(cls, f"health.checks {check_name}:{target}", target, item.enabled, sensors)
        elif cls.per_asset and target == "*":
            targets = [(a.name, a.name, 0) for a in assets if cls.skips_asset(names_of[a.name], item.params) is None]
        else:
            targets = [(target, target if cls.per_asset else None, 1)]
        built: dict[str, Threshold] = {}
        if item.enabled:
            levels = {t.metric: _as_dict(t) for t in cls.default_thresholds}
            for metric, merged in thresholds.get(check_name, {}).items():
                levels[metric] = _merge(levels.get(metric, {}), merged)
            for metric, own in item.thresholds.items():
                levels[metric] = _merge(levels.get(metric, {}), own.model_dump(exclude_unset=True))
            try:
                built = {metric: Threshold.of(metric, level) for metric, level in levels.items()}
            except (TypeError, ValueError) as exc:
                raise ConfigError(f"health.checks {check_name}:{target}: {exc}") from None
        for one, asset_of, rank in targets:
            one = one.replace("{data_dir}", str(data_dir))
            spec_id = f"{check_name}:{one}"
            if spec_id in chosen and chosen[spec_id][0] > rank:
                continue
            spec = None
            if item.enabled:
                asset = item.asset or asset_of
                site = item.site or (by_name[asset].site if asset in by_name else None)
                params = dict(item.params) | {k: v.get_secret_value() for k, v in item.secrets.items()}
                spec = CheckSpec(check_name, one, asset, site, item.scope, dict(item.labels), params, built)
            chosen[spec_id] = (rank, spec)
    return [spec for _, spec in chosen.values() if spec is not None]


def _sensor_targets(
    cls: type[Check], where: str, target: str, enabled: bool, sensors: Sequence[SensorInfo]
) -> list[tuple[str, str | None, int]]:
    """(`<asset>/<sensor>`, asset, how specific) for each sensor a per-sensor check's target covers."""
    if target == "*":
        return [(f"{s.asset}/{s.name}", s.asset, 0) for s in sensors if cls.skips(s) is None]
    asset, slash, name = target.partition("/")
    own = [s for s in sensors if s.asset == asset]
    if not own and not enabled:  # a disabled placeholder (a profile's example target) names nothing yet
        return []
    if not own:
        known = sorted({s.asset for s in sensors})
        hint = f"assets with sensors: {', '.join(known[:20])}" if known else "the inventory has no sensors"
        raise ConfigError(f"{where}: no asset {asset!r} with sensors ({hint}); a target is <asset>/<sensor>, or '*'")
    if not slash:  # an asset: each of its sensors the check applies to
        covered: list[tuple[str, str | None, int]] = [
            (f"{s.asset}/{s.name}", s.asset, 1) for s in own if cls.skips(s) is None
        ]
        if not covered and enabled:
            why = "; ".join(f"{s.name} {cls.skips(s)}" for s in own[:8])
            raise ConfigError(f"{where}: no sensor of asset {asset} is one the {cls.name} check applies to ({why})")
        return covered
    sensor = next((s for s in own if s.name == name), None)
    if sensor is None and not enabled:
        return []
    if sensor is None:
        raise ConfigError(
            f"{where}: asset {asset} has no sensor {name!r} (its sensors: {', '.join(s.name for s in own[:20])})"
        )
    why_not = cls.skips(sensor)
    if why_not is not None and enabled:
        raise ConfigError(f"{where}: sensor {target} {why_not}")
    return [(target, asset, 2)]


# Host metrics that swing with load: with or without a profile, a busy minute is not an incident.
BUILTIN_RULES: dict[str, AlertRuleSettings] = {
    "cpu.high": AlertRuleSettings(for_s=300, clear_for_s=120),
    "memory.high": AlertRuleSettings(for_s=300, clear_for_s=120),
    # A sensor or coil that looks right again now and then is not repaired: a whole window of the
    # coil checks (`pitstop.health.checks.coil`) back to usual first.
    "loop.heat_balance": AlertRuleSettings(clear_for_s=4 * 3600),
    "loop.coil_ua": AlertRuleSettings(clear_for_s=4 * 3600),
}


def alert_rules(settings: HealthSettings) -> dict[str, AlertRuleSettings]:
    """Alert rules by issue or key: the built-in ones, the included profiles' in order, then
    ``[health.alerts.rules]``, each overriding the earlier field by field (a user's ``for_s`` keeps
    the profile's ``clear_for_s``)."""
    merged: dict[str, dict[str, Any]] = {}
    layers = [BUILTIN_RULES, *(load_profile(name).rules for name in settings.include), settings.alerts.rules]
    for rules in layers:
        for key, rule in rules.items():
            merged[key] = {**merged.get(key, {}), **rule.model_dump(exclude_unset=True)}
    return {key: AlertRuleSettings(**fields) for key, fields in merged.items()}


def _merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """Field by field; new warning or critical levels without a clear level drop the old clear level."""
    merged = {**base, **over}
    if ("warning" in over or "critical" in over) and "clear" not in over:
        merged["clear"] = None
    return merged


def _as_dict(t: Threshold) -> dict[str, Any]:
    return {
        "direction": t.direction,
        "warning": t.warning,
        "critical": t.critical,
        "target": t.target,
        "clear": t.clear,
    }
