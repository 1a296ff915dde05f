"""`pitstop rul show | run | end | ends | calibration`: remaining useful life from the shell."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from pitstop.errors import InvalidInput

if TYPE_CHECKING:
    from pitstop.app import Pitstop

rul_app = typer.Typer(
    help="Remaining useful life: estimates with intervals, ends of life, calibration.", no_args_is_help=True
)
out = Console()
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON.")]


def _pitstop(ctx: typer.Context) -> Pitstop:
    pitstop: Pitstop = ctx.obj.pitstop()
    return pitstop


def _json(data: Any) -> None:
    out.print_json(json.dumps(data, default=str))


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
        _json(summary)
        return
    latest = summary["latest"]
    if latest is None:
        out.print(f"{asset}: no estimate yet (too little history, or `pitstop rul run` has not run)")
        return
    out.print(
        f"[bold]{asset}[/]: {latest['median_h']:.0f} h left, {latest['coverage']:.0%} interval "
        f"{latest['lower_h']:.0f}–{latest['upper_h']:.0f} h (at {latest['at']}, health {latest['health']:.2f}"
        f" of {latest['evidence']['failure_level']} at failure)"
    )
    table = Table("at", "lower h", "median h", "upper h", title=f"last {min(len(summary['curve']), 10)} estimates")
    for point in summary["curve"][-10:]:
        table.add_row(point["at"], f"{point['lower_h']:.0f}", f"{point['median_h']:.0f}", f"{point['upper_h']:.0f}")
    out.print(table)
    order = summary["work_order"]
    if order is not None:
        out.print(
            f"work order {order['id']} ({order['state']}), due {order['due_at']}, window {order['window_name'] or '-'}"
        )
    cal = summary["calibration"]
    if cal["outcomes"]:
        out.print(f"calibration: {cal['outcomes']} outcome(s), interval coverage {cal['interval_coverage']}")


@rul_app.command("run")
def run(
    ctx: typer.Context,
    asset: Annotated[str | None, typer.Option(help="Only this asset.")] = None,
    as_json: AsJson = False,
) -> None:
    """Estimate now (what the scheduler does every interval): store, open incidents and work orders."""
    estimates = _pitstop(ctx).prognostics.run(asset=asset)
    if as_json:
        _json([e.as_dict() for e in estimates])
        return
    if not estimates:
        out.print("no estimates: no asset has enough history of its health sensor yet")
    for e in estimates:
        out.print(f"{e.asset}: {e.median_h:.0f} h ({e.lower_h:.0f}–{e.upper_h:.0f} h)")


def _when(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidInput(f"{text[:40]!r} is not an ISO date or date and time") from None
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


@rul_app.command("end")
def end(
    ctx: typer.Context,
    asset: str,
    at: Annotated[str, typer.Option(help="When it failed or was replaced (ISO; UTC if no zone).")],
    code: Annotated[str, typer.Option(help="Failure mode, e.g. bearing_wear.")],
    failed: Annotated[bool, typer.Option("--failed/--replaced", help="Broke down, or replaced before it did.")] = True,
    note: Annotated[str, typer.Option(help="What happened.")] = "",
) -> None:
    """Record a failure or a replacement: the asset's history ends there and a new life starts."""
    life_end = _pitstop(ctx).prognostics.record_life_end(
        asset, _when(at), failed=failed, code=code, source="cli", note=note
    )
    out.print(f"{asset}: {'failure' if life_end.failed else 'replacement'} recorded at {life_end.ended_at.isoformat()}")


@rul_app.command("ends")
def ends(ctx: typer.Context, asset: Annotated[str | None, typer.Argument()] = None, as_json: AsJson = False) -> None:
    """Recorded failures and replacements: the run-to-failure histories models learn from."""
    found = _pitstop(ctx).prognostics.store.life_ends(asset)
    if as_json:
        _json([e.as_dict() for e in found])
        return
    table = Table("asset", "ended at", "kind", "code", "source", "ref")
    for e in found:
        table.add_row(
            e.asset, e.ended_at.isoformat(), "failure" if e.failed else "replacement", e.code, e.source, e.ref
        )
    out.print(table)


@rul_app.command("calibration")
def calibration(
    ctx: typer.Context, asset: Annotated[str | None, typer.Argument()] = None, as_json: AsJson = False
) -> None:
    """How predictions turned out when their work orders closed: coverage, early and late errors."""
    cal = _pitstop(ctx).prognostics.calibration(asset)
    if as_json:
        _json(cal)
        return
    out.print(
        f"{cal['outcomes']} outcome(s) {cal['findings']}; interval coverage {cal['interval_coverage']} "
        f"over {cal['failures']} failure(s) (nominal {cal['nominal_coverage']}), "
        f"{cal['censored_misses']} repaired after the upper bound; failures: "
        f"{cal['late']} late, {cal['early']} early, mean error {cal['mean_error_h']} h"
    )
