"""Input checks shared by the RUL models: bad histories are `InvalidInputError`, never a crash later."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NoReturn

import numpy as np

from pitstop.ml.base import InvalidInputError
from pitstop.ml.rul.base import History


def invalid(message: str) -> NoReturn:
    raise InvalidInputError(message)


def check_histories(histories: Sequence[History]) -> list[History]:
    """At least one history, each a `History` with one row or more of finite values."""
    if isinstance(histories, History):
        histories = [histories]
    hs = list(histories)
    if not hs:
        invalid("expected at least one history")
    for h in hs:
        if not isinstance(h, History):
            invalid(f"expected History objects, got {type(h).__name__}")
        if len(h.t) == 0:
            invalid(f"history {h.unit!r} has no rows")
        if not (np.all(np.isfinite(h.t)) and np.all(np.isfinite(h.X))):
            invalid(f"history {h.unit!r} holds NaN or infinite values")
        if len(h.t) > 1 and np.any(np.diff(h.t) <= 0):
            invalid(f"history {h.unit!r}: times must increase")
        if h.failed_at is not None and (not np.isfinite(h.failed_at) or h.failed_at < h.t[-1]):
            invalid(f"history {h.unit!r}: failed_at must be finite and not before its last row")
    return hs


def check_same_features(histories: Sequence[History], names: tuple[str, ...]) -> None:
    for h in histories:
        if tuple(h.features) != tuple(names):
            invalid(f"history {h.unit!r} has features {h.features}, expected {names}")


def runs_to_failure(histories: Sequence[History], *, minimum: int) -> list[History]:
    runs = [h for h in histories if h.failed_at is not None]
    if len(runs) < minimum:
        invalid(f"fitting needs at least {minimum} run(s) to failure, got {len(runs)}")
    return runs
