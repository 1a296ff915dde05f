from __future__ import annotations

from pathlib import Path

import pytest

from pitstop.config import load_settings, masked
from pitstop.errors import ConfigError


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import os

    for name in list(os.environ):
        if name.startswith("PITSTOP_") and name != "PITSTOP_REQUIRE_SERVICES":
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


def test_defaults_without_a_file() -> None:
    s = load_settings()
    assert s.api.port == 8000
    assert s.database_url().startswith("sqlite:///")
    assert s.database_url().endswith("pitstop-data/pitstop.db")


def test_file_then_env_then_flags(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "pitstop.toml").write_text("[api]\nport = 9000\nhost = '0.0.0.0'\n[scheduler]\ntick_seconds = 5\n")
    s = load_settings()
    assert (s.api.port, s.api.host, s.scheduler.tick_seconds) == (9000, "0.0.0.0", 5)
    monkeypatch.setenv("PITSTOP_API__PORT", "9100")
    s = load_settings()
    assert (s.api.port, s.api.host) == (9100, "0.0.0.0")
    s = load_settings(overrides={"api": {"port": 9200}})
    assert (s.api.port, s.api.host) == (9200, "0.0.0.0")


def test_database_url_alias_and_masking(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PITSTOP_DATABASE_URL", "postgresql://plant:s3cret@db.example/pitstop")
    s = load_settings()
    assert s.database_url() == "postgresql://plant:s3cret@db.example/pitstop"
    shown = masked(s)
    assert "s3cret" not in repr(shown)
    assert shown["database"]["url"] == "postgresql://plant:***@db.example/pitstop"


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("[api]\nport = 'eighty'\n", "api.port"),
        ("[api]\nport = 70000\n", "api.port"),
        ("[databse]\nurl = 'x'\n", "databse"),
        ("[api\nport = 1\n", "not valid TOML"),
        ("[log]\nlevel = 'LOUD'\n", "log.level"),
    ],
)
def test_invalid_file_names_the_key(tmp_path: Path, content: str, expected: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(content)
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    message = str(info.value)
    assert expected in message
    assert "\n" not in message
    assert str(path) in message


def test_explicit_missing_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_settings(tmp_path / "nope.toml")
