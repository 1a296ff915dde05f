"""The typed settings tree. Every value has a default that works on a laptop."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DatabaseSettings(_Section):
    url: SecretStr | None = Field(
        default=None,
        description="SQLAlchemy URL, e.g. postgresql+psycopg://user@host/db. Empty: SQLite in the data dir.",
    )
    pool_size: int = Field(default=5, ge=1, le=100)
    sqlite_cache_mb: int = Field(default=64, ge=2, le=4096, description="SQLite page cache per connection")
    check_schema_at_start: bool = True

    @field_validator("url", mode="before")
    @classmethod
    def _blank_is_none(cls, v: object) -> object:
        return None if v == "" else v


class ApiSettings(_Section):
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    max_body_bytes: int = Field(default=16 * 1024 * 1024, ge=1024)


class SchedulerSettings(_Section):
    enabled: bool = True
    tick_seconds: float = Field(default=1.0, gt=0)
    lease_seconds: float = Field(default=15.0, gt=0, description="leadership lease among instances")


class LogSettings(_Section):
    level: str = Field(default="INFO", pattern="^(DEBUG|INFO|WARNING|ERROR)$")


class Settings(BaseSettings):
    """Effective configuration: defaults < pitstop.toml < PITSTOP_* env < CLI flags."""

    model_config = SettingsConfigDict(
        env_prefix="PITSTOP_", env_nested_delimiter="__", extra="forbid", validate_default=True
    )

    data_dir: Path = Path("pitstop-data")
    database: DatabaseSettings = DatabaseSettings()
    api: ApiSettings = ApiSettings()
    scheduler: SchedulerSettings = SchedulerSettings()
    log: LogSettings = LogSettings()

    def database_url(self) -> str:
        if self.database.url is not None:
            return self.database.url.get_secret_value()
        return f"sqlite:///{(self.data_dir / 'pitstop.db').resolve()}"
