"""`pitstop procedures|workorders (wo)|plan|log|kb|report|emergency`: maintenance from the command line."""

# No `from __future__ import annotations` here: see pitstop/cli/__init__.py (start time).
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import typer

from pitstop.cli.output import AsJson, emit_json, fields, say, table
from pitstop.cli.times import EXAMPLES, optional_time
from pitstop.core.types import Severity
from pitstop.errors import InvalidInput

if TYPE_CHECKING:
    from pitstop.app import Pitstop
    from pitstop.maintenance.service import Maintenance

procedures_app = typer.Typer(
    help="Procedures as code: list, show, run, answer checklist items, enable schedules.", no_args_is_help=True
)
workorders_app = typer.Typer(
    help="Work orders: list, open, start, close, verify, cancel, assign.", no_args_is_help=True
)
plan_app = typer.Typer(help="Place work orders into maintenance windows (and set window capacity).")
log_app = typer.Typer(help="The maintenance log: list, filter, export, append.", no_args_is_help=True)
kb_app = typer.Typer(help="The knowledge base: search, show, lessons learned.", no_args_is_help=True)
report_app = typer.Typer(help="Maintenance reports.", no_args_is_help=True)
emergency_app = typer.Typer(
    help="Emergencies: declare with a runbook, timeline, post-incident review.", no_args_is_help=True
)

By = Annotated[str, typer.Option("--by", help="Who does it (recorded).")]


def _m(ctx: typer.Context) -> "Maintenance":
    pitstop: Pitstop = ctx.obj.pitstop()
    return pitstop.maintenance


def _when(m: "Maintenance", text: str | None, option: str, bare: Literal["ago", "ahead"] = "ago") -> datetime | None:
    return optional_time(text, now=m.clock.now(), option=option, bare=bare)


# -- procedures --------------------------------------------------------------------------------


@procedures_app.command("list")
def procedures_list(ctx: typer.Context, as_json: AsJson = False) -> None:
    """Every procedure (shipped and the site's own), with its steps and suggested schedule."""
    m = _m(ctx)
    rows = []
    for name, pf in sorted(m.catalog.files().items()):
        spec = pf.procedure.schedule
        when = "" if spec is None else (spec.cron or f"every {spec.every}") + f" ({spec.mode})"
        rows.append(
            {
                "name": name,
                "title": pf.procedure.title,
                "origin": pf.origin,
                "steps": len(pf.procedure.steps),
                "manual": len(pf.procedure.manual_steps),
                "schedule": when,
                "hash": pf.content_hash[:12],
            }
        )
    if as_json:
        emit_json(rows)
        return
    columns = ("name", "title", "origin", "steps", "manual", "schedule", "hash")
    table(columns, ([r[k] for k in columns] for r in rows), empty="no procedures")


@procedures_app.command("show")
def procedures_show(ctx: typer.Context, name: str, as_json: AsJson = False) -> None:
    """One procedure's steps and its recorded versions."""
    m = _m(ctx)
    pf = m.catalog.get(name)
    if as_json:
        emit_json({**pf.procedure.model_dump(), "content_hash": pf.content_hash, "versions": m.runner.versions(name)})
        return
    rows = []
    for step in pf.procedure.steps:
        what = getattr(step, "instruction", None) or getattr(step, "check", None) or getattr(step, "action", None)
        what = what or " ".join(getattr(step, "command", []))
        rows.append((step.id, step.kind, step.title, step.within, what))
    table(
        ("step", "kind", "title", "within", "what"),
        rows,
        empty="no steps",
        title=f"{pf.procedure.title} ({name}, {pf.origin}, {pf.content_hash[:12]})",
    )


