"""The `updates` check: this machine's real apt, the real pip-audit against an advisory service
of the test's own (an OSV API on a free local port), a scratch environment with a probe package
in it; never the network, except the one run against pip-audit's default service, which says
why it skips when that service cannot answer."""

from __future__ import annotations

import http.server
import importlib.util
import json
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from pitstop.core.types import Status
from pitstop.health.base import CheckContext, CheckResult, checks
from pitstop.health.checks.updates import UpdatesCheck, parse_apt_upgradable, parse_pip_audit
from pitstop.health.runner import CheckRunner
from pitstop.health.specs import CheckSpec
from pitstop.storage import Database
from pitstop.testing.clock import FrozenClock
from pitstop.testing.server import free_port
from pitstop.testing.services import unavailable
from tests.integration.test_update_rollback import build_probe

# `apt list --upgradable` as Debian 12 prints it (this machine's format; the names are real
# packages), with its warning and header, a package in two suites, and Ubuntu's security suite.
APT_SAMPLE = """
WARNING: apt does not have a stable CLI interface. Use with caution in scripts.

Listing...
apt/oldstable-security 2.6.2 amd64 [upgradable from: 2.6.1]
base-files/oldstable 12.4+deb12u15 amd64 [upgradable from: 12.4+deb12u11]
bash/oldstable 5.2.15-2+b13 amd64 [upgradable from: 5.2.15-2+b8]
ca-certificates/oldstable-security 20250419~deb12u2 all [upgradable from: 20230311+deb12u1]
krb5-locales/oldstable,oldstable-security 1.20.1-2+deb12u5 all [upgradable from: 1.20.1-2+deb12u3]
libssl3/bookworm-security 3.0.17-1~deb12u3 amd64 [upgradable from: 3.0.15-1~deb12u1]
openssh-client/jammy-updates,jammy-security 1:8.9p1-3ubuntu0.13 amd64 [upgradable from: 1:8.9p1-3ubuntu0.10]
tzdata/stable-updates 2025b-0+deb12u1 all [upgradable from: 2024a-0+deb12u1]
"""


def test_the_apt_output_format_is_parsed() -> None:
    upgrades = parse_apt_upgradable(APT_SAMPLE)
    assert [u.name for u in upgrades] == [
        "apt",
        "base-files",
        "bash",
        "ca-certificates",
        "krb5-locales",
        "libssl3",
        "openssh-client",
        "tzdata",
    ]
    assert [u.name for u in upgrades if u.security] == [
        "apt",
        "ca-certificates",
        "krb5-locales",
        "libssl3",
        "openssh-client",
    ]
    ssh = upgrades[6]
    assert ssh.suites == ("jammy-updates", "jammy-security") and ssh.version == "1:8.9p1-3ubuntu0.13"
    assert ssh.arch == "amd64" and ssh.installed == "1:8.9p1-3ubuntu0.10"
    assert parse_apt_upgradable("Listing...\nE: Could not open lock file\n") == []
    assert parse_apt_upgradable("") == []


def ctx() -> CheckContext:
    return CheckContext(clock=FrozenClock(), db=Database("sqlite:///:memory:"))


def run(params: dict[str, Any], context: CheckContext | None = None) -> CheckResult:
    (result,) = CheckRunner([CheckSpec("updates", "localhost", params=params)], workers=1).run(context or ctx())
    return result


def test_apt_on_this_machine() -> None:
    apt = shutil.which("apt")
    if apt is None:
        unavailable("apt is not installed: not a Debian-family machine")
        return
    listed = subprocess.run(
        [apt, "list", "--upgradable"],
        capture_output=True,
        text=True,
        timeout=120,
        env={"LC_ALL": "C", "PATH": "/usr/bin:/bin"},
    )
    lines = [line for line in listed.stdout.splitlines() if "[upgradable from:" in line]
    security = [line for line in lines if "-security" in line.split()[0]]

    result = run({"every_s": 0})

    assert result.observed["os_updates"] == len(lines)
    assert result.observed["security_updates"] == len(security)
    assert result.status is (Status.WARNING if security else Status.HEALTHY)  # warning from one security update
    assert f"{len(lines)} OS package update(s), {len(security)} security" in result.summary
    assert result.incident_key == "updates.pending:localhost"
    assert "vulnerable_packages" not in result.observed  # no python environment configured


