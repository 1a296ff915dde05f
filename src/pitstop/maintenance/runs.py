"""Running procedures: automated steps execute, manual checklist items are answered, the run is recorded.

A run records the procedure version it ran. When every step has a result the run finishes:
each failed manual item opens exactly one work order (deduplicated by asset and step), the run
goes into the maintenance log, and the `on_finish` hooks run (schedules count the completion).

Automated steps run in order. A `reboot` step that rebooted the host leaves the run waiting: the
steps after it run when `resume` (the maintenance job) sees the host came back, or gave up on it.
Each automated step passes or fails on what it found; it is skipped only for a reason it states
(waits for a maintenance window, ran less than `every` ago, a guard of the action), and an error
is a step that could not run at all (a check that refuses its params, an unknown action). A
placeholder without a value fails its step, naming it.
"""

from __future__ import annotations

import json
import math
import subprocess
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import psutil
from sqlalchemy import Connection, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from pitstop.core.clock import Clock
from pitstop.core.types import Severity, Status
from pitstop.errors import InvalidInput, NotFound
from pitstop.incidents.windows import MuteStore, matches
from pitstop.maintenance.common import ASSET_NAME, duration, param, site_of, text
from pitstop.maintenance.log import MaintenanceLog
from pitstop.maintenance.procedures import (
    ActionStep,
    Catalog,
    CheckStep,
    CommandStep,
    ManualStep,
    PitstopStep,
    Procedure,
    ProcedureFile,
    RebootStep,
    UpdateStep,
    parse,
)
from pitstop.maintenance.templating import Filler, Sources, Unfilled
from pitstop.maintenance.updates import RunInfo, Updater
from pitstop.maintenance.workorders import WorkOrderService
from pitstop.storage.engine import Database
from pitstop.storage.repos.assets import AssetRepo
from pitstop.storage.schema import procedure_runs, procedure_versions

MAX_OUTPUT = 4000


def host_boot_time() -> datetime:
    return datetime.fromtimestamp(psutil.boot_time(), UTC)


class ActionRunner(Protocol):
    """The self-healing engine's entry for procedure steps (`pitstop.maintenance.actions`): run
    `action` on `target` through its guards; `window` is the maintenance window in force for the
    run's asset (None: none is). Returns (passed, what happened); passed None: not applied."""

    def __call__(
        self,
        action: str,
        params: Mapping[str, Any],
        *,
        asset: str,
        target: str,
        window: str | None,
        disruptive: bool,
        reason: str,
    ) -> tuple[bool | None, str]: ...


class OperationRunner(Protocol):
    """pitstop's own operations (`pitstop.maintenance.operations.Operations`): (passed | failed, output)."""

    def __call__(self, operation: str, args: Mapping[str, Any]) -> tuple[str, str]: ...


@dataclass(frozen=True, slots=True)
class Answer:
    """A person's result for a manual checklist item."""

    value: float | str | None = None
    passed: bool | None = None
    note: str = ""
    attachment: str | None = None


@dataclass(frozen=True, slots=True)
class StepResult:
    id: str
    kind: str
    status: str  # pending, passed, failed, skipped, error
    at: str | None = None
    by: str = ""
    value: float | str | None = None
    note: str = ""
    attachment: str | None = None
    output: str = ""
    overtime: bool = False


@dataclass(frozen=True, slots=True)
class Run:
    id: int
    procedure: str
    version: int
    content_hash: str
    asset: str
    actor: str
    state: str  # running, passed, failed
    started_at: datetime
    finished_at: datetime | None
    steps: list[StepResult] = field(default_factory=list)
    incident_key: str | None = None

    @property
    def failed_steps(self) -> list[StepResult]:
        return [s for s in self.steps if s.status in ("failed", "error")]

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "procedure": self.procedure,
            "version": self.version,
            "content_hash": self.content_hash,
            "asset": self.asset,
            "actor": self.actor,
            "state": self.state,
            "started_at": self.started_at.isoformat(),
            "finished_at": self.finished_at.isoformat() if self.finished_at else None,
            "incident_key": self.incident_key,
            "steps": [asdict(s) for s in self.steps],
        }


