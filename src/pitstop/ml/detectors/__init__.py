"""Anomaly detectors. Built-ins are listed in `BUILTINS` and loaded into a registry by name."""

from __future__ import annotations

from pitstop.core.registry import Registry
from pitstop.ml.detectors.base import Detector
from pitstop.ml.detectors.ewma import EwmaZScoreDetector
from pitstop.ml.detectors.iforest import IsolationForestDetector
from pitstop.ml.detectors.mad import RobustZScoreDetector
from pitstop.ml.detectors.novelty import ValueNoveltyDetector
from pitstop.ml.detectors.pca import PcaDetector
from pitstop.ml.detectors.reconstruction import ReconstructionDetector

BUILTINS: tuple[str, ...] = (
    "pitstop.ml.detectors.mad:RobustZScoreDetector",
    "pitstop.ml.detectors.pca:PcaDetector",
    "pitstop.ml.detectors.iforest:IsolationForestDetector",
    "pitstop.ml.detectors.reconstruction:ReconstructionDetector",
    "pitstop.ml.detectors.ewma:EwmaZScoreDetector",
    "pitstop.ml.detectors.novelty:ValueNoveltyDetector",
)


def detector_registry() -> Registry[Detector]:
    """A fresh registry holding the built-in detectors."""
    registry: Registry[Detector] = Registry("detector", "pitstop.detectors")
    registry.load(BUILTINS)
    return registry


__all__ = [
    "BUILTINS",
    "Detector",
    "EwmaZScoreDetector",
    "IsolationForestDetector",
    "PcaDetector",
    "ReconstructionDetector",
    "RobustZScoreDetector",
    "ValueNoveltyDetector",
    "detector_registry",
]
