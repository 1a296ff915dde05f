from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "pitstop.features.rolling",
    "pitstop.features.vibration",
    "pitstop.ml.detectors.mad",
    "pitstop.ml.detectors.pca",
    "pitstop.ml.detectors.iforest",
    "pitstop.ml.detectors.reconstruction",
    "pitstop.ml.detectors.ewma",
    "pitstop.ml.thresholds",
    "pitstop.ml.explanations",
    "pitstop.ml.twins",
]


@pytest.mark.parametrize("module", MODULES)
def test_docstring_examples_run(module: str) -> None:
    result = doctest.testmod(importlib.import_module(module), optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0
