"""Remaining-useful-life models. Built-ins are listed in `BUILTINS` and loaded into a registry by name.

Importing this package costs numpy only; LightGBM, scikit-learn and SciPy load when a model fits.
"""

from __future__ import annotations

from typing import Any

from pitstop.core.registry import Registry
from pitstop.ml.rul.base import History, RulEstimate, RulModel
from pitstop.ml.rul.degradation import DegradationRulModel
from pitstop.ml.rul.gbm import GbmRulModel
from pitstop.ml.rul.health import HealthIndex, health_index

BUILTINS: tuple[str, ...] = (
    "pitstop.ml.rul.gbm:GbmRulModel",
    "pitstop.ml.rul.degradation:DegradationRulModel",
)

# Settings the app hands to every model; a model without such a parameter has no use for it.
SHARED_PARAMS: frozenset[str] = frozenset({"failure_level", "min_rise"})


def rul_registry() -> Registry[RulModel]:
    """A fresh registry holding the built-in RUL models."""
    registry: Registry[RulModel] = Registry("RUL model", "pitstop.rul_models")
    registry.load(BUILTINS)
    return registry


def create(name: str, /, **params: Any) -> RulModel:
    """An unfitted model by registry name; `SHARED_PARAMS` the model does not take are left out.

    Any other unknown parameter is an error (TypeError), as is an unknown name
    (`UnknownComponentError`).
    """
    registry = rul_registry()
    cls = registry.get(name)
    takes = set(getattr(cls, "_param_names", lambda: list(params))())
    return registry.create(name, **{k: v for k, v in params.items() if k in takes or k not in SHARED_PARAMS})


__all__ = [
    "BUILTINS",
    "SHARED_PARAMS",
    "DegradationRulModel",
    "GbmRulModel",
    "HealthIndex",
    "History",
    "RulEstimate",
    "RulModel",
    "create",
    "health_index",
    "rul_registry",
]
