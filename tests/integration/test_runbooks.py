"""Runbooks the guides ask for (security breach, data corruption), the annual audit, contacts in
runbooks and their runs, and the printed copy of any procedure (HTML; PDF with weasyprint), on the
command line and the API; hostile procedure names."""

from __future__ import annotations

import http.server
import importlib
import re
import shlex
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
import typer
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from pitstop.api import create_app
from pitstop.app import Pitstop, build
from pitstop.cli.main import app as cli_app
from pitstop.config import Settings
from pitstop.config.oncall import OncallSettings
from pitstop.core.types import Role
from pitstop.errors import InvalidInput
from pitstop.health.base import checks
from pitstop.maintenance import printable
from pitstop.maintenance.common import duration
from pitstop.maintenance.cron import Cron
from pitstop.maintenance.procedures import ActionStep, Catalog, CheckStep, ManualStep
from pitstop.maintenance.runs import Answer
from pitstop.remediation.base import actions
from pitstop.storage import Database
from pitstop.testing.clock import FrozenClock
from pitstop.testing.services import unavailable
from tests.conftest import auth

NEW = ("security-breach", "data-corruption", "annual-audit")
NOW = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)  # FrozenClock's start: a Monday, the rotation's first hand-off

ONCALL: dict[str, Any] = {
    "contacts": {
        "ana": {"name": "Ana Silva", "phone": "+351910000001", "email": "ana@plant.example"},
        "ben": {"name": "Ben Okafor", "email": "ben@plant.example"},
        "carla": {"name": "Carla <Security> O'Neil", "phone": "+351910000003"},
    },
    "schedules": {"maintenance": {"rotation": ["ana", "ben"], "start": "2026-01-05", "timezone": "Europe/Lisbon"}},
    "policies": {
        "plant": {
            "schedule": "maintenance",
            "steps": [{"notify": "primary"}, {"notify": "contact:carla", "after_minutes": 15}],
        }
    },
    "email_channel": "mail",
    "sms": {"url": "http://127.0.0.1:9/sms"},
}
HEALTH: dict[str, Any] = {
    "default_checks": False,
    "alerts": {"channels": {"log": {"type": "log"}, "mail": {"type": "email", "to": ["ops@plant.example"]}}},
}


def _text(page: str) -> str:
    """The page's visible text, unescaped, whitespace collapsed (what a reader sees)."""

    inline = ("code", "b", "i", "em", "strong", "a")

    class Text(HTMLParser):  # convert_charrefs: the data arrives unescaped
        def __init__(self) -> None:
            super().__init__()
            self.parts: list[str] = []
            self.skip = False

        def handle_starttag(self, tag: str, attrs: Any) -> None:
            self.skip = tag in ("style", "title")
            self.parts.append("" if tag in inline else " ")

        def handle_endtag(self, tag: str) -> None:
            self.skip = False
            self.parts.append("" if tag in inline else " ")

        def handle_data(self, data: str) -> None:
            if not self.skip:
                self.parts.append(data)

    parser = Text()
    parser.feed(page)
    return _words("".join(parser.parts))


def _words(text: str) -> str:
    return " ".join(text.split())


def _fetches_nothing(page: str) -> None:
    """No element or attribute that loads anything, no URL in the style: the page prints offline."""

    class Loads(HTMLParser):
        def __init__(self) -> None:
            super().__init__()
            self.found: list[str] = []
            self.style = ""
            self.in_style = False

        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            self.in_style = tag == "style"
            if tag in ("script", "link", "img", "iframe", "object", "embed", "base", "video", "audio", "source"):
                self.found.append(tag)
            self.found += [name for name, _ in attrs if name in ("src", "href", "srcset", "action", "style")]

        def handle_endtag(self, tag: str) -> None:
            self.in_style = False

        def handle_data(self, data: str) -> None:
            if self.in_style:
                self.style += data

    parser = Loads()
    parser.feed(page)
    assert parser.found == [], parser.found
    assert parser.style and not re.search(r"url\(|@import|@font-face", parser.style, re.I)


