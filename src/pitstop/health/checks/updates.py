"""updates: pending OS package updates (apt) and Python packages with known advisories (pip-audit)."""

from __future__ import annotations

import importlib.util
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path, PurePosixPath
from typing import Any, ClassVar

from pitstop.core.types import Status
from pitstop.health.base import Check, CheckContext, CheckResult, Threshold, worst

# `apt list --upgradable`: "name/suite[,suite] new-version arch [upgradable from: old-version]"
APT_LINE = re.compile(
    r"^(?P<name>[^/\s]+)/(?P<suites>\S+)\s+(?P<version>\S+)\s+(?P<arch>\S+)\s+\[upgradable from: (?P<old>[^\]]+)\]"
)
# what pip-audit can pin without pip: a distribution name and a PEP 440 version
DIST_NAME = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?$")
PEP440 = re.compile(
    r"^(?:\d+!)?\d+(?:\.\d+)*(?:[-_.]?(?:a|b|c|rc|alpha|beta|pre|preview)[-_.]?\d*)?"
    r"(?:[-_.]?(?:post|rev|r)[-_.]?\d*)?(?:[-_.]?dev[-_.]?\d*)?(?:\+[a-z0-9]+(?:[-_.][a-z0-9]+)*)?$",
    re.IGNORECASE,
)
# Run by the audited environment's own python: its installed distributions, as JSON.
LIST_DISTRIBUTIONS = (
    "import importlib.metadata as m, json\n"
    "print(json.dumps([[d.metadata['Name'] or '', d.version or ''] for d in m.distributions()]))"
)
SHOWN = 5  # names and advisories listed in the summary, the rest counted
MAX_COMMAND_S = 300.0


@dataclass(frozen=True, slots=True)
class Upgrade:
    """One line of `apt list --upgradable`."""

    name: str
    suites: tuple[str, ...]
    version: str
    arch: str
    installed: str

    @property
    def security(self) -> bool:
        """From a security suite: Debian's `bookworm-security` (`oldstable-security`), Ubuntu's `jammy-security`."""
        return any(s.endswith("-security") for s in self.suites)


def parse_apt_upgradable(text: str) -> list[Upgrade]:
    """The upgradable packages in `apt list --upgradable` output; other lines ("Listing...",
    warnings) are not packages."""
    found = []
    for line in text.splitlines():
        match = APT_LINE.match(line.strip())
        if match:
            found.append(
                Upgrade(
                    match["name"],
                    tuple(s for s in match["suites"].split(",") if s),
                    match["version"],
                    match["arch"],
                    match["old"].strip(),
                )
            )
    return found


@dataclass(frozen=True, slots=True)
class Vulnerable:
    name: str
    version: str
    ids: tuple[str, ...]  # one per advisory, as pip-audit names it (PYSEC-..., a CVE, GHSA-...)
    aliases: tuple[str, ...]  # the other names of those advisories


@dataclass(frozen=True, slots=True)
class Audit:
    """pip-audit's JSON report: the audited distributions with advisories, and those it could not audit."""

    vulnerable: tuple[Vulnerable, ...]
    audited: int
    skipped: tuple[tuple[str, str], ...]  # (name, why)

    @property
    def vulns(self) -> int:
        return sum(len(v.ids) for v in self.vulnerable)


