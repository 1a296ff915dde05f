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


def test_the_onnx_graph_is_kept_beside_the_artifact_and_used_only_when_it_matches(
    pitstop: Pitstop, tmp_path: Path
) -> None:
    """A server that loads a version reads its ONNX graph from the file the retrain kept, not by
    converting the twin again (which costs the process onnx, onnxmltools and ~30 MB); a kept graph
    that is damaged, or computes something else, is converted again and rewritten."""
    frame = coil_frame("2026-03-01", 6)
    pitstop.models.retrain(NAME, frame, params={"n_estimators": 10})
    other_coil = coil_frame("2026-04-01", 6, seed=11)
    pitstop.models.retrain(NAME, other_coil, params={"n_estimators": 40}, mode=Mode.MANUAL)
    registry = pitstop.models.registry
    first, second = registry.get(NAME, 1), registry.get(NAME, 2)
    kept = {v.version: v.path.with_name(f"{v.path.stem}.{v.sha256[:16]}.onnx") for v in (first, second)}
    assert all(path.is_file() for path in kept.values())
    rows = frame.iloc[:5, :6].to_numpy().tolist()
    native = registry.load(NAME, 1).predict_array(np.asarray(rows))

    def served() -> dict[str, object]:
        """What a freshly started server (another process's, over the same database) answers."""
        other = build(Settings(data_dir=tmp_path / "other"), clock=pitstop.clock, db=pitstop.db)
        assert other.models.server is not None
        return other.models.server.predict(NAME, rows)

    answer = served()
    assert answer["path"] == "onnxruntime" and answer["version"] == 1
    assert np.allclose(answer["predictions"], native, rtol=1e-3)

    for damage in (b"not a graph", kept[2].read_bytes()):  # unreadable; another version's graph
        kept[1].write_bytes(damage)
        answer = served()
        assert answer["path"] == "onnxruntime"
        assert np.allclose(answer["predictions"], native, rtol=1e-3)
        assert kept[1].read_bytes() != damage  # converted again and rewritten
