"""The monthly report goes out: the scheduler (driven by a FrozenClock) makes last month's report on the
first at the configured hour, archives HTML and PDF under <data_dir>/reports and mails the PDF to a real
SMTP server the test starts (aiosmtpd on a free port); the PDF is read back with poppler's pdftotext and
its first page drawn with pdftoppm. SMTP down is recorded and tried again; an empty month says so in words."""

from __future__ import annotations

import http.server
import json
import shutil
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError
from typer.testing import CliRunner

from pitstop import inventory
from pitstop.app import Pitstop, build
from pitstop.cli.main import app as cli_app
from pitstop.config import Settings
from pitstop.config.reports import ReportSettings
from pitstop.errors import ConfigError, InvalidInput
from pitstop.maintenance import report
from pitstop.maintenance.report_delivery import JOB, ReportDelivery, previous_month
from pitstop.storage import Database
from pitstop.testing.clock import FrozenClock
from pitstop.testing.server import free_port
from pitstop.testing.services import unavailable

PLANT = """
[[sites]]
name = "plant"

[[assets]]
name = "pump-7"
site = "plant"
type = "pump"
"""
USER, PASSWORD = "pitstop", "s3cret-smtp"
TO = ["manager@plant.example", "maintenance@plant.example"]


# -- a real SMTP server --------------------------------------------------------------------------