def parse_pip_audit(text: str) -> Audit:
    """pip-audit's `--format json` report (`{"dependencies": [{"name", "version", "vulns": [{"id",
    "fix_versions", "aliases"}]} | {"name", "skip_reason"}], "fixes": [...]}`); ValueError when
    the text is not such a report."""
    data = json.loads(text)
    if not isinstance(data, dict) or not isinstance(data.get("dependencies"), list):
        raise ValueError("not a pip-audit JSON report: no dependencies list")
    vulnerable, skipped, audited = [], [], 0
    for dep in data["dependencies"]:
        if not isinstance(dep, dict) or not isinstance(dep.get("name"), str):
            raise ValueError("not a pip-audit JSON report: a dependency without a name")
        if "skip_reason" in dep:
            skipped.append((dep["name"], str(dep["skip_reason"])))
            continue
        audited += 1
        vulns = dep.get("vulns") or []
        if not isinstance(vulns, list):
            raise ValueError(f"not a pip-audit JSON report: vulns of {dep['name']!r} is not a list")
        if vulns:
            ids = [str(v.get("id", "?")) if isinstance(v, dict) else "?" for v in vulns]
            aliases = [a for v in vulns if isinstance(v, dict) for a in v.get("aliases") or [] if isinstance(a, str)]
            vulnerable.append(Vulnerable(dep["name"], str(dep.get("version", "")), tuple(ids), tuple(aliases)))
    return Audit(tuple(vulnerable), audited, tuple(skipped))


@dataclass
class _Part:
    """What one half of the check found: metrics and words, or why it could not tell."""

    observed: dict[str, float] = field(default_factory=dict)
    text: str = ""
    unknown: str | None = None


