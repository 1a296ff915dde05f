from __future__ import annotations

import numpy as np
import pytest

from pitstop.ml.base import InvalidInputError
from pitstop.ml.detectors import IsolationForestDetector, PcaDetector, ReconstructionDetector
from pitstop.ml.explanations import explain, top_signals

NAMES = ["UCWIT", "UCAIT", "UCAOT", "UCWOT"]


def _normal(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = rng.normal(size=(n, 1))
    return np.hstack([t, 0.5 * t, -t, 0.8 * t]) + 0.05 * rng.normal(size=(n, 4))


@pytest.mark.parametrize("detector", [PcaDetector(), ReconstructionDetector(), IsolationForestDetector(random_state=0)])
def test_explanation_names_the_faulty_signal(detector) -> None:
    train = _normal(800, 0)
    window = _normal(30, 1)
    window[:, 3] += 1.5  # water outlet temperature off
    det = detector.fit(train)
    found = explain(det, window, NAMES, reference=train)
    assert found[0].signal == "UCWOT"
    assert 0 < found[0].share <= 1


def test_shares_add_up_and_bad_input_is_refused() -> None:
    found = top_signals([[1.0, 3.0, -2.0]], ["a", "b", "c"], top=3)
    assert [c.signal for c in found] == ["b", "a", "c"]
    assert sum(c.share for c in found) == pytest.approx(1.0)
    with pytest.raises(InvalidInputError, match="signal names"):
        top_signals([[1.0, 2.0]], ["a"])
    with pytest.raises(InvalidInputError, match="reference"):
        explain(IsolationForestDetector(random_state=0).fit(_normal(50, 0)), _normal(5, 1), NAMES)


def test_twin_residuals_rank_outputs_by_their_squared_deviation() -> None:
    from pitstop.ml.explanations import explain_residuals

    residuals = [[0.2, -5.0, 1.0, 0.0], [-0.1, -4.0, 3.0, 0.5]]
    ranked = explain_residuals(residuals, ["UCAF", "UCWF", "UCAOT", "UCWOT"])
    assert [c.signal for c in ranked] == ["UCWF", "UCAOT", "UCWOT"]
    assert abs(sum(c.share for c in explain_residuals(residuals, ["a", "b", "c", "d"], top=4)) - 1.0) < 1e-3
