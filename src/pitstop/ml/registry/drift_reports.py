"""Drift reports computed ahead: each model's champion and challenger against the latest
`models.drift_window_days` of readings, stored in `model_drift` by the `model-drift` job (every
DRIFT_EVERY), so the dashboard shows a stored report with its time instead of computing one per
page view."""

from __future__ import annotations

import json
import logging
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, insert, select
from sqlalchemy.exc import IntegrityError

from pitstop.errors import PitstopError
from pitstop.storage.schema import model_drift

if TYPE_CHECKING:
    from pitstop.core.clock import Clock
    from pitstop.ml.registry.data import ModelData
    from pitstop.ml.registry.lifecycle import ModelLifecycle
    from pitstop.storage.engine import Database

DRIFT_EVERY = timedelta(minutes=5)
JOB = "model-drift"
log = logging.getLogger("pitstop.models")


class DriftReports:
    def __init__(
        self, models: ModelLifecycle, data: ModelData, *, db: Database, clock: Clock, window_days: float
    ) -> None:
        self.models = models
        self.data = data
        self.db = db
        self.clock = clock
        self.window_days = window_days

    def names(self) -> list[str]:
        return sorted({v.name for v in self.models.registry.versions()})

    def scheduled(self, now: datetime) -> None:
        self.refresh()

    def refresh(self) -> list[tuple[str, int]]:
        """Compute and store the drift of every model's champion and challenger; returns what was
        stored."""
        done: list[tuple[str, int]] = []
        for name in self.names():
            for alias in ("champion", "challenger"):
                version = self.models.registry.alias(name, alias)
                if version is not None and (name, version) not in done:
                    self._store(name, version, self.compute(name, version))
                    done.append((name, version))
        return done

    def latest(self, name: str, version: int) -> dict[str, Any]:
        """The stored report of a version, computed (and stored) now when there is none yet."""
        result = self.stored(name, version)
        if result is None:
            result = self.compute(name, version)
            self._store(name, version, result)
        return result

    def stored(self, name: str, version: int) -> dict[str, Any] | None:
        query = select(model_drift.c.computed_at, model_drift.c.result).where(
            model_drift.c.name == name, model_drift.c.version == version
        )
        with self.db.connect() as conn:
            row = conn.execute(query).first()
        if row is None:
            return None
        return {**json.loads(row.result), "computed_at": row.computed_at}

    def compute(self, name: str, version: int) -> dict[str, Any]:
        """Per feature PSI, band, KS and the bin shares (the report as JSON), or the reason there is none."""
        days = self.window_days
        result: dict[str, Any] = {"days": days, "report": None, "error": None}
        try:
            frame = self.data.frame(name, since=self.clock.now() - timedelta(days=days))
            if frame.empty:
                result["error"] = f"no readings in the last {days:g} days"
            else:
                result["report"] = self.models.drift(name, frame, version=version).as_dict()
        except PitstopError as exc:
            result["error"] = str(exc)
        except Exception as exc:  # a broken model must not stop the others' reports
            log.warning("drift of %s v%d failed", name, version, exc_info=True)
            result["error"] = f"{type(exc).__name__}: {exc}"[:300]
        result["computed_at"] = self.clock.now()
        return result

    def _store(self, name: str, version: int, result: dict[str, Any]) -> None:
        body = json.dumps({k: v for k, v in result.items() if k != "computed_at"})
        row = {"name": name, "version": version, "computed_at": result["computed_at"], "window_days": result["days"]}
        try:
            with self.db.begin() as conn:
                conn.execute(delete(model_drift).where(model_drift.c.name == name, model_drift.c.version == version))
                conn.execute(insert(model_drift).values(**row, result=body))
        except IntegrityError:  # another process stored the same version's result at the same moment
            log.info("drift of %s v%d stored by another process", name, version)
