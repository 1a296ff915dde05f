"""The composition root: `build(settings)` wires every part of pitstop once. No globals."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry

from pitstop.background import ROLES, Background, Supervisor
from pitstop.backup import BackupRecords, BackupService
from pitstop.backup.records import FailedRunIncidents
from pitstop.config.models import Settings
from pitstop.core.clock import Clock, SystemClock
from pitstop.core.types import Severity
from pitstop.health.monitor import HealthMonitor
from pitstop.incidents import IncidentRegistry
from pitstop.incidents.feed import FeedDelivery, IncidentFeed
from pitstop.ingest.service import IngestService
from pitstop.maintenance import Maintenance
from pitstop.maintenance.recorder import LogRecorder
from pitstop.observability import Metrics
from pitstop.prognostics import Prognostics
from pitstop.remediation import RemediationEngine
from pitstop.scheduler import Scheduler, SchedulerRunner
from pitstop.storage.engine import Database
from pitstop.storage.repos.assets import AssetRepo
from pitstop.storage.repos.audit import AuditRepo
from pitstop.storage.repos.jobs import JobRepo
from pitstop.storage.repos.keys import KeyRepo
from pitstop.storage.repos.readings import ReadingRepo

if TYPE_CHECKING:  # heavy (scikit-learn, LightGBM): imported when built, not when the CLI starts
    from pitstop.alerts.service import AlertService
    from pitstop.fleet.worker import Fleet
    from pitstop.ml.registry import ModelLifecycle
    from pitstop.ml.registry.data import ModelData
    from pitstop.ml.registry.drift_reports import DriftReports
    from pitstop.ml.registry.watch import ModelWatch
    from pitstop.ml.scoring import StreamScorer
    from pitstop.oncall.escalation import Escalations

HEARTBEAT_JOB = "heartbeat"


@dataclass
class Pitstop:
    settings: Settings
    clock: Clock
    db: Database
    assets: AssetRepo
    readings: ReadingRepo
    keys: KeyRepo
    audit: AuditRepo
    jobs: JobRepo
    scheduler: Scheduler
    metrics: Metrics
    log: logging.Logger = field(default_factory=lambda: logging.getLogger("pitstop"))
    background: list[Background] = field(default_factory=list)
    part_roles: dict[str, frozenset[str]] = field(default_factory=dict)  # background part -> roles that run it
    fleet: Fleet | None = None  # [fleet]: per-asset jobs go to workers over NATS JetStream
    supervisor: Supervisor = field(default_factory=Supervisor)
    # Components: one attribute each, set in build() below.
    ingest: IngestService = field(init=False)
    incidents: IncidentRegistry = field(init=False)
    feed: IncidentFeed = field(init=False)
    alerts: AlertService = field(init=False)
    oncall: Escalations = field(init=False)
    health: HealthMonitor = field(init=False)
    backup: BackupService = field(init=False)
    maintenance: Maintenance = field(init=False)
    remediation: RemediationEngine = field(init=False)
    models: ModelLifecycle = field(init=False)
    model_data: ModelData = field(init=False)
    drift_reports: DriftReports = field(init=False)
    model_watch: ModelWatch = field(init=False)
    scoring: StreamScorer = field(init=False)
    prognostics: Prognostics = field(init=False)

    def add_background(self, part: Background, *, roles: set[str]) -> None:
        """A part that runs beside the API in the processes whose roles include one of `roles`."""
        self.background.append(part)
        self.part_roles[part.name] = frozenset(roles)

    def start_background(self, roles: frozenset[str] = frozenset(ROLES)) -> None:
        started = []
        for part in self.background:
            if self.part_roles.get(part.name, frozenset(ROLES)) & roles:
                part.start()
                started.append(part)
        self.background = started + [p for p in self.background if p not in started]
        self._started = started

    def scheduler_runner(self) -> SchedulerRunner:
        """The scheduler's threads, started by `pitstop serve` beside the background parts."""
        return SchedulerRunner(self.scheduler, self.supervisor, tick_seconds=self.settings.scheduler.tick_seconds)

    def report_background(self, name: str, problem: str | None) -> None:
        """A supervised thread failed (problem) or runs again (None): the incident
        `pitstop.background:<name>` opens or resolves."""
        key = f"pitstop.background:{name}"
        if problem is None:
            self.incidents.resolve(key, reason="the thread runs again", actor="pitstop")
            return
        self.incidents.open_or_update(
            key,
            severity=Severity.CRITICAL,
            title=f"pitstop's background thread {name} failed and is being restarted",
            detail=problem,
            source="supervisor",
        )

    def stop_background(self) -> None:
        for part in reversed(getattr(self, "_started", self.background)):
            try:
                part.stop()
            except Exception:
                self.log.exception("stopping %s failed", part.name)

    def close(self) -> None:
        self.stop_background()
        if self.fleet is not None:
            self.fleet.close()
        self.db.dispose()


