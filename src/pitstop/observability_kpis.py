"""The guides' KPI table in /metrics, read from pitstop's records when Prometheus scrapes.

A custom collector (`KpiCollector`) instead of gauges kept up to date: the values are those in the
database and the backup destination, so every pitstop process behind a load balancer reports the
same ones, also right after a restart. What a scrape shows:

- `pitstop_check_status{check,target}`: 0 ok, 1 warning, 2 critical, 3 unknown; a configured
  target without a result in its last 3 health intervals is unknown (as on the health page);
- `pitstop_incidents_open{severity,area,state}`: unresolved incidents (open, acknowledged or
  suppressed); area is the key's part before the first dot (`disk`, `asset`, `backup`, ...);
- `pitstop_model_champion_version{model}`, and per input of the champion's stored drift report
  `pitstop_model_psi{model,feature}` and `pitstop_model_psi_excess{model,feature}` (the PSI past
  what sampling noise alone gives, which the drift bands judge; features in `drift_exclude` left out);
- `pitstop_backup_age_seconds{source}`: the age of each configured source's newest good copy
  (+Inf: none yet); `pitstop_backup_drill_rto_seconds` (the measured recovery time of the last
  passed restore drill), `pitstop_backup_rto_objective_seconds`, `pitstop_backup_drill_passed`
  (the newest drill: 1 passed, 0 failed);
- `pitstop_ingest_lag_seconds{asset}`: time since the newest reading of any sensor of the asset
  (assets that never sent one have no series: the freshness check reports them);
- `pitstop_quarantine_rows{reason}`: readings waiting in the quarantine;
- `pitstop_kpi_read_ok{part}` and `pitstop_kpi_read_seconds{part}`: whether each part could be
  read this time (0: e.g. the database did not answer; its families are left out) and what it cost.

Each part is one query, or two (drills), and the check part reads only the last `stale_after` of
results, so a scrape costs the same with a month of history. Backups read the sets on disk and
their record (`BackupService.good_copies`, what the backup checks judge by), which grows with the
files of a source: when the copies were made is kept for `backup_cache_s` (60 s). The whole is
kept for `cache_s` (5 s): several Prometheus servers, or a dashboard refreshing, read it once.
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime, timedelta
from typing import Any

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import and_, func, or_, select

from pitstop.backup.service import BackupService
from pitstop.core.clock import Clock
from pitstop.core.types import Status
from pitstop.incidents.models import IncidentState
from pitstop.ingest.validate import REASONS
from pitstop.storage.engine import Database
from pitstop.storage.repos.quarantine import QuarantineRepo
from pitstop.storage.schema import (
    assets,
    check_results,
    incidents,
    model_alias_moves,
    model_drift,
    readings,
    sensors,
)

log = logging.getLogger("pitstop.metrics")

# Reading every part of the demo installation takes 3 to 4 ms on SQLite, 7 to 9 ms on PostgreSQL;
# the good copies of a backup source of 5,000 files take 0.2 s more (README, Health). A few seconds
# of reuse bound the cost of many scrapers without hiding a change for long.
CACHE_S = 5.0
BACKUP_CACHE_S = 60.0
STATUS_VALUE = {Status.HEALTHY: 0, Status.WARNING: 1, Status.CRITICAL: 2, Status.UNKNOWN: 3}
TARGET_CHARS = 500  # what the result store keeps of a target

FAMILIES = {
    "pitstop_check_status": (
        "Latest status per check target: 0 ok, 1 warning, 2 critical, 3 unknown",
        ["check", "target"],
    ),
    "pitstop_incidents_open": ("Unresolved incidents by severity, area and state", ["severity", "area", "state"]),
    "pitstop_model_champion_version": ("The version the champion alias points to", ["model"]),
    "pitstop_model_psi": ("PSI per input of the champion's latest drift report", ["model", "feature"]),
    "pitstop_model_psi_excess": (
        "PSI past sampling noise per input counted by the drift verdict (champion's latest report)",
        ["model", "feature"],
    ),
    "pitstop_backup_age_seconds": ("Age of each source's newest good backup copy (+Inf: none)", ["source"]),
    "pitstop_backup_drill_rto_seconds": ("Measured recovery time of the last passed restore drill", []),
    "pitstop_backup_rto_objective_seconds": ("The recovery time objective (backup.rto_minutes)", []),
    "pitstop_backup_drill_passed": ("1 when the newest restore drill passed, 0 when it failed", []),
    "pitstop_ingest_lag_seconds": ("Seconds since the newest reading of the asset", ["asset"]),
    "pitstop_quarantine_rows": ("Readings waiting in the quarantine, by reason", ["reason"]),
    "pitstop_kpi_read_ok": ("1 when the KPI part was read for this scrape, 0 when reading it failed", ["part"]),
    "pitstop_kpi_read_seconds": ("Time taken to read the KPI part", ["part"]),
}


def _family(name: str) -> GaugeMetricFamily:
    doc, labels = FAMILIES[name]
    return GaugeMetricFamily(name, doc, labels=labels)


class KpiCollector(Collector):
    """`expected_checks` gives the configured (check, target) pairs (`HealthMonitor.specs`);
    `stale_after`: a result older than this is unknown."""

    def __init__(
        self,
        *,
        db: Database,
        clock: Clock,
        backup: BackupService,
        expected_checks: Callable[[], Iterable[tuple[str, str]]],
        stale_after: timedelta,
        cache_s: float = CACHE_S,
        backup_cache_s: float = BACKUP_CACHE_S,
    ) -> None:
        self.db = db
        self.clock = clock
        self.backup = backup
        self.expected_checks = expected_checks
        self.stale_after = stale_after
        self.cache_s = cache_s
        self.backup_cache_s = backup_cache_s
        self._copies: dict[str, datetime | None] | None = None  # source -> when its newest good copy was made
        self._copies_at = 0.0
        self._lock = threading.Lock()  # one reader at a time; the others take its result
        self._cached: list[Metric] | None = None
        self._read_at = 0.0
        self._failed: set[str] = set()
        self.parts: dict[str, Callable[[datetime], list[Metric]]] = {
            "checks": self._checks,
            "incidents": self._incidents,
            "models": self._models,
            "backups": self._backups,
            "drills": self._drills,
            "ingest": self._ingest,
            "quarantine": self._quarantine,
        }

    def describe(self) -> Iterator[Metric]:
        # Names only: registering must not read the database.
        for name in FAMILIES:
            yield _family(name)

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            if self._cached is None or self.clock.monotonic() - self._read_at >= self.cache_s:
                self._cached = self.read()
                self._read_at = self.clock.monotonic()
            return iter(self._cached)

    def read(self) -> list[Metric]:
        """Every part now, without the cache."""
        now = self.clock.now()
        out: list[Metric] = []
        ok, seconds = _family("pitstop_kpi_read_ok"), _family("pitstop_kpi_read_seconds")
        for part, read in self.parts.items():
            start = time.perf_counter()
            try:
                out += read(now)
            except Exception as exc:  # the database or the backup destination is away: the other parts still show
                ok.add_metric([part], 0)
                if part not in self._failed:
                    log.warning("the %s KPIs could not be read for /metrics: %s", part, exc)
                self._failed.add(part)
            else:
                ok.add_metric([part], 1)
                self._failed.discard(part)
            seconds.add_metric([part], time.perf_counter() - start)
        return [*out, ok, seconds]

    # -- the parts --------------------------------------------------------------------------------

    def _checks(self, now: datetime) -> list[Metric]:
        # Only the results of the last `stale_after` (an index range on checked_at), not the latest
        # per target over the whole history: older ones say "unknown" anyway.
        query = (
            select(check_results.c.check_name, check_results.c.target, check_results.c.status)
            .where(check_results.c.checked_at >= now - self.stale_after)
            .order_by(check_results.c.checked_at, check_results.c.id)  # the index's order: no scan, no sort
        )
        with self.db.connect() as conn:
            fresh = {(c, t): Status(s) for c, t, s in conn.execute(query)}  # the newest wins
        expected = {(c, t[:TARGET_CHARS]) for c, t in self.expected_checks()}
        family = _family("pitstop_check_status")
        for key in sorted(expected | fresh.keys()):
            family.add_metric(list(key), STATUS_VALUE[fresh.get(key, Status.UNKNOWN)])
        return [family]

    def _incidents(self, now: datetime) -> list[Metric]:
        query = select(incidents.c.key, incidents.c.severity, incidents.c.state).where(
            incidents.c.state != IncidentState.RESOLVED.value
        )
        with self.db.connect() as conn:
            counts = Counter((sev, key.split(".", 1)[0], state) for key, sev, state in conn.execute(query))
        family = _family("pitstop_incidents_open")
        for labels, n in sorted(counts.items()):
            family.add_metric(list(labels), n)
        return [family]

    def _models(self, now: datetime) -> list[Metric]:
        latest = (
            select(func.max(model_alias_moves.c.id).label("id"))
            .where(model_alias_moves.c.alias == "champion")
            .group_by(model_alias_moves.c.name)
            .subquery()
        )
        champions_query = select(model_alias_moves.c.name, model_alias_moves.c.to_version).join(
            latest, latest.c.id == model_alias_moves.c.id
        )
        with self.db.connect() as conn:
            champions = {n: int(v) for n, v in conn.execute(champions_query) if v is not None}
            reports = []
            if champions:
                wanted = or_(*(and_(model_drift.c.name == n, model_drift.c.version == v) for n, v in champions.items()))
                reports = list(conn.execute(select(model_drift.c.name, model_drift.c.result).where(wanted)))
        version = _family("pitstop_model_champion_version")
        for name, v in sorted(champions.items()):
            version.add_metric([name], v)
        psi, excess = _family("pitstop_model_psi"), _family("pitstop_model_psi_excess")
        for name, result in sorted(reports):
            for feature in _features(result):
                psi.add_metric([name, feature["feature"]], float(feature["psi"]))
                if not feature.get("excluded"):
                    excess.add_metric([name, feature["feature"]], float(feature["excess_psi"]))
        return [version, psi, excess]

    def _backups(self, now: datetime) -> list[Metric]:
        # The sets' manifests are read and every file of the newest good copy is looked at (a stat):
        # 0.2 s for a source of 5,000 files. New sets come hours apart, so when the copies are is
        # kept for `backup_cache_s`; their ages are computed for every read.
        mono = self.clock.monotonic()
        if self._copies is None or mono - self._copies_at >= self.backup_cache_s:
            names = list(self.backup.sources())
            copies = self.backup.good_copies(names)
            self._copies = {name: copies[name].at if name in copies else None for name in names}
            self._copies_at = mono
        family = _family("pitstop_backup_age_seconds")
        for name, at in sorted(self._copies.items()):
            family.add_metric([name], math.inf if at is None else max(0.0, (now - at).total_seconds()))
        return [family]

    def _drills(self, now: datetime) -> list[Metric]:
        records = self.backup.records
        newest = records.last("drill")
        passed = newest if newest is None or newest.outcome == "ok" else records.last("drill", outcome="ok")
        objective = _family("pitstop_backup_rto_objective_seconds")
        objective.add_metric([], self.backup.settings.rto_minutes * 60)
        out: list[Metric] = [objective]
        if newest is not None:
            state = _family("pitstop_backup_drill_passed")
            state.add_metric([], 1 if newest.outcome == "ok" else 0)
            out.append(state)
        if passed is not None:
            rto = _family("pitstop_backup_drill_rto_seconds")
            rto.add_metric([], passed.seconds)
            out.append(rto)
        return out

    def _ingest(self, now: datetime) -> list[Metric]:
        # The newest reading of each sensor is one index lookup (readings' key is sensor, time); no
        # GROUP BY over the readings table.
        newest = select(func.max(readings.c.ts)).where(readings.c.sensor_id == sensors.c.id).scalar_subquery()
        per_sensor = select(sensors.c.asset_id, newest.label("ts")).subquery()
        query = (
            select(assets.c.name, func.max(per_sensor.c.ts))
            .join(per_sensor, per_sensor.c.asset_id == assets.c.id)
            .group_by(assets.c.name)
            .order_by(assets.c.name)
        )
        now_us = now.timestamp() * 1e6
        family = _family("pitstop_ingest_lag_seconds")
        with self.db.connect() as conn:
            for name, ts in conn.execute(query):
                if ts is not None:
                    family.add_metric([name], max(0.0, (now_us - int(ts)) / 1e6))
        return [family]

    def _quarantine(self, now: datetime) -> list[Metric]:
        counts = QuarantineRepo(self.db).counts()
        family = _family("pitstop_quarantine_rows")
        for reason in sorted({*REASONS, *counts}):  # every reason, 0 included: a graph starts at zero
            family.add_metric([reason], counts.get(reason, 0))
        return [family]


def _features(result: str) -> list[dict[str, Any]]:
    """The input features of a stored drift report; none when it holds an error instead."""
    report = json.loads(result).get("report")
    features = report.get("features") if isinstance(report, dict) else None
    return [f for f in features if isinstance(f, dict) and "feature" in f] if isinstance(features, list) else []
