"""The asset page shows the remaining useful life: the interval band, the work order it opened."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
from fastapi.testclient import TestClient

from pitstop.app import Pitstop
from pitstop.core.types import Role, to_epoch_us
from pitstop.prognostics import rul_key
from pitstop.storage.repos.readings import ReadingBatch
from tests.integration.test_web_pages import login


def _wearing_bearing(pitstop: Pitstop, days: int) -> None:
    """pump-1's vibration, flat for two days, then growing exponentially (one reading a minute)."""
    sensor = next(s for s in pitstop.assets.sensors("pump-1") if s.name == "vib_rms")
    end = pitstop.clock.now()
    minutes = np.arange(days * 24 * 60)
    ts = to_epoch_us(end - timedelta(days=days)) + minutes.astype(np.int64) * 60_000_000
    hours = minutes / 60.0
    level = 2.0 * (1 + np.expm1(np.maximum(hours - 48, 0) / 40.0) * 0.08)  # past the 30 % rise a trend needs
    noise = np.random.default_rng(3).normal(0, 0.02, len(minutes))
    pitstop.readings.write(ReadingBatch.of(np.full(len(ts), sensor.id, dtype=np.int32), ts, level + noise))


def test_the_asset_page_draws_the_interval_and_names_the_order(
    client: TestClient, demo_pitstop: Pitstop, keys: dict[Role, str]
) -> None:
    login(client, keys[Role.VIEWER])
    before = client.get("/ui/assets/pump-1").text
    assert "Remaining useful life" in before and "No estimate yet" in before
    assert "Remaining useful life" not in client.get("/ui/assets/ahu-1").text  # no health sensor: no panel

    _wearing_bearing(demo_pitstop, days=6)
    [estimate] = demo_pitstop.prognostics.run(asset="pump-1")
    assert estimate.degrading and estimate.lower_h < demo_pitstop.settings.prognostics.lead_time_hours
    order = demo_pitstop.maintenance.orders.active_for("pump-1", rul_key("pump-1"))
    assert order is not None

    page = client.get("/ui/assets/pump-1?range=7d").text
    assert '<polygon class="interval"' in page and f"{round(estimate.median_h)} h</b> left" in page
    assert "Inspect and repair pump-1" in page
