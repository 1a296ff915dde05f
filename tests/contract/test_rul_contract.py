"""Every registered RUL model passes the contract suite in pitstop.testing.rul."""

from __future__ import annotations

import pytest

from pitstop.ml.rul import RulModel, rul_registry
from pitstop.testing.rul import check_rul_model

REGISTRY = rul_registry()
# Smaller settings keep the suite quick; the defaults are exercised by the unit tests and bench/.
PARAMS: dict[str, dict[str, object]] = {"gbm": {"n_estimators": 60, "folds": 3}}


def test_the_built_in_models_are_registered() -> None:
    assert REGISTRY.names() == ["degradation", "gbm"]


@pytest.mark.parametrize("name", REGISTRY.names())
def test_contract(name: str) -> None:
    model = REGISTRY.create(name, **PARAMS.get(name, {}))
    assert isinstance(model, RulModel)
    check_rul_model(model)