@procedures_app.command("print")
def procedures_print(
    ctx: typer.Context,
    name: str,
    fmt: Annotated[str | None, typer.Option("--format", help="html or pdf (default: --output's, or html).")] = None,
    output: Annotated[
        Path | None, typer.Option(help="File to write (default: <data_dir>/printouts/NAME-vN.html or .pdf).")
    ] = None,
    as_json: AsJson = False,
) -> None:
    """A printable copy: version, schedule, contacts, numbered steps with limits, time limits and boxes to fill in."""
    from pitstop.maintenance import printable
    from pitstop.maintenance.common import name as checked_name

    pitstop: Pitstop = ctx.obj.pitstop()
    m = pitstop.maintenance
    pf = m.catalog.get(checked_name("procedure", name))
    kind = printable.output_format(fmt, output)
    version = printable.version_of(pf, m.runner.versions(pf.procedure.name))
    page = printable.render(pf, version=version, oncall=pitstop.settings.oncall, now=m.clock.now())
    path = output or pitstop.settings.data_dir / "printouts" / f"{pf.procedure.name}-v{version.number}.{kind}"
    written = printable.write(page, path, kind)
    if as_json:
        emit_json({"path": str(written), "version": version.label})
        return
    say(f"wrote {written} ({version.label})")


def _contacts(ctx: typer.Context, run: Any) -> dict[str, Any]:
    """The contact list a run of this procedure shows (runbooks, `contacts = true`); {} otherwise."""
    from pitstop.maintenance.printable import run_contacts

    pitstop: Pitstop = ctx.obj.pitstop()
    m = pitstop.maintenance
    try:
        proc = m.runner.procedure_of(run)
    except InvalidInput:  # a recorded version today's model no longer reads
        return {}
    return run_contacts(proc, pitstop.settings.oncall, m.clock.now())


def _print_contacts(contacts: dict[str, Any]) -> None:
    if contacts.get("contacts_note"):
        say(f"contacts: {contacts['contacts_note']}")
    for c in contacts.get("contacts", []):
        reach = ", ".join(x for x in (c["phone"], c["email"]) if x) or "no phone or email"
        say(f"  contact {c['name']} ({'; '.join(c['roles'])}): {reach}")


def _answers(values: list[str] | None, passed: list[str] | None, failed: list[str] | None) -> dict[str, Any]:
    from pitstop.maintenance.runs import Answer

    answers: dict[str, Answer] = {}
    for item in values or []:
        step, sep, raw = item.partition("=")
        if not sep:
            raise InvalidInput(f"--value {item[:40]!r} is not step=value")
        value: float | str
        try:
            value = float(raw)
        except ValueError:
            value = raw
        answers[step.strip()] = Answer(value=value)
    for step in passed or []:
        answers[step] = Answer(passed=True)
    for step in failed or []:
        answers[step] = Answer(passed=False)
    return answers


def _print_run(run: Any, as_json: bool, contacts: dict[str, Any] | None = None) -> None:
    if as_json:
        emit_json({**run.as_dict(), **(contacts or {})})
        return
    table(
        ("step", "status", "value", "overtime", "by", "output"),
        (
            (s.id, s.status, s.value, s.overtime, s.by, s.output.splitlines()[0] if s.output else None)
            for s in run.steps
        ),
        empty="no steps",
        title=f"run {run.id}: {run.procedure} v{run.version} on {run.asset or 'system'}: {run.state}",
    )
    _print_contacts(contacts or {})


@procedures_app.command("run")
def procedures_run(
    ctx: typer.Context,
    name: str,
    asset: Annotated[str, typer.Option(help="The asset it runs on (empty: the system).")] = "",
    value: Annotated[list[str] | None, typer.Option("--value", help="step=value for a checklist item.")] = None,
    passed: Annotated[list[str] | None, typer.Option("--pass", help="A checklist item that passed.")] = None,
    failed: Annotated[list[str] | None, typer.Option("--fail", help="A checklist item that failed.")] = None,
    by: By = "cli",
    as_json: AsJson = False,
) -> None:
    """Run a procedure: automated steps now, checklist items from --value/--pass/--fail or later with `answer`."""
    run = _m(ctx).runner.start(name, actor=by, asset=asset, answers=_answers(value, passed, failed))
    _print_run(run, as_json, _contacts(ctx, run))


