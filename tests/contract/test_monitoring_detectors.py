from __future__ import annotations

import pytest

from pitstop.ml.detectors import BUILTINS, detector_registry
from pitstop.testing.detectors import check_detector

REGISTRY = detector_registry()
CASES = [(name, params) for name in REGISTRY.names() for params in REGISTRY.get(name).test_params()]


def test_every_builtin_is_registered() -> None:
    assert len(REGISTRY.names()) == len(BUILTINS)


@pytest.mark.parametrize(("name", "params"), CASES, ids=[f"{n}-{i}" for i, (n, _) in enumerate(CASES)])
def test_detector_contract(name: str, params: dict[str, object]) -> None:
    check_detector(REGISTRY.create(name, **params))
