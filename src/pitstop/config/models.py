"""The typed settings tree. Every value has a default that works on a laptop."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from pitstop.config.fleet import FleetSettings
from pitstop.config.health import HealthSettings
from pitstop.config.lifecycle import ModelsSettings
from pitstop.config.offsite import OffsiteSettings
from pitstop.config.oncall import OncallSettings
from pitstop.config.remediation import RemediationSettings
from pitstop.config.reports import ReportSettings


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
    partitions_ahead_months: int = Field(
        default=2,
        ge=0,
        le=120,
        description="PostgreSQL: the `partitions` job keeps the readings' monthly partitions created this many "
        "months past the current one",
    )
    readings_retention_days: int | None = Field(
        default=None,
        ge=1,
        description="PostgreSQL: drop a month's raw readings (its whole partition) once all of it is older than "
        "this; roll-ups stay. None: keep raw readings forever. SQLite keeps everything",
    )

    @field_validator("url", mode="before")
    @classmethod
    def _blank_is_none(cls, v: object) -> object:
        return None if v == "" else v


class ScoringSettings(_Section):
    """Stream scoring (pitstop.ml.scoring): the defaults are the ones chosen on simulated plants."""

    every_s: float = Field(default=60.0, ge=1.0, le=86_400.0, description="how often new readings are scored")
    baseline_hours: float = Field(
        default=24.0, gt=0, le=24 * 90, description="an asset's first baseline spans this much of its readings"
    )
    window_minutes: float = Field(
        default=15.0, gt=0, le=24 * 60, description="rolling median: a row scores high only when most of this does"
    )


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
    share_group: str | None = Field(
        default=None,
        pattern=r"^[^/+#\x00]+$",  # MQTT 5 forbids these in a share name; empty is no name either
        description="several ingest nodes with the same group split the topics: each message goes to one of them "
        "(MQTT 5 shared subscription $share/<group>/...)",
    )


class LogSettings(_Section):
    level: str = Field(default="INFO", pattern="^(DEBUG|INFO|WARNING|ERROR)$")


class RetentionSettings(_Section):
    """How many sets each tier keeps (restic semantics: the newest set of each period)."""

    keep_last: int = Field(default=3, ge=0, le=100_000)
    daily: int = Field(default=7, ge=0, le=100_000)
    weekly: int = Field(default=4, ge=0, le=100_000)
    monthly: int = Field(default=12, ge=0, le=100_000)
    quarterly: int = Field(default=20, ge=0, le=100_000, description="20 quarters: five years")
    yearly: int = Field(default=0, ge=0, le=100_000)
    keep_days: float = Field(
        default=0.0,
        ge=0,
        le=36_600,
        allow_inf_nan=False,
        description="also keep every set made within this many days of the newest one (restic's --keep-within)",
    )


# A period or an objective longer than ten years is a typo (and past what timedelta holds as hours).
MAX_HOURS = 10 * 366 * 24


class BackupSourceSettings(_Section):
    """One thing to back up: a database (sqlite, postgres) or a file tree (files, config, models).

    `every_hours`, `rpo_hours` and `retention` make it a component with its own schedule (the
    guides' per-component table); left out, the source follows the `[backup]` ones."""

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$", description="unique; names the source in sets")
    kind: str = Field(pattern="^(sqlite|postgres|files|config|models)$")
    url: SecretStr | None = Field(default=None, description="postgres: connection URL")
    path: Path | None = Field(default=None, description="sqlite: the database file; files: the root directory")
    include: list[str] = Field(default_factory=lambda: ["**"], description="glob patterns relative to path")
    exclude: list[str] = Field(default_factory=list)
    every_hours: float | None = Field(
        default=None, gt=0, le=MAX_HOURS, allow_inf_nan=False, description="backed up this often; empty: backup's"
    )
    rpo_hours: float | None = Field(
        default=None, gt=0, le=MAX_HOURS, allow_inf_nan=False, description="its recovery point objective"
    )
    retention: RetentionSettings | None = Field(
        default=None, description="its own retention (tiers left out keep nothing); empty: backup.retention"
    )

    @field_validator("retention", mode="before")
    @classmethod
    def _tiers_left_out_keep_nothing(cls, v: object) -> object:
        # `retention = { monthly = 12 }` means twelve monthly sets, not that plus the global tiers' defaults
        if isinstance(v, dict):
            return {**dict.fromkeys(RetentionSettings.model_fields, 0), **v}
        return v


class BackupSettings(_Section):
    include_pitstop_db: bool = Field(default=True, description="back up pitstop's own database")
    sources: dict[str, BackupSourceSettings] = Field(
        default_factory=dict, description="[backup.sources.<name>] tables (or a [[backup.sources]] list with names)"
    )
    destination: Path | None = Field(default=None, description="where sets are written; empty: <data_dir>/backups")
    offsite: OffsiteSettings | None = Field(
        default=None, description="second copy of every set (3-2-1): a mounted share, s3:// or sftp://"
    )
    retention: RetentionSettings = RetentionSettings()
    every_hours: float = Field(
        default=24.0, gt=0, le=MAX_HOURS, allow_inf_nan=False, description="backup period of sources without their own"
    )
    drill_every_days: float = Field(
        default=7.0, gt=0, le=MAX_HOURS / 24, allow_inf_nan=False, description="scheduled restore drill period"
    )
    schedule: bool = Field(default=True, description="run backups, drills and prune from the scheduler")
    rpo_hours: float = Field(
        default=24.0, gt=0, le=MAX_HOURS, allow_inf_nan=False, description="recovery point objective"
    )
    rto_minutes: float = Field(
        default=120.0, gt=0, le=MAX_HOURS * 60, allow_inf_nan=False, description="recovery time objective"
    )
    compression_level: int = Field(default=1, ge=0, le=9, description="gzip level; 0 stores")
    encryption_key: SecretStr | None = Field(default=None, description="passphrase; sets are AES-256-GCM encrypted")

    @field_validator("encryption_key", mode="before")
    @classmethod
    def _blank_key_is_none(cls, v: object) -> object:
        return None if v == "" else v

    @field_validator("sources", mode="before")
    @classmethod
    def _sources_by_name(cls, v: object) -> object:
        """The table form keys each source by its name; the older list form names it with `name`."""
        if isinstance(v, list | tuple):
            by_name: dict[str, object] = {}
            for item in v:
                name = item.get("name") if isinstance(item, dict) else getattr(item, "name", None)
                if not isinstance(name, str):
                    raise ValueError("every [[backup.sources]] entry needs a name")
                if name in by_name:
                    raise ValueError(f"backup source {name[:63]!r} is configured twice")
                by_name[name] = item
            return by_name
        if isinstance(v, dict):
            named: dict[object, object] = {}
            for key, item in v.items():
                if isinstance(item, dict):
                    if item.get("name", key) != key:
                        raise ValueError(f"backup.sources.{str(key)[:63]} names itself {str(item['name'])[:63]!r}")
                    item = {**item, "name": key}
                named[key] = item
            return named
        return v

    @model_validator(mode="after")
    def _sources_keep_their_rpo(self) -> BackupSettings:
        if self.include_pitstop_db and "pitstop-db" in self.sources:
            raise ValueError("backup.sources.pitstop-db: that name is pitstop's own database (include_pitstop_db)")
        for name, source in self.sources.items():
            rpo = source.rpo_hours or self.rpo_hours
            if source.every_hours is not None and source.every_hours > rpo:
                raise ValueError(
                    f"backup.sources.{name}: backed up every {source.every_hours:g} h, its recovery point objective "
                    f"of {rpo:g} h cannot be kept; give the source its own rpo_hours"
                )
        return self

    def source_every_hours(self, name: str) -> float:
        """How often source `name` is backed up (pitstop's own database and unknown names: every_hours)."""
        source = self.sources.get(name)
        return source.every_hours if source is not None and source.every_hours is not None else self.every_hours

    def source_rpo_hours(self, name: str) -> float:
        source = self.sources.get(name)
        return source.rpo_hours if source is not None and source.rpo_hours is not None else self.rpo_hours

    def source_retention(self, name: str) -> RetentionSettings | None:
        """The source's own retention, or None when it follows `retention`."""
        source = self.sources.get(name)
        return source.retention if source is not None else None


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
    scoring: ScoringSettings = ScoringSettings()
    health: HealthSettings = HealthSettings()
    ingest: IngestSettings = IngestSettings()
    mqtt: MqttSettings | None = Field(default=None, description="the MQTT subscriber runs in `pitstop serve` when set")
    backup: BackupSettings = BackupSettings()
    remediation: RemediationSettings = RemediationSettings()
    prognostics: PrognosticsSettings = PrognosticsSettings()
    models: ModelsSettings = ModelsSettings()
    oncall: OncallSettings = OncallSettings()
    reports: ReportSettings = ReportSettings()
    fleet: FleetSettings | None = Field(
        default=None, description="per-asset jobs shared among worker processes over NATS JetStream when set"
    )

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