# -- the files ---------------------------------------------------------------------------------


def test_the_new_procedures_load_through_the_catalog() -> None:
    files = Catalog().files()
    breach, corruption, annual = (files[n].procedure for n in NEW)
    assert all(files[n].origin == "package" and len(files[n].content_hash) == 64 for n in NEW)
    # the guides' stages, in their order
    assert [s.id for s in breach.steps if isinstance(s, ManualStep)] == [
        "declare",
        "isolate",
        "evidence",
        "rotate-credentials",
        "audit",
        "clean-restore",
        "verify",
        "stand-down",
    ]
    assert [s.id for s in corruption.steps if isinstance(s, ManualStep)] == [
        "declare",
        "stop-writers",
        "isolate",
        "verified-set",
        "restore",
        "verify",
        "root-cause",
    ]
    for runbook in (breach, corruption):
        assert runbook.runbook and runbook.contacts and runbook.schedule is None
        limits = [duration(s.within) for s in runbook.steps if s.within]
        assert limits == sorted(limits) and len(limits) >= 7, runbook.name  # timed, in the order done
    assert breach.step("evidence").attachment  # type: ignore[union-attr]
    assert corruption.step("root-cause").note_required  # type: ignore[union-attr]
    assert "note" in corruption.step("root-cause").instruction  # type: ignore[union-attr]
    for key in ("keys create", "keys revoke", "oncall-link.key", "link_secret"):
        assert key in breach.step("rotate-credentials").instruction, key  # type: ignore[union-attr]
    assert "api/audit" in breach.step("evidence").instruction  # type: ignore[union-attr]
    # the annual level: once a year, covering what an annual review checks
    assert not annual.runbook and annual.contacts and annual.schedule is not None
    assert annual.schedule.cron is not None and annual.schedule.mode == "fixed"
    cron, at, dues = Cron.parse(annual.schedule.cron), NOW, []
    for _ in range(3):
        at = cron.next_after(at)
        dues.append(at)
    assert dues == [datetime(y, 1, 15, 9, 0, tzinfo=UTC) for y in (2026, 2027, 2028)]
    assert {s.id for s in annual.steps} >= {
        "oldest-set-restores",
        "rto-rpo-review",
        "contacts-reviewed",
        "runbooks-walked-through",
        "keys-rotated",
        "retention-reviewed",
    }
    retention = annual.step("retention-reviewed").instruction  # type: ignore[union-attr]
    assert all(f"{tier} {n}" in retention for tier, n in (("daily", 7), ("weekly", 4), ("monthly", 12)))


def test_the_annual_audit_comes_due_once_a_year_when_enabled(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'pitstop.db'}")
    db.upgrade()
    clock = FrozenClock(NOW)
    m = build(Settings(data_dir=tmp_path), clock=clock, db=db).maintenance
    m.tick()
    assert m.orders.list(source="schedule", active=True) == []  # a suggestion until enabled
    schedule = m.schedules.enable("annual-audit")
    for day in range(0, 800, 3):
        clock.set(NOW + timedelta(days=day))
        m.tick()
        for order in m.orders.list(source="schedule", active=True):
            assert order.procedure == "annual-audit"
            m.orders.close(order.id, actor="auditor", actual_h=8)
    assert [d.due_at for d in m.schedules.dues(schedule.id)] == [
        datetime(2026, 1, 15, 9, tzinfo=UTC),
        datetime(2027, 1, 15, 9, tzinfo=UTC),
        datetime(2028, 1, 15, 9, tzinfo=UTC),  # two weeks of lead: open from 1 January 2028
    ]
    db.dispose()


def _cli_tree() -> Any:
    """The `pitstop` command tree (Typer's own click: groups have `commands`, commands `params`)."""
    return typer.main.get_command(cli_app)


def _pitstop_commands(text: str) -> list[str]:
    return [m.group(1) for m in re.finditer(r"`(pitstop [^`]+)`", text)]


