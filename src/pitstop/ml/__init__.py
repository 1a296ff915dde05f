"""Machine learning for condition monitoring: detectors, thresholds, twins, explanations."""
