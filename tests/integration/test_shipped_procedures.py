"""Every shipped procedure, run as shipped on the demo installation, on SQLite and PostgreSQL.

The demo's inventory and settings file, plus what a site configures for the procedures that need
it: a camera and a PLC with their health checks (pointed at an RTSP responder and a pymodbus
server the test starts), a `config` backup source, pitstop's API served by uvicorn at the
address its settings give, and a maintenance window so disruptive steps run. The weekly reboot
is the site's copy with a command that does not reboot. Every automated step must pass or fail
on what it found (or be skipped for a reason it states), never be an error, and never say that
a parameter or a value is missing. The catalog is iterated, so a newly shipped procedure is
covered without touching this file.
"""

from __future__ import annotations

import asyncio
import re
import socketserver
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from importlib import resources
from pathlib import Path

import pytest
import uvicorn

from pitstop import demo, inventory
from pitstop.api import create_app
from pitstop.app import Pitstop, build
from pitstop.config import Settings
from pitstop.config.loader import load_settings
from pitstop.errors import InvalidInput
from pitstop.incidents.windows import MuteStore, recurring
from pitstop.maintenance import Answer
from pitstop.maintenance.procedures import ManualStep, parse
from pitstop.maintenance.runs import Run
from pitstop.maintenance.templating import pitstop_values
from pitstop.storage import Database
from pitstop.testing.clock import FrozenClock
from pitstop.testing.server import free_port
from tests.conftest import DEMO_INVENTORY

# What a site adds to the demo inventory for the camera and PLC procedures.
SITE_ASSETS = """
[[assets]]
name = "camera-1"
site = "north-plant"
type = "camera"
location = "hall A, north wall"

[[assets]]
name = "camera-2"
site = "north-plant"
type = "camera"
location = "hall A, south wall"

[[assets]]
name = "plc-1"
site = "north-plant"
type = "plc"
location = "control room rack 2"
"""

# Skipping is legitimate only for these reasons; anything else must pass or fail.
SKIP_REASONS = re.compile(r"waits for a maintenance window|runs every \d")
# Output that says a step lacked an argument, a value or the configuration it needs.
MISSING = re.compile(
    r"not run: |needs an asset|is not known here|is configured for asset|no backup source|unknown placeholder"
    r"|unknown (parameter|operation)|missing|No such option|cannot run 'pitstop'|not available"
    r"|no enabled health check|built without",
    re.IGNORECASE,
)
# Steps that must pass here: the peers they need are running.
MUST_PASS = {
    ("monthly-audit", "config-backup"),
    ("monthly-audit", "config-verify"),
    ("monthly-audit", "backup-fresh"),
    ("quarterly-model-validation", "full-backup"),
    ("quarterly-model-validation", "restore-drill"),
    ("weekly-drift-review", "api-ready"),
    ("camera-lens-inspection", "latency"),
    ("plc-inspection", "link"),
    ("database-maintenance", "vacuum-analyze"),
    ("database-maintenance", "reindex"),
    ("weekly-reboot", "reboot"),
}


class _Rtsp(socketserver.BaseRequestHandler):
    """A camera's RTSP service as far as an OPTIONS round trip goes."""

    def handle(self) -> None:
        request = self.request.recv(4096).decode("latin-1")
        cseq = re.search(r"CSeq: *(\d+)", request)
        reply = f"RTSP/1.0 200 OK\r\nCSeq: {cseq[1] if cseq else 1}\r\nPublic: OPTIONS, DESCRIBE, PLAY\r\n\r\n"
        self.request.sendall(reply.encode())


@pytest.fixture
def camera() -> Iterator[str]:
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _Rtsp)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"rtsp://127.0.0.1:{server.server_address[1]}/stream"
    server.shutdown()
    server.server_close()


