"""The fleet simulator: HVAC units, rotating machines and the monitoring system's own server,
deterministic with a seed and driven by simulated time, with faults whose ground truth is known."""

from pitstop.sim.fleet import Batch, SimAsset, SimSensor, Simulator, assets_of_database, assets_of_inventory
from pitstop.sim.rotating import Waveform
from pitstop.sim.scenario import AFFECTED_SIGNALS, Fault, FaultKind, Scenario, parse_duration, parse_time

__all__ = [
    "AFFECTED_SIGNALS",
    "Batch",
    "Fault",
    "FaultKind",
    "Scenario",
    "SimAsset",
    "SimSensor",
    "Simulator",
    "Waveform",
    "assets_of_database",
    "assets_of_inventory",
    "parse_duration",
    "parse_time",
]
