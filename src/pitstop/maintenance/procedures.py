"""Procedures as code: TOML or YAML files with steps, versioned by content.

A step is automated — `check` (a health check by name), `pitstop` (one of pitstop's own
operations run in-process, e.g. `backup run`; see `pitstop.maintenance.operations`), `action` (a
remediation action, run through the self-healing engine's guards; see
`pitstop.maintenance.actions`), `command` (a configured command with a timeout and captured
output), `update` (a software update with a backup, a smoke test and an automatic rollback; see
`pitstop.maintenance.updates`), `reboot` (reboot the host, then wait for it to come back) — or
`manual` (a checklist item: an instruction, an expected value or numeric limits, pass/fail, a
note, an optional attachment). Targets, params, args and command arguments take placeholders
filled from the configuration when the step runs (`{asset}`, `{asset.check.rtsp}`,
`{pitstop.url}`; see `pitstop.maintenance.templating`); an unknown one is refused when the file
loads. `within` on a step (e.g. "5m") makes it timed, for emergency runbooks; `every` on a
pitstop, command or action step (e.g. "25d") runs it at most that often, so one weekly procedure
can hold a monthly step.

Shipped procedures live in `pitstop/procedures/` (package data); a site's own files in
`<data_dir>/procedures/` replace shipped ones of the same name. A version is (number, sha256
of the file); a run records the version it ran.
"""

from __future__ import annotations

import hashlib
import re
import tomllib
from dataclasses import dataclass
from datetime import timedelta
from importlib import resources
from pathlib import Path, PurePosixPath
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from pitstop.errors import InvalidInput, NotFound
from pitstop.maintenance import templating
from pitstop.maintenance.common import NAME, duration
from pitstop.maintenance.operations import checked_args

SUFFIXES = (".toml", ".yaml", ".yml")
MAX_FILE_BYTES = 256 * 1024


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _Step(_Strict):
    id: Annotated[str, Field(pattern=NAME.pattern)]
    title: Annotated[str, Field(min_length=1, max_length=300)]
    within: str | None = None  # timed step (emergency runbooks): "5m", "1h"

    @field_validator("within")
    @classmethod
    def _within(cls, v: str | None) -> str | None:
        if v is not None:
            try:
                duration(v, "within")
            except InvalidInput as exc:
                raise ValueError(str(exc)) from None
        return v


def _placeholders(*values: Any) -> None:
    """Every placeholder in the values is a known form (`pitstop.maintenance.templating`)."""
    for value in values:
        if (problem := templating.problem(value)) is not None:
            raise ValueError(problem)


class CheckStep(_Step):
    kind: Literal["check"]
    check: Annotated[str, Field(min_length=1, max_length=100)]
    # None: the run's asset, or "system" for a run without one
    target: Annotated[str, Field(min_length=1, max_length=500)] | None = None
    params: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _templates(self) -> CheckStep:
        _placeholders(self.target, self.params)
        return self


def _duration_at_least(value: str | None, what: str, least: timedelta) -> str | None:
    if value is not None:
        try:
            span = duration(value, what)
        except InvalidInput as exc:
            raise ValueError(str(exc)) from None
        if span < least:
            raise ValueError(f"{what} must be at least {int(least.total_seconds() // 60)} minutes")
    return value


class _Repeating(_Step):
    # At most once per `every`: skipped (with when it last passed) while it passed in an earlier run
    # of the procedure on the same asset less than `every` before this run started.
    every: str | None = None

    @field_validator("every")
    @classmethod
    def _every(cls, v: str | None) -> str | None:
        return _duration_at_least(v, "every", timedelta(hours=1))


class ActionStep(_Repeating):
    """A remediation action (`pitstop.maintenance.actions`): planned, guarded, applied, verified."""

    kind: Literal["action"]
    action: Annotated[str, Field(min_length=1, max_length=100)]
    # what the action works on (a service, a path, a model); None: the run's asset, or "system"
    target: Annotated[str, Field(min_length=1, max_length=300)] | None = None
    params: dict[str, Any] = Field(default_factory=dict)
    disruptive: bool = False  # runs only inside a maintenance window that covers the asset

    @model_validator(mode="after")
    def _templates(self) -> ActionStep:
        _placeholders(self.target, self.params)
        return self


