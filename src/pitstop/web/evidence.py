"""Incident evidence in words: one sentence, and a table of the signals to look at first.

What the producers put in an incident's detail, and what a person sees of it on the incident page:

- stream scoring (`asset.anomaly:<asset>`, `pitstop.ml.scoring.Finding.as_dict`): "pump-1: vib_rms
  7.8 mm/s, 3.1× its usual 2.5; vib_kurtosis up 40 % — look at the bearing first." Each top signal's
  median over the evidence window (its last day at most) against its median over the last day of
  the scorer's baseline (the day before the evidence when the baseline is not older), with a
  sparkline of the window and as long again before it; a twin residual ("coil UCAOT") is shown by
  its measured sensor.
- remaining useful life (`asset.rul_low:<asset>`, `{"estimate", "lead_time_h"}`): hours left with
  the interval, the health index against its healthy level and the level of failure, and the date
  to act by (the lower bound).
- checks (source `check:<name>`): the check's own summary; each observed metric of its latest
  result against its median over the stored results, with the entry's levels.
- anything else: text as text; JSON as a key/value table, never as JSON.

`read` needs only the detail (the asset page's list uses it); `describe` also reads the readings,
the check results and the scorer's baseline.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from statistics import median
from typing import TYPE_CHECKING, Any

import pandas as pd
from markupsafe import Markup, escape

if TYPE_CHECKING:
    from pitstop.app import Pitstop
    from pitstop.incidents import Incident
    from pitstop.maintenance.kb import Entry

DAY = timedelta(hours=24)
MAX_SIGNALS = 5
MAX_FACTS = 40
# What a signal points at, by its (sensor) name: the first pattern that matches.
HINTS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"^(vib|bearing)", re.IGNORECASE), "the bearing"),
    (re.compile(r"^(UCWF|UCWOT|UCAOT|UCWIT)$"), "the coil and its valve"),
    (re.compile(r"^UCAF$"), "the fan"),
    (re.compile(r"disk", re.IGNORECASE), "the disk"),
    (re.compile(r"camera", re.IGNORECASE), "the camera link"),
    (re.compile(r"plc", re.IGNORECASE), "the PLC link"),
    (re.compile(r"service", re.IGNORECASE), "the service"),
)
UNITS = {"degC": "°C", "degF": "°F", "deg_C": "°C", "celsius": "°C", "pct": "%", "percent": "%"}
SMALL_PERCENT = 5.0  # a change smaller than this reads "as usual" in the sentence (the table keeps it)
ABSOLUTE_UNITS = frozenset({"°C", "°F", "K"})  # a ratio of temperatures means nothing: differences


@dataclass(frozen=True, slots=True)
class Row:
    """One signal of the table: what it reads, what it usually reads, how far off, and its trend."""

    signal: str
    value: str
    usual: str = "—"
    deviation: str = "—"
    extra: str = ""
    spark: Markup = field(default_factory=Markup)


@dataclass(frozen=True, slots=True)
class Evidence:
    sentence: str
    rows: list[Row] = field(default_factory=list)
    extra: str = ""  # the heading of the rows' `extra` column ("" when none)
    facts: list[tuple[str, str]] = field(default_factory=list)  # a shape not known: its keys and values
    note: str = ""  # where the evidence comes from (window, score, cut-off)
    hint: str = ""  # what to look at first, in words ("the bearing")
    kind: str = "text"  # anomaly, rul, check, data, text, none


# -- numbers and words --------------------------------------------------------------------------


def num(value: float) -> str:
    """A number as a person reads it: three significant digits, no exponent, no trailing zeros."""
    if not math.isfinite(value):
        return str(value)
    size = abs(value)
    if size >= 1000:
        return f"{value:,.0f}"
    if size == 0:
        return "0"
    text = f"{value:.{max(0, 2 - math.floor(math.log10(size)))}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def unit_of(unit: str | None) -> str:
    unit = (unit or "").strip()
    return UNITS.get(unit, unit)


def with_unit(value: float, unit: str) -> str:
    return f"{num(value)} {unit}".strip()


def deviation(value: float, usual: float, unit: str) -> tuple[str, str]:
    """How far `value` is from `usual`, for the table and for the sentence: a ratio ("3.1×", "3.1× its
    usual 2.5"), a percentage ("+40 %", "up 40 %"; under SMALL_PERCENT the sentence says "as usual") or,
    for temperatures and usual levels near zero, a difference ("+9.5 °C", "9.5 °C above its usual 51.5")."""
    diff = value - usual
    if unit in ABSOLUTE_UNITS or abs(usual) < 1e-9 or value * usual < 0:
        if abs(diff) < 1e-9:
            return "as usual", "as usual"
        side, sign = ("above", "+") if diff > 0 else ("below", "-")
        return f"{sign}{with_unit(abs(diff), unit)}", f"{with_unit(abs(diff), unit)} {side} its usual {num(usual)}"
    ratio = value / usual
    if ratio >= 1.5:
        return f"{ratio:.1f}×", f"{ratio:.1f}× its usual {num(usual)}"
    percent = (ratio - 1) * 100
    table = "as usual" if abs(percent) < 1 else f"{percent:+.0f} %"
    if abs(percent) < SMALL_PERCENT:
        return table, "as usual"
    return table, f"{'up' if percent > 0 else 'down'} {abs(percent):.0f} %"


def hint_for(signal: str) -> str:
    sensor = sensor_of(signal)
    return next((words for pattern, words in HINTS if pattern.search(sensor)), "")


def sensor_of(signal: str) -> str:
    """The measured sensor of a scored signal: a loop twin's residual "coil UCAOT" is UCAOT's."""
    return signal.rsplit(" ", 1)[-1]


def when(value: datetime | None) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC") if value else "—"


def _time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        t = datetime.fromisoformat(value)
    except ValueError:
        return None
    return t if t.tzinfo else t.replace(tzinfo=UTC)


def _float(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


# -- a shape not known: keys and values ---------------------------------------------------------


def scalar(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int | float):
        return num(float(value))
    if isinstance(value, str):
        t = _time(value) if len(value) >= 19 and value[4:5] == "-" and value[10:11] == "T" else None
        return when(t) if t else value
    if isinstance(value, list):
        shown = "; ".join(scalar(v) for v in value[:20])
        return shown + (f" … ({len(value)} in all)" if len(value) > 20 else "")
    if isinstance(value, dict):
        return ", ".join(f"{_words(k)} {scalar(v)}" for k, v in list(value.items())[:20])
    return str(value)


def facts(data: Mapping[str, Any], prefix: str = "") -> list[tuple[str, str]]:
    """A JSON object as (key, value) rows in words: nested objects' keys joined, lists joined."""
    rows: list[tuple[str, str]] = []
    for key, value in data.items():
        name = f"{prefix}{_words(key)}"
        if isinstance(value, dict) and value and len(rows) < MAX_FACTS:
            rows.extend(facts(value, f"{name} · "))
        else:
            rows.append((name, scalar(value)))
        if len(rows) >= MAX_FACTS:
            break
    return rows[:MAX_FACTS]


def inline(data: Mapping[str, Any]) -> str:
    """A JSON object on one line in words ("reason: pump maintenance; ends at: 2025-06-01 10:00 UTC")."""
    return "; ".join(f"{k}: {v}" for k, v in facts(data))


def _words(key: Any) -> str:
    return str(key).replace("_", " ")


def parse(detail: str | None) -> Any:
    """The detail as JSON when it is a JSON object, else the text (None when empty)."""
    if not detail or not detail.strip():
        return None
    text = detail.strip()
    if text.startswith("{"):
        try:
            data = json.loads(text)
        except ValueError:
            return detail
        if isinstance(data, dict):
            return data
    return detail


# -- the sparkline ------------------------------------------------------------------------------


def sparkline(
    points: Sequence[tuple[float, float]],
    *,
    lines: Sequence[float] = (),
    mark: tuple[float, float] | None = None,
    label: str = "",
    width: int = 160,
    height: int = 32,
) -> Markup:
    """Inline SVG: the points as a line, dashed level `lines` (the usual level), `mark` (a span of x,
    the evidence window) shaded. One point per pixel column, the mean of the points there: the level
    is what a glance at a table row should take in (the asset page's plots keep every spike)."""
    finite = [(x, y) for x, y in points if math.isfinite(x) and math.isfinite(y)]
    if len(finite) < 2:
        return Markup("")
    x0, x1 = min(x for x, _ in finite), max(x for x, _ in finite)
    if mark is not None:
        x0, x1 = min(x0, mark[0]), max(x1, mark[1])
    spread_x = (x1 - x0) or 1.0
    columns: dict[int, list[float]] = {}
    for x, y in finite:
        columns.setdefault(round((x - x0) / spread_x * (width - 2)), []).append(y)
    kept = [(1.0 + col, sum(ys) / len(ys)) for col, ys in sorted(columns.items())]
    levels = [v for v in lines if math.isfinite(v)]
    lo, hi = min([y for _, y in kept] + levels), max([y for _, y in kept] + levels)
    if hi - lo < 1e-12:  # a flat line: in the middle
        lo, hi = lo - 1.0, hi + 1.0
    spread_y = hi - lo

    def py(y: float) -> float:
        return height - 2 - (y - lo) / spread_y * (height - 4)

    parts = [
        f'<svg class="spark" width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{escape(label)}"><title>{escape(label)}</title>'
    ]
    if mark is not None:
        a, b = (1 + (m - x0) / spread_x * (width - 2) for m in mark)
        parts.append(f'<rect x="{a:.1f}" y="0" width="{max(b - a, 1):.1f}" height="{height}" fill="#fbe0e0"/>')
    for level in levels:
        y = py(level)
        parts.append(f'<line x1="0" x2="{width}" y1="{y:.1f}" y2="{y:.1f}" stroke="#9e9e9e" stroke-dasharray="3 2"/>')
    path = " ".join(f"{x:.1f},{py(y):.1f}" for x, y in kept)
    parts.append(f'<polyline points="{path}" fill="none" stroke="#1f6feb" stroke-width="1.2"/></svg>')
    return Markup("".join(parts))


# -- the known shapes ---------------------------------------------------------------------------


def read(detail: str | None, *, target: str = "") -> Evidence:
    """The evidence from the detail alone (no readings): the asset page's one line per incident."""
    data = parse(detail)
    if data is None:
        return Evidence("", kind="none")
    if isinstance(data, str):
        return Evidence(data.strip(), kind="text")
    try:
        if _is_finding(data):
            return _finding_words(data, str(data.get("asset") or target), stats={})
        if _is_rul(data):
            return _rul(data, str(data["estimate"].get("asset") or target), unit="")
    except (TypeError, ValueError, KeyError, AttributeError, OverflowError):
        pass  # a known shape with odd parts: its keys and values
    return Evidence(inline(data), facts=facts(data), kind="data")


def describe(p: Pitstop, item: Incident) -> Evidence:
    """The incident's evidence with what pitstop knows besides: readings, check results, units."""
    data = parse(item.detail)
    target = item.target
    if isinstance(data, dict) and _is_finding(data):
        asset = str(data.get("asset") or target)
        try:
            stats = _finding_stats(p, asset, data)
        except Exception:  # readings unreadable: the words from the detail alone
            stats = {}
        return _finding_words(data, asset, stats)
    if isinstance(data, dict) and _is_rul(data):
        asset = str(data["estimate"].get("asset") or target)
        evidence = data["estimate"].get("evidence")
        sensor = str(evidence.get("health_sensor") or "") if isinstance(evidence, dict) else ""
        unit = next((unit_of(s.unit) for s in _sensors(p, asset) if s.name == sensor), "")
        try:
            return _rul(data, asset, unit=unit)
        except (TypeError, ValueError, KeyError, AttributeError, OverflowError):
            return read(item.detail, target=target)
    if item.source.startswith("check:"):
        try:
            return _check(p, item.source.removeprefix("check:"), target, item.detail or item.title)
        except Exception:
            return Evidence((item.detail or item.title).strip(), kind="check")
    return read(item.detail, target=target)


def recommended(p: Pitstop, item: Incident, evidence: Evidence) -> list[Entry]:
    """Knowledge-base entries linked to the incident's issue, those about what the evidence points
    at first (the bearing, the coil) ahead of the others."""
    kb = p.maintenance.kb
    entries = kb.recommendations_for(item.key)
    if evidence.hint and len(entries) > 1:
        words = " ".join([evidence.hint.removeprefix("the "), *(sensor_of(r.signal) for r in evidence.rows)])
        order = {e.slug: i for i, e in enumerate(kb.search(words, limit=100))}
        entries.sort(key=lambda e: order.get(e.slug, len(order)))
    return entries[:5]


def _is_finding(data: Mapping[str, Any]) -> bool:
    return isinstance(data.get("top_signals"), list) and isinstance(data.get("evidence"), dict)


def _is_rul(data: Mapping[str, Any]) -> bool:
    estimate = data.get("estimate")
    return isinstance(estimate, dict) and all(_float(estimate.get(k)) is not None for k in ("median_h", "lower_h"))


@dataclass(frozen=True, slots=True)
class _Stat:
    value: float
    usual: float | None
    unit: str
    spark: Markup


def _signals(data: Mapping[str, Any]) -> list[tuple[str, float | None]]:
    out = []
    for s in data.get("top_signals", [])[:MAX_SIGNALS]:
        if isinstance(s, dict) and isinstance(s.get("signal"), str) and s["signal"]:
            out.append((s["signal"][:100], _float(s.get("share"))))
    return out


def _finding_words(data: Mapping[str, Any], asset: str, stats: Mapping[str, _Stat]) -> Evidence:
    signals = _signals(data)
    hint = hint_for(signals[0][0]) if signals else ""
    parts, rows = [], []
    for name, share in signals:
        stat = stats.get(name)
        shown = f"{share:.0%}" if share is not None else "—"
        if stat is None:
            parts.append(f"{name} ({shown} of the score)")
            rows.append(Row(name, "—", extra=shown))
            continue
        value = with_unit(stat.value, stat.unit)
        if stat.usual is None:
            parts.append(f"{name} {value}")
            rows.append(Row(name, value, extra=shown, spark=stat.spark))
            continue
        table, words = deviation(stat.value, stat.usual, stat.unit)
        parts.append(f"{name} {words}" if words.startswith(("up ", "down ")) else f"{name} {value}, {words}")
        rows.append(Row(name, value, with_unit(stat.usual, stat.unit), table, shown, stat.spark))
    look = hint or (signals[0][0] if signals else "")
    sentence = _about(asset, "; ".join(parts) if parts else "readings off their usual")
    sentence += f" — look at {look} first." if look else "."
    window = data.get("evidence") or {}
    start, end = _time(window.get("start")), _time(window.get("end"))
    flagged, scored = _float(data.get("flagged_rows")), _float(data.get("scored_rows"))
    note = ""
    if flagged is not None and scored is not None:
        note = f"{num(flagged)} of {num(scored)} readings scored as abnormal, {when(start)} to {when(end)}"
        score, cutoff = _float(data.get("max_score")), _float(data.get("cutoff"))
        if score is not None and cutoff is not None:
            note += f"; highest score {num(score)} against a cut-off of {num(cutoff)}"
        by = data.get("explained_by")
        note += f" ({by})." if isinstance(by, str) and by else "."
    return Evidence(sentence, rows, "Share of the score", note=note, hint=hint, kind="anomaly")


def _finding_stats(p: Pitstop, asset: str, data: Mapping[str, Any]) -> dict[str, _Stat]:
    window = data["evidence"]
    start, end = _time(window.get("start")), _time(window.get("end"))
    if start is None or end is None or end < start:
        return {}
    sensors = {s.name: s for s in _sensors(p, asset)}
    status = p.scoring.status(asset)
    if status.state == "scoring" and status.baseline_end is not None and status.baseline_end <= start:
        usual_from = max(status.baseline_start or status.baseline_end - DAY, status.baseline_end - DAY)
        usual_to = status.baseline_end
    else:
        usual_from, usual_to = start - DAY, start
    shown_from = max(start, end - DAY)
    context_from = shown_from - max(end - shown_from, timedelta(hours=1))
    stats: dict[str, _Stat] = {}
    for name, _ in _signals(data):
        sensor = sensors.get(sensor_of(name))
        if sensor is None:
            continue
        frame = p.readings.window(sensor.id, _us(context_from), _us(end) + 1)["value"]
        inside = frame[frame.index >= shown_from]
        if inside.empty:
            continue
        before = p.readings.window(sensor.id, _us(usual_from), _us(usual_to))["value"]
        usual = float(before.median()) if not before.empty else None
        seconds = pd.DatetimeIndex(frame.index).as_unit("us").asi8 / 1e6
        points = list(zip(seconds.tolist(), frame.to_numpy(dtype=float).tolist(), strict=True))
        unit = unit_of(sensor.unit)
        label = f"{sensor.name}, {when(context_from)} to {when(end)}; the evidence window shaded"
        spark = sparkline(
            points,
            lines=[usual] if usual is not None else [],
            mark=(shown_from.timestamp(), end.timestamp()),
            label=label,
        )
        stats[name] = _Stat(float(inside.median()), usual, unit, spark)
    return stats


def _rul(data: Mapping[str, Any], asset: str, *, unit: str) -> Evidence:
    est: Mapping[str, Any] = data["estimate"]
    evidence: Mapping[str, Any] = est["evidence"] if isinstance(est.get("evidence"), dict) else {}
    median_h, lower_h = float(est["median_h"]), float(est["lower_h"])
    upper_h, coverage = _float(est.get("upper_h")), _float(est.get("coverage"))
    lead = _float(data.get("lead_time_h"))
    at = _time(est.get("at"))
    sensor = str(evidence.get("health_sensor") or "")
    hint = hint_for(sensor) if sensor else ""
    interval = f"{num(lower_h)}–{num(upper_h)} h" if upper_h is not None else f"at least {num(lower_h)} h"
    if coverage is not None:
        interval += f", {coverage:.0%}"
    sentence = _about(asset, f"about {num(median_h)} h of life left ({interval})")
    if lead is not None:
        sentence += f", {'under' if lower_h < lead else 'against'} a lead time of {num(lead)} h"
    health, healthy = _float(est.get("health")), _float(evidence.get("healthy_level"))
    failure = _float(evidence.get("failure_level"))
    rows: list[Row] = []
    if sensor and health is not None:
        sentence += f"; {sensor} at {health:.1f}× its healthy level"
        if failure is not None:
            sentence += f", failure expected near {failure:.1f}×"
        history = evidence.get("recent_health")
        recent = [v for v in history if _float(v) is not None] if isinstance(history, list) else []
        spark = sparkline(
            [(float(i), float(v)) for i, v in enumerate(recent)],
            lines=[1.0] + ([failure] if failure is not None else []),
            label=f"health index of {sensor}, the last {len(recent)} hours; dashed: healthy and failure levels",
        )
        value = with_unit(health * healthy, unit) if healthy is not None else f"{health:.2f}×"
        usual = with_unit(healthy, unit) if healthy is not None else "1×"
        extra = f"{failure:.2f}×" if failure is not None else "—"
        rows.append(Row(f"{sensor} (health index)", value, usual, f"{health:.2f}×", extra, spark))
    if at is not None:
        sentence += f" — plan work on {hint or asset} before {when(at + timedelta(hours=lower_h))}."
    else:
        sentence += "."
    note = f"Estimated {when(at)} by {est.get('model') or 'the prognostics model'}" if at else ""
    if note and _float(evidence.get("hours_read")) is not None:
        note += f" from {num(float(evidence['hours_read']))} hours of readings"
    return Evidence(sentence, rows, "Failure at", note=note + ("." if note else ""), hint=hint, kind="rul")


def _check(p: Pitstop, check: str, target: str, summary: str) -> Evidence:
    history = p.health.results.history(check, target, 60)  # newest first
    sentence = summary.strip()
    if not history:
        return Evidence(sentence, kind="check")
    latest = history[0]
    spec = next((s for s in p.health.specs() if s.check == check and s.target == target), None)
    levels = dict(spec.thresholds) if spec is not None else {}
    rows = []
    for metric, raw in list(latest.observed.items())[:8]:
        value = _float(raw)
        if value is None:
            continue
        series = [(h.checked_at.timestamp(), float(h.observed[metric])) for h in reversed(history)]
        series = [(t, v) for t, v in series if math.isfinite(v)]
        earlier = [v for _, v in series[:-1]]
        usual = median(earlier) if earlier else None
        level = levels.get(metric)
        marks = [v for v in (level.warning, level.critical) if v is not None] if level else []
        extra = ""
        if level is not None:
            pairs = (("warning", level.warning), ("critical", level.critical))
            extra = " · ".join(f"{name} {level.direction} {num(v)}" for name, v in pairs if v is not None)
        table = deviation(value, usual, "")[0] if usual is not None else "—"
        spark = sparkline(series, lines=marks, label=f"{metric} over the last {len(series)} checks")
        rows.append(Row(_words(metric), num(value), num(usual) if usual is not None else "—", table, extra, spark))
    note = f"Latest check {when(latest.checked_at)}: {latest.status.value}."
    return Evidence(sentence or latest.summary, rows, "Levels" if levels else "", note=note, kind="check")


def _about(asset: str, words: str) -> str:
    """A sentence about an asset: "pump-1: ...", or the words alone, capitalized, when none is named."""
    return f"{asset}: {words}" if asset else words[:1].upper() + words[1:]


def _sensors(p: Pitstop, asset: str) -> list[Any]:
    try:
        return list(p.assets.sensors(asset))
    except Exception:
        return []


def _us(t: datetime) -> int:
    return int(t.timestamp() * 1_000_000)
