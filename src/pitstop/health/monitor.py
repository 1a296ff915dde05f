"""The health loop: run the checks, store the results, judge them with the alert rules (for,
N-of-M, hysteresis, flapping) and keep incidents in step: a problem opens its incident, a change of
severity updates it, the end of the problem resolves it. One round per scheduler tick. Who is told
is the alert service's, as for every other incident (`pitstop.alerts.service`)."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import delete, insert, select

from pitstop.config.health import AlertRuleSettings
from pitstop.config.models import Settings
from pitstop.core.clock import Clock
from pitstop.core.types import Severity, Status
from pitstop.health.base import CheckContext, CheckResult, severity_of
from pitstop.health.diagnostics import Recommend, Report, builtin_recommendations, report
from pitstop.health.runner import CheckRunner
from pitstop.health.specs import CheckSpec, alert_rules, resolve
from pitstop.health.store import ResultStore
from pitstop.incidents import IncidentRegistry
from pitstop.incidents.models import parse_key
from pitstop.incidents.policy import AlertPolicy, AlertRule, Observation, Step
from pitstop.storage.engine import Database
from pitstop.storage.repos.assets import AssetRepo
from pitstop.storage.repos.jobs import JobRepo
from pitstop.storage.repos.readings import ReadingRepo
from pitstop.storage.schema import alert_states


def _rule(s: AlertRuleSettings) -> AlertRule:
    return AlertRule(**s.model_dump())


@dataclass
class Round:
    results: list[CheckResult]
    steps: list[Step] = field(default_factory=list)


class HealthMonitor:
    def __init__(
        self,
        settings: Settings,
        *,
        clock: Clock,
        db: Database,
        assets: AssetRepo,
        readings: ReadingRepo,
        jobs: JobRepo,
        incidents: IncidentRegistry,
    ) -> None:
        self.settings = settings
        self.cfg = settings.health
        self.clock = clock
        self.db = db
        self.assets = assets
        self.incidents = incidents
        self.results = ResultStore(db)
        alerts = self.cfg.alerts
        self.policy = AlertPolicy(
            _rule(alerts.rule),
            rules={k: _rule(v) for k, v in alert_rules(self.cfg).items()},  # profiles' < the user's
        )
        self.recommend: Recommend = builtin_recommendations
        self.context = CheckContext(clock=clock, db=db, settings=settings, readings=readings, assets=assets, jobs=jobs)
        self._runner: CheckRunner | None = None
        self._runner_ids: tuple[str, ...] = ()
        self._labels: dict[tuple[str, str], dict[str, str]] = {}
        self._states_loaded = False
        self._part_runners: dict[str, tuple[tuple[str, ...], CheckRunner]] = {}  # "": this process's part
        self._judging = threading.Lock()

    # -- checks ---------------------------------------------------------------------------------

    def specs(self) -> list[CheckSpec]:
        return resolve(
            self.cfg, data_dir=self.settings.data_dir, assets=self.assets.list_assets(), sensors=self.assets.sensors()
        )

    def runner(self) -> CheckRunner:
        specs = self.specs()
        ids = tuple(s.id for s in specs)
        if self._runner is None or ids != self._runner_ids:  # inventory or settings changed
            self._runner, self._runner_ids = CheckRunner(specs, workers=self.cfg.workers), ids
            self._labels = {(s.check, s.target): s.alert_labels() for s in specs}
        return self._runner

    def run_checks(self) -> list[CheckResult]:
        results = self.runner().run(self.context)
        self.results.save(results)
        return results

    def run_round(self, *, of_assets: bool = True) -> Round:
        """Checks -> results stored -> alert rules -> incidents. The scheduled job. `of_assets=False`:
        all but the assets' checks that a fleet's workers run (`run_asset`)."""
        if of_assets:
            results = self.run_checks()
        else:
            fanned = self._fanned()
            results = self._part_runner("", [s for s in self.specs() if s.id not in fanned]).run(self.context)
            self.results.save(results)
        outcome = self.evaluate(results)
        self.results.prune(self.clock.now() - timedelta(days=self.cfg.history_days))
        return outcome

    def scheduled(self, now: datetime) -> None:
        """The scheduler job."""
        self.run_round()

    def assets_checked(self) -> list[str]:
        """The assets with checks a fleet's workers run as the asset's job (checks that run the same on
        any machine: a device over the network, stored readings)."""
        fanned = self._fanned()
        return sorted({s.asset for s in self.specs() if s.asset is not None and s.id in fanned})

    def run_asset(self, asset: str, now: datetime) -> Round:
        """One asset's checks that may run on any machine, as a fleet worker's job: run, stored, and
        judged with the alert states the database holds for them (the asset's previous round may have
        run on another worker). Run twice (a job handed out again), it is one more round of them."""
        specs = [spec for spec, check in self.runner().instances if spec.asset == asset and check.runs_on_any_machine()]
        # the round's shared reads (the inventory's sensors) serve the worker's jobs while fresh
        results = self._part_runner(asset, specs).run(self.context, new_round=False)
        self.results.save(results)
        with self._judging:  # a worker runs several assets' jobs at once; the policy's states are shared
            return self.evaluate(results, fresh_states=True)

    def _fanned(self) -> set[str]:
        """Ids of the specs of an asset whose check runs the same on any machine."""
        return {
            spec.id for spec, check in self.runner().instances if spec.asset is not None and check.runs_on_any_machine()
        }

    def _part_runner(self, part: str, specs: list[CheckSpec]) -> CheckRunner:
        """A runner of some of the checks (one asset's, or those left to this process), kept while they stay."""
        ids = tuple(s.id for s in specs)
        known = self._part_runners.get(part)
        if known is None or known[0] != ids:
            known = self._part_runners[part] = (ids, CheckRunner(specs, workers=self.cfg.workers))
        return known[1]

    # -- alert rules and incidents ---------------------------------------------------------------

    def evaluate(self, results: Sequence[CheckResult], *, fresh_states: bool = False) -> Round:
        self._load_states([r.incident_key for r in results if r.incident_key] if fresh_states else None)
        observations, titles = [], {}
        for r in results:
            key = r.incident_key
            if key is None:
                continue
            bad = r.status in (Status.WARNING, Status.CRITICAL)
            observations.append(
                Observation(
                    key=key,
                    at=r.checked_at,
                    bad=bad,
                    clear=r.is_clear and r.status is Status.HEALTHY,
                    severity=severity_of(r.status) if bad else Severity.WARNING,
                    summary=r.summary,
                )
            )
            titles[key] = (f"{r.issue_key or 'check'} on {r.target}", f"check:{r.check}")
        steps = self.policy.evaluate_round(observations)
        for step in steps:
            title, actor = titles[step.key]
            if step.started or (step.problem and self._severity_changed(step)):
                self.incidents.open_or_update(
                    step.key, severity=step.severity, title=title, detail=step.summary, source=actor, actor=actor
                )
            elif step.ended:
                self.incidents.resolve(step.key, reason=step.summary or "recovered", actor=actor)
        self._save_states([o.key for o in observations])
        return Round(list(results), steps)

    def alert_labels(self, source: str, key: str) -> dict[str, str]:
        """The configured labels and scope of the check behind a check's incident (for the alert
        service's routes, mutes and inhibition)."""
        if not source.startswith("check:"):
            return {}
        if self._runner is None:
            self.runner()
        return self._labels.get((source.removeprefix("check:"), parse_key(key)[2]), {})

    def _severity_changed(self, step: Step) -> bool:
        current = self.incidents.active(step.key)
        return current is not None and current.severity is not step.severity

    def _load_states(self, keys: Sequence[str] | None = None) -> None:
        """Every alert state once (this process judges every round), or those of `keys` each time."""
        if keys is None and self._states_loaded:
            return
        query = select(alert_states)
        if keys is not None:
            query = query.where(alert_states.c.key.in_(list(keys)))
        with self.db.connect() as conn:
            self.policy.load({r.key: r.data for r in conn.execute(query)}, only=keys)
        if keys is None:
            self._states_loaded = True

    def _save_states(self, keys: Sequence[str]) -> None:
        dumped = self.policy.dump(keys)
        if not dumped:
            return
        now = self.clock.now()
        with self.db.begin() as conn:
            conn.execute(delete(alert_states).where(alert_states.c.key.in_(list(dumped))))
            conn.execute(insert(alert_states), [{"key": k, "data": v, "updated_at": now} for k, v in dumped.items()])

    # -- diagnostics ----------------------------------------------------------------------------

    def report(self, results: Sequence[CheckResult] | None = None) -> Report:
        """The status of every asset, site and the installation from the latest results."""
        latest = list(results) if results is not None else self.results.latest()
        return report(
            self.specs(),
            latest,
            now=self.clock.now(),
            max_age=timedelta(seconds=3 * self.cfg.interval_s),
            recommend=self.recommend,
        )
