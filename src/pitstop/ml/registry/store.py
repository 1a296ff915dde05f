"""The model registry: versions with envelopes in the database, artifacts under data_dir, aliases.

Every alias move is a row (from, to, who, when, why); the latest row per (name, alias) is where it
points, and the rows answer "which version served on date D". Loading checks the artifact's sha256
before parsing it: a mismatch opens ``model.corrupt:<name>`` and `serving` falls back to the last
champion whose artifact is intact. A version's input drift reference is the profile stored with it,
or the latest one re-taken from a window (`rebaseline`); every earlier one stays for audit.
"""

from __future__ import annotations

import hashlib
import json
import platform
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from importlib.metadata import version as package_version
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
from sqlalchemy import delete, func, insert, select

from pitstop.core.clock import Clock
from pitstop.core.types import Severity
from pitstop.errors import InvalidInput, NotFound, PitstopError
from pitstop.incidents import IncidentRegistry
from pitstop.ml.drift import MIN_CURRENT_ROWS, ReferenceProfile
from pitstop.ml.twins import Twin
from pitstop.storage.engine import Database
from pitstop.storage.schema import model_alias_moves, model_decisions, model_drift, model_references, model_versions

ENVELOPE_FORMAT = 1
ALIASES = ("champion", "challenger")
PROBE_ROWS = 64
PARITY_TOLERANCE = 1e-6
RESIDUAL = "residual:"  # prefix of residual features in the stored profile


class ModelCorrupt(PitstopError):
    code = "model.corrupt"


@dataclass(frozen=True, slots=True)
class ModelVersion:
    name: str
    version: int
    created_at: datetime
    trigger: str
    path: Path
    size: int
    sha256: str
    envelope: dict[str, Any]

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "created_at": self.created_at.isoformat(),
            "trigger": self.trigger,
            "path": str(self.path),
            "size": self.size,
            "sha256": self.sha256,
            "envelope": self.envelope,
        }


@dataclass(frozen=True, slots=True)
class AliasMove:
    name: str
    alias: str
    from_version: int | None
    to_version: int | None
    actor: str
    at: datetime
    reason: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "alias": self.alias,
            "from": self.from_version,
            "to": self.to_version,
            "actor": self.actor,
            "at": self.at.isoformat(),
            "reason": self.reason,
        }


def _span(values: pd.Series) -> list[float] | None:
    """[min, max] of the finite values, or None when there are none."""
    finite = values.to_numpy(dtype=np.float64)
    finite = finite[np.isfinite(finite)]
    return [float(finite.min()), float(finite.max())] if len(finite) else None


def feature_hash(schema: list[dict[str, str]]) -> str:
    return hashlib.sha256(json.dumps(schema, sort_keys=True).encode()).hexdigest()


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