def test_their_steps_name_checks_actions_and_commands_that_exist() -> None:
    import pitstop.backup.checks  # registers backup_* as the service does
    import pitstop.health.checks
    import pitstop.remediation.actions  # noqa: F401

    root, seen = _cli_tree(), 0
    for name in NEW:
        proc = Catalog().get(name).procedure
        texts = [proc.description]
        for step in proc.steps:
            if isinstance(step, CheckStep):
                assert step.check in checks, (name, step.check)
                checks.get(step.check)(step.target or "system", params=step.params)  # its params are accepted
            elif isinstance(step, ActionStep):
                assert step.action in actions, (name, step.action)
            elif isinstance(step, ManualStep):
                texts.append(step.instruction)
            else:
                raise AssertionError(f"{name}.{step.id}: an unexpected step kind {step.kind}")
        # every `pitstop ...` command a person is told to type is a real command with real options
        for command in (c for t in texts for c in _pitstop_commands(t)):
            words = shlex.split(command)[1:]
            node = root
            while hasattr(node, "commands") and words and words[0] in node.commands:
                node = node.commands[words.pop(0)]
            assert not hasattr(node, "commands"), f"{name}: {command!r} names no command"
            options = {o for p in node.params for o in [*p.opts, *p.secondary_opts]}
            for word in words:
                if word.startswith("--"):
                    assert word in options, f"{name}: {command!r}: {word} is not an option of it"
            seen += 1
    assert seen >= 25  # the runbooks are written in commands, not in generalities


# -- printed copies ----------------------------------------------------------------------------


def test_every_shipped_procedure_prints_every_step_and_its_version() -> None:
    files = Catalog().files()
    assert set(NEW) <= set(files)
    for name, pf in files.items():
        version = printable.version_of(pf, [])
        page = printable.render(pf, version=version, oncall=OncallSettings(), now=NOW)
        text = _text(page)
        assert _words(pf.procedure.title) in text, name
        assert f"v1 · sha256 {pf.content_hash[:12]}" in text and pf.content_hash in text, name
        for number, step in enumerate(pf.procedure.steps, start=1):
            assert f"{number}. {_words(step.title)}" in text, (name, step.id)
            if isinstance(step, ManualStep):
                assert _words(step.instruction.replace("`", "")) in text, (name, step.id)
            if step.within:
                assert f"within {step.within}" in text, (name, step.id)
        # a box to tick per step, blank lines to write on
        assert page.count('class="step"') == len(pf.procedure.steps)
        assert page.count("passed</span>") == len(pf.procedure.steps)
        assert "@media print" in page and "@page" in page
        _fetches_nothing(page)
        assert printable.NO_CONTACTS in text  # printed copies always carry the contact section


def test_the_printed_copy_shows_limits_kinds_and_schedule() -> None:
    files = Catalog().files()
    annual = _text(
        printable.render(
            files["annual-audit"],
            version=printable.version_of(files["annual-audit"], []),
            oncall=OncallSettings(),
            now=NOW,
        )
    )
    assert "cron 0 9 15 1 * (UTC), fixed; next 2026-01-15 09:00 UTC; work order 14d ahead; grace 30d" in annual
    assert "Expected: at least 30 %" in annual and "Value read:" in annual
    assert "automated check" in annual and "pitstop runs the health check updates on localhost" in annual
    breach = _text(
        printable.render(
            files["security-breach"],
            version=printable.version_of(files["security-breach"], []),
            oncall=OncallSettings(),
            now=NOW,
        )
    )
    assert "pitstop emergency declare KEY TITLE --runbook security-breach" in breach
    assert "photo / file attached" in breach and "Timed:" in breach


