"""Model lifecycle: registry of versions and aliases, gates, retraining, rollback."""

import pitstop.ml.registry.checks  # noqa: F401 - registers the drift and model_accuracy checks
from pitstop.ml.registry.gates import DEFAULT_RULES, Decision, Verdict
from pitstop.ml.registry.lifecycle import Mode, ModelLifecycle, RetrainResult, exclude
from pitstop.ml.registry.store import AliasMove, ModelCorrupt, ModelRegistry, ModelVersion

__all__ = [
    "DEFAULT_RULES",
    "AliasMove",
    "Decision",
    "Mode",
    "ModelCorrupt",
    "ModelLifecycle",
    "ModelRegistry",
    "ModelVersion",
    "RetrainResult",
    "Verdict",
    "exclude",
]
