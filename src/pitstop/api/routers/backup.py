"""Backup sets and their record: list, run, verify, drill."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel

from pitstop.api.deps import Admin, Operator, PitstopDep, Viewer
from pitstop.backup import BackupSet
from pitstop.backup.offsite import OffsiteSet

router = APIRouter(prefix="/api/backups", tags=["backups"])


class SetOut(BaseModel):
    id: str
    reason: str
    started_at: datetime
    finished_at: datetime
    sources: list[str]
    files: int
    bytes: int
    stored_bytes: int
    encrypted: bool


class RunOut(BaseModel):
    kind: str
    set_id: str | None
    started_at: datetime
    finished_at: datetime
    outcome: str
    seconds: float
    bytes: int
    detail: dict[str, Any]


class VerifyOut(BaseModel):
    set_id: str
    ok: bool
    problems: list[str]


class SourceDrillOut(BaseModel):
    source: str
    kind: str
    restore_seconds: float
    verify_seconds: float
    problems: list[str]


class DrillOut(BaseModel):
    set_id: str
    ok: bool
    seconds: float
    rto_seconds: float
    within_rto: bool
    sources: list[SourceDrillOut]


def _set_out(s: BackupSet | OffsiteSet) -> SetOut:
    m = s.manifest
    return SetOut(
        id=s.id,
        reason=m.reason,
        started_at=m.started_at,
        finished_at=m.finished_at,
        sources=m.source_names,
        files=sum(len(src.files) for src in m.sources),
        bytes=m.size,
        stored_bytes=m.stored_size,
        encrypted=m.encryption is not None,
    )


@router.get("", summary="Complete backup sets, newest first (offsite=true: those in the off-site copy)")
def list_sets(pitstop: PitstopDep, _: Viewer, offsite: bool = False) -> list[SetOut]:
    return [_set_out(s) for s in pitstop.backup.list_sets(offsite=offsite)]


@router.get("/runs", summary="The record of backups, verifications, drills, restores and prunes")
def runs(
    pitstop: PitstopDep,
    _: Viewer,
    kind: Annotated[str | None, Query(pattern="^(backup|verify|drill|restore|prune)$")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> list[RunOut]:
    return [
        RunOut(
            kind=r.kind,
            set_id=r.set_id,
            started_at=r.started_at,
            finished_at=r.finished_at,
            outcome=r.outcome,
            seconds=r.seconds,
            bytes=r.bytes,
            detail=r.detail,
        )
        for r in pitstop.backup.records.recent(kind, limit=limit)
    ]


@router.post("", summary="Back up every configured source now", status_code=201)
def run(pitstop: PitstopDep, _: Admin) -> SetOut:
    return _set_out(pitstop.backup.run())


@router.post("/{set_id}/verify", summary="Check a set ('latest' for the newest; offsite=true: its off-site copy)")
def verify(pitstop: PitstopDep, _: Operator, set_id: str, offsite: bool = False) -> VerifyOut:
    # the service resolves 'latest' and refuses paths
    backup_set, problems = pitstop.backup.verify(set_id, offsite=offsite)
    return VerifyOut(set_id=backup_set.id, ok=not problems, problems=problems)


@router.post("/drill", summary="Restore the newest set into scratch locations, check it and time it")
def drill(pitstop: PitstopDep, _: Admin, from_offsite: bool = False) -> DrillOut:
    """`from_offsite=true`: restore from the off-site copy alone."""
    result = pitstop.backup.drill(offsite=from_offsite)
    return DrillOut(
        set_id=result.set_id,
        ok=result.ok,
        seconds=result.seconds,
        rto_seconds=result.rto_seconds,
        within_rto=result.within_rto,
        sources=[
            SourceDrillOut(
                source=s.source,
                kind=s.kind,
                restore_seconds=s.restore_seconds,
                verify_seconds=s.verify_seconds,
                problems=s.problems,
            )
            for s in result.sources
        ],
    )
