"""Sites, assets and sensors."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Table, insert, select, update

from pitstop.storage.engine import Database
from pitstop.storage.schema import assets, sensors, sites


@dataclass(frozen=True, slots=True)
class SensorInfo:
    id: int
    asset: str
    name: str
    unit: str
    min_value: float | None
    max_value: float | None
    period_s: float


@dataclass(frozen=True, slots=True)
class AssetRow:
    id: int
    name: str
    site: str
    parent: str | None
    type: str
    criticality: int
    location: str


class AssetRepo:
    def __init__(self, db: Database) -> None:
        self.db = db

    # -- reads ------------------------------------------------------------------------------

    def list_assets(self, site: str | None = None) -> list[AssetRow]:
        parent = assets.alias("parent")
        query = (
            select(
                assets.c.id,
                assets.c.name,
                sites.c.name.label("site"),
                parent.c.name.label("parent"),
                assets.c.type,
                assets.c.criticality,
                assets.c.location,
            )
            .join(sites, sites.c.id == assets.c.site_id)
            .outerjoin(parent, parent.c.id == assets.c.parent_id)
            .order_by(sites.c.name, assets.c.name)
        )
        if site is not None:
            query = query.where(sites.c.name == site)
        with self.db.connect() as conn:
            return [AssetRow(**row._mapping) for row in conn.execute(query)]

    def get_asset(self, name: str) -> AssetRow | None:
        return next((a for a in self.list_assets() if a.name == name), None)

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
        ).join(assets, assets.c.id == sensors.c.asset_id)
        if asset is not None:
            query = query.where(assets.c.name == asset)
        with self.db.connect() as conn:
            return [SensorInfo(**row._mapping) for row in conn.execute(query.order_by(assets.c.name, sensors.c.name))]

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
