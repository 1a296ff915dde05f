"""`pitstop heal --plan | run | list | show | approve | reject | reset | kpis` against an embedded database."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from pitstop.app import build
from pitstop.config import load_settings
from pitstop.core.types import Severity
from tests.e2e.test_health_cli import InProcess

CONFIG = """
data_dir = "{data}"
[health]
default_checks = false
[[remediation.rules]]
match = "disk.low:{root}"
action = "free_disk"
params = {{ root = "{root}", patterns = ["*.mp4"], capacity_bytes = 1000, target_free_pct = 50, min_age_s = 0 }}
"""


def test_heal_plan_approve_run_and_record(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in [k for k in os.environ if k.startswith("PITSTOP_")]:
        monkeypatch.delenv(name)
    root = tmp_path / "rec"
    root.mkdir()
    for i in range(8):
        (root / f"{i}.mp4").write_bytes(b"x" * 100)
        os.utime(root / f"{i}.mp4", (1_000_000 + i, 1_000_000 + i))
    (tmp_path / "pitstop.toml").write_text(CONFIG.format(data=tmp_path / "data", root=root))
    pitstop = InProcess(capsys, monkeypatch)
    assert pitstop("db", "upgrade", cwd=tmp_path).returncode == 0
    app = build(load_settings(tmp_path / "pitstop.toml"))
    app.incidents.open_or_update(f"disk.low:{root}", severity=Severity.WARNING, title="recordings full")
    app.close()

    plan = pitstop("heal", "--plan", "--json", cwd=tmp_path)
    assert plan.returncode == 0, plan.stderr
    [p] = json.loads(plan.stdout)
    assert p["decision"] == "await approval" and p["plan"]["params"]["files"] == ["0.mp4", "1.mp4", "2.mp4"]
    ran = pitstop("heal", "run", "--json", cwd=tmp_path)
    assert [r["state"] for r in json.loads(ran.stdout)] == ["awaiting_approval"]
    assert len(list(root.iterdir())) == 8
    assert pitstop("heal", "approve", "1", "--actor", "ana", cwd=tmp_path).returncode == 0
    healed = json.loads(pitstop("heal", "run", "--json", cwd=tmp_path).stdout)
    assert [r["state"] for r in healed] == ["healed"]
    assert sorted(p.name for p in root.iterdir()) == [f"{i}.mp4" for i in range(3, 8)]
    shown = json.loads(pitstop("heal", "show", "1", "--json", cwd=tmp_path).stdout)
    applied = next(s for s in shown["steps"] if s["step"] == "applied")
    assert applied["data"]["removed"] == ["0.mp4", "1.mp4", "2.mp4"]
    listed = json.loads(pitstop("heal", "list", "--json", cwd=tmp_path).stdout)
    assert [r["id"] for r in listed["remediations"]] == [1] and listed["breakers"] == []
    assert json.loads(pitstop("heal", "kpis", "--json", cwd=tmp_path).stdout)["by_action"]["free_disk"]["healed"] == 1
    missing = pitstop("heal", "reset", "/nowhere", cwd=tmp_path)
    assert missing.returncode == 1 and "no open circuit breaker" in missing.stderr
    twice = pitstop("heal", "reject", "1", cwd=tmp_path)
    assert twice.returncode == 2 and "awaiting approval" in twice.stderr
