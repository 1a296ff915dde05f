"""The monthly report delivered: archived under <data_dir>/reports and e-mailed with the PDF attached.

The `reports` job makes the previous month's report on the first of each month, from `[reports] hour`
(UTC); `pitstop report monthly --month YYYY-MM [--send]` makes one on demand. Each writes
YYYY-MM.html and YYYY-MM.pdf (YYYY-MM-<site>.* for one site), replacing an earlier run's files whole,
and, when sending, mails the PDF through the alert e-mail notifier's SMTP code to `[reports.email]`.

The maintenance log is the record and the job's memory: every attempt is an entry of kind `report`
(ref `report:YYYY-MM` or `report:YYYY-MM:<site>`) whose result is `archived`, `sent` or `failed` (the
reason in its issues). A month is done once an entry says `sent` (or `archived`, where nothing is to
be mailed). A failed attempt is tried again by the job's first run `retry_minutes` later, and the
job's run fails too, so the `job` check (target `reports`) and the job history show it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from pitstop.alerts.notifiers.email import EmailNotifier
from pitstop.config.reports import ReportSettings
from pitstop.errors import ConfigError, InvalidInput, PitstopError
from pitstop.maintenance import report
from pitstop.maintenance.log import LogEntry
from pitstop.maintenance.service import Maintenance

JOB = "reports"
JOB_EVERY = timedelta(minutes=5)  # the job only looks at the log unless a report is due
LOOKBACK = timedelta(days=366)  # a failure older than this is not tried again by the job
ARCHIVED, SENT, FAILED = "archived", "sent", "failed"
_MAILING = "archive and e-mail to "  # a failed entry's actions start so when the attempt was to send
_SITE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,199}")  # the inventory's site names: safe file names


class ReportNotDelivered(PitstopError):
    """A report could not be made, archived or sent (recorded in the maintenance log; tried again)."""

    code = "report.not_delivered"


@dataclass(frozen=True, slots=True)
class Delivered:
    """One attempt: its result (archived, sent or failed), the archived files and the log entry."""

    month: str
    site: str | None
    result: str
    html: Path
    pdf: Path
    recipients: tuple[str, ...]
    detail: str
    entry: LogEntry


def ref(month: str, site: str | None = None) -> str:
    return f"report:{month}" + (f":{site}" if site else "")


def previous_month(now: datetime, hour: int = 0) -> str:
    """The last month whose report is due at `now`: the month before, from `hour` (UTC) of the first."""
    day = now - timedelta(hours=hour)
    year, month = (day.year - 1, 12) if day.month == 1 else (day.year, day.month - 1)
    return f"{year:04d}-{month:02d}"


class ReportDelivery:
    def __init__(
        self,
        settings: ReportSettings,
        maintenance: Maintenance,
        *,
        data_dir: Path,
        predictions: Callable[..., Mapping[str, Any]] | None = None,
    ) -> None:
        self.settings = settings
        self.maintenance = maintenance
        self.dir = data_dir / "reports"
        self.predictions = predictions
        self.mailer = EmailNotifier("reports", settings.email) if settings.email is not None else None

    def paths(self, month: str, site: str | None = None) -> tuple[Path, Path]:
        """Where a month's report is archived (HTML, PDF). InvalidInput for a bad month or site name."""
        report.month_bounds(month)
        if site is not None and not _SITE.fullmatch(site):
            raise InvalidInput(f"site {site[:40]!r} is not a site name (letters, digits, _ . -)")
        stem = month if site is None else f"{month}-{site}"
        return self.dir / f"{stem}.html", self.dir / f"{stem}.pdf"

    def deliver(self, month: str, *, site: str | None = None, send: bool, actor: str) -> Delivered:
        """Make the report, archive it (replacing an earlier run's files) and, with `send`, e-mail the PDF.
        A failure is returned and logged, not raised: the caller decides whether it is an error."""
        html_path, pdf_path = self.paths(month, site)
        if send and self.mailer is None:
            raise ConfigError("no [reports.email] is configured: set its host, sender and to, or leave out --send")
        recipients = tuple(self.mailer.cfg.to) if send and self.mailer is not None else ()
        title = f"Maintenance report {month}" + (f", site {site}" if site else "")
        intent = _MAILING + ", ".join(recipients) if recipients else "archive"
        files = (html_path, pdf_path)
        try:
            page = report.monthly(self.maintenance, month=month, site=site, predictions=self.predictions)
            document = report.pdf(page)
            report.replace(html_path, page.encode("utf-8"))
            report.replace(pdf_path, document)
        except Exception as exc:  # whatever stops the report is recorded, and the job tries again
            detail = f"{type(exc).__name__}: {exc}"[:2000]
            summary = f"{title}: not made ({detail})"
            return self._record(
                month, site, FAILED, summary, files, actor=actor, actions=intent, issues=detail, archived=False
            )
        if not recipients:
            done = f"archived as {html_path.name} and {pdf_path.name}"
            return self._record(month, site, ARCHIVED, f"{title} archived", files, actor=actor, actions=done)
        assert self.mailer is not None
        sent = self.mailer.deliver(self._message(title, month, site, document, pdf_path))
        if not sent.ok:
            detail = sent.error or "the SMTP server did not take the message"
            summary = f"{title} archived, not e-mailed ({detail})"
            return self._record(
                month, site, FAILED, summary, files, actor=actor, actions=intent, issues=detail, recipients=recipients
            )
        summary = f"{title} archived and e-mailed to {len(recipients)} recipient(s)"
        mailed = "e-mailed to " + ", ".join(recipients)
        return self._record(month, site, SENT, summary, files, actor=actor, actions=mailed, recipients=recipients)

    def _message(self, title: str, month: str, site: str | None, document: bytes, pdf_path: Path) -> EmailMessage:
        assert self.mailer is not None
        since, until = report.month_bounds(month)
        figures = report.key_figures(self.maintenance, month=month, site=site)
        msg = EmailMessage()
        msg["From"] = self.mailer.cfg.sender
        msg["To"] = ", ".join(self.mailer.cfg.to)
        msg["Subject"] = title
        lines = [f"{title}, {since.date()} to {until.date()} (UTC), is attached as a PDF.", ""]
        lines += [f"- {f.text()}" for f in figures]
        lines += ["", f"Archived as {pdf_path} (and .html beside it).", "", "-- pitstop"]
        msg.set_content("\n".join(lines) + "\n")
        msg.add_attachment(document, maintype="application", subtype="pdf", filename=f"maintenance-{pdf_path.name}")
        return msg

    def _record(
        self,
        month: str,
        site: str | None,
        result: str,
        summary: str,
        files: tuple[Path, Path],
        *,
        actor: str,
        actions: str,
        issues: str = "",
        recipients: tuple[str, ...] = (),
        archived: bool = True,
    ) -> Delivered:
        entry = self.maintenance.log.append(
            "report",
            summary[:500],
            actor=actor,
            issues=issues,
            actions=actions[:20000],
            result=result,
            evidence=[str(p) for p in files] if archived else [],  # a report not made has none
            ref=ref(month, site),
        )
        return Delivered(month, site, result, files[0], files[1], recipients, issues, entry)

    # -- the scheduled job ----------------------------------------------------------------------

    def due(self, now: datetime) -> list[tuple[str, str | None, bool]]:
        """(month, site, send) of each report the job should make now: the previous month's from
        `hour` on the first (sent when [reports.email] is set), and every report whose last attempt
        failed at least `retry_minutes` ago, sent again if that attempt was to send."""
        attempts: dict[str, list[LogEntry]] = {}
        for e in self.maintenance.log.entries(kind="report", since=now - LOOKBACK, limit=10_000):
            attempts.setdefault(e.ref, []).append(e)
        wanted: dict[tuple[str, str | None], bool] = {}
        latest = previous_month(now, self.settings.hour)
        if (int(latest[:4]), int(latest[5:])) >= report.FIRST_MONTH:
            wanted[(latest, None)] = self.mailer is not None
        for key, tries in attempts.items():
            last = tries[-1]
            month, site = _parse(key)
            if last.result == FAILED and month is not None:
                wanted[(month, site)] = last.actions.startswith(_MAILING) and self.mailer is not None
        retry = timedelta(minutes=self.settings.retry_minutes)
        due = []
        for (month, site), send in sorted(wanted.items(), key=lambda item: (item[0][0], item[0][1] or "")):
            tries = attempts.get(ref(month, site), [])
            if any(t.result == SENT or (t.result == ARCHIVED and not send) for t in tries):
                continue
            if tries and tries[-1].result == FAILED and now - tries[-1].at < retry:
                continue
            due.append((month, site, send))
        return due

    def scheduled(self, now: datetime) -> None:
        """The job: every due report made, archived and sent; raises (after recording each) if one failed."""
        failed = [
            f"{d.month}{' ' + d.site if d.site else ''}: {d.detail}"
            for month, site, send in self.due(now)
            if (d := self.deliver(month, site=site, send=send, actor="scheduler")).result == FAILED
        ]
        if failed:
            raise ReportNotDelivered(f"monthly report not delivered (tried again later): {'; '.join(failed)}"[:2000])


def _parse(key: str) -> tuple[str | None, str | None]:
    """'report:2026-01[:site]' -> ('2026-01', site); (None, None) for a ref this module did not write."""
    parts = key.split(":", 2)
    if len(parts) < 2 or parts[0] != "report" or not re.fullmatch(r"[0-9]{4}-[0-9]{2}", parts[1]):
        return None, None
    site = parts[2] if len(parts) == 3 else None
    if site is not None and not _SITE.fullmatch(site):
        return None, None
    try:
        report.month_bounds(parts[1])
    except InvalidInput:
        return None, None
    return parts[1], site
