"""The monthly maintenance report: compliance, KPIs, backlog and the month's log, as one HTML page and its PDF.

Plain string templates with every value escaped: the page has no scripts and no external assets,
so it can be mailed or archived as it is. A figure a month has no data for says so in words ("no
corrective work orders were closed this month, so there is no MTTR"), never "n/a". The PDF is
WeasyPrint's rendering of the same page, which may load nothing from outside it (`pdf`).
"""

from __future__ import annotations

import html
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from string import Template
from typing import Any, NamedTuple

from pitstop.errors import InvalidInput, PitstopError
from pitstop.maintenance.service import Maintenance

PAGE = Template("""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>$title</title>
<style>
@page{size:A4;margin:15mm}
body{font-family:system-ui,sans-serif;margin:2em;color:#222}
table{border-collapse:collapse;margin:1em 0}
td,th{border:1px solid #ccc;padding:.3em .6em;text-align:left}
th{background:#f3f3f3}
.kpi{display:inline-block;vertical-align:top;max-width:14em;margin:0 2em 1em 0}
.kpi b{display:block;font-size:1.6em}
.kpi span{display:block;color:#555}
@media print{body{margin:0;font-size:10pt}}
</style></head><body>
<h1>$title</h1>
<p>Period $since to $until (UTC). Generated $generated.</p>
<h2>Key figures</h2>
$kpis
<h2>Planned-maintenance compliance</h2>
$compliance
<h2>Work order backlog</h2>
$backlog
<h2>Failure predictions and how they turned out</h2>
$predictions
<h2>Maintenance log</h2>
$log
</body></html>
""")


# Months a report can cover: none before the Unix epoch, and the month after the last must still be a
# date (the period's end; year 10000 is not one).
FIRST_MONTH, LAST_MONTH = (1970, 1), (9998, 12)
_MONTH = re.compile(r"([0-9]{4})-([0-9]{2})")


def month_bounds(month: str) -> tuple[datetime, datetime]:
    """'2026-03' -> [2026-03-01, 2026-04-01) in UTC. The one check of a report's month (API and CLI):
    InvalidInput unless it is YYYY-MM from 1970-01 to 9998-12."""
    match = _MONTH.fullmatch(month)
    year, number = (int(match[1]), int(match[2])) if match else (0, 0)
    if not (1 <= number <= 12 and FIRST_MONTH <= (year, number) <= LAST_MONTH):
        first, last = (f"{y:04d}-{m:02d}" for y, m in (FIRST_MONTH, LAST_MONTH))
        raise InvalidInput(f"month {month[:20]!r} is not YYYY-MM from {first} to {last}")
    nxt = (year + 1, 1) if number == 12 else (year, number + 1)
    return datetime(year, number, 1, tzinfo=UTC), datetime(*nxt, 1, tzinfo=UTC)


class Figure(NamedTuple):
    """One key figure: its value ("93.3 %"), or None and a sentence saying why the month has none."""

    name: str
    value: str | None
    note: str = ""

    def text(self) -> str:
        return f"{self.name}: {self.value if self.value is not None else self.note}"


def key_figures(maintenance: Maintenance, *, month: str, site: str | None = None) -> list[Figure]:
    """The report's key figures (the page's boxes and the e-mail's lines)."""
    since, until = month_bounds(month)
    total = maintenance.compliance(since=since, until=until, site=site)["total"]
    k = maintenance.kpis(since=since, until=until, site=site)
    backlog = k["backlog"]
    return [
        _compliance(total),
        _mttr(k),
        _mtbf(k),
        Figure("Open work orders", str(backlog["orders"])),
        Figure("Overdue", str(backlog["overdue"])),
        _self_healing(k["self_healing"]),
    ]


def _compliance(total: Mapping[str, Any]) -> Figure:
    if total["compliance_pct"] is not None:
        return Figure("Compliance", f"{total['compliance_pct']:g} %")
    if total["open"]:
        note = f"None of the {total['open']} planned job(s) due this month is done or missed yet."
        return Figure("Compliance", None, note)
    return Figure("Compliance", None, "No planned maintenance was due this month.")


