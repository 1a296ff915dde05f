"""Health checks: what pitstop sees of hosts, services, databases, links and data, as CheckResults."""

from pitstop.health.base import Check, CheckContext, CheckResult, Threshold, checks

__all__ = ["Check", "CheckContext", "CheckResult", "Threshold", "checks"]
