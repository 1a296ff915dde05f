"""Reading settings from pitstop.toml, the environment and CLI flags, with one-line errors."""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import SecretStr, ValidationError
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource
from sqlalchemy.engine import make_url

from pitstop.config.models import Settings
from pitstop.errors import ConfigError

DEFAULT_FILE = Path("pitstop.toml")
# Short spellings that users expect, beside the nested PITSTOP_SECTION__KEY form.
ENV_ALIASES = {"PITSTOP_DATABASE_URL": ("database", "url")}


class _MappingSource(PydanticBaseSettingsSource):
    def __init__(self, settings_cls: type[BaseSettings], data: Mapping[str, Any]) -> None:
        super().__init__(settings_cls)
        self._data = dict(data)

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return self._data.get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return self._data


def _read_file(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None


def _deep_merge(base: dict[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = _deep_merge(dict(out[key]), value)
        else:
            out[key] = value
    return out


def _nest(path: tuple[str, ...], value: Any) -> dict[str, Any]:
    out: dict[str, Any] = {path[-1]: value}
    for key in reversed(path[:-1]):
        out = {key: out}
    return out


def load_settings(
    path: Path | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Settings:
    """Build Settings; `path` None means ./pitstop.toml when it exists.

    `overrides` are CLI flags as a nested mapping; they win over everything.
    """
    env = os.environ
    if path is None:
        path = Path(env["PITSTOP_CONFIG"]) if "PITSTOP_CONFIG" in env else DEFAULT_FILE
        explicit = "PITSTOP_CONFIG" in env
    else:
        explicit = True
    file_data: dict[str, Any] = {}
    if path.exists() or explicit:
        file_data = _read_file(path)
    flags: dict[str, Any] = {}
    for name, key_path in ENV_ALIASES.items():
        if env.get(name):
            flags = _deep_merge(flags, _nest(key_path, env[name]))
    flags = _deep_merge(flags, overrides or {})

    class _Loaded(Settings):
        @classmethod
        def settings_customise_sources(
            cls,
            settings_cls: type[BaseSettings],
            init_settings: PydanticBaseSettingsSource,
            env_settings: PydanticBaseSettingsSource,
            dotenv_settings: PydanticBaseSettingsSource,
            file_secret_settings: PydanticBaseSettingsSource,
        ) -> tuple[PydanticBaseSettingsSource, ...]:
            return init_settings, env_settings, _MappingSource(settings_cls, file_data)

    try:
        loaded = _Loaded(**flags)
    except ValidationError as exc:
        err = exc.errors()[0]
        key = ".".join(str(p) for p in err["loc"]) or "(root)"
        origin = str(path) if file_data else "settings"
        message = str(err["msg"]).removeprefix("Value error, ")
        raise ConfigError(f"{origin}: {key}: {message}") from None
    return Settings.model_validate(loaded.model_dump())


def masked(settings: Settings) -> dict[str, Any]:
    """The effective values for display, with every secret masked."""

    def walk(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: walk(v) for k, v in value.items()}
        if isinstance(value, list):
            return [walk(v) for v in value]
        if isinstance(value, SecretStr):
            return "**********"
        if isinstance(value, Path):
            return str(value)
        return value

    data = walk(settings.model_dump())
    url = settings.database_url()
    data["database"]["url"] = make_url(url).render_as_string(hide_password=True)
    return dict(data)
