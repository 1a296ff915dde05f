"""The asset inventory: sites → assets (a hierarchy) → sensors, loaded from TOML or YAML.

    [[sites]]
    name = "north-plant"

    [[assets]]
    name = "ahu-1"
    site = "north-plant"
    type = "hvac"
    criticality = 4
    sensors = [{ name = "UCAOT", unit = "degC", min = -20, max = 60, period_s = 60 }]

A sensor may carry alarm limits (what a plant knows from its SCADA hi/lo alarms), judged by the
`limits` health check on the median of the last `for_s` seconds (default five periods):

    { name = "camera_latency_ms", unit = "ms", period_s = 30, alarm = { above = 500, for_s = 300 } }

Loading is all or nothing and idempotent: the same file twice changes nothing.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, model_validator

from pitstop.errors import InventoryError
from pitstop.storage.engine import Database
from pitstop.storage.repos.assets import AlarmLimits, AssetRepo
from pitstop.storage.repos.audit import AuditRepo
from pitstop.storage.schema import assets, sensors, sites

_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,199}$"
MAX_ALARM_FOR_S = 7 * 86400.0


class AlarmSpec(BaseModel):
    """Alarm limits of one sensor. `above` / `critical_above`: bad at or above the level;
    `below` / `critical_below`: bad under it (as the health thresholds read them). `for_s`: the
    median of the readings of this many seconds is judged (default five sampling periods), so
    that one spike does not raise an alarm. Numbers only: no strings, NaN or infinity."""

    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)
    above: float | None = None
    critical_above: float | None = None
    below: float | None = None
    critical_below: float | None = None
    for_s: float | None = Field(default=None, gt=0, le=MAX_ALARM_FOR_S)

    @model_validator(mode="after")
    def _ordered(self) -> AlarmSpec:
        highs = [v for v in (self.above, self.critical_above) if v is not None]
        lows = [v for v in (self.below, self.critical_below) if v is not None]
        if not highs and not lows:
            raise ValueError("an alarm needs at least one of above, critical_above, below, critical_below")
        if self.above is not None and self.critical_above is not None and self.critical_above < self.above:
            raise ValueError(f"critical_above ({self.critical_above:g}) must not be under above ({self.above:g})")
        if self.below is not None and self.critical_below is not None and self.critical_below > self.below:
            raise ValueError(f"critical_below ({self.critical_below:g}) must not be over below ({self.below:g})")
        if highs and lows and max(lows) >= min(highs):
            raise ValueError(
                f"the low limits ({max(lows):g}) must be under the high limits ({min(highs):g}): "
                "otherwise every reading is in alarm"
            )
        return self

    def limits(self) -> AlarmLimits:
        return AlarmLimits(**self.model_dump())


class SensorSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(pattern=_NAME)
    unit: str = Field(default="", max_length=50)
    min: float | None = None
    max: float | None = None
    period_s: float = Field(default=60.0, gt=0)
    alarm: AlarmSpec | None = None

    @model_validator(mode="after")
    def _range(self) -> SensorSpec:
        if self.min is not None and self.max is not None and self.min >= self.max:
            raise ValueError(f"min ({self.min}) must be below max ({self.max})")
        if self.alarm is not None:
            self._reachable(self.alarm)
        return self

    def _reachable(self, alarm: AlarmSpec) -> None:
        """A limit that no accepted reading can reach (readings outside min/max are quarantined)
        is a mistake in the inventory, not a quiet alarm."""
        for field_name in ("above", "critical_above"):
            level = getattr(alarm, field_name)
            if level is not None and self.max is not None and level > self.max:
                raise ValueError(
                    f"alarm.{field_name} ({level:g}) is over the sensor's max ({self.max:g}): no reading can reach it"
                )
        for field_name in ("below", "critical_below"):
            level = getattr(alarm, field_name)
            if level is not None and self.min is not None and level <= self.min:
                raise ValueError(
                    f"alarm.{field_name} ({level:g}) is not over the sensor's min ({self.min:g}): "
                    "no reading can be under it"
                )


class AssetSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(pattern=_NAME)
    site: str
    type: str = Field(min_length=1, max_length=100)
    criticality: int = Field(default=3, ge=1, le=5)
    location: str = Field(default="", max_length=500)
    parent: str | None = None
    sensors: list[SensorSpec] = []


class SiteSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(pattern=_NAME)
    location: str = Field(default="", max_length=500)


class InventorySpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    sites: list[SiteSpec] = []
    assets: list[AssetSpec] = []
    # Where the spec came from, so that errors found against the database still name a line.
    _source: str = PrivateAttr(default="inventory")
    _text: str = PrivateAttr(default="")

    def locate(self, name: str) -> str:
        line = _Lines(self._text).of_name(name)
        return f"{self._source}:{f' line {line}' if line else ''}"


@dataclass
class LoadSummary:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    changes: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.created or self.updated)


class _Lines:
    """Finds the line where the n-th entry with a given name is written, for error messages."""

    def __init__(self, text: str) -> None:
        self.lines = text.splitlines()

    def of_name(self, name: str, occurrence: int = 0) -> int | None:
        pattern = re.compile(r"""\bname\s*[=:]\s*["']?""" + re.escape(name) + r"""["']?\s*(,|}|#|$)""")
        hits = [i + 1 for i, line in enumerate(self.lines) if pattern.search(line)]
        return hits[occurrence] if occurrence < len(hits) else (hits[-1] if hits else None)

    def of_section(self, section: str, index: int) -> int | None:
        pattern = re.compile(r"^\s*(\[\[\s*" + section + r"\s*\]\]|" + section + r"\s*:)")
        hits = [i + 1 for i, line in enumerate(self.lines) if pattern.search(line)]
        if len(hits) > index and hits[0] and self.lines[hits[0] - 1].lstrip().startswith("[["):
            return hits[index]
        return hits[0] if hits else None