def build(settings: Settings, *, clock: Clock | None = None, db: Database | None = None) -> Pitstop:
    from pitstop.ml.registry.watch import with_model_monitoring

    # Every part is built from the same settings, the models' checks and rollback rules included;
    # nothing changes them afterwards.
    settings = with_model_monitoring(settings)
    clock = clock or SystemClock()
    if db is None:
        db = Database(
            settings.database_url(),
            pool_size=settings.database.pool_size,
            sqlite_cache_mb=settings.database.sqlite_cache_mb,
        )
    jobs = JobRepo(db)
    scheduler = Scheduler(jobs, clock, lease_ttl=timedelta(seconds=settings.scheduler.lease_seconds))
    # The heartbeat job proves the scheduler runs; health checks read its last run.
    scheduler.add(HEARTBEAT_JOB, timedelta(seconds=30), lambda now: None)
    pitstop = Pitstop(
        settings=settings,
        clock=clock,
        db=db,
        assets=AssetRepo(db),
        readings=ReadingRepo(db),
        keys=KeyRepo(db),
        audit=AuditRepo(db),
        jobs=jobs,
        scheduler=scheduler,
        metrics=Metrics(CollectorRegistry(auto_describe=True)),
    )
    pitstop.incidents = IncidentRegistry(db, clock)
    pitstop.supervisor.report = pitstop.report_background
    # Components: each adds its services, scheduled jobs and background parts here.
    _build_ingest(pitstop)
    pitstop.health = HealthMonitor(
        settings,
        clock=clock,
        db=db,
        assets=pitstop.assets,
        readings=pitstop.readings,
        jobs=jobs,
        incidents=pitstop.incidents,
    )
    pitstop.health.context.extra["metrics"] = pitstop.metrics  # the predict_latency check reads the histograms
    if settings.health.enabled:
        # with a fleet, each asset's checks that run the same on any machine (its devices' links, its
        # readings) are the asset's job on the workers; the rest of the round stays here
        every, health = timedelta(seconds=settings.health.interval_s), pitstop.health
        job = per_asset(
            pitstop, "checks", every, health.assets_checked, health.scheduled, lambda: health.run_round(of_assets=False)
        )
        scheduler.add("health", every, job)
    pitstop.backup = BackupService(
        settings.backup, data_dir=settings.data_dir, db=db, clock=clock, records=BackupRecords(db)
    )
    pitstop.backup.schedule(scheduler)
    pitstop.maintenance = Maintenance(
        db,
        clock,
        data_dir=settings.data_dir,
        incidents=pitstop.incidents,
        assets=pitstop.assets,
        readings=pitstop.readings,
        jobs=jobs,
    )
    pitstop.maintenance.schedule_jobs(scheduler)
    pitstop.health.recommend = pitstop.maintenance.recommendations_hook(pitstop.health.recommend)
    pitstop.backup.records.listeners += [
        LogRecorder(pitstop.maintenance.log).backup_run,
        FailedRunIncidents(pitstop.incidents),
    ]
    _build_feed(pitstop)
    _build_oncall(pitstop)
    _build_remediation(pitstop)
    _build_scoring(pitstop)
    _build_models(pitstop)
    _build_procedures(pitstop)
    _build_prognostics(pitstop)
    _build_rollups(pitstop)
    _build_reports(pitstop)
    _build_kpis(pitstop)
    _build_fleet(pitstop)
    return pitstop


def _build_fleet(pitstop: Pitstop) -> None:
    """With [fleet]: the per-asset jobs (stream scoring, remaining useful life, an asset's checks) are
    published by the scheduler and run by the worker role's processes (pitstop/fleet); without it
    they run inline."""
    settings = pitstop.settings.fleet
    if settings is None:
        return
    from pitstop.fleet.jobs import JobRuns
    from pitstop.fleet.worker import Fleet

    runs = JobRuns(pitstop.db)
    pitstop.fleet = Fleet(
        settings,
        leases=pitstop.jobs,
        runs=runs,
        clock=pitstop.clock,
        metrics=pitstop.metrics,
        instance=pitstop.scheduler.instance,
        handlers={
            "scoring": lambda asset, until: pitstop.scoring.run_asset(asset, until),
            "rul": lambda asset, until: pitstop.prognostics.run(until, asset=asset, plan=False),
            "checks": lambda asset, until: pitstop.health.run_asset(asset, until),
        },
    )
    pitstop.add_background(pitstop.fleet.worker(pitstop.supervisor), roles={"worker"})
    pitstop.scheduler.add("fleet-runs", timedelta(hours=1), runs.prune)


