"""Plots. Small ones (the health page's sparklines, the remaining-life band) are inline SVG drawn on the
server, decimated to min/max per pixel column; the asset page's sensor charts are plotly.js figures
built here as JSON and drawn in the browser (static/charts.js)."""

from __future__ import annotations

import functools
import gzip
import importlib.util
import math
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from markupsafe import Markup


def decimate(points: Sequence[tuple[float, float]], buckets: int) -> list[tuple[float, float]]:
    """At most 2 points per bucket of the x range (its min and max, in time order): spikes survive."""
    pts = [(x, y) for x, y in points if math.isfinite(x) and math.isfinite(y)]
    if len(pts) <= 2 * buckets or buckets < 1:
        return pts
    x0, x1 = pts[0][0], pts[-1][0]
    width = (x1 - x0) / buckets or 1.0
    out: list[tuple[float, float]] = []
    group: list[tuple[float, float]] = []
    current = 0
    for p in pts:
        b = min(int((p[0] - x0) / width), buckets - 1)
        if b != current and group:
            out.extend(_extremes(group))
            group = []
        current = b
        group.append(p)
    if group:
        out.extend(_extremes(group))
    return out


def _extremes(group: list[tuple[float, float]]) -> list[tuple[float, float]]:
    lo = min(group, key=lambda p: p[1])
    hi = max(group, key=lambda p: p[1])
    return [lo] if lo is hi else sorted([lo, hi])


def _scaler(lo: float, hi: float, start: float, end: float) -> Callable[[float], float]:
    """Map lo..hi onto start..end (halved to stay finite near the float limits; the middle if flat)."""

    def scale(v: float) -> float:
        span = hi / 2 - lo / 2
        share = (v / 2 - lo / 2) / span if span != 0 else 0.5
        return start + share * (end - start)

    return scale


def _empty(width: int, height: int) -> Markup:
    return Markup(
        f'<svg class="plot empty" viewBox="0 0 {width} {height}" role="img" aria-label="no data">'
        f'<text x="{width // 2}" y="{height // 2}" text-anchor="middle">no data</text></svg>'
    )