class PitstopStep(_Repeating):
    """One of pitstop's own operations, run in-process (`pitstop.maintenance.operations`): its
    `operation` ("backup run", "backup verify", "backup drill", "check", "drift") with `args` named
    as the CLI command's options, e.g. args = { source = ["config"] }."""

    kind: Literal["pitstop"]
    operation: Annotated[str, Field(min_length=1, max_length=100)]  # one of operations.ARGS
    args: dict[str, Any] = Field(default_factory=dict)
    disruptive: bool = False  # runs only inside a maintenance window that covers the asset

    @model_validator(mode="after")
    def _args(self) -> PitstopStep:
        _placeholders(self.args)
        checked_args(self.operation, self.args)
        return self


Argv = Annotated[list[Annotated[str, Field(min_length=1, max_length=1000)]], Field(max_length=50)]


class CommandStep(_Repeating):
    kind: Literal["command"]
    command: Annotated[list[Annotated[str, Field(min_length=1, max_length=1000)]], Field(min_length=1, max_length=50)]
    timeout_s: Annotated[float, Field(gt=0, le=3600)] = 60.0
    disruptive: bool = False  # runs only inside a maintenance window that covers the asset

    @model_validator(mode="after")
    def _templates(self) -> CommandStep:
        _placeholders(self.command)
        return self


class RebootStep(_Step):
    """Reboots the host, only inside a maintenance window. The run then waits: the step passes
    once the host booted after the step started (checked by the maintenance job after the
    restart), or fails when it has not within `back_within`; the steps after it run then."""

    kind: Literal["reboot"]
    command: Annotated[Argv, Field(min_length=1)] = Field(default_factory=lambda: ["systemctl", "reboot"])
    timeout_s: Annotated[float, Field(gt=0, le=600)] = 60.0
    back_within: str = "15m"

    @field_validator("back_within")
    @classmethod
    def _back_within(cls, v: str) -> str:
        _duration_at_least(v, "back_within", timedelta(minutes=1))
        return v


# A pip requirement: a distribution name, optional extras, optional version specifiers. No URLs,
# paths or options: those would let a requirement install something else than it names.
_SPEC = r"\s*(?:===|==|!=|<=|>=|~=|<|>)\s*[A-Za-z0-9.*+!_-]+"
REQUIREMENT = re.compile(
    rf"^(?P<name>[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?)(?:\[[A-Za-z0-9._,-]+\])?(?:{_SPEC}(?:\s*,{_SPEC})*)?$"
)
DEB_PACKAGE = re.compile(r"^[a-z0-9][a-z0-9+.-]{1,99}$")
DEB_VERSION = re.compile(r"^[A-Za-z0-9.+~:-]{1,100}$")


def _absolute(what: str, value: str) -> str:
    path = PurePosixPath(value)
    if "\x00" in value or not path.is_absolute() or ".." in path.parts or str(path) == "/":
        raise ValueError(f"{what} {value[:80]!r} must be an absolute path other than /, without '..'")
    return value


class SmokeCheck(_Strict):
    check: Annotated[str, Field(min_length=1, max_length=100)]
    target: Annotated[str, Field(min_length=1, max_length=500)] = "{asset}"
    params: dict[str, Any] = Field(default_factory=dict)


class SmokeHttp(_Strict):
    url: Annotated[str, Field(min_length=8, max_length=2000)]
    status: Annotated[int, Field(ge=100, le=599)] = 200

    @field_validator("url")
    @classmethod
    def _url(cls, v: str) -> str:
        if not v.startswith(("http://", "https://")) or any(c.isspace() or ord(c) < 32 for c in v):
            raise ValueError("the smoke test's url must be an http:// or https:// URL without spaces")
        return v


class SmokeTest(_Strict):
    """What must hold after an update: health checks by name, an HTTP GET answering `status`, a
    command exiting 0; every one given must pass."""

    checks: Annotated[list[SmokeCheck], Field(max_length=20)] = Field(default_factory=list)
    http: SmokeHttp | None = None
    command: Argv = Field(default_factory=list)
    timeout_s: Annotated[float, Field(gt=0, le=600)] = 60.0

    @model_validator(mode="after")
    def _something(self) -> SmokeTest:
        if not self.checks and self.http is None and not self.command:
            raise ValueError("a smoke test needs checks, http or a command: without one nothing can fail it")
        return self


_METHOD_FIELDS = {
    "pip": ("python", "requirement", "pip_args"),
    "command": ("command", "version_command", "rollback"),
    "package": ("package", "version"),
}