def parse(text: str, source: str, fmt: str) -> InventorySpec:
    lines = _Lines(text)
    try:
        raw: Any = tomllib.loads(text) if fmt == "toml" else yaml.safe_load(text)
    except tomllib.TOMLDecodeError as exc:
        raise InventoryError(f"{source}: not valid TOML: {exc}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        raise InventoryError(f"{source}:{where}: not valid YAML: {getattr(exc, 'problem', exc)}") from None
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise InventoryError(f"{source}: an inventory is a table with `sites` and `assets` lists")
    try:
        spec = InventorySpec.model_validate(raw)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = [str(p) for p in err["loc"]]
        line = None
        if len(loc) >= 2 and loc[0] in ("sites", "assets") and loc[1].isdigit():
            entry = raw[loc[0]][int(loc[1])]
            name = entry.get("name") if isinstance(entry, dict) else None
            line = lines.of_name(str(name)) if name else lines.of_section(loc[0], int(loc[1]))
        where = f" line {line}" if line else ""
        raise InventoryError(f"{source}:{where}: {'.'.join(loc)}: {err['msg']}") from None
    _check_names(spec, source, lines)
    spec._source, spec._text = source, text
    return spec


def _check_names(spec: InventorySpec, source: str, lines: _Lines) -> None:
    def fail(name: str, occurrence: int, message: str) -> InventoryError:
        line = lines.of_name(name, occurrence)
        return InventoryError(f"{source}:{f' line {line}' if line else ''}: {message}")

    seen: set[str] = set()
    for site in spec.sites:
        if site.name in seen:
            raise fail(site.name, 1, f"site {site.name!r} is named twice")
        seen.add(site.name)
    names = [a.name for a in spec.assets]
    for i, asset in enumerate(spec.assets):
        if asset.name in names[:i]:
            raise fail(asset.name, names[:i].count(asset.name), f"asset {asset.name!r} is named twice")
        sensor_names = [s.name for s in asset.sensors]
        for j, sensor in enumerate(asset.sensors):
            if sensor.name in sensor_names[:j]:
                raise fail(sensor.name, 1, f"asset {asset.name!r} names sensor {sensor.name!r} twice")


def read_file(path: Path) -> InventorySpec:
    fmt = "yaml" if path.suffix.lower() in (".yaml", ".yml") else "toml"
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InventoryError(f"{path}: cannot read: {exc}") from None
    return parse(text, str(path), fmt)


def apply(db: Database, spec: InventorySpec, *, actor: str, now: datetime) -> LoadSummary:
    """Create or update everything in `spec` in one transaction; nothing is written on error."""
    summary = LoadSummary()

    def note(kind: str, name: str, change: str) -> None:
        if change == "created":
            summary.created += 1
        elif change == "updated":
            summary.updated += 1
        else:
            summary.unchanged += 1
        if change != "unchanged":
            summary.changes.append(f"{change} {kind} {name}")

    with db.begin() as conn:
        site_ids: dict[str, int] = {}
        for site in spec.sites:
            site_ids[site.name], change = AssetRepo.upsert(conn, sites, ("name",), site.model_dump())
            note("site", site.name, change)
        for name, site_id in _existing_sites(conn).items():
            site_ids.setdefault(name, site_id)
        asset_ids = AssetRepo.asset_ids(conn)
        for asset in _parents_first(spec, set(asset_ids)):
            if asset.site not in site_ids:
                raise InventoryError(
                    f"{spec.locate(asset.name)}: asset {asset.name!r} is in unknown site {asset.site!r}"
                )
            values = {
                "name": asset.name,
                "site_id": site_ids[asset.site],
                "parent_id": asset_ids[asset.parent] if asset.parent else None,
                "type": asset.type,
                "criticality": asset.criticality,
                "location": asset.location,
            }
            asset_ids[asset.name], change = AssetRepo.upsert(conn, assets, ("name",), values)
            note("asset", asset.name, change)
            for sensor in asset.sensors:
                sensor_values = {
                    "asset_id": asset_ids[asset.name],
                    "name": sensor.name,
                    "unit": sensor.unit,
                    "min_value": sensor.min,
                    "max_value": sensor.max,
                    "period_s": sensor.period_s,
                    "alarm": sensor.alarm.limits().to_json() if sensor.alarm else None,
                }
                _, change = AssetRepo.upsert(conn, sensors, ("asset_id", "name"), sensor_values)
                note("sensor", f"{asset.name}/{sensor.name}", change)
        if summary.changed:
            AuditRepo.record(
                conn,
                at=now,
                actor=actor,
                action="inventory.load",
                target=spec._source,
                detail={"changes": summary.changes},
            )
    return summary


def _existing_sites(conn: Any) -> dict[str, int]:
    return {r.name: r.id for r in conn.execute(sites.select())}


def _parents_first(spec: InventorySpec, known: set[str]) -> list[AssetSpec]:
    """Order assets so that each parent is written before its children; refuse unknown parents and cycles."""
    pending = {a.name: a for a in spec.assets}
    ordered: list[AssetSpec] = []
    placed = known - set(pending)
    while pending:
        ready = [a for a in pending.values() if a.parent is None or a.parent in placed]
        if not ready:
            orphan = next((a for a in pending.values() if a.parent not in pending), None)
            if orphan is None:
                first = next(iter(pending))
                raise InventoryError(f"{spec.locate(first)}: assets {', '.join(sorted(pending))} form a parent cycle")
            raise InventoryError(
                f"{spec.locate(orphan.name)}: asset {orphan.name!r} has unknown parent {orphan.parent!r}"
            )
        for asset in ready:
            ordered.append(asset)
            placed.add(asset.name)
            del pending[asset.name]
    return ordered


def validated(spec: InventorySpec, *, source: str) -> InventorySpec:
    """Checks a spec that did not come from a file (the API): the same rules, without line numbers."""
    _check_names(spec, source, _Lines(""))
    spec._source = source
    return spec