def test_without_apt_the_os_part_is_unknown(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # a host without apt on its PATH
    result = run({"every_s": 0})
    assert result.status is Status.UNKNOWN and result.error is None  # not a broken check
    assert "OS packages: UNKNOWN (apt not found" in result.summary
    assert "os_updates" not in result.observed


# pip-audit's JSON report (`pip-audit -f json`), as its documentation and its JsonFormat write it.
PIP_AUDIT_SAMPLE = {
    "dependencies": [
        {"name": "flask", "version": "0.5", "vulns": [
            {"id": "PYSEC-2019-179", "fix_versions": ["1.0"], "aliases": ["CVE-2019-1010083"]},
            {"id": "PYSEC-2018-66", "fix_versions": ["0.12.3"], "aliases": ["CVE-2018-1000656", "GHSA-562c-5r94-xh97"]},
        ]},
        {"name": "jinja2", "version": "3.1.6", "vulns": []},
        {"name": "requests", "version": "2.19.0", "vulns": [{"id": "GHSA-x84v-xcm2-53pg", "fix_versions": ["2.20.0"]}]},
        {"name": "our-tool", "skip_reason": "Dependency not found on PyPI and could not be audited: our-tool (1.2)"},
    ],
    "fixes": [],
}  # fmt: skip


def test_the_pip_audit_report_format_is_parsed() -> None:
    audit = parse_pip_audit(json.dumps(PIP_AUDIT_SAMPLE))
    assert audit.audited == 3 and audit.vulns == 3
    assert [(v.name, v.version, v.ids) for v in audit.vulnerable] == [
        ("flask", "0.5", ("PYSEC-2019-179", "PYSEC-2018-66")),
        ("requests", "2.19.0", ("GHSA-x84v-xcm2-53pg",)),
    ]
    assert audit.vulnerable[0].aliases == ("CVE-2019-1010083", "CVE-2018-1000656", "GHSA-562c-5r94-xh97")
    assert audit.skipped == (("our-tool", PIP_AUDIT_SAMPLE["dependencies"][3]["skip_reason"]),)  # type: ignore[index]
    for broken in ("", "not json", "[]", '{"fixes": []}', '{"dependencies": [{"version": "1"}]}',
                   '{"dependencies": [{"name": "x", "version": "1", "vulns": 3}]}'):  # fmt: skip
        with pytest.raises(ValueError):
            parse_pip_audit(broken)


# -- the real pip-audit ------------------------------------------------------------------------------


def need_pip_audit() -> None:
    if importlib.util.find_spec("pip_audit") is None and shutil.which("pip-audit") is None:
        unavailable("pip-audit is not installed (pip install pip-audit)")


class AdvisoryService:
    """An OSV API (`POST /v1/query`) of the test's own: advisories for the probe at 1.0, none else."""

    def __init__(self) -> None:
        self.queries: list[tuple[str, str]] = []
        service = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                query = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                name, version = query["package"]["name"], query["version"]
                service.queries.append((name, version))
                body = {"vulns": ADVISORIES} if (name, version) == ("pitstop-smoke-probe", "1.0") else {}
                data = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1/query"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def _advisory(osv_id: str, alias: str) -> dict[str, Any]:
    return {
        "schema_version": "1.6.0",
        "id": osv_id,
        "aliases": [alias],
        "summary": "the probe trusts what it should not",
        "affected": [
            {
                "package": {"name": "pitstop-smoke-probe", "ecosystem": "PyPI"},
                "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "2.0"}]}],
            }
        ],
    }


ADVISORIES = [_advisory("PYSEC-2026-9001", "CVE-2026-90001"), _advisory("GHSA-9999-8888-7777", "CVE-2026-90002")]


@pytest.fixture
def advisories() -> Iterator[AdvisoryService]:
    service = AdvisoryService()
    yield service
    service.server.shutdown()
    service.server.server_close()


@pytest.fixture
def probe_env(tmp_path: Path) -> tuple[Path, Path, Path]:
    """A scratch environment (no pip in it) with the probe 1.0; (its python, wheel 1.0, wheel 2.0)."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(tmp_path / "env")], check=True, timeout=120)
    python = tmp_path / "env" / "bin" / "python"
    v1 = build_probe(tmp_path, "1.0", smoke_exit=0)
    v2 = build_probe(tmp_path, "2.0", smoke_exit=0)
    install(python, v1)
    return python, v1, v2


def install(python: Path, wheel: Path) -> None:
    pip = [sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet", "--no-index", "--no-deps"]
    subprocess.run([*pip, str(wheel)], check=True, capture_output=True, timeout=120)


def test_real_pip_audit_finds_the_advisories_of_an_environment(
    advisories: AdvisoryService, probe_env: tuple[Path, Path, Path]
) -> None:
    need_pip_audit()
    python, _, v2 = probe_env
    clock = FrozenClock()
    context = CheckContext(clock=clock, db=Database("sqlite:///:memory:"))
    check = checks.get("updates")(
        "vms-host", params={"python": str(python), "apt": False, "service": "osv", "osv_url": advisories.url}
    )

    found = check.run(context)

    assert advisories.queries == [("pitstop-smoke-probe", "1.0")]  # pip-audit asked, about that environment
    assert found.status is Status.WARNING
    assert found.observed == {"vulnerable_packages": 1.0, "vulnerabilities": 2.0, "unaudited_packages": 0.0}
    assert "1 Python package(s) with known advisories of 1 audited" in found.summary
    # pip-audit names each advisory by its preferred id (of GHSA-9999-8888-7777: its CVE)
    assert "(pitstop-smoke-probe 1.0: PYSEC-2026-9001 CVE-2026-90002)" in found.summary
    assert "vulnerable_packages 1 >= 1" in found.summary

    # fixed: the next rounds within every_s (an hour) report what was found, without asking again ...
    install(python, v2)
    clock.advance(timedelta(minutes=59))
    assert check.run(context).observed["vulnerable_packages"] == 1.0 and len(advisories.queries) == 1
    # ... and after it the check looks again
    clock.advance(timedelta(minutes=2))
    fixed = check.run(context)
    assert advisories.queries[-1] == ("pitstop-smoke-probe", "2.0")
    assert fixed.status is Status.HEALTHY and fixed.observed["vulnerable_packages"] == 0.0 and fixed.is_clear


def test_an_advisory_service_out_of_reach_is_unknown(probe_env: tuple[Path, Path, Path]) -> None:
    need_pip_audit()
    python, _, _ = probe_env
    closed = f"http://127.0.0.1:{free_port()}/v1/query"  # offline: nothing answers there
    result = run({"python": str(python), "apt": False, "service": "osv", "osv_url": closed, "timeout_s": 60})
    assert result.status is Status.UNKNOWN and result.error is None
    assert f"Python packages of {python}: UNKNOWN (pip-audit could not audit, offline?" in result.summary
    assert result.observed == {}


def test_without_pip_audit_the_python_part_is_unknown(probe_env: tuple[Path, Path, Path], tmp_path: Path) -> None:
    python, _, _ = probe_env
    result = run({"python": str(python), "pip_audit": str(tmp_path / "no" / "pip-audit"), "every_s": 0})
    assert "UNKNOWN (pip-audit is not installed)" in result.summary
    assert "vulnerable_packages" not in result.observed
    # the OS part is still judged where apt exists; the result is unknown unless it found something
    if "os_updates" in result.observed:
        assert result.status is (Status.WARNING if result.observed["security_updates"] else Status.UNKNOWN)
    else:
        assert result.status is Status.UNKNOWN


def test_a_missing_environment_is_unknown(tmp_path: Path) -> None:
    need_pip_audit()
    result = run({"python": str(tmp_path / "gone" / "python"), "apt": False})
    assert result.status is Status.UNKNOWN and "cannot run that python" in result.summary


def test_real_pip_audit_against_its_default_advisory_service(probe_env: tuple[Path, Path, Path]) -> None:
    """pitstop's own environment against PyPI's advisories: the real service, so it skips, saying
    why, when this machine cannot get answers from it (offline, or an index without them)."""
    need_pip_audit()
    result = run({"python": sys.executable, "apt": False, "timeout_s": 300})
    if result.status is Status.UNKNOWN:
        assert "UNKNOWN (pip-audit" in result.summary  # said, not raised
        pytest.skip(f"pip-audit's advisory service gave no answer from this machine: {result.summary[-300:]}")
    audited = result.summary.split(" audited")[0].rsplit(" ", 1)[-1]
    assert int(audited) > 0 and result.observed["unaudited_packages"] >= 0
    assert result.status is (Status.WARNING if result.observed["vulnerable_packages"] else Status.HEALTHY)


# -- parameters ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"python": "venv/bin/python"}, "python must be an absolute path"),
        ({"python": "/opt/\x00/python"}, "python must be an absolute path"),
        ({"python": ["/usr/bin/python3"]}, "python must be an absolute path"),
        ({"python": "/" + "a" * 2000}, "python must be an absolute path"),
        ({"pip_audit": "pip-audit"}, "pip_audit must be an absolute path"),
        ({"apt": "yes"}, "apt must be true or false"),
        ({"apt": False}, "nothing to check"),
        ({"service": "evil"}, "service must be"),
        ({"osv_url": "http://127.0.0.1/"}, "osv_url needs service"),
        ({"service": "osv", "osv_url": "file:///etc/passwd"}, "osv_url must be"),
        ({"service": "osv", "osv_url": "http://a b/"}, "osv_url must be"),
        ({"timeout_s": 0}, "timeout_s must be between"),
        ({"timeout_s": 10_000}, "timeout_s must be between"),
        ({"timeout_s": float("nan")}, "timeout_s must be a number"),
        ({"timeout_s": True}, "timeout_s must be a number"),
        ({"timeout_s": "30"}, "timeout_s must be a number"),
        ({"every_s": -1}, "every_s must be between"),
        ({"every_s": float("inf")}, "every_s must be a number"),
        ({"surprise": 1}, "unknown parameter"),
    ],
)
def test_bad_parameters_are_refused_by_name(params: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        UpdatesCheck("localhost", params=params)


def test_defaults() -> None:
    check = UpdatesCheck("localhost")
    assert check.apt and check.python is None and check.every_s == 3600 and check.service == "pypi"
    assert check.thresholds["security_updates"].warning == 1 and check.thresholds["vulnerable_packages"].warning == 1
    assert "os_updates" not in check.thresholds  # informational
    assert UpdatesCheck.timeout_s >= 3 * check.command_timeout_s
