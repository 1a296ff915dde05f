"""Training and monitoring data from storage: an asset type's readings, minus known-faulty periods
and maintenance windows; for retraining, with the asset of each row, missing values kept (the
prerequisites measure them), the sensors' ranges and the equipment changes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import pandas as pd

from pitstop.core.types import to_epoch_us
from pitstop.errors import InvalidInput
from pitstop.incidents.models import IncidentState
from pitstop.incidents.windows import MuteStore, matches
from pitstop.ml.registry.events import EQUIPMENT_CHANGED, AssetEvent, AssetEvents
from pitstop.ml.registry.lifecycle import Period, asset_type_of
from pitstop.ml.registry.prerequisites import ASSET, Range
from pitstop.ml.training import asset_frame
from pitstop.ml.twins import ASSET_TYPES

if TYPE_CHECKING:
    from pitstop.core.clock import Clock
    from pitstop.incidents import IncidentRegistry
    from pitstop.storage.engine import Database
    from pitstop.storage.repos.assets import AssetRepo
    from pitstop.storage.repos.readings import ReadingRepo


@dataclass(frozen=True, slots=True)
class ModelData:
    """A model's data from storage: its asset type's readings (the inventory and the readings), the
    periods to keep out of training (the incident registry, the maintenance windows in the database)
    and the clock that says what "recent" means."""

    db: Database
    clock: Clock
    assets: AssetRepo
    readings: ReadingRepo
    incidents: IncidentRegistry

    def frame(self, name: str, *, since: datetime | None = None) -> pd.DataFrame:
        """Every asset of the model's type, inputs and outputs side by side, time-ordered."""
        asset_type = asset_type_of(name)
        inputs, outputs = ASSET_TYPES[asset_type]
        assets = [a.name for a in self.assets.list_assets() if a.type == asset_type]
        if not assets:
            raise InvalidInput(f"no asset of type {asset_type!r} in the inventory")
        if since is None:
            parts = [asset_frame(self.assets, self.readings, a, inputs + outputs) for a in assets]
        else:
            parts = [self._recent_frame(a, inputs + outputs, since) for a in assets]
        return pd.concat(parts).sort_index()

    def assets_of(self, name: str) -> list[str]:
        """The assets whose readings the model uses: every asset of its type."""
        asset_type = asset_type_of(name)
        return [a.name for a in self.assets.list_assets() if a.type == asset_type]

    def training_frame(self, name: str, *, since: datetime | None = None) -> pd.DataFrame:
        """Like `frame`, for retraining: an ``asset`` column names each row's asset, and a row is
        kept when any of the asset's model sensors reported at that time (the others missing), so
        the prerequisites see missing inputs; training itself uses the complete rows."""
        inputs, outputs = ASSET_TYPES[asset_type_of(name)]
        columns = inputs + outputs
        parts = []
        for asset in self.assets_of(name):
            sensors = {s.name: s.id for s in self.assets.sensors(asset)}
            missing = [c for c in columns if c not in sensors]
            if missing:
                raise InvalidInput(f"asset {asset!r} has no sensors {missing}")
            start_us = to_epoch_us(since) if since is not None else None
            part = pd.concat(
                [self.readings.window(sensors[c], start_us)["value"].rename(c) for c in columns],
                axis=1,
                join="outer",
                sort=True,
            )
            part[ASSET] = asset
            parts.append(part)
        if not parts:
            raise InvalidInput(f"no asset of type {asset_type_of(name)!r} in the inventory")
        return pd.concat(parts).sort_index(kind="stable")

    def ranges(self, name: str) -> dict[str, dict[str, Range]]:
        """Per asset of the model, per sensor, its physical (min, max) from the inventory."""
        mine = set(self.assets_of(name))
        out: dict[str, dict[str, Range]] = {}
        for sensor in self.assets.sensors():
            if sensor.asset in mine:
                out.setdefault(sensor.asset, {})[sensor.name] = (sensor.min_value, sensor.max_value)
        return out

    def equipment_changes(self, name: str) -> list[AssetEvent]:
        """Equipment changes of the model's assets, oldest first."""
        return AssetEvents(self.db, self.clock).find(assets=self.assets_of(name), kind=EQUIPMENT_CHANGED)

    def changed_at(self, name: str) -> dict[str, datetime]:
        """Per asset of the model with an equipment change, when the latest one was recorded."""
        return {event.asset: event.at for event in self.equipment_changes(name)}

    def _recent_frame(self, asset: str, columns: tuple[str, ...], since: datetime) -> pd.DataFrame:
        """Like `asset_frame`, reading only rows from ``since`` on (the drift and accuracy windows)."""
        sensors = {s.name: s.id for s in self.assets.sensors(asset)}
        missing = [c for c in columns if c not in sensors]
        if missing:
            raise InvalidInput(f"asset {asset!r} has no sensors {missing}")
        start_us = to_epoch_us(since)
        parts = [self.readings.window(sensors[c], start_us)["value"].rename(c) for c in columns]
        return pd.concat(parts, axis=1, join="inner").dropna()

    def faulty_periods(self, name: str) -> list[Period]:
        """Periods when an asset of the model's type had an incident open (asset.* keys): kept out of training."""
        asset_type = asset_type_of(name)
        assets = {a.name for a in self.assets.list_assets() if a.type == asset_type}
        now = self.clock.now()
        periods = []
        for incident in self.incidents.list(area="asset", limit=10_000):
            if incident.target in assets:
                end = incident.resolved_at if incident.state is IncidentState.RESOLVED else None
                periods.append((incident.opened_at, end or now + timedelta(seconds=1)))
        return periods

    def maintenance_periods(self, name: str, start: datetime, end: datetime) -> list[Period]:
        """Occurrences within [start, end) of maintenance windows that cover an asset of the model's type
        (a window without matchers covers everything): readings taken then are kept out of training."""
        asset_type = asset_type_of(name)
        labels = [{"asset": a.name, "site": a.site, "type": a.type} for a in self.assets.list_assets()]
        labels = [item for item in labels if item["type"] == asset_type]
        periods: list[Period] = []
        for window in MuteStore(self.db).windows():
            if any(matches(window.matchers, item) for item in labels):
                periods.extend(window.occurrences(start, end))
        return sorted(periods)

    def excluded_periods(self, name: str, frame: pd.DataFrame) -> list[Period]:
        """Known-faulty periods and maintenance windows over the frame's time span."""
        periods = self.faulty_periods(name)
        if not frame.empty:
            start, end = frame.index.min().to_pydatetime(), frame.index.max().to_pydatetime()
            periods += self.maintenance_periods(name, start, end + timedelta(seconds=1))
        return periods
