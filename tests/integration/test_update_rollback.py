"""Software updates with rollback, for real and offline: two small wheels of a probe package built
here by `pip wheel` (an in-tree build backend, no index), a scratch virtual environment, the
`software-update` procedure replaced by a site's copy, the real pip doing the update and the
rollback. Also the other shipped procedures' mechanics: the reboot that waits for the host to
come back, and a step that runs at most every so often."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path

import pytest

from pitstop.app import Pitstop, build
from pitstop.config import Settings
from pitstop.errors import InvalidInput
from pitstop.incidents.windows import MuteStore, recurring
from pitstop.maintenance.log import LogEntry
from pitstop.maintenance.procedures import Catalog, RebootStep, UpdateStep, parse
from pitstop.maintenance.updates import digest
from pitstop.storage import Database
from pitstop.testing.clock import FrozenClock

PROBE = "pitstop-smoke-probe"

# A PEP 517 backend of the probe's own, so that `pip wheel --no-build-isolation --no-index` builds
# it with nothing but the standard library (no setuptools, no wheel package, no network).
BACKEND = """
import base64, hashlib, json, pathlib, zipfile

def _meta():
    return json.loads(pathlib.Path("probe.json").read_text())

def _files(meta):
    dist = f"pitstop_smoke_probe-{meta['version']}.dist-info"
    return {
        "pitstop_smoke_probe/__init__.py": f"__version__ = {meta['version']!r}\\n",
        "pitstop_smoke_probe/__main__.py": (
            "import sys\\nfrom pitstop_smoke_probe import __version__\\n"
            f"print('pitstop-smoke-probe', __version__)\\nsys.exit({meta['smoke_exit']})\\n"
        ),
        f"{dist}/METADATA": f"Metadata-Version: 2.1\\nName: pitstop-smoke-probe\\nVersion: {meta['version']}\\n",
        f"{dist}/WHEEL": "Wheel-Version: 1.0\\nGenerator: probe-backend\\nRoot-Is-Purelib: true\\nTag: py3-none-any\\n",
    }

def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    meta = _meta()
    name = f"pitstop_smoke_probe-{meta['version']}-py3-none-any.whl"
    files = _files(meta)
    record = []
    with zipfile.ZipFile(pathlib.Path(wheel_directory) / name, "w") as whl:
        for path, text in files.items():
            data = text.encode()
            whl.writestr(path, data)
            digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
            record.append(f"{path},sha256={digest},{len(data)}")
        dist = f"pitstop_smoke_probe-{meta['version']}.dist-info"
        record.append(f"{dist}/RECORD,,")
        whl.writestr(f"{dist}/RECORD", "\\n".join(record) + "\\n")
    return name
