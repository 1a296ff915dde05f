"""`pitstop models train`: fit an asset type's digital twin on stored readings."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Annotated

import typer
from rich.console import Console

from pitstop.errors import ConfigError, NotFound
from pitstop.ml.scoring import StreamScorer
from pitstop.ml.training import train_twin

models_app = typer.Typer(help="Digital twins and detectors: train and evaluate.", no_args_is_help=True)
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
        report = train_twin(pitstop, asset_type, holdout=holdout, n_estimators=trees)
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
        scorer = StreamScorer(pitstop, baseline=timedelta(hours=baseline_hours))
        finding = scorer.score_asset(asset, start)
        if finding is not None:
            scorer.report(finding)
        result = finding.as_dict() if finding is not None else {"asset": asset, "finding": None}
    finally:
        pitstop.close()
    out.print_json(json.dumps(result))