def line(
    points: Sequence[tuple[float, float]],
    *,
    width: int = 600,
    height: int = 160,
    thresholds: Sequence[float] = (),
    label: str = "",
) -> Markup:
    """A line chart (or a sparkline when small) as an SVG element; an empty frame when there is no data."""
    pts = decimate(sorted(points), max(1, width // 2))
    pad = 2 if height < 60 else 18
    thresholds = [t for t in thresholds if math.isfinite(t)]
    ys = [p[1] for p in pts] + thresholds
    if not pts:
        return _empty(width, height)
    x0, x1 = pts[0][0], pts[-1][0]
    y0, y1 = min(ys), max(ys)
    sx, sy = _scaler(x0, x1, pad, width - pad), _scaler(y1, y0, pad, height - pad)
    path = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in pts)
    parts = [f'<svg class="plot" viewBox="0 0 {width} {height}" role="img" aria-label="{Markup.escape(label)}">']
    for t in thresholds:
        parts.append(f'<line class="threshold" x1="{pad}" x2="{width - pad}" y1="{sy(t):.1f}" y2="{sy(t):.1f}"/>')
    parts.append(f'<polyline class="series" points="{path}"/>')
    if height >= 60:
        parts.append(f'<text class="axis" x="{pad}" y="12">{y1:.4g}</text>')
        parts.append(f'<text class="axis" x="{pad}" y="{height - 4}">{y0:.4g}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


def band(
    points: Sequence[tuple[float, float, float, float]],
    *,
    width: int = 600,
    height: int = 160,
    thresholds: Sequence[float] = (),
    label: str = "",
) -> Markup:
    """A median line inside its shaded interval: points are (x, lower, median, upper), in x order."""
    pts = sorted(p for p in points if all(math.isfinite(v) for v in p))
    if not pts:
        return _empty(width, height)
    pad = 18
    ys = [v for p in pts for v in p[1:]] + [t for t in thresholds if math.isfinite(t)]
    y0, y1 = min(0.0, *ys), max(ys)
    sx, sy = _scaler(pts[0][0], pts[-1][0], pad, width - pad), _scaler(y1, y0, pad, height - pad)
    upper = " ".join(f"{sx(x):.1f},{sy(hi):.1f}" for x, _, _, hi in pts)
    lower = " ".join(f"{sx(x):.1f},{sy(lo):.1f}" for x, lo, _, _ in reversed(pts))
    median = " ".join(f"{sx(x):.1f},{sy(mid):.1f}" for x, _, mid, _ in pts)
    parts = [f'<svg class="plot" viewBox="0 0 {width} {height}" role="img" aria-label="{Markup.escape(label)}">']
    parts.append(f'<polygon class="interval" points="{upper} {lower}"/>')
    if len(pts) == 1:  # one estimate: its interval as a bar, its median as a dot
        x, lo, mid, hi = (f"{v:.1f}" for v in (sx(pts[0][0]), sy(pts[0][1]), sy(pts[0][2]), sy(pts[0][3])))
        parts.append(f'<line class="interval-bar" x1="{x}" x2="{x}" y1="{lo}" y2="{hi}"/>')
        parts.append(f'<circle class="median" cx="{x}" cy="{mid}" r="3"/>')
    for t in thresholds:
        parts.append(f'<line class="threshold" x1="{pad}" x2="{width - pad}" y1="{sy(t):.1f}" y2="{sy(t):.1f}"/>')
    parts.append(f'<polyline class="series" points="{median}"/>')
    parts.append(f'<text class="axis" x="{pad}" y="12">{y1:.4g}</text>')
    parts.append(f'<text class="axis" x="{pad}" y="{height - 4}">{y0:.4g}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


# -- interactive charts (plotly.js) -------------------------------------------------------------
#
# The asset page's sensor charts are drawn in the browser by plotly.js, the bundle that the plotly
# Python package ships (served from /ui/vendor, never from a CDN). These functions build each chart's
# figure as JSON: the traces, the axes and what is marked on the time line. Text that reaches plotly
# is plain (its pseudo-HTML such as <b> becomes style attributes, which the dashboard's CSP refuses):
# `_text` turns < > & into entities, which plotly shows as the characters.

US = 1_000_000
GAP_PERIODS = 3  # no readings for longer than this many sampling periods: the line breaks
NEAR_SHARE = 0.5  # a limit within half the data's span of it is in the y-range; further off, it is named
BAND_SHARE = 1.0  # the expected band is in the y-range up to one data span beyond the data; further, clipped
Y_MARGIN = 0.08  # of the data's span, above and below
COLORS = {"series": "#1f6feb", "expected": "#1a7f37", "warning": "#b7791f", "critical": "#c62828", "muted": "#6b7380"}
MARK_COLORS = {"incident": "#c62828", "finding": "#b7791f", "order": "#1f6feb"}
UNITS = {"degC": "°C", "degF": "°F", "m3/h": "m³/h", "m3": "m³", "m2": "m²", "um": "µm", "us": "µs"}
ZOOMS = (("1h", 3600, "hour", 1), ("6h", 6 * 3600, "hour", 6), ("1d", 86400, "day", 1), ("7d", 7 * 86400, "day", 7))


@dataclass(frozen=True, slots=True)
class Mark:
    """Something on the asset's time line: an incident (opened to resolved, or still open), a finding's
    evidence window, a work order (opened to closed). `sensor`: only that sensor's chart (None: all)."""

    kind: str  # "incident", "finding" or "order"
    start: datetime
    end: datetime | None  # None: still open
    text: str  # what hovering its marker says
    sensor: str | None = None


def installation_zone() -> tuple[tzinfo, str]:
    """The time zone the charts show: the server's (TZ, else /etc/localtime), else UTC. The inventory's
    sites carry no time zone, so the installation's stands for the plant's."""
    name = os.environ.get("TZ", "").removeprefix(":")
    candidates = [name] if name else []
    try:
        target = str(Path("/etc/localtime").resolve())
        if "zoneinfo/" in target:
            candidates.append(target.split("zoneinfo/", 1)[1])
    except OSError:
        pass
    for candidate in candidates:
        try:
            return ZoneInfo(candidate), candidate
        except (ZoneInfoNotFoundError, ValueError):
            continue
    return UTC, "UTC"


def unit_label(unit: str) -> str:
    return UNITS.get(unit, unit)


def plain(value: float, digits: int = 5) -> str:
    """A number as a plant engineer writes it: 20,000 not 2e+04, 0.00012 not 1.2e-04, at most `digits`
    significant digits, no trailing zeros."""
    if not math.isfinite(value):
        return str(value)
    if value == 0:
        return "0"
    decimals = max(0, digits - 1 - math.floor(math.log10(abs(value))))
    text = f"{value:,.{decimals}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def local(t_us: int, zone: tzinfo) -> str:
    """A time as the wall clock of `zone` shows it, the form plotly's date axis reads."""
    return _wall_clock(t_us // US, zone)


@functools.lru_cache(maxsize=16_384)  # a chart's times come back in its band, its lines and on each refresh
def _wall_clock(t_s: int, zone: tzinfo) -> str:
    return datetime.fromtimestamp(t_s, tz=zone).strftime("%Y-%m-%d %H:%M:%S")


def from_local(text: str, zone: tzinfo) -> datetime:
    """The inverse of `local` for a time the browser sends back (plotly's axis range, maybe with a
    fraction of a second); ValueError when it is not one."""
    if len(text) > 40:
        raise ValueError("too long for a time")
    parsed = datetime.fromisoformat(text.strip().replace("T", " "))
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=zone)).astimezone(UTC)


def epoch_us(t: datetime) -> int:
    """Microseconds since the epoch; a naive time (as SQLite gives them back) is UTC."""
    return int((t if t.tzinfo else t.replace(tzinfo=UTC)).timestamp() * US)


def _text(value: str) -> str:
    return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _round(value: float) -> float:
    return float(f"{value:.7g}")


def limits(sensor: Any) -> list[tuple[str, float, str]]:
    """The sensor's lines: (what, level, color) for each alarm limit and each end of its physical range."""
    out: list[tuple[str, float, str]] = []
    alarm = getattr(sensor, "alarm", None)
    if alarm is not None:
        for attr, what, color in (
            ("critical_above", "critical above", "critical"),
            ("above", "alarm above", "warning"),
            ("below", "alarm below", "warning"),
            ("critical_below", "critical below", "critical"),
        ):
            level = getattr(alarm, attr)
            if level is not None and math.isfinite(level):
                out.append((what, float(level), COLORS[color]))
    for attr, what in (("max_value", "sensor max"), ("min_value", "sensor min")):
        level = getattr(sensor, attr, None)
        if level is not None and math.isfinite(level):
            out.append((what, float(level), COLORS["muted"]))
    return out


def y_range(values: Sequence[float], lines: Sequence[float], band: Sequence[float] = ()) -> tuple[float, float] | None:
    """The y-range of a chart: the data's, a margin around it, the expected band up to BAND_SHARE of the
    data's span beyond it (a twin far off is seen leaving the chart, without squashing the readings),
    and every line (alarm limit, sensor range) within NEAR_SHARE of that span; None without data."""
    data = [v for v in values if math.isfinite(v)]
    if not data:
        return None
    lo, hi = min(data), max(data)
    span = hi - lo if hi > lo else (abs(hi) * 0.05 or 1.0)
    expected = [v for v in band if math.isfinite(v)]
    if expected:
        lo, hi = max(min(lo, *expected), lo - BAND_SHARE * span), min(max(hi, *expected), hi + BAND_SHARE * span)
    near = [v for v in lines if math.isfinite(v) and lo - NEAR_SHARE * span <= v <= hi + NEAR_SHARE * span]
    lo, hi = min([lo, *near]), max([hi, *near])
    span = hi - lo if hi > lo else (abs(hi) * 0.05 or 1.0)
    below, above = lo - Y_MARGIN * span, hi + Y_MARGIN * span
    # Near the float limits the margin overflows: no margin there (JSON has no infinity).
    return _round(below if math.isfinite(below) else lo), _round(above if math.isfinite(above) else hi)


def series_traces(
    sensor: Any, data: Sequence[Any], zone: tzinfo, expected: Any = None
) -> tuple[list[dict[str, Any]], tuple[float, float] | None]:
    """The traces of a sensor's readings and of what a twin expects, with the y-range they need. The
    readings are one line, or when buckets hold several readings their minimum and maximum lines with
    the band between shaded; a stretch without readings longer than GAP_PERIODS sampling periods breaks
    both. The expected band is shaded around its dotted middle, broken where the twin is not drawn."""
    unit = unit_label(getattr(sensor, "unit", ""))
    suffix = f" {_text(unit)}" if unit else ""
    gap_us = GAP_PERIODS * float(getattr(sensor, "period_s", 60.0)) * US
    runs = _runs([(b.start_us, b.end_us, b.middle_us, (b.low, b.high, b.n)) for b in data], gap_us)
    traces: list[dict[str, Any]] = []
    band: list[float] = []
    if expected is not None and expected.points:
        step = max(expected.step_us, 1)
        ex = _runs([(t - step // 2, t + step // 2, t, (lo, mid, hi)) for t, lo, mid, hi in expected.points], gap_us)
        band = [v for run in ex for _, (lo, _, hi) in run for v in (lo, hi)]
        traces.append(
            {
                **_polygon(ex, zone, 0, 2),
                "fillcolor": "rgba(26,127,55,0.14)",
                "name": f"expected ± {plain(expected.half_width, 2)}",
            }
        )
        x, (middle,) = _lines(ex, zone, 1)
        traces.append(
            {
                **_LINE,
                "x": x,
                "y": middle,
                "line": {"width": 1, "dash": "dot", "color": COLORS["expected"]},
                "name": "expected",
                "showlegend": False,
                "hovertemplate": f"expected %{{y:,.5~r}}{suffix} ({_text(expected.model)} v{expected.version})"
                "<extra></extra>",
            }
        )
    x, (lows, highs, counts) = _lines(runs, zone, 0, 1, 2)
    color = COLORS["series"]
    if any(lo != hi for run in runs for _, (lo, hi, _) in run):
        traces.append({**_polygon(runs, zone, 0, 1), "fillcolor": "rgba(31,111,235,0.22)", "name": "readings"})
        traces.append(
            {
                **_LINE,
                "x": x,
                "y": highs,
                "customdata": counts,
                "name": "max",
                "showlegend": False,
                "line": {"width": 1, "color": color},
                "hovertemplate": f"max %{{y:,.5~r}}{suffix} (%{{customdata:,}} readings)<extra></extra>",
            }
        )
        traces.append(
            {
                **_LINE,
                "x": x,
                "y": lows,
                "name": "min",
                "showlegend": False,
                "line": {"width": 1, "color": color},
                "hovertemplate": f"min %{{y:,.5~r}}{suffix}<extra></extra>",
            }
        )
    elif runs:
        traces.append(
            {
                **_LINE,
                "x": x,
                "y": highs,
                "name": "readings",
                "showlegend": False,
                "line": {"width": 1.5, "color": color},
                "hovertemplate": f"%{{y:,.5~r}}{suffix}<extra></extra>",
            }
        )
    values = [v for run in runs for _, (lo, hi, _) in run for v in (lo, hi)]
    return traces, y_range(values, [level for _, level, _ in limits(sensor)], band)


_LINE: dict[str, Any] = {"type": "scatter", "mode": "lines", "meta": "series", "connectgaps": False}
Run = list[tuple[int, tuple[float, ...]]]  # (time µs, values) without a gap


def _runs(items: Sequence[tuple[int, int, int, tuple[float, ...]]], gap_us: float) -> list[Run]:
    """(start, end, time, values) in time order, split where more than gap_us lies between one's end and
    the next one's start; values rounded to 7 significant digits, non-finite ones left out."""
    runs: list[Run] = []
    previous_end: int | None = None
    for start, end, t, values in items:
        if not all(math.isfinite(v) for v in values):
            continue
        if previous_end is None or start - previous_end > gap_us:
            runs.append([])
        runs[-1].append((t, tuple(_round(v) for v in values)))
        previous_end = end
    return runs


def _lines(runs: list[Run], zone: tzinfo, *columns: int) -> tuple[list[str | None], list[list[Any]]]:
    """x and one y list per column for line traces: the runs joined with a None between (a break)."""
    x: list[str | None] = []
    ys: list[list[Any]] = [[] for _ in columns]
    for i, run in enumerate(runs):
        if i:
            x.append(None)
            for y in ys:
                y.append(None)
        for t, values in run:
            x.append(local(t, zone))
            for y, c in zip(ys, columns, strict=True):
                y.append(values[c])
    return x, ys


def _polygon(runs: list[Run], zone: tzinfo, low: int, high: int) -> dict[str, Any]:
    """A shaded band between two columns: one closed polygon per run (a fill between two line traces
    would bridge the gaps)."""
    x: list[str | None] = []
    y: list[float | None] = []
    for run in runs:
        if x:
            x.append(None)
            y.append(None)
        times = [local(t, zone) for t, _ in run]
        x += times + times[::-1]
        y += [v[high] for _, v in run] + [v[low] for _, v in reversed(run)]
    return {
        "type": "scatter",
        "mode": "lines",
        "meta": "series",
        "x": x,
        "y": y,
        "fill": "toself",
        "line": {"width": 0},
        "hoverinfo": "skip",
    }


def figure(
    sensor: Any,
    data: Sequence[Any],
    *,
    zone: tzinfo,
    extent_us: tuple[int, int] | None,
    window_s: float,
    expected: Any = None,
    marks: Sequence[Mark] = (),
) -> dict[str, Any]:
    """A sensor's chart as plotly's figure JSON ({"data", "layout"}): its readings and the expected
    band on a date axis in `zone` over `extent_us` (the data's extent within the window), the y-range
    from the data with the alarm limits and sensor range drawn (and in range when near), the marks as
    shaded spans with a marker to hover at their start, hover values with unit and local time."""
    traces, yr = series_traces(sensor, data, zone, expected)
    unit = unit_label(getattr(sensor, "unit", ""))
    shapes: list[dict[str, Any]] = []
    off: list[str] = []
    for what, level, color in limits(sensor):
        label = f"{what} {plain(level)}{f' {unit}' if unit else ''}"
        if yr is not None and not yr[0] <= level <= yr[1]:
            if color != COLORS["muted"]:  # an alarm limit off the chart is named; the sensor's range is not
                off.append(("▲ " if level > yr[1] else "▼ ") + label)
            continue
        shapes.append(
            {
                "type": "line",
                "xref": "paper",
                "x0": 0,
                "x1": 1,
                "yref": "y",
                "y0": level,
                "y1": level,
                "line": {"color": color, "width": 1, "dash": "dash" if color != COLORS["muted"] else "dot"},
                "label": {
                    "text": _text(label),
                    "textposition": "end",
                    "yanchor": "bottom",
                    "font": {"size": 10, "color": color},
                },
            }
        )
    events = _marks(marks, getattr(sensor, "name", None), zone, extent_us, shapes)
    if events is not None:
        traces.append(events)
    xaxis: dict[str, Any] = {
        "type": "date",
        "hoverformat": "%Y-%m-%d %H:%M:%S",
        "showgrid": True,
        "gridcolor": "#eef1f4",
        "linecolor": "#dde1e6",
        "showline": True,
    }
    if extent_us is not None:
        xaxis["range"] = [local(extent_us[0], zone), local(extent_us[1], zone)]
        buttons = [
            {"label": label, "step": step, "count": count, "stepmode": "backward"}
            for label, seconds, step, count in ZOOMS
            if seconds < min(window_s, (extent_us[1] - extent_us[0]) / US)
        ]
        if buttons:
            xaxis["rangeselector"] = {
                "buttons": [*buttons, {"label": "all", "step": "all"}],
                "x": 0,
                "y": 1.02,
                "yanchor": "bottom",
                "font": {"size": 11},
                "bgcolor": "#eef1f4",
                "activecolor": "#cfd8e3",
            }
    yaxis: dict[str, Any] = {
        "exponentformat": "none",
        "separatethousands": True,
        "hoverformat": ",.5~r",
        "gridcolor": "#eef1f4",
        "zeroline": False,
        "title": {"text": _text(unit), "font": {"size": 11}} if unit else None,
    }
    if yr is not None:
        yaxis["range"] = list(yr)
    layout: dict[str, Any] = {
        "height": 260,
        "margin": {"l": 64, "r": 16, "t": 36, "b": 36},
        "hovermode": "x unified",
        "showlegend": any(t.get("fill") == "toself" and t["name"].startswith("expected") for t in traces),
        "legend": {
            "orientation": "h",
            "x": 1,
            "xanchor": "right",
            "y": 1.02,
            "yanchor": "bottom",
            "font": {"size": 10},
        },
        "xaxis": xaxis,
        "yaxis": yaxis,
        "yaxis2": {"overlaying": "y", "range": [0, 1], "visible": False, "fixedrange": True},
        "shapes": shapes,
        "annotations": [
            {
                "text": _text(" · ".join(off)),
                "xref": "paper",
                "yref": "paper",
                "x": 1,
                "y": 0,
                "xanchor": "right",
                "yanchor": "bottom",
                "showarrow": False,
                "font": {"size": 10, "color": COLORS["muted"]},
            }
        ]
        if off
        else [],
        "font": {"family": "system-ui, -apple-system, Segoe UI, Roboto, sans-serif", "size": 12, "color": "#1d2430"},
        "paper_bgcolor": "#fff",
        "plot_bgcolor": "#fff",
        "uirevision": f"sensor-{getattr(sensor, 'id', '')}",
    }
    return {"data": traces, "layout": layout}


def _marks(
    marks: Sequence[Mark],
    sensor: str | None,
    zone: tzinfo,
    extent_us: tuple[int, int] | None,
    shapes: list[dict[str, Any]],
) -> dict[str, Any] | None:
    """Shaded spans (into `shapes`) and the trace of markers at their starts, for the marks of this
    chart within the extent."""
    if extent_us is None:
        return None
    lo, hi = extent_us
    xs, texts, colors, symbols = [], [], [], []
    for m in marks:
        if m.sensor is not None and m.sensor != sensor:
            continue
        start_us = epoch_us(m.start)
        end_us = epoch_us(m.end) if m.end is not None else hi
        if end_us < lo or start_us > hi:
            continue
        color = MARK_COLORS.get(m.kind, COLORS["muted"])
        shapes.append(
            {
                "type": "rect",
                "xref": "x",
                "yref": "paper",
                "x0": local(max(start_us, lo), zone),
                "x1": local(min(max(end_us, start_us), hi), zone),
                "y0": 0,
                "y1": 1,
                "fillcolor": color,
                "opacity": 0.07 if m.kind != "finding" else 0.16,
                "line": {"width": 0},
                "layer": "below",
            }
        )
        if lo <= start_us <= hi:
            shapes.append(
                {
                    "type": "line",
                    "xref": "x",
                    "yref": "paper",
                    "x0": local(start_us, zone),
                    "x1": local(start_us, zone),
                    "y0": 0,
                    "y1": 1,
                    "line": {"color": color, "width": 1, "dash": "dot"},
                }
            )
            xs.append(local(start_us, zone))
            texts.append(_text(m.text))
            colors.append(color)
            symbols.append("triangle-down" if m.kind != "order" else "square")
    if not xs:
        return None
    return {
        "type": "scatter",
        "mode": "markers",
        "meta": "marks",
        "name": "marks",
        "showlegend": False,
        "x": xs,
        "y": [0.96] * len(xs),
        "yaxis": "y2",
        "text": texts,
        "marker": {"color": colors, "symbol": symbols, "size": 11, "line": {"width": 1, "color": "#fff"}},
        "hovertemplate": "%{text}<extra></extra>",
    }


# -- the bundled plotly.js ----------------------------------------------------------------------
#
# plotly.js adds its own CSS as <style> elements at run time, which a strict CSP (no 'unsafe-inline')
# refuses with a console error. It skips that when the page already has an element with the style's
# id: the page links the rules as a stylesheet under plotly's id (`plotly.js-style-global`, class
# `no-inline-styles`), read here once from the bundle itself so that they match its version, and
# carries an empty element for each other style the bundle would inject (the map CSS, unused here).

_STRING = r""""(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'"""
_RULE = re.compile(r"\s*(" + _STRING + r"|[A-Za-z_$][\w$]*)\s*:\s*(" + _STRING + r")\s*([,}])")
_PLACEHOLDER = re.compile(r'getElementById\("([0-9a-f]{64})"\)\)\{var (\w+)=document\.createElement\("style"\)')


@dataclass(frozen=True, slots=True)
class PlotlyBundle:
    """The plotly.js that the plotly package ships: its file, version, CSS rules and style ids."""

    path: Path
    version: str
    css: str
    placeholders: tuple[str, ...]

    @property
    def js_name(self) -> str:
        return f"plotly-{self.version}.min.js"

    @property
    def css_name(self) -> str:
        return f"plotly-{self.version}.css"


@functools.cache
def plotly_bundle() -> PlotlyBundle | None:
    """The bundle, read once; None when the plotly package is not installed (the page says so). The
    package is found, not imported: only its file is needed."""
    spec = importlib.util.find_spec("plotly")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "package_data" / "plotly.min.js"
    if not path.is_file():
        return None
    data = path.read_bytes()
    head = data[:400].decode("utf-8", "replace")
    found = re.search(r"plotly\.js v([0-9][0-9A-Za-z.\-]*)", head)
    text = data.decode("utf-8", "replace")
    return PlotlyBundle(
        path,
        found.group(1) if found else "0",
        plotly_css(text),
        tuple(m.group(1) for m in _PLACEHOLDER.finditer(text)),
    )


@functools.cache
def plotly_gzipped() -> bytes:
    """The bundle gzipped (4.8 MB to about a third), once, on its first request."""
    bundle = plotly_bundle()
    return b"" if bundle is None else gzip.compress(bundle.path.read_bytes(), compresslevel=6, mtime=0)


def plotly_css(bundle: str) -> str:
    """The CSS rules plotly.js would insert at run time, as a stylesheet: the object of rules in the
    bundle whose selectors use X for `.js-plotly-plot .plotly` and Y for `.plotly-notifier`."""
    start = bundle.find('{"X,X div":')
    if start < 0:
        return ""
    rules: list[str] = []
    at = start + 1
    while (m := _RULE.match(bundle, at)) is not None:
        key, value = m.group(1), m.group(2)
        key = key[1:-1] if key[0] in "\"'" else key
        selector = re.sub(r"^,", " ,", key).replace("X", ".js-plotly-plot .plotly").replace("Y", ".plotly-notifier")
        rules.append(f"{selector}{{{value[1:-1]}}}")
        at = m.end()
        if m.group(3) == "}":
            break
    return "\n".join(rules) + "\n"
