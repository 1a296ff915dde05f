"""Liveness, readiness, metrics, and the service's own records (jobs, audit)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel
from sqlalchemy.exc import SQLAlchemyError

from pitstop import __version__
from pitstop.api.deps import Admin, PitstopDep, Viewer
from pitstop.errors import PitstopError

router = APIRouter()


class Ready(BaseModel):
    ready: bool
    checks: dict[str, str]


class JobRunOut(BaseModel):
    job: str
    instance: str
    started_at: datetime
    finished_at: datetime | None
    outcome: str | None
    error: str | None


class AuditOut(BaseModel):
    at: datetime
    actor: str
    action: str
    target: str
    detail: dict[str, object]


class ServedModel(BaseModel):
    name: str
    type: str
    champion: int
    state: str  # "loaded", or not yet: models load on their first prediction
    serving_version: int | None  # differs from champion while a corrupt champion is stood in for
    runtime: str | None  # "onnxruntime" or "lightgbm"


class Health(BaseModel):
    status: str
    version: str
    models: list[ServedModel]
    models_error: str | None = None


@router.get("/health", tags=["system"], summary="Liveness: the process answers; pitstop's version and served models")
def health(pitstop: PitstopDep) -> Health:
    """Always 200 while the process answers (`/ready` is the readiness gate): a database that
    cannot list the models gives `models_error`, not a failed liveness probe."""
    server = pitstop.models.server
    models: list[dict[str, Any]] = []
    error = None
    if server is not None:
        try:
            models = server.status()
        except PitstopError as exc:
            error = str(exc)
        except SQLAlchemyError as exc:
            error = f"the database did not answer: {type(exc).__name__}"
    return Health(status="ok", version=__version__, models=[ServedModel(**m) for m in models], models_error=error)


@router.get("/ready", tags=["system"], summary="Readiness: database reachable and schema current")
def ready(pitstop: PitstopDep, response: Response) -> Ready:
    checks = {"database": "ok", "migrations": "ok"}
    try:
        pitstop.db.ping()
    except PitstopError as exc:
        checks["database"], checks["migrations"] = str(exc), "unknown"
    else:
        try:
            pitstop.db.ensure_current()
        except PitstopError as exc:
            checks["migrations"] = str(exc)
    checks["ingest"] = pitstop.ingest.state()  # readings refused: database down and spool full
    checks.update(pitstop.ingest.link_states())  # MQTT and other push links, when configured
    checks.update(pitstop.supervisor.states())  # background threads: "ok", or failed and restarting
    if pitstop.fleet is not None:  # a worker that cannot reach NATS holds no partitions: not ready
        checks.update({name: state() for name, state in pitstop.fleet.links.items()})
    ok = all(v == "ok" for v in checks.values())
    response.status_code = 200 if ok else 503
    return Ready(ready=ok, checks=checks)


@router.get("/metrics", tags=["system"], summary="Prometheus metrics of this process")
def metrics(pitstop: PitstopDep) -> Response:
    pitstop.metrics.scheduler_leader.set(1 if pitstop.scheduler.is_leader else 0)
    return Response(generate_latest(pitstop.metrics.registry), media_type=CONTENT_TYPE_LATEST)


@router.get("/api/jobs", tags=["system"], summary="Recent scheduler job runs")
def job_runs(pitstop: PitstopDep, _key: Viewer, limit: int = 50) -> list[JobRunOut]:
    limit = max(1, min(limit, 1000))
    return [
        JobRunOut(
            job=r.job,
            instance=r.instance,
            started_at=r.started_at,
            finished_at=r.finished_at,
            outcome=r.outcome,
            error=r.error,
        )
        for r in pitstop.jobs.recent(limit=limit)
    ]


@router.get("/api/audit", tags=["system"], summary="The audit log: every change made through pitstop")
def audit(pitstop: PitstopDep, _key: Admin, limit: int = 100) -> list[AuditOut]:
    limit = max(1, min(limit, 1000))
    return [
        AuditOut(at=e.at, actor=e.actor, action=e.action, target=e.target, detail=e.detail)
        for e in pitstop.audit.recent(limit)
    ]
