"""Sites, assets and sensors."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import Connection, Table, insert, select, update

from pitstop.storage.engine import Database
from pitstop.storage.schema import assets, sensors, sites


@dataclass(frozen=True, slots=True)
class AlarmLimits:
    """A sensor's alarm limits, as the inventory gives them (validated there): a reading is bad
    at or above `above` / `critical_above` and under `below` / `critical_below`, judged on the
    median of the readings of the last `for_s` seconds (None: five sampling periods)."""

    above: float | None = None
    critical_above: float | None = None
    below: float | None = None
    critical_below: float | None = None
    for_s: float | None = None

    def as_dict(self) -> dict[str, float]:
        return {k: v for k, v in asdict(self).items() if v is not None}

    def to_json(self) -> str:
        """Canonical (sorted keys, no nulls), so that loading the same inventory again changes nothing."""
        return json.dumps(self.as_dict(), sort_keys=True)

    @classmethod
    def from_json(cls, text: str | None) -> AlarmLimits | None:
        if not text:
            return None
        return cls(**{k: float(v) for k, v in json.loads(text).items()})

    def window_s(self, period_s: float) -> float:
        """How far back the median looks: `for_s`, or five sampling periods."""
        return self.for_s if self.for_s is not None else 5.0 * period_s


@dataclass(frozen=True, slots=True)
class SensorInfo:
    id: int
    asset: str
    name: str
    unit: str
    min_value: float | None
    max_value: float | None
    period_s: float
    alarm: AlarmLimits | None = None


@dataclass(frozen=True, slots=True)
class AssetRow:
    id: int
    name: str
    site: str
    parent: str | None
    type: str
    criticality: int
    location: str


_PARENT = assets.alias("parent")
# built once: the statement is immutable (`where` makes a new one) and cached compiled
_ASSETS = (
    select(
        assets.c.id,
        assets.c.name,
        sites.c.name.label("site"),
        _PARENT.c.name.label("parent"),
        assets.c.type,
        assets.c.criticality,
        assets.c.location,
    )
    .join(sites, sites.c.id == assets.c.site_id)
    .outerjoin(_PARENT, _PARENT.c.id == assets.c.parent_id)
    .order_by(sites.c.name, assets.c.name)
)


class AssetRepo:
    def __init__(self, db: Database) -> None:
        self.db = db

    # -- reads ------------------------------------------------------------------------------

    def list_assets(self, site: str | None = None) -> list[AssetRow]:
        query = _ASSETS
        if site is not None:
            query = query.where(sites.c.name == site)
        with self.db.connect() as conn:
            return [AssetRow(**row._mapping) for row in conn.execute(query)]

    def get_asset(self, name: str) -> AssetRow | None:
        """One asset by its (unique) name: a lookup of one row, not a read of the whole inventory
        (the alert service labels every incident transition with it)."""
        if "\x00" in name:  # PostgreSQL refuses NUL in text; no asset is named so
            return None
        with self.db.connect() as conn:
            row = conn.execute(_ASSETS.where(assets.c.name == name)).first()
        return AssetRow(**row._mapping) if row is not None else None

    def list_sites(self) -> list[tuple[str, str]]:
        with self.db.connect() as conn:
            return [(r.name, r.location) for r in conn.execute(select(sites).order_by(sites.c.name))]

    def sensors(self, asset: str | None = None) -> list[SensorInfo]:
        query = select(
            sensors.c.id,
            assets.c.name.label("asset"),
            sensors.c.name,
            sensors.c.unit,
            sensors.c.min_value,
            sensors.c.max_value,
            sensors.c.period_s,
            sensors.c.alarm,
        ).join(assets, assets.c.id == sensors.c.asset_id)
        if asset is not None:
            query = query.where(assets.c.name == asset)
        with self.db.connect() as conn:
            rows = conn.execute(query.order_by(assets.c.name, sensors.c.name)).all()
        return [SensorInfo(**{**row._mapping, "alarm": AlarmLimits.from_json(row.alarm)}) for row in rows]

    def sensor_index(self) -> dict[tuple[str, str], SensorInfo]:
        """(asset, sensor) -> SensorInfo, for validating readings."""
        return {(s.asset, s.name): s for s in self.sensors()}

    # -- writes (inside the caller's transaction) ---------------------------------------------

    @staticmethod
    def upsert(conn: Connection, table: Table, key: tuple[str, ...], values: dict[str, Any]) -> tuple[int, str]:
        """Insert or update one row found by its natural key; says whether anything changed."""
        where = [table.c[k] == values[k] for k in key]
        row = conn.execute(select(table).where(*where)).first()
        if row is None:
            new_id = conn.execute(insert(table).values(**values)).inserted_primary_key
            assert new_id is not None
            return int(new_id[0]), "created"
        if any(row._mapping[k] != v for k, v in values.items()):
            conn.execute(update(table).where(table.c.id == row.id).values(**values))
            return int(row.id), "updated"
        return int(row.id), "unchanged"

    @staticmethod
    def asset_ids(conn: Connection) -> dict[str, int]:
        return {r.name: r.id for r in conn.execute(select(assets.c.id, assets.c.name))}