@procedures_app.command("answer")
def procedures_answer(
    ctx: typer.Context,
    run_id: int,
    step: str,
    value: Annotated[str | None, typer.Option(help="The value read (number or text).")] = None,
    ok: Annotated[bool | None, typer.Option("--pass/--fail", help="Whether it passed.")] = None,
    note: Annotated[str, typer.Option(help="A note.")] = "",
    attachment: Annotated[str | None, typer.Option(help="Path of a photo or file.")] = None,
    by: By = "cli",
    as_json: AsJson = False,
) -> None:
    """Record the result of one checklist item of a running procedure."""
    from pitstop.maintenance.runs import Answer

    parsed: float | str | None = value
    if value is not None:
        try:
            parsed = float(value)
        except ValueError:
            parsed = value
    run = _m(ctx).runner.answer(run_id, step, Answer(parsed, ok, note, attachment), actor=by)
    _print_run(run, as_json, _contacts(ctx, run))


@procedures_app.command("enable")
def procedures_enable(
    ctx: typer.Context,
    name: str,
    asset: Annotated[str, typer.Option(help="For one asset.")] = "",
    site: Annotated[str, typer.Option(help="For one site.")] = "",
    by: By = "cli",
    as_json: AsJson = False,
) -> None:
    """Enable the schedule the procedure suggests."""
    s = _m(ctx).schedules.enable(name, asset=asset, site=site, actor=by)
    if as_json:
        emit_json(s.as_dict())
        return
    say(f"schedule {s.name}: {s.rule}")


@procedures_app.command("schedules")
def procedures_schedules(ctx: typer.Context, as_json: AsJson = False) -> None:
    """Every schedule with its current occurrence: upcoming, due, overdue."""
    m = _m(ctx)
    now = m.clock.now()
    rows = []
    for s in m.schedules.schedules():
        due = m.schedules.open_due(s.id)
        rows.append({**s.as_dict(), "current": due.as_dict(now) if due else None})
    if as_json:
        emit_json(rows)
        return
    table(
        ("schedule", "procedure", "asset", "kind", "status", "due", "deadline"),
        (
            (
                r["name"],
                r["procedure"],
                r["asset"],
                r["kind"],
                (r["current"] or {}).get("status", "nothing open"),
                (r["current"] or {}).get("due_at"),
                (r["current"] or {}).get("deadline"),
            )
            for r in rows
        ),
        empty="no schedules: `pitstop procedures enable NAME` enables one",
    )


@procedures_app.command("tick")
def procedures_tick(ctx: typer.Context, as_json: AsJson = False) -> None:
    """Bring schedules up to now (what `pitstop serve` does every few minutes)."""
    lines = list(_m(ctx).tick())
    if as_json:
        emit_json(lines)
        return
    for line in lines:
        say(line)
    if not lines:
        say("nothing was due")


# -- work orders -------------------------------------------------------------------------------


def _print_orders(orders: list[Any], as_json: bool, empty: str) -> None:
    if as_json:
        emit_json([o.as_dict() for o in orders])
        return
    table(
        ("id", "asset", "key", "state", "prio", "due", "est h", "window", "title"),
        (
            (
                o.id,
                o.asset or "system",
                o.key,
                o.state,
                o.priority,
                o.due_at.strftime("%Y-%m-%d %H:%M") if o.due_at else None,
                f"{o.estimated_h:g}",
                o.window_name,
                o.title,
            )
            for o in orders
        ),
        empty=empty,
    )


def _order_done(order: Any, as_json: bool, words: str) -> None:
    """What a work-order move prints: the order as JSON, or one line."""
    if as_json:
        emit_json(order.as_dict())
    else:
        say(words)


@workorders_app.command("list")
def wo_list(
    ctx: typer.Context,
    all_: Annotated[bool, typer.Option("--all", help="Also verified and cancelled orders.")] = False,
    asset: Annotated[str | None, typer.Option(help="Only this asset.")] = None,
    as_json: AsJson = False,
) -> None:
    """Active work orders, highest priority first."""
    orders = _m(ctx).orders.list(active=not all_, asset=asset)
    what = f"{'' if all_ else 'active '}work orders{f' for {asset}' if asset else ''}"
    _print_orders(orders, as_json, f"no {what}")


@workorders_app.command("show")
def wo_show(ctx: typer.Context, order_id: int, as_json: AsJson = False) -> None:
    """One work order."""
    data = _m(ctx).orders.get(order_id).as_dict()
    if as_json:
        emit_json(data)
        return
    fields(data, title=f"work order {order_id}")


