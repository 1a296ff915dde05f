"""Training services: gather an asset type's readings from storage, fit, evaluate, save."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from pitstop.ml.base import InvalidInputError
from pitstop.ml.twins import ASSET_TYPES, Twin, time_split

if TYPE_CHECKING:
    from pitstop.core.clock import Clock
    from pitstop.storage.repos.assets import AssetRepo
    from pitstop.storage.repos.readings import ReadingRepo


@dataclass(frozen=True, slots=True)
class TwinReport:
    asset_type: str
    assets: list[str]
    train_rows: int
    test_rows: int
    metrics: dict[str, dict[str, float]]
    path: Path

    def as_dict(self) -> dict[str, Any]:
        return {
            "asset_type": self.asset_type,
            "assets": self.assets,
            "train_rows": self.train_rows,
            "test_rows": self.test_rows,
            "holdout_metrics": self.metrics,
            "model": str(self.path),
        }


def asset_frame(assets: AssetRepo, readings: ReadingRepo, asset: str, columns: tuple[str, ...]) -> pd.DataFrame:
    """One asset's readings as a wide frame (one column per sensor), rows where all are present."""
    sensors = {s.name: s.id for s in assets.sensors(asset)}
    missing = [c for c in columns if c not in sensors]
    if missing:
        raise InvalidInputError(f"asset {asset!r} has no sensors {missing}")
    parts = [readings.window(sensors[c])["value"].rename(c) for c in columns]
    return pd.concat(parts, axis=1, join="inner").dropna()


def twin_path(data_dir: Path, asset_type: str) -> Path:
    return Path(data_dir) / "models" / f"{asset_type}-twin.json"


def train_twin(
    asset_type: str,
    *,
    assets: AssetRepo,
    readings: ReadingRepo,
    clock: Clock,
    data_dir: Path,
    holdout: float = 0.2,
    n_estimators: int = 300,
) -> TwinReport:
    """Fit the twin of ``asset_type`` on every asset of that type (the earliest rows of each),
    evaluate it on the latest ``holdout`` share of each asset's rows, and save it."""
    if asset_type not in ASSET_TYPES:
        raise InvalidInputError(f"no twin for asset type {asset_type!r}; known: {sorted(ASSET_TYPES)}")
    inputs, outputs = ASSET_TYPES[asset_type]
    names = [a.name for a in assets.list_assets() if a.type == asset_type]
    if not names:
        raise InvalidInputError(f"no asset of type {asset_type!r} in the inventory")
    trains, tests = [], []
    for asset in names:
        train, test = time_split(asset_frame(assets, readings, asset, inputs + outputs), holdout)
        trains.append(train)
        tests.append(test)
    train_all, test_all = pd.concat(trains), pd.concat(tests)
    if len(train_all) < 20 or len(test_all) < 2:
        raise InvalidInputError(
            f"not enough readings to train a {asset_type} twin: {len(train_all)} training rows (need 20)"
        )
    twin = Twin.for_asset_type(asset_type, n_estimators=n_estimators).fit(train_all)
    metrics = {name: m.as_dict() for name, m in twin.evaluate(test_all).items()}
    path = twin_path(data_dir, asset_type)
    twin.save(
        path,
        metadata={
            "assets": names,
            "holdout": holdout,
            "trained_at": clock.now().isoformat(),
            "holdout_metrics": metrics,
        },
    )
    return TwinReport(asset_type, names, len(train_all), len(test_all), metrics, path)