class UpdateStep(_Step):
    """A software update with rollback (`pitstop.maintenance.updates`): only inside a maintenance
    window; backs up `backup`, applies the update by `method`, runs the smoke test, and when it
    fails rolls back (the previous versions, the files, `rollback`) and runs the smoke test again.

    - pip: `requirement` (e.g. "vms-bridge==2.0") into the environment of `python`, with
      `pip_args` (e.g. ["--no-index", "--find-links", "/srv/wheels"]); the wheels of the versions
      it replaces are kept first, or the update is refused.
    - command: `command` applies it, `version_command` prints the version, `rollback` undoes it.
    - package: the apt `package` (at `version`, or the newest), its previous .deb kept first.
    """

    kind: Literal["update"]
    method: Literal["pip", "command", "package"]
    python: Annotated[str, Field(max_length=1000)] | None = None
    requirement: Annotated[str, Field(max_length=300)] | None = None
    pip_args: Argv = Field(default_factory=list)
    command: Argv = Field(default_factory=list)
    version_command: Argv = Field(default_factory=list)
    rollback: Argv = Field(default_factory=list)
    package: Annotated[str, Field(max_length=100)] | None = None
    version: Annotated[str, Field(max_length=100)] | None = None
    backup: Annotated[list[Annotated[str, Field(min_length=1, max_length=1000)]], Field(max_length=50)] = Field(
        default_factory=list
    )
    restart: Argv = Field(default_factory=list)  # run after the update and after a rollback
    settle_s: Annotated[float, Field(ge=0, le=600)] = 0.0  # wait after that, before the smoke test
    timeout_s: Annotated[float, Field(gt=0, le=3600)] = 600.0  # each command of the update
    smoke: SmokeTest

    @field_validator("python")
    @classmethod
    def _python(cls, v: str | None) -> str | None:
        return None if v is None else _absolute("python", v)

    @field_validator("backup")
    @classmethod
    def _backup(cls, v: list[str]) -> list[str]:
        return [_absolute("backup path", p) for p in v]

    @model_validator(mode="after")
    def _method(self) -> UpdateStep:
        given = {f for fields in _METHOD_FIELDS.values() for f in fields if getattr(self, f)}
        if stray := sorted(given - set(_METHOD_FIELDS[self.method])):
            raise ValueError(f"step {self.id}: {', '.join(stray)}: not a field of method {self.method}")
        if self.method == "pip":
            if not self.python or not self.requirement:
                raise ValueError(f"step {self.id}: a pip update needs python and requirement")
            if not REQUIREMENT.match(self.requirement):
                raise ValueError(f"step {self.id}: requirement {self.requirement[:80]!r} is not like name==2.0")
        elif self.method == "command":
            if not self.command:
                raise ValueError(f"step {self.id}: a command update needs command")
            if not self.rollback and not self.backup:
                raise ValueError(f"step {self.id}: a command update needs rollback or backup, or it cannot be undone")
        else:
            if not self.package or not DEB_PACKAGE.match(self.package):
                raise ValueError(f"step {self.id}: package must be a Debian package name")
            if self.version is not None and not DEB_VERSION.match(self.version):
                raise ValueError(f"step {self.id}: version {self.version[:40]!r} is not a Debian version")
        return self


class ManualStep(_Step):
    kind: Literal["manual"]
    instruction: Annotated[str, Field(min_length=1, max_length=2000)]
    expected: Annotated[str, Field(max_length=500)] | None = None
    min: float | None = None
    max: float | None = None
    unit: Annotated[str, Field(max_length=50)] = ""
    attachment: bool = False  # a photo or file may be attached
    note_required: bool = False  # the answer must say something in words (a root cause, a time)
    estimated_h: Annotated[float, Field(gt=0, le=100)] = 1.0

    @model_validator(mode="after")
    def _limits(self) -> ManualStep:
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"step {self.id}: min is above max")
        return self


Step = Annotated[
    CheckStep | PitstopStep | ActionStep | CommandStep | UpdateStep | RebootStep | ManualStep,
    Field(discriminator="kind"),
]


class ScheduleSpec(_Strict):
    """The schedule a procedure suggests; a site enables it with `pitstop procedures enable`."""

    cron: Annotated[str, Field(max_length=100)] | None = None
    every: Annotated[str, Field(max_length=20)] | None = None
    mode: Literal["fixed", "floating"] = "fixed"
    lead: Annotated[str, Field(max_length=20)] = "0h"
    grace: Annotated[str, Field(max_length=20)] | None = None
    window: Annotated[str, Field(max_length=200)] | None = None