def per_asset(
    pitstop: Pitstop,
    kind: str,
    every: timedelta,
    assets: Callable[[], list[str]],
    inline: Callable[[datetime], object],
    after: Callable[[], object] | None = None,
) -> Callable[[datetime], None]:
    """A scheduled per-asset job: published to the fleet's workers when there is a fleet (then
    `after` runs here, what must run once for all assets), else run here."""

    def job(now: datetime) -> None:
        if pitstop.fleet is None:
            inline(now)
            return
        pitstop.fleet.fan_out(kind, assets(), now, every)
        if after is not None:
            after()

    return job


def _build_kpis(pitstop: Pitstop) -> None:
    """The guides' KPI table in /metrics (check status, incidents, drift, backups, ingest lag), read at scrape time."""
    from pitstop.observability_kpis import KpiCollector

    collector = KpiCollector(
        db=pitstop.db,
        clock=pitstop.clock,
        backup=pitstop.backup,
        expected_checks=lambda: [(s.check, s.target) for s in pitstop.health.specs()],
        stale_after=timedelta(seconds=3 * pitstop.settings.health.interval_s),  # as the health page's
    )
    pitstop.metrics.registry.register(collector)


def _build_reports(pitstop: Pitstop) -> None:
    """The monthly report, made, archived and e-mailed by a job (maintenance/report_delivery.py)."""
    settings = pitstop.settings
    if not settings.reports.schedule:
        return
    from pitstop.maintenance.report_delivery import JOB, JOB_EVERY, ReportDelivery

    reports = ReportDelivery(
        settings.reports,
        pitstop.maintenance,
        data_dir=settings.data_dir,
        predictions=pitstop.prognostics.calibration,
    )
    pitstop.scheduler.add(JOB, JOB_EVERY, reports.scheduled)


def _build_feed(pitstop: Pitstop) -> None:
    """Incident transitions to their subscribers: every incident, whatever opened it, to the alert
    service (`pitstop.alerts.service`; its reminder job repeats what stays open), and every
    incident's life to the maintenance log."""
    from pitstop.alerts.service import REMIND_EVERY, SUBSCRIBER, AlertService
    from pitstop.oncall.contacts import contact_notifiers

    settings = pitstop.settings
    pitstop.feed = IncidentFeed(pitstop.db, pitstop.clock)
    pitstop.alerts = AlertService(
        settings,
        db=pitstop.db,
        clock=pitstop.clock,
        assets=pitstop.assets,
        incidents=pitstop.incidents,
        rule_for=pitstop.health.policy.rule_for,
        contacts=contact_notifiers(settings.oncall, settings.health.alerts.channels),
    )
    pitstop.alerts.label_sources.append(pitstop.health.alert_labels)
    pitstop.feed.subscribe(SUBSCRIBER, pitstop.alerts)
    pitstop.feed.subscribe("maintenance-log", pitstop.maintenance.log.record_transitions)
    pitstop.scheduler.add("alerts", REMIND_EVERY, pitstop.alerts.scheduled)
    scheduling = settings.scheduler.enabled
    delivery = FeedDelivery(
        pitstop.feed, pitstop.supervisor, leading=lambda: not scheduling or pitstop.scheduler.is_leader
    )
    pitstop.incidents.listeners.append(delivery.wake)
    # One process hands the feed out: the scheduler's (a second deliverer would send alerts twice).
    pitstop.add_background(delivery, roles={"scheduler"})


def _build_oncall(pitstop: Pitstop) -> None:
    """On-call and escalation (`pitstop.oncall`): pages from the incident feed and a scheduled job,
    through the alert router; acknowledge links signed with the link secret."""
    from functools import partial

    from pitstop.oncall.escalation import SUBSCRIBER, Escalations
    from pitstop.oncall.links import AckLinks, load_secret

    settings = pitstop.settings
    cfg = settings.oncall
    secret = cfg.link_secret.get_secret_value() if cfg.link_secret else None
    links = AckLinks(
        partial(load_secret, settings.data_dir, secret),
        cfg.public_url or f"http://{settings.api.host}:{settings.api.port}",
        timedelta(hours=cfg.link_valid_hours),
    )
    pitstop.oncall = Escalations(
        cfg,
        db=pitstop.db,
        clock=pitstop.clock,
        incidents=pitstop.incidents,
        router=pitstop.alerts.router,
        labels=pitstop.alerts.labels,
        links=links,
    )
    pitstop.feed.subscribe(SUBSCRIBER, pitstop.oncall)
    # also without policies: escalations started under an earlier configuration are closed
    pitstop.scheduler.add("oncall", timedelta(seconds=cfg.every_s), pitstop.oncall.scheduled)


