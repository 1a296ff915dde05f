"""An air-handling unit's water coil: effectiveness-NTU heat exchange with a controller that
tracks the supply-air set point through the water valve.

Inputs (what the plant decides): UCWIT water inlet temperature, UCAIT air inlet temperature,
UCWF water flow (the valve), UCAIH air inlet humidity, AMBT ambient temperature, UCTSP set point.
Outputs (what the coil makes of them): UCAOT air outlet temperature, UCWOT water outlet
temperature, UCAF air flow. The outputs are a deterministic function of the inputs plus small
sensor noise, so a digital twin can learn them.

A unit on seasonal duty runs hot water through its coil when the season turns cold; at those
part loads the valve passes a trickle and the coil's UA barely matters, so a fouled coil changes
no reading then (30 % of the UA lost moves the valve by under 0.01 m3/h in March). A unit cooling
all year (a server room's: warm return air, chilled water in every season) shows fouling then too.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pitstop.sim import climate, noise
from pitstop.sim.noise import F64, I64
from pitstop.sim.scenario import Fault, FaultKind

RHO_CP_AIR = 1.2 * 1006.0 / 3600.0  # W/K per m3/h of air
RHO_CP_WATER = 1000.0 * 4186.0 / 3600.0  # W/K per m3/h of water
MIN_FLOW = 0.05  # m3/h through a closed valve
FOULING_DAYS = 30.0
SERVER_ROOM_GAIN = 8.0  # K: return air of a unit cooling all year (a server room), above an office's

SIGNALS = ("UCWIT", "UCAIT", "UCWF", "UCAIH", "AMBT", "UCTSP", "UCAOT", "UCWOT", "UCAF")


@dataclass(frozen=True, slots=True)
class CoilParams:
    ua: float  # W/K at design air flow, clean
    air_flow: float  # m3/h, design
    max_flow: float  # m3/h, valve fully open
    outdoor_fraction: float
    return_air: float  # °C


def coil(t_ai: F64, t_wi: F64, flow: F64, air: F64, ua: F64) -> tuple[F64, F64]:
    """Counter-flow effectiveness-NTU. Returns (heat from air to water in W, sensible), air outlet °C."""
    c_air, c_water = RHO_CP_AIR * air, RHO_CP_WATER * flow
    c_min, c_max = np.minimum(c_air, c_water), np.maximum(c_air, c_water)
    ratio = np.minimum(c_min / c_max, 0.999)
    e = np.exp(-(ua / c_min) * (1.0 - ratio))
    effectiveness = (1.0 - e) / (1.0 - ratio * e)
    heat = effectiveness * c_min * (t_ai - t_wi)
    return heat, t_ai - heat / c_air


def dew_point(temp: F64, rh: F64) -> F64:
    """Magnus formula, °C."""
    gamma = np.log(np.clip(rh, 1.0, 100.0) / 100.0) + 17.62 * temp / (243.12 + temp)
    return 243.12 * gamma / (17.62 - gamma)


class HvacModel:
    def __init__(
        self, seed: int, asset: str, site: str, faults: tuple[Fault, ...], *, cooling_all_year: bool = False
    ) -> None:
        rng = np.random.default_rng(noise.key(seed, asset, "coil"))
        self.params = CoilParams(
            ua=float(rng.uniform(2000, 2800)),
            air_flow=float(rng.uniform(7000, 10000)),
            max_flow=float(rng.uniform(10, 14)),
            outdoor_fraction=float(rng.uniform(0.2, 0.35)),
            return_air=float(rng.uniform(21, 23)),
        )
        self.seed, self.asset, self.site = seed, asset, site
        self.cooling_all_year = cooling_all_year
        self.fouling = tuple(f for f in faults if f.kind is FaultKind.FOULING)
        self.stuck = tuple(f for f in faults if f.kind is FaultKind.VALVE_STUCK)

    def _key(self, name: str) -> int:
        return noise.key(self.seed, self.asset, name)

    def inputs(self, t: F64) -> dict[str, F64]:
        """Everything but the valve: weather, mixed air, water supply, set point, air flow."""
        p = self.params
        ambt = climate.ambient(self.seed, self.site, t)
        heating = np.zeros(t.shape, dtype=bool) if self.cooling_all_year else climate.heating_season(t)
        hour = climate.hour_of_day(t)
        gain = SERVER_ROOM_GAIN if self.cooling_all_year else 0.0
        return_air = (
            p.return_air + gain + 0.7 * climate.daytime(t) + 0.6 * noise.smooth(self._key("return"), t, 2 * 3600)
        )
        ucait = (1.0 - p.outdoor_fraction) * return_air + p.outdoor_fraction * ambt
        ucaih = np.clip(
            48.0
            + 10.0 * climate.seasonal(t)
            + 8.0 * noise.smooth(self._key("humidity"), t, 8 * 3600)
            + 5.0 * np.cos(2 * np.pi * (hour - 4.0) / 24.0),
            15.0,
            95.0,
        )
        water = noise.smooth(self._key("water"), t, 12 * 3600)
        hot = np.clip(38.0 - 0.5 * climate.ambient_base(t), 30.0, 40.0) + 0.5 * water
        ucwit = np.where(heating, hot, 6.5 + 0.4 * water)
        night = (hour < 6.0) | (hour >= 22.0)
        base = np.where(heating, 20.0 - 2.0 * night, 15.0 + 2.0 * night)
        operator = np.clip(np.round(2.0 * noise.steps(self._key("setpoint"), t, 3 * 86_400.0)) / 2.0, -1.5, 1.5)
        uctsp = base + operator
        ucaf = p.air_flow * np.clip(0.55 + 0.06 * np.abs(ucait - uctsp), 0.55, 1.0)
        return {"AMBT": ambt, "UCAIT": ucait, "UCAIH": ucaih, "UCWIT": ucwit, "UCTSP": uctsp, "UCAF": ucaf}

    def ua(self, t: F64, air: F64) -> F64:
        ua = self.params.ua * (air / self.params.air_flow) ** 0.6
        factor = np.ones_like(t)
        for f in self.fouling:
            since = t - f.start.timestamp()
            active = (since >= 0) & (t < f.end.timestamp() if f.end else True)
            loss = f.severity * since / (FOULING_DAYS * 86_400.0)
            factor = np.where(active, factor * np.maximum(1.0 - loss, 0.1), factor)
        return ua * factor

    def valve(self, t: F64, x: dict[str, F64]) -> F64:
        """The flow the controller asks for: what brings the air to the set point, with some hunting."""
        ua = self.ua(t, x["UCAF"])
        want = np.abs(x["UCAIT"] - x["UCTSP"])
        # Only when the water can move the air towards the set point (chilled water cools, hot heats).
        able = np.sign(x["UCTSP"] - x["UCAIT"]) == np.sign(x["UCWIT"] - x["UCAIT"])
        lo = np.full_like(t, np.log(MIN_FLOW))
        hi = np.full_like(t, np.log(self.params.max_flow))
        for _ in range(40):  # bisection in log-flow: the gain grows with the flow
            mid = 0.5 * (lo + hi)
            _, t_ao = coil(x["UCAIT"], x["UCWIT"], np.exp(mid), x["UCAF"], ua)
            short = np.abs(x["UCAIT"] - t_ao) < want
            lo, hi = np.where(short, mid, lo), np.where(short, hi, mid)
        needed = np.where(able, np.exp(0.5 * (lo + hi)), MIN_FLOW)
        hunting = 1.0 + 0.08 * noise.smooth(self._key("hunting"), t, 1200.0)
        return np.clip(needed * hunting, MIN_FLOW, self.params.max_flow)

    def flow(self, t: F64, x: dict[str, F64]) -> F64:
        flow = self.valve(t, x)
        for f in self.stuck:
            at = np.array([f.start.timestamp()])
            held = float(self.valve(at, self.inputs(at))[0])
            active = (t >= f.start.timestamp()) & (t < f.end.timestamp() if f.end else True)
            flow = np.where(active, held, flow)
        return flow

    def signals(self, t: F64, k: I64) -> dict[str, tuple[F64, F64 | float]]:
        x = self.inputs(t)
        flow = self.flow(t, x)
        heat, t_ao = coil(x["UCAIT"], x["UCWIT"], flow, x["UCAF"], self.ua(t, x["UCAF"]))
        # Condensation on a chilled coil: the water also takes the air's latent heat.
        surface = x["UCWIT"] + 0.35 * (x["UCAIT"] - x["UCWIT"])
        latent = np.where(heat > 0, np.clip(0.06 * (dew_point(x["UCAIT"], x["UCAIH"]) - surface), 0.0, 0.4), 0.0)
        t_wo = x["UCWIT"] + heat * (1.0 + latent) / (RHO_CP_WATER * flow)
        return {
            "UCWIT": (x["UCWIT"], 0.03),
            "UCAIT": (x["UCAIT"], 0.03),
            "UCWF": (flow, 0.003 * flow + 0.002),
            "UCAIH": (x["UCAIH"], 0.2),
            "AMBT": (x["AMBT"], 0.1),
            "UCTSP": (x["UCTSP"], 0.0),
            "UCAOT": (t_ao, 0.03),
            "UCWOT": (t_wo, 0.03),
            "UCAF": (x["UCAF"], 0.002 * x["UCAF"]),
        }
