"""`pitstop backup run|list|verify|drill|restore|prune`."""

# No `from __future__ import annotations` here: see pitstop/cli/__init__.py (start time).
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from pitstop.cli.output import AsJson, emit_json, err, say, table
from pitstop.errors import BackupError

if TYPE_CHECKING:
    from pitstop.app import Pitstop
    from pitstop.backup import BackupSet
    from pitstop.backup.offsite import OffsiteSet

backup_app = typer.Typer(
    help="Backups proven by restoring: run, list, verify, drill, restore, prune.", no_args_is_help=True
)


def _pitstop(ctx: typer.Context) -> "Pitstop":
    pitstop: Pitstop = ctx.obj.pitstop()
    return pitstop


def _mb(n: int) -> str:
    return f"{n / 1e6:.1f} MB"


def _set_dict(s: "BackupSet | OffsiteSet") -> dict[str, Any]:
    m = s.manifest
    return {
        "id": s.id,
        "reason": m.reason,
        "started_at": m.started_at.isoformat(),
        "finished_at": m.finished_at.isoformat(),
        "sources": m.source_names,
        "files": sum(len(src.files) for src in m.sources),
        "bytes": m.size,
        "stored_bytes": m.stored_size,
        "encrypted": m.encryption is not None,
        "path": s.location if hasattr(s, "location") else str(s.dir),  # off-site: its path or URL
    }


@backup_app.command("run")
def run(
    ctx: typer.Context,
    source: Annotated[list[str] | None, typer.Option(help="Only these sources (repeatable).")] = None,
    as_json: AsJson = False,
) -> None:
    """Back up every configured source into one new set (and its off-site copy)."""
    pitstop = _pitstop(ctx)
    only = None
    if source:
        sources = pitstop.backup.sources()
        unknown = [s for s in source if s not in sources]
        if unknown:
            raise BackupError(f"unknown source {', '.join(unknown)}; configured: {', '.join(sources)}")
        only = {name: sources[name] for name in source}
    backup_set = pitstop.backup.run(only=only)
    if as_json:
        emit_json(_set_dict(backup_set))
        return
    m = backup_set.manifest
    say(
        f"set {backup_set.id}: {', '.join(m.source_names)}; {_mb(m.size)} in, {_mb(m.stored_size)} stored "
        f"({backup_set.dir})"
    )


@backup_app.command("list")
def list_sets(
    ctx: typer.Context,
    offsite: Annotated[bool, typer.Option(help="List the sets in the off-site copy (read from there).")] = False,
    as_json: AsJson = False,
) -> None:
    """Complete sets, newest first."""
    sets = _pitstop(ctx).backup.list_sets(offsite=offsite)
    if as_json:
        emit_json([_set_dict(s) for s in sets])
        return
    rows = []
    for s in sets:
        d = _set_dict(s)
        rows.append(
            (
                s.id,
                d["reason"],
                s.manifest.finished_at,
                d["sources"],
                d["files"],
                _mb(d["bytes"]),
                _mb(d["stored_bytes"]),
                d["encrypted"],
            )
        )
    table(
        ("set", "reason", "finished", "sources", "files", "size", "stored", "enc."),
        rows,
        empty="no backup sets off-site" if offsite else "no backup sets: make one with `pitstop backup run`",
    )


@backup_app.command("verify")
def verify(
    ctx: typer.Context,
    set_id: Annotated[str | None, typer.Argument(help="The set, or 'latest' (the default: the newest).")] = None,
    offsite: Annotated[
        bool, typer.Option(help="Check the set's off-site copy instead (every file downloaded and checked).")
    ] = False,
    as_json: AsJson = False,
) -> None:
    """Check every stored file of a set against its manifest. Exit 1 naming each damaged file."""
    backup_set, problems = _pitstop(ctx).backup.verify(set_id, offsite=offsite)
    if as_json:
        emit_json({"set": backup_set.id, "ok": not problems, "problems": problems})
    elif not problems:
        files = sum(len(s.files) for s in backup_set.manifest.sources)
        say(f"set {backup_set.id}{' (off-site)' if offsite else ''}: {files} files match the manifest")
    for problem in problems:
        err.print(f"set {backup_set.id}: {problem}", highlight=False, soft_wrap=True)
    if problems:
        raise typer.Exit(1)