def test_a_site_file_with_hostile_text_prints_escaped_with_secrets_masked(tmp_path: Path) -> None:
    (tmp_path / "odd.toml").write_text(
        """
name = "odd"
title = "<script>alert(1)</script> & co"
description = "<img src=http://evil.example/x.png>"
[[steps]]
id = "probe"
kind = "check"
check = "postgres"
title = "Probe </section><h1>x"
params = { url = "postgresql://admin:hunter2@db.example/plant", password = "hunter2" }
[[steps]]
id = "look"
kind = "manual"
title = "Look"
instruction = "Read `it` <b>now</b>"
min = 1
max = 2
unit = "bar"
within = "15m"
"""
    )
    pf = Catalog(tmp_path).get("odd")
    page = printable.render(pf, version=printable.version_of(pf, []), oncall=OncallSettings(), now=NOW)
    _fetches_nothing(page)
    assert "<script>" not in page and "<b>now</b>" not in page and "hunter2" not in page
    text = _text(page)
    assert "<script>alert(1)</script> & co" in text and "Probe </section><h1>x" in text
    assert "postgresql://***@db.example/plant" in text and '"password": "***"' in text
    assert "Expected: 1 to 2 bar" in text and "within 15m" in text and "<code>it</code>" in page


def test_the_version_is_the_one_runs_record(db: Database, tmp_path: Path) -> None:
    pitstop = build(Settings(data_dir=tmp_path), clock=FrozenClock(), db=db)
    m = pitstop.maintenance
    pf = m.catalog.get("emergency-restore")
    before = printable.version_of(pf, m.runner.versions("emergency-restore"))
    assert (before.number, before.recorded) == (1, False)
    run = m.runner.start("emergency-restore", actor="test")
    after = printable.version_of(pf, m.runner.versions("emergency-restore"))
    assert (after.number, after.recorded, after.content_hash) == (run.version, True, run.content_hash)
    # the site edits its copy: the printed copy names the next version, which its first run records
    (tmp_path / "procedures").mkdir()
    (tmp_path / "procedures" / "emergency-restore.toml").write_text(pf.source.replace("5m", "10m"))
    edited = m.catalog.get("emergency-restore")
    page = printable.render(
        edited,
        version=printable.version_of(edited, m.runner.versions("emergency-restore")),
        oncall=OncallSettings(),
        now=NOW,
    )
    assert f"v2 · sha256 {edited.content_hash[:12]}" in _text(page) and "not run yet" in page
    assert m.runner.start("emergency-restore", actor="test").version == 2


def test_the_root_cause_takes_no_answer_without_a_note(db: Database, tmp_path: Path) -> None:
    pitstop = build(Settings(data_dir=tmp_path), clock=FrozenClock(), db=db)
    runner = pitstop.maintenance.runner
    run = runner.start("data-corruption", actor="test")
    with pytest.raises(InvalidInput, match="a note is required"):
        runner.answer(run.id, "root-cause", Answer(passed=True, note="  "), actor="test")
    answered = runner.answer(
        run.id, "root-cause", Answer(passed=True, note="a migration wrote NULLs into readings"), actor="test"
    )
    result = next(r for r in answered.steps if r.id == "root-cause")
    assert result.status == "passed" and result.note == "a migration wrote NULLs into readings"
    pitstop.close()


# -- contacts ----------------------------------------------------------------------------------


def test_the_contact_list_names_roles_phone_and_email() -> None:
    oncall = OncallSettings.model_validate(ONCALL)
    found = printable.contact_list(oncall, NOW)
    assert [c.key for c in found] == ["ana", "ben", "carla"]  # on call first
    ana, ben, carla = found
    assert ana.roles == ("on call now (maintenance, primary) until 2026-01-12 08:00 UTC",)
    assert (ana.phone, ana.email) == ("+351910000001", "ana@plant.example")
    assert ben.roles == ("second on call now (maintenance)",) and ben.phone == ""
    assert carla.roles == ("plant escalation (emergencies), step 2",) and carla.email == ""
    # a week later the rotation turned
    later = printable.contact_list(oncall, NOW + timedelta(days=7))
    assert [c.key for c in later][:1] == ["ben"]
    assert printable.contact_list(OncallSettings(), NOW) == []

    pf = Catalog().get("security-breach")
    page = printable.render(pf, version=printable.version_of(pf, []), oncall=oncall, now=NOW)
    text = _text(page)
    assert printable.NO_CONTACTS not in text
    assert "Ana Silva (ana) on call now (maintenance, primary) until 2026-01-12 08:00 UTC +351910000001" in text
    assert "ana@plant.example" in text and "Ben Okafor" in text and "ben@plant.example" in text
    assert "Carla <Security> O'Neil" in text and "Carla <Security>" not in page  # escaped


