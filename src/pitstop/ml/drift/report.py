"""A drift report as JSON and as one self-contained HTML page (inline SVG bars, no scripts)."""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

from pitstop.ml.drift.psi import MIN_CURRENT_ROWS, DriftReport, FeatureDrift

COLOURS = {
    "insufficient": "#757575",
    "stable": "#2e7d32",
    "monitor": "#f9a825",
    "warn": "#ef6c00",
    "critical": "#c62828",
}


def bars(reference: list[float], current: list[float], width: int = 360, height: int = 90) -> str:
    """Reference (grey) and current (blue) bin shares side by side, one pair per bin."""
    n = max(len(reference), 1)
    top = max([*reference, *current, 1e-9])
    slot = width / n
    parts = [f'<svg width="{width}" height="{height}" role="img" aria-label="bin shares">']
    for i, (r, c) in enumerate(zip(reference, current, strict=True)):
        for j, (share, fill) in enumerate(((r, "#9e9e9e"), (c, "#1565c0"))):
            h = share / top * (height - 4)
            x = i * slot + j * slot / 2 + 1
            parts.append(
                f'<rect x="{x:.1f}" y="{height - h:.1f}" width="{slot / 2 - 2:.1f}" height="{h:.1f}" fill="{fill}">'
                f"<title>bin {i + 1}: {'reference' if j == 0 else 'current'} {share:.1%}</title></rect>"
            )
    parts.append("</svg>")
    return "".join(parts)


HEADER = "<tr><th>{}</th><th>PSI</th><th>noise</th><th>band</th><th>KS</th><th>bins</th></tr>"


def _rows(features: list[FeatureDrift], excluded: frozenset[str] = frozenset()) -> str:
    rows = []
    for f in features:
        mark = " <small>(excluded from the verdict)</small>" if f.feature in excluded else ""
        rows.append(
            f"<tr><td>{html.escape(f.feature)}{mark}</td><td>{f.psi:.4f}</td><td>{f.noise:.4f}</td>"
            f'<td style="color:{COLOURS[f.band]};font-weight:bold">{f.band}</td>'
            f"<td>{f.ks_statistic:.4f}{' (drifted)' if f.ks_drifted else ''}</td>"
            f"<td>{bars(f.reference_share, f.current_share)}</td></tr>"
        )
    return "".join(rows)


def render_html(name: str, version: int, report: DriftReport) -> str:
    if report.residuals:
        residuals = (
            f"<h2>Residual drift</h2><p>Measured minus predicted per output on {report.residual_rows} current rows "
            "after the training window, against the hold-out residuals: a changed relation between inputs and "
            f"outputs shows here even when the inputs do not move. Max PSI {report.residual_max_psi:.4f}.</p>"
            f"<table>{HEADER.format('output')}{_rows(report.residuals)}</table>"
        )
    else:
        residuals = "<h2>Residual drift</h2><p>" + html.escape("; ".join(report.notes) or "not computed") + "</p>"
    title = html.escape(f"Drift report: {name} v{version}")
    return (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{title}</title>'
        "<style>body{font-family:sans-serif;margin:2em}td,th{padding:4px 10px;text-align:left;"
        "border-bottom:1px solid #ddd}</style></head><body>"
        f"<h1>{title}</h1>"
        f'<p>Overall: <b style="color:{COLOURS[report.band]}">{report.band}</b>, max input PSI '
        f"{report.max_psi:.4f}, {report.drifted_share:.0%} of inputs drifted (PSI past the noise &ge; 0.2), "
        f"{report.current_rows} current rows. "
        "Bands on PSI past the noise (the PSI that sampling alone gives for the windows' effective sizes): "
        "&lt;0.1 stable, 0.1&ndash;0.2 monitor, 0.2&ndash;0.5 warn, &ge;0.5 critical; fewer than "
        f"{MIN_CURRENT_ROWS} current rows: insufficient (not enough data). "
        "Bars: reference (grey) and current (blue) share per reference quantile bin.</p>"
        f"<h2>Input drift</h2><table>{HEADER.format('feature')}{_rows(report.features, report.excluded)}</table>"
        + residuals
        + "</body></html>"
    )


def write(directory: Path, name: str, version: int, report: DriftReport, extra: dict[str, Any]) -> tuple[Path, Path]:
    directory.mkdir(parents=True, exist_ok=True)
    stem = directory / f"drift-{name}-v{version}"
    json_path, html_path = stem.with_suffix(".json"), stem.with_suffix(".html")
    json_path.write_text(json.dumps({"model": name, "version": version, **extra, **report.as_dict()}, indent=2))
    html_path.write_text(render_html(name, version, report))
    return json_path, html_path