class UpdatesCheck(Check):
    """Pending updates of this host (the target is a label, "localhost" by default).

    OS packages, where apt exists: `apt list --upgradable` (as of the host's last `apt-get
    update`) gives `os_updates` and `security_updates` (from a `-security` suite). Python
    packages, for the environment whose python is `python`: every distribution installed there
    is audited by pip-audit (JSON, pinned versions with --no-deps and --disable-pip, so it
    installs and resolves nothing) against its advisory service: `vulnerable_packages`,
    `vulnerabilities`, `unaudited_packages`. pip-audit's report carries no severity, so there is
    no `max_severity`. A part that cannot be judged (no apt; pip-audit not installed; the
    advisory service out of reach) says UNKNOWN in the summary and leaves its metrics out; the
    result is unknown unless the other part found something.

    params: python (absolute path), apt (true: check OS packages), pip_audit (absolute path of
    the pip-audit program; default: the one installed with pitstop, else on PATH), service
    ("pypi" or "osv"), osv_url (an OSV API mirror, with service "osv"), timeout_s (each command,
    default 120, at most 300), every_s (look again at most this often, default 3600; the rounds between
    report the last findings).
    """

    name = "updates"
    issue = "updates.pending"
    waits_on_network = True
    # the runner's limit: the three commands of a round (apt, the listing, pip-audit), each bounded
    timeout_s: ClassVar[float] = 3 * MAX_COMMAND_S + 5.0
    default_target = "localhost"
    default_thresholds = (
        Threshold("security_updates", "above", warning=1),
        Threshold("vulnerable_packages", "above", warning=1),
    )

    def configure(self, **params: Any) -> None:
        known = {"python", "apt", "pip_audit", "service", "osv_url", "timeout_s", "every_s"}
        if unknown := set(params) - known:
            raise ValueError(f"updates check: unknown parameter(s) {', '.join(sorted(unknown))}")
        self.python = _path(params, "python")
        self.pip_audit = _path(params, "pip_audit")
        self.apt = params.get("apt", True)
        if not isinstance(self.apt, bool):
            raise ValueError("updates check: apt must be true or false")
        if not self.apt and self.python is None:
            raise ValueError("updates check: nothing to check: apt is false and no python is given")
        self.service = params.get("service", "pypi")
        if self.service not in ("pypi", "osv"):
            raise ValueError("updates check: service must be 'pypi' or 'osv'")
        self.osv_url = params.get("osv_url")
        if self.osv_url is not None:
            if self.service != "osv":
                raise ValueError("updates check: osv_url needs service = 'osv'")
            if not isinstance(self.osv_url, str) or not re.match(r"^https?://[^\s\x00-\x1f]{1,2000}$", self.osv_url):
                raise ValueError("updates check: osv_url must be an http:// or https:// URL")
        self.command_timeout_s = _number(params, "timeout_s", 120.0, 1.0, MAX_COMMAND_S)
        self.every_s = _number(params, "every_s", 3600.0, 0.0, 7 * 86400.0)
        self._last: tuple[datetime, _Part, _Part] | None = None

    def run(self, ctx: CheckContext, /) -> CheckResult:
        now = ctx.clock.now()
        if self._last is not None and (now - self._last[0]).total_seconds() < self.every_s:
            os_part, py_part = self._last[1], self._last[2]
        else:
            os_part = self._os_packages() if self.apt else _Part()
            py_part = self._python_packages() if self.python is not None else _Part()
            self._last = (now, os_part, py_part)
        observed = os_part.observed | py_part.observed
        texts = [p.text for p in (os_part, py_part) if p.text]
        unknown = [p.unknown for p in (os_part, py_part) if p.unknown]
        judged = self.judge(ctx, observed, f"{self.target}: {'; '.join(texts + unknown)}")
        if not unknown:
            return judged
        # what could not be judged is not healthy: unknown, unless the rest found a problem
        return self.result(ctx, worst(judged.status, Status.UNKNOWN), judged.summary, observed=observed, clear=False)

    # -- OS packages ----------------------------------------------------------------------------

    def _os_packages(self) -> _Part:
        apt = shutil.which("apt")
        if apt is None:
            return _Part(unknown="OS packages: UNKNOWN (apt not found: not a Debian-family host)")
        try:
            done = subprocess.run(
                [apt, "list", "--upgradable"],
                capture_output=True,
                text=True,
                timeout=self.command_timeout_s,
                check=False,
                env={**os.environ, "LC_ALL": "C", "LANG": "C"},
            )
        except subprocess.TimeoutExpired:
            return _Part(unknown=f"OS packages: UNKNOWN (apt list timed out after {self.command_timeout_s:g} s)")
        if done.returncode != 0:
            return _Part(unknown=f"OS packages: UNKNOWN (apt list failed: {_last_line(done.stderr)})")
        upgrades = parse_apt_upgradable(done.stdout)
        security = [u.name for u in upgrades if u.security]
        text = f"{len(upgrades)} OS package update(s), {len(security)} security"
        if security:
            text += f" ({_some(security)})"
        return _Part({"os_updates": float(len(upgrades)), "security_updates": float(len(security))}, text)

    # -- Python packages ------------------------------------------------------------------------

    def _pip_audit_argv(self) -> list[str] | None:
        if self.pip_audit is not None:
            return [self.pip_audit] if Path(self.pip_audit).is_file() else None
        if importlib.util.find_spec("pip_audit") is not None:
            return [sys.executable, "-m", "pip_audit"]
        found = shutil.which("pip-audit")
        return [found] if found else None

    def _python_packages(self) -> _Part:
        assert self.python is not None
        where = f"Python packages of {self.python}"
        argv = self._pip_audit_argv()
        if argv is None:
            return _Part(unknown=f"{where}: UNKNOWN (pip-audit is not installed)")
        try:
            listed = subprocess.run(
                [self.python, "-I", "-c", LIST_DISTRIBUTIONS],
                capture_output=True,
                text=True,
                timeout=self.command_timeout_s,
                check=False,
            )
        except OSError as exc:
            return _Part(unknown=f"{where}: UNKNOWN (cannot run that python: {exc.strerror or exc})")
        except subprocess.TimeoutExpired:
            return _Part(unknown=f"{where}: UNKNOWN (listing them timed out)")
        try:
            dists = json.loads(listed.stdout) if listed.returncode == 0 else None
        except ValueError:
            dists = None
        if not isinstance(dists, list):
            return _Part(unknown=f"{where}: UNKNOWN (cannot list them: {_last_line(listed.stderr)})")
        pins, unpinnable = _pins(dists)
        if not pins:
            return _Part(unknown=f"{where}: UNKNOWN (no distribution pip-audit can audit)")
        with tempfile.TemporaryDirectory(prefix="pitstop-audit-") as tmp:
            requirements = Path(tmp) / "requirements.txt"
            requirements.write_text("".join(f"{n}=={v}\n" for n, v in pins))
            argv += ["-r", str(requirements), "--no-deps", "--disable-pip", "--format", "json"]
            argv += ["--progress-spinner", "off", "--desc", "off", "--aliases", "on"]
            argv += ["--vulnerability-service", self.service, "--timeout", str(max(1, int(self.command_timeout_s)))]
            if self.osv_url:
                argv += ["--osv-url", self.osv_url]
            try:
                done = subprocess.run(
                    argv, capture_output=True, text=True, timeout=self.command_timeout_s, check=False, cwd=tmp
                )
            except subprocess.TimeoutExpired:
                return _Part(unknown=f"{where}: UNKNOWN (pip-audit timed out after {self.command_timeout_s:g} s)")
        try:
            audit = parse_pip_audit(done.stdout)
        except ValueError:
            # no report: pip-audit stopped, mostly because its advisory service is out of reach
            why = _last_line(done.stderr) or f"exit {done.returncode}"
            return _Part(unknown=f"{where}: UNKNOWN (pip-audit could not audit, offline? {why})")
        skipped = len(audit.skipped) + unpinnable
        if audit.audited == 0:
            reason = audit.skipped[0][1] if audit.skipped else "nothing audited"
            return _Part(unknown=f"{where}: UNKNOWN (pip-audit audited none of {skipped}: {reason[:200]})")
        text = f"{len(audit.vulnerable)} Python package(s) with known advisories of {audit.audited} audited"
        if audit.vulnerable:
            text += f" ({_some([_advised(v) for v in audit.vulnerable])})"
        if skipped:
            text += f", {skipped} not audited"
        observed = {
            "vulnerable_packages": float(len(audit.vulnerable)),
            "vulnerabilities": float(audit.vulns),
            "unaudited_packages": float(skipped),
        }
        return _Part(observed, f"{text} in {self.python}")