class ProcedureRunner:
    def __init__(
        self,
        db: Database,
        clock: Clock,
        catalog: Catalog,
        orders: WorkOrderService,
        *,
        check_context: Callable[[], Any] | None = None,
        work_dir: Path | None = None,
    ) -> None:
        self.db = db
        self.clock = clock
        self.catalog = catalog
        self.orders = orders
        self.check_context = check_context
        # Set by the composition root (pitstop.app): the self-healing engine's actions, pitstop's
        # own operations, and where placeholders take their values from.
        self.action_runner: ActionRunner | None = None
        self.operations: OperationRunner | None = None
        self.sources = Sources(asset_row=AssetRepo(db).get_asset)
        self.on_finish: list[Callable[[Run], None]] = []
        # update steps keep their backups and kept wheels in work_dir/run-<id>/<step>/
        self.updater = Updater(db, clock, work_dir, self.run_check)
        self.boot_time: Callable[[], datetime] = host_boot_time  # when the host last booted

    # -- versions -------------------------------------------------------------------------------

    def register(self, pf: ProcedureFile) -> int:
        """The version number of this file's content, registering it when new."""
        now = self.clock.now()
        for _ in range(3):
            with self.db.begin() as conn:
                row = conn.execute(
                    select(procedure_versions.c.version).where(
                        procedure_versions.c.name == pf.procedure.name,
                        procedure_versions.c.content_hash == pf.content_hash,
                    )
                ).first()
                if row is not None:
                    return int(row[0])
                latest = conn.execute(
                    select(func.max(procedure_versions.c.version)).where(procedure_versions.c.name == pf.procedure.name)
                ).scalar()
                try:
                    with conn.begin_nested():
                        conn.execute(
                            insert(procedure_versions).values(
                                name=pf.procedure.name,
                                version=int(latest or 0) + 1,
                                content_hash=pf.content_hash,
                                source=pf.source,
                                created_at=now,
                            )
                        )
                except IntegrityError:
                    continue
                return int(latest or 0) + 1
        raise RuntimeError(f"could not register a version of procedure {pf.procedure.name!r}")

    def versions(self, name: str) -> list[dict[str, Any]]:
        query = (
            select(procedure_versions.c.version, procedure_versions.c.content_hash, procedure_versions.c.created_at)
            .where(procedure_versions.c.name == name)
            .order_by(procedure_versions.c.version)
        )
        with self.db.connect() as conn:
            return [{"version": v, "content_hash": h, "created_at": c.isoformat()} for v, h, c in conn.execute(query)]

    def procedure_of(self, run: Run) -> Procedure:
        """The procedure exactly as that run ran it."""
        with self.db.connect() as conn:
            source = conn.execute(
                select(procedure_versions.c.source).where(
                    procedure_versions.c.name == run.procedure, procedure_versions.c.version == run.version
                )
            ).scalar_one()
        try:
            return parse(source, fmt="toml", where=run.procedure)
        except InvalidInput:
            return parse(source, fmt="yaml", where=run.procedure)

    # -- runs -----------------------------------------------------------------------------------

    def start(
        self,
        name: str,
        *,
        actor: str,
        asset: str = "",
        answers: Mapping[str, Answer] | None = None,
        incident_key: str | None = None,
    ) -> Run:
        """Start a run: automated steps execute now, given answers are recorded; finishes when complete."""
        pf = self.catalog.get(name)
        proc = pf.procedure
        actor = text("actor", actor, 200)
        asset = text("asset", asset, 200, required=False)
        if asset and not ASSET_NAME.match(asset):  # it fills commands' arguments: no options, no paths
            raise InvalidInput(f"asset {asset[:60]!r} is not an asset name (letters, digits, '.', '_', '-')")
        for step_id in answers or {}:
            if not isinstance(proc.step(step_id), ManualStep):
                raise InvalidInput(f"step {step_id!r} of {name} is not a manual checklist item")
        version = self.register(pf)
        now = self.clock.now()
        pending = [StepResult(s.id, s.kind, "pending") for s in proc.steps]
        with self.db.begin() as conn:
            key = conn.execute(
                insert(procedure_runs).values(
                    procedure=proc.name,
                    version=version,
                    content_hash=pf.content_hash,
                    asset=asset,
                    actor=actor,
                    state="running",
                    started_at=now,
                    steps=_dump(pending),
                    incident_key=incident_key,
                )
            ).inserted_primary_key
        assert key is not None
        run = self.get(int(key[0]))
        results = list(run.steps)
        for i, step in enumerate(proc.steps):
            answer = (answers or {}).get(step.id)
            if isinstance(step, ManualStep) and answer is not None:
                results[i] = self._manual(step, answer, run, actor)
        return self._go_on(run, proc, results)

    def _go_on(self, run: Run, proc: Procedure, results: list[StepResult]) -> Run:
        """Run the pending automated steps in order, up to a reboot the run must wait for."""
        for i, step in enumerate(proc.steps):
            if _waiting(step, results[i]):
                break
            if isinstance(step, ManualStep) or results[i].status != "pending":
                continue
            if isinstance(step, RebootStep):
                results[i] = self._reboot(step, run, proc, results, i)
                if _waiting(step, results[i]):
                    break
                continue
            results[i] = self._automated(step, run)
        return self._save(run, results, proc)

    def _reboot(self, step: RebootStep, run: Run, proc: Procedure, results: list[StepResult], i: int) -> StepResult:
        window = self.window_in_force(run.asset)
        if window is None:
            output = f"reboot: waits for a maintenance window covering {run.asset or 'the system'}"
            return self._timed(step.within, run, StepResult(step.id, step.kind, "skipped", by="pitstop", output=output))
        issued = f"reboot issued in window {window}; waiting for the host to come back within {step.back_within}"
        results[i] = self._timed(
            step.within, run, StepResult(step.id, step.kind, "pending", by="pitstop", output=issued)
        )
        self._save(run, results, proc)  # first: the command may not return
        status, output = self._argv(step.command, step.timeout_s)
        if status != "passed":
            return replace(results[i], status="failed", output=f"the reboot command failed: {output}"[:MAX_OUTPUT])
        return results[i]

    def resume(self) -> list[Run]:
        """Runs waiting on a reboot go on: the reboot step passes once the host booted after it was
        issued, and fails once `back_within` passed without that; then the next steps run.
        The maintenance job calls this (so after a restart, as soon as pitstop is back)."""
        with self.db.connect() as conn:
            ids = conn.execute(
                select(procedure_runs.c.id).where(procedure_runs.c.state == "running").order_by(procedure_runs.c.id)
            ).scalars()
            running = list(ids)
        went_on = []
        for run_id in running:
            run = self.get(run_id)
            proc = self.procedure_of(run)
            for i, (step, result) in enumerate(zip(proc.steps, run.steps, strict=True)):
                if not (isinstance(step, RebootStep) and _waiting(step, result)):
                    continue
                assert result.at is not None
                issued, booted, now = datetime.fromisoformat(result.at), self.boot_time(), self.clock.now()
                if booted > issued:
                    after_s = (booted - issued).total_seconds()
                    status, seen = "passed", f"came back: booted {booted.isoformat()}, {after_s:.0f} s after the reboot"
                elif now - issued > duration(step.back_within, "back_within"):
                    status = "failed"
                    seen = f"not back within {step.back_within}: up since {booted.isoformat()}, before the reboot"
                else:
                    break
                results = list(run.steps)
                results[i] = replace(result, status=status, output=f"{result.output}\n{seen}"[:MAX_OUTPUT])
                went_on.append(self._go_on(run, proc, results))
                break
        return went_on

    def answer(self, run_id: int, step_id: str, answer: Answer, *, actor: str) -> Run:
        """Record a person's result for one manual item of a running run."""
        run = self.get(run_id)
        if run.state != "running":
            raise InvalidInput(f"run {run_id} is {run.state}; it takes no more answers")
        proc = self.procedure_of(run)
        step = proc.step(step_id)
        if not isinstance(step, ManualStep):
            raise InvalidInput(f"step {step_id!r} of {proc.name} is not a manual checklist item")
        actor = text("actor", actor, 200)
        results = [self._manual(step, answer, run, actor) if r.id == step_id else r for r in run.steps]
        return self._save(run, results, proc)

    def _manual(self, step: ManualStep, answer: Answer, run: Run, actor: str) -> StepResult:
        value = answer.value
        if isinstance(value, str):
            value = text("value", value, 500, required=False)
        if isinstance(value, float) and not math.isfinite(value):
            raise InvalidInput(f"step {step.id}: the value must be a finite number")
        passed = answer.passed
        numeric = isinstance(value, int | float) and not isinstance(value, bool)
        if numeric and (step.min is not None or step.max is not None):
            assert isinstance(value, int | float)
            passed = (step.min is None or value >= step.min) and (step.max is None or value <= step.max)
        elif passed is None and step.expected is not None and isinstance(value, str) and value:
            passed = value.casefold() == step.expected.strip().casefold()
        if passed is None:
            raise InvalidInput(f"step {step.id}: say whether it passed, or give a value to compare with its limits")
        if step.note_required and not (answer.note or "").strip():
            raise InvalidInput(f"step {step.id}: a note is required ({step.title.lower()})")
        attachment = text("attachment", answer.attachment, 1000) if answer.attachment else None
        if attachment and not step.attachment:
            raise InvalidInput(f"step {step.id} takes no attachment")
        return self._timed(
            step.within,
            run,
            StepResult(
                step.id,
                step.kind,
                "passed" if passed else "failed",
                value=value,
                note=text("note", answer.note, 4000, required=False),
                attachment=attachment,
                by=actor,
            ),
        )

    def _automated(self, step: CheckStep | PitstopStep | ActionStep | CommandStep | UpdateStep, run: Run) -> StepResult:
        if isinstance(step, UpdateStep):
            return self._update(step, run)

        def said(status: str, output: str) -> StepResult:
            result = StepResult(step.id, step.kind, status, by="pitstop", output=output[:MAX_OUTPUT])
            return self._timed(step.within, run, result)

        if not isinstance(step, CheckStep) and step.every is not None:
            last = self._last_passed(run, step.id)
            if last is not None and run.started_at - last < duration(step.every, "every"):
                again = last + duration(step.every, "every")
                return said(
                    "skipped", f"runs every {step.every}: passed {last.isoformat()}, due again from {again.isoformat()}"
                )
        window = None
        if isinstance(step, ActionStep) or (not isinstance(step, CheckStep) and step.disruptive):
            window = self.window_in_force(run.asset)
            if step.disruptive and window is None:
                return said(
                    "skipped", f"disruptive step: waits for a maintenance window covering {run.asset or 'the system'}"
                )
        filler = Filler(self.sources, run.asset)
        try:
            if isinstance(step, CheckStep):
                status, output = self._check(step, run, filler)
            elif isinstance(step, PitstopStep):
                status, output = self._pitstop(step, filler)
            elif isinstance(step, ActionStep):
                status, output = self._action(step, run, window, filler)
            else:
                status, output = self._command(step, filler)
        except Unfilled as exc:  # configuration the step needs is missing: it fails saying which
            status, output = "failed", f"not run: {exc}"
        except Exception as exc:  # a broken step is recorded, the run goes on
            status, output = "error", f"{type(exc).__name__}: {exc}"
        return said(status, output)

    def _pitstop(self, step: PitstopStep, filler: Filler) -> tuple[str, str]:
        if self.operations is None:
            return "error", "this runner was built without pitstop's operations (pitstop.app wires them)"
        return self.operations(step.operation, filler.fill(step.args))

    def _action(self, step: ActionStep, run: Run, window: str | None, filler: Filler) -> tuple[str, str]:
        if self.action_runner is None:
            return "skipped", "the self-healing engine is not available; action not run"
        target = filler.fill(step.target) if step.target is not None else run.asset or "system"
        ok, output = self.action_runner(
            step.action,
            filler.fill(step.params),
            asset=run.asset,
            target=text("the action's target", target, 340),
            window=window,
            disruptive=step.disruptive,
            reason=f"procedure {run.procedure} run {run.id} step {step.id}",
        )
        return ("skipped" if ok is None else "passed" if ok else "failed"), output

    def window_in_force(self, asset: str) -> str | None:
        """The maintenance window in force now whose matchers cover the asset (and its site), if any."""
        now = self.clock.now()
        labels = {"asset": asset or "system", "site": ""}
        with self.db.connect() as conn:
            labels["site"] = site_of(conn, asset)
        for window in MuteStore(self.db).windows():
            if window.active_at(now) and matches(window.matchers, labels):
                return window.name
        return None

    def _update(self, step: UpdateStep, run: Run) -> StepResult:
        info = RunInfo(run.id, run.procedure, run.asset, run.actor)
        try:
            outcome = self.updater.run(step, info, window=self.window_in_force(run.asset))
            result = StepResult(step.id, step.kind, outcome.status, by="pitstop", value=outcome.version)
            result = replace(result, output=outcome.output[:MAX_OUTPUT])
        except Exception as exc:  # a broken step is recorded, the run goes on
            result = StepResult(step.id, step.kind, "error", by="pitstop", output=f"{type(exc).__name__}: {exc}")
        return self._timed(step.within, run, result)

    def _last_passed(self, run: Run, step_id: str) -> datetime | None:
        """When this step last passed in an earlier run of the procedure on the same asset."""
        query = (
            select(procedure_runs.c.steps)
            .where(
                procedure_runs.c.procedure == run.procedure,
                procedure_runs.c.asset == run.asset,
                procedure_runs.c.id < run.id,
            )
            .order_by(procedure_runs.c.id.desc())
            .limit(500)
        )
        with self.db.connect() as conn:
            for (steps,) in conn.execute(query):
                for s in json.loads(steps):
                    if s["id"] == step_id and s["status"] == "passed" and s.get("at"):
                        return datetime.fromisoformat(s["at"])
        return None

    def _check(self, step: CheckStep, run: Run, filler: Filler) -> tuple[str, str]:
        target = filler.fill(step.target) if step.target is not None else run.asset or "system"
        passed, output = self.run_check(step.check, target, filler.fill(step.params))
        return ("error" if passed is None else "passed" if passed else "failed"), output

    def run_check(self, name: str, target: str, params: Mapping[str, Any]) -> tuple[bool | None, str]:
        """Run one health check now: (healthy, "status: summary"); None when the check could not run
        (none of that name is registered, or it refuses its parameters)."""
        from pitstop.health.base import CheckContext, checks

        if name not in checks:
            return None, f"no check named {name!r} is registered"
        try:
            check = checks.get(name)(target, params=params)
        except ValueError as exc:
            return None, f"check {name!r}: {exc}"[:MAX_OUTPUT]
        ctx = self.check_context() if self.check_context else CheckContext(clock=self.clock, db=self.db)
        result = check.run(ctx)
        return result.status is Status.HEALTHY, f"{result.status.value}: {result.summary}"[:MAX_OUTPUT]

    def _command(self, step: CommandStep, filler: Filler) -> tuple[str, str]:
        return self._argv(filler.fill(step.command), step.timeout_s)

    @staticmethod
    def _argv(argv: list[str], timeout_s: float) -> tuple[str, str]:
        try:
            done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout_s, check=False)
        except subprocess.TimeoutExpired as exc:
            out = exc.stdout.decode(errors="replace") if isinstance(exc.stdout, bytes) else (exc.stdout or "")
            return "failed", f"timed out after {timeout_s:g} s\n{out}"[-MAX_OUTPUT:]
        except OSError as exc:
            return "error", f"cannot run {argv[0]!r}: {exc.strerror or exc}"
        output = f"exit {done.returncode}\n{done.stdout}{done.stderr}"
        return ("passed" if done.returncode == 0 else "failed"), output[-MAX_OUTPUT:]

    def _timed(self, within: str | None, run: Run, result: StepResult) -> StepResult:
        now = self.clock.now()
        overtime = within is not None and now - run.started_at > duration(within, "within")
        return replace(result, at=now.isoformat(), overtime=overtime)

    def _save(self, run: Run, results: list[StepResult], proc: Procedure) -> Run:
        now = self.clock.now()
        complete = all(r.status != "pending" for r in results)
        state = "running"
        if complete:
            state = "failed" if any(r.status in ("failed", "error") for r in results) else "passed"
        with self.db.begin() as conn:
            conn.execute(
                update(procedure_runs)
                .where(procedure_runs.c.id == run.id)
                .values(steps=_dump(results), state=state, finished_at=now if complete else None)
            )
            if complete:
                _log_run(conn, proc, run, results, state, now)
        finished = self.get(run.id)
        if complete:
            self._open_orders(proc, finished)
            for hook in self.on_finish:
                hook(finished)
        return finished

    def _open_orders(self, proc: Procedure, run: Run) -> None:
        for result in run.steps:
            step = proc.step(result.id)
            if result.status != "failed" or not isinstance(step, ManualStep):
                continue
            found = f"value {result.value!r}" if result.value is not None else "marked failed"
            limits = step.expected or _limits(step)
            self.orders.open_for(
                "procedure",
                run.asset,
                f"procedure.{proc.name}.{step.id}",
                title=f"{proc.title}: {step.title} failed"[:500],
                detail=f"{step.instruction}\nfound: {found}; expected: {limits}\n{result.note}".strip(),
                severity=Severity.WARNING,
                estimated_h=step.estimated_h,
                run_id=run.id,
                procedure=proc.name,
                actor=result.by or run.actor,
            )

    def get(self, run_id: int) -> Run:
        with self.db.connect() as conn:
            row = conn.execute(select(procedure_runs).where(procedure_runs.c.id == run_id)).first()
        if row is None:
            raise NotFound(f"no procedure run with id {run_id}")
        return _run(dict(row._mapping))

    def runs(self, *, procedure: str | None = None, asset: str | None = None, limit: int = 100) -> list[Run]:
        procedure, asset = param("procedure", procedure), param("asset", asset)
        query = select(procedure_runs).order_by(procedure_runs.c.id.desc()).limit(max(1, limit))
        if procedure is not None:
            query = query.where(procedure_runs.c.procedure == procedure)
        if asset is not None:
            query = query.where(procedure_runs.c.asset == asset)
        with self.db.connect() as conn:
            return [_run(dict(r._mapping)) for r in conn.execute(query)]


