"""`pitstop models ...` (train, the registry, retraining behind prerequisites and gates, asset events)
and `pitstop drift ...` (report, rebaseline)."""

# No `from __future__ import annotations` here: see pitstop/cli/__init__.py (start time).
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any

import typer

from pitstop.cli.output import AsJson, document, emit_json, say, table, text
from pitstop.cli.times import TIME_HELP, optional_time
from pitstop.errors import NotFound

models_app = typer.Typer(
    help="Models: train twins, list versions, promote, roll back, retrain behind gates.", no_args_is_help=True
)


def _show(data: Any, as_json: bool, title: str) -> None:
    """A command's result: JSON with --json, else its fields and tables."""
    if as_json:
        emit_json(data)
    else:
        document(data, title=title)


@models_app.command("train")
def train_command(
    ctx: typer.Context,
    asset_type: Annotated[str, typer.Option("--asset-type", help="Asset type whose twin to train (hvac).")],
    holdout: Annotated[float, typer.Option(min=0.05, max=0.5, help="Latest share of rows held out.")] = 0.2,
    trees: Annotated[int, typer.Option(min=10, max=5000, help="Boosting rounds per output.")] = 300,
    as_json: AsJson = False,
) -> None:
    """Train on the earliest rows of every asset of the type; print hold-out R², MAPE, MAE per output."""
    from pitstop.ml.training import train_twin

    pitstop = ctx.obj.pitstop()
    try:
        report = train_twin(
            asset_type,
            assets=pitstop.assets,
            readings=pitstop.readings,
            clock=pitstop.clock,
            data_dir=pitstop.settings.data_dir,
            holdout=holdout,
            n_estimators=trees,
        )
    finally:
        pitstop.close()
    _show(report.as_dict(), as_json, f"{asset_type} twin")


def score_command(
    ctx: typer.Context,
    asset: Annotated[str, typer.Option(help="Asset to score.")],
    since: Annotated[
        str | None, typer.Option(help=f"From when: {TIME_HELP}. Default: right after the baseline.")
    ] = None,
    baseline_hours: Annotated[
        float, typer.Option(min=1.0, help="Hours of the asset's first readings = normal.")
    ] = 24.0,
    as_json: AsJson = False,
) -> None:
    """Score an asset's readings since a time against its baseline; a finding opens asset.anomaly:<asset>."""
    from pitstop.ml.scoring import StreamScorer

    pitstop = ctx.obj.pitstop()
    try:
        if pitstop.assets.get_asset(asset) is None:
            raise NotFound(f"no asset named {asset!r}")
        start = optional_time(since, now=pitstop.clock.now(), option="--since")
        scorer = StreamScorer(
            db=pitstop.db,
            clock=pitstop.clock,
            assets=pitstop.assets,
            readings=pitstop.readings,
            incidents=pitstop.incidents,
            baseline=timedelta(hours=baseline_hours),
        )
        finding = scorer.score_asset(asset, start)
        if finding is not None:
            scorer.report(finding)
        result = finding.as_dict() if finding is not None else {"asset": asset, "finding": None}
    finally:
        pitstop.close()
    if as_json:
        emit_json(result)
    elif finding is None:
        say(f"{asset}: no finding (nothing out of the ordinary against its baseline)")
    else:
        document(result, title=f"{asset}: finding (incident asset.anomaly:{asset})")


# -- model lifecycle: registry, retraining behind gates, rollback, drift --------------------------


def _actor(given: str | None) -> str:
    import getpass

    return given or f"cli:{getpass.getuser()}"


@models_app.command("list")
def list_command(
    ctx: typer.Context,
    name: Annotated[str | None, typer.Argument(help="Model name.")] = None,
    as_json: AsJson = False,
) -> None:
    """Registered versions with their aliases, size, sha256 and hold-out metrics."""
    pitstop = ctx.obj.pitstop()
    try:
        registry = pitstop.models.registry
        rows = []
        for v in registry.versions(name):
            aliases = [a for a in ("champion", "challenger") if registry.alias(v.name, a) == v.version]
            rows.append(
                {
                    "name": v.name,
                    "version": v.version,
                    "aliases": aliases,
                    "created_at": v.created_at.isoformat(),
                    "trigger": v.trigger,
                    "size": v.size,
                    "sha256": v.sha256,
                    "metrics": v.envelope.get("metrics", {}),
                }
            )
    finally:
        pitstop.close()
    if as_json:
        emit_json(rows)
        return
    table(
        ("name", "version", "aliases", "created", "trigger", "size", "sha256", "hold-out metrics"),
        (
            (
                r["name"],
                r["version"],
                r["aliases"],
                r["created_at"][:19],
                r["trigger"],
                f"{r['size'] / 1e3:.0f} kB",
                r["sha256"][:12],
                _metrics(r["metrics"]),
            )
            for r in rows
        ),
        empty=f"no versions of model {name}" if name else "no models: `pitstop models retrain NAME` trains one",
    )


