"""Software updates with rollback: the `update` step of a procedure.

One update, in order: refuse outside a maintenance window; copy the files it touches into the
run's folder; read the version before; make sure it can be undone (pip: keep the wheels of the
versions it replaces; apt: keep the .deb); apply it; restart; run the smoke test. When the update
or its smoke test fails it rolls back (the previous versions, the files exactly as they were, the
configured rollback command), restarts and runs the smoke test again. Every stage is an entry of
kind `update` in the maintenance log, with the versions, written as it happens: a process that
dies in the middle leaves the record of how far it got.

Files are copied into the run's folder rather than into a backup set: a copy keeps modes,
times and symlinks, lives as long as the run's record (retention never prunes it mid-update),
and restoring it puts back exactly what was there, removing what the update added.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import httpx

from pitstop.core.clock import Clock
from pitstop.maintenance.log import MaintenanceLog
from pitstop.maintenance.procedures import REQUIREMENT, SmokeTest, UpdateStep
from pitstop.storage.engine import Database

MAX_TEXT = 4000
APT_ARCHIVES = Path("/var/cache/apt/archives")

# (check name, target, params) -> (passed, what it saw), passed None when the check could not run;
# the procedure runner's way of running a health check
RunCheck = Callable[[str, str, Mapping[str, Any]], tuple[bool | None, str]]


@dataclass(frozen=True, slots=True)
class Done:
    """What one command did."""

    ok: bool
    output: str

    @classmethod
    def of(cls, argv: Sequence[str], timeout_s: float, *, env: Mapping[str, str] | None = None) -> Done:
        try:
            done = subprocess.run(
                list(argv),
                capture_output=True,
                text=True,
                timeout=timeout_s,
                check=False,
                env={**os.environ, **env} if env else None,
            )
        except subprocess.TimeoutExpired:
            return cls(False, f"{_show(argv)}: timed out after {timeout_s:g} s")
        except OSError as exc:
            return cls(False, f"{_show(argv)}: cannot run: {exc.strerror or exc}")
        tail = (done.stdout + done.stderr).strip()[-1500:]
        return cls(done.returncode == 0, f"{_show(argv)}: exit {done.returncode}" + (f"\n{tail}" if tail else ""))


@dataclass(frozen=True, slots=True)
class Outcome:
    """The step's result: passed, failed or skipped, what happened, the version installed after it."""

    status: str
    output: str
    version: str | None = None


class Method(Protocol):
    what: str  # what is updated, for the record: a distribution, a package, "command"

    def version(self) -> str | None: ...
    def prepare(self, folder: Path) -> str | None: ...  # why it could not be undone; None: ready
    def pending(self) -> bool: ...  # False: nothing to update
    def apply(self) -> Done: ...
    def changes(self) -> str: ...  # what the update changed, one line per item
    def rollback(self) -> Done: ...


def canonical(name: str) -> str:
    """A distribution name as pip compares them (PEP 503)."""
    return re.sub(r"[-_.]+", "-", name).lower()


