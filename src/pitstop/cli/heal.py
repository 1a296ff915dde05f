"""`pitstop heal --plan | run | list | show | approve | reject | reset | kpis`: self-healing from the shell."""

from __future__ import annotations

import getpass
import json
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

if TYPE_CHECKING:
    from pitstop.app import Pitstop

heal_app = typer.Typer(
    help="Self-healing: what it would do, what it did, approvals and circuit breakers.", invoke_without_command=True
)
out = Console()

AsJson = Annotated[bool, typer.Option("--json", help="Print JSON.")]
Actor = Annotated[str | None, typer.Option(help="Who decides (default cli:<user>).")]


def _pitstop(ctx: typer.Context) -> Pitstop:
    pitstop: Pitstop = ctx.obj.pitstop()
    return pitstop


def _actor(given: str | None) -> str:
    return given or f"cli:{getpass.getuser()}"


@heal_app.callback()
def heal(
    ctx: typer.Context,
    plan: Annotated[bool, typer.Option("--plan", help="Show what a pass would do now, without doing it.")] = False,
    as_json: AsJson = False,
) -> None:
    """Self-healing. `pitstop heal --plan` shows what it would do now and changes nothing."""
    if ctx.invoked_subcommand is not None:
        return
    if not plan:
        out.print(ctx.get_help())
        raise typer.Exit()
    previews = _pitstop(ctx).remediation.preview()
    if as_json:
        out.print_json(json.dumps([p.as_dict() for p in previews]))
        return
    if not previews:
        out.print("no active incident has a remediation rule")
        return
    table = Table("incident", "action", "decision", "reason", "steps")
    for p in previews:
        steps = "\n".join(p.plan.steps) if p.plan else ""
        table.add_row(p.incident.key, p.action, p.decision, p.reason, steps)
    out.print(table)


@heal_app.command("run")
def heal_run(ctx: typer.Context, as_json: AsJson = False) -> None:
    """Run one pass now over the active incidents (what the scheduler does every interval)."""
    pitstop = _pitstop(ctx)
    rows = [pitstop.remediation.store.get(rid) for rid in pitstop.remediation.run_pass()]
    if as_json:
        out.print_json(json.dumps([r.as_dict() for r in rows]))
        return
    for r in rows:
        out.print(f"{r.id} {r.action} {r.incident_key}: {r.state} {r.result}")
    if not rows:
        out.print("nothing to do")


@heal_app.command("list")
def heal_list(
    ctx: typer.Context,
    state: Annotated[str | None, typer.Option(help="awaiting_approval, healed, failed, ...")] = None,
    limit: int = 50,
    as_json: AsJson = False,
) -> None:
    """Remediations, newest first, and the open circuit breakers."""
    engine = _pitstop(ctx).remediation
    rows = engine.store.list(state=state, limit=limit)
    breakers = engine.store.breakers()
    if as_json:
        out.print_json(
            json.dumps({"remediations": [r.as_dict() for r in rows], "breakers": [b.as_dict() for b in breakers]})
        )
        return
    table = Table("id", "state", "action", "incident", "created", "result")
    for r in rows:
        table.add_row(
            str(r.id), r.state, r.action, r.incident_key, r.created_at.isoformat(timespec="seconds"), r.result[:80]
        )
    out.print(table)
    for b in breakers:
        out.print(
            f"[red]breaker open[/] {b.action} on {b.target} since {b.opened_at:%Y-%m-%d %H:%M}: reset with "
            f"`pitstop heal reset {b.target}`"
        )


@heal_app.command("show")
def heal_show(ctx: typer.Context, remediation_id: int, as_json: AsJson = False) -> None:
    """One remediation with every step."""
    engine = _pitstop(ctx).remediation
    r = engine.store.get(remediation_id)
    steps = engine.store.steps(r.id)
    if as_json:
        out.print_json(json.dumps(r.as_dict() | {"steps": [s.as_dict() for s in steps]}, default=str))
        return
    out.print(f"{r.id} {r.action} on {r.target} for {r.incident_key}: {r.state}")
    for line in r.plan.steps:
        out.print(f"  plan: {line}")
    for s in steps:
        mark = "ok" if s.ok else "FAILED"
        out.print(f"  {s.at:%H:%M:%S} {s.step} {mark} ({s.duration_s:.2f} s): {s.detail[:200]}")


@heal_app.command("approve")
def heal_approve(ctx: typer.Context, remediation_id: int, actor: Actor = None, reason: str = "approved") -> None:
    """Approve a remediation awaiting approval; the next pass applies it."""
    r = _pitstop(ctx).remediation.approve(remediation_id, actor=_actor(actor), reason=reason)
    out.print(f"remediation {r.id} ({r.action} on {r.target}): {r.state}")


@heal_app.command("reject")
def heal_reject(ctx: typer.Context, remediation_id: int, actor: Actor = None, reason: str = "rejected") -> None:
    """Reject a remediation awaiting approval; it is not tried again for this incident."""
    r = _pitstop(ctx).remediation.reject(remediation_id, actor=_actor(actor), reason=reason)
    out.print(f"remediation {r.id} ({r.action} on {r.target}): {r.state}")


@heal_app.command("reset")
def heal_reset(
    ctx: typer.Context,
    target: str,
    action: Annotated[str | None, typer.Option(help="Only this action's breaker.")] = None,
    actor: Actor = None,
) -> None:
    """Close the circuit breaker(s) of a target: self-healing may try it again."""
    closed = _pitstop(ctx).remediation.reset(target, actor=_actor(actor), action=action)
    for b in closed:
        out.print(f"reset {b.action} on {b.target} (open since {b.opened_at:%Y-%m-%d %H:%M})")


@heal_app.command("kpis")
def heal_kpis(ctx: typer.Context) -> None:
    """Self-healing success rate and MTTR per action and per target (JSON)."""
    out.print_json(json.dumps(_pitstop(ctx).remediation.kpis()))
