"""A plant scorecard: the whole loop of pitstop scored against a simulated plant's ground truth
(issue 16, item 5).

    bench/plant.py --scenario bench/scenarios/all-faults.toml \\
        --inventory bench/scenarios/all-faults-inventory.toml --seed 1 --days 7

What it does:
1. A fresh data directory (a tempdir) and SQLite database; the inventory is loaded the way
   `pitstop.demo.prepare` loads the demo's (default: the demo inventory). `--assets K` replaces it
   with a generated fleet of K assets (see `fleet_inventory`).
2. The app is built with `pitstop.app.build(settings, clock=FrozenClock, db=db)` and default
   settings: nothing is tuned here, the scorecard measures the product as shipped.
3. Simulated time runs from ORIGIN for `--days`, `--step` at a time. Before each step the simulator
   writes its readings up to the clock's now (`pitstop.sim.live.LiveSimulation.advance`, what the
   demo's simulator job does live), so no job can read a reading from its future; then
   `scheduler.tick()` runs every due job of `pitstop serve` (health checks, stream scoring,
   prognostics, drift and the model lifecycle, remediation, maintenance, backups, roll-ups), then
   `feed.deliver()` hands incident transitions to the alert service and the maintenance log.
4. Ground truth is the scenario's faults; each gets an impact time by the rules in IMPACT_RULES.
5. Scores come from what the product recorded, read through its repositories: incidents
   (registry), notifications (alert router), work orders, RUL estimates (prognostics store).

An incident belongs to an asset when its key's target is the asset or starts with "<asset>/"
(a sensor). Incidents on other targets (the bench machine's own cpu, memory and disk, the database,
the scheduler) are listed under `other_incidents`, not counted against the plant.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import emit
from pitstop import inventory
from pitstop.app import Pitstop, build
from pitstop.config import Settings
from pitstop.incidents.models import parse_key
from pitstop.sim import Scenario, Simulator, assets_of_database
from pitstop.sim.hvac import HvacModel
from pitstop.sim.live import LiveSimulation
from pitstop.sim.publish import DatabasePublisher
from pitstop.sim.scenario import Fault, FaultKind
from pitstop.sim.server import ServerModel
from pitstop.storage import Database
from pitstop.testing.clock import FrozenClock

ROOT = Path(__file__).resolve().parents[1]
DEMO_INVENTORY = ROOT / "src" / "pitstop" / "data" / "demo-inventory.toml"
ORIGIN = datetime(2026, 3, 2, tzinfo=UTC)  # a fixed start: the same seed gives the same plant
END_GRACE = timedelta(hours=1)  # an incident opened this soon after a fault ended is not false

# When a fault starts to hurt: the deadline a detection must beat.
IMPACT_RULES = {
    FaultKind.BEARING_WEAR: "the failure time (the fault's end)",
    FaultKind.DISK_FILL: "the simulator's disk_free (noise-free) first below 10 %",
    FaultKind.CAMERA_LATENCY: "the median of the simulated latency over 5 minutes first above 500 ms",
    FaultKind.VALVE_STUCK: (
        "when it shows: the first hour a reading it changes (water flow, air or water outlet temperature;"
        " noise-free, hourly median) differs from the same unit's with a working valve by the tolerance; a"
        " valve stuck where the controller would have left it changes nothing"
    ),
    FaultKind.PLC_LINK_DROP: "at once (onset)",
    FaultKind.SERVICE_DOWN: "at once (onset)",
    FaultKind.SENSOR_DRIFT: "the bias past the tolerance (2 % of the sensor's range, 1 unit without a range)",
    FaultKind.SENSOR_FREEZE: "the true value first differs from the frozen one by the tolerance (as drift)",
    FaultKind.FOULING: (
        "15 % of the coil's UA lost (severity x days / 30) and the loss shows, as for a stuck valve: on hot"
        " water at part load the valve passes a trickle and a fouled coil changes nothing"
    ),
}
# A fault counts as found before its impact when it is found at the latest at the first step that
# could see the impact: a step at time T looks at the readings before T (LiveSimulation.advance),
# so an impact at once (a dropped link) can be seen no sooner than the step after it.
# `detected_before_impact_ratio_strict` compares with the impact itself.
FOULING_IMPACT_LOSS = 0.15
FOULING_DAYS = 30.0
DISK_IMPACT_PCT = 10.0
LATENCY_IMPACT_MS = 500.0
TOLERANCE_SHARE = 0.02


# -- the plant -----------------------------------------------------------------------------------


def fleet_inventory(k: int) -> str:
    """K assets over three sites (three weathers), cycling through the simulated types; HVAC units
    and rotating machines differ in size through the simulator's per-asset parameters (seeded by
    name), and every sixth asset is a monitoring server."""
    types = ["hvac", "pump", "hvac", "fan", "motor", "monitoring-server"]
    hvac = ["UCWIT", "UCAIT", "UCWF", "UCAIH", "AMBT", "UCTSP", "UCAOT", "UCWOT", "UCAF"]
    ranges = {
        "UCWIT": (0, 40),
        "UCAIT": (-30, 50),
        "UCWF": (0, 50),
        "UCAIH": (0, 100),
        "AMBT": (-30, 50),
        "UCTSP": (10, 30),
        "UCAOT": (-10, 60),
        "UCWOT": (0, 60),
        "UCAF": (0, 20000),
    }
    lines = []
    for site in ("site-a", "site-b", "site-c"):
        lines += ["[[sites]]", f'name = "{site}"', ""]
    counts: dict[str, int] = {}
    for i in range(k):
        kind = types[i % len(types)]
        counts[kind] = counts.get(kind, 0) + 1
        short = {"monitoring-server": "server", "hvac": "ahu"}.get(kind, kind)
        name = "vms-server" if kind == "monitoring-server" and counts[kind] == 1 else f"{short}-{counts[kind]}"
        if kind == "hvac":
            sensors = [(s, *ranges[s], 60) for s in hvac]
        elif kind == "monitoring-server":
            sensors = [
                ("cpu_pct", 0, 100, 30),
                ("mem_pct", 0, 100, 30),
                ("disk_free_pct", 0, 100, 60),
                ("camera_latency_ms", 0, 60000, 30),
                ("plc_link_up", 0, 1, 30),
                ("service_up", 0, 1, 30),
            ]
        else:
            sensors = [("vib_rms", 0, 100, 10), ("vib_kurtosis", 0, 100, 10), ("vib_crest", 0, 50, 10)]
            if kind != "fan":
                sensors.append(("bearing_temp", -20, 150, 10))
        lines += [
            "[[assets]]",
            f'name = "{name}"',
            f'site = "site-{"abc"[i % 3]}"',
            f'type = "{kind}"',
            f"criticality = {3 + i % 3}",
            "sensors = [",
        ]
        lines += [f'  {{ name = "{s}", min = {lo}, max = {hi}, period_s = {p} }},' for s, lo, hi, p in sensors]
        lines += ["]", ""]
    return "\n".join(lines)


def prepare(pitstop: Pitstop, text: str, source: str) -> None:
    """The inventory, loaded the way `pitstop.demo.prepare` loads the demo's."""
    pitstop.db.upgrade()
    spec = inventory.parse(text, source, "toml")
    inventory.apply(pitstop.db, spec, actor="plant-bench", now=pitstop.clock.now())