def _mttr(k: Mapping[str, Any]) -> Figure:
    if k["mttr_h"] is not None:
        return Figure("MTTR", f"{k['mttr_h']:g} h")
    return Figure("MTTR", None, "No incidents or other corrective work orders were closed this month, so no MTTR.")


def _mtbf(k: Mapping[str, Any]) -> Figure:
    if k["mtbf_h"] is not None:
        return Figure("MTBF", f"{k['mtbf_h']:g} h")
    return Figure("MTBF", None, "No failures (corrective work orders) were opened this month, so no MTBF.")


def _self_healing(heal: Mapping[str, Any] | str) -> Figure:
    if isinstance(heal, str):
        return Figure("Self-healing success", None, "The self-healing record could not be read, so no success rate.")
    if heal["success_pct"] is None:
        return Figure("Self-healing success", None, "No self-healing attempts finished this month.")
    return Figure("Self-healing success", f"{heal['success_pct']:g} %")


def _table(headers: list[str], rows: list[list[Any]], *, empty: str) -> str:
    if not rows:
        return f"<p>{html.escape(empty)}</p>"
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(_fmt(c))}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _fmt(value: Any, none: str = "none") -> str:
    """A cell: a missing value is a word that says so, chosen by the caller where "none" would mislead."""
    if value is None:
        return none
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, list | tuple):
        return ", ".join(_fmt(v) for v in value)
    return str(value)


def monthly(
    maintenance: Maintenance,
    *,
    month: str,
    site: str | None = None,
    predictions: Callable[..., Mapping[str, Any]] | None = None,
) -> str:
    """The month's page. ``predictions(since=, until=, assets=)`` gives the calibration record of the
    failure predictions closed out in the month (prognostics' `calibration`), when there is one."""
    since, until = month_bounds(month)
    comp = maintenance.compliance(since=since, until=until, site=site)
    kpis_html = "".join(
        f'<div class="kpi">{html.escape(f.name)}<b>{html.escape(f.value)}</b></div>'
        if f.value is not None
        else f'<div class="kpi">{html.escape(f.name)}<span>{html.escape(f.note)}</span></div>'
        for f in key_figures(maintenance, month=month, site=site)
    )
    compliance_html = _table(
        ["schedule", "procedure", "site", "on time", "late", "missed", "open", "compliance %"],
        [
            [
                c["schedule"],
                c["procedure"],
                c["site"],
                c["on_time"],
                c["late"],
                c["missed"],
                c["open"],
                _fmt(c["compliance_pct"], "none decided yet"),
            ]
            for c in comp["schedules"]
        ],
        empty="No planned maintenance was due this month.",
    )
    assets = {a.name for a in maintenance.assets.list_assets(site)} if site else None
    orders = [o for o in maintenance.orders.list(active=True, limit=500) if assets is None or o.asset in assets]
    backlog_html = _table(
        ["id", "asset", "title", "state", "priority", "due", "est. h"],
        [
            [
                o.id,
                o.asset or "system",
                o.title,
                o.state.value,
                o.priority,
                o.due_at.isoformat() if o.due_at else "no due date",
                _fmt(o.estimated_h, "not estimated"),
            ]
            for o in orders
        ],
        empty="No work orders are open.",
    )
    entries = maintenance.log.entries(since=since, until=until, site=site, limit=2000)
    log_html = _table(
        ["time", "kind", "asset", "by", "summary", "result"],
        [[e.at.strftime("%Y-%m-%d %H:%M"), e.kind, e.asset or "system", e.actor, e.summary, e.result] for e in entries],
        empty="Nothing was recorded in the maintenance log this month.",
    )
    title = f"Maintenance report {month}" + (f", site {site}" if site else "")
    calibration = predictions(since=since, until=until, assets=assets) if predictions is not None else None
    return PAGE.substitute(
        title=html.escape(title),
        since=since.date().isoformat(),
        until=until.date().isoformat(),
        generated=html.escape(maintenance.clock.now().strftime("%Y-%m-%d %H:%M UTC")),
        kpis=kpis_html,
        compliance=compliance_html,
        backlog=backlog_html,
        predictions=_predictions(calibration),
        log=log_html,
    )


