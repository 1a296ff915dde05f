"""The command line as a user meets it: exit codes, one-line errors, nothing half-written."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import DEMO_INVENTORY


def pitstop(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("PITSTOP_")}
    return subprocess.run(
        [sys.executable, "-m", "pitstop", *args],
        cwd=cwd,
        env={**base, "COLUMNS": "200", **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_commands_against_an_embedded_database(tmp_path: Path) -> None:
    status = pitstop("db", "status", cwd=tmp_path)
    assert status.returncode == 1
    assert "pitstop db upgrade" in status.stderr
    # a command on a database that is behind says so, and does not touch it
    listing = pitstop("assets", "list", cwd=tmp_path)
    assert listing.returncode == 1
    assert "pitstop db upgrade" in listing.stderr
    assert pitstop("db", "upgrade", cwd=tmp_path).returncode == 0
    assert pitstop("db", "status", cwd=tmp_path).returncode == 0
    loaded = pitstop("assets", "load", str(DEMO_INVENTORY), cwd=tmp_path)
    assert loaded.returncode == 0, loaded.stderr
    assert "36 created" in loaded.stdout
    again = pitstop("assets", "load", str(DEMO_INVENTORY), cwd=tmp_path)
    assert "0 created, 0 updated, 36 unchanged" in again.stdout
    listing = pitstop("assets", "list", "--json", cwd=tmp_path)
    assert '"name": "ahu-1"' in listing.stdout
    key = pitstop("keys", "create", "--role", "operator", "--name", "scada", cwd=tmp_path)
    assert key.returncode == 0
    assert key.stdout.strip().startswith("ps_")
    assert "scada" in pitstop("keys", "list", cwd=tmp_path).stdout
    assert (tmp_path / "pitstop-data" / "pitstop.db").exists()


def test_bad_inventory_is_refused_with_the_line(tmp_path: Path) -> None:
    pitstop("db", "upgrade", cwd=tmp_path)
    bad = tmp_path / "inv.toml"
    bad.write_text('[[sites]]\nname = "s"\n[[assets]]\nname = "a"\nsite = "s"\ntype = "t"\nparent = "nope"\n')
    result = pitstop("assets", "load", str(bad), cwd=tmp_path)
    assert result.returncode == 2
    assert "inv.toml: line 4: asset 'a' has unknown parent 'nope'" in result.stderr
    assert "Traceback" not in result.stderr
    assert "0 created" not in result.stdout
    listing = pitstop("assets", "list", "--json", cwd=tmp_path)
    assert listing.stdout.strip() == "[]"


def test_config_show_masks_secrets_and_bad_config_exits_2(tmp_path: Path) -> None:
    env = {"PITSTOP_DATABASE_URL": "postgresql://plant:hunter2@db.local/pitstop"}
    shown = pitstop("config", "show", cwd=tmp_path, env=env)
    assert shown.returncode == 0
    assert "hunter2" not in shown.stdout
    assert "postgresql://plant:***@db.local/pitstop" in shown.stdout
    (tmp_path / "pitstop.toml").write_text("[scheduler]\ntick_seconds = -1\n")
    broken = pitstop("config", "show", cwd=tmp_path)
    assert broken.returncode == 2
    assert "scheduler.tick_seconds" in broken.stderr
    assert len(broken.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("flag", ["--port=80000", "--log-level=LOUD"])
def test_bad_flags_are_refused(tmp_path: Path, flag: str) -> None:
    args = ["serve", flag] if flag.startswith("--port") else [flag, "serve"]
    result = pitstop(*args, cwd=tmp_path)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr


def test_unreachable_database_is_one_line(tmp_path: Path) -> None:
    result = pitstop("--database-url", "postgresql://x@127.0.0.1:1/none", "db", "status", cwd=tmp_path)
    assert result.returncode == 1
    assert "is not reachable" in result.stderr
    assert "Traceback" not in result.stderr