"""


def build_probe(where: Path, version: str, *, smoke_exit: int) -> Path:
    """The probe's wheel at `version`, whose `python -m pitstop_smoke_probe` exits `smoke_exit`."""
    src = where / f"src-{version}-{smoke_exit}"
    src.mkdir(parents=True)
    (src / "probe_backend.py").write_text(BACKEND)
    (src / "probe.json").write_text(json.dumps({"version": version, "smoke_exit": smoke_exit}))
    (src / "pyproject.toml").write_text(
        '[build-system]\nrequires = []\nbuild-backend = "probe_backend"\nbackend-path = ["."]\n'
    )
    out = where / "wheels"
    out.mkdir(exist_ok=True)
    pip = [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-build-isolation", "--no-index", "--no-deps"]
    subprocess.run([*pip, "-w", str(out), str(src)], check=True, capture_output=True, timeout=120)
    (wheel,) = out.glob(f"pitstop_smoke_probe-{version}-*.whl")
    return wheel


@pytest.fixture(scope="module")
def template_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A virtual environment with pip, made once; each test gets a copy (a venv finds its
    site-packages next to its python, so a copy is an environment of its own)."""
    where = tmp_path_factory.mktemp("venv") / "template"
    subprocess.run([sys.executable, "-m", "venv", str(where)], check=True, capture_output=True, timeout=300)
    return where


@pytest.fixture
def venv(template_venv: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "venv"
    shutil.copytree(template_venv, copy, symlinks=True)
    return copy / "bin" / "python"


def pip_install(python: Path, wheel: Path) -> None:
    argv = [str(python), "-m", "pip", "install", "--quiet", "--no-index", "--no-deps", str(wheel)]
    subprocess.run(argv, check=True, capture_output=True, timeout=120)


def installed_version(python: Path) -> str | None:
    probe = "import importlib.metadata as m\ntry: print(m.version('pitstop-smoke-probe'))\n"
    probe += "except m.PackageNotFoundError: pass"
    out = subprocess.run([str(python), "-c", probe], check=True, capture_output=True, text=True, timeout=60)
    return out.stdout.strip() or None


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock()


@pytest.fixture
def pitstop(tmp_path: Path, clock: FrozenClock) -> Iterator[Pitstop]:
    db = Database(f"sqlite:///{tmp_path / 'pitstop.db'}")
    db.upgrade()
    data = tmp_path / "data"
    (data / "procedures").mkdir(parents=True)
    p = build(Settings(data_dir=data), clock=clock, db=db)
    yield p
    db.dispose()


def open_window(pitstop: Pitstop) -> None:
    """A daily window from an hour before the clock's now to 22 hours after it (00:00-23:59 left a
    run started just before midnight too little of its window)."""
    now = pitstop.clock.now()
    start, end = (now - timedelta(hours=1)).strftime("%H:%M"), (now - timedelta(hours=2)).strftime("%H:%M")
    window = recurring("all-day", {"asset": "*"}, days="daily", start=start, end=end)
    MuteStore(pitstop.db).add_window(window, now=pitstop.clock.now())


def site_procedure(pitstop: Pitstop, name: str, text: str) -> None:
    (pitstop.settings.data_dir / "procedures" / f"{name}.toml").write_text(textwrap.dedent(text))


def pip_update(pitstop: Pitstop, python: Path, find_links: Path) -> None:
    """The site's copy of the shipped software-update procedure: the probe to 2.0, smoke-tested by
    running it."""
    site_procedure(
        pitstop,
        "software-update",
        f"""
        name = "software-update"
        title = "Update the probe"
        [[steps]]
        id = "update"
        kind = "update"
        title = "Probe to 2.0"
        method = "pip"
        python = "{python}"
        requirement = "{PROBE}==2.0"
        pip_args = ["--no-index", "--find-links", "{find_links}"]
        timeout_s = 120
        [steps.smoke]
        command = ["{python}", "-m", "pitstop_smoke_probe"]
        timeout_s = 60
        """,
    )


def update_entries(pitstop: Pitstop, run_id: int) -> list[LogEntry]:
    return [e for e in pitstop.maintenance.log.entries(kind="update") if e.ref == f"run:{run_id}/update"]


def facts(entry: LogEntry) -> dict[str, str]:
    return dict(json.loads(entry.actions.splitlines()[0]))


# -- pip ------------------------------------------------------------------------------------------


def test_a_failing_smoke_test_rolls_the_update_back(pitstop: Pitstop, venv: Path, tmp_path: Path) -> None:
    v1 = build_probe(tmp_path, "1.0", smoke_exit=0)
    build_probe(tmp_path, "2.0", smoke_exit=1)  # 2.0's smoke test fails
    pip_install(venv, v1)
    open_window(pitstop)
    pip_update(pitstop, venv, v1.parent)

    run = pitstop.maintenance.runner.start("software-update", actor="tech")

    assert installed_version(venv) == "1.0"  # 1.0 is installed again ...
    smoke = subprocess.run([str(venv), "-m", "pitstop_smoke_probe"], capture_output=True, text=True, timeout=60)
    assert smoke.returncode == 0 and smoke.stdout.split() == [PROBE, "1.0"]  # ... its code, not only its metadata
    # the run records the failure and the rollback
    (step,) = run.steps
    assert run.state == "failed" and step.status == "failed" and step.value == "1.0"
    assert f"{PROBE} 1.0 -> 2.0" in step.output
    assert "smoke test FAILED" in step.output and "rolled back to 1.0" in step.output
    assert "smoke test after rollback passed" in step.output
    # the maintenance log: the apply, the failed smoke test, the rollback (and the smoke test after it)
    entries = update_entries(pitstop, run.id)
    assert [e.result for e in entries] == ["applied", "smoke_failed", "rolled_back", "smoke_passed"]
    applied, failed, rolled, again = entries
    assert f"{PROBE} 1.0 -> 2.0" in applied.summary
    assert facts(applied)["before"] == "1.0" and facts(applied)["after"] == "2.0"
    assert f"FAILED on {PROBE} 2.0" in failed.summary and "exit 1" in failed.issues
    assert f"rollback {PROBE} 2.0 -> 1.0" in rolled.summary
    assert facts(rolled)["before"] == "2.0" and facts(rolled)["after"] == "1.0"
    assert f"passed on {PROBE} 1.0" in again.summary
    assert all(e.actor == "tech" and facts(e)["procedure"] == "software-update" for e in entries)
    (record,) = [e for e in pitstop.maintenance.log.entries(kind="procedure_run") if e.ref == f"run:{run.id}"]
    assert record.result == "failed" and "update: failed" in record.actions
    # what made the rollback exact: the kept wheel and the freeze before the update
    folder = pitstop.settings.data_dir / "procedure-runs" / f"run-{run.id}" / "update"
    assert [w.name for w in (folder / "wheels").iterdir()] == [v1.name]
    assert f"{PROBE}==1.0" in (folder / "pip-freeze-before.txt").read_text()


def test_a_passing_smoke_test_keeps_the_update(pitstop: Pitstop, venv: Path, tmp_path: Path) -> None:
    v1 = build_probe(tmp_path, "1.0", smoke_exit=0)
    build_probe(tmp_path, "2.0", smoke_exit=0)
    pip_install(venv, v1)
    open_window(pitstop)
    pip_update(pitstop, venv, v1.parent)

    run = pitstop.maintenance.runner.start("software-update", actor="tech")

    assert installed_version(venv) == "2.0"
    (step,) = run.steps
    assert run.state == "passed" and step.status == "passed" and step.value == "2.0"
    entries = update_entries(pitstop, run.id)
    assert [e.result for e in entries] == ["applied", "smoke_passed"]
    assert facts(entries[0])["before"] == "1.0" and facts(entries[0])["after"] == "2.0"
    # run again: nothing is left to update, and nothing is touched
    again = pitstop.maintenance.runner.start("software-update", actor="tech")
    assert again.state == "passed" and "nothing to update" in again.steps[0].output
    assert [e.result for e in update_entries(pitstop, again.id)] == ["unchanged"]
    assert installed_version(venv) == "2.0"


def test_a_smoke_test_that_breaks_rolls_the_update_back(pitstop: Pitstop, venv: Path, tmp_path: Path) -> None:
    """A smoke test that raises instead of failing (an invalid URL: httpx.InvalidURL is no HTTPError)
    must not leave the update applied."""
    v1 = build_probe(tmp_path, "1.0", smoke_exit=0)
    build_probe(tmp_path, "2.0", smoke_exit=0)
    pip_install(venv, v1)
    open_window(pitstop)
    pip_update(pitstop, venv, v1.parent)
    path = pitstop.settings.data_dir / "procedures" / "software-update.toml"
    text = path.read_text().replace('command = ["', 'http = { url = "http://127.0.0.1:99999/" }\n        command = ["')
    path.write_text(text.replace("        http = {", "http = {"))

    run = pitstop.maintenance.runner.start("software-update", actor="tech")

    assert installed_version(venv) == "1.0"
    (step,) = run.steps
    assert run.state == "failed" and step.status == "failed", step.output
    assert "rolled back to 1.0" in step.output


def test_a_run_asset_that_is_no_asset_name_is_refused(pitstop: Pitstop) -> None:
    """The asset fills command arguments and paths: an option or a path is refused before anything runs."""
    for hostile in ("--index-url=http://evil/", "../../etc", "a b", "pump-1/../x"):
        with pytest.raises(InvalidInput, match="not an asset name"):
            pitstop.maintenance.runner.start("software-update", actor="tech", asset=hostile)


def test_the_log_masks_credentials_in_index_urls() -> None:
    from pitstop.maintenance.updates import _show

    shown = _show(["pip", "install", "--index-url", "https://user:token@pypi.example/simple", "x==2"])
    assert "token" not in shown and "https://***@pypi.example/simple" in shown


def test_no_update_outside_a_maintenance_window(pitstop: Pitstop, venv: Path, tmp_path: Path) -> None:
    v1 = build_probe(tmp_path, "1.0", smoke_exit=0)
    build_probe(tmp_path, "2.0", smoke_exit=0)
    pip_install(venv, v1)
    pip_update(pitstop, venv, v1.parent)

    run = pitstop.maintenance.runner.start("software-update", actor="tech")

    assert installed_version(venv) == "1.0"
    (step,) = run.steps
    assert step.status == "skipped" and "no maintenance window covers the system" in step.output
    (entry,) = update_entries(pitstop, run.id)
    assert entry.result == "refused" and "no maintenance window" in entry.summary


def test_an_update_that_could_not_be_undone_is_refused(pitstop: Pitstop, venv: Path, tmp_path: Path) -> None:
    v1 = build_probe(tmp_path / "old", "1.0", smoke_exit=0)
    v2 = build_probe(tmp_path / "new", "2.0", smoke_exit=0)
    pip_install(venv, v1)
    open_window(pitstop)
    pip_update(pitstop, venv, v2.parent)  # 2.0's source does not have 1.0: no wheel to roll back to

    run = pitstop.maintenance.runner.start("software-update", actor="tech")

    assert installed_version(venv) == "1.0"
    (step,) = run.steps
    assert step.status == "failed" and f"cannot keep {PROBE} 1.0 for a rollback" in step.output
    assert [e.result for e in update_entries(pitstop, run.id)] == ["refused"]


def test_a_missing_environment_stops_the_update_with_the_reason(pitstop: Pitstop, tmp_path: Path) -> None:
    open_window(pitstop)
    pip_update(pitstop, tmp_path / "nowhere" / "python", tmp_path)
    run = pitstop.maintenance.runner.start("software-update", actor="tech")
    (step,) = run.steps
    assert step.status == "failed" and f"no python at {tmp_path / 'nowhere' / 'python'}" in step.output


# -- command updates and files ---------------------------------------------------------------------

CHANGE = """
import os, pathlib, sys
conf = pathlib.Path(sys.argv[1])
(conf / "app.conf").write_text("threshold = broken\\n")
(conf / "old.conf").unlink()
(conf / "added.conf").write_text("new\\n")
os.chmod(conf / "secret.conf", 0o644)
(conf / "current").unlink()
(conf / "current").symlink_to("added.conf")
pathlib.Path(sys.argv[2]).write_text("created by the update\\n")
(conf / "VERSION").write_text("2.0\\n")
"""


def test_a_command_update_is_undone_and_its_files_restored_exactly(pitstop: Pitstop, tmp_path: Path) -> None:
    conf = tmp_path / "etc-app"
    (conf / "sub").mkdir(parents=True)
    (conf / "app.conf").write_text("threshold = 5\n")
    (conf / "old.conf").write_text("legacy\n")
    (conf / "secret.conf").write_text("key\n")
    (conf / "secret.conf").chmod(0o600)
    (conf / "sub" / "deep.conf").write_text("deep\n")
    (conf / "current").symlink_to("app.conf")
    (conf / "VERSION").write_text("1.0\n")
    created = tmp_path / "state.db"  # absent before the update
    (tmp_path / "change.py").write_text(CHANGE)
    before = digest(conf)
    rolled_back = tmp_path / "rollback-ran"
    open_window(pitstop)
    site_procedure(
        pitstop,
        "app-config",
        f"""
        name = "app-config"
        title = "New configuration"
        [[steps]]
        id = "update"
        kind = "update"
        title = "Configuration 2.0"
        method = "command"
        command = ["{sys.executable}", "{tmp_path / "change.py"}", "{conf}", "{created}"]
        version_command = ["cat", "{conf / "VERSION"}"]
        rollback = ["touch", "{rolled_back}"]
        backup = ["{conf}", "{created}"]
        [steps.smoke]
        command = ["grep", "-q", "threshold = 5", "{conf / "app.conf"}"]
        """,
    )

    run = pitstop.maintenance.runner.start("app-config", actor="tech")

    assert run.state == "failed" and run.steps[0].value == "1.0"
    assert digest(conf) == before  # contents, modes, the symlink, the removed and the added file
    assert (conf / "old.conf").read_text() == "legacy\n" and not (conf / "added.conf").exists()
    assert (conf / "secret.conf").stat().st_mode & 0o777 == 0o600
    assert os.readlink(conf / "current") == "app.conf"
    assert not created.exists()  # what the update created is gone
    assert rolled_back.exists()  # the configured rollback command ran
    entries = update_entries(pitstop, run.id)
    assert [e.result for e in entries] == ["applied", "smoke_failed", "rolled_back", "smoke_passed"]
    assert "command 1.0 -> 2.0" in entries[0].summary and "command 2.0 -> 1.0" in entries[2].summary
    assert "files restored: 2 of 2" in entries[2].actions


# -- the procedure files --------------------------------------------------------------------------

UPDATE = """
name = "u"
title = "U"
[[steps]]
id = "update"
kind = "update"
title = "Update"
{body}
[steps.smoke]
{smoke}
"""
GOOD = 'method = "pip"\npython = "/opt/v/bin/python"\nrequirement = "pkg==2.0"'


@pytest.mark.parametrize(
    ("body", "smoke", "message"),
    [
        ('method = "pip"\npython = "/opt/v/bin/python"\nrequirement = "pkg @ https://evil.example/x.whl"', "", "like"),
        ('method = "pip"\npython = "/opt/v/bin/python"\nrequirement = "--index-url=https://evil.example"', "", "like"),
        ('method = "pip"\npython = "/opt/v/bin/python"\nrequirement = "pkg==2.0; os_name == \'nt\'"', "", "like"),
        ('method = "pip"\npython = "venv/bin/python"\nrequirement = "pkg==2.0"', "", "absolute"),
        ('method = "pip"\npython = "/opt/../bin/python"\nrequirement = "pkg==2.0"', "", "absolute"),
        ('method = "pip"\nrequirement = "pkg==2.0"', "", "needs python"),
        (GOOD + '\npackage = "nginx"', "", "package: not a field of method pip"),
        (GOOD + '\nbackup = ["/"]', "", "absolute path other than /"),
        (GOOD + '\nbackup = ["etc/app"]', "", "absolute"),
        ('method = "command"\ncommand = ["true"]', "", "rollback or backup"),
        ('method = "package"\npackage = "Bad Name"', "", "Debian package"),
        ('method = "package"\npackage = "nginx"\nversion = "1.0; rm -rf /"', "", "Debian version"),
        ('method = "teleport"', "", "method"),
        (GOOD, "timeout_s = 5", "nothing can fail it"),
        (GOOD, 'http = { url = "file:///etc/passwd" }', "http"),
        (GOOD, 'http = { url = "http://127.0.0.1/", status = 999 }', "status"),
        (GOOD + "\nsettle_s = -1", "", "settle_s"),
        (GOOD + "\ntimeout_s = 1e9", "", "timeout_s"),
        (GOOD + "\nsurprise = 1", "", "surprise"),
    ],
)
def test_bad_update_steps_are_refused_in_one_line(body: str, smoke: str, message: str) -> None:
    smoke = smoke or 'command = ["true"]'
    with pytest.raises(InvalidInput, match=message) as info:
        parse(UPDATE.format(body=body, smoke=smoke), fmt="toml", where="u.toml")
    assert "\n" not in str(info.value)


def test_the_shipped_procedures_are_suggestions_a_site_enables() -> None:
    files = Catalog().files()
    update = files["software-update"].procedure
    (step,) = [s for s in update.steps if isinstance(s, UpdateStep)]
    assert step.method == "pip" and step.smoke.checks and step.smoke.http and step.smoke.command
    for name in ("software-update", "weekly-reboot", "database-maintenance"):
        # a schedule is suggested, and nothing comes due until `pitstop procedures enable NAME`
        assert files[name].procedure.schedule is not None
        assert f"pitstop procedures enable {name}" in files[name].procedure.description
    reboot = files["weekly-reboot"].procedure
    assert isinstance(reboot.steps[0], RebootStep)
    assert [s.kind for s in reboot.steps[1:]] == ["check", "check", "check"]
    assert {getattr(s, "check", None) for s in reboot.steps[1:]} == {"process", "database"}
    database = files["database-maintenance"].procedure
    vacuum, reindex = database.steps[1], database.steps[2]
    assert getattr(vacuum, "action", None) == getattr(reindex, "action", None) == "vacuum_database"
    assert getattr(reindex, "params", {}).get("reindex") is True and getattr(reindex, "every", None) == "25d"
    assert getattr(vacuum, "every", "") is None and getattr(vacuum, "disruptive", False)


# -- the reboot -------------------------------------------------------------------------------------


def harmless_reboot(pitstop: Pitstop) -> None:
    """The shipped weekly reboot, with a command that does not reboot."""
    shipped = (resources.files("pitstop") / "procedures" / "weekly-reboot.toml").read_text()
    assert 'command = ["systemctl", "reboot"]' in shipped
    site_procedure(pitstop, "weekly-reboot", shipped.replace('["systemctl", "reboot"]', '["true"]'))


@pytest.fixture
def now_clock() -> FrozenClock:
    """The real time: the host's real boot time is compared with it."""
    return FrozenClock(datetime.now(UTC))


