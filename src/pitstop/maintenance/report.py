"""The monthly maintenance report: compliance, KPIs, backlog and the month's log, as one HTML page.

Plain string templates with every value escaped: the page has no scripts and no external assets,
so it can be mailed or archived as it is. PDF needs the optional `weasyprint` package.
"""

from __future__ import annotations

import html
import importlib
import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from string import Template
from typing import Any

from pitstop.errors import InvalidInput
from pitstop.maintenance.service import Maintenance

PAGE = Template("""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>$title</title>
<style>
body{font-family:system-ui,sans-serif;margin:2em;color:#222}
table{border-collapse:collapse;margin:1em 0}
td,th{border:1px solid #ccc;padding:.3em .6em;text-align:left}
th{background:#f3f3f3}
.kpi{display:inline-block;margin:0 2em 1em 0}
.kpi b{display:block;font-size:1.6em}
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


def _table(headers: list[str], rows: list[list[Any]]) -> str:
    if not rows:
        return "<p>None.</p>"
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(_fmt(c))}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _fmt(value: Any) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:g}"
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
    k = maintenance.kpis(since=since, until=until, site=site)
    heal = k["self_healing"]
    heal_text = "n/a" if isinstance(heal, str) else _fmt(heal["success_pct"]) + " %"
    figures = [
        ("Compliance", _fmt(comp["total"]["compliance_pct"]) + " %"),
        ("MTTR", _fmt(k["mttr_h"]) + " h"),
        ("MTBF", _fmt(k["mtbf_h"]) + " h"),
        ("Open work orders", _fmt(k["backlog"]["orders"])),
        ("Overdue", _fmt(k["backlog"]["overdue"])),
        ("Self-healing success", heal_text),
    ]
    kpis_html = "".join(f'<div class="kpi">{html.escape(n)}<b>{html.escape(v)}</b></div>' for n, v in figures)
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
                c["compliance_pct"],
            ]
            for c in comp["schedules"]
        ],
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
                o.due_at.isoformat() if o.due_at else None,
                o.estimated_h,
            ]
            for o in orders
        ],
    )
    entries = maintenance.log.entries(since=since, until=until, site=site, limit=2000)
    log_html = _table(
        ["time", "kind", "asset", "by", "summary", "result"],
        [[e.at.strftime("%Y-%m-%d %H:%M"), e.kind, e.asset or "system", e.actor, e.summary, e.result] for e in entries],
    )
    title = f"Maintenance report {month}" + (f", site {site}" if site else "")
    predictions_html = "<p>No failure predictions were closed out in this period.</p>"
    calibration = predictions(since=since, until=until, assets=assets) if predictions is not None else None
    if calibration and calibration.get("outcomes"):
        p = calibration
        predictions_html = (
            f"<p>{html.escape(_fmt(p['outcomes']))} prediction(s) closed out; interval coverage "
            f"{html.escape(_fmt(p['interval_coverage']))} over {html.escape(_fmt(p['failures']))} failure(s) "
            f"(nominal {html.escape(_fmt(p['nominal_coverage']))}); failures: {html.escape(_fmt(p['late']))} late, "
            f"{html.escape(_fmt(p['early']))} early, mean error {html.escape(_fmt(p['mean_error_h']))} h.</p>"
        ) + _table(
            ["asset", "predicted at", "lower h", "median h", "upper h", "finding", "observed h", "covered"],
            [
                [
                    o["asset"],
                    o["estimated_at"][:16],
                    round(o["lower_h"]),
                    round(o["median_h"]),
                    round(o["upper_h"]),
                    o["finding"],
                    None if o["observed_h"] is None else round(o["observed_h"]),
                    o["covered"],
                ]
                for o in p["recent"]
            ],
        )
    return PAGE.substitute(
        title=html.escape(title),
        since=since.date().isoformat(),
        until=until.date().isoformat(),
        generated=html.escape(maintenance.clock.now().strftime("%Y-%m-%d %H:%M UTC")),
        kpis=kpis_html,
        compliance=compliance_html,
        backlog=backlog_html,
        predictions=predictions_html,
        log=log_html,
    )


def write(page: str, path: Path) -> Path:
    """Write HTML, or PDF when `path` ends in .pdf and the optional weasyprint package is installed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix.lower() == ".pdf":
        try:
            weasyprint = importlib.import_module("weasyprint")
        except ImportError:
            raise InvalidInput("PDF output needs the optional `weasyprint` package; write .html instead") from None
        weasyprint.HTML(string=page).write_pdf(str(path))
        return path
    path.write_text(page, encoding="utf-8")
    return path