def _predictions(p: Mapping[str, Any] | None) -> str:
    if not p or not p.get("outcomes"):
        return "<p>No failure predictions were closed out this month.</p>"
    if p["failures"]:
        checked = (
            f"interval coverage {_fmt(p['interval_coverage'])} over {p['failures']} failure(s) (nominal "
            f"{_fmt(p['nominal_coverage'])}); failures: {p['late']} late, {p['early']} early"
            + (f", mean error {_fmt(p['mean_error_h'])} h" if p["mean_error_h"] is not None else "")
        )
    else:
        checked = "no asset failed, so there is no interval coverage to check yet"
    summary = "<p>" + html.escape(f"{p['outcomes']} prediction(s) closed out; {checked}.") + "</p>"
    return summary + _table(
        ["asset", "predicted at", "lower h", "median h", "upper h", "finding", "observed h", "covered"],
        [
            [
                o["asset"],
                o["estimated_at"][:16],
                round(o["lower_h"]),
                round(o["median_h"]),
                round(o["upper_h"]),
                o["finding"],
                "not observed" if o["observed_h"] is None else round(o["observed_h"]),
                _fmt(o["covered"], "unknown"),
            ]
            for o in p["recent"]
        ],
        empty="No predictions.",
    )


class RenderError(PitstopError):
    """The PDF could not be made (WeasyPrint or the system libraries it needs are missing or failed)."""

    code = "report.render"


# WeasyPrint runs in a child process: a server that makes one report a month does not keep its 50 MB
# (and Pango's font caches) afterwards, and a renderer that hangs or crashes cannot take the server
# along. Only `data:` URLs may be loaded.
_RENDER = """
import sys
from weasyprint import HTML
from weasyprint.urls import URLFetcher
page = sys.stdin.buffer.read().decode("utf-8")
fetcher = URLFetcher(allowed_protocols=("data",), timeout=1)
sys.stdout.buffer.write(HTML(string=page, url_fetcher=fetcher).write_pdf())
"""
RENDER_TIMEOUT_S = 300.0


def pdf(page: str) -> bytes:
    """The page as PDF (WeasyPrint). A stylesheet, font or picture the page links to elsewhere, on the
    network or on this machine, is left out of the PDF, never fetched."""
    try:
        done = subprocess.run(
            [sys.executable, "-I", "-c", _RENDER],
            input=page.encode("utf-8"),
            capture_output=True,
            timeout=RENDER_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise RenderError(f"WeasyPrint did not finish the PDF in {RENDER_TIMEOUT_S:g} s") from None
    if done.returncode != 0 or not done.stdout.startswith(b"%PDF-"):
        lines = done.stderr.decode("utf-8", "replace").strip().splitlines() or [f"exit code {done.returncode}"]
        hint = " (WeasyPrint needs Pango: apt-get install libpangoft2-1.0-0)" if "pango" in lines[-1].lower() else ""
        raise RenderError(f"the PDF report could not be made: {lines[-1][:300]}{hint}")
    return done.stdout


def replace(path: Path, data: bytes) -> Path:
    """Write `path` as a whole or not at all: a temporary file beside it, then renamed over it, so a
    reader (or a mail attachment) never sees half a report and a re-run replaces the old one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        Path(tmp).replace(path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write(page: str, path: Path) -> Path:
    """Write HTML, or PDF when `path` ends in .pdf."""
    data = pdf(page) if path.suffix.lower() == ".pdf" else page.encode("utf-8")
    return replace(path, data)
