"""`pitstop rul show | run | end | ends | calibration`: remaining useful life from the shell."""

# No `from __future__ import annotations` here: see pitstop/cli/__init__.py (start time).
from typing import TYPE_CHECKING, Annotated, Any

import typer

from pitstop.cli.output import AsJson, emit_json, fields, say, table, text
from pitstop.cli.times import TIME_HELP, parse_time

if TYPE_CHECKING:
    from pitstop.app import Pitstop

rul_app = typer.Typer(
    help="Remaining useful life: estimates with intervals, ends of life, calibration.", no_args_is_help=True
)


def _pitstop(ctx: typer.Context) -> "Pitstop":
    pitstop: Pitstop = ctx.obj.pitstop()
    return pitstop


@rul_app.command("show")
def show(
    ctx: typer.Context,
    asset: str,
    days: Annotated[float, typer.Option(min=0.01, max=3650, help="How far back the curve goes.")] = 30.0,
    as_json: AsJson = False,
) -> None:
    """The asset's latest estimate, how it moved, its work order and its calibration."""
    summary = _pitstop(ctx).prognostics.summary(asset, days=days)
    if as_json:
        emit_json(summary)
        return
    latest = summary["latest"]
    if latest is None:
        say(f"{asset}: no estimate yet (too little history, or `pitstop rul run` has not run)")
        return
    say(
        f"{asset}: {latest['median_h']:.0f} h left, {latest['coverage']:.0%} interval "
        f"{latest['lower_h']:.0f}–{latest['upper_h']:.0f} h (at {latest['at']}, health {latest['health']:.2f}"
        f" of {text(latest['evidence'].get('failure_level'))} at failure)"
    )
    table(
        ("at", "lower h", "median h", "upper h"),
        (
            (p["at"], f"{p['lower_h']:.0f}", f"{p['median_h']:.0f}", f"{p['upper_h']:.0f}")
            for p in summary["curve"][-10:]
        ),
        empty="no estimates in the period",
        title=f"last {min(len(summary['curve']), 10)} estimates",
    )
    order = summary["work_order"]
    if order is not None:
        say(
            f"work order {order['id']} ({order['state']}), due {text(order['due_at'])}, "
            f"window {text(order['window_name'])}"
        )
    cal = summary["calibration"]
    if cal["outcomes"]:
        say(f"calibration: {cal['outcomes']} outcome(s), interval coverage {text(cal['interval_coverage'])}")


@rul_app.command("run")
def run(
    ctx: typer.Context,
    asset: Annotated[str | None, typer.Option(help="Only this asset.")] = None,
    as_json: AsJson = False,
) -> None:
    """Estimate now (what the scheduler does every interval): store, open incidents and work orders."""
    estimates = _pitstop(ctx).prognostics.run(asset=asset)
    if as_json:
        emit_json([e.as_dict() for e in estimates])
        return
    table(
        ("asset", "median h", "lower h", "upper h"),
        ((e.asset, f"{e.median_h:.0f}", f"{e.lower_h:.0f}", f"{e.upper_h:.0f}") for e in estimates),
        empty="no estimates: no asset has enough history of its health sensor yet",
    )


@rul_app.command("end")
def end(
    ctx: typer.Context,
    asset: str,
    at: Annotated[str, typer.Option(help=f"When it failed or was replaced: {TIME_HELP}.")],
    code: Annotated[str, typer.Option(help="Failure mode, e.g. bearing_wear.")],
    failed: Annotated[bool, typer.Option("--failed/--replaced", help="Broke down, or replaced before it did.")] = True,
    note: Annotated[str, typer.Option(help="What happened.")] = "",
    as_json: AsJson = False,
) -> None:
    """Record a failure or a replacement: the asset's history ends there and a new life starts."""
    pitstop = _pitstop(ctx)
    when = parse_time(at, now=pitstop.clock.now(), option="--at")
    life_end = pitstop.prognostics.record_life_end(asset, when, failed=failed, code=code, source="cli", note=note)
    if as_json:
        emit_json(life_end.as_dict())
        return
    say(f"{asset}: {'failure' if life_end.failed else 'replacement'} recorded at {life_end.ended_at.isoformat()}")


@rul_app.command("ends")
def ends(ctx: typer.Context, asset: Annotated[str | None, typer.Argument()] = None, as_json: AsJson = False) -> None:
    """Recorded failures and replacements: the run-to-failure histories models learn from."""
    found = _pitstop(ctx).prognostics.store.life_ends(asset)
    if as_json:
        emit_json([e.as_dict() for e in found])
        return
    table(
        ("asset", "ended at", "kind", "code", "source", "ref"),
        ((e.asset, e.ended_at, "failure" if e.failed else "replacement", e.code, e.source, e.ref) for e in found),
        empty=f"no failures or replacements recorded{f' for {asset}' if asset else ''}",
    )


@rul_app.command("calibration")
def calibration(
    ctx: typer.Context, asset: Annotated[str | None, typer.Argument()] = None, as_json: AsJson = False
) -> None:
    """How predictions turned out when their work orders closed: coverage, early and late errors."""
    cal = _pitstop(ctx).prognostics.calibration(asset)
    if as_json:
        emit_json(cal)
        return
    if not cal["outcomes"]:
        say(
            f"no outcomes yet{f' for {asset}' if asset else ''}: a prediction is scored when the work order "
            "it opened closes (`pitstop wo close ID --found ...`)"
        )
        return
    fields(_calibration_fields(cal), title=f"calibration{f' of {asset}' if asset else ''}")
    table(
        ("asset", "work order", "finding", "median h", "interval h", "observed h", "error h", "covered"),
        (_outcome_row(o) for o in cal["recent"]),
        empty="no recent outcomes",
        title="recent outcomes",
    )


def _calibration_fields(cal: dict[str, Any]) -> list[tuple[str, Any]]:
    coverage = cal["interval_coverage"]
    return [
        ("outcomes", cal["outcomes"]),
        ("findings", cal["findings"]),
        ("failures", cal["failures"]),
        ("interval coverage", "no failures yet" if coverage is None else f"{coverage:.0%}"),
        ("nominal coverage", [f"{c:.0%}" for c in cal["nominal_coverage"]] or "-"),
        ("repaired after the upper bound", cal["censored_misses"]),
        ("late / early failures", f"{cal['late']} / {cal['early']}"),
        ("mean error h", "no failures yet" if cal["mean_error_h"] is None else cal["mean_error_h"]),
        ("mean absolute error h", "no failures yet" if cal["mean_abs_error_h"] is None else cal["mean_abs_error_h"]),
    ]


def _outcome_row(o: dict[str, Any]) -> tuple[Any, ...]:
    unknown = "not known"  # repaired before it broke: the true life is not known
    return (
        o["asset"],
        o["work_order_id"],
        o["finding"],
        f"{o['median_h']:.0f}",
        f"{o['lower_h']:.0f}–{o['upper_h']:.0f}",
        unknown if o["observed_h"] is None else f"{o['observed_h']:.0f}",
        unknown if o["error_h"] is None else f"{o['error_h']:+.0f}",
        "not known" if o["covered"] is None else o["covered"],
    )