class ModelRegistry:
    def __init__(self, db: Database, clock: Clock, *, data_dir: Path, incidents: IncidentRegistry) -> None:
        self.db = db
        self.clock = clock
        self.root = Path(data_dir) / "models" / "registry"
        self.incidents = incidents
        # Called with every alias move once it is recorded (the server drops its cached predictor;
        # app.py puts champion moves in the maintenance log).
        self.on_move: list[Callable[[AliasMove], None]] = []
        self.on_decision: list[Callable[[str, int, dict[str, Any]], None]] = []  # (name, id, record)
        self.on_rebaseline: list[Callable[[dict[str, Any]], None]] = []  # a re-taken drift reference's row

    # -- versions -------------------------------------------------------------------------------
    def register(
        self,
        name: str,
        twin: Twin,
        *,
        train: pd.DataFrame,
        metrics: dict[str, Any],
        trigger: str,
        excluded: list[dict[str, str]] | None = None,
        residuals: Mapping[str, npt.ArrayLike] | None = None,
    ) -> ModelVersion:
        """Save the artifact, compute the envelope and the drift profile of the inputs (and of the
        hold-out residuals per output, when given), add a row."""
        _check_name(name)
        now = self.clock.now()
        with self.db.connect() as conn:
            latest = conn.execute(
                select(func.max(model_versions.c.version)).where(model_versions.c.name == name)
            ).scalar()
        version = int(latest or 0) + 1
        path = self.root / name / f"v{version}.json"
        probe = train[list(twin.inputs)].to_numpy(dtype=np.float64)[-PROBE_ROWS:]
        schema = [{"name": c, "dtype": "float64", "role": "input"} for c in twin.inputs] + [
            {"name": c, "dtype": "float64", "role": "output"} for c in twin.outputs
        ]
        index = train.index
        envelope: dict[str, Any] = {
            "format": ENVELOPE_FORMAT,
            "libraries": {
                "python": platform.python_version(),
                "lightgbm": package_version("lightgbm"),
                "numpy": np.__version__,
                "scikit-learn": package_version("scikit-learn"),
            },
            "training": {
                "start": _iso(index.min()) if len(index) else None,
                "end": _iso(index.max()) if len(index) else None,
                "rows": len(train),
                "excluded": excluded or [],
            },
            "features": schema,
            "feature_hash": feature_hash(schema),
            "metrics": metrics,
            "trigger": trigger,
            "probe": {"inputs": probe.tolist(), "outputs": twin.predict_array(probe).tolist()},
            # what the twin has seen: serving marks inputs outside it
            "ranges": {c: _span(train[c]) for c in (*twin.inputs, *twin.outputs) if c in train},
        }
        twin.save(path, metadata={"name": name, "version": version})
        size, digest = path.stat().st_size, sha256_of(path)
        envelope["size"], envelope["sha256"] = size, digest
        columns: dict[str, npt.ArrayLike] = {c: train[c].to_numpy() for c in twin.inputs}
        columns |= {f"{RESIDUAL}{k}": v for k, v in (residuals or {}).items()}
        profile = ReferenceProfile.of(columns)
        with self.db.begin() as conn:
            conn.execute(
                insert(model_versions).values(
                    name=name,
                    version=version,
                    created_at=now,
                    trigger=trigger[:200],  # the column's size; the envelope keeps all of it
                    path=str(path),
                    size=size,
                    sha256=digest,
                    envelope=json.dumps(envelope),
                    profile=json.dumps(profile.as_dict()),
                )
            )
        return self.get(name, version)

    def get(self, name: str, version: int) -> ModelVersion:
        with self.db.connect() as conn:
            row = conn.execute(
                select(model_versions).where(model_versions.c.name == name, model_versions.c.version == version)
            ).one_or_none()
        if row is None:
            raise NotFound(f"no version {version} of model {name!r}")
        return _version(row)

    def names(self) -> list[str]:
        """Every model with a registered version."""
        with self.db.connect() as conn:
            query = select(model_versions.c.name).distinct().order_by(model_versions.c.name)
            return list(conn.execute(query).scalars())

    def versions(self, name: str | None = None) -> list[ModelVersion]:
        query = select(model_versions).order_by(model_versions.c.name, model_versions.c.version)
        if name is not None:
            query = query.where(model_versions.c.name == name)
        with self.db.connect() as conn:
            return [_version(r) for r in conn.execute(query)]

    def profile(self, name: str, version: int) -> ReferenceProfile:
        """The reference profile of the version's inputs: the latest re-taken one (`rebaseline`), else
        the one computed from its training inputs at registration."""
        with self.db.connect() as conn:
            text = conn.execute(
                select(model_references.c.profile)
                .where(model_references.c.name == name, model_references.c.version == version)
                .order_by(model_references.c.id.desc())
                .limit(1)
            ).scalar()
        if text is not None:
            return ReferenceProfile.from_dict(json.loads(text))
        stored = self._profile(name, version)
        return ReferenceProfile({k: p for k, p in stored.features.items() if not k.startswith(RESIDUAL)})

    def rebaseline(
        self,
        name: str,
        version: int,
        window: pd.DataFrame,
        *,
        actor: str,
        reason: str,
        start: datetime,
        end: datetime,
    ) -> dict[str, Any]:
        """Re-take the version's input reference from ``window`` (its readings of [start, end)): the
        drift of its inputs is judged against that from now on. The residual reference stays (residual
        drift says the model no longer fits: retrain for that). The row, with who and why, and a
        listeners (app.py: the maintenance log) are told after the commit; the stored drift report of the version is
        dropped (the next one is against the new reference). Returns the row."""
        previous = self.profile(name, version)
        features = list(previous.features)
        absent = [c for c in features if c not in window]
        if absent:
            raise InvalidInput(f"the window lacks inputs {absent} of model {name}")
        rows = len(window.dropna(subset=features))
        if rows < MIN_CURRENT_ROWS:
            raise InvalidInput(
                f"model {name}: {rows} complete rows in {start.isoformat()} .. {end.isoformat()}; "
                f"a reference needs at least {MIN_CURRENT_ROWS}"
            )
        profile = ReferenceProfile.of({c: window[c].to_numpy() for c in features})
        now = self.clock.now()
        values = {
            "name": name,
            "version": version,
            "at": now,
            "actor": actor,
            "reason": reason,
            "window_start": start,
            "window_end": end,
            "rows": rows,
        }
        with self.db.begin() as conn:
            key = conn.execute(
                insert(model_references).values(**values, profile=json.dumps(profile.as_dict()))
            ).inserted_primary_key
            assert key is not None
            conn.execute(delete(model_drift).where(model_drift.c.name == name, model_drift.c.version == version))
        row = {"id": int(key[0]), **values, "at": now.isoformat(), **_window(start, end)}
        for listener in self.on_rebaseline:
            listener(row)
        return row

    def references(self, name: str) -> list[dict[str, Any]]:
        """Every re-taken reference of the model's versions, oldest first (without the profiles)."""
        query = (
            select(*(c for c in model_references.c if c.name != "profile"))
            .where(model_references.c.name == name)
            .order_by(model_references.c.id)
        )
        with self.db.connect() as conn:
            return [
                {**dict(r._mapping), "at": r.at.isoformat(), **_window(r.window_start, r.window_end)}
                for r in conn.execute(query)
            ]

    def residual_profile(self, name: str, version: int) -> ReferenceProfile | None:
        """The profile of the hold-out residuals per output; None for versions registered without."""
        stored = self._profile(name, version)
        found = {k.removeprefix(RESIDUAL): p for k, p in stored.features.items() if k.startswith(RESIDUAL)}
        return ReferenceProfile(found) if found else None

    def _profile(self, name: str, version: int) -> ReferenceProfile:
        with self.db.connect() as conn:
            text = conn.execute(
                select(model_versions.c.profile).where(
                    model_versions.c.name == name, model_versions.c.version == version
                )
            ).scalar()
        if text is None:
            raise NotFound(f"no version {version} of model {name!r}")
        return ReferenceProfile.from_dict(json.loads(text))

    # -- loading --------------------------------------------------------------------------------
    def load(self, name: str, version: int) -> Twin:
        """The twin of a version after its sha256 matched; ModelCorrupt (and an incident) if not."""
        mv = self.get(name, version)
        actual = sha256_of(mv.path) if mv.path.exists() else "missing"
        if actual != mv.sha256:
            self.incidents.open_or_update(
                f"model.corrupt:{name}",
                severity=Severity.CRITICAL,
                title=f"model {name} version {version}: artifact sha256 mismatch",
                detail=f"{mv.path}: expected {mv.sha256}, found {actual}",
                source="models",
            )
            raise ModelCorrupt(f"model {name} version {version}: artifact {mv.path} failed its sha256 check")
        return Twin.load(mv.path)

    def parity(self, name: str, version: int, twin: Twin) -> float:
        """Largest difference between the twin's predictions and those recorded at registration."""
        probe = self.get(name, version).envelope["probe"]
        predicted = twin.predict_array(np.asarray(probe["inputs"], dtype=np.float64))
        return float(np.max(np.abs(predicted - np.asarray(probe["outputs"], dtype=np.float64)), initial=0.0))

    def serving(self, name: str) -> tuple[int, Twin]:
        """The champion, or when its artifact is corrupt, the latest earlier champion that loads."""
        tried: list[int] = []
        for version in self.champion_history(name):
            if version in tried:
                continue
            tried.append(version)
            try:
                return version, self.load(name, version)
            except ModelCorrupt:
                continue
        raise NotFound(f"model {name!r} has no loadable champion (tried {tried})")

    def champion_history(self, name: str) -> list[int]:
        """Versions the champion alias pointed to, newest first (the current one first)."""
        return [m.to_version for m in reversed(self.history(name, "champion")) if m.to_version is not None]

    # -- aliases --------------------------------------------------------------------------------
    def alias(self, name: str, alias: str) -> int | None:
        with self.db.connect() as conn:
            row = conn.execute(
                select(model_alias_moves.c.to_version)
                .where(model_alias_moves.c.name == name, model_alias_moves.c.alias == alias)
                .order_by(model_alias_moves.c.id.desc())
                .limit(1)
            ).one_or_none()
        return None if row is None else row[0]

    def move(self, name: str, alias: str, to: int | None, *, actor: str, reason: str) -> AliasMove:
        if alias not in ALIASES:
            raise InvalidInput(f"alias must be one of {list(ALIASES)}, got {alias!r}")
        if to is not None:
            self.get(name, to)
        now = self.clock.now()
        with self.db.begin() as conn:
            current = conn.execute(
                select(model_alias_moves.c.to_version)
                .where(model_alias_moves.c.name == name, model_alias_moves.c.alias == alias)
                .order_by(model_alias_moves.c.id.desc())
                .limit(1)
            ).scalar()
            values = {
                "name": name,
                "alias": alias,
                "from_version": current,
                "to_version": to,
                "actor": actor,
                "at": now,
                "reason": reason,
            }
            conn.execute(insert(model_alias_moves).values(**values))
        move = AliasMove(name, alias, current, to, actor, now, reason)
        for listener in self.on_move:
            listener(move)
        return move

    def promote(self, name: str, version: int, *, actor: str, reason: str) -> AliasMove:
        self.load(name, version)
        move = self.move(name, "champion", version, actor=actor, reason=reason)
        if self.alias(name, "challenger") == version:
            self.move(name, "challenger", None, actor=actor, reason=f"promoted to champion: {reason}")
        return move

    def rollback(self, name: str, *, actor: str, reason: str) -> AliasMove:
        """Move the champion back to the previous champion, after it loads and passes parity."""
        current = self.alias(name, "champion")
        previous = next((v for v in self.champion_history(name) if v != current), None)
        if current is None or previous is None:
            raise NotFound(f"model {name!r} has no previous champion to roll back to")
        twin = self.load(name, previous)
        gap = self.parity(name, previous, twin)
        if gap > PARITY_TOLERANCE:
            raise ModelCorrupt(f"model {name} version {previous} fails its parity check (gap {gap:.3g})")
        return self.move(name, "champion", previous, actor=actor, reason=f"rollback from v{current}: {reason}")

    def history(self, name: str, alias: str | None = None) -> list[AliasMove]:
        query = select(model_alias_moves).where(model_alias_moves.c.name == name).order_by(model_alias_moves.c.id)
        if alias is not None:
            query = query.where(model_alias_moves.c.alias == alias)
        with self.db.connect() as conn:
            return [
                AliasMove(r.name, r.alias, r.from_version, r.to_version, r.actor, r.at, r.reason)
                for r in conn.execute(query)
            ]

    def served_at(self, name: str, when: datetime) -> int | None:
        """The champion version at time ``when`` (None before the first promotion)."""
        served = None
        for move in self.history(name, "champion"):
            if move.at > when:
                break
            served = move.to_version
        return served

    # -- decisions ------------------------------------------------------------------------------
    def record_decision(self, name: str, record: dict[str, Any]) -> int:
        with self.db.begin() as conn:
            key = conn.execute(
                insert(model_decisions).values(
                    name=name,
                    candidate=record["candidate"],
                    champion=record["champion"],
                    at=self.clock.now(),
                    passed=int(bool(record["passed"])),
                    record=json.dumps(record),
                )
            ).inserted_primary_key
        assert key is not None
        for listener in self.on_decision:
            listener(name, int(key[0]), record)
        return int(key[0])

    def last_decision_at(self, name: str) -> datetime | None:
        """When the model's latest decision (gates, or prerequisites that failed) was recorded."""
        with self.db.connect() as conn:
            at: datetime | None = conn.execute(
                select(func.max(model_decisions.c.at)).where(model_decisions.c.name == name)
            ).scalar()
        return at

    def decisions(self, name: str) -> list[dict[str, Any]]:
        with self.db.connect() as conn:
            rows = conn.execute(
                select(model_decisions).where(model_decisions.c.name == name).order_by(model_decisions.c.id)
            )
            return [{"id": r.id, "at": r.at.isoformat(), **json.loads(r.record)} for r in rows]


def _check_name(name: str) -> None:
    if not name or len(name) > 200 or not all(c.isalnum() or c in "-_." for c in name) or name.startswith("."):
        raise InvalidInput(f"model name {name[:80]!r}: use letters, digits, '-', '_' and '.'")


def _window(start: datetime, end: datetime) -> dict[str, str]:
    return {"window_start": start.isoformat(), "window_end": end.isoformat()}


def _iso(value: Any) -> str:
    return value.isoformat() if hasattr(value, "isoformat") else str(value)


def _version(row: Any) -> ModelVersion:
    return ModelVersion(
        row.name,
        row.version,
        row.created_at,
        row.trigger,
        Path(row.path),
        row.size,
        row.sha256,
        json.loads(row.envelope),
    )
