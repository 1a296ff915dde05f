"""pitstop's own operations as procedure steps, run in-process: no `pitstop` on PATH, no shell.

    [[steps]]
    id = "config-backup"
    kind = "pitstop"
    title = "Back up the configuration"
    operation = "backup run"
    args = { source = ["config"] }

A small, explicit table: each operation is one call of the service behind a CLI command, and its
args are that command's option and argument names. They are checked when the procedure file
loads (an unknown operation or argument is refused there, in one line), and filled from the
configuration (`{asset}`, `{pitstop.url}`, ...; see `pitstop.maintenance.templating`) when the
step runs.

    backup run     `pitstop backup run [--source NAME]...`: one new set of every configured source,
                   or of `source` (names of [[backup.sources]], "pitstop-db" for pitstop's own
                   database); passes when the set is written (and copied off-site when configured)
    backup verify  `pitstop backup verify [SET_ID] [--offsite]`: every stored file of the set
                   (`set_id`, default the newest; `offsite`: its off-site copy) against its
                   manifest; passes when all match
    backup drill   `pitstop backup drill [SET_ID] [--from-offsite]`: restore into scratch places
                   (`from_offsite`: from the off-site copy alone), check, time it; passes when
                   everything restored and checked within the RTO
    check          `pitstop check`, narrowed to the configured health checks of kind `check`, of
                   `asset` and of `target`: run now, with their own params and levels; passes when
                   every one is healthy, fails naming the others (or when none is configured)
    drift          `pitstop drift report`'s judgement: the drift check of each `model` (default:
                   every model with a champion); passes when none is at warn or worse or unjudged

Why a table and not the Typer CLI run in-process: the table names what a procedure may do, its
arguments are checked when the file loads, and a step's result is the service's own result
rather than a parsed exit code and console text.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from pitstop.errors import PitstopError

if TYPE_CHECKING:
    from pitstop.backup import BackupService
    from pitstop.health.base import Check, CheckContext, CheckResult
    from pitstop.health.monitor import HealthMonitor

Name = Annotated[str, Field(min_length=1, max_length=200)]
MAX_OUTPUT = 4000


class _Args(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class BackupRunArgs(_Args):
    source: Annotated[list[Name], Field(max_length=50)] = Field(default_factory=list)  # --source, repeatable


class BackupSetArgs(_Args):
    set_id: Name | None = None  # SET_ID: a set's id, or "latest" (the default: the newest)


class BackupVerifyArgs(BackupSetArgs):
    offsite: bool = False  # --offsite: the set's off-site copy instead


class BackupDrillArgs(BackupSetArgs):
    from_offsite: bool = False  # --from-offsite: restore from the off-site copy alone


class CheckArgs(_Args):
    check: Name | None = None
    asset: Name | None = None
    target: Annotated[str, Field(min_length=1, max_length=500)] | None = None


class DriftArgs(_Args):
    model: Annotated[list[Name], Field(max_length=100)] = Field(default_factory=list)


ARGS: dict[str, type[_Args]] = {
    "backup run": BackupRunArgs,
    "backup verify": BackupVerifyArgs,
    "backup drill": BackupDrillArgs,
    "check": CheckArgs,
    "drift": DriftArgs,
}


def checked_args(operation: str, args: Mapping[str, Any]) -> _Args:
    """The args of an operation, or ValueError naming the unknown operation or the bad argument."""
    if operation not in ARGS:
        raise ValueError(f"unknown operation {operation[:60]!r}; known: {', '.join(ARGS)}")
    try:
        return ARGS[operation].model_validate(dict(args))
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(p) for p in err.get("loc", ())) or "args"
        raise ValueError(f"{operation}: args.{loc}: {err.get('msg', 'invalid')}"[:300]) from None


def champions_of(registry: Any) -> Callable[[], list[str]]:
    """The names of the models with a champion, from the model registry."""

    def champions() -> list[str]:
        names = sorted({v.name for v in registry.versions()})
        return [n for n in names if registry.alias(n, "champion") is not None]

    return champions


class Operations:
    """The operations a `pitstop` step may run, bound to this installation's services. A part not
    given (a runner built without backups) makes its operations fail saying so."""

    def __init__(
        self,
        *,
        backup: BackupService | None = None,
        health: HealthMonitor | None = None,
        context: Callable[[], CheckContext] | None = None,
        champions: Callable[[], list[str]] | None = None,
    ) -> None:
        self.backup = backup
        self.health = health
        self.context = context
        self.champions = champions

    def __call__(self, operation: str, args: Mapping[str, Any]) -> tuple[str, str]:
        """Run one operation now: (passed | failed, what happened). Raises only when it is broken."""
        parsed = checked_args(operation, args)
        if operation == "backup run":
            assert isinstance(parsed, BackupRunArgs)
            return self._backup_run(parsed)
        if operation in ("backup verify", "backup drill"):
            assert isinstance(parsed, BackupSetArgs)
            return self._backup_set(operation, parsed)
        if operation == "check":
            assert isinstance(parsed, CheckArgs)
            return self._check(parsed)
        assert isinstance(parsed, DriftArgs)
        return self._drift(parsed)

    # -- backups ----------------------------------------------------------------------------------

    def _service(self) -> BackupService:
        if self.backup is None:
            raise RuntimeError("this procedure runner was built without the backup service")
        return self.backup

    def _backup_run(self, args: BackupRunArgs) -> tuple[str, str]:
        backup = self._service()
        try:
            only = None
            if args.source:
                sources = backup.sources()
                if unknown := [s for s in args.source if s not in sources]:
                    return "failed", (
                        f"no backup source {', '.join(unknown)}; configured: {', '.join(sources) or 'none'} "
                        "(add it to [[backup.sources]])"
                    )
                only = {name: sources[name] for name in args.source}
            backup_set = backup.run(reason="procedure", only=only)
        except (PitstopError, OSError) as exc:
            return "failed", f"backup failed: {exc}"[:MAX_OUTPUT]
        m = backup_set.manifest
        files = sum(len(s.files) for s in m.sources)
        return "passed", (
            f"set {backup_set.id}: {', '.join(m.source_names)}; {files} files, {m.size} bytes in, "
            f"{m.stored_size} stored ({backup_set.dir})"
        )

    def _backup_set(self, operation: str, args: BackupSetArgs) -> tuple[str, str]:
        backup = self._service()
        try:
            if isinstance(args, BackupVerifyArgs):
                backup_set, problems = backup.verify(args.set_id, offsite=args.offsite)
                copy = " (off-site copy)" if args.offsite else ""
                if problems:
                    return "failed", f"set {backup_set.id}{copy}: " + "\n".join(problems)[:MAX_OUTPUT]
                files = sum(len(s.files) for s in backup_set.manifest.sources)
                return "passed", f"set {backup_set.id}{copy}: {files} files match the manifest"
            assert isinstance(args, BackupDrillArgs)
            result = backup.drill(args.set_id, offsite=args.from_offsite)
        except (PitstopError, OSError) as exc:
            return "failed", f"{operation} failed: {exc}"[:MAX_OUTPUT]
        lines = [
            f"{s.source} ({s.kind}): restored in {s.restore_seconds:.2f} s, checked in {s.verify_seconds:.2f} s: "
            + ("ok" if not s.problems else "; ".join(s.problems))
            for s in result.sources
        ]
        rto = "within" if result.within_rto else "ABOVE"
        verdict = "passed" if result.ok and result.within_rto else "failed"
        head = f"drill of {result.set_id} {'restored' if result.ok else 'FAILED'} in {result.seconds:.2f} s "
        head += f"({rto} the RTO of {result.rto_seconds:.0f} s)"
        return verdict, "\n".join([head, *lines])[:MAX_OUTPUT]

    # -- checks -----------------------------------------------------------------------------------

    def _monitor(self) -> tuple[HealthMonitor, CheckContext]:
        if self.health is None or self.context is None:
            raise RuntimeError("this procedure runner was built without the health monitor")
        return self.health, self.context()

    def _check(self, args: CheckArgs) -> tuple[str, str]:
        health, ctx = self._monitor()
        chosen = [
            check
            for spec, check in health.runner().instances
            if (args.check is None or spec.check == args.check)
            and (args.asset is None or spec.asset == args.asset)
            and (args.target is None or spec.target == args.target)
        ]
        if not chosen:
            wanted = ", ".join(f"{k} {v}" for k, v in args.model_dump().items() if v is not None) or "any"
            return "failed", f"no enabled health check is configured for {wanted} ([[health.checks]])"
        return _judged(health, [_run(check, ctx) for check in chosen])

    def _drift(self, args: DriftArgs) -> tuple[str, str]:
        from pitstop.health.base import checks

        health, ctx = self._monitor()
        names = list(args.model)
        if not names:
            if self.champions is None:
                raise RuntimeError("this procedure runner was built without the model registry")
            names = self.champions()
            if not names:
                return "passed", "no model has a champion: no model in production whose inputs can drift"
        configured = {spec.target: check for spec, check in health.runner().instances if spec.check == "drift"}
        results = [_run(configured.get(name) or checks.create("drift", target=name), ctx) for name in names]
        return _judged(health, results)


def _run(check: Check, ctx: CheckContext) -> CheckResult:
    from pitstop.core.types import Status
    from pitstop.health.base import CheckResult

    try:
        return check.run(ctx)
    except Exception as exc:  # a broken check is a result too, as in a round
        error = f"{type(exc).__name__}: {exc}"[:1000]
        return CheckResult(
            check=check.name,
            target=check.target,
            status=Status.UNKNOWN,
            summary=f"check failed: {error}",
            checked_at=ctx.clock.now(),
            issue_key=check.issue,
            error=error,
        )


def _judged(health: HealthMonitor, results: Sequence[CheckResult]) -> tuple[str, str]:
    """passed when every result is healthy; the results are stored like a round's (not judged into incidents)."""
    from pitstop.core.types import Status

    health.results.save(list(results))
    bad = [r for r in results if r.status is not Status.HEALTHY]
    # the unhealthy first: the output is cut at MAX_OUTPUT
    lines = [
        f"{r.check} {r.target}: {r.status.value}: {r.summary}" for r in [*bad, *(r for r in results if r not in bad)]
    ]
    head = f"{len(results) - len(bad)} of {len(results)} healthy"
    return ("failed" if bad else "passed"), "\n".join([head, *lines])[:MAX_OUTPUT]