class Procedure(_Strict):
    name: Annotated[str, Field(pattern=NAME.pattern)]
    title: Annotated[str, Field(min_length=1, max_length=300)]
    description: Annotated[str, Field(max_length=5000)] = ""
    asset_types: list[Annotated[str, Field(max_length=100)]] = Field(default_factory=list)
    estimated_hours: Annotated[float, Field(gt=0, le=1000)] = 1.0
    runbook: bool = False  # an emergency runbook: steps are timed
    # The on-call contact list ([oncall.contacts]) shown with its runs; None: shown for runbooks.
    # Printed copies (pitstop.maintenance.printable) always carry it.
    contacts: bool | None = None
    schedule: ScheduleSpec | None = None
    steps: Annotated[list[Step], Field(min_length=1, max_length=200)]

    @model_validator(mode="after")
    def _unique_steps(self) -> Procedure:
        seen: set[str] = set()
        for step in self.steps:
            if step.id in seen:
                raise ValueError(f"step id {step.id!r} is used twice")
            seen.add(step.id)
        return self

    def step(self, step_id: str) -> Step:
        for step in self.steps:
            if step.id == step_id:
                return step
        raise NotFound(f"procedure {self.name} has no step {step_id[:100]!r}")

    @property
    def manual_steps(self) -> list[ManualStep]:
        return [s for s in self.steps if isinstance(s, ManualStep)]


@dataclass(frozen=True, slots=True)
class ProcedureFile:
    procedure: Procedure
    content_hash: str
    source: str
    path: str
    origin: Literal["package", "user"]


def parse(text: str, *, fmt: Literal["toml", "yaml"], where: str = "procedure") -> Procedure:
    """A checked Procedure from file text; InvalidInput with one line naming the problem otherwise."""
    if len(text.encode("utf-8", "surrogatepass")) > MAX_FILE_BYTES:
        raise InvalidInput(f"{where}: larger than {MAX_FILE_BYTES // 1024} KiB")
    try:
        data = tomllib.loads(text) if fmt == "toml" else yaml.safe_load(text)
    except (tomllib.TOMLDecodeError, yaml.YAMLError, UnicodeError, ValueError, RecursionError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InvalidInput(f"{where}: not valid {fmt.upper()}: {first[:200]}") from None
    if not isinstance(data, dict):
        raise InvalidInput(f"{where}: the top level must be a table of name, title and steps")
    try:
        return Procedure.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(p) for p in err.get("loc", ())) or "procedure"
        raise InvalidInput(f"{where}: {loc}: {err.get('msg', 'invalid')}"[:300]) from None


def content_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def load_file(path: Path, origin: Literal["package", "user"] = "user") -> ProcedureFile:
    if path.suffix not in SUFFIXES:
        raise InvalidInput(f"{path.name}: procedures are .toml, .yaml or .yml files")
    try:
        raw = path.read_bytes()
        text = raw.decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"{path.name}: cannot read: {exc}") from None
    proc = parse(text, fmt="toml" if path.suffix == ".toml" else "yaml", where=path.name)
    return ProcedureFile(proc, content_hash(text), text, str(path), origin)


class Catalog:
    """The procedures a site has: shipped ones, replaced or joined by the site's own files."""

    def __init__(self, user_dir: Path | None = None) -> None:
        self.user_dir = user_dir

    def files(self) -> dict[str, ProcedureFile]:
        found: dict[str, ProcedureFile] = {}
        shipped = resources.files("pitstop") / "procedures"
        for entry in sorted(shipped.iterdir(), key=lambda e: e.name):
            if entry.name.endswith(SUFFIXES):
                with resources.as_file(entry) as path:
                    pf = load_file(path, "package")
                found[pf.procedure.name] = pf
        if self.user_dir is not None and self.user_dir.is_dir():
            for path in sorted(self.user_dir.iterdir()):
                if path.suffix in SUFFIXES:
                    pf = load_file(path, "user")
                    found[pf.procedure.name] = pf
        return found

    def get(self, name: str) -> ProcedureFile:
        files = self.files()
        if name not in files:
            raise NotFound(f"no procedure named {name[:100]!r}; known: {', '.join(sorted(files))}")
        return files[name]
