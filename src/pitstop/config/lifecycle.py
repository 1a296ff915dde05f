"""Settings of the model lifecycle (`[models]` in pitstop.toml): gates, retraining triggers, floors,
the prerequisites of the data a model is trained on, inputs left out of the drift verdict.

One table per model name under ``[models.twins]``; its ``gates`` are an array of tables, one per
rule, which replace the default gates of that model; ``floors`` add absolute limits to whichever
gates apply::

    [models.twins.hvac-twin]
    mode = "managed"
    accuracy_floor = 0.5
    floors = { r2 = 0.99 }
    drift_exclude = ["AMBT"]

    [[models.twins.hvac-twin.gates]]
    rule = "min"
    metric = "r2"
    value = 0.9

    [models.twins.hvac-twin.retrain]
    every_days = 90
    on_drift = "warn"
    accuracy_drop = 0.2

    [models.twins.hvac-twin.prerequisites]
    min_samples = 10000
    max_missing_share = 0.2
"""

from __future__ import annotations

import math
from collections import Counter
from typing import Annotated, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

Metric = Literal["r2", "mape", "mae"]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class MinGate(_Section):
    """The candidate's hold-out metric is at least `value`."""

    rule: Literal["min"]
    metric: Metric
    value: float


class MaxGate(_Section):
    """The candidate's hold-out metric is at most `value`."""

    rule: Literal["max"]
    metric: Metric
    value: float


class NotWorseGate(_Section):
    """No worse than the champion on the same hold-out."""

    rule: Literal["not_worse"]
    metric: Metric


class NotWorsePctGate(_Section):
    """No worse than the champion by more than `pct` percent."""

    rule: Literal["not_worse_pct"]
    metric: Metric
    pct: float = Field(ge=0, le=1000)


class LatencyGate(_Section):
    """P95 single-row prediction latency at most `value` milliseconds."""

    rule: Literal["latency_p95_ms"]
    value: float = Field(gt=0)


class SizeGate(_Section):
    """Artifact size at most `value` MB."""

    rule: Literal["size_mb"]
    value: float = Field(gt=0)


class ParityGate(_Section):
    """ONNX and native predictions agree within `tolerance` (relative) on the hold-out."""

    rule: Literal["onnx_parity"]
    tolerance: float = Field(default=1e-3, gt=0, le=1)


GateRule = Annotated[
    MinGate | MaxGate | NotWorseGate | NotWorsePctGate | LatencyGate | SizeGate | ParityGate,
    Field(discriminator="rule"),
]


class RetrainSettings(_Section):
    """When the lifecycle job retrains a model by itself. Every trigger that fires is recorded."""

    every_days: float | None = Field(
        default=None, gt=0, description="calendar: retrain when the champion was trained this many days ago"
    )
    on_drift: Literal["monitor", "warn", "critical"] | None = Field(
        default=None, description="retrain when input or residual drift reaches this band"
    )
    accuracy_drop: float | None = Field(
        default=None,
        gt=0,
        lt=1,
        description="retrain when live accuracy (hold-out MAE / live MAE) falls below 1 - this share",
    )
    min_interval_hours: float = Field(
        default=24.0, ge=0, description="at most one automatic retraining of the model this often"
    )
    window_days: float | None = Field(default=None, gt=0, description="train on the latest days only; empty: all")
    holdout: float = Field(default=0.2, ge=0.05, le=0.5, description="latest share of rows held out for the gates")
    trees: int = Field(default=300, ge=10, le=5000, description="boosting rounds per output")


class PrerequisiteSettings(_Section):
    """What the data must be before a candidate is trained; checked on the rows training would use
    (after known-faulty periods and maintenance windows are left out), per asset and input. A failed
    prerequisite trains nothing: the champion stays and the decision record says which one failed."""

    min_samples: int = Field(
        default=10_000, ge=0, le=1_000_000_000, description="complete rows (every input and output) at least"
    )
    max_missing_share: float = Field(
        default=0.2, ge=0, le=1, description="per asset and input: share of the asset's rows without the input"
    )
    max_flat_share: float = Field(
        default=0.9,
        gt=0,
        le=1,
        description="per asset and input: share of rows at its most common value (1.0 allows constant inputs)",
    )
    max_out_of_range_share: float = Field(
        default=0.01, ge=0, le=1, description="per asset and input: share of values outside the sensor's min/max"
    )


SensorName = Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[^\x00-\x1f]+$")]


class ModelSettings(_Section):
    mode: Literal["managed", "manual"] = Field(
        default="managed", description="managed: promote when every gate passes; manual: stay challenger"
    )
    gates: list[GateRule] | None = Field(
        default=None, description="acceptance rules replacing the defaults; empty list: no gates"
    )
    retrain: RetrainSettings = RetrainSettings()
    monitor: bool = Field(default=True, description="add the drift and model_accuracy health checks of the model")
    accuracy_floor: float | None = Field(
        default=0.5,
        gt=0,
        le=1,
        description="live accuracy below this opens model.accuracy:<name> (rolled back by rollback_model)",
    )
    rollback_below_floor: bool = Field(default=True, description="add the rule model.accuracy:<name> -> rollback_model")
    floors: dict[Metric, float] = Field(
        default_factory=dict,
        description="absolute limits on hold-out metrics added to the gates, e.g. { r2 = 0.99 }: r2 at least, "
        "mape and mae at most; a candidate past one is rejected even when it beats the champion",
    )
    prerequisites: PrerequisiteSettings = PrerequisiteSettings()
    drift_exclude: list[SensorName] = Field(
        default_factory=list,
        max_length=1000,
        description="inputs reported by drift but left out of its verdict and trigger (seasonal inputs, e.g. AMBT)",
    )

    @model_validator(mode="after")
    def _check(self) -> Self:
        for metric, value in self.floors.items():
            if not math.isfinite(value):
                raise ValueError(f"floors.{metric} must be a finite number, got {value}")
            if metric == "r2" and value > 1.0:
                raise ValueError(f"floors.r2 must be at most 1 (the R² of a perfect fit), got {value}")
            if metric != "r2" and value < 0.0:
                raise ValueError(f"floors.{metric} is an error: it must be at least 0, got {value}")
        twice = sorted(c for c, n in Counter(self.drift_exclude).items() if n > 1)
        if twice:
            raise ValueError(f"drift_exclude lists {twice} more than once")
        return self


class ModelsSettings(_Section):
    interval_minutes: float = Field(default=60.0, gt=0, description="how often the lifecycle job looks at models")
    schedule: bool = Field(default=True, description="run the lifecycle job (retraining triggers) from the scheduler")
    drift_window_days: float = Field(default=7.0, gt=0, description="current window of drift checks: latest days")
    accuracy_window_hours: float = Field(default=24.0, gt=0, description="live accuracy over the latest hours")
    twins: dict[Annotated[str, Field(pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,199}$")], ModelSettings] = Field(
        default_factory=dict, description="per model name, e.g. [models.twins.hvac-twin]"
    )