def _build_procedures(pitstop: Pitstop) -> None:
    """Procedure steps reach the rest of pitstop: checks in the health monitor's context (settings,
    metrics, models, the backup service), pitstop's own operations in-process, the self-healing
    engine's actions, and placeholders' values from the settings and the checks configured per asset."""
    from pitstop.maintenance.actions import StepActions
    from pitstop.maintenance.operations import Operations, champions_of
    from pitstop.maintenance.templating import Sources, pitstop_values

    runner = pitstop.maintenance.runner
    runner.check_context = pitstop.maintenance.check_context_from(pitstop.health.context, backup=pitstop.backup)
    runner.sources = Sources(
        asset_row=pitstop.assets.get_asset,
        pitstop=pitstop_values(pitstop.settings),
        checks=lambda: [(s.check, s.target, s.asset) for s in pitstop.health.specs()],
    )
    runner.operations = Operations(
        backup=pitstop.backup,
        health=pitstop.health,
        context=runner.check_context,
        champions=champions_of(pitstop.models.registry),
    )
    runner.action_runner = StepActions(pitstop.remediation)


def _build_rollups(pitstop: Pitstop) -> None:
    """5-minute and hourly roll-ups of readings for the dashboard's long plots, kept up to date by a job;
    on PostgreSQL the readings' monthly partitions too (created ahead, expired ones dropped)."""
    from pitstop.storage.repos.rollups import JOB_EVERY, RollupRepo

    pitstop.scheduler.add("rollups", JOB_EVERY, RollupRepo(pitstop.db).scheduled)
    if pitstop.db.dialect == "postgresql":  # SQLite keeps one readings table: no job, nothing written
        from pitstop.storage.partitions import JOB_EVERY as PARTITIONS_EVERY
        from pitstop.storage.partitions import ReadingPartitions

        cfg = pitstop.settings.database
        retention = None if cfg.readings_retention_days is None else timedelta(days=cfg.readings_retention_days)
        partitions = ReadingPartitions(pitstop.db, ahead_months=cfg.partitions_ahead_months, retention=retention)
        pitstop.scheduler.add("partitions", PARTITIONS_EVERY, partitions.scheduled)


def _build_prognostics(pitstop: Pitstop) -> None:
    """Remaining useful life per asset, from the scheduler; low estimates become incidents and work orders."""
    settings = pitstop.settings.prognostics
    pitstop.prognostics = Prognostics(
        settings,
        db=pitstop.db,
        clock=pitstop.clock,
        assets=pitstop.assets,
        incidents=pitstop.incidents,
        maintenance=pitstop.maintenance,
    )
    if settings.enabled:
        every = timedelta(minutes=settings.interval_minutes)
        # with a fleet, the workers estimate and act per asset; the plan of work orders is made here,
        # once for all (several workers re-planning the same orders at once would undo each other)
        prognostics = pitstop.prognostics
        job = per_asset(pitstop, "rul", every, prognostics.monitored, prognostics.scheduled, prognostics.plan)
        pitstop.scheduler.add("prognostics", every, job)