@dataclass
class PipMethod:
    """`requirement` into the environment of `python`. Before applying, pip's own dry run says
    which distributions the update replaces, and their wheels are kept in the run's folder, so
    the rollback reinstalls exactly the previous versions without any index (and removes what
    the update added)."""

    python: str
    requirement: str
    pip_args: Sequence[str]
    timeout_s: float
    what: str = ""
    before: dict[str, str] = field(default_factory=dict)
    after: dict[str, str] = field(default_factory=dict)
    plan: dict[str, str] = field(default_factory=dict)
    folder: Path = Path()

    def __post_init__(self) -> None:
        match = REQUIREMENT.match(self.requirement)
        assert match is not None  # the step model checked it
        self.what = canonical(match["name"])

    def _pip(self, *args: str) -> list[str]:
        return [self.python, "-m", "pip", "--disable-pip-version-check", "--no-input", *args]

    def installed(self) -> dict[str, str]:
        done = subprocess.run(
            self._pip("list", "--format=json"), capture_output=True, text=True, timeout=self.timeout_s, check=False
        )
        if done.returncode != 0:
            raise UpdateError(f"pip list in {self.python} failed: {(done.stderr or done.stdout).strip()[-300:]}")
        return {canonical(d["name"]): str(d["version"]) for d in json.loads(done.stdout)}

    def version(self) -> str | None:
        self.after = self.installed()
        return self.after.get(self.what)

    def prepare(self, folder: Path) -> str | None:
        if not Path(self.python).is_file():
            return f"no python at {self.python}"
        self.folder = folder
        self.before = self.installed()
        # the environment before, as pins (pip freeze would name local files, not versions)
        (folder / "pip-freeze-before.txt").write_text("".join(f"{n}=={v}\n" for n, v in sorted(self.before.items())))
        report = folder / "pip-plan.json"
        dry = Done.of(
            self._pip("install", "--dry-run", "--quiet", "--report", str(report), *self.pip_args, self.requirement),
            self.timeout_s,
        )
        if not dry.ok or not report.is_file():
            return f"pip could not plan the update (pip 22.2 or newer is needed): {dry.output}"
        installs = json.loads(report.read_text()).get("install", [])
        self.plan = {canonical(i["metadata"]["name"]): str(i["metadata"]["version"]) for i in installs}
        for name, version in sorted(self.plan.items()):
            old = self.before.get(name)
            if old is None or old == version:
                continue
            # a wheel (built now if the source has only an sdist), so the rollback installs offline
            wheel = ["wheel", "--no-deps", "--quiet", "-w", str(folder / "wheels"), *self.pip_args, f"{name}=={old}"]
            kept = Done.of(self._pip(*wheel), self.timeout_s)
            if not kept.ok:
                return f"cannot keep {name} {old} for a rollback: {kept.output}"
        return None

    def pending(self) -> bool:
        return bool(self.plan)

    def apply(self) -> Done:
        return Done.of(self._pip("install", "--quiet", *self.pip_args, self.requirement), self.timeout_s)

    def changes(self) -> str:
        names = sorted(set(self.before) | set(self.after))
        moved = [n for n in names if self.before.get(n) != self.after.get(n)]
        return "\n".join(f"{n}: {self.before.get(n) or 'none'} -> {self.after.get(n) or 'none'}" for n in moved)

    def rollback(self) -> Done:
        now = self.installed()
        back = {n: v for n, v in self.before.items() if now.get(n) != v}
        added = sorted(n for n in now if n not in self.before)
        lines = []
        if back:
            # --no-deps: the previous set is restored as it was, one pinned distribution at a time
            sources = ["--no-index", "--find-links", str(self.folder / "wheels")]
            pins = [f"{n}=={v}" for n, v in sorted(back.items())]
            done = Done.of(self._pip("install", "--quiet", "--no-deps", *sources, *pins), self.timeout_s)
            lines.append(done.output)
            if not done.ok:
                return Done(False, "\n".join(lines))
        if added:
            done = Done.of(self._pip("uninstall", "--yes", *added), self.timeout_s)
            lines.append(done.output)
            if not done.ok:
                return Done(False, "\n".join(lines))
        self.after = self.installed()
        differs = sorted(n for n in set(self.before) | set(self.after) if self.before.get(n) != self.after.get(n))
        if differs:
            lines.append(f"still different from before the update: {', '.join(differs)}")
            return Done(False, "\n".join(lines))
        lines.append("every distribution is back at its version before the update")
        return Done(True, "\n".join(lines))