@workorders_app.command("open")
def wo_open(
    ctx: typer.Context,
    key: Annotated[str, typer.Option(help="What it is about, e.g. inspect.belt (deduplicates with the asset).")],
    title: Annotated[str, typer.Option(help="One line for the technician.")],
    asset: Annotated[str, typer.Option(help="The asset (empty: the system).")] = "",
    severity: Annotated[Severity, typer.Option(help="info, warning, critical or emergency.")] = Severity.WARNING,
    hours: Annotated[float | None, typer.Option(help="Estimated hours.")] = None,
    due: Annotated[
        str | None, typer.Option(help=f"Due: a date (UTC), ISO 8601 with offset, or from now: {EXAMPLES}.")
    ] = None,
    detail: Annotated[str, typer.Option(help="Details.")] = "",
    by: By = "cli",
    as_json: AsJson = False,
) -> None:
    """Open a work order by hand (or update the active one for the same asset and key)."""
    m = _m(ctx)
    order, created = m.orders.open_for(
        "manual",
        asset,
        key,
        title=title,
        severity=severity,
        detail=detail,
        due_at=_when(m, due, "--due", bare="ahead"),
        estimated_h=hours,
        actor=by,
    )
    _order_done(
        order, as_json, f"{'opened' if created else 'updated'} work order {order.id} (priority {order.priority})"
    )


@workorders_app.command("start")
def wo_start(ctx: typer.Context, order_id: int, by: By = "cli", as_json: AsJson = False) -> None:
    """Work begins."""
    order = _m(ctx).orders.start(order_id, actor=by)
    _order_done(order, as_json, f"work order {order_id}: {order.state.value}")


@workorders_app.command("close")
def wo_close(
    ctx: typer.Context,
    order_id: int,
    hours: Annotated[float | None, typer.Option(help="Actual hours.")] = None,
    part: Annotated[list[str] | None, typer.Option("--part", help="A part used (repeatable).")] = None,
    note: Annotated[str, typer.Option(help="What was done.")] = "",
    found: Annotated[
        str | None,
        typer.Option(help="What was found: failed, no_fault, or the failure mode repaired (e.g. bearing_wear)."),
    ] = None,
    by: By = "cli",
    as_json: AsJson = False,
) -> None:
    """Mark done; the condition that opened it is checked again (verified, or back to in progress)."""
    order = _m(ctx).orders.close(order_id, actor=by, actual_h=hours, parts=part or [], note=note, failure_code=found)
    _order_done(order, as_json, f"work order {order_id}: {order.state.value}")


@workorders_app.command("verify")
def wo_verify(
    ctx: typer.Context,
    order_id: int,
    confirm: Annotated[bool, typer.Option("--confirm", help="Confirm by hand where pitstop cannot check.")] = False,
    by: By = "cli",
    as_json: AsJson = False,
) -> None:
    """Check a done order again (or confirm it by hand)."""
    order = _m(ctx).orders.verify(order_id, actor=by, confirmed=confirm)
    _order_done(order, as_json, f"work order {order_id}: {order.state.value}")


@workorders_app.command("cancel")
def wo_cancel(
    ctx: typer.Context,
    order_id: int,
    reason: Annotated[str, typer.Option(help="Why.")],
    by: By = "cli",
    as_json: AsJson = False,
) -> None:
    """Cancel an order."""
    order = _m(ctx).orders.cancel(order_id, actor=by, reason=reason)
    _order_done(order, as_json, f"work order {order_id}: {order.state.value}")


@workorders_app.command("assign")
def wo_assign(ctx: typer.Context, order_id: int, assignee: str, by: By = "cli", as_json: AsJson = False) -> None:
    """Assign an order to a person."""
    order = _m(ctx).orders.assign(order_id, assignee=assignee, actor=by)
    _order_done(order, as_json, f"work order {order_id}: assigned to {order.assignee}")


# -- plan --------------------------------------------------------------------------------------


