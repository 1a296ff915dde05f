"""Models: versions and alias history for viewers; `POST /predict/{model}` serves the champion;
operators re-take a drift reference and record asset events (an equipment change: a retraining trigger).

`PredictFastPath` answers the common `/predict` request ahead of the framework; everything else
about the route (errors, validation messages, the OpenAPI entry) is the FastAPI route below.
"""

from __future__ import annotations

import re
import time
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Path, Request
from pydantic import BaseModel, Field, ValidationError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pitstop.api.deps import Instant, Operator, PitstopDep, Viewer
from pitstop.app import Pitstop
from pitstop.core.types import Role
from pitstop.errors import NotFound, PitstopError

router = APIRouter(tags=["models"])

_NAME = r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$"
ModelName = Annotated[str, Path(min_length=1, max_length=200, pattern=_NAME)]
PREDICT_ROUTE = "/predict/{model}"


Positional = Annotated[list[list[float]], Field(min_length=1, max_length=10_000)]
Named = Annotated[list[dict[str, float]], Field(min_length=1, max_length=10_000)]
NamedRow = Annotated[dict[str, float], Field(min_length=1, max_length=1_000)]


class PredictIn(BaseModel):
    """Rows of inputs: lists in the order of the model's inputs, or objects of named inputs."""

    rows: Positional | Named


class OutOfRange(BaseModel):
    row: int
    name: str
    kind: str  # "input" (outside the range seen in training) or "output" (outside the sensor's range)
    value: float
    range: list[float]
    why: str


class PredictOut(BaseModel):
    model: str
    version: int
    path: str
    outputs: list[str]
    predictions: list[list[float]]
    out_of_range: list[OutOfRange]


@router.post(PREDICT_ROUTE, summary="Predict with the model's champion")
async def predict(model: ModelName, body: PredictIn | NamedRow, request: Request, _key: Viewer) -> PredictOut:
    """The body is `{"rows": [[...], ...]}` (inputs in the model's order), `{"rows": [{"UCWIT": ...},
    ...]}`, or one row of named inputs, `{"UCWIT": 7.0, ...}`. `out_of_range` marks inputs outside
    what the model saw in training and outputs outside the sensor's range: extrapolations."""
    # A prediction changes nothing: it is counted in /metrics, not written to the audit log (that was
    # a database write and a thread-pool hop per prediction, about 0.2 ms plus the hop on SQLite here).
    request.state.audited = True
    # The app's pitstop read here rather than through the sync PitstopDep: one thread-pool hop less.
    pitstop: Pitstop = request.app.state.pitstop
    server = pitstop.models.server
    if server is None:
        raise NotFound("model serving is not set up")
    rows = [body] if isinstance(body, dict) else body.rows
    return PredictOut(**server.predict(model, rows))


@router.get("/api/models", summary="Registered model versions")
def list_models(pitstop: PitstopDep, _key: Viewer) -> list[dict[str, Any]]:
    return [
        {k: v for k, v in version.as_dict().items() if k != "envelope"}
        for version in pitstop.models.registry.versions()
    ]


@router.get("/api/models/{model}/history", summary="Alias moves, decisions and re-taken drift references of a model")
def history(model: ModelName, pitstop: PitstopDep, _key: Viewer) -> dict[str, Any]:
    registry = pitstop.models.registry
    return {
        "moves": [m.as_dict() for m in registry.history(model)],
        "decisions": registry.decisions(model),
        "references": registry.references(model),
    }


class RebaselineIn(BaseModel):
    """The window to re-take the reference from: ``days`` up to ``end`` (default: models.drift_window_days
    up to now), or ``start`` to ``end``."""

    reason: str = Field(min_length=1, max_length=2000)
    days: float | None = Field(default=None, gt=0, le=36_600)
    start: Instant | None = None
    end: Instant | None = None
    version: int | None = Field(default=None, ge=1, lt=2**31)


@router.post("/api/models/{model}/rebaseline", summary="Re-take the model's input drift reference from a window")
def rebaseline(
    model: ModelName, body: RebaselineIn, request: Request, pitstop: PitstopDep, _key: Operator
) -> dict[str, Any]:
    """The champion's (or `version`'s) input reference becomes the readings of the window; recorded
    with the key's name and the reason, and in the maintenance log; earlier references are kept."""
    return pitstop.model_watch.rebaseline(
        model,
        actor=request.state.actor,
        reason=body.reason,
        days=body.days,
        start=body.start,
        end=body.end,
        version=body.version,
    )


class AssetEventIn(BaseModel):
    kind: Annotated[str, Field(min_length=1, max_length=50)] = "equipment_changed"
    note: str = Field(min_length=1, max_length=2000)


