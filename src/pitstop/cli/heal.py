"""`pitstop heal --plan | run | list | show | approve | reject | reset | kpis`: self-healing from the shell."""

# No `from __future__ import annotations` here: see pitstop/cli/__init__.py (start time).
import getpass
from typing import TYPE_CHECKING, Annotated

import typer

from pitstop.cli.output import AsJson, document, emit_json, fields, say, table

if TYPE_CHECKING:
    from pitstop.app import Pitstop

heal_app = typer.Typer(
    help="Self-healing: what it would do, what it did, approvals and circuit breakers.", invoke_without_command=True
)

Actor = Annotated[str | None, typer.Option(help="Who decides (default cli:<user>).")]


def _pitstop(ctx: typer.Context) -> "Pitstop":
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
        typer.echo(ctx.get_help())
        raise typer.Exit()
    previews = _pitstop(ctx).remediation.preview()
    if as_json:
        emit_json([p.as_dict() for p in previews])
        return
    table(
        ("incident", "action", "decision", "reason", "steps"),
        ((p.incident.key, p.action, p.decision, p.reason, "\n".join(p.plan.steps) if p.plan else "") for p in previews),
        empty="no active incident has a remediation rule",
    )


@heal_app.command("run")
def heal_run(ctx: typer.Context, as_json: AsJson = False) -> None:
    """Run one pass now over the active incidents (what the scheduler does every interval)."""
    pitstop = _pitstop(ctx)
    rows = [pitstop.remediation.store.get(rid) for rid in pitstop.remediation.run_pass()]
    if as_json:
        emit_json([r.as_dict() for r in rows])
        return
    table(
        ("id", "action", "incident", "state", "result"),
        ((r.id, r.action, r.incident_key, r.state, r.result) for r in rows),
        empty="nothing to do: no active incident has a remediation due",
    )


@heal_app.command("list")
def heal_list(
    ctx: typer.Context,
    state: Annotated[str | None, typer.Option(help="awaiting_approval, healed, failed, ...")] = None,
    limit: Annotated[int, typer.Option(min=1, max=10_000, help="At most this many.")] = 50,
    as_json: AsJson = False,
) -> None:
    """Remediations, newest first, and the open circuit breakers."""
    engine = _pitstop(ctx).remediation
    rows = engine.store.list(state=state, limit=limit)
    breakers = engine.store.breakers()
    if as_json:
        emit_json({"remediations": [r.as_dict() for r in rows], "breakers": [b.as_dict() for b in breakers]})
        return
    table(
        ("id", "state", "action", "incident", "created", "result"),
        ((r.id, r.state, r.action, r.incident_key, r.created_at, r.result[:80]) for r in rows),
        empty=f"no remediations{f' in state {state}' if state else ''}",
    )
    for b in breakers:
        say(
            f"breaker open: {b.action} on {b.target} since {b.opened_at:%Y-%m-%d %H:%M}: reset with "
            f"`pitstop heal reset {b.target}`"
        )


@heal_app.command("show")
def heal_show(ctx: typer.Context, remediation_id: int, as_json: AsJson = False) -> None:
    """One remediation with every step."""
    engine = _pitstop(ctx).remediation
    r = engine.store.get(remediation_id)
    steps = engine.store.steps(r.id)
    if as_json:
        emit_json(r.as_dict() | {"steps": [s.as_dict() for s in steps]})
        return
    fields(
        [
            ("id", r.id),
            ("action", r.action),
            ("target", r.target),
            ("incident", r.incident_key),
            ("state", r.state),
            ("created", r.created_at),
            ("result", r.result),
            ("plan", "\n".join(r.plan.steps)),
        ],
        title=f"remediation {r.id}",
    )
    table(
        ("at", "step", "result", "seconds", "detail"),
        (
            (f"{s.at:%H:%M:%S}", s.step, "ok" if s.ok else "FAILED", f"{s.duration_s:.2f}", s.detail[:200])
            for s in steps
        ),
        empty="no steps yet",
        title="steps",
    )


@heal_app.command("approve")
def heal_approve(
    ctx: typer.Context, remediation_id: int, actor: Actor = None, reason: str = "approved", as_json: AsJson = False
) -> None:
    """Approve a remediation awaiting approval; the next pass applies it."""
    r = _pitstop(ctx).remediation.approve(remediation_id, actor=_actor(actor), reason=reason)
    if as_json:
        emit_json(r.as_dict())
        return
    say(f"remediation {r.id} ({r.action} on {r.target}): {r.state}")


@heal_app.command("reject")
def heal_reject(
    ctx: typer.Context, remediation_id: int, actor: Actor = None, reason: str = "rejected", as_json: AsJson = False
) -> None:
    """Reject a remediation awaiting approval; it is not tried again for this incident."""
    r = _pitstop(ctx).remediation.reject(remediation_id, actor=_actor(actor), reason=reason)
    if as_json:
        emit_json(r.as_dict())
        return
    say(f"remediation {r.id} ({r.action} on {r.target}): {r.state}")


@heal_app.command("reset")
def heal_reset(
    ctx: typer.Context,
    target: str,
    action: Annotated[str | None, typer.Option(help="Only this action's breaker.")] = None,
    actor: Actor = None,
    as_json: AsJson = False,
) -> None:
    """Close the circuit breaker(s) of a target: self-healing may try it again."""
    closed = _pitstop(ctx).remediation.reset(target, actor=_actor(actor), action=action)
    if as_json:
        emit_json([b.as_dict() for b in closed])
        return
    for b in closed:
        say(f"reset {b.action} on {b.target} (open since {b.opened_at:%Y-%m-%d %H:%M})")


@heal_app.command("kpis")
def heal_kpis(ctx: typer.Context, as_json: AsJson = False) -> None:
    """Self-healing success rate and MTTR per action and per target."""
    kpis = _pitstop(ctx).remediation.kpis()
    if as_json:
        emit_json(kpis)
        return
    if not any(kpis.get(k) for k in ("by_action", "by_target")):
        say("no remediations yet: nothing to measure")
        return
    document(kpis, title="self-healing")