@dataclass
class CommandMethod:
    """A configured command applies the update; `version_command` prints the version (its first
    line); `rollback` undoes it (the backed-up files are restored in any case)."""

    command: Sequence[str]
    version_command: Sequence[str]
    rollback_command: Sequence[str]
    timeout_s: float
    what: str = "command"
    before: str | None = None

    def version(self) -> str | None:
        if not self.version_command:
            return None
        try:
            done = subprocess.run(
                list(self.version_command), capture_output=True, text=True, timeout=self.timeout_s, check=False
            )
        except (OSError, subprocess.TimeoutExpired):
            return None
        lines = done.stdout.strip().splitlines()
        return lines[0].strip()[:200] if done.returncode == 0 and lines else None

    def prepare(self, folder: Path) -> str | None:
        self.before = self.version()
        return None

    def pending(self) -> bool:
        return True

    def apply(self) -> Done:
        return Done.of(self.command, self.timeout_s)

    def changes(self) -> str:
        return f"{self.before or '?'} -> {self.version() or '?'}"

    def rollback(self) -> Done:
        if not self.rollback_command:
            return Done(True, "no rollback command: the backed-up files are restored")
        return Done.of(self.rollback_command, self.timeout_s)


@dataclass
class PackageMethod:
    """An apt package, upgraded (to `version` when given). Its previous .deb is kept in the run's
    folder first (from apt's cache, else downloaded), and the rollback installs that file."""

    package: str
    target_version: str | None
    timeout_s: float
    what: str = ""
    before: str | None = None
    kept: Path | None = None
    env: Mapping[str, str] = field(default_factory=lambda: {"DEBIAN_FRONTEND": "noninteractive", "LC_ALL": "C"})

    def __post_init__(self) -> None:
        self.what = self.package

    def version(self) -> str | None:
        argv = ["dpkg-query", "--show", "--showformat=${Version}", self.package]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=self.timeout_s, check=False)
        return (done.stdout.strip() or None) if done.returncode == 0 else None

    def prepare(self, folder: Path) -> str | None:
        if shutil.which("apt-get") is None:
            return "apt-get is not installed"
        self.before = self.version()
        if self.before is None:
            return None  # a new package: the rollback removes it
        name = f"{self.package}_{self.before.replace(':', '%3a')}_"
        cached = sorted(APT_ARCHIVES.glob(f"{glob_escape(name)}*.deb")) if APT_ARCHIVES.is_dir() else []
        if cached:
            self.kept = Path(shutil.copy2(cached[0], folder / cached[0].name))
            return None
        got = subprocess.run(
            ["apt-get", "download", f"{self.package}={self.before}"],
            cwd=folder,
            capture_output=True,
            text=True,
            timeout=self.timeout_s,
            check=False,
        )
        found = sorted(folder.glob(f"{glob_escape(name)}*.deb"))
        if got.returncode != 0 or not found:
            return (
                f"cannot keep {self.package} {self.before} for a rollback: {(got.stderr or got.stdout).strip()[-300:]}"
            )
        self.kept = found[0]
        return None

    def pending(self) -> bool:
        return self.target_version is None or self.target_version != self.before

    def apply(self) -> Done:
        pin = f"{self.package}={self.target_version}" if self.target_version else self.package
        only = [] if self.target_version or self.before is None else ["--only-upgrade"]
        argv = ["apt-get", "install", "-y", "-o", "Dpkg::Options::=--force-confold", *only, pin]
        return Done.of(argv, self.timeout_s, env=self.env)

    def changes(self) -> str:
        return f"{self.package}: {self.before or 'none'} -> {self.version() or 'none'}"

    def rollback(self) -> Done:
        if self.kept is None:
            return Done.of(["apt-get", "remove", "-y", self.package], self.timeout_s, env=self.env)
        argv = ["apt-get", "install", "-y", "--allow-downgrades", "-o", "Dpkg::Options::=--force-confold"]
        return Done.of([*argv, str(self.kept)], self.timeout_s, env=self.env)


def glob_escape(text: str) -> str:
    return re.sub(r"([*?\[])", r"[\1]", text)


class UpdateError(Exception):
    """The update could not be carried out (not a failed smoke test: that is a result)."""


# what stops an update part-way: a command that could not run or timed out, unreadable output
# Whatever stops an update once it changed something (a check that raises, an invalid smoke-test URL,
# a pip that times out) ends in the rollback: the update must not stay half applied.
BROKEN = (Exception,)


