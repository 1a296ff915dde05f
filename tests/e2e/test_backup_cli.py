"""`pitstop backup ...` end to end on a SQLite data directory."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from pitstop.cli.main import app
from pitstop.errors import PitstopError


def _run(data: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["--data-dir", str(data), *args])
    if isinstance(result.exception, PitstopError):  # main() prints these as one line and exits
        return result.exception.exit_code, str(result.exception)
    return result.exit_code, result.output


def test_run_list_verify_drill_prune_restore(tmp_path: Path) -> None:
    data = tmp_path / "data"
    models = tmp_path / "models"
    models.mkdir()
    (models / "twin.json").write_text('{"coef": [1, 2, 3]}')
    (tmp_path / "pitstop.toml").write_text(
        f'data_dir = "{data}"\n'
        "[backup]\nschedule = false\n"
        f'[[backup.sources]]\nname = "models"\nkind = "models"\npath = "{models}"\n'
    )
    config = ["--config", str(tmp_path / "pitstop.toml")]
    assert _run(data, *config, "db", "upgrade")[0] == 0

    code, output = _run(data, *config, "backup", "run", "--json")
    assert code == 0, output
    created = json.loads(output)
    assert created["sources"] == ["pitstop-db", "models"]

    code, output = _run(data, *config, "backup", "list", "--json")
    assert [s["id"] for s in json.loads(output)] == [created["id"]]
    code, output = _run(data, *config, "backup", "verify")
    assert code == 0 and "2 files match the manifest" in output
    code, output = _run(data, *config, "backup", "drill", "--json")
    assert code == 0, output
    assert json.loads(output)["ok"] is True
    code, output = _run(data, *config, "backup", "prune", "--dry-run", "--json")
    (dest,) = json.loads(output)["destinations"]
    assert dest["sets"][0]["keep"] is True and "daily" in dest["sets"][0]["reasons"]

    (models / "twin.json").write_text("corrupt")
    code, output = _run(data, *config, "backup", "restore", "latest", "--source", "models")
    assert code == 1 and "--force" in output
    code, output = _run(data, *config, "backup", "restore", "latest", "--source", "models", "--file", "twin.json")
    assert code == 0, output
    assert json.loads((models / "twin.json").read_text()) == {"coef": [1, 2, 3]}

    stored = Path(created["path"]) / "data" / "models" / "000000"
    raw = bytearray(stored.read_bytes())
    raw[5] ^= 0xFF
    stored.write_bytes(bytes(raw))
    code, output = _run(data, *config, "backup", "verify", created["id"])
    assert code == 1
    assert "models/twin.json: stored checksum differs from the manifest" in output
