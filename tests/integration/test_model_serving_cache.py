"""The model server's caches: the champion re-read within `refresh`, a corrupt champion retried
every `retry` (not on every refresh), and verified API keys remembered for `ttl` seconds."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pitstop.app import Pitstop, build
from pitstop.config import Settings
from pitstop.core.types import Role
from pitstop.ml.registry import Mode
from pitstop.storage.engine import Database
from pitstop.storage.repos.keys import KeyRepo
from pitstop.testing.clock import FrozenClock
from tests.integration.test_models_lifecycle import coil_frame

NAME = "hvac-twin"


def test_champion_moves_elsewhere_are_seen_within_refresh_and_corrupt_ones_retried(
    pitstop: Pitstop, tmp_path: Path
) -> None:
    clock = pitstop.clock
    assert isinstance(clock, FrozenClock)
    frame = coil_frame("2026-03-01", 6)
    pitstop.models.retrain(NAME, frame, params={"n_estimators": 10})
    second = pitstop.models.retrain(NAME, frame, params={"n_estimators": 12}, mode=Mode.MANUAL)
    server = pitstop.models.server
    assert server is not None
    rows = frame.iloc[:2, :6].to_numpy().tolist()
    assert server.predict(NAME, rows)["version"] == 1

    # Promoted by another process (its own registry over the same database): no in-process hook fires.
    other = build(Settings(data_dir=tmp_path), clock=clock, db=pitstop.db)
    other.models.registry.promote(NAME, second.version.version, actor="test", reason="elsewhere")
    assert server.predict(NAME, rows)["version"] == 1
    clock.advance(server.refresh.total_seconds())
    assert server.predict(NAME, rows)["version"] == 2

    # The champion's artifact goes bad: the earlier version serves, and the champion is not
    # re-hashed on every refresh, only every `retry`.
    path = pitstop.models.registry.get(NAME, 2).path
    original = path.read_bytes()
    path.write_bytes(original[:-10] + b"0000000000")
    server.forget(NAME)
    assert server.predict(NAME, rows)["version"] == 1
    assert pitstop.incidents.active(f"model.corrupt:{NAME}") is not None
    path.write_bytes(original)  # repaired by hand, without moving the alias
    clock.advance(server.refresh.total_seconds())
    assert server.predict(NAME, rows)["version"] == 1
    clock.advance(server.retry.total_seconds())
    served = server.predict(NAME, rows)
    assert served["version"] == 2
    assert np.asarray(served["predictions"]).shape == (2, 3)


def test_verified_keys_are_remembered_for_ttl_and_forgotten_on_revoke(db: Database, clock: FrozenClock) -> None:
    now = [0.0]
    repo = KeyRepo(db, ttl=2.0, monotonic=lambda: now[0])
    elsewhere = KeyRepo(db)  # another process
    key, token = repo.create("ops", Role.VIEWER, clock.now())
    assert repo.cached(token) is None  # created is not verified
    assert repo.authenticate(token) == key
    assert repo.cached(token) == key
    assert repo.cached(token + "x") is None and repo.authenticate(token + "x") is None
    assert elsewhere.revoke(key.prefix, clock.now())
    now[0] = 1.9
    assert repo.authenticate(token) == key  # within ttl: still the remembered answer
    now[0] = 2.0
    assert repo.cached(token) is None
    assert repo.authenticate(token) is None  # re-checked: revoked
    assert repo.cached(token) is None

    other, other_token = repo.create("ops2", Role.VIEWER, clock.now())
    assert repo.authenticate(other_token) == other
    assert repo.revoke(other.prefix, clock.now())  # through this repository: forgotten at once
    assert repo.cached(other_token) is None and repo.authenticate(other_token) is None