@plan_app.callback(invoke_without_command=True)
def plan(
    ctx: typer.Context,
    horizon: Annotated[str, typer.Option(help="How far ahead, e.g. 14d or 4w.")] = "14d",
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show the plan without saving it.")] = False,
    as_json: AsJson = False,
) -> None:
    """Place open work orders into maintenance-window occurrences by priority, due date and capacity."""
    if ctx.invoked_subcommand is not None:
        return
    from pitstop.maintenance.common import duration

    result = _m(ctx).planner.plan(duration(horizon, "horizon"), apply=not dry_run)
    if as_json:
        emit_json(result.as_dict())
        return
    data = result.as_dict()
    table(
        ("window", "start", "capacity h", "used h"),
        ((w["window"], w["start"], f"{w['capacity_h']:g}", f"{w['used_h']:g}") for w in data["windows"]),
        empty=f"no maintenance-window slots within {horizon}: `pitstop windows add` makes windows",
    )
    late = sum(p.late for p in result.placements)
    say(f"placed {len(result.placements)} order(s) ({late} late); could not place {len(result.unplaced)}")
    for u in result.unplaced:
        say(f"  work order {u.order_id}: {u.reason}")


@plan_app.command("capacity")
def plan_capacity(
    ctx: typer.Context,
    window: str,
    hours: Annotated[float, typer.Argument(help="Technician hours each occurrence offers.")],
    site: Annotated[list[str] | None, typer.Option(help="Serves only these sites (repeatable).")] = None,
    asset: Annotated[list[str] | None, typer.Option(help="Serves only these assets (repeatable).")] = None,
    fallback: Annotated[str, typer.Option(help="When missed: next, window:<name> or missed.")] = "next",
    max_fallbacks: Annotated[int, typer.Option(help="How many times to fall back.")] = 1,
    as_json: AsJson = False,
) -> None:
    """Set the capacity, scope and fallback of a maintenance window (`pitstop windows add` makes windows)."""
    cap = _m(ctx).capacities.set(
        window, hours, sites=site or [], assets=asset or [], fallback=fallback, max_fallbacks=max_fallbacks
    )
    if as_json:
        emit_json(cap.as_dict())
        return
    data = cap.as_dict()
    say(
        f"window {data['window']}: {data['capacity_h']:g} technician hours per slot, serves "
        f"{', '.join(data['sites'] + data['assets']) or 'every site'}; when missed: {data['fallback']} "
        f"(at most {data['max_fallbacks']} time(s))"
    )


# -- log ---------------------------------------------------------------------------------------


@log_app.command("list")
def log_list(
    ctx: typer.Context,
    asset: Annotated[str | None, typer.Option(help="Only this asset.")] = None,
    site: Annotated[str | None, typer.Option(help="Only this site.")] = None,
    kind: Annotated[str | None, typer.Option(help="Only this kind.")] = None,
    since: Annotated[str | None, typer.Option(help=f"From: a date (UTC), ISO 8601 with offset, or {EXAMPLES}.")] = None,
    until: Annotated[str | None, typer.Option(help="Until, exclusive, as --since.")] = None,
    contains: Annotated[str | None, typer.Option(help="Text in summary, issues or actions.")] = None,
    fmt: Annotated[str, typer.Option("--format", help="table, csv or json.")] = "table",
    output: Annotated[Path | None, typer.Option(help="Write to this file instead.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print machine-readable JSON (as --format json).")] = False,
) -> None:
    """The maintenance log, filtered; export as CSV or JSON."""
    from pitstop.maintenance.log import export

    m = _m(ctx)
    fmt = "json" if as_json else fmt
    entries = m.log.entries(
        asset=asset,
        site=site,
        kind=kind,
        since=_when(m, since, "--since"),
        until=_when(m, until, "--until"),
        contains=contains,
        limit=100_000,
    )
    if fmt in ("csv", "json"):
        text = export(entries, fmt)  # type: ignore[arg-type]
        if output is not None:
            output.write_text(text, encoding="utf-8")
            say(f"wrote {len(entries)} entries to {output}")
        else:
            print(text, end="" if text.endswith("\n") else "\n")
        return
    if fmt != "table":
        raise InvalidInput("--format is table, csv or json")
    table(
        ("time", "kind", "asset", "by", "summary", "result"),
        ((e.at.strftime("%Y-%m-%d %H:%M"), e.kind, e.asset or "system", e.actor, e.summary, e.result) for e in entries),
        empty="no log entries match",
    )


