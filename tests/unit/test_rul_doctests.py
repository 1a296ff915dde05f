from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "pitstop.ml.rul.evaluation",
    "pitstop.ml.rul.features",
    "pitstop.ml.rul.health",
    "pitstop.ml.rul.gbm",
    "pitstop.ml.rul.degradation",
]


@pytest.mark.parametrize("module", MODULES)
def test_docstring_examples_run(module: str) -> None:
    result = doctest.testmod(
        importlib.import_module(module), optionflags=doctest.NORMALIZE_WHITESPACE | doctest.ELLIPSIS
    )
    assert result.failed == 0 and result.attempted > 0