def test_the_reboot_waits_for_the_host_and_then_checks_it_came_back(tmp_path: Path, now_clock: FrozenClock) -> None:
    db = Database(f"sqlite:///{tmp_path / 'pitstop.db'}")
    db.upgrade()
    pitstop = build(Settings(data_dir=tmp_path / "data"), clock=now_clock, db=db)
    (tmp_path / "data" / "procedures").mkdir(parents=True)
    harmless_reboot(pitstop)
    open_window(pitstop)
    runner = pitstop.maintenance.runner

    run = runner.start("weekly-reboot", actor="scheduler")
    assert run.state == "running"
    assert run.steps[0].status == "pending" and "reboot issued in window all-day" in run.steps[0].output
    assert [s.status for s in run.steps[1:]] == ["pending"] * 3  # nothing runs before the host is back

    # the host has not rebooted (its boot time is older than the step): still waiting ...
    now_clock.advance(timedelta(minutes=5))
    pitstop.maintenance.tick()
    assert runner.get(run.id).state == "running"
    # ... then it is back: booted a minute after the step
    issued = datetime.fromisoformat(run.steps[0].at or "")
    runner.boot_time = lambda: issued + timedelta(minutes=1)
    events = pitstop.maintenance.tick()
    done = runner.get(run.id)
    assert any(f"run {run.id} (weekly-reboot) went on" in e for e in events)
    assert done.steps[0].status == "passed" and "came back" in done.steps[0].output
    assert all(s.status in ("passed", "failed") for s in done.steps[1:])  # the checks ran
    assert done.steps[3].status == "passed"  # pitstop's database answers
    assert done.state in ("passed", "failed") and done.finished_at is not None
    db.dispose()