def _build_models(pitstop: Pitstop) -> None:
    """The model lifecycle: drift through the alert policy, the drift / model_accuracy checks, and the
    lifecycle job (calendar, drift and accuracy triggers) for models under [models.twins]. Their checks
    and the model.accuracy -> rollback_model rules are in the settings (`with_model_monitoring`)."""
    from pitstop.ml.registry import ModelLifecycle, ModelRegistry
    from pitstop.ml.registry.data import ModelData
    from pitstop.ml.registry.drift_reports import DRIFT_EVERY, DriftReports
    from pitstop.ml.registry.drift_reports import JOB as DRIFT_REPORTS_JOB
    from pitstop.ml.registry.serving import ModelServer
    from pitstop.ml.registry.watch import ModelWatch, drift_through_checks

    settings = pitstop.settings.models
    registry = ModelRegistry(pitstop.db, pitstop.clock, data_dir=pitstop.settings.data_dir, incidents=pitstop.incidents)
    gates = {name: [g.model_dump() for g in cfg.gates] for name, cfg in settings.twins.items() if cfg.gates is not None}
    recorder = LogRecorder(pitstop.maintenance.log)
    registry.on_move.append(recorder.model_move)
    registry.on_decision.append(recorder.model_decision)
    registry.on_rebaseline.append(recorder.model_rebaseline)
    pitstop.models = ModelLifecycle(
        registry, pitstop.incidents, rules=gates, report_drift=drift_through_checks(pitstop.health)
    )
    pitstop.models.server = ModelServer(registry, pitstop.clock, pitstop.metrics.registry, sensors=pitstop.assets)
    pitstop.model_data = ModelData(
        db=pitstop.db,
        clock=pitstop.clock,
        assets=pitstop.assets,
        readings=pitstop.readings,
        incidents=pitstop.incidents,
    )
    watch = ModelWatch(settings, lifecycle=pitstop.models, data=pitstop.model_data, clock=pitstop.clock)
    pitstop.model_watch = watch
    watch.events.listeners.append(recorder.asset_event)
    # The drift and model_accuracy checks reach the models through the check context. The health
    # monitor is built first (drift reports go through it), so the watch joins its context here.
    pitstop.health.context.extra["models"] = watch
    if settings.schedule and settings.twins:
        pitstop.scheduler.add("models", timedelta(minutes=settings.interval_minutes), watch.scheduled)
    pitstop.drift_reports = DriftReports(
        pitstop.models,
        pitstop.model_data,
        db=pitstop.db,
        clock=pitstop.clock,
        window_days=settings.drift_window_days,
    )
    pitstop.scheduler.add(DRIFT_REPORTS_JOB, DRIFT_EVERY, pitstop.drift_reports.scheduled)


def _build_scoring(pitstop: Pitstop) -> None:
    """Stream scoring: every minute, each asset's new readings against its baseline; findings open incidents."""
    from pitstop.ml.scoring import StreamScorer

    settings = pitstop.settings.scoring
    pitstop.scoring = StreamScorer(
        db=pitstop.db,
        clock=pitstop.clock,
        assets=pitstop.assets,
        readings=pitstop.readings,
        incidents=pitstop.incidents,
        baseline=timedelta(hours=settings.baseline_hours),
        window=timedelta(minutes=settings.window_minutes),
    )

    every = timedelta(seconds=settings.every_s)
    names = lambda: [a.name for a in pitstop.assets.list_assets()]  # noqa: E731
    pitstop.scheduler.add("scoring", every, per_asset(pitstop, "scoring", every, names, pitstop.scoring.run))


def _build_remediation(pitstop: Pitstop) -> None:
    from pitstop.remediation import check_verifier, escalator, maintenance_logger, own_links
    from pitstop.remediation.metrics import RemediationCollector

    settings = pitstop.settings.remediation
    maintenance = pitstop.maintenance if hasattr(pitstop, "maintenance") else None
    pitstop.remediation = RemediationEngine(
        settings,
        clock=pitstop.clock,
        db=pitstop.db,
        incidents=pitstop.incidents,
        verifier=check_verifier(pitstop.health),
        escalate=escalator(pitstop.alerts.router, maintenance, pitstop.clock),
        links=lambda: own_links(pitstop.background, pitstop.db),
        on_finished=maintenance_logger(maintenance) if maintenance is not None else None,
    )
    pitstop.metrics.registry.register(RemediationCollector(pitstop.remediation.kpis))
    if settings.enabled and settings.rules:
        pitstop.scheduler.add("remediation", timedelta(seconds=settings.interval_s), pitstop.remediation.scheduled)


def _build_ingest(pitstop: Pitstop) -> None:
    from pitstop.ingest.service import SpoolFlusher
    from pitstop.ingest.spool import Spool
    from pitstop.storage.repos.quarantine import QuarantineRepo

    settings = pitstop.settings
    pitstop.ingest = IngestService(
        db=pitstop.db,
        assets=pitstop.assets,
        readings=pitstop.readings,
        quarantine=QuarantineRepo(pitstop.db),
        spool=Spool(settings.data_dir / "spool", settings.ingest.spool_max_bytes),
        clock=pitstop.clock,
        metrics=pitstop.metrics,
        settings=settings.ingest,
    )
    pitstop.add_background(SpoolFlusher(pitstop.ingest, supervisor=pitstop.supervisor), roles={"api", "ingest"})
    if settings.mqtt is not None:
        from pitstop.ingest.mqtt import MqttSubscriber

        pitstop.add_background(
            MqttSubscriber(settings.mqtt, pitstop.ingest, pitstop.metrics, supervisor=pitstop.supervisor),
            roles={"ingest"},
        )