def _metrics(metrics: Any) -> str:
    """Hold-out metrics in a few words: `holdout UCAOT r2=0.994 mae=0.045; holdout_rows=288`."""
    if not isinstance(metrics, dict) or not metrics:
        return "-"

    def number(value: Any) -> str:
        return f"{value:.3g}" if isinstance(value, float) else text(value)

    def parts(prefix: str, value: dict[str, Any]) -> list[str]:
        if not any(isinstance(v, dict) for v in value.values()):
            return [" ".join([*([prefix] if prefix else []), *(f"{k}={number(v)}" for k, v in value.items())])]
        found: list[str] = []
        for key, item in value.items():
            name = f"{prefix} {key}".strip()
            found += parts(name, item) if isinstance(item, dict) else [f"{name}={number(item)}"]
        return found

    return "; ".join(parts("", metrics))


@models_app.command("promote")
def promote_command(
    ctx: typer.Context,
    name: str,
    version: int,
    actor: Annotated[str | None, typer.Option(help="Who promotes (default: cli:<user>).")] = None,
    reason: Annotated[str, typer.Option(help="Why.")] = "promoted by hand",
    as_json: AsJson = False,
) -> None:
    """Make a version the champion (its artifact must pass the sha256 check)."""
    pitstop = ctx.obj.pitstop()
    try:
        move = pitstop.models.registry.promote(name, version, actor=_actor(actor), reason=reason)
    finally:
        pitstop.close()
    _show(move.as_dict(), as_json, f"{name}: champion moved")


@models_app.command("rollback")
def rollback_command(
    ctx: typer.Context,
    name: str,
    actor: Annotated[str | None, typer.Option(help="Who rolls back (default: cli:<user>).")] = None,
    reason: Annotated[str, typer.Option(help="Why.")] = "rolled back by hand",
    as_json: AsJson = False,
) -> None:
    """Move the champion back to the previous one, after it loads and passes its parity check."""
    pitstop = ctx.obj.pitstop()
    try:
        move = pitstop.models.registry.rollback(name, actor=_actor(actor), reason=reason)
    finally:
        pitstop.close()
    _show(move.as_dict(), as_json, f"{name}: champion rolled back")


@models_app.command("history")
def history_command(ctx: typer.Context, name: str, as_json: AsJson = False) -> None:
    """Every alias move of a model (from, to, who, when, why), every decision (gates, or prerequisites
    that failed) and every re-taken drift reference."""
    pitstop = ctx.obj.pitstop()
    try:
        registry = pitstop.models.registry
        result = {
            "moves": [m.as_dict() for m in registry.history(name)],
            "decisions": registry.decisions(name),
            "references": registry.references(name),
        }
    finally:
        pitstop.close()
    if as_json:
        emit_json(result)
        return
    for what, rows in result.items():
        if rows:
            document({what: rows})
        else:
            say(f"no {what} recorded for {name}")


@models_app.command("retrain")
def retrain_command(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Model name, e.g. hvac-twin.")],
    manual: Annotated[bool, typer.Option("--manual", help="Stay challenger even when every gate passes.")] = False,
    holdout: Annotated[
        float | None, typer.Option(min=0.05, max=0.5, help="Latest share of rows held out (default: the model's).")
    ] = None,
    trees: Annotated[
        int | None, typer.Option(min=10, max=5000, help="Boosting rounds per output (default: the model's).")
    ] = None,
    min_samples: Annotated[
        int | None, typer.Option(min=0, help="Prerequisite: complete rows at least (default: the model's, 10,000).")
    ] = None,
    trigger: Annotated[str, typer.Option(help="What asked for it (recorded).")] = "manual",
    actor: Annotated[str | None, typer.Option(help="Who (default: cli:<user>).")] = None,
    as_json: AsJson = False,
) -> None:
    """Train a candidate on stored readings as the model is configured: known-faulty periods, maintenance
    windows and readings of changed equipment left out, behind its prerequisites (a failure trains
    nothing and is recorded), gates and floors; promote if managed."""
    from pitstop.ml.registry import Mode

    pitstop = ctx.obj.pitstop()
    try:
        result = pitstop.model_watch.retrain(
            name,
            trigger=trigger,
            actor=_actor(actor),
            mode=Mode.MANUAL if manual else None,
            holdout=holdout,
            trees=trees,
            min_samples=min_samples,
        )
    finally:
        pitstop.close()
    _show(result.as_dict(), as_json, f"{name}: retrained")


def asset_event_command(
    ctx: typer.Context,
    asset: Annotated[str, typer.Argument(help="Asset name, e.g. ahu-1.")],
    kind: Annotated[str, typer.Argument(help="Event kind: equipment-changed.")],
    note: Annotated[str, typer.Option(help="What changed (recorded; the retraining trigger).")],
    actor: Annotated[str | None, typer.Option(help="Who (default: cli:<user>).")] = None,
    later: Annotated[
        bool, typer.Option("--later", help="Only record it: the lifecycle job retrains at its next run.")
    ] = False,
    as_json: AsJson = False,
) -> None:
    """Record an asset event (kind equipment-changed) with a maintenance-log entry, then run the lifecycle
    job for every model whose inputs come from the asset: the change is its trigger, the asset's
    readings from before it are left out, the prerequisites and gates apply."""
    pitstop = ctx.obj.pitstop()
    try:
        watch = pitstop.model_watch
        event, names = watch.record_event(asset, kind, note, actor=_actor(actor))
        looks = [] if later else [watch.look(n).as_dict() for n in names if watch.lifecycle.registry.versions(n)]
    finally:
        pitstop.close()
    _show({"event": event.as_dict(), "models": names, "looks": looks}, as_json, f"{asset}: {kind} recorded")


