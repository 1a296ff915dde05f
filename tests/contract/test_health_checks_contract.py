"""Every registered check and every built-in notifier keeps the contract."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from pitstop import inventory
from pitstop.alerts.base import Alert, AlertItem
from pitstop.alerts.notifiers import LogNotifier
from pitstop.app import build
from pitstop.config import Settings
from pitstop.core.types import Severity
from pitstop.health.checks import BUILTIN, checks
from pitstop.incidents import parse_key
from pitstop.storage import Database
from pitstop.testing.clock import FrozenClock
from pitstop.testing.health import check_check_class, check_check_result, check_notifier

TARGETS = {
    "http": "http://127.0.0.1:1/",
    "tcp": "127.0.0.1:1",
    "rtsp": "rtsp://127.0.0.1:1/s",
    "camera_image": "rtsp://127.0.0.1:1/s",
    "modbus": "127.0.0.1:1",
    "mqtt": "127.0.0.1:1",
    "network": "lo",
    "reading": "a-1/rms",
    "predict_latency": "*",
}
BACKUP_CHECKS = ("backup", "backup_fresh", "backup_never", "backup_drill", "backup_rto")
TARGETS |= dict.fromkeys(BACKUP_CHECKS, "backups")  # every backup source
NEEDS = {"process": {"pidfile": "/nonexistent.pid"}, "process_memory": {"pidfile": "/nonexistent.pid"}}
RUN_HERE = ("cpu", "memory", "disk", "database", "logfile", "heartbeat", "job", "process", "limits", "frozen")
RUN_HERE += ("network", "process_memory", "reading", "predict_latency")
RUN_HERE += ("updates", *BACKUP_CHECKS)


def test_every_registered_check_keeps_the_contract(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'pitstop.db'}")
    db.upgrade()
    pitstop = build(Settings(data_dir=tmp_path), clock=FrozenClock(), db=db)
    (tmp_path / "app.log").write_text("ERROR x\n")
    targets = {**TARGETS, "logfile": str(tmp_path / "app.log")}
    assert {cls.name for cls in BUILTIN} <= set(checks.names())
    for name in checks.names():  # the built-ins and every installed plugin's
        cls = checks.get(name)
        target = targets.get(cls.name, str(tmp_path))
        check_check_class(cls, sample_target=target, **NEEDS.get(cls.name, {}))
        if cls.name in RUN_HERE:
            check_check_result(cls(target, params=NEEDS.get(cls.name, {})), pitstop.health.context)
    pitstop.close()


def test_per_sensor_checks_take_one_sensor_and_key_their_incident_by_it(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'pitstop.db'}")
    db.upgrade()
    pitstop = build(Settings(data_dir=tmp_path), clock=FrozenClock(), db=db)
    plant = '[[sites]]\nname = "s"\n[[assets]]\nname = "a-1"\nsite = "s"\ntype = "pump"\n'
    plant += 'sensors = [{ name = "rms", unit = "mm/s", alarm = { above = 5 } }]\n'
    inventory.apply(db, inventory.parse(plant, "plant.toml", "toml"), actor="test", now=pitstop.clock.now())
    (sensor,) = pitstop.assets.sensors()
    per_sensor = [cls for cls in BUILTIN if cls.per_sensor]
    assert {cls.name for cls in per_sensor} >= {"limits", "frozen"}
    for cls in per_sensor:
        assert cls.default_target == "*" and not cls.per_asset, f"{cls.name}: '*' expands over sensors"
        assert cls.skips(sensor) is None, f"{cls.name} skips a sensor with limits"
        result = check_check_result(cls("a-1/rms"), pitstop.health.context)
        assert result.incident_key == f"{cls.issue}:a-1/rms"
        assert parse_key(result.incident_key)[2] == "a-1/rms" and result.summary.startswith("a-1/rms: ")
    pitstop.close()


def test_log_notifier_keeps_the_contract() -> None:
    at = datetime(2026, 1, 5, tzinfo=UTC)
    alert = Alert({}, (AlertItem("cpu.high:h", "firing", Severity.WARNING, "cpu 80%", at),))
    assert check_notifier(LogNotifier(), alert).ok