@pytest.fixture
def plc() -> Iterator[str]:
    from pymodbus.datastore import ModbusDeviceContext, ModbusSequentialDataBlock, ModbusServerContext
    from pymodbus.server import ModbusTcpServer

    port = free_port()
    device = ModbusDeviceContext(hr=ModbusSequentialDataBlock(1, [0, 42, 7] + [0] * 20))
    servers: list[ModbusTcpServer] = []

    async def serve() -> None:
        servers.append(ModbusTcpServer(ModbusServerContext(devices=device, single=True), address=("127.0.0.1", port)))
        await servers[0].serve_forever()

    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_until_complete, args=(serve(),), daemon=True)
    thread.start()
    yield f"127.0.0.1:{port}"
    asyncio.run_coroutine_threadsafe(servers[0].shutdown(), loop).result(5)
    thread.join(5)
    loop.close()


def site_settings(data_dir: Path, *, api_port: int, camera: str, plc: str) -> Settings:
    """The demo's settings file as `pitstop demo` writes it, with what the site adds."""
    path = demo.settings_file(data_dir)
    config = data_dir / "etc"
    config.mkdir()
    (config / "pitstop.toml").write_text(path.read_text())
    with path.open("a") as fh:
        fh.write(
            f"""
[api]
host = "127.0.0.1"
port = {api_port}

[[backup.sources]]
name = "config"
kind = "config"
path = "{config}"

[[health.checks]]
check = "rtsp"
target = "{camera}"
asset = "camera-1"

[[health.checks]]
check = "modbus"
target = "{plc}"
asset = "plc-1"
params = {{ register = 1, timeout_s = 2 }}
"""
        )
    return load_settings(path)


@pytest.fixture
def site(db: Database, tmp_path: Path, camera: str, plc: str) -> Iterator[Pitstop]:
    """The demo installation with the site's additions, its API served at the address its settings give."""
    port = free_port()
    pitstop = build(site_settings(tmp_path / "data", api_port=port, camera=camera, plc=plc), clock=FrozenClock(), db=db)
    spec = inventory.parse(DEMO_INVENTORY.read_text() + SITE_ASSETS, "demo+site", "toml")
    inventory.apply(pitstop.db, spec, actor="test", now=pitstop.clock.now())
    procedures = tmp_path / "data" / "procedures"
    procedures.mkdir()
    reboot = (resources.files("pitstop") / "procedures" / "weekly-reboot.toml").read_text()
    assert 'command = ["systemctl", "reboot"]' in reboot
    (procedures / "weekly-reboot.toml").write_text(reboot.replace('["systemctl", "reboot"]', '["true"]'))
    window = recurring("all-day", {"asset": "*"}, days="daily", start="00:00", end="23:59")
    MuteStore(pitstop.db).add_window(window, now=pitstop.clock.now())
    pitstop.backup.run(reason="scheduled")  # what the installation's backup job did an hour ago
    pitstop.clock.advance(timedelta(hours=1))  # type: ignore[attr-defined]
    server = uvicorn.Server(uvicorn.Config(create_app(pitstop), host="127.0.0.1", port=port, log_level="error"))
    serving = threading.Thread(target=server.run, daemon=True)
    serving.start()
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started, "uvicorn did not start"
    yield pitstop
    server.should_exit = True
    serving.join(10)


def asset_for(pitstop: Pitstop, types: list[str]) -> str:
    """The first asset of the types a procedure is for; the system itself when it names none."""
    if not types:
        return ""
    return next(a.name for a in pitstop.assets.list_assets() if a.type in types)


def run_to_the_end(pitstop: Pitstop, name: str) -> Run:
    """Start the procedure with every manual item answered; let a reboot's host come back."""
    runner = pitstop.maintenance.runner
    pitstop.clock.advance(timedelta(minutes=1))  # type: ignore[attr-defined] # runs, and their backup sets, in order
    proc = pitstop.maintenance.catalog.get(name).procedure
    answers = {s.id: Answer(passed=True, note="checked by the test") for s in proc.manual_steps}
    run = runner.start(name, actor="test", asset=asset_for(pitstop, proc.asset_types), answers=answers)
    waiting = [s for s in run.steps if s.status == "pending" and s.at is not None]
    if waiting:  # a reboot step issued its (harmless) command and waits for the host
        issued = waiting[0].at or ""
        runner.boot_time = lambda: datetime.fromisoformat(issued) + timedelta(minutes=1)
        pitstop.clock.advance(timedelta(minutes=2))  # type: ignore[attr-defined]
        (run,) = [r for r in runner.resume() if r.id == run.id]
    return run