def test_which_procedures_show_contacts_with_their_runs(tmp_path: Path) -> None:
    site = tmp_path / "procedures"
    site.mkdir()
    base = 'title = "T"\n[[steps]]\nid = "a"\nkind = "manual"\ntitle = "A"\ninstruction = "Do."\n'
    (site / "plain.toml").write_text('name = "plain"\n' + base)
    (site / "asks.toml").write_text('name = "asks"\ncontacts = true\n' + base)
    (site / "quiet-runbook.toml").write_text('name = "quiet-runbook"\nrunbook = true\ncontacts = false\n' + base)
    catalog, oncall = Catalog(site), OncallSettings.model_validate(ONCALL)
    shown = {n: printable.run_contacts(catalog.get(n).procedure, oncall, NOW) for n in catalog.files()}
    assert shown["plain"] == {} and shown["quiet-runbook"] == {}
    assert [c["name"] for c in shown["asks"]["contacts"]] == ["Ana Silva", "Ben Okafor", "Carla <Security> O'Neil"]
    assert shown["emergency-restore"]["contacts_note"] == ""  # a runbook shows them by default
    assert [c["key"] for c in shown["data-corruption"]["contacts"]] == ["ana", "ben", "carla"]
    none = printable.run_contacts(catalog.get("data-corruption").procedure, OncallSettings(), NOW)
    assert none == {"contacts": [], "contacts_note": printable.NO_CONTACTS}


# -- the API -----------------------------------------------------------------------------------


@pytest.fixture
def staffed(db: Database, tmp_path: Path) -> Iterator[tuple[Pitstop, TestClient, dict[Role, str]]]:
    """A pitstop with on-call contacts, its API, and a key of each role."""
    pitstop = build(Settings(data_dir=tmp_path, health=HEALTH, oncall=ONCALL), clock=FrozenClock(), db=db)
    keys = {role: pitstop.keys.create(f"test-{role.value}", role, pitstop.clock.now())[1] for role in Role}
    with TestClient(create_app(pitstop)) as client:
        yield pitstop, client, keys


def test_the_print_route_answers_html_to_a_viewer(staffed: tuple[Pitstop, TestClient, dict[Role, str]]) -> None:
    pitstop, client, keys = staffed
    url = "/api/maintenance/procedures/data-corruption/print"
    assert client.get(url).status_code == 401
    assert client.get(url, headers=auth("ps_not-a-key")).status_code == 401
    page = client.get(url, headers=auth(keys[Role.VIEWER]))
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "default-src 'none'" in page.headers["content-security-policy"]
    text = _text(page.text)
    pf = pitstop.maintenance.catalog.get("data-corruption")
    assert f"v1 · sha256 {pf.content_hash[:12]}" in text and "Record the root cause" in text
    assert "Ana Silva" in text and "+351910000001" in text
    _fetches_nothing(page.text)
    # printing records nothing: a viewer's GET changes no state
    assert pitstop.maintenance.runner.versions("data-corruption") == []


def test_a_runbook_run_shows_the_contacts(staffed: tuple[Pitstop, TestClient, dict[Role, str]]) -> None:
    pitstop, client, keys = staffed
    em = pitstop.maintenance.emergency.declare(
        "data.corrupt:pitstop", "readings table damaged", actor="test", runbook="data-corruption"
    )
    assert em.run.steps[0].id == "database-answers" and em.run.steps[0].status == "passed"  # the real database
    run = client.get(f"/api/procedure-runs/{em.run.id}", headers=auth(keys[Role.VIEWER])).json()
    assert run["procedure"] == "data-corruption" and run["contacts_note"] == ""
    assert [(c["name"], c["phone"], c["email"]) for c in run["contacts"]] == [
        ("Ana Silva", "+351910000001", "ana@plant.example"),
        ("Ben Okafor", "", "ben@plant.example"),
        ("Carla <Security> O'Neil", "+351910000003", ""),
    ]
    assert run["contacts"][0]["roles"] == ["on call now (maintenance, primary) until 2026-01-12 08:00 UTC"]


