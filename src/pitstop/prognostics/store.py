"""Rows of the prognostics component: estimates, ends of life, outcomes of predictions."""

from __future__ import annotations

import json
from collections.abc import Collection
from dataclasses import dataclass, fields, replace
from datetime import datetime
from typing import Any, Self

import numpy as np
from sqlalchemy import Row, func, insert, select
from sqlalchemy.exc import IntegrityError

from pitstop.errors import InvalidInput
from pitstop.ml.rul.base import RulEstimate
from pitstop.storage.engine import Database
from pitstop.storage.schema import readings, rul_estimates, rul_life_ends, rul_outcomes


def _row(cls: type[Any], row: Row[Any]) -> Any:
    m = dict(row._mapping)
    return cls(**{f.name: m[f.name] for f in fields(cls)})


@dataclass(frozen=True, slots=True)
class Estimate:
    """A stored RUL estimate: hours left from ``at``, read off the health index ``health``."""

    id: int
    asset: str
    model: str
    at: datetime
    median_h: float
    lower_h: float
    upper_h: float
    coverage: float
    health: float
    degrading: int
    evidence: str

    @property
    def rul(self) -> RulEstimate:
        return RulEstimate(self.median_h, self.lower_h, self.upper_h, self.coverage, bool(self.degrading))

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "asset": self.asset,
            "model": self.model,
            "at": self.at.isoformat(),
            "median_h": round(self.median_h, 2),
            "lower_h": round(self.lower_h, 2),
            "upper_h": round(self.upper_h, 2),
            "coverage": self.coverage,
            "health": round(self.health, 4),
            "degrading": bool(self.degrading),
            "evidence": json.loads(self.evidence),
        }


@dataclass(frozen=True, slots=True)
class LifeEnd:
    """A failure (``failed``) or a replacement before one; it ends the asset's current history."""

    id: int
    asset: str
    ended_at: datetime
    failed: int
    code: str
    source: str
    ref: str
    note: str
    recorded_at: datetime

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "asset": self.asset,
            "ended_at": self.ended_at.isoformat(),
            "failed": bool(self.failed),
            "code": self.code,
            "source": self.source,
            "ref": self.ref,
            "note": self.note,
        }


@dataclass(frozen=True, slots=True)
class Outcome:
    """What became of the prediction behind a work order.

    ``finding``: ``failed`` (broke down: the true RUL is known), ``confirmed`` (the wear was found
    and repaired first: the true RUL is at least ``ended_at - estimated_at``), ``false_alarm``
    (nothing found) or ``unknown`` (closed without a finding). ``error_h`` is median minus observed:
    positive is late (the failure came sooner than predicted), negative early.
    """

    id: int
    asset: str
    work_order_id: int
    estimate_id: int | None
    estimated_at: datetime
    median_h: float
    lower_h: float
    upper_h: float
    coverage: float
    finding: str
    code: str
    ended_at: datetime
    observed_h: float | None
    error_h: float | None
    covered: int | None
    recorded_at: datetime

    @classmethod
    def judge(cls, estimate: Estimate, order_id: int, code: str | None, ended_at: datetime) -> Self:
        """The outcome of ``estimate`` for an order closed at ``ended_at`` with ``code``."""
        elapsed = (ended_at - estimate.at).total_seconds() / 3600.0
        observed: float | None = None
        covered: bool | None = None
        if code is None:
            finding = "unknown"
        elif code == "no_fault":
            finding = "false_alarm"
        elif code == "failed":
            finding, observed = "failed", max(elapsed, 0.0)
            covered = estimate.lower_h <= observed <= estimate.upper_h
        else:
            # Repaired before it broke: the true life is longer than what passed. Past the upper
            # bound that already proves the interval missed; before it, coverage cannot be told.
            finding = "confirmed"
            covered = False if elapsed > estimate.upper_h else None
        return cls(
            id=0,
            asset=estimate.asset,
            work_order_id=order_id,
            estimate_id=estimate.id,
            estimated_at=estimate.at,
            median_h=estimate.median_h,
            lower_h=estimate.lower_h,
            upper_h=estimate.upper_h,
            coverage=estimate.coverage,
            finding=finding,
            code=code or "",
            ended_at=ended_at,
            observed_h=observed,
            error_h=None if observed is None else estimate.median_h - observed,
            covered=None if covered is None else int(covered),
            recorded_at=ended_at,
        )

    def as_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {f.name: getattr(self, f.name) for f in fields(self)}
        for k, v in data.items():
            if isinstance(v, datetime):
                data[k] = v.isoformat()
        data["covered"] = None if self.covered is None else bool(self.covered)
        return data


class PrognosticsStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    # -- estimates ------------------------------------------------------------------------------

    def add_estimate(
        self, asset: str, model: str, at: datetime, rul: RulEstimate, health: float, evidence: dict[str, Any]
    ) -> Estimate:
        values = dict(
            asset=asset,
            model=model,
            at=at,
            median_h=rul.median,
            lower_h=rul.lower,
            upper_h=rul.upper,
            coverage=rul.coverage,
            health=health,
            degrading=int(rul.degrading),
            evidence=json.dumps(evidence, default=str),
        )
        with self.db.begin() as conn:
            new = conn.execute(insert(rul_estimates).values(**values)).inserted_primary_key
        assert new is not None
        return Estimate(id=int(new[0]), **values)  # type: ignore[arg-type]

    def estimate(self, estimate_id: int) -> Estimate | None:
        with self.db.connect() as conn:
            row = conn.execute(select(rul_estimates).where(rul_estimates.c.id == estimate_id)).first()
        return None if row is None else _row(Estimate, row)

    def estimates(self, asset: str, *, since: datetime | None = None, points: int = 500) -> list[Estimate]:
        """An asset's estimates since ``since``, oldest first, thinned evenly to at most ``points``
        (the newest always kept), so a long range shows its whole span rather than its last days."""
        query = select(rul_estimates).where(rul_estimates.c.asset == asset)
        if since is not None:
            query = query.where(rul_estimates.c.at >= since)
        with self.db.connect() as conn:
            rows = conn.execute(query.order_by(rul_estimates.c.at, rul_estimates.c.id)).all()
        if len(rows) > points > 1:
            keep = np.unique(np.linspace(0, len(rows) - 1, points).round().astype(int))
            rows = [rows[i] for i in keep]
        return [_row(Estimate, r) for r in rows]

    def latest(self) -> dict[str, Estimate]:
        """The newest estimate of every asset that has one."""
        newest = (
            select(rul_estimates.c.asset, func.max(rul_estimates.c.id).label("id"))
            .group_by(rul_estimates.c.asset)
            .subquery()
        )
        query = select(rul_estimates).join(newest, newest.c.id == rul_estimates.c.id)
        with self.db.connect() as conn:
            return {r.asset: _row(Estimate, r) for r in conn.execute(query)}

    # -- ends of life ---------------------------------------------------------------------------

    def add_life_end(
        self,
        asset: str,
        ended_at: datetime,
        *,
        failed: bool,
        code: str,
        source: str,
        ref: str,
        note: str,
        now: datetime,
    ) -> LifeEnd:
        values = dict(
            asset=asset,
            ended_at=ended_at,
            failed=int(failed),
            code=code,
            source=source,
            ref=ref,
            note=note,
            recorded_at=now,
        )
        try:
            with self.db.begin() as conn:
                new = conn.execute(insert(rul_life_ends).values(**values)).inserted_primary_key
        except IntegrityError:
            raise InvalidInput(f"{asset} already has an end of life recorded at {ended_at.isoformat()}") from None
        assert new is not None
        return LifeEnd(id=int(new[0]), **values)  # type: ignore[arg-type]

    def life_ends(self, asset: str | None = None, *, before: datetime | None = None) -> list[LifeEnd]:
        query = select(rul_life_ends).order_by(rul_life_ends.c.ended_at)
        if asset is not None:
            query = query.where(rul_life_ends.c.asset == asset)
        if before is not None:
            query = query.where(rul_life_ends.c.ended_at <= before)
        with self.db.connect() as conn:
            return [_row(LifeEnd, r) for r in conn.execute(query)]

    # -- outcomes -------------------------------------------------------------------------------

    def add_outcome(self, outcome: Outcome) -> Outcome | None:
        """Record an outcome; None when the order's outcome was recorded already."""
        values = {f.name: getattr(outcome, f.name) for f in fields(outcome) if f.name != "id"}
        try:
            with self.db.begin() as conn:
                new = conn.execute(insert(rul_outcomes).values(**values)).inserted_primary_key
        except IntegrityError:
            return None
        assert new is not None
        return replace(outcome, id=int(new[0]))

    def outcomes(
        self,
        asset: str | None = None,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        assets: Collection[str] | None = None,
    ) -> list[Outcome]:
        """Outcomes recorded in [since, until), of one asset or of a set of assets, oldest first."""
        query = select(rul_outcomes).order_by(rul_outcomes.c.recorded_at, rul_outcomes.c.id)
        if asset is not None:
            query = query.where(rul_outcomes.c.asset == asset)
        if assets is not None:
            query = query.where(rul_outcomes.c.asset.in_(list(assets)))
        if since is not None:
            query = query.where(rul_outcomes.c.recorded_at >= since)
        if until is not None:
            query = query.where(rul_outcomes.c.recorded_at < until)
        with self.db.connect() as conn:
            return [_row(Outcome, r) for r in conn.execute(query)]

    # -- the health index's raw material --------------------------------------------------------

    def hourly(self, sensor_id: int, start_us: int | None, end_us: int) -> tuple[np.ndarray, np.ndarray]:
        """Hourly means of one sensor in [start, end): (hour start µs, mean), aggregated by the database."""
        hour = readings.c.ts // 3_600_000_000
        query = select(hour.label("h"), func.avg(readings.c.value)).where(
            readings.c.sensor_id == sensor_id, readings.c.ts < end_us
        )
        if start_us is not None:
            query = query.where(readings.c.ts >= start_us)
        with self.db.connect() as conn:
            rows = conn.execute(query.group_by("h").order_by("h")).all()
        hours = np.fromiter((int(r[0]) for r in rows), dtype=np.int64, count=len(rows))
        means = np.fromiter((float(r[1]) for r in rows), dtype=np.float64, count=len(rows))
        return hours * 3_600_000_000, means
