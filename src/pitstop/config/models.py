"""The typed settings tree. Every value has a default that works on a laptop."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from pitstop.config.health import HealthSettings
from pitstop.config.lifecycle import ModelsSettings
from pitstop.config.oncall import OncallSettings
from pitstop.config.remediation import RemediationSettings


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DatabaseSettings(_Section):
    url: SecretStr | None = Field(
        default=None,
        description="SQLAlchemy URL, e.g. postgresql+psycopg://user@host/db. Empty: SQLite in the data dir.",
    )
    pool_size: int = Field(default=5, ge=1, le=100)
    sqlite_cache_mb: int = Field(
        default=16,
        ge=2,
        le=4096,
        description="SQLite page cache per connection (the pool keeps several; 64 took a month's demo past 500 MB)",
    )
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


class IngestSettings(_Section):
    max_future_s: float = Field(
        default=300.0, ge=0, description="readings stamped further than this ahead of the clock are quarantined"
    )
    spool_max_bytes: int = Field(
        default=1024**3,
        ge=1024,
        description="cap of the store-and-forward spool (data_dir/spool) while the database is down",
    )
    chunk_rows: int = Field(default=250_000, ge=1000, description="rows per chunk when importing files")


class MqttSettings(_Section):
    host: str = "127.0.0.1"
    port: int = Field(default=1883, ge=1, le=65535)
    client_id: str = Field(default="pitstop", min_length=1, description="fixed: the broker keeps the session by it")
    topic_prefix: str = Field(
        default="pitstop", min_length=1, description="topics are <prefix>/<site>/<asset>/<sensor>"
    )
    wide_topic: str = Field(
        default="{prefix}-wide/{site}/{asset}",
        description="topic pattern for one asset's wide JSON payloads; {prefix}, {site}, {asset} are filled in",
    )
    username: SecretStr | None = None
    password: SecretStr | None = None
    qos: int = Field(default=1, ge=0, le=2)
    batch_ms: int = Field(default=50, ge=1, le=10_000, description="collect messages this long before one write")
    batch_max: int = Field(default=2000, ge=1, description="or this many messages, whichever comes first")


class LogSettings(_Section):
    level: str = Field(default="INFO", pattern="^(DEBUG|INFO|WARNING|ERROR)$")


class BackupSourceSettings(_Section):
    """One thing to back up: a database (sqlite, postgres) or a file tree (files, config, models)."""

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$", description="unique; names the source in sets")
    kind: str = Field(pattern="^(sqlite|postgres|files|config|models)$")
    url: SecretStr | None = Field(default=None, description="postgres: connection URL")
    path: Path | None = Field(default=None, description="sqlite: the database file; files: the root directory")
    include: list[str] = Field(default_factory=lambda: ["**"], description="glob patterns relative to path")
    exclude: list[str] = Field(default_factory=list)


class RetentionSettings(_Section):
    """How many sets each tier keeps (restic semantics: the newest set of each period)."""

    keep_last: int = Field(default=3, ge=0)
    daily: int = Field(default=7, ge=0)
    weekly: int = Field(default=4, ge=0)
    monthly: int = Field(default=12, ge=0)
    quarterly: int = Field(default=20, ge=0, description="20 quarters: five years")
    yearly: int = Field(default=0, ge=0)


class BackupSettings(_Section):
    include_pitstop_db: bool = Field(default=True, description="back up pitstop's own database")
    sources: list[BackupSourceSettings] = Field(default_factory=list)
    destination: Path | None = Field(default=None, description="where sets are written; empty: <data_dir>/backups")
    offsite: Path | None = Field(default=None, description="second copy of every set (3-2-1): a mounted share")
    retention: RetentionSettings = RetentionSettings()
    every_hours: float = Field(default=24.0, gt=0, description="scheduled backup period")
    drill_every_days: float = Field(default=7.0, gt=0, description="scheduled restore drill period")
    schedule: bool = Field(default=True, description="run backups, drills and prune from the scheduler")
    rpo_hours: float = Field(default=24.0, gt=0, description="recovery point objective")
    rto_minutes: float = Field(default=120.0, gt=0, description="recovery time objective")
    compression_level: int = Field(default=1, ge=0, le=9, description="gzip level; 0 stores")
    encryption_key: SecretStr | None = Field(default=None, description="passphrase; sets are AES-256-GCM encrypted")

    @field_validator("encryption_key", mode="before")
    @classmethod
    def _blank_key_is_none(cls, v: object) -> object:
        return None if v == "" else v


class PrognosticsSettings(_Section):
    """Remaining useful life from a health index: the level of one sensor against its healthy level."""

    enabled: bool = Field(default=True, description="estimate RUL from the scheduler")
    interval_minutes: float = Field(default=60.0, gt=0, description="how often every asset is estimated")
    health_sensor: str = Field(
        default="vib_rms", min_length=1, max_length=200, description="the sensor whose level is the health index"
    )
    baseline_hours: float = Field(default=48.0, gt=0, description="healthy level: the first hours of each life")
    min_history_hours: float = Field(default=24.0, gt=0, description="no estimate from a shorter history")
    failure_level: float = Field(
        default=5.0, gt=1.0, description="health index at failure (x healthy level) until failures are recorded"
    )
    min_rise: float = Field(
        default=0.3,
        ge=0.0,
        le=10.0,
        description="a degradation trend counts once the health index is this share above its healthy level",
    )
    model: Literal["degradation", "gbm"] = Field(
        default="degradation", description="RUL model; gbm needs two failures of the type the health sensor saw"
    )
    coverage: float = Field(default=0.8, gt=0.0, lt=1.0, description="interval coverage of every estimate")
    lead_time_hours: float = Field(
        default=168.0, gt=0, description="open asset.rul_low when the lower bound falls below this"
    )
    repair_hours: float = Field(default=4.0, gt=0, le=1000, description="work order estimate for the repair")


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
    health: HealthSettings = HealthSettings()
    ingest: IngestSettings = IngestSettings()
    mqtt: MqttSettings | None = Field(default=None, description="the MQTT subscriber runs in `pitstop serve` when set")
    backup: BackupSettings = BackupSettings()
    remediation: RemediationSettings = RemediationSettings()
    prognostics: PrognosticsSettings = PrognosticsSettings()
    models: ModelsSettings = ModelsSettings()
    oncall: OncallSettings = OncallSettings()

    @model_validator(mode="after")
    def _oncall_channels(self) -> Settings:
        channels = self.health.alerts.channels
        missing = sorted(self.oncall.channel_names() - set(channels))
        if missing:
            raise ValueError(f"oncall policies name unknown alert channel(s): {', '.join(missing)}")
        mail = self.oncall.email_channel
        if mail is not None and getattr(channels.get(mail), "type", None) != "email":
            raise ValueError(f"oncall.email_channel {mail!r} is not an email channel of [health.alerts.channels]")
        return self

    def database_url(self) -> str:
        if self.database.url is not None:
            return self.database.url.get_secret_value()
        return f"sqlite:///{(self.data_dir / 'pitstop.db').resolve()}"
