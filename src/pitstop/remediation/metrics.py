"""Self-healing KPIs in /metrics, read from the record at scrape time."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

NAMES = (
    ("pitstop_remediation_attempts", "Remediation attempts that finished (healed or failed)", "attempts"),
    ("pitstop_remediation_healed", "Remediation attempts that healed and verified", "healed"),
    ("pitstop_remediation_success_ratio", "Healed share of finished remediation attempts", "success_rate"),
    ("pitstop_remediation_mttr_seconds", "Mean time from incident opened to healed", "mttr_s"),
)


class RemediationCollector(Collector):
    def __init__(self, kpis: Callable[[], dict[str, Any]]) -> None:
        self.kpis = kpis

    def describe(self) -> Iterator[Metric]:
        for name, doc, _ in NAMES:
            yield GaugeMetricFamily(name, doc, labels=["by", "name"])

    def collect(self) -> Iterator[Metric]:
        try:
            kpis = self.kpis()
        except Exception:  # the database is down: no self-healing metrics this scrape
            return
        for name, doc, field in NAMES:
            family = GaugeMetricFamily(name, doc, labels=["by", "name"])
            for by, groups in (("action", kpis["by_action"]), ("target", kpis["by_target"])):
                for label, values in groups.items():
                    if values[field] is not None:
                        family.add_metric([by, label], float(values[field]))
            yield family