def test_every_shipped_procedure_runs_as_shipped(site: Pitstop) -> None:
    files = site.maintenance.catalog.files()
    assert {"monthly-audit", "weekly-drift-review", "camera-lens-inspection", "database-maintenance"} <= set(files)
    problems: list[str] = []
    ran: set[tuple[str, str]] = set()
    for name in sorted(files):
        run = run_to_the_end(site, name)
        proc = files[name].procedure
        assert run.state in ("passed", "failed"), (name, run.steps)
        for step, result in zip(proc.steps, run.steps, strict=True):
            if isinstance(step, ManualStep):
                assert result.status == "passed" and result.by == "test"
                continue
            ran.add((name, step.id))
            where = f"{name}/{step.id} ({step.kind}): {result.status}: {result.output[:300]!r}"
            if result.status == "skipped":
                if not SKIP_REASONS.search(result.output):
                    problems.append(f"skipped without a legitimate reason: {where}")
            elif result.status not in ("passed", "failed"):
                problems.append(f"neither passed nor failed: {where}")
            if MISSING.search(result.output):
                problems.append(f"says something is missing: {where}")
            if (name, step.id) in MUST_PASS and result.status != "passed":
                problems.append(f"should pass with its peers running: {where}")
    assert not problems, "\n".join(problems)
    assert ran >= MUST_PASS


def test_what_the_steps_did_is_real(site: Pitstop) -> None:
    audit = run_to_the_end(site, "monthly-audit")
    steps = {s.id: s for s in audit.steps}
    newest = site.backup.list_sets()[0]
    assert newest.manifest.source_names == ["config"]  # only the configuration
    assert newest.id in steps["config-backup"].output and newest.id in steps["config-verify"].output
    assert steps["backup-fresh"].output.startswith("healthy")

    quarterly = {s.id: s for s in run_to_the_end(site, "quarterly-model-validation").steps}
    newest = site.backup.list_sets()[0]
    assert "pitstop-db" in newest.manifest.source_names and "config" in newest.manifest.source_names
    assert f"drill of {newest.id} restored" in quarterly["restore-drill"].output
    assert site.backup.records.last("drill") is not None

    maintenance = {s.id: s for s in run_to_the_end(site, "database-maintenance").steps}
    vacuum = maintenance["vacuum-analyze"].output
    assert "applied: ok" in vacuum and ("VACUUM (ANALYZE)" in vacuum or "VACUUM and ANALYZE done" in vacuum)
    if site.db.dialect == "postgresql":
        assert "VACUUM (ANALYZE) procedure_runs" in vacuum and "REINDEX INDEX" in maintenance["reindex"].output

    camera = {s.id: s for s in run_to_the_end(site, "camera-lens-inspection").steps}
    assert camera["latency"].output.startswith("healthy: camera answers OPTIONS")
    link = {s.id: s for s in run_to_the_end(site, "plc-inspection").steps}["link"].output
    assert link.startswith("1 of 1 healthy") and "modbus" in link
    review = {s.id: s for s in run_to_the_end(site, "weekly-drift-review").steps}
    assert f"{pitstop_values(site.settings)['url']}/ready answered 200" in review["api-ready"].output

    # the reindex runs at most every 25 days: the next weekly run skips it, saying when it is due
    site.clock.advance(timedelta(weeks=1))  # type: ignore[attr-defined]
    again = {s.id: s for s in run_to_the_end(site, "database-maintenance").steps}
    assert again["vacuum-analyze"].status == "passed"
    assert again["reindex"].status == "skipped" and "runs every 25d" in again["reindex"].output


def site_procedure(pitstop: Pitstop, text: str) -> str:
    proc = parse(text, fmt="toml")
    (pitstop.settings.data_dir / "procedures" / f"{proc.name}.toml").write_text(text)
    return proc.name