def _waiting(step: Any, result: StepResult) -> bool:
    """A reboot step that rebooted and waits for the host to come back."""
    return isinstance(step, RebootStep) and result.status == "pending" and result.at is not None


def _limits(step: ManualStep) -> str:
    if step.min is not None and step.max is not None:
        return f"{step.min:g}..{step.max:g} {step.unit}".strip()
    if step.min is not None:
        return f">= {step.min:g} {step.unit}".strip()
    if step.max is not None:
        return f"<= {step.max:g} {step.unit}".strip()
    return "pass"


def _log_run(conn: Connection, proc: Procedure, run: Run, results: list[StepResult], state: str, now: datetime) -> None:
    bad = [r for r in results if r.status in ("failed", "error")]
    MaintenanceLog.append_in(
        conn,
        "procedure_run",
        f"{proc.title} (v{run.version}) {state}"[:500],
        actor=run.actor,
        at=now,
        asset=run.asset,
        issues="\n".join(f"{r.id}: {r.status} {r.value if r.value is not None else ''} {r.note}".strip() for r in bad),
        actions="\n".join(f"{r.id}: {r.status}" for r in results),
        result=state,
        evidence=[r.attachment for r in results if r.attachment],
        ref=f"run:{run.id}",
    )


def _dump(results: list[StepResult]) -> str:
    return json.dumps([asdict(r) for r in results], default=str)


def _run(m: Mapping[str, Any]) -> Run:
    return Run(
        id=m["id"],
        procedure=m["procedure"],
        version=m["version"],
        content_hash=m["content_hash"],
        asset=m["asset"],
        actor=m["actor"],
        state=m["state"],
        started_at=m["started_at"],
        finished_at=m["finished_at"],
        steps=[StepResult(**s) for s in json.loads(m["steps"])],
        incident_key=m["incident_key"],
    )