def _pins(dists: Sequence[Any]) -> tuple[list[tuple[str, str]], int]:
    """(name, version) pairs pip-audit can pin, one per distribution name, and how many could not be."""
    pins: dict[str, tuple[str, str]] = {}
    bad = 0
    for item in dists:
        if not (isinstance(item, list) and len(item) == 2 and all(isinstance(x, str) for x in item)):
            bad += 1
            continue
        name, version = item
        if not DIST_NAME.match(name) or not PEP440.match(version):
            bad += 1
            continue
        pins.setdefault(re.sub(r"[-_.]+", "-", name).lower(), (name, version))  # the first on the path wins
    return sorted(pins.values()), bad


def _path(params: Mapping[str, Any], key: str) -> str | None:
    value = params.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or "\x00" in value or len(value) > 1000 or not PurePosixPath(value).is_absolute():
        raise ValueError(f"updates check: {key} must be an absolute path")
    return value


def _number(params: Mapping[str, Any], key: str, default: float, low: float, high: float) -> float:
    value = params.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"updates check: {key} must be a number of seconds")
    if not low <= value <= high:
        raise ValueError(f"updates check: {key} must be between {low:g} and {high:g} seconds")
    return float(value)


def _advised(v: Vulnerable) -> str:
    more = f" and {len(v.ids) - 3} more" if len(v.ids) > 3 else ""
    return f"{v.name} {v.version}: {' '.join(v.ids[:3])}{more}"


def _some(items: Sequence[str]) -> str:
    shown = ", ".join(items[:SHOWN])
    return shown + (f" and {len(items) - SHOWN} more" if len(items) > SHOWN else "")


def _last_line(text: str) -> str:
    lines = [line.strip() for line in (text or "").splitlines() if line.strip()]
    return lines[-1][:300] if lines else ""