def test_a_value_the_configuration_lacks_fails_its_step_naming_it(site: Pitstop) -> None:
    runner = site.maintenance.runner
    # camera-2 has no rtsp check configured
    run = runner.start("camera-lens-inspection", actor="test", asset="camera-2")
    latency = {s.id: s for s in run.steps}["latency"]
    assert latency.status == "failed"
    assert "{asset.check.rtsp}" in latency.output and "no rtsp check is configured for asset camera-2" in latency.output
    # a PLC procedure started without an asset: its link step names what it needs
    link = {s.id: s for s in runner.start("plc-inspection", actor="test").steps}["link"]
    assert link.status == "failed" and "{asset} needs an asset" in link.output
    # ... and on an asset without a modbus check
    link = {s.id: s for s in runner.start("plc-inspection", actor="test", asset="pump-1").steps}["link"]
    assert link.status == "failed" and "no enabled health check is configured for check modbus, asset pump-1" in (
        link.output
    )
    # a backup source that is not configured, the inventory's fields and pitstop's address, a model that does not exist
    name = site_procedure(
        site,
        'name = "config-only"\ntitle = "C"\n[[steps]]\nid = "b"\nkind = "pitstop"\ntitle = "b"\n'
        'operation = "backup run"\nargs = { source = ["settings"] }\n'
        '[[steps]]\nid = "f"\nkind = "command"\ntitle = "f"\ncommand = ["echo", "{asset.location}", "{pitstop.url}"]\n'
        '[[steps]]\nid = "d"\nkind = "pitstop"\ntitle = "d"\noperation = "drift"\nargs = { model = ["no-such-model"] }',
    )
    steps = {s.id: s for s in runner.start(name, actor="test", asset="camera-1").steps}
    assert (
        steps["b"].status == "failed"
        and "no backup source settings; configured: pitstop-db, config" in steps["b"].output
    )
    assert steps["f"].status == "passed" and f"hall A, north wall {pitstop_values(site.settings)['url']}" in (
        steps["f"].output
    )
    assert steps["d"].status == "failed" and "no-such-model" in steps["d"].output
    # the same command for an asset the inventory does not know
    unknown = {s.id: s for s in runner.start(name, actor="test", asset="ghost").steps}["f"]
    assert unknown.status == "failed" and "there is no asset 'ghost' in the inventory" in unknown.output


STEP = 'name = "p"\ntitle = "P"\n[[steps]]\nid = "s"\ntitle = "s"\n'


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ('kind = "pitstop"\noperation = "backup run"\nargs = { set = "config" }', "args.set"),
        ('kind = "pitstop"\noperation = "backup prune"', "unknown operation 'backup prune'"),
        ('kind = "pitstop"\noperation = "rm -rf /"', "unknown operation"),
        ('kind = "pitstop"\noperation = "backup run"\nargs = { source = "config" }', "args.source"),
        ('kind = "pitstop"\noperation = "backup run"\nargs = { source = [1] }', "args.source"),
        ('kind = "pitstop"\noperation = "backup drill"\nargs = { set_id = "" }', "args.set_id"),
        ('kind = "pitstop"\noperation = "check"\nargs = { check = "x", surprise = 1 }', "args.surprise"),
        ('kind = "pitstop"\noperation = "drift"\nargs = { model = "hvac-twin" }', "args.model"),
        ('kind = "pitstop"\noperation = "backup run"\nargs = { source = ["{asset.colour}"] }', "{asset.colour}"),
        ('kind = "check"\ncheck = "http"\ntarget = "{pitstop.password}/x"', "{pitstop.password}"),
        ('kind = "check"\ncheck = "rtsp"\ntarget = "{asset.check}"', "{asset.check}"),
        ('kind = "check"\ncheck = "rtsp"\ntarget = "{asset.check.rtsp.url}"', "unknown placeholder"),
        ('kind = "command"\ncommand = ["echo", "{asset.labels.camera_url}"]', "unknown placeholder"),
        ('kind = "action"\naction = "free_disk"\nparams = { path = "{asset.secret}" }', "{asset.secret}"),
        ('kind = "action"\naction = "free_disk"\ntarget = "{pitstop.db}"', "{pitstop.db}"),
        ('kind = "pitstop"\noperation = "check"\nargs = { target = "' + "x" * 501 + '" }', "args.target"),
    ],
)
def test_bad_steps_are_refused_in_one_line_when_the_file_loads(body: str, message: str) -> None:
    with pytest.raises(InvalidInput) as info:
        parse(STEP + body, fmt="toml", where="p.toml")
    assert message in str(info.value) and "\n" not in str(info.value)


