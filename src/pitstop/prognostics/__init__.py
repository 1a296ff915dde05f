"""Prognostics: remaining-useful-life estimates per asset, turned into work before the failure."""

from pitstop.prognostics.service import HealthIndex, Prognostics, rul_key
from pitstop.prognostics.store import Estimate, LifeEnd, Outcome, PrognosticsStore

__all__ = ["Estimate", "HealthIndex", "LifeEnd", "Outcome", "Prognostics", "PrognosticsStore", "rul_key"]