@log_app.command("add")
def log_add(
    ctx: typer.Context,
    kind: str,
    summary: str,
    asset: Annotated[str, typer.Option(help="The asset (empty: the system).")] = "",
    issues: Annotated[str, typer.Option(help="What was found.")] = "",
    actions: Annotated[str, typer.Option(help="What was done.")] = "",
    result: Annotated[str, typer.Option(help="The result.")] = "",
    evidence: Annotated[list[str] | None, typer.Option(help="An evidence link or path (repeatable).")] = None,
    by: By = "cli",
    as_json: AsJson = False,
) -> None:
    """Append an entry (it is never changed afterwards)."""
    entry = _m(ctx).log.append(
        kind, summary, actor=by, asset=asset, issues=issues, actions=actions, result=result, evidence=evidence or []
    )
    if as_json:
        emit_json(entry.as_dict())
        return
    say(f"log entry {entry.id}")


# -- kb ----------------------------------------------------------------------------------------


@kb_app.command("search")
def kb_search(ctx: typer.Context, query: str, limit: int = 10, as_json: AsJson = False) -> None:
    """Full-text search over the knowledge base."""
    hits = _m(ctx).kb.search(query, limit=limit)
    if as_json:
        emit_json([h.as_dict(body=False) for h in hits])
        return
    table(
        ("entry", "title", "issue keys"),
        ((h.slug, h.title, h.issue_keys) for h in hits),
        empty=f"no entries match {query!r}",
    )


@kb_app.command("list")
def kb_list(ctx: typer.Context, as_json: AsJson = False) -> None:
    """Every entry."""
    entries = _m(ctx).kb.entries()
    if as_json:
        emit_json([e.as_dict(body=False) for e in entries])
        return
    table(
        ("entry", "origin", "title", "issue keys"),
        ((e.slug, e.origin, e.title, e.issue_keys) for e in entries),
        empty="the knowledge base has no entries",
    )


@kb_app.command("show")
def kb_show(ctx: typer.Context, slug: str, as_json: AsJson = False) -> None:
    """One entry, as Markdown."""
    e = _m(ctx).kb.get(slug)
    if as_json:
        emit_json(e.as_dict())
        return
    keys, tags = ", ".join(e.issue_keys) or "none", ", ".join(e.tags) or "none"
    print(f"# {e.title}\n\nissue keys: {keys}; tags: {tags}\n\n{e.body}")


@kb_app.command("lesson")
def kb_lesson(ctx: typer.Context, incident_key: str, text: str, by: By = "cli", as_json: AsJson = False) -> None:
    """Record a lesson learned on an incident."""
    lesson = _m(ctx).kb.add_lesson(incident_key, text, author=by)
    if as_json:
        emit_json(lesson.as_dict())
        return
    say(f"lesson {lesson.id} recorded; `pitstop kb promote {lesson.id}` turns it into an entry")


@kb_app.command("promote")
def kb_promote(
    ctx: typer.Context,
    lesson_id: int,
    slug: Annotated[str | None, typer.Option(help="Add to this entry (default: a new one).")] = None,
    title: Annotated[str | None, typer.Option(help="Title of a new entry.")] = None,
    as_json: AsJson = False,
) -> None:
    """Turn a lesson into a knowledge base entry (new, or added to an existing one)."""
    entry = _m(ctx).kb.lesson_to_entry(lesson_id, slug=slug, title=title)
    if as_json:
        emit_json(entry.as_dict())
        return
    say(f"entry {entry.slug}: {entry.title}")


# -- report ------------------------------------------------------------------------------------