# -- ground truth --------------------------------------------------------------------------------


def _tolerance(sim: Simulator, fault: Fault, name: str | None = None) -> float:
    sensor = sim.sensors[(fault.asset, name or fault.sensor or "")]
    if sensor.min is None or sensor.max is None:
        return 1.0
    return TOLERANCE_SHARE * (sensor.max - sensor.min)


def _hvac_fault_shows(sim: Simulator, fault: Fault, begin: datetime, horizon: datetime) -> datetime | None:
    """The first hour from `begin` when the fault (fouling, a stuck valve) moves one of the readings
    it affects by the tolerance against the same unit without it (both noise-free)."""
    faulty = sim.models[fault.asset]
    if not isinstance(faulty, HvacModel):
        return None
    others = tuple(f for f in sim.scenario.of(fault.asset) if f is not fault)
    healthy = HvacModel(faulty.seed, faulty.asset, faulty.site, others, cooling_all_year=faulty.cooling_all_year)
    stop = min(fault.end or horizon + timedelta(days=30), horizon + timedelta(days=30))
    if begin >= stop:
        return None
    t = np.arange(begin.timestamp(), stop.timestamp(), 300.0)
    k = np.zeros(len(t), dtype=np.int64)
    a, b = faulty.signals(t, k), healthy.signals(t, k)
    shows = np.zeros(len(t), dtype=bool)
    _, hour = np.unique((t - t[0]) // 3600, return_inverse=True)
    for name in sorted(fault.signals):
        if (fault.asset, name) not in sim.sensors:
            continue
        gap = np.abs(np.asarray(a[name][0]) - np.asarray(b[name][0]))
        hourly = np.array([np.median(gap[hour == h]) for h in range(hour.max() + 1)])
        shows |= hourly[hour] > _tolerance(sim, fault, name)
    return _first(t, shows)


def _first(t: np.ndarray, hit: np.ndarray) -> datetime | None:
    idx = np.flatnonzero(hit)
    return None if len(idx) == 0 else datetime.fromtimestamp(float(t[idx[0]]), UTC)


def impact_time(sim: Simulator, fault: Fault, horizon: datetime) -> datetime | None:
    """When the fault starts to hurt (IMPACT_RULES); None when not before `horizon` + 30 days."""
    onset = fault.start
    if fault.kind is FaultKind.BEARING_WEAR:
        return fault.failure_time
    if fault.kind in (FaultKind.PLC_LINK_DROP, FaultKind.SERVICE_DOWN):
        return onset
    if fault.kind is FaultKind.VALVE_STUCK:
        return _hvac_fault_shows(sim, fault, onset, horizon)
    if fault.kind is FaultKind.FOULING:
        lost = onset + timedelta(days=FOULING_IMPACT_LOSS / fault.severity * FOULING_DAYS)
        return _hvac_fault_shows(sim, fault, lost, horizon)
    if fault.kind is FaultKind.SENSOR_DRIFT:
        return onset + timedelta(days=_tolerance(sim, fault) / fault.severity)
    end = min(fault.end or horizon + timedelta(days=30), horizon + timedelta(days=30))
    model = sim.models[fault.asset]
    if fault.kind is FaultKind.DISK_FILL and isinstance(model, ServerModel):
        t = np.arange(onset.timestamp(), (horizon + timedelta(days=30)).timestamp(), 60.0)
        return _first(t, model.disk_free(t) < DISK_IMPACT_PCT)
    if fault.kind is FaultKind.CAMERA_LATENCY and isinstance(model, ServerModel):
        t0 = int(onset.timestamp()) // 30 * 30
        t = np.arange(t0, end.timestamp(), 30.0)
        lat = model.latency(t, (t // 30).astype(np.int64))
        med = np.array([np.median(lat[max(0, i - 9) : i + 1]) for i in range(len(lat))])
        return _first(t, med > LATENCY_IMPACT_MS)
    if fault.kind is FaultKind.SENSOR_FREEZE and fault.sensor is not None:
        period = sim.sensors[(fault.asset, fault.sensor)].period_s
        k = np.arange(int(onset.timestamp() // period), int(end.timestamp() // period) + 1, dtype=np.int64)
        t = k * period
        true = np.asarray(model.signals(t.astype(float), k)[fault.sensor][0], dtype=float)
        frozen = true[0]
        return _first(t, np.abs(true - frozen) > _tolerance(sim, fault))
    return onset


# -- scoring -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Opened:
    key: str
    target_asset: str | None
    opened_at: datetime
    source: str


def _asset_of(target: str, assets: set[str]) -> str | None:
    if target in assets:
        return target
    head = target.split("/", 1)[0]
    return head if head in assets else None


def _iso(at: datetime | None) -> str | None:
    return None if at is None else at.isoformat(timespec="seconds")


def first_look(at: datetime, start: datetime, step: timedelta) -> datetime:
    """The first step that sees a reading at `at`: steps fall on start + n * step and see the
    readings before them."""
    return start + step * ((at - start) // step + 1)


def score(pitstop: Pitstop, sim: Simulator, start: datetime, end: datetime, step: timedelta) -> dict[str, Any]:
    assets = set(sim.assets)
    incidents = pitstop.incidents.list(limit=1_000_000)
    opened = []
    for inc in incidents:
        _, _, target = parse_key(inc.key)
        opened.append(Opened(inc.key, _asset_of(target, assets), inc.opened_at, inc.source))
    opened.sort(key=lambda o: o.opened_at)
    faults = [f for f in sim.scenario.faults if f.start < end]

    def active_fault(asset: str, at: datetime) -> bool:
        for f in sim.scenario.of(asset):
            stop = None if f.kind is FaultKind.BEARING_WEAR or f.end is None else f.end + END_GRACE
            if f.start <= at and (stop is None or at < stop):
                return True
        return False

    rows, judged, hits, strict_hits = [], 0, 0, 0
    for f in faults:
        impact = impact_time(sim, f, end)
        stop = end if f.end is None or f.kind is FaultKind.BEARING_WEAR else min(end, f.end + END_GRACE)
        first = next((o for o in opened if o.target_asset == f.asset and f.start <= o.opened_at < stop), None)
        detected = first.opened_at if first else None
        # an incident on the asset opened before the onset and still open then: a false alarm that
        # happens to overlap (it is not counted as a detection; opening is idempotent by key, so the
        # fault cannot open its own incident while it stays open)
        already = [
            i.key
            for i in incidents
            if _asset_of(parse_key(i.key)[2], assets) == f.asset
            and i.opened_at < f.start
            and (i.resolved_at is None or i.resolved_at > f.start)
        ]
        before = None
        if detected is not None and impact is not None:
            before = detected <= first_look(impact, start, step)
        elif detected is None and impact is not None and impact <= end:
            before = False
        if before is not None:
            judged += 1
            hits += int(before)
            strict_hits += int(before and detected is not None and impact is not None and detected <= impact)
        rows.append(
            {
                "kind": f.kind.value,
                "asset": f.asset if f.sensor is None else f"{f.asset}/{f.sensor}",
                "onset": _iso(f.start),
                "impact": _iso(impact),
                "impact_first_seen": None if impact is None else _iso(first_look(impact, start, step)),
                "detected_at": _iso(detected),
                "by": first.key if first else None,
                "delay_h": None if detected is None else round((detected - f.start).total_seconds() / 3600, 2),
                "before_impact": before,
                "open_before_onset": already,
            }
        )

    plant = [o for o in opened if o.target_asset is not None and start <= o.opened_at <= end]
    false = [o for o in plant if not active_fault(o.target_asset or "", o.opened_at)]
    faulty = {f.asset for f in sim.scenario.faults}
    healthy_flagged = sorted({o.target_asset for o in plant if o.target_asset not in faulty} - {None})
    asset_weeks = len(assets) * (end - start).total_seconds() / (7 * 86400)

    notes = pitstop.alerts.router.recent(limit=1_000_000)
    sent = [n for n in notes if n.outcome == "sent"]
    plant_sent = [n for n in sent if _asset_of(parse_key(n.alert_key)[2], assets) is not None]
    orders = pitstop.maintenance.orders.list(limit=1_000_000)

    wo_rows, wo_hits = [], 0
    rul_err: dict[str, list[float]] = {"50": [], "90": []}
    for f in faults:
        failure = f.failure_time
        if failure is None or failure > end:
            continue
        first_order = min((o.opened_at for o in orders if o.asset == f.asset and o.opened_at < failure), default=None)
        wo_hits += int(first_order is not None)
        wo_rows.append({"asset": f.asset, "failure": _iso(failure), "first_order": _iso(first_order)})
        estimates = pitstop.prognostics.store.estimates(f.asset, points=1_000_000)
        life = failure - start  # as bench/bearings_rul.py: from the start of the data to the failure
        for share in ("50", "90"):
            at = start + life * (int(share) / 100)
            near = [e for e in estimates if at - timedelta(hours=2) <= e.at <= at]
            if near:
                e = near[-1]
                rul_err[share].append(abs(e.median_h - (failure - e.at).total_seconds() / 3600))
    by_source: dict[str, int] = {}
    for o in plant:
        by_source[o.source] = by_source.get(o.source, 0) + 1
    return {
        "faults": rows,
        "detected_before_impact_ratio": None if judged == 0 else round(hits / judged, 3),
        "detected_before_impact_ratio_strict": None if judged == 0 else round(strict_hits / judged, 3),
        # any incident during the fault, before or after its impact (an at-once fault can only be
        # found after it, at the next step at best)
        "detected_ratio": None if not rows else round(sum(r["detected_at"] is not None for r in rows) / len(rows), 3),
        "median_delay_h": None
        if not any(r["delay_h"] is not None for r in rows)
        else float(np.median([r["delay_h"] for r in rows if r["delay_h"] is not None])),
        "faults_judged": judged,
        "false_incidents_per_asset_week": round(len(false) / asset_weeks, 3),
        "false_incidents": [{"key": o.key, "opened_at": _iso(o.opened_at)} for o in false],
        "healthy_assets_flagged": len(healthy_flagged),
        "healthy_assets_flagged_names": healthy_flagged,
        "plant_incidents": len(plant),
        "plant_incidents_by_source": by_source,
        "other_incidents": sorted({o.key for o in opened if o.target_asset is None}),
        "notifications_sent": len(sent),
        "notifications_per_incident": None if not incidents else round(len(sent) / len(incidents), 2),
        "notifications_per_plant_incident": None if not plant else round(len(plant_sent) / len(plant), 2),
        "work_orders": len(orders),
        "work_orders_before_failure_ratio": None if not wo_rows else round(wo_hits / len(wo_rows), 3),
        "work_orders_before_failure": wo_rows,
        "rul_abs_error_h": {
            f"at_{k}pct_life": None if not v else round(float(np.mean(v)), 1) for k, v in rul_err.items()
        },
    }


# -- the run -------------------------------------------------------------------------------------

SCORER_SETTINGS: dict[str, tuple[str, Any]] = {
    "margin": ("margin", float),
    "false_per_week": ("false_per_week", float),
    "baseline_h": ("baseline", lambda v: timedelta(hours=float(v))),
    "window_min": ("window", lambda v: timedelta(minutes=float(v))),
    "grow_days": ("grow_for", lambda v: timedelta(days=float(v))),
}


def scorer_overrides(items: list[str]) -> dict[str, Any]:
    """``--scorer margin=2`` and the like, as StreamScorer attributes."""
    out: dict[str, Any] = {}
    for item in items:
        name, _, value = item.partition("=")
        if name not in SCORER_SETTINGS or not value:
            raise SystemExit(f"--scorer {item!r}: expected NAME=VALUE, NAME one of {', '.join(SCORER_SETTINGS)}")
        attribute, parse = SCORER_SETTINGS[name]
        try:
            out[attribute] = parse(value)
        except ValueError:
            raise SystemExit(f"--scorer {item!r}: {value!r} is not a number") from None
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scenario", type=Path, required=True)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--days", type=float, default=7.0)
    parser.add_argument("--inventory", type=Path, default=None, help="default: the demo inventory")
    parser.add_argument("--assets", type=int, default=None, help="a generated fleet of K assets instead")
    parser.add_argument("--step", type=float, default=600.0, help="simulated seconds per step (default 600)")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--data-dir", type=Path, default=None, help="keep the run here (default: a tempdir)")
    parser.add_argument("--score-only", action="store_true", help="score a kept --data-dir again, no run")
    parser.add_argument(
        "--detection-only",
        action="store_true",
        help="run only the stream scorer at each step (what the scoring job does), not the other jobs:"
        " the detection stack alone, fast enough to compare its settings over 30 days",
    )
    parser.add_argument(
        "--scorer",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a StreamScorer setting for this run: margin, false_per_week, baseline_h, window_min,"
        " grow_days (repeatable); the defaults are the product's",
    )
    args = parser.parse_args()
    overrides = scorer_overrides(args.scorer)

    began = time.perf_counter()
    if args.assets is not None:
        inv_text, inv_source = fleet_inventory(args.assets), f"fleet of {args.assets}"
    else:
        path = args.inventory or DEMO_INVENTORY
        inv_text, inv_source = path.read_text(encoding="utf-8"), str(path)
    start = ORIGIN
    end = start + timedelta(days=args.days)
    step = timedelta(seconds=args.step)
    jobs_run: dict[str, int] = {}
    with tempfile.TemporaryDirectory(prefix="pitstop-plant-") as tmp:
        data = args.data_dir or Path(tmp)
        data.mkdir(parents=True, exist_ok=True)
        clock = FrozenClock(end if args.score_only else start)
        db = Database(f"sqlite:///{data / 'pitstop.db'}")
        pitstop = build(Settings(data_dir=data), clock=clock, db=db)
        try:
            if not args.score_only:
                prepare(pitstop, inv_text, inv_source)
            for name, value in overrides.items():
                setattr(pitstop.scoring, name, value)
            scenario = Scenario.load(args.scenario, start)
            sim = Simulator(assets_of_database(pitstop.assets), seed=args.seed, scenario=scenario)
            publisher = DatabasePublisher(sim, assets=pitstop.assets, readings=pitstop.readings, ingest=pitstop.ingest)
            live = LiveSimulation(sim, publisher, start)
            steps = 0
            at = end if args.score_only else start
            job_s: dict[str, float] = {}
            while at < end:
                at = min(at + step, end)
                clock.set(at)
                t0 = time.perf_counter()
                live.advance(at)  # readings up to now, never beyond
                job_s["simulator"] = job_s.get("simulator", 0.0) + time.perf_counter() - t0
                t0 = time.perf_counter()
                if args.detection_only:
                    pitstop.scoring.run(at)
                    jobs_run["scoring"] = jobs_run.get("scoring", 0) + 1
                else:
                    for name in pitstop.scheduler.tick():
                        jobs_run[name] = jobs_run.get(name, 0) + 1
                job_s["scheduler.tick"] = job_s.get("scheduler.tick", 0.0) + time.perf_counter() - t0
                t0 = time.perf_counter()
                pitstop.feed.deliver()
                job_s["feed.deliver"] = job_s.get("feed.deliver", 0.0) + time.perf_counter() - t0
                steps += 1
            result = score(pitstop, sim, start, end, step)
            runs = pitstop.jobs.recent(limit=1_000_000)
            failures = sorted({f"{r.job}: {r.error}" for r in runs if r.outcome == "failed"})
        finally:
            pitstop.close()
    result = {
        "command": shlex.join(["bench/plant.py", *sys.argv[1:]]),
        "seed": args.seed,
        "days": args.days,
        "step_s": args.step,
        "inventory": inv_source,
        "scenario": str(args.scenario),
        "assets": len(sim.assets),
        "sensors": len(sim.keys),
        "steps": steps,
        "detection_only": args.detection_only,
        "scorer": {k: str(v) for k, v in overrides.items()},
        "jobs_run": jobs_run,
        "failed_jobs": failures,
        "seconds_by_part": {k: round(v, 1) for k, v in job_s.items()},
        "impact_rules": {k.value: v for k, v in IMPACT_RULES.items()},
        **result,
        "wall_s": round(time.perf_counter() - began, 1),
    }
    if args.out is not None:
        args.out.write_text(json.dumps(result, indent=2, default=str) + "\n", encoding="utf-8")
    emit(result)


if __name__ == "__main__":
    main()
