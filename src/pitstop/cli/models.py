"""`pitstop models train`: fit an asset type's digital twin on stored readings."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from pitstop.errors import ConfigError, NotFound
from pitstop.ml.scoring import StreamScorer
from pitstop.ml.training import train_twin

models_app = typer.Typer(
    help="Models: train twins, list versions, promote, roll back, retrain behind gates.", no_args_is_help=True
)
out = Console()


@models_app.command("train")
def train_command(
    ctx: typer.Context,
    asset_type: Annotated[str, typer.Option("--asset-type", help="Asset type whose twin to train (hvac).")],
    holdout: Annotated[float, typer.Option(min=0.05, max=0.5, help="Latest share of rows held out.")] = 0.2,
    trees: Annotated[int, typer.Option(min=10, max=5000, help="Boosting rounds per output.")] = 300,
) -> None:
    """Train on the earliest rows of every asset of the type; print hold-out R², MAPE, MAE per output."""
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
    out.print_json(json.dumps(report.as_dict()))


def score_command(
    ctx: typer.Context,
    asset: Annotated[str, typer.Option(help="Asset to score.")],
    since: Annotated[str | None, typer.Option(help="ISO time with offset; default: right after the baseline.")] = None,
    baseline_hours: Annotated[
        float, typer.Option(min=1.0, help="Hours of the asset's first readings = normal.")
    ] = 24.0,
) -> None:
    """Score an asset's readings since a time against its baseline; a finding opens asset.anomaly:<asset>."""
    pitstop = ctx.obj.pitstop()
    try:
        if pitstop.assets.get_asset(asset) is None:
            raise NotFound(f"no asset named {asset!r}")
        start = None
        if since is not None:
            try:
                start = datetime.fromisoformat(since)
            except ValueError:
                raise ConfigError(f"--since {since!r} is not an ISO time") from None
            if start.tzinfo is None:
                raise ConfigError("--since needs a UTC offset, e.g. 2026-01-01T00:00+00:00")
        scorer = StreamScorer(
            db=pitstop.db,
            clock=pitstop.clock,
            assets=pitstop.assets,
            readings=pitstop.readings,
            incidents=pitstop.incidents,
            data_dir=pitstop.settings.data_dir,
            baseline=timedelta(hours=baseline_hours),
        )
        finding = scorer.score_asset(asset, start)
        if finding is not None:
            scorer.report(finding)
        result = finding.as_dict() if finding is not None else {"asset": asset, "finding": None}
    finally:
        pitstop.close()
    out.print_json(json.dumps(result))


# -- model lifecycle: registry, retraining behind gates, rollback, drift --------------------------


def _actor(given: str | None) -> str:
    import getpass

    return given or f"cli:{getpass.getuser()}"


@models_app.command("list")
def list_command(ctx: typer.Context, name: Annotated[str | None, typer.Argument(help="Model name.")] = None) -> None:
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
    out.print_json(json.dumps(rows))


@models_app.command("promote")
def promote_command(
    ctx: typer.Context,
    name: str,
    version: int,
    actor: Annotated[str | None, typer.Option(help="Who promotes (default: cli:<user>).")] = None,
    reason: Annotated[str, typer.Option(help="Why.")] = "promoted by hand",
) -> None:
    """Make a version the champion (its artifact must pass the sha256 check)."""
    pitstop = ctx.obj.pitstop()
    try:
        move = pitstop.models.registry.promote(name, version, actor=_actor(actor), reason=reason)
    finally:
        pitstop.close()
    out.print_json(json.dumps(move.as_dict()))


@models_app.command("rollback")
def rollback_command(
    ctx: typer.Context,
    name: str,
    actor: Annotated[str | None, typer.Option(help="Who rolls back (default: cli:<user>).")] = None,
    reason: Annotated[str, typer.Option(help="Why.")] = "rolled back by hand",
) -> None:
    """Move the champion back to the previous one, after it loads and passes its parity check."""
    pitstop = ctx.obj.pitstop()
    try:
        move = pitstop.models.registry.rollback(name, actor=_actor(actor), reason=reason)
    finally:
        pitstop.close()
    out.print_json(json.dumps(move.as_dict()))


@models_app.command("history")
def history_command(ctx: typer.Context, name: str) -> None:
    """Every alias move of a model (from, to, who, when, why) and every gate decision."""
    pitstop = ctx.obj.pitstop()
    try:
        registry = pitstop.models.registry
        result = {
            "moves": [m.as_dict() for m in registry.history(name)],
            "decisions": registry.decisions(name),
        }
    finally:
        pitstop.close()
    out.print_json(json.dumps(result))


@models_app.command("retrain")
def retrain_command(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Model name, e.g. hvac-twin.")],
    manual: Annotated[bool, typer.Option("--manual", help="Stay challenger even when every gate passes.")] = False,
    holdout: Annotated[float, typer.Option(min=0.05, max=0.5, help="Latest share of rows held out.")] = 0.2,
    trees: Annotated[int, typer.Option(min=10, max=5000, help="Boosting rounds per output.")] = 300,
    trigger: Annotated[str, typer.Option(help="What asked for it (recorded).")] = "manual",
    actor: Annotated[str | None, typer.Option(help="Who (default: cli:<user>).")] = None,
) -> None:
    """Train a candidate on stored readings (known-faulty periods left out), gate it, promote if managed."""
    from pitstop.ml.registry import Mode

    pitstop = ctx.obj.pitstop()
    try:
        result = pitstop.models.retrain(
            name,
            pitstop.model_data.frame(name),
            mode=Mode.MANUAL if manual else Mode.MANAGED,
            trigger=trigger,
            actor=_actor(actor),
            holdout=holdout,
            excluded=pitstop.model_data.faulty_periods(name),
            params={"n_estimators": trees},
        )
    finally:
        pitstop.close()
    out.print_json(json.dumps(result.as_dict()))


@models_app.command("watch")
def watch_command(
    ctx: typer.Context,
    name: Annotated[str | None, typer.Argument(help="One configured model (default: every one).")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show the triggers; train nothing.")] = False,
) -> None:
    """Run the lifecycle job once: calendar, drift and accuracy triggers of [models.twins.*]; retrain when due."""
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
    out.print_json(json.dumps(rows))


@models_app.command("accuracy")
def accuracy_command(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Model name, e.g. hvac-twin.")],
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
    out.print_json(json.dumps(result))


drift_app = typer.Typer(help="Input drift of models against their reference.", no_args_is_help=True)


@drift_app.command("report")
def drift_report_command(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Model name, e.g. hvac-twin.")],
    days: Annotated[float, typer.Option(min=0.01, help="Current window: the latest days of readings.")] = 7.0,
    out_dir: Annotated[Path | None, typer.Option("--out", help="Directory (default: <data_dir>/reports).")] = None,
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
    out.print_json(json.dumps({**report.as_dict(), "json": str(json_path), "html": str(html_path)}))