@backup_app.command("drill")
def drill(
    ctx: typer.Context,
    set_id: Annotated[str | None, typer.Argument(help="The set, or 'latest' (the default: the newest).")] = None,
    from_offsite: Annotated[
        bool, typer.Option("--from-offsite", help="Restore from the off-site copy alone (downloaded first).")
    ] = False,
    as_json: AsJson = False,
) -> None:
    """Restore a set into scratch databases and directories, check it, and time it against the RTO."""
    result = _pitstop(ctx).backup.drill(set_id, offsite=from_offsite)
    if as_json:
        emit_json(
            {
                "set": result.set_id,
                "ok": result.ok,
                "seconds": round(result.seconds, 3),
                "rto_seconds": result.rto_seconds,
                "within_rto": result.within_rto,
                "sources": [
                    {
                        "source": s.source,
                        "kind": s.kind,
                        "restore_seconds": round(s.restore_seconds, 3),
                        "verify_seconds": round(s.verify_seconds, 3),
                        "problems": s.problems,
                    }
                    for s in result.sources
                ],
            }
        )
    else:
        table(
            ("source", "kind", "restore s", "verify s", "result"),
            (
                (
                    s.source,
                    s.kind,
                    f"{s.restore_seconds:.2f}",
                    f"{s.verify_seconds:.2f}",
                    "ok" if not s.problems else "; ".join(s.problems),
                )
                for s in result.sources
            ),
            empty="the set has no sources",
        )
        verdict = "passed" if result.ok else "FAILED"
        rto = "within" if result.within_rto else "ABOVE"
        took = f"{result.seconds:.2f} s ({rto} the RTO of {result.rto_seconds:.0f} s)"
        say(f"drill of {result.set_id} {verdict} in {took}")
    if not result.ok or not result.within_rto:
        raise typer.Exit(1)


@backup_app.command("restore")
def restore(
    ctx: typer.Context,
    set_id: Annotated[str, typer.Argument(help="The set, or 'latest'.")],
    source: Annotated[str | None, typer.Option(help="The source to restore (default: the set's only one).")] = None,
    target: Annotated[
        str | None, typer.Option(help="Where to: a file, directory or database URL (default: where it came from).")
    ] = None,
    file: Annotated[str | None, typer.Option(help="Only this file of a file source (path relative to it).")] = None,
    force: Annotated[bool, typer.Option(help="Overwrite a live target, after a safety backup of it.")] = False,
    as_json: AsJson = False,
) -> None:
    """Restore a source of a set. A live target is refused without --force."""
    pitstop = _pitstop(ctx)
    backup_set = pitstop.backup.get(set_id)
    if source is None:
        names = backup_set.manifest.source_names
        if len(names) != 1:
            raise BackupError(f"set {backup_set.id} has sources {', '.join(names)}: choose one with --source")
        source = names[0]
    if file is not None:
        result = pitstop.backup.restore_file(f"{source}:{file}", into=Path(target) if target else None)
        if as_json:
            emit_json({"file": str(result.copy.target), "changed": result.changed, "set": result.copy.set_id})
            return
        what = "already good" if not result.changed else f"restored from set {result.copy.set_id}"
        say(f"{result.copy.target}: {what}")
        return
    safety = pitstop.backup.restore(backup_set.id, source, into=target, force=force)
    if as_json:
        emit_json({"source": source, "set": backup_set.id, "safety_set": safety.id if safety else None})
        return
    if safety is not None:
        say(f"safety backup of the target: set {safety.id}")
    say(f"restored {source} from set {backup_set.id}; row counts and checksums match the manifest")


@backup_app.command("prune")
def prune(
    ctx: typer.Context,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show what would be kept and deleted.")] = False,
    as_json: AsJson = False,
) -> None:
    """Apply retention: keep-last, daily, weekly, monthly, quarterly and yearly tiers."""
    results = _pitstop(ctx).backup.prune(dry_run=dry_run)
    if as_json:
        data = [
            {
                "destination": str(r.destination),
                "sets": [{"id": d.id, "keep": d.keep, "reasons": list(d.reasons)} for d in r.decisions],
                "stale_partials": r.stale_partials,
            }
            for r in results
        ]
        emit_json({"dry_run": dry_run, "destinations": data})
        return
    if not results:
        say("no backup destinations")
    for r in results:
        rows: list[tuple[str, str, str]] = [
            (d.id, "keep" if d.keep else ("would delete" if dry_run else "deleted"), ", ".join(d.reasons) or "-")
            for d in r.decisions
        ]
        rows += [
            (name, "would delete" if dry_run else "deleted", "left over from an interrupted backup")
            for name in r.stale_partials
        ]
        table(("set", "action", "kept by"), rows, empty=f"{r.destination}: no backup sets", title=str(r.destination))
