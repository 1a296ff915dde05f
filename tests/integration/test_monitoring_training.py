from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from pitstop.app import Pitstop
from pitstop.ml.base import InvalidInputError
from pitstop.ml.training import TwinReport, train_twin
from pitstop.ml.twins import Twin
from pitstop.sim import Simulator, assets_of_database
from pitstop.storage.repos.readings import ReadingBatch


def _backfill_hvac(pitstop: Pitstop, days: int = 2) -> None:
    assets = [a for a in assets_of_database(pitstop.assets) if a.type == "hvac"]
    batch = Simulator(assets, seed=1).batch(datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 1, 1 + days, tzinfo=UTC))
    index = pitstop.assets.sensor_index()
    ids = np.array([index[key].id for key in batch.keys], dtype=np.int32)[batch.key]
    pitstop.readings.write(ReadingBatch.of(ids, batch.ts_us, batch.value))


def _train(pitstop: Pitstop, asset_type: str, **kwargs: Any) -> TwinReport:
    return train_twin(
        asset_type,
        assets=pitstop.assets,
        readings=pitstop.readings,
        clock=pitstop.clock,
        data_dir=pitstop.settings.data_dir,
        **kwargs,
    )


def test_train_twin_from_stored_readings(demo_pitstop: Pitstop) -> None:
    _backfill_hvac(demo_pitstop)
    report = _train(demo_pitstop, "hvac", n_estimators=60)
    assert report.assets == ["ahu-1", "ahu-2"]
    assert set(report.metrics) == {"UCAOT", "UCWOT", "UCAF"}
    assert report.test_rows > 0 and report.train_rows > 3 * report.test_rows
    assert all(m["r2"] > 0.5 for m in report.metrics.values())
    assert Twin.load(report.path).outputs == ["UCAOT", "UCWOT", "UCAF"]


def test_train_twin_refuses_unknown_types_and_empty_data(demo_pitstop: Pitstop) -> None:
    with pytest.raises(InvalidInputError, match="no twin for asset type"):
        _train(demo_pitstop, "toaster")
    with pytest.raises(InvalidInputError, match="not enough readings"):
        _train(demo_pitstop, "hvac")


def test_models_train_command(demo_pitstop: Pitstop, monkeypatch: pytest.MonkeyPatch) -> None:
    from pitstop.cli.models import models_app

    _backfill_hvac(demo_pitstop, days=1)

    class State:
        def pitstop(self) -> Pitstop:
            return demo_pitstop

    monkeypatch.setattr(demo_pitstop, "close", lambda: None)
    result = CliRunner().invoke(models_app, ["train", "--asset-type", "hvac", "--trees", "30", "--json"], obj=State())
    assert result.exit_code == 0, result.output
    assert '"UCAOT"' in result.output and '"r2"' in result.output


def test_score_command(demo_pitstop: Pitstop, monkeypatch: pytest.MonkeyPatch) -> None:
    import typer

    from pitstop.cli.models import score_command
    from pitstop.errors import InvalidInput, NotFound

    _backfill_hvac(demo_pitstop, days=2)
    app = typer.Typer()
    app.command()(score_command)

    class State:
        def pitstop(self) -> Pitstop:
            return demo_pitstop

    monkeypatch.setattr(demo_pitstop, "close", lambda: None)
    result = CliRunner().invoke(app, ["--asset", "ahu-2", "--baseline-hours", "24", "--json"], obj=State())
    assert result.exit_code == 0, result.output
    assert '"asset": "ahu-2"' in result.output
    missing = CliRunner().invoke(app, ["--asset", "nope"], obj=State())
    assert isinstance(missing.exception, NotFound)
    naive = CliRunner().invoke(app, ["--asset", "ahu-1", "--since", "2026-01-01T00:00"], obj=State())
    assert isinstance(naive.exception, InvalidInput)  # a clock time needs its offset
