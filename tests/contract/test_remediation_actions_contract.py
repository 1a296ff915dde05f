"""Every registered action, held to the contract in its own sandbox (pitstop.testing.remediation)."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from pitstop.config.remediation import CommandSettings
from pitstop.core.types import Severity
from pitstop.incidents import Incident, IncidentState
from pitstop.remediation import ActionContext, actions
from pitstop.remediation.actions import BUILTINS
from pitstop.storage import Database
from pitstop.testing.clock import FrozenClock
from pitstop.testing.remediation import check_action, check_action_class, tree

Case = tuple[dict[str, Any], Callable[[], object]]


def incident(key: str) -> Incident:
    at = datetime(2026, 1, 5, 7, 0, tzinfo=UTC)
    return Incident(1, key, IncidentState.OPEN, Severity.WARNING, "t", None, "check:x", None, at, at, None)


def _restart(sandbox: Path) -> Case:
    script = [sys.executable, "-c", f"open({str(sandbox / 'pid')!r}, 'w').write('1')"]
    return {"manager": "script", "command": script, "grace_s": 0}, lambda: tree(sandbox)


def _free_disk(sandbox: Path) -> Case:
    root = sandbox / "rec"
    root.mkdir()
    for i in range(6):
        (root / f"{i}.mp4").write_bytes(b"v" * 100)
        os.utime(root / f"{i}.mp4", (1000 + i, 1000 + i))
    (root / "outside").symlink_to(sandbox)
    params = {"root": str(root), "patterns": ["*"], "capacity_bytes": 1000, "target_free_pct": 60, "min_age_s": 60}
    return params, lambda: tree(sandbox)


def _rotate(sandbox: Path) -> Case:
    (sandbox / "app.log").write_bytes(b"line\n" * 100)
    return {"root": str(sandbox), "max_bytes": 100, "keep": 2}, lambda: tree(sandbox)


def _two_champions(db: Database, sandbox: Path) -> Callable[[], object]:
    """hvac-twin with champions v1 then v2 (tiny twins; artifacts in the sandbox)."""
    from pitstop.incidents import IncidentRegistry
    from pitstop.ml.registry import ModelLifecycle, ModelRegistry
    from tests.integration.test_models_lifecycle import coil_frame

    clock = FrozenClock()
    registry = ModelRegistry(db, clock, data_dir=sandbox, incidents=IncidentRegistry(db, clock))
    lifecycle = ModelLifecycle(registry, IncidentRegistry(db, clock))
    frame = coil_frame("2026-01-05", 4)
    for trees in (10, 12):
        lifecycle.retrain("hvac-twin", frame, params={"n_estimators": trees}, rules=[])
    assert registry.alias("hvac-twin", "champion") == 2
    return lambda: (tree(sandbox), [m.as_dict() for m in registry.history("hvac-twin")])


def _reset_serial(sandbox: Path) -> Case:
    """A pseudo-terminal with stale input waiting; the world is what is waiting and the line's settings."""
    import fcntl
    import struct
    import termios
    import time
    import tty
    import weakref

    master, slave = os.openpty()
    port = os.ttyname(slave)
    tty.setraw(slave)
    os.close(slave)
    os.write(master, b"stale bytes")

    def line() -> tuple[int, list[Any]]:
        fd = os.open(port, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
        try:
            waiting = struct.unpack("i", fcntl.ioctl(fd, termios.FIONREAD, b"\0" * 4))[0]
            return waiting, termios.tcgetattr(fd)[:6]
        finally:
            os.close(fd)

    weakref.finalize(line, os.close, master)
    for _ in range(200):  # the kernel hands written bytes to the other end a moment later
        if line()[0] == len(b"stale bytes"):
            break
        time.sleep(0.01)
    return {"port": port, "allowed_prefixes": ["/dev/pts/"], "baudrate": 9600, "parity": "N"}, line


# Actions whose world is in the database: set it up after the schema, return the snapshot.
SETUP: dict[str, Callable[[Database, Path], Callable[[], object]]] = {"rollback_model": _two_champions}

CASES: dict[str, Callable[[Path], Case]] = {
    "restart_service": _restart,
    "free_disk": _free_disk,
    "rotate_logs": _rotate,
    "vacuum_database": lambda sandbox: ({}, lambda: None),
    "reconnect": lambda sandbox: ({"link": "database"}, lambda: None),
    "run_command": lambda sandbox: ({"command": "noop", "args": ["{target}"]}, lambda: None),
    "rollback_model": lambda sandbox: ({}, lambda: None),
    "reset_serial": _reset_serial,
}
KEYS = {
    "free_disk": "disk.low:/rec",
    "vacuum_database": "postgres.unhealthy:db",
    "reconnect": "link.down:database",
    "rollback_model": "model.accuracy:hvac-twin",
}


def test_every_builtin_action_has_a_contract_case() -> None:
    # Actions of other components (restore_file) register themselves and run check_action in
    # their own tests; every built-in one (rollback_model included) runs it here.
    assert set(CASES) == {cls.name for cls in BUILTINS} and set(CASES) <= set(actions.names())


@pytest.mark.parametrize("name", sorted(CASES))
def test_action_contract(name: str, tmp_path: Path) -> None:
    sandbox = tmp_path / "sandbox"
    sandbox.mkdir()
    params, snapshot = CASES[name](sandbox)
    cls = actions.get(name)
    check_action_class(cls, **params)
    db = Database(f"sqlite:///{tmp_path / 'pitstop.db'}")
    try:
        db.upgrade()
        if name in SETUP:
            snapshot = SETUP[name](db, sandbox)
        ctx = ActionContext(
            clock=FrozenClock(),
            db=db,
            links={"database": db},
            commands={"noop": CommandSettings(argv=["true"], destructive=False)},
            sleep=lambda s: None,
        )
        _, outcome = check_action(cls(**params), incident(KEYS.get(name, "service.down:x")), ctx, snapshot=snapshot)
        assert outcome.ok, outcome.detail
    finally:
        db.dispose()


@pytest.mark.parametrize(
    ("name", "params"),
    [
        ("free_disk", {"root": "/", "target_free_pct": 10}),
        ("free_disk", {"root": "/tmp/x", "target_free_pct": 10, "patterns": ["../*"]}),
        ("free_disk", {"root": "/tmp/x", "target_free_pct": 100}),
        ("restart_service", {"manager": "systemd"}),
        ("restart_service", {"manager": "systemd", "unit": "--force"}),
        ("restart_service", {"manager": "cron", "unit": "x"}),
        ("run_command", {"command": "x", "args": "not a list"}),
        ("vacuum_database", {"url": "sqlite:///x.db"}),
        ("reconnect", {}),
        ("rollback_model", {"model": "hvac-twin"}),
    ],
)
def test_bad_parameters_are_refused(name: str, params: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=name):
        actions.create(name, **params)