# -- files ---------------------------------------------------------------------------------------


def digest(path: Path) -> str:
    """A fingerprint of a file or tree: names, modes, symlink targets and contents; "" when absent."""
    if not path.exists() and not path.is_symlink():
        return ""
    h = hashlib.sha256()
    items = [path] if not path.is_dir() or path.is_symlink() else [path, *sorted(path.rglob("*"))]
    for item in items:
        st = item.lstat()
        h.update(f"{item.relative_to(path)}\0{st.st_mode}\0".encode(errors="surrogateescape"))
        if item.is_symlink():
            h.update(str(item.readlink()).encode(errors="surrogateescape"))
        elif item.is_file():
            with item.open("rb") as fh:
                for chunk in iter(lambda: fh.read(1 << 20), b""):
                    h.update(chunk)
    return h.hexdigest()


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


def _copy(src: Path, dst: Path) -> None:
    if src.is_dir() and not src.is_symlink():
        shutil.copytree(src, dst, symlinks=True)
    else:
        shutil.copy2(src, dst, follow_symlinks=False)


def keep_files(paths: Sequence[str], folder: Path) -> list[dict[str, str]]:
    """Copy each path into `folder/files/<n>`; the manifest says where each came from and its digest."""
    manifest = []
    for n, raw in enumerate(paths):
        src = Path(raw)
        copy = folder / "files" / str(n)
        copy.parent.mkdir(parents=True, exist_ok=True)
        if src.exists() or src.is_symlink():
            _copy(src, copy)
        manifest.append({"path": raw, "copy": str(copy), "digest": digest(src)})
    (folder / "files.json").write_text(json.dumps(manifest, indent=1))
    return manifest


def restore_files(manifest: Sequence[Mapping[str, str]]) -> list[str]:
    """Put every kept path back exactly (absent ones removed); the paths that still differ."""
    wrong = []
    for item in manifest:
        path, copy = Path(item["path"]), Path(item["copy"])
        if digest(path) == item["digest"]:
            continue
        _remove(path)
        if item["digest"]:
            path.parent.mkdir(parents=True, exist_ok=True)
            _copy(copy, path)
        if digest(path) != item["digest"]:
            wrong.append(str(path))
    return wrong


# -- the smoke test ------------------------------------------------------------------------------


def smoke_test(spec: SmokeTest, asset: str, run_check: RunCheck) -> tuple[bool, list[str]]:
    """Every part of the smoke test, each with what it saw; passed only when all passed."""
    ok, lines = True, []
    for c in spec.checks:
        target = c.target.replace("{asset}", asset or "system")
        outcome, seen = run_check(c.check, target, c.params)
        passed = outcome is True
        ok = ok and passed
        lines.append(f"check {c.check} {target}: {'passed' if passed else 'FAILED'}: {seen}")
    if spec.http is not None:
        url = spec.http.url.replace("{asset}", asset)
        try:
            status = httpx.get(url, timeout=spec.timeout_s, follow_redirects=False).status_code
            passed, seen = status == spec.http.status, f"status {status}, expected {spec.http.status}"
        except httpx.HTTPError as exc:
            passed, seen = False, f"{type(exc).__name__}: {exc}"[:300]
        ok = ok and passed
        lines.append(f"http GET {url}: {'passed' if passed else 'FAILED'}: {seen}")
    if spec.command:
        done = Done.of([a.replace("{asset}", asset) for a in spec.command], spec.timeout_s)
        ok = ok and done.ok
        lines.append(f"command {'passed' if done.ok else 'FAILED'}: {done.output[:500]}")
    return ok, lines


# -- the update ----------------------------------------------------------------------------------


def method_of(step: UpdateStep) -> Method:
    if step.method == "pip":
        assert step.python is not None and step.requirement is not None
        return PipMethod(step.python, step.requirement, step.pip_args, step.timeout_s)
    if step.method == "command":
        return CommandMethod(step.command, step.version_command, step.rollback, step.timeout_s)
    assert step.package is not None
    return PackageMethod(step.package, step.version, step.timeout_s)


