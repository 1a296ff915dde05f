"""Procedures as code: TOML or YAML files with steps, versioned by content.

A step is automated — `check` (a health check by name), `action` (a remediation action, run
through the self-healing engine's guards), `command` (a configured command with a timeout and
captured output) — or `manual` (a checklist item: an instruction, an expected value or numeric
limits, pass/fail, a note, an optional attachment). `within` on a step (e.g. "5m") makes it
timed, for emergency runbooks.

Shipped procedures live in `pitstop/procedures/` (package data); a site's own files in
`<data_dir>/procedures/` replace shipped ones of the same name. A version is (number, sha256
of the file); a run records the version it ran.
"""

from __future__ import annotations

import hashlib
import tomllib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from pitstop.errors import InvalidInput, NotFound
from pitstop.maintenance.common import NAME, duration

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


class CheckStep(_Step):
    kind: Literal["check"]
    check: Annotated[str, Field(min_length=1, max_length=100)]
    target: Annotated[str, Field(min_length=1, max_length=500)] = "{asset}"
    params: dict[str, Any] = Field(default_factory=dict)


class ActionStep(_Step):
    kind: Literal["action"]
    action: Annotated[str, Field(min_length=1, max_length=100)]
    params: dict[str, Any] = Field(default_factory=dict)
    disruptive: bool = False  # runs only inside a maintenance window that covers the asset


class CommandStep(_Step):
    kind: Literal["command"]
    command: Annotated[list[Annotated[str, Field(min_length=1, max_length=1000)]], Field(min_length=1, max_length=50)]
    timeout_s: Annotated[float, Field(gt=0, le=3600)] = 60.0
    disruptive: bool = False  # runs only inside a maintenance window that covers the asset


class ManualStep(_Step):
    kind: Literal["manual"]
    instruction: Annotated[str, Field(min_length=1, max_length=2000)]
    expected: Annotated[str, Field(max_length=500)] | None = None
    min: float | None = None
    max: float | None = None
    unit: Annotated[str, Field(max_length=50)] = ""
    attachment: bool = False  # a photo or file may be attached
    estimated_h: Annotated[float, Field(gt=0, le=100)] = 1.0

    @model_validator(mode="after")
    def _limits(self) -> ManualStep:
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"step {self.id}: min is above max")
        return self


Step = Annotated[CheckStep | ActionStep | CommandStep | ManualStep, Field(discriminator="kind")]


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