def test_without_oncall_the_run_and_the_page_say_so(client: TestClient, keys: dict[Role, str]) -> None:
    viewer, operator = auth(keys[Role.VIEWER]), auth(keys[Role.OPERATOR])
    started = client.post("/api/procedures/emergency-restore/runs", json={"answers": {}}, headers=operator).json()
    run = client.get(f"/api/procedure-runs/{started['id']}", headers=viewer).json()
    assert run["contacts"] == [] and run["contacts_note"] == printable.NO_CONTACTS
    page = client.get("/api/maintenance/procedures/emergency-restore/print", headers=viewer)
    assert printable.NO_CONTACTS in _text(page.text) and "v1 · sha256" in page.text  # recorded by the run


@pytest.mark.parametrize(
    ("name", "status", "says"),
    [
        ("nope", 404, "no procedure named 'nope'"),
        ("..", 404, ""),  # a dot segment: the client resolves it away, no route is left
        ("..%2F..%2Fetc%2Fpasswd", 404, ""),  # decoded to slashes: no such route
        ("%2e%2e%5c%2e%2e%5cwin.ini", 400, "must be 1-100 lowercase"),
        ("...", 400, "must be 1-100 lowercase"),
        ("Emergency-Restore", 400, "must be 1-100 lowercase"),
        ("emergency-restore%00", 400, "must be 1-100 lowercase"),
        ("a" * 101, 400, "must be 1-100 lowercase"),
        ("x" * 20_000, 400, "must be 1-100 lowercase"),
    ],
)
def test_hostile_names_get_a_clear_error(
    client: TestClient, keys: dict[Role, str], name: str, status: int, says: str
) -> None:
    response = client.get(f"/api/maintenance/procedures/{name}/print", headers=auth(keys[Role.VIEWER]))
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    message = response.json()["error"]["message"]
    assert says in message and 0 < len(message) < 1000


# -- the command line --------------------------------------------------------------------------


def _cli(tmp_path: Path, *args: str) -> str:
    done = CliRunner().invoke(cli_app, ["--data-dir", str(tmp_path), *args], env={"COLUMNS": "200"})
    assert done.exit_code == 0, f"{args}: {done.output} {done.exception!r}"
    return done.output


def test_the_print_command_writes_a_file(tmp_path: Path) -> None:
    config = tmp_path / "pitstop.toml"
    config.write_text(
        """
[health]
default_checks = false
[health.alerts.channels.log]
type = "log"
[health.alerts.channels.mail]
type = "email"
to = ["ops@plant.example"]
[oncall]
email_channel = "mail"
[oncall.contacts.ana]
name = "Ana Silva"
email = "ana@plant.example"
"""
    )
    _cli(tmp_path, "db", "upgrade")
    out = tmp_path / "sheets" / "breach.html"
    said = _cli(tmp_path, "--config", str(config), "procedures", "print", "security-breach", "--output", str(out))
    pf = Catalog().get("security-breach")
    assert f"wrote {out}" in _words(said) and f"v1 · sha256 {pf.content_hash[:12]}" in _words(said)
    text = _text(out.read_text())
    assert all(_words(s.title) in text for s in pf.procedure.steps)
    assert "Ana Silva (ana) contact — ana@plant.example" in text
    # the default place: <data_dir>/printouts/NAME-vN.html; no on-call configuration: says where to add it
    said = _cli(tmp_path, "procedures", "print", "annual-audit")
    default = tmp_path / "printouts" / "annual-audit-v1.html"
    assert default.is_file() and printable.NO_CONTACTS in _text(default.read_text())
    # a runbook run on the command line lists the contacts after its steps
    said = _cli(tmp_path, "--config", str(config), "procedures", "run", "emergency-restore", "--pass", "declare")
    assert "contact Ana Silva (contact): ana@plant.example" in said
    said = _cli(tmp_path, "procedures", "run", "emergency-restore")
    assert f"contacts: {printable.NO_CONTACTS}" in said