@dataclass(frozen=True, slots=True)
class RunInfo:
    """The procedure run an update belongs to."""

    run_id: int
    procedure: str
    asset: str
    actor: str


class Updater:
    def __init__(self, db: Database, clock: Clock, work_dir: Path | None, run_check: RunCheck) -> None:
        self.log = MaintenanceLog(db, clock)
        self.work_dir = work_dir
        self.run_check = run_check
        self.sleep: Callable[[float], None] = time.sleep

    def run(self, step: UpdateStep, run: RunInfo, *, window: str | None) -> Outcome:
        method = method_of(step)
        record = _Record(self.log, step, run, method.what)
        if window is None:
            why = f"no maintenance window covers {run.asset or 'the system'} now"
            record.entry("refused", f"update refused: {why}", issues=why)
            return Outcome("skipped", f"update refused: {why}")
        if self.work_dir is None:
            raise UpdateError("this runner has no folder for run files (work_dir)")
        folder = self.work_dir / f"run-{run.run_id}" / step.id
        folder.mkdir(parents=True, exist_ok=True)
        attempt = _Attempt()
        try:
            return self._update(step, run, method, folder, record, window, attempt)
        except BROKEN as exc:
            why = f"{type(exc).__name__}: {exc}"[:MAX_TEXT]
            record.entry("error", f"update of {method.what} stopped: {why}", issues=why)
            if attempt.undone:  # it stopped in the rollback itself: the kept files were put back
                return Outcome(
                    "failed", f"update stopped: {why}\nthe rollback did not finish; files restored"[:MAX_TEXT]
                )
            if not attempt.touched:
                return Outcome("failed", f"update stopped: {why}")
            try:  # it stopped after changing something: undo what can be undone
                _, restored, files = self._undo(method, attempt, record, after=None)
            except BROKEN as again:
                return Outcome("failed", f"update stopped: {why}\nthe rollback FAILED too: {again}"[:MAX_TEXT])
            return Outcome("failed", f"update stopped: {why}\nrolled back to {restored or 'none'}: {files}", restored)

    def _undo(
        self, method: Method, attempt: _Attempt, record: _Record, *, after: str | None
    ) -> tuple[bool, str | None, str]:
        """Roll back: the method's way, then the files exactly as kept. (done, version now, files)."""
        try:
            rolled = method.rollback()
        finally:  # the kept files go back even when the method's rollback fails
            wrong = restore_files(attempt.manifest)
            attempt.undone = True
        restored = method.version()
        ok = rolled.ok and not wrong
        files = f"files restored: {len(attempt.manifest) - len(wrong)} of {len(attempt.manifest)}" + (
            f"; still different: {', '.join(wrong)}" if wrong else ""
        )
        record.entry(
            "rolled_back" if ok else "rollback_failed",
            f"rollback {method.what} {after or '?'} -> {restored or 'none'}: {'done' if ok else 'FAILED'}",
            actions=f"{rolled.output}\n{files}",
            issues="" if ok else f"{rolled.output}\n{files}",
            before=after,
            after=restored,
        )
        return ok, restored, files

    def _update(
        self,
        step: UpdateStep,
        run: RunInfo,
        method: Method,
        folder: Path,
        record: _Record,
        window: str,
        attempt: _Attempt,
    ) -> Outcome:
        attempt.manifest = keep_files(step.backup, folder)
        if why := method.prepare(folder):
            record.entry("refused", f"update of {method.what} refused: {why}"[:500], issues=why)
            return Outcome("failed", f"update refused: {why}")
        before = method.version()
        if not method.pending():
            text = f"{method.what} {before or '?'}: nothing to update ({step.requirement or step.version or ''})"
            record.entry("unchanged", text.strip(), before=before, after=before)
            return Outcome("passed", text, before)
        attempt.touched = True
        applied = method.apply()
        after = method.version()
        record.entry(
            "applied" if applied.ok else "apply_failed",
            f"update {method.what} {before or 'none'} -> {after or 'none'}: {'applied' if applied.ok else 'FAILED'}",
            actions=f"{applied.output}\n{method.changes()}",
            issues="" if applied.ok else applied.output,
            before=before,
            after=after,
            window=window,
        )
        story = [f"{method.what} {before or 'none'} -> {after or 'none'} in window {window}"]
        if applied.ok:
            passed, lines = self._smoke(step, run, method.what, after, record, "smoke test")
            story.append(f"smoke test {'passed' if passed else 'FAILED'}: " + "; ".join(lines))
            if passed:
                return Outcome("passed", "\n".join(story)[:MAX_TEXT], after)
        else:
            story.append(f"the update FAILED: {applied.output}")
        ok, restored, files = self._undo(method, attempt, record, after=after)
        story.append(f"rolled back to {restored or 'none'}{'' if ok else ' INCOMPLETELY'}: {files}")
        passed, lines = self._smoke(step, run, method.what, restored, record, "smoke test after rollback")
        story.append(f"smoke test after rollback {'passed' if passed else 'FAILED'}: " + "; ".join(lines))
        return Outcome("failed", "\n".join(story)[:MAX_TEXT], restored)

    def _smoke(
        self, step: UpdateStep, run: RunInfo, what: str, version: str | None, record: _Record, name: str
    ) -> tuple[bool, list[str]]:
        if step.restart:
            restarted = Done.of([a.replace("{asset}", run.asset) for a in step.restart], step.timeout_s)
            if not restarted.ok:
                record.entry("restart_failed", f"restart after the update of {what} FAILED", issues=restarted.output)
                return False, [f"restart FAILED: {restarted.output[:500]}"]
        if step.settle_s:
            self.sleep(step.settle_s)
        passed, lines = smoke_test(step.smoke, run.asset, self.run_check)
        record.entry(
            "smoke_passed" if passed else "smoke_failed",
            f"{name} {'passed' if passed else 'FAILED'} on {what} {version or 'none'}",
            actions="\n".join(lines),
            issues="" if passed else "\n".join(line for line in lines if "FAILED" in line),
            after=version,
        )
        return passed, lines