@dataclass
class Inbox:
    """What the local SMTP server took: each message with its envelope recipients, and the logins."""

    messages: list[tuple[list[str], EmailMessage]] = field(default_factory=list)
    logins: list[tuple[str, str]] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        msg = message_from_bytes(envelope.content, policy=policy.default)
        assert isinstance(msg, EmailMessage)
        self.messages.append((list(envelope.rcpt_tos), msg))
        return "250 Message accepted for delivery"

    def authenticate(self, server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> Any:
        from aiosmtpd.smtp import AuthResult

        login, password = data.login.decode(), data.password.decode()
        self.logins.append((login, password))
        return AuthResult(success=(login, password) == (USER, PASSWORD), handled=False)


@dataclass
class Smtp:
    port: int
    inbox: Inbox = field(default_factory=Inbox)
    controller: Any = None

    def start(self) -> None:
        from aiosmtpd.controller import Controller

        self.controller = Controller(
            self.inbox,
            hostname="127.0.0.1",
            port=self.port,
            authenticator=self.inbox.authenticate,
            auth_require_tls=False,  # a test server on loopback; the login itself is what is checked
            auth_exclude_mechanism=["LOGIN"],  # PLAIN only: a wrong password is one clear 535
        )
        self.controller.start()

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None


@pytest.fixture
def smtp() -> Iterator[Smtp]:
    """A free port with no server yet: `start()` puts one there (so a test can begin with SMTP down)."""
    try:
        import aiosmtpd.controller  # noqa: F401
    except ImportError:
        unavailable("aiosmtpd is not installed (pip install -e '.[dev]')")
    server = Smtp(free_port())
    yield server
    server.stop()


def poppler() -> None:
    if not (shutil.which("pdftotext") and shutil.which("pdftoppm")):
        unavailable("poppler-utils (pdftotext, pdftoppm) is not installed: apt-get install poppler-utils")


def pdf_text(pdf: Path) -> str:
    done = subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout


def first_page_png(pdf: Path, out: Path) -> Path:
    """The PDF's first page drawn as a PNG; asserts it has text on it (dark pixels), not a blank page."""
    from PIL import Image

    done = subprocess.run(
        ["pdftoppm", "-png", "-r", "60", "-f", "1", "-l", "1", "-singlefile", str(pdf), str(out)],
        capture_output=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    png = out.with_suffix(".png")
    with Image.open(png) as image:
        assert image.width > 300 and image.height > image.width  # A4 portrait
        dark = sum(image.convert("L").histogram()[:128])
    assert dark > 2000, f"the first page looks blank ({dark} dark pixels)"
    return png


# -- the installation under test ----------------------------------------------------------------


def plant(db: Database, tmp_path: Path, clock: FrozenClock, **reports: Any) -> Pitstop:
    pitstop = build(Settings(data_dir=tmp_path, reports=reports), clock=clock, db=db)
    inventory.apply(db, inventory.parse(PLANT, "plant.toml", "toml"), actor="test", now=clock.now())
    return pitstop


def mail(port: int, **extra: Any) -> dict[str, Any]:
    return {
        "host": "127.0.0.1",
        "port": port,
        "username": USER,
        "password": PASSWORD,
        "sender": "pitstop@plant.example",
        "to": TO,
        "timeout_s": 5,
        **extra,
    }


def report_entries(pitstop: Pitstop) -> list[Any]:
    return pitstop.maintenance.log.entries(kind="report")


def attachment(msg: EmailMessage) -> tuple[str, bytes]:
    [part] = list(msg.iter_attachments())
    assert part.get_content_type() == "application/pdf"
    payload = part.get_payload(decode=True)
    assert isinstance(payload, bytes)
    return part.get_filename() or "", payload


# -- the scheduled report -----------------------------------------------------------------------


def test_the_scheduler_mails_last_months_report_on_the_first_at_the_hour(
    db: Database, tmp_path: Path, smtp: Smtp
) -> None:
    poppler()
    smtp.start()
    clock = FrozenClock(datetime(2026, 1, 31, 12, 0, tzinfo=UTC))
    pitstop = plant(db, tmp_path, clock, hour=6, email=mail(smtp.port))
    assert JOB in pitstop.scheduler.jobs
    m = pitstop.maintenance
    order, _ = m.orders.open_for("manual", "pump-7", "repair.bearing", title="replace the bearing", estimated_h=3)
    clock.advance(timedelta(hours=4))
    m.orders.close(order.id, actor="tech", actual_h=4)

    # the first run catches up with the month before (December was never reported)
    assert JOB in pitstop.scheduler.tick()
    assert [msg["Subject"] for _, msg in smtp.inbox.messages] == ["Maintenance report 2025-12"]

    # January's report is not due before 06:00 UTC on the first of February ...
    clock.set(datetime(2026, 2, 1, 5, 55, tzinfo=UTC))
    assert JOB in pitstop.scheduler.tick()
    assert len(smtp.inbox.messages) == 1
    assert not (tmp_path / "reports" / "2026-01.pdf").exists()
    # ... and goes out at 06:00
    clock.set(datetime(2026, 2, 1, 6, 0, tzinfo=UTC))
    assert JOB in pitstop.scheduler.tick()
    assert len(smtp.inbox.messages) == 2
    rcpt, msg = smtp.inbox.messages[1]
    assert sorted(rcpt) == sorted(TO) and msg["From"] == "pitstop@plant.example"
    assert msg["Subject"] == "Maintenance report 2026-01"
    assert smtp.inbox.logins[-1] == (USER, PASSWORD)  # the SecretStr reached the server, and only there
    body = msg.get_body(preferencelist=("plain",))
    assert body is not None
    text = body.get_content()
    assert "MTTR: 4 h" in text and "attached as a PDF" in text and PASSWORD not in text
    name, pdf = attachment(msg)
    assert name == "maintenance-2026-01.pdf" and pdf.startswith(b"%PDF-")

    # the archive holds what was mailed
    archive = tmp_path / "reports"
    assert (archive / "2026-01.pdf").read_bytes() == pdf
    page = (archive / "2026-01.html").read_text()
    assert "<h1>Maintenance report 2026-01</h1>" in page and "replace the bearing" in page
    assert sorted(p.name for p in archive.iterdir()) == ["2025-12.html", "2025-12.pdf", "2026-01.html", "2026-01.pdf"]
    printed = pdf_text(archive / "2026-01.pdf")
    assert "Maintenance report 2026-01" in printed and "4 h" in printed and "replace the bearing" in printed
    first_page_png(archive / "2026-01.pdf", tmp_path / "page1")

    # each report is a maintenance-log entry
    *_, entry = report_entries(pitstop)
    assert (entry.ref, entry.result, entry.actor) == ("report:2026-01", "sent", "scheduler")
    assert entry.evidence == [str(archive / "2026-01.html"), str(archive / "2026-01.pdf")]
    assert "2 recipient(s)" in entry.summary and all(a in entry.actions for a in TO)

    # later runs of the job send nothing again
    for _ in range(3):
        clock.advance(timedelta(minutes=10))
        assert JOB in pitstop.scheduler.tick()
    assert len(smtp.inbox.messages) == 2 and len(report_entries(pitstop)) == 2
    assert pitstop.jobs.recent(JOB, limit=1)[0].outcome == "ok"


def test_smtp_down_is_recorded_and_the_report_sent_on_a_later_run(db: Database, tmp_path: Path, smtp: Smtp) -> None:
    clock = FrozenClock(datetime(2026, 3, 1, 6, 30, tzinfo=UTC))
    pitstop = plant(db, tmp_path, clock, retry_minutes=30, email=mail(smtp.port))

    assert JOB in pitstop.scheduler.tick()  # nothing listens on the port yet
    [failed] = report_entries(pitstop)
    assert (failed.ref, failed.result) == ("report:2026-02", "failed")
    assert "ConnectionRefusedError" in failed.issues and PASSWORD not in failed.issues + failed.summary
    assert (tmp_path / "reports" / "2026-02.pdf").exists()  # archived all the same
    run = pitstop.jobs.recent(JOB, limit=1)[0]
    assert run.outcome == "failed" and run.error is not None and "2026-02" in run.error

    clock.advance(timedelta(minutes=10))
    pitstop.scheduler.tick()
    assert len(report_entries(pitstop)) == 1  # not before retry_minutes

    smtp.start()
    clock.advance(timedelta(minutes=25))
    assert JOB in pitstop.scheduler.tick()
    assert [msg["Subject"] for _, msg in smtp.inbox.messages] == ["Maintenance report 2026-02"]
    assert [e.result for e in report_entries(pitstop)] == ["failed", "sent"]
    assert pitstop.jobs.recent(JOB, limit=1)[0].outcome == "ok"

    clock.advance(timedelta(hours=2))
    pitstop.scheduler.tick()
    assert len(smtp.inbox.messages) == 1


def test_a_refused_login_or_missing_starttls_is_a_recorded_failure(db: Database, tmp_path: Path, smtp: Smtp) -> None:
    """Wrong credentials, or STARTTLS asked of a server that has none: nothing is sent (never in the
    clear), and the failure is recorded."""
    smtp.start()
    pitstop = plant(db, tmp_path, FrozenClock(datetime(2026, 3, 1, 7, 0, tzinfo=UTC)), schedule=False)
    for extra, words in [({"password": "wrong"}, "refused the login"), ({"starttls": True}, "SMTPNotSupportedError")]:
        settings = ReportSettings.model_validate({"email": mail(smtp.port, **extra)})
        reports = ReportDelivery(settings, pitstop.maintenance, data_dir=tmp_path)
        done = reports.deliver("2026-02", send=True, actor="test")
        assert done.result == "failed" and words in done.detail, done.detail
        assert "wrong" not in done.detail and done.entry.result == "failed"
    assert smtp.inbox.messages == []
    assert [e.result for e in report_entries(pitstop)] == ["failed", "failed"]


def test_without_email_the_scheduled_report_is_archived_once(db: Database, tmp_path: Path) -> None:
    clock = FrozenClock(datetime(2026, 5, 1, 6, 0, tzinfo=UTC))
    pitstop = plant(db, tmp_path, clock)
    pitstop.scheduler.tick()
    [entry] = report_entries(pitstop)
    assert (entry.ref, entry.result) == ("report:2026-04", "archived")
    assert (tmp_path / "reports" / "2026-04.pdf").read_bytes().startswith(b"%PDF-")
    clock.advance(timedelta(hours=1))
    pitstop.scheduler.tick()
    assert len(report_entries(pitstop)) == 1


def test_the_job_is_not_scheduled_when_turned_off(db: Database, tmp_path: Path) -> None:
    pitstop = plant(db, tmp_path, FrozenClock(), schedule=False)
    assert JOB not in pitstop.scheduler.jobs
    pitstop.scheduler.tick()
    assert report_entries(pitstop) == [] and not (tmp_path / "reports").exists()


@pytest.mark.parametrize(
    ("now", "hour", "month"),
    [
        ("2026-02-01T05:59", 6, "2025-12"),
        ("2026-02-01T06:00", 6, "2026-01"),
        ("2026-01-01T00:00", 0, "2025-12"),
        ("2026-01-01T03:00", 4, "2025-11"),
        ("2026-03-31T23:59", 23, "2026-02"),
    ],
)
def test_the_month_that_is_due(now: str, hour: int, month: str) -> None:
    assert previous_month(datetime.fromisoformat(now).replace(tzinfo=UTC), hour) == month


# -- the report's words and its PDF --------------------------------------------------------------


def test_an_empty_month_says_so_in_words(db: Database, tmp_path: Path) -> None:
    poppler()
    clock = FrozenClock(datetime(2026, 7, 10, 9, 0, tzinfo=UTC))
    pitstop = plant(db, tmp_path, clock)
    reports = ReportDelivery(pitstop.settings.reports, pitstop.maintenance, data_dir=tmp_path)
    done = reports.deliver("2025-06", send=False, actor="test")
    assert done.result == "archived"
    page = done.html.read_text()
    printed = " ".join(pdf_text(done.pdf).split())
    for words in (
        "No planned maintenance was due this month.",
        "so no MTTR",
        "so no MTBF",
        "No self-healing attempts finished this month.",
        "No work orders are open.",
        "No failure predictions were closed out this month.",
        "Nothing was recorded in the maintenance log this month.",
    ):
        assert words in page and words in printed, words
    for text in (page, printed):
        assert "n/a" not in text and "None." not in text


def test_the_pdf_fetches_nothing_from_the_network(tmp_path: Path) -> None:
    """A page that names a stylesheet, a picture and a font on a server: the PDF is made, the server
    hears nothing."""
    hits: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            hits.append(self.path)
            self.send_response(404)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    secret = tmp_path / "secret.css"
    secret.write_text("h1{color:red}")
    page = (
        f'<html><head><link rel="stylesheet" href="{base}/style.css">'
        f'<link rel="stylesheet" href="{secret.as_uri()}">'
        f"<style>@font-face{{font-family:X;src:url({base}/font.woff)}} body{{font-family:X}}</style></head>"
        f'<body><h1>Maintenance report</h1><img src="{base}/logo.png"></body></html>'
    )
    try:
        pdf = report.pdf(page)
    finally:
        server.shutdown()
        server.server_close()
    assert pdf.startswith(b"%PDF-") and hits == []


# -- on demand: the command line ----------------------------------------------------------------


def test_report_monthly_send_on_demand_replaces_the_archive(tmp_path: Path, smtp: Smtp) -> None:
    smtp.start()
    config = tmp_path / "pitstop.toml"
    config.write_text(
        f'[reports.email]\nhost = "127.0.0.1"\nport = {smtp.port}\nusername = "{USER}"\npassword = "{PASSWORD}"\n'
        f'sender = "pitstop@plant.example"\nto = {TO!r}\n'.replace("'", '"')
    )
    cli = CliRunner()
    base = ["--config", str(config), "--data-dir", str(tmp_path / "data")]
    assert cli.invoke(cli_app, [*base, "db", "upgrade"]).exit_code == 0
    send = [*base, "report", "monthly", "--month", "2026-01", "--send", "--by", "ana"]

    first = cli.invoke(cli_app, send, env={"COLUMNS": "300"})
    assert first.exit_code == 0, first.output
    archive = tmp_path / "data" / "reports"
    assert "archived" in first.output and "manager@plant.example" in first.output
    inode = (archive / "2026-01.pdf").stat().st_ino
    second = cli.invoke(cli_app, send)
    assert second.exit_code == 0, second.output

    # the same two files, replaced by rename (a new inode), no temporary files left behind
    assert sorted(p.name for p in archive.iterdir()) == ["2026-01.html", "2026-01.pdf"]
    assert (archive / "2026-01.pdf").stat().st_ino != inode
    assert [msg["Subject"] for _, msg in smtp.inbox.messages] == ["Maintenance report 2026-01"] * 2
    listed = cli.invoke(cli_app, [*base, "log", "list", "--kind", "report", "--format", "json"])
    entries = json.loads(listed.output)
    assert [(e["ref"], e["result"], e["actor"]) for e in entries] == [("report:2026-01", "sent", "ana")] * 2


def test_bad_report_requests_are_one_clear_error(tmp_path: Path) -> None:
    cli = CliRunner()
    base = ["--data-dir", str(tmp_path)]
    assert cli.invoke(cli_app, [*base, "db", "upgrade"]).exit_code == 0
    cases: list[tuple[list[str], type[Exception], str]] = [
        (["--month", "2026-13", "--send"], InvalidInput, "YYYY-MM"),
        (["--month", "2026-01", "--send"], ConfigError, "[reports.email]"),
        (["--month", "2026-01", "--site", "../../etc"], InvalidInput, "site"),
        (["--month", "2026-01", "--site", "a/b"], InvalidInput, "site"),
        (["--month", "2026-01", "--send", "--output", str(tmp_path / "r.pdf")], InvalidInput, "--output"),
    ]
    for args, error, words in cases:
        done = cli.invoke(cli_app, [*base, "report", "monthly", *args])
        assert isinstance(done.exception, error), (args, repr(done.exception))
        assert words in str(done.exception), (args, str(done.exception))
    assert not (tmp_path / "reports").exists() or list((tmp_path / "reports").iterdir()) == []
    assert not (tmp_path.parent / "etc.html").exists()


@pytest.mark.parametrize(
    ("values", "field_name"),
    [
        ({"hour": 24}, "hour"),
        ({"hour": -1}, "hour"),
        ({"retry_minutes": 0}, "retry_minutes"),
        ({"every": 5}, "every"),
        ({"email": {"to": []}}, "to"),
        ({"email": {"to": ["not-an-address"]}}, "to"),
        ({"email": {"to": ["a@b.example\nBcc: evil@x.example"]}}, "to"),
        ({"email": {"to": ["a@b.example, evil@x.example"]}}, "to"),
        ({"email": {"to": ["a@b.example"], "sender": "pitstop\r\nBcc: evil@x.example"}}, "sender"),
        ({"email": {"to": ["a@b.example"], "port": 70000}}, "port"),
        ({"email": {"to": ["a@b.example"], "hostname": "x"}}, "hostname"),
    ],
)
def test_report_settings_refuse_bad_values_by_name(values: dict[str, Any], field_name: str) -> None:
    with pytest.raises(ValidationError) as caught:
        ReportSettings.model_validate(values)
    assert field_name in str(caught.value)


def test_the_password_is_a_secret() -> None:
    settings = ReportSettings.model_validate({"email": {"to": ["a@b.example"], "password": PASSWORD}})
    assert PASSWORD not in repr(settings) and PASSWORD not in str(settings.model_dump())