@report_app.command("monthly")
def report_monthly(
    ctx: typer.Context,
    site: Annotated[str | None, typer.Option(help="One site (default: all).")] = None,
    month: Annotated[str | None, typer.Option(help="YYYY-MM (default: this month).")] = None,
    output: Annotated[
        Path | None, typer.Option(help="Write only this file (.html or .pdf), not the archive or the log.")
    ] = None,
    send: Annotated[bool, typer.Option("--send", help="Also e-mail the PDF to \\[reports.email].")] = False,
    by: By = "cli",
    as_json: AsJson = False,
) -> None:
    """Compliance, MTTR, MTBF, backlog, self-healing and the month's log, archived as
    <data_dir>/reports/YYYY-MM.html and .pdf (a re-run replaces them) and recorded in the maintenance log."""
    from pitstop.maintenance import report
    from pitstop.maintenance.report_delivery import FAILED, ReportDelivery, ReportNotDelivered

    if output is not None and send:
        raise InvalidInput("--output writes one file and --send archives and e-mails the report: give one of them")
    pitstop: Pitstop = ctx.obj.pitstop()
    m = pitstop.maintenance
    month = month or m.clock.now().strftime("%Y-%m")
    if output is not None:
        page = report.monthly(m, month=month, site=site, predictions=pitstop.prognostics.calibration)
        written = report.write(page, output)
        if as_json:
            emit_json({"month": month, "path": str(written)})
            return
        say(f"wrote {written}")
        return
    settings = pitstop.settings
    reports = ReportDelivery(
        settings.reports, m, data_dir=settings.data_dir, predictions=pitstop.prognostics.calibration
    )
    done = reports.deliver(month, site=site, send=send, actor=by)
    if done.result == FAILED:
        raise ReportNotDelivered(f"report {month} not delivered: {done.detail} (log entry {done.entry.id})")
    if as_json:
        emit_json({"month": month, "html": str(done.html), "pdf": str(done.pdf), "recipients": list(done.recipients)})
        return
    mailed = f"; e-mailed to {', '.join(done.recipients)}" if done.recipients else ""
    say(f"archived {done.html} and {done.pdf}{mailed}")


# -- emergency ---------------------------------------------------------------------------------


@emergency_app.command("declare")
def emergency_declare(
    ctx: typer.Context,
    key: str,
    title: str,
    runbook: Annotated[str, typer.Option(help="The runbook procedure.")] = "emergency-restore",
    asset: Annotated[str, typer.Option(help="The asset (empty: the system).")] = "",
    by: By = "cli",
    as_json: AsJson = False,
) -> None:
    """Open an emergency incident, its work order and the timed runbook run."""
    em = _m(ctx).emergency.declare(key, title, actor=by, runbook=runbook, asset=asset)
    contacts = _contacts(ctx, em.run)
    if as_json:
        emit_json(
            {"incident": em.incident.as_dict(), "work_order": em.order.as_dict(), "run": em.run.as_dict(), **contacts}
        )
        return
    say(f"incident {em.incident.id}, work order {em.order.id}, runbook run {em.run.id} started")
    _print_contacts(contacts)


@emergency_app.command("timeline")
def emergency_timeline(ctx: typer.Context, key: str, as_json: AsJson = False) -> None:
    """Who did what, when."""
    rows = _m(ctx).emergency.timeline(key)
    if as_json:
        emit_json(rows)
        return
    table(
        ("at", "who", "what", "detail"),
        ((r["at"], r["who"], r["what"], r.get("detail")) for r in rows),
        empty=f"no timeline for {key}",
    )


@emergency_app.command("review")
def emergency_review(
    ctx: typer.Context,
    key: str,
    summary: Annotated[str, typer.Option(help="What happened.")],
    lessons: Annotated[str, typer.Option(help="Lessons learned.")],
    by: By = "cli",
    as_json: AsJson = False,
) -> None:
    """Record the post-incident review."""
    lesson = _m(ctx).emergency.review(key, summary=summary, lessons=lessons, author=by)
    if as_json:
        emit_json(lesson.as_dict())
        return
    say(f"review recorded as lesson {lesson.id}")


def register(app: typer.Typer) -> None:
    """Add the maintenance nouns to the `pitstop` command."""
    app.add_typer(procedures_app, name="procedures")
    app.add_typer(workorders_app, name="workorders")
    app.add_typer(workorders_app, name="wo", hidden=True)
    app.add_typer(plan_app, name="plan")
    app.add_typer(log_app, name="log")
    app.add_typer(kb_app, name="kb")
    app.add_typer(report_app, name="report")
    app.add_typer(emergency_app, name="emergency")
