"""Tables. Changes here need an Alembic revision in migrations/versions/."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
    text,
)

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)


class UtcDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in and out, on SQLite (which keeps no zone) as on PostgreSQL."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the database; pitstop stores aware UTC")
        return value.astimezone(UTC)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)  # type: ignore[no-any-return]
        return value.astimezone(UTC)  # type: ignore[no-any-return]


sites = Table(
    "sites",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(200), nullable=False, unique=True),
    Column("location", String(500), nullable=False, server_default=""),
)

assets = Table(
    "assets",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("site_id", Integer, ForeignKey("sites.id", ondelete="RESTRICT"), nullable=False),
    Column("parent_id", Integer, ForeignKey("assets.id", ondelete="RESTRICT")),
    Column("name", String(200), nullable=False, unique=True),
    Column("type", String(100), nullable=False),
    Column("criticality", Integer, nullable=False),
    Column("location", String(500), nullable=False, server_default=""),
    CheckConstraint("criticality BETWEEN 1 AND 5", name="criticality_range"),
)

sensors = Table(
    "sensors",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("asset_id", Integer, ForeignKey("assets.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(200), nullable=False),
    Column("unit", String(50), nullable=False, server_default=""),
    Column("min_value", Float),
    Column("max_value", Float),
    Column("period_s", Float, nullable=False),
    # Alarm limits (JSON: above, critical_above, below, critical_below, for_s), judged by the
    # `limits` health check; NULL when the sensor has none.
    Column("alarm", Text),
    UniqueConstraint("asset_id", "name"),
)

# Narrow telemetry. `ts` is integer microseconds since the epoch (UTC): compact, and the
# fastest type for both SQLite's executemany and PostgreSQL's binary COPY. No foreign key on
# sensor_id: the validator checks it once per batch instead of the database once per row.
readings = Table(
    "readings",
    metadata,
    Column("sensor_id", Integer, primary_key=True),
    Column("ts", BigInteger, primary_key=True),
    Column("value", Float, nullable=False),
    sqlite_with_rowid=False,
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(200), nullable=False),
    Column("prefix", String(32), nullable=False, unique=True),
    Column("secret_hash", String(128), nullable=False),
    Column("role", String(20), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("revoked_at", UtcDateTime),
)

# Dashboard sessions, so that logging out ends one on the server: the cookie is signed and holds a random
# session id, stored here only as its SHA-256; a session lives while its row does and its key is not revoked.
web_sessions = Table(
    "web_sessions",
    metadata,
    Column("id_hash", String(64), primary_key=True),
    Column("key_prefix", String(32), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("expires_at", UtcDateTime, nullable=False),
    Index(None, "expires_at"),
)

audit_log = Table(
    "audit_log",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("at", UtcDateTime, nullable=False),
    Column("actor", String(200), nullable=False),
    Column("action", String(200), nullable=False),
    Column("target", String(500), nullable=False, server_default=""),
    Column("detail", Text, nullable=False, server_default="{}"),
    Index(None, "at"),
)

job_runs = Table(
    "job_runs",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("job", String(200), nullable=False),
    Column("instance", String(200), nullable=False),
    Column("started_at", UtcDateTime, nullable=False),
    Column("finished_at", UtcDateTime),
    Column("outcome", String(20)),
    Column("error", Text),
    Index(None, "job", "started_at"),
)

scheduler_leases = Table(
    "scheduler_leases",
    metadata,
    Column("name", String(100), primary_key=True),
    Column("holder", String(200), nullable=False),
    Column("expires_at", UtcDateTime, nullable=False),
)

# -- health --

# Incidents, idempotent by key. At most one unresolved incident per key: the partial unique
# index below holds on SQLite and PostgreSQL, also under concurrent writers.
incidents = Table(
    "incidents",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("key", String(500), nullable=False),
    Column("state", String(20), nullable=False),
    Column("severity", String(20), nullable=False),
    Column("title", String(500), nullable=False),
    Column("detail", Text),
    Column("source", String(100), nullable=False),
    Column("assignee", String(200)),
    Column("opened_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    Column("resolved_at", UtcDateTime),
    Index(None, "state", "updated_at"),
    Index(
        "uq_incidents_unresolved_key",
        "key",
        unique=True,
        sqlite_where=text("state <> 'resolved'"),
        postgresql_where=text("state <> 'resolved'"),
    ),
)

incident_events = Table(
    "incident_events",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("incident_id", Integer, ForeignKey("incidents.id", ondelete="CASCADE"), nullable=False),
    Column("at", UtcDateTime, nullable=False),
    Column("actor", String(200), nullable=False),
    Column("action", String(50), nullable=False),
    Column("from_state", String(20)),
    Column("to_state", String(20), nullable=False),
    Column("detail", Text, nullable=False, server_default="{}"),
    Index(None, "incident_id", "id"),
)

check_results = Table(
    "check_results",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("check_name", String(100), nullable=False),
    Column("target", String(500), nullable=False),
    Column("status", String(20), nullable=False),
    Column("summary", Text, nullable=False),
    Column("issue_key", String(200)),
    Column("observed", Text, nullable=False, server_default="{}"),
    Column("checked_at", UtcDateTime, nullable=False),
    Column("duration_s", Float, nullable=False),
    Column("error", Text),
    Index(None, "check_name", "target", "checked_at"),
    Index(None, "checked_at"),
)

silences = Table(
    "silences",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("matchers", Text, nullable=False),
    Column("creator", String(200), nullable=False),
    Column("reason", Text, nullable=False),
    Column("starts_at", UtcDateTime, nullable=False),
    Column("ends_at", UtcDateTime, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Index(None, "ends_at"),
)

maintenance_windows = Table(
    "maintenance_windows",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(200), nullable=False, unique=True),
    Column("matchers", Text, nullable=False),
    Column("recurrence", String(20), nullable=False),
    Column("weekdays", String(20), nullable=False, server_default=""),
    Column("start_time", String(5), nullable=False, server_default="00:00"),
    Column("duration_s", Integer, nullable=False),
    Column("timezone", String(64), nullable=False, server_default="UTC"),
    Column("starts_at", UtcDateTime),
    Column("ends_at", UtcDateTime),
    Column("creator", String(200), nullable=False),
    Column("reason", Text, nullable=False, server_default=""),
    Column("created_at", UtcDateTime, nullable=False),
)

alert_states = Table(
    "alert_states",
    metadata,
    Column("key", String(500), primary_key=True),
    Column("data", Text, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
)

alert_notifications = Table(
    "alert_notifications",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("at", UtcDateTime, nullable=False),
    Column("alert_key", String(500), nullable=False),
    Column("event", String(20), nullable=False),
    Column("severity", String(20), nullable=False),
    Column("channel", String(100), nullable=False),
    Column("outcome", String(20), nullable=False),
    Column("reason", Text, nullable=False, server_default=""),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("error", Text),
    Column("transition_id", Integer),  # the incident transition it was sent for (incident feed)
    Index(None, "alert_key", "at"),
    Index(None, "at"),
    Index(None, "transition_id"),
)

# How far each subscriber of the incident feed has read `incident_events`.
feed_cursors = Table(
    "feed_cursors",
    metadata,
    Column("subscriber", String(100), primary_key=True),
    Column("last_event_id", Integer, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
)

# One escalation per incident an on-call policy covers: which policy, how many of its steps were
# sent, when the next one is due (NULL when none is), and why it stopped.
oncall_escalations = Table(
    "oncall_escalations",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("incident_id", Integer, ForeignKey("incidents.id", ondelete="CASCADE"), nullable=False),
    Column("incident_key", String(500), nullable=False),
    Column("policy", String(100), nullable=False),
    Column("fired", Integer, nullable=False, server_default="0"),
    Column("next_at", UtcDateTime),
    Column("state", String(20), nullable=False),
    Column("started_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    Column("stopped_by", String(200)),
    Column("last", Text, nullable=False, server_default=""),
    UniqueConstraint("incident_id"),
    Index(None, "state", "next_at"),
)

# -- backup --

# One row per backup, verification, drill, restore or prune: what ran, on which set, how it went,
# and the evidence (JSON) that a person or a check can read later.
backup_runs = Table(
    "backup_runs",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("kind", String(20), nullable=False),
    Column("set_id", String(100)),
    Column("started_at", UtcDateTime, nullable=False),
    Column("finished_at", UtcDateTime, nullable=False),
    Column("outcome", String(20), nullable=False),
    Column("seconds", Float, nullable=False),
    Column("bytes", BigInteger, nullable=False, server_default="0"),
    Column("detail", Text, nullable=False, server_default="{}"),
    Index(None, "kind", "finished_at"),
)


# -- ingest --

# Readings that failed validation, with what arrived (a JSON object for a row, or the raw text of a
# message that could not be split into rows), where from, and why. `pitstop quarantine replay`
# validates them again and removes the ones that got stored.
quarantine = Table(
    "quarantine",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("received_at", UtcDateTime, nullable=False),
    Column("source", String(200), nullable=False),
    Column("reason", String(40), nullable=False),
    Column("payload", Text, nullable=False),
    # SHA-256 of source and payload: a redelivered bad message is not quarantined twice (0011)
    Column("dedup_key", String(64), nullable=True),
    Index(None, "reason"),
    Index(None, "dedup_key", unique=True),
)

# -- maintenance --

# Every version of a procedure file that ever ran: a run records (name, version, content hash).
procedure_versions = Table(
    "procedure_versions",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(100), nullable=False),
    Column("version", Integer, nullable=False),
    Column("content_hash", String(64), nullable=False),
    Column("source", Text, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    UniqueConstraint("name", "version"),
    UniqueConstraint("name", "content_hash"),
)

# One run of a procedure on an asset (or on the system: asset ""), with every step's result (JSON).
procedure_runs = Table(
    "procedure_runs",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("procedure", String(100), nullable=False),
    Column("version", Integer, nullable=False),
    Column("content_hash", String(64), nullable=False),
    Column("asset", String(200), nullable=False, server_default=""),
    Column("actor", String(200), nullable=False),
    Column("state", String(20), nullable=False),
    Column("started_at", UtcDateTime, nullable=False),
    Column("finished_at", UtcDateTime),
    Column("steps", Text, nullable=False, server_default="[]"),
    Column("incident_key", String(500)),
    Index(None, "procedure", "asset", "started_at"),
)

# When a procedure is due: calendar (cron or every N days, fixed or floating), meter or condition.
maintenance_schedules = Table(
    "maintenance_schedules",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(200), nullable=False, unique=True),
    Column("procedure", String(100), nullable=False),
    Column("asset", String(200), nullable=False, server_default=""),
    Column("site", String(200), nullable=False, server_default=""),
    Column("kind", String(20), nullable=False),
    Column("rule", Text, nullable=False),
    Column("enabled", Integer, nullable=False, server_default="1"),
    Column("last_done_at", UtcDateTime),
    Column("meter_base", Float),
    Column("created_at", UtcDateTime, nullable=False),
)

# One occurrence of a schedule: due, then done (on time or late) or missed.
schedule_dues = Table(
    "schedule_dues",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("schedule_id", Integer, ForeignKey("maintenance_schedules.id", ondelete="CASCADE"), nullable=False),
    Column("due_at", UtcDateTime, nullable=False),
    Column("deadline", UtcDateTime, nullable=False),
    Column("state", String(20), nullable=False),
    Column("fallbacks", Integer, nullable=False, server_default="0"),
    Column("completed_at", UtcDateTime),
    Column("work_order_id", Integer),
    Index(None, "schedule_id", "state"),
)

# Work orders; at most one active order per (asset, key), also under concurrent writers.
work_orders = Table(
    "work_orders",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("asset", String(200), nullable=False, server_default=""),
    Column("key", String(500), nullable=False),
    Column("title", String(500), nullable=False),
    Column("detail", Text, nullable=False, server_default=""),
    Column("source", String(50), nullable=False),
    Column("state", String(20), nullable=False),
    Column("severity", String(20), nullable=False),
    Column("priority", Integer, nullable=False),
    Column("assignee", String(200)),
    Column("due_at", UtcDateTime),
    Column("estimated_h", Float, nullable=False, server_default="1"),
    Column("actual_h", Float),
    Column("parts", Text, nullable=False, server_default="[]"),
    Column("incident_id", Integer),
    Column("run_id", Integer),
    Column("prediction", String(200)),
    Column("procedure", String(100)),
    Column("window_name", String(200)),
    Column("planned_start", UtcDateTime),
    Column("opened_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    Column("closed_at", UtcDateTime),
    Column("verified_at", UtcDateTime),
    Column("updates", Integer, nullable=False, server_default="0"),
    Column("failure_code", String(100)),
    Index(None, "state", "due_at"),
    Index(
        "uq_work_orders_active_asset_key",
        "asset",
        "key",
        unique=True,
        sqlite_where=text("state NOT IN ('verified', 'cancelled')"),
        postgresql_where=text("state NOT IN ('verified', 'cancelled')"),
    ),
)

# The maintenance log: append-only, one row per thing done to an asset or the system.
maintenance_log = Table(
    "maintenance_log",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("at", UtcDateTime, nullable=False),
    Column("kind", String(50), nullable=False),
    Column("asset", String(200), nullable=False, server_default=""),
    Column("site", String(200), nullable=False, server_default=""),
    Column("actor", String(200), nullable=False),
    Column("summary", String(500), nullable=False),
    Column("issues", Text, nullable=False, server_default=""),
    Column("actions", Text, nullable=False, server_default=""),
    Column("result", String(50), nullable=False, server_default=""),
    Column("evidence", Text, nullable=False, server_default="[]"),
    Column("ref", String(200), nullable=False, server_default=""),
    Index(None, "at"),
    Index(None, "asset", "at"),
    Index(None, "ref"),
)

# What the planner needs beyond the health branch's maintenance_windows (keyed by window name):
# technician hours per occurrence, scope (sites, assets) and what happens when a window is missed.
window_capacity = Table(
    "window_capacity",
    metadata,
    Column("window_name", String(200), primary_key=True),
    Column("capacity_h", Float, nullable=False),
    Column("sites", Text, nullable=False, server_default="[]"),
    Column("assets", Text, nullable=False, server_default="[]"),
    Column("fallback", String(220), nullable=False, server_default="next"),
    Column("max_fallbacks", Integer, nullable=False, server_default="1"),
)

# Knowledge base entries (package, user directory, lessons turned into entries). Full-text search:
# an FTS5 table on SQLite, a to_tsvector GIN index on PostgreSQL (both made in the migration).
kb_entries = Table(
    "kb_entries",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("slug", String(200), nullable=False, unique=True),
    Column("title", String(500), nullable=False),
    Column("body", Text, nullable=False),
    Column("issue_keys", Text, nullable=False, server_default=""),
    Column("asset_types", Text, nullable=False, server_default=""),
    Column("tags", Text, nullable=False, server_default=""),
    Column("origin", String(20), nullable=False),
    Column("content_hash", String(64), nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
)

# Lessons learned on resolving an incident, and post-incident reviews of emergencies.
lessons = Table(
    "lessons",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("incident_key", String(500), nullable=False),
    Column("incident_id", Integer),
    Column("kind", String(20), nullable=False),
    Column("text", Text, nullable=False),
    Column("author", String(200), nullable=False),
    Column("at", UtcDateTime, nullable=False),
    Column("kb_slug", String(200)),
    Index(None, "incident_key"),
)

# -- remediation --

# One row per remediation attempt of one incident: the rule and action, the plan, where it got to.
# Incidents are named by id and key by value (no foreign key: this branch needs nothing of 0003).
remediations = Table(
    "remediations",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("incident_id", Integer, nullable=False),
    Column("incident_key", String(500), nullable=False),
    Column("incident_opened_at", UtcDateTime, nullable=False),
    Column("action", String(100), nullable=False),
    Column("target", String(500), nullable=False),
    Column("rule", String(500), nullable=False),
    Column("state", String(30), nullable=False),
    Column("destructive", Integer, nullable=False, server_default="0"),
    Column("plan", Text, nullable=False, server_default="{}"),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    Column("applied_at", UtcDateTime),
    Column("finished_at", UtcDateTime),
    Column("decided_by", String(200)),
    Column("result", Text, nullable=False, server_default=""),
    Index(None, "action", "target", "created_at"),
    Index(None, "incident_id"),
)

# Every step of an attempt: seen, planned, applied, verified, rolled back, resolved, escalated.
remediation_steps = Table(
    "remediation_steps",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("remediation_id", Integer, ForeignKey("remediations.id", ondelete="CASCADE"), nullable=False),
    Column("step", String(30), nullable=False),
    Column("at", UtcDateTime, nullable=False),
    Column("ok", Integer, nullable=False),
    Column("detail", Text, nullable=False, server_default=""),
    Column("output", Text, nullable=False, server_default=""),
    Column("data", Text, nullable=False, server_default="{}"),
    Column("duration_s", Float, nullable=False, server_default="0"),
    Index(None, "remediation_id"),
)

# The circuit breaker of one action on one target: open after the budget is spent, until a person resets it.
remediation_breakers = Table(
    "remediation_breakers",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("action", String(100), nullable=False),
    Column("target", String(500), nullable=False),
    Column("opened_at", UtcDateTime, nullable=False),
    Column("reason", Text, nullable=False),
    Column("escalated_to", String(200), nullable=False, server_default=""),
    Column("reset_at", UtcDateTime),
    Column("reset_by", String(200)),
    Index(None, "action", "target"),
)

# -- models --

# One row per trained model version: its envelope (format, library versions, training window and
# rows, feature schema and hash, metrics, trigger), the artifact's size and sha256, the drift profile.
model_versions = Table(
    "model_versions",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(200), nullable=False),
    Column("version", Integer, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("trigger", String(200), nullable=False),
    Column("path", Text, nullable=False),
    Column("size", Integer, nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("envelope", Text, nullable=False),
    Column("profile", Text, nullable=False, server_default="{}"),
    UniqueConstraint("name", "version"),
)

# Every alias move (champion / challenger): from which version to which, who, when, why. The
# latest row per (name, alias) is where the alias points now; the rows answer "what served on D".
model_alias_moves = Table(
    "model_alias_moves",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(200), nullable=False),
    Column("alias", String(30), nullable=False),
    Column("from_version", Integer),
    Column("to_version", Integer),
    Column("actor", String(200), nullable=False),
    Column("at", UtcDateTime, nullable=False),
    Column("reason", Text, nullable=False, server_default=""),
    Index(None, "name", "alias", "at"),
)

# Gate decisions: a candidate against the champion, each rule's value and verdict. A retraining
# whose prerequisites failed trained nothing: no candidate, the failed prerequisites as verdicts.
model_decisions = Table(
    "model_decisions",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(200), nullable=False),
    Column("candidate", Integer),
    Column("champion", Integer),
    Column("at", UtcDateTime, nullable=False),
    Column("passed", Integer, nullable=False),
    Column("record", Text, nullable=False),
    Index(None, "name", "at"),
)

# Drift references re-taken from a window (`pitstop drift rebaseline`): the latest row of a version
# is its input reference; earlier rows and the reference stored with the version stay for audit.
model_references = Table(
    "model_references",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(200), nullable=False),
    Column("version", Integer, nullable=False),
    Column("at", UtcDateTime, nullable=False),
    Column("actor", String(200), nullable=False),
    Column("reason", Text, nullable=False, server_default=""),
    Column("window_start", UtcDateTime, nullable=False),
    Column("window_end", UtcDateTime, nullable=False),
    Column("rows", Integer, nullable=False),
    Column("profile", Text, nullable=False),
    Index(None, "name", "version"),
)

# Events of an asset that concern its models (kind `equipment_changed`): a retraining trigger of
# every model whose inputs come from the asset.
asset_events = Table(
    "asset_events",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("at", UtcDateTime, nullable=False),
    Column("asset", String(200), nullable=False),
    Column("kind", String(50), nullable=False),
    Column("note", Text, nullable=False),
    Column("actor", String(200), nullable=False),
    Index(None, "asset", "at"),
)


# -- prognostics --

# Remaining-useful-life estimates, one row per asset and run: the interval in hours from `at`,
# the health index it was read from and the evidence (data window, trend, threshold).
rul_estimates = Table(
    "rul_estimates",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("asset", String(200), nullable=False),
    Column("model", String(50), nullable=False),
    Column("at", UtcDateTime, nullable=False),
    Column("median_h", Float, nullable=False),
    Column("lower_h", Float, nullable=False),
    Column("upper_h", Float, nullable=False),
    Column("coverage", Float, nullable=False),
    Column("health", Float, nullable=False),
    Column("degrading", Integer, nullable=False, server_default="1"),
    Column("evidence", Text, nullable=False, server_default="{}"),
    Index(None, "asset", "at"),
)

# Ends of life: a failure, or a replacement before one. Each closes a run-to-failure history
# that models learn from; the next history of the asset starts after it.
rul_life_ends = Table(
    "rul_life_ends",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("asset", String(200), nullable=False),
    Column("ended_at", UtcDateTime, nullable=False),
    Column("failed", Integer, nullable=False),
    Column("code", String(100), nullable=False),
    Column("source", String(50), nullable=False),
    Column("ref", String(200), nullable=False, server_default=""),
    Column("note", Text, nullable=False, server_default=""),
    Column("recorded_at", UtcDateTime, nullable=False),
    UniqueConstraint("asset", "ended_at"),
)

# What became of a prediction: written when the work order it opened closes.
rul_outcomes = Table(
    "rul_outcomes",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("asset", String(200), nullable=False),
    Column("work_order_id", Integer, nullable=False, unique=True),
    Column("estimate_id", Integer),
    Column("estimated_at", UtcDateTime, nullable=False),
    Column("median_h", Float, nullable=False),
    Column("lower_h", Float, nullable=False),
    Column("upper_h", Float, nullable=False),
    Column("coverage", Float, nullable=False),
    Column("finding", String(20), nullable=False),
    Column("code", String(100), nullable=False),
    Column("ended_at", UtcDateTime, nullable=False),
    Column("observed_h", Float),
    Column("error_h", Float),
    Column("covered", Integer),
    Column("recorded_at", UtcDateTime, nullable=False),
)


# -- stream scoring (findings) --

# Each asset's fitted scoring baseline: which sensors and fit window it was fitted on, the fitted
# models themselves (zlib-compressed JSON; workers share the database, not a data directory), a
# version counting the refits, and how far the stream has been scored (advanced compare-and-set).
scorer_baselines = Table(
    "scorer_baselines",
    metadata,
    Column("asset", String(200), primary_key=True),
    Column("sensors", String(64), nullable=False),  # sha256 of the asset's sensor ids and names
    Column("window_s", Float, nullable=False),  # length of the baseline window
    Column("fit_start", UtcDateTime, nullable=False),
    Column("fit_end", UtcDateTime, nullable=False),
    Column("fitted_at", UtcDateTime, nullable=False),
    Column("state", LargeBinary),  # None in rows of before 0019: refitted
    Column("version", Integer, nullable=False, server_default="0"),
    Column("scored_until", UtcDateTime),
)

# What the stream scorer found: the evidence window, how far above the cut-off, which signals
# explain it (JSON) and the incident it opened or updated ("" until the scorer has opened it).
findings = Table(
    "findings",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("asset", String(200), nullable=False),
    Column("start_at", UtcDateTime, nullable=False),
    Column("end_at", UtcDateTime, nullable=False),
    Column("score", Float, nullable=False),
    Column("cutoff", Float, nullable=False),
    Column("flagged_rows", Integer, nullable=False),
    Column("scored_rows", Integer, nullable=False),
    Column("explanation", Text, nullable=False, server_default="{}"),
    Column("incident_key", String(300), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    UniqueConstraint("asset", "start_at", "end_at"),
    Index(None, "asset", "start_at"),
)


# -- roll-ups of readings (the dashboard's long ranges) --

# Per sensor and span (300 s or 3600 s), epoch-aligned: the minimum, maximum, count and sum of the
# readings of [start_us, start_us + span). Kept up to date by the `rollups` job (storage/repos/rollups.py).
reading_rollups = Table(
    "reading_rollups",
    metadata,
    Column("sensor_id", Integer, primary_key=True),
    Column("span_s", Integer, primary_key=True),
    Column("start_us", BigInteger, primary_key=True),
    Column("low", Float, nullable=False),
    Column("high", Float, nullable=False),
    Column("n", Integer, nullable=False),
    Column("total", Float, nullable=False),
    sqlite_with_rowid=False,
)

# The latest drift result per model version, computed ahead of the Models page by the
# `dashboard-drift` job: the report as JSON (or the reason there is none).
model_drift = Table(
    "model_drift",
    metadata,
    Column("name", String(200), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("computed_at", UtcDateTime, nullable=False),
    Column("window_days", Float, nullable=False),
    Column("result", Text, nullable=False),
)

# -- fleet: per-asset jobs run by workers (pitstop/fleet) --

# One row per finished job id (<kind>:<asset>:<until µs>): a job handed out again after it finished
# is acknowledged without running. Kept two days (the scheduler's `fleet-runs` job).
fleet_job_runs = Table(
    "fleet_job_runs",
    metadata,
    Column("id", String(300), primary_key=True),
    Column("kind", String(50), nullable=False),
    Column("asset", String(200), nullable=False),
    Column("until_at", UtcDateTime, nullable=False),
    Column("worker", String(200), nullable=False),
    Column("deliveries", Integer, nullable=False),
    Column("started_at", UtcDateTime, nullable=False),
    Column("finished_at", UtcDateTime, nullable=False, index=True),
)
