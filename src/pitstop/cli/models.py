"""`pitstop models train`: fit an asset type's digital twin on stored readings."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.console import Console

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
