"""Synthetic runs to failure and the contract suite for RUL models: `check_rul_model(model)`.

Plugin authors run the suite over their own models; pitstop runs it over every registered one.
"""

from __future__ import annotations

import copy
import pickle

import numpy as np

from pitstop.ml.base import InvalidInputError, NotFittedError
from pitstop.ml.rul.base import History, RulEstimate, RulModel

FEATURES = ("health", "temp", "pressure", "flat")


def synthetic_runs(
    n: int, *, seed: int = 0, truncate: bool = False, life: tuple[float, float] = (120.0, 260.0)
) -> list[History]:
    """``n`` units wearing out exponentially, observed once per time unit.

    Column 0 (``health``) starts at 1 and reaches about 5 at failure; ``temp`` and ``pressure``
    follow the damage with noise; ``flat`` is constant. With ``truncate`` each unit stops at a
    random point before failure (``failed_at`` None, the true failure time in
    ``meta["truth_failed_at"]``), as test units do.
    """
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        total = float(np.round(rng.uniform(*life)))
        rate = rng.uniform(4.0, 6.0)
        t = np.arange(total + 1.0)
        damage = np.expm1(rate * t / total) / np.expm1(rate)  # 0 .. 1
        health = (1.0 + 4.0 * damage) * np.exp(rng.normal(0.0, 0.04, len(t)))
        temp = 40.0 + 15.0 * damage + rng.normal(0.0, 0.8, len(t))
        pressure = 6.0 - 1.5 * damage + rng.normal(0.0, 0.1, len(t))
        X = np.column_stack([health, temp, pressure, np.full(len(t), 2.5)])
        if truncate:
            stop = int(rng.integers(int(0.3 * total), int(total) - 2))
            out.append(History(f"u{seed}-{i}", t[: stop + 1], X[: stop + 1], FEATURES, meta={"truth_failed_at": total}))
        else:
            out.append(History(f"u{seed}-{i}", t, X, FEATURES, failed_at=total))
    return out


def _valid(estimates: list[RulEstimate], n: int, coverage: float) -> None:
    assert isinstance(estimates, list) and len(estimates) == n, "predict() gives one estimate per history"
    for e in estimates:
        assert isinstance(e, RulEstimate), "predict() returns RulEstimate objects"
        assert all(np.isfinite([e.lower, e.median, e.upper])), "estimates are finite"
        assert 0.0 <= e.lower <= e.median <= e.upper, "0 <= lower <= median <= upper"
        assert e.coverage == coverage, "estimates carry the model's coverage"


def _refused(call: object, what: str) -> None:
    try:
        call()  # type: ignore[operator]
    except InvalidInputError:
        return
    raise AssertionError(f"{what} must raise InvalidInputError")


def check_rul_model(model: RulModel) -> None:
    """Check the RUL model protocol on an unfitted model (it is cloned, never modified)."""
    cls = type(model)
    assert getattr(cls, "name", ""), f"{cls.__name__} needs a registry `name`"
    assert "Examples" in (cls.__doc__ or ""), f"{cls.__name__} docstring needs an Examples section"
    assert isinstance(model, RulModel), "the model must satisfy the RulModel protocol"
    clone = model.clone()  # type: ignore[attr-defined]
    assert not clone.is_fitted(), "check_rul_model takes an unfitted model"
    params = model.get_params()  # type: ignore[attr-defined]

    train = synthetic_runs(8, seed=3)
    test = synthetic_runs(6, seed=4, truncate=True)

    # predicting before fit is a clear error
    try:
        clone.predict(test)
    except NotFittedError:
        pass
    else:
        raise AssertionError("predict() before fit() must raise NotFittedError")

    # fit returns self and leaves its input alone
    before = [h.X.copy() for h in train]
    fitted = model.clone()  # type: ignore[attr-defined]
    assert fitted.fit(train) is fitted, "fit() must return self"
    assert all(np.array_equal(h.X, b) for h, b in zip(train, before, strict=True)), "fit() must not modify input"

    estimates = fitted.predict(test)
    _valid(estimates, len(test), model.coverage)
    # a unit near failure is estimated shorter than one that just started
    [early, late] = fitted.predict([_cut(train[0], 0.2), _cut(train[0], 0.95)])
    assert late.median < early.median, "a unit near failure must get a shorter RUL than a young one"
    # predicting twice gives the same answer; clone keeps params and drops state
    assert fitted.predict(test) == estimates, "predict() must not change the model"
    again = fitted.clone()
    assert again.get_params() == params and not again.is_fitted(), "clone() keeps params, drops fitted state"
    # fixed seeds: the same fit twice agrees; pickled models predict the same
    assert model.clone().fit(train).predict(test) == estimates, "fitting twice must agree"  # type: ignore[attr-defined]
    for restored in (pickle.loads(pickle.dumps(fitted)), copy.deepcopy(fitted)):
        assert restored.predict(test) == estimates, "a pickled model must predict the same"
    # a single row is enough to ask about
    _valid(fitted.predict([_cut(test[0], 0.0)]), 1, model.coverage)

    # bad input is refused with InvalidInputError
    holes = test[0].X.copy()
    holes[3, 0] = np.nan
    nan = History("bad", test[0].t, holes, FEATURES, failed_at=float(test[0].t[-1]) + 5.0)
    _refused(lambda: fitted.predict([]), "predict() of no histories")
    _refused(lambda: fitted.predict([nan]), "predict() of NaN values")
    _refused(lambda: fitted.predict([History("few", test[0].t, test[0].X[:, :2], FEATURES[:2])]), "wrong features")
    try:  # no run to failure: a model either refuses clearly or fits from its parameters alone
        empty = model.clone().fit([])  # type: ignore[attr-defined]
    except InvalidInputError:
        pass
    else:
        _valid(empty.predict(test), len(test), model.coverage)
    _refused(lambda: model.clone().fit([nan]), "fit() on NaN values")  # type: ignore[attr-defined]


def _cut(h: History, fraction: float) -> History:
    stop = max(1, round(fraction * len(h.t)))
    return History(h.unit, h.t[:stop], h.X[:stop], h.features)
