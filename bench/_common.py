"""Shared helpers of the monitoring benchmarks: where the data is, how to skip, how to print."""

from __future__ import annotations

import json
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")

ROOT = Path(__file__).resolve().parents[1]
DATASETS = (ROOT / ".." / "shared" / "datasets").resolve()


def dataset(rel: str) -> Path:
    """The path of a benchmark data file or folder; exits cleanly (status 0) when it is absent."""
    path = DATASETS / rel
    if not path.exists():
        print(
            json.dumps({"skipped": True, "reason": f"benchmark data not found: {path} (see shared/datasets/README.md)"})
        )
        sys.exit(0)
    return path


def emit(result: dict[str, Any]) -> None:
    result.setdefault("python", platform.python_version())
    print(json.dumps(result, indent=2, default=float))


def optional(module: str) -> Any | None:
    """Import an optional comparison library (PyOD, river) or return None."""
    try:
        return __import__(module)
    except ImportError:
        return None


def timed(func: Callable[[], T], repeat: int) -> tuple[float, T]:
    """The median seconds of ``repeat`` calls, and the last call's result."""
    runs = []
    for _ in range(repeat):
        start = time.perf_counter()
        result = func()
        runs.append(time.perf_counter() - start)
    return statistics.median(runs), result
