"""Inline SVG plots drawn on the server, decimated to min/max per pixel column."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

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