@dataclass
class _Attempt:
    """How far an update got: what was kept, whether anything was changed, whether it was undone."""

    manifest: list[dict[str, str]] = field(default_factory=list)
    touched: bool = False
    undone: bool = False


@dataclass
class _Record:
    """The maintenance log entries of one update (kind `update`, ref `run:<id>/<step>`)."""

    log: MaintenanceLog
    step: UpdateStep
    run: RunInfo
    what: str

    def entry(
        self,
        result: str,
        summary: str,
        *,
        actions: str = "",
        issues: str = "",
        before: str | None = None,
        after: str | None = None,
        window: str | None = None,
    ) -> None:
        facts = {"procedure": self.run.procedure, "step": self.step.id, "method": self.step.method, "what": self.what}
        facts |= {k: v for k, v in (("before", before), ("after", after), ("window", window)) if v is not None}
        self.log.append(
            "update",
            _clean(summary)[:500],
            actor=self.run.actor,
            asset=self.run.asset,
            issues=_clean(issues),
            actions=_clean(f"{json.dumps(facts, sort_keys=True)}\n{actions}".strip()),
            result=result,
            ref=f"run:{self.run.run_id}/{self.step.id}",
        )


def _clean(text: str) -> str:
    """Command output made fit for the log: no control bytes but tabs and newlines, bounded."""
    return "".join(c if c in "\t\n" or ord(c) >= 32 else "?" for c in text.replace("\r", ""))[:MAX_TEXT]


_URL_CREDENTIALS = re.compile(r"(?<=://)[^/@\s]+@")


def _show(argv: Sequence[str]) -> str:
    """A command as the log shows it: a URL's user:password@ (an index URL with a token) masked."""
    return _URL_CREDENTIALS.sub("***@", " ".join(argv))[:300]
