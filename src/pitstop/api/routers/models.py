"""Models: versions and alias history for viewers; `POST /predict/{model}` serves the champion."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from pydantic import BaseModel, Field

from pitstop.api.deps import PitstopDep, Viewer
from pitstop.app import Pitstop
from pitstop.errors import NotFound

router = APIRouter(tags=["models"])

ModelName = Annotated[str, Path(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")]


class PredictIn(BaseModel):
    rows: Annotated[list[list[float]], Field(min_length=1, max_length=10_000)]


class PredictOut(BaseModel):
    model: str
    version: int
    path: str
    outputs: list[str]
    predictions: list[list[float]]


@router.post("/predict/{model}", summary="Predict with the model's champion")
async def predict(model: ModelName, body: PredictIn, request: Request, _key: Viewer) -> PredictOut:
    # A prediction changes nothing: it is counted in /metrics, not written to the audit log (that was
    # a database write and a thread-pool hop per prediction, about 0.2 ms plus the hop on SQLite here).
    request.state.audited = True
    # The app's pitstop read here rather than through the sync PitstopDep: one thread-pool hop less.
    pitstop: Pitstop = request.app.state.pitstop
    server = pitstop.models.server
    if server is None:
        raise NotFound("model serving is not set up")
    return PredictOut(**server.predict(model, body.rows))


@router.get("/api/models", summary="Registered model versions")
def list_models(pitstop: PitstopDep, _key: Viewer) -> list[dict[str, Any]]:
    return [
        {k: v for k, v in version.as_dict().items() if k != "envelope"}
        for version in pitstop.models.registry.versions()
    ]


@router.get("/api/models/{model}/history", summary="Alias moves and gate decisions of a model")
def history(model: ModelName, pitstop: PitstopDep, _key: Viewer) -> dict[str, Any]:
    registry = pitstop.models.registry
    return {"moves": [m.as_dict() for m in registry.history(model)], "decisions": registry.decisions(model)}