def test_a_host_that_does_not_come_back_fails_the_reboot(tmp_path: Path, now_clock: FrozenClock) -> None:
    db = Database(f"sqlite:///{tmp_path / 'pitstop.db'}")
    db.upgrade()
    pitstop = build(Settings(data_dir=tmp_path / "data"), clock=now_clock, db=db)
    (tmp_path / "data" / "procedures").mkdir(parents=True)
    harmless_reboot(pitstop)
    open_window(pitstop)
    run = pitstop.maintenance.runner.start("weekly-reboot", actor="scheduler")
    now_clock.advance(timedelta(minutes=16))  # past back_within; the real boot time is older than the step

    pitstop.maintenance.tick()

    done = pitstop.maintenance.runner.get(run.id)
    assert done.state == "failed" and done.steps[0].status == "failed"
    assert "not back within 15m" in done.steps[0].output
    assert all(s.status != "pending" for s in done.steps)
    db.dispose()


def test_no_reboot_outside_a_window(pitstop: Pitstop) -> None:
    harmless_reboot(pitstop)
    run = pitstop.maintenance.runner.start("weekly-reboot", actor="scheduler")
    assert run.steps[0].status == "skipped" and "waits for a maintenance window" in run.steps[0].output
    assert all(s.status != "pending" for s in run.steps)  # the run did not wait