@models_app.command("watch")
def watch_command(
    ctx: typer.Context,
    name: Annotated[str | None, typer.Argument(help="One configured model (default: every one).")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show the triggers; train nothing.")] = False,
    as_json: AsJson = False,
) -> None:
    """Run the lifecycle job once: calendar, drift, accuracy and equipment-change triggers of [models.twins.*]
    (or of the model named); retrain when due, behind the prerequisites and gates."""
    pitstop = ctx.obj.pitstop()
    try:
        watch = pitstop.model_watch
        names = [name] if name is not None else list(watch.models)
        if not names:
            raise NotFound("no model is configured under [models.twins.<name>] in pitstop.toml")
        if dry_run:
            rows = [{"name": n, "triggers": [str(t) for t in watch.triggers(n)]} for n in names]
        else:
            rows = [watch.look(n).as_dict() for n in names]
    finally:
        pitstop.close()
    if as_json:
        emit_json(rows)
        return
    for row in rows:
        document(row, title=f"model {row.get('name', '')}")


@models_app.command("accuracy")
def accuracy_command(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Model name, e.g. hvac-twin.")],
    as_json: AsJson = False,
) -> None:
    """The champion's live accuracy: hold-out MAE over MAE on the latest readings, per output."""
    pitstop = ctx.obj.pitstop()
    try:
        acc = pitstop.model_watch.accuracy(name)
        if acc is None:
            raise NotFound(f"model {name!r}: no recent readings or no hold-out metrics")
        result = acc.as_dict()
    finally:
        pitstop.close()
    _show(result, as_json, f"{name}: live accuracy")


drift_app = typer.Typer(help="Input drift of models against their reference.", no_args_is_help=True)


@drift_app.command("report")
def drift_report_command(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Model name, e.g. hvac-twin.")],
    days: Annotated[float, typer.Option(min=0.01, help="Current window: the latest days of readings.")] = 7.0,
    out_dir: Annotated[Path | None, typer.Option("--out", help="Directory (default: <data_dir>/reports).")] = None,
    as_json: AsJson = False,
) -> None:
    """PSI and KS per input against the champion's reference, residual drift against its hold-out residuals;
    writes JSON and HTML; drift at warn or critical opens model.drift:<name> through the alert policy."""
    from pitstop.ml.drift.report import write

    pitstop = ctx.obj.pitstop()
    try:
        version = pitstop.models.registry.alias(name, "champion")
        if version is None:
            raise NotFound(f"model {name!r} has no champion")
        frame = pitstop.model_data.frame(name)
        if frame.empty:
            raise NotFound(f"no readings for model {name!r}")
        current = frame[frame.index > frame.index.max() - timedelta(days=days)]
        report = pitstop.models.check_drift(name, current, version=version)
        directory = out_dir or Path(pitstop.settings.data_dir) / "reports"
        json_path, html_path = write(directory, name, version, report, {"window_days": days})
    finally:
        pitstop.close()
    _show({**report.as_dict(), "json": str(json_path), "html": str(html_path)}, as_json, f"{name} v{version}: drift")


@drift_app.command("rebaseline")
def drift_rebaseline_command(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Model name, e.g. hvac-twin.")],
    reason: Annotated[str, typer.Option(help="Why the plant as it is now is the new normal (recorded).")],
    days: Annotated[
        float | None, typer.Option(min=0.01, help="Window: the latest days (default: models.drift_window_days).")
    ] = None,
    start: Annotated[str | None, typer.Option(help=f"Window start (instead of --days): {TIME_HELP}.")] = None,
    end: Annotated[str | None, typer.Option(help="Window end, as --start (default: now).")] = None,
    version: Annotated[int | None, typer.Option(min=1, help="Version (default: the champion).")] = None,
    actor: Annotated[str | None, typer.Option(help="Who (default: cli:<user>).")] = None,
    as_json: AsJson = False,
) -> None:
    """Re-take the champion's input drift reference from a window of readings (default: the latest
    models.drift_window_days, known-faulty periods and maintenance windows left out). Recorded with who
    and why, and in the maintenance log; the earlier references stay for audit."""
    pitstop = ctx.obj.pitstop()
    try:
        now = pitstop.clock.now()
        row = pitstop.model_watch.rebaseline(
            name,
            actor=_actor(actor),
            reason=reason,
            days=days,
            start=optional_time(start, now=now, option="--start"),
            end=optional_time(end, now=now, option="--end"),
            version=version,
        )
    finally:
        pitstop.close()
    _show(row, as_json, f"{name}: drift reference re-taken")