def test_the_print_command_refuses_bad_formats_and_names_in_one_line(tmp_path: Path) -> None:
    assert printable.output_format(None, None) == "html"
    assert printable.output_format(None, Path("x.PDF")) == "pdf"
    assert printable.output_format("pdf", Path("x.bin")) == "pdf"
    for fmt, output in (("docx", None), ("html", Path("x.pdf"))):
        with pytest.raises(InvalidInput):
            printable.output_format(fmt, output)
    _cli(tmp_path, "db", "upgrade")
    for args in (
        ("procedures", "print", "../../etc/passwd"),
        ("procedures", "print", "x" * 5000),
        ("procedures", "print", "nope"),
        ("procedures", "print", "annual-audit", "--format", "docx"),
    ):
        done = subprocess.run(
            [sys.executable, "-m", "pitstop", "--data-dir", str(tmp_path), *args],
            capture_output=True,
            text=True,
            timeout=120,
            env={"PATH": "/usr/bin:/bin", "COLUMNS": "200"},
        )
        assert done.returncode != 0, args
        assert done.stderr.startswith("error:") and len(done.stderr.strip().splitlines()) == 1, (args, done.stderr)
        assert len(done.stderr) < 1500
    assert not (tmp_path / "printouts").exists()


# -- PDF ---------------------------------------------------------------------------------------


def _weasyprint() -> None:
    """Skip (fail with PITSTOP_REQUIRE_SERVICES=1) where the optional PDF renderer is not usable."""
    try:
        importlib.import_module("weasyprint")
    except (ImportError, OSError) as exc:  # OSError: installed without the Pango libraries it loads
        unavailable(f"weasyprint is not usable here ({exc}): the PDF path is untested")


def test_pdf_without_weasyprint_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "weasyprint", None)  # as if not installed: import raises ImportError
    with pytest.raises(InvalidInput, match="PDF needs the optional weasyprint package") as info:
        printable.pdf("<p>x</p>")
    assert "HTML" in str(info.value)


def test_the_pdf_holds_the_steps_and_the_version(tmp_path: Path) -> None:
    _weasyprint()
    _cli(tmp_path, "db", "upgrade")
    out = tmp_path / "corruption.pdf"
    _cli(tmp_path, "procedures", "print", "data-corruption", "--output", str(out))
    data = out.read_bytes()
    assert data.startswith(b"%PDF-") and len(data) > 5000
    if shutil.which("pdftotext") is None:
        unavailable("pdftotext (Debian's poppler-utils) is not installed: the PDF's text is unchecked")
    text = _words(subprocess.run(["pdftotext", str(out), "-"], capture_output=True, text=True, check=True).stdout)
    pf = Catalog().get("data-corruption")
    assert f"v1 · sha256 {pf.content_hash[:12]}" in text
    for number, step in enumerate(pf.procedure.steps, start=1):
        assert _words(step.title) in text, step.id
        assert f"{number}." in text
    assert printable.NO_CONTACTS in text and "page 1 of" in text


class _Recorder(http.server.BaseHTTPRequestHandler):
    hits: list[str] = []

    def do_GET(self) -> None:
        self.hits.append(self.path)
        self.send_response(404)
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


def test_the_pdf_renderer_fetches_nothing() -> None:
    """Even a page naming URLs (a site's hostile file could only put text there, but the renderer
    must not be the weak point) makes no request."""
    _weasyprint()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}"
        page = f'<link rel="stylesheet" href="{base}/a.css"><p>x<img src="{base}/b.png"></p>'
        assert printable.pdf(page).startswith(b"%PDF-")
    finally:
        server.shutdown()
        server.server_close()
    assert _Recorder.hits == []
