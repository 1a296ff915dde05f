"""`pitstop ingest FILE...` and `pitstop quarantine list|replay`."""

# No `from __future__ import annotations` here: see pitstop/cli/__init__.py (start time).
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from pitstop.cli.output import AsJson, emit_json, err, say, table
from pitstop.errors import InvalidInput

if TYPE_CHECKING:
    from rich.progress import Progress, TaskID

    from pitstop.app import Pitstop
    from pitstop.ingest import IngestResult

quarantine_app = typer.Typer(help="Readings that failed validation: list them, replay them.", no_args_is_help=True)

# pitstop.ingest.REASONS, written out: importing it loads pandas, and the help is read before any
# command runs (tests/e2e/test_cli_conventions.py checks that the two agree).
REASONS = ("malformed", "unknown_sensor", "bad_timestamp", "not_a_number", "out_of_range", "conflict")


def _pitstop(ctx: typer.Context) -> "Pitstop":
    pitstop: Pitstop = ctx.obj.pitstop()
    return pitstop


def _summary(result: "IngestResult") -> str:
    text = f"{result.stored} stored, {result.duplicates} duplicate, {result.quarantined} quarantined"
    if result.reasons:
        text += " (" + ", ".join(f"{k} {v}" for k, v in sorted(result.reasons.items())) + ")"
    if result.spooled:
        text += f", {result.spooled} spooled (the database was unavailable)"
    return text


def ingest_command(
    ctx: typer.Context,
    files: Annotated[list[Path], typer.Argument(help="CSV or Parquet files, long or wide.")],
    asset: Annotated[str | None, typer.Option(help="The asset of a wide file (ts plus one column per sensor).")] = None,
    as_json: AsJson = False,
) -> None:
    """Import readings from CSV or Parquet files, streaming in chunks.

    Long files have columns ts, asset, sensor, value; wide files have ts plus one column per sensor
    of the asset given with --asset. Timestamps: ISO 8601 with an offset, or epoch seconds
    (milliseconds from 1e11). Bad rows are quarantined with a reason; nothing is stored twice.
    """
    from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeRemainingColumn

    from pitstop.ingest import IngestResult
    from pitstop.ingest.files import ingest_file

    pitstop = _pitstop(ctx)
    total = IngestResult()
    per_file: dict[str, dict[str, object]] = {}
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        TimeRemainingColumn(),
        console=err,
        disable=as_json,
    ) as progress:
        for path in files:
            task = progress.add_task(path.name, total=None)
            result = ingest_file(
                pitstop.ingest,
                path,
                asset=asset,
                chunk_rows=pitstop.settings.ingest.chunk_rows,
                progress=partial(_advance, progress, task),
            )
            total += result
            per_file[str(path)] = _as_dict(result)
            if not as_json:
                progress.console.print(f"{path}: {_summary(result)}")
    if total.first_us is not None and total.last_us is not None:
        # The rollups job only looks back an hour: readings from further back need their plot spans rebuilt.
        from pitstop.storage.repos.rollups import RollupRepo

        RollupRepo(pitstop.db).after_import(total.first_us, total.last_us, total.sensor_ids, pitstop.clock.now())
    if as_json:
        emit_json({"files": per_file, "total": _as_dict(total)})
    elif len(files) > 1:
        say(f"total: {_summary(total)}")


def _advance(progress: "Progress", task: "TaskID", done: int, size: int) -> None:
    progress.update(task, completed=done, total=size)


def _as_dict(result: "IngestResult") -> dict[str, object]:
    return {
        "stored": result.stored,
        "duplicates": result.duplicates,
        "quarantined": result.quarantined,
        "reasons": result.reasons,
        "spooled": result.spooled,
    }


@quarantine_app.command("list")
def quarantine_list(
    ctx: typer.Context,
    reason: Annotated[str | None, typer.Option(help=f"Only this reason: {', '.join(REASONS)}.")] = None,
    limit: Annotated[int, typer.Option(min=1, help="At most this many rows.")] = 50,
    as_json: AsJson = False,
) -> None:
    """List quarantined rows, oldest first, with counts per reason."""
    _check_reason(reason)
    pitstop = _pitstop(ctx)
    rows = pitstop.ingest.quarantine.list(reason=reason, limit=limit)
    if as_json:
        data = [
            {
                "id": r.id,
                "received_at": r.received_at.isoformat(),
                "source": r.source,
                "reason": r.reason,
                "payload": r.payload,
            }
            for r in rows
        ]
        emit_json(data)
        return
    counts = pitstop.ingest.quarantine.counts()
    table(
        ("id", "received", "source", "reason", "payload"),
        ((r.id, r.received_at, r.source, r.reason, r.payload[:120]) for r in rows),
        empty="the quarantine is empty" if not counts else f"no quarantined rows of reason {reason}",
    )
    if counts:
        say(", ".join(f"{k}: {v}" for k, v in sorted(counts.items())))


@quarantine_app.command("replay")
def quarantine_replay(
    ctx: typer.Context,
    reason: Annotated[
        str | None, typer.Option(help=f"Only rows quarantined for this reason: {', '.join(REASONS)}.")
    ] = None,
    as_json: AsJson = False,
) -> None:
    """Validate quarantined rows again against the current inventory (after fixing it); store the
    ones that pass (never twice) and remove them from the quarantine."""
    _check_reason(reason)
    pitstop = _pitstop(ctx)
    result = pitstop.ingest.replay(reason=reason)
    if as_json:
        emit_json(
            {
                "checked": result.checked,
                "stored": result.stored,
                "duplicates": result.duplicates,
                "still_quarantined": result.still_quarantined,
                "reasons": result.reasons,
            }
        )
        return
    left = ", ".join(f"{k} {v}" for k, v in sorted(result.reasons.items()))
    say(
        f"replayed {result.checked}: {result.stored} stored, {result.duplicates} duplicate, "
        f"{result.still_quarantined} still quarantined" + (f" ({left})" if left else "")
    )


def _check_reason(reason: str | None) -> None:
    if reason is not None and reason not in REASONS:
        raise InvalidInput(f"--reason: not a reason: {reason!r}; the reasons are {', '.join(REASONS)}")