def test_a_failing_reboot_command_does_not_wait(pitstop: Pitstop) -> None:
    shipped = (resources.files("pitstop") / "procedures" / "weekly-reboot.toml").read_text()
    site_procedure(pitstop, "weekly-reboot", shipped.replace('["systemctl", "reboot"]', '["false"]'))
    open_window(pitstop)
    run = pitstop.maintenance.runner.start("weekly-reboot", actor="scheduler")
    assert run.steps[0].status == "failed" and "the reboot command failed" in run.steps[0].output
    assert run.state == "failed"


# -- at most every so often ---------------------------------------------------------------------------


def test_a_monthly_step_in_a_weekly_procedure(pitstop: Pitstop, clock: FrozenClock, tmp_path: Path) -> None:
    marker = tmp_path / "reindexed"
    site_procedure(
        pitstop,
        "db-weekly",
        f"""
        name = "db-weekly"
        title = "Weekly"
        [[steps]]
        id = "vacuum"
        kind = "command"
        title = "Weekly"
        command = ["true"]
        [[steps]]
        id = "reindex"
        kind = "command"
        title = "Monthly"
        command = ["sh", "-c", "echo x >> {marker}"]
        every = "25d"
        """,
    )
    statuses = []
    for _week in range(9):
        run = pitstop.maintenance.runner.start("db-weekly", actor="tech")
        statuses.append(run.steps[1].status)
        assert run.steps[0].status == "passed" and run.state == "passed"
        clock.advance(timedelta(weeks=1))
    assert statuses == ["passed", "skipped", "skipped", "skipped"] * 2 + ["passed"]
    assert marker.read_text().count("x") == 3
    with pytest.raises(InvalidInput, match="every"):
        parse(
            'name = "x"\ntitle = "X"\n[[steps]]\nid = "a"\nkind = "command"\ntitle = "a"\ncommand = ["true"]\n'
            'every = "5m"',
            fmt="toml",
        )
