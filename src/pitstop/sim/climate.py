"""Weather and calendar shapes shared by the models. Sites run on UTC in the simulator."""

from __future__ import annotations

import numpy as np

from pitstop.sim import noise
from pitstop.sim.noise import F64

DAY = 86_400.0
YEAR = 365.2425 * DAY
HOUR = 3_600.0


def hour_of_day(t: F64) -> F64:
    return (t % DAY) / HOUR


def seasonal(t: F64) -> F64:
    """-1 in the coldest days (around 20 January), +1 in the warmest."""
    return -np.cos(2 * np.pi * ((t - 20 * DAY) % YEAR) / YEAR)


def ambient_base(t: F64) -> F64:
    """The season's mean outdoor temperature (°C), without the daily cycle or the weather."""
    return 11.0 + 10.0 * seasonal(t)


def heating_season(t: F64) -> np.ndarray:
    """The plant switches its coil water from chilled to hot when the season turns cold."""
    return ambient_base(t) < 12.0


def daytime(t: F64) -> F64:
    """0 at 01:00, 1 at 13:00: occupancy, motion in the camera views, solar gain."""
    return 0.5 - 0.5 * np.cos(2 * np.pi * (hour_of_day(t) - 1.0) / 24.0)


def ambient(seed: int, site: str, t: F64) -> F64:
    """Outdoor temperature at a site: yearly and daily cycle plus multi-day weather."""
    daily = -4.0 * np.cos(2 * np.pi * (hour_of_day(t) - 4.0) / 24.0)
    weather = 3.0 * noise.smooth(noise.key(seed, "weather", site), t, 6 * HOUR)
    return ambient_base(t) + daily + weather
