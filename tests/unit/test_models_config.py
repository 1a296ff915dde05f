"""`[models]` in pitstop.toml: gates per model, retraining triggers; clear errors; `config show`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pitstop.cli.main import app
from pitstop.config import load_settings
from pitstop.errors import ConfigError
from pitstop.ml.registry.gates import KINDS, validate

GOOD = """
[models]
interval_minutes = 30

[models.twins.hvac-twin]
mode = "manual"
accuracy_floor = 0.6

[[models.twins.hvac-twin.gates]]
rule = "min"
metric = "r2"
value = 0.9

[[models.twins.hvac-twin.gates]]
rule = "not_worse_pct"
metric = "mae"
pct = 5

[[models.twins.hvac-twin.gates]]
rule = "latency_p95_ms"
value = 5

[[models.twins.hvac-twin.gates]]
rule = "onnx_parity"
tolerance = 1e-4

[models.twins.hvac-twin.retrain]
every_days = 90
on_drift = "warn"
accuracy_drop = 0.2
"""


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import os

    for name in list(os.environ):
        if name.startswith("PITSTOP_") and name != "PITSTOP_REQUIRE_SERVICES":
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


def test_gates_and_triggers_load_and_match_the_gate_kinds(tmp_path: Path) -> None:
    (tmp_path / "pitstop.toml").write_text(GOOD)
    s = load_settings()
    model = s.models.twins["hvac-twin"]
    assert s.models.interval_minutes == 30 and model.mode == "manual" and model.accuracy_floor == 0.6
    assert model.retrain.every_days == 90 and model.retrain.on_drift == "warn"
    assert model.gates is not None
    rules = validate([g.model_dump() for g in model.gates])
    assert rules[0] == {"rule": "min", "metric": "r2", "value": 0.9}
    assert rules[3] == {"rule": "onnx_parity", "tolerance": 1e-4}
    assert all(r["rule"] in KINDS for r in rules)
    # Without [models.twins.<name>] nothing changes: default gates, no lifecycle job.
    (tmp_path / "pitstop.toml").write_text("")
    assert load_settings().models.twins == {}


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("[[models.twins.hvac-twin.gates]]\nrule = 'min'\nmetric = 'r2'\n", "models.twins.hvac-twin.gates.0.min.value"),
        ("[[models.twins.hvac-twin.gates]]\nrule = 'best'\n", "models.twins.hvac-twin.gates.0"),
        ("[[models.twins.hvac-twin.gates]]\nrule = 'max'\nmetric = 'rmse'\nvalue = 1\n", "gates.0.max.metric"),
        ("[[models.twins.hvac-twin.gates]]\nrule = 'not_worse'\nmetric = 'r2'\npct = 5\n", "gates.0.not_worse.pct"),
        ("[[models.twins.hvac-twin.gates]]\nrule = 'size_mb'\nvalue = 0\n", "gates.0.size_mb.value"),
        ("[[models.twins.hvac-twin.gates]]\nrule = 'onnx_parity'\ntolerance = 2\n", "gates.0.onnx_parity.tolerance"),
        ("[models.twins.hvac-twin.retrain]\non_drift = 'high'\n", "models.twins.hvac-twin.retrain.on_drift"),
        ("[models.twins.hvac-twin.retrain]\naccuracy_drop = 1.5\n", "retrain.accuracy_drop"),
        ("[models.twins.hvac-twin]\nmode = 'auto'\n", "models.twins.hvac-twin.mode"),
        ("[models.twins.hvac-twin]\ngate = []\n", "models.twins.hvac-twin.gate"),
        ("[models.twins.'bad name']\nmode = 'manual'\n", "models.twins.bad name"),
        ("[models]\ninterval_minutes = 0\n", "models.interval_minutes"),
    ],
)
def test_invalid_model_settings_name_the_key(tmp_path: Path, content: str, expected: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(content)
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    message = str(info.value)
    assert expected in message and "\n" not in message


def test_config_show_lists_the_gates(tmp_path: Path) -> None:
    (tmp_path / "pitstop.toml").write_text(GOOD)
    runner = CliRunner()
    shown = runner.invoke(app, ["config", "show", "--json"])
    assert shown.exit_code == 0, shown.output
    gates = json.loads(shown.output)["models"]["twins"]["hvac-twin"]["gates"]
    assert gates[0] == {"rule": "min", "metric": "r2", "value": 0.9}
    table = runner.invoke(app, ["config", "show"])
    assert table.exit_code == 0
    assert "models.twins.hvac-twin.gates" in table.output and "latency_p95_ms" in table.output