def test_braces_that_are_not_placeholders_stay_as_they_are(site: Pitstop) -> None:
    name = site_procedure(
        site,
        STEP + 'kind = "command"\ncommand = ["python3", "-c", "print({\'asset\': 1}, \'{{x}}\', \'{asset}\')"]',
    )
    (step,) = site.maintenance.runner.start(name, actor="test", asset="pump-1").steps
    assert step.status == "passed" and "{'asset': 1} {{x}} pump-1" in step.output


def test_action_steps_keep_the_engines_guards(site: Pitstop) -> None:
    runner = site.maintenance.runner
    name = site_procedure(
        site,
        STEP + 'kind = "action"\naction = "vacuum_database"\ntarget = "pitstop"\n'
        "params = { dead_ratio = 0.0, min_rows = 0 }",
    )
    # self-healing gave up on vacuum_database for this target: a procedure does not run it either
    site.remediation.store.open_breaker(
        "vacuum_database", "pitstop", reason="three failures", escalated_to="log", now=site.clock.now()
    )
    (blocked,) = runner.start(name, actor="test").steps
    assert blocked.status == "skipped" and "pitstop heal reset pitstop" in blocked.output
    site.remediation.reset("pitstop", actor="test")
    (ran,) = runner.start(name, actor="test").steps
    assert ran.status == "passed" and "applied: ok" in ran.output
    # the plan needs a maintenance window: without one the step waits, naming what it would do
    for window in MuteStore(site.db).windows():
        MuteStore(site.db).remove_window(window.name, now=site.clock.now(), actor="test")
    (waits,) = runner.start(name, actor="test").steps
    assert (
        waits.status == "skipped"
        and "waits for a maintenance window" in waits.output
        and "plan: VACUUM" in (waits.output)
    )
    # an unknown action or parameters it refuses: the step could not run at all
    bad = site_procedure(site, STEP.replace('"p"', '"q"') + 'kind = "action"\naction = "teleport"')
    (unknown,) = runner.start(bad, actor="test").steps
    assert unknown.status == "error" and "no remediation action named 'teleport'" in unknown.output
    hostile = site_procedure(
        site, STEP.replace('"p"', '"r"') + 'kind = "action"\naction = "vacuum_database"\nparams = { url = "file:///x" }'
    )
    (refused,) = runner.start(hostile, actor="test").steps
    assert refused.status == "error" and "url must be a postgresql:// URL" in refused.output


def test_a_dry_run_engine_only_plans(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'pitstop.db'}")
    db.upgrade()
    pitstop = build(Settings(data_dir=tmp_path / "data", remediation={"dry_run": True}), clock=FrozenClock(), db=db)
    MuteStore(db).add_window(
        recurring("all-day", {"asset": "*"}, days="daily", start="00:00", end="23:59"), now=pitstop.clock.now()
    )
    run = pitstop.maintenance.runner.start("database-maintenance", actor="test")
    vacuum = {s.id: s for s in run.steps}["vacuum-analyze"]
    assert vacuum.status == "skipped" and vacuum.output.startswith("dry run (remediation.dry_run): planned only")
    db.dispose()


@pytest.mark.parametrize(
    ("settings", "url"),
    [
        ({}, "http://127.0.0.1:8000"),
        ({"api": {"host": "0.0.0.0", "port": 9000}}, "http://127.0.0.1:9000"),
        ({"api": {"host": "::", "port": 9000}}, "http://[::1]:9000"),
        ({"api": {"host": "fe80::1", "port": 9000}}, "http://[fe80::1]:9000"),
        ({"oncall": {"public_url": "https://ops.example.com/pitstop/"}}, "https://ops.example.com/pitstop"),
    ],
)
def test_pitstops_own_address_comes_from_its_settings(settings: dict[str, object], url: str, tmp_path: Path) -> None:
    assert pitstop_values(Settings(data_dir=tmp_path, **settings))["url"] == url  # type: ignore[arg-type]