@router.post("/api/assets/{asset}/events", summary="Record an asset event (equipment changed)", status_code=201)
def asset_event(
    asset: Annotated[str, Path(min_length=1, max_length=200)],
    body: AssetEventIn,
    request: Request,
    pitstop: PitstopDep,
    _key: Operator,
) -> dict[str, Any]:
    """An ``equipment_changed`` event is the retraining trigger of every model whose inputs come from the
    asset (listed in ``models``): the lifecycle job retrains them at its next run, without the asset's
    readings from before the change, behind their prerequisites and gates."""
    event, names = pitstop.model_watch.record_event(asset, body.kind, body.note, actor=request.state.actor)
    return {"event": event.as_dict(), "models": names}


_PREFIX = PREDICT_ROUTE.split("{", 1)[0]
_NAME_RE = re.compile(_NAME)
_FAST_BODY_MAX = 1 << 20  # larger bodies go the framework's way


class PredictFastPath:
    """ASGI middleware serving `POST /predict/{model}` ahead of the framework when nothing unusual
    happens: a key that verified within the last `KeyRepo.ttl` seconds and allows viewers (no
    database query, no thread-pool hop), a JSON body that `PredictIn` accepts, a champion that
    predicts. Anything else (no or unknown key, a key due for its re-check, wrong content type,
    invalid body or name, no such model, rows the model refuses) is handed to the application
    unchanged, with the body already read replayed, so errors, the audit and the key check are
    the FastAPI route's. Measured in `bench/serving.py`: the framework stack (routing, dependency
    solving, two `BaseHTTPMiddleware`s, response validation) cost more than the prediction.
    """

    def __init__(self, app: ASGIApp, pitstop: Pitstop) -> None:
        self.app = app
        self.pitstop = pitstop
        self._metrics: tuple[Any, Any] | None = None  # the route's counter and histogram children

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or not scope["path"].startswith(_PREFIX):
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        name = scope["path"][len(_PREFIX) :]
        server = self.pitstop.models.server
        if server is None or len(name) > 200 or not _NAME_RE.match(name) or not self._admitted(scope):
            await self.app(scope, receive, send)
            return
        # A body over this goes the framework's way too, where the API's one body limit (api/limits.py)
        # answers 413 to one over `api.max_body_bytes`.
        cap = min(_FAST_BODY_MAX, self.pitstop.settings.api.max_body_bytes)
        chunks: list[bytes] = []
        size, more = 0, True
        while more:
            message = await receive()
            if message["type"] != "http.request":  # the client went away: let the framework see it
                await self.app(scope, _replay(b"".join(chunks), True, receive, then=message), send)
                return
            chunk = message.get("body", b"")
            chunks.append(chunk)
            size += len(chunk)
            more = message.get("more_body", False)
            if size > cap:
                await self.app(scope, _replay(b"".join(chunks), more, receive), send)
                return
        body = b"".join(chunks)
        try:
            rows = PredictIn.model_validate_json(body).rows
            result = server.predict(name, rows)
        except (ValidationError, PitstopError):
            await self.app(scope, _replay(body, False, receive), send)
            return
        content = orjson.dumps(result)
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-length", str(len(content)).encode()), (b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": content})
        if self._metrics is None:
            metrics = self.pitstop.metrics
            self._metrics = (
                metrics.http_requests.labels("POST", PREDICT_ROUTE, "200"),
                metrics.http_latency.labels(PREDICT_ROUTE),
            )
        self._metrics[0].inc()
        self._metrics[1].observe(time.perf_counter() - start)

    def _admitted(self, scope: Scope) -> bool:
        """A JSON body and a recently verified viewer-or-above key, read as `Viewer` reads them."""
        api_key = authorization = content_type = None
        for header, value in scope["headers"]:
            if header == b"x-api-key":
                api_key = value
            elif header == b"authorization":
                authorization = value
            elif header == b"content-type":
                content_type = value
        if content_type is None or content_type.split(b";", 1)[0].strip().lower() != b"application/json":
            return False
        token = api_key
        if not token and authorization:
            scheme, _, credentials = authorization.partition(b" ")
            token = credentials if scheme.lower() == b"bearer" and credentials else None
        if not token:
            return False
        key = self.pitstop.keys.cached(token.decode("latin-1"))
        return key is not None and key.role.allows(Role.VIEWER)


def _replay(body: bytes, more_body: bool, receive: Receive, *, then: Message | None = None) -> Receive:
    """`receive` as if nothing had been read: what was taken comes first (`then`: a last message taken)."""
    pending: list[Message] = [{"type": "http.request", "body": body, "more_body": more_body}]
    if then is not None:
        pending.append(then)

    async def replayed() -> Message:
        return pending.pop(0) if pending else await receive()

    return replayed
