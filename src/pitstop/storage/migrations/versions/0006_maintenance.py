"""maintenance: procedures and runs, schedules, work orders, the maintenance log, window capacity, knowledge base

Revision ID: 0006
Revises: 0001

`window_capacity.window_name` names a row of the health branch's `maintenance_windows` by value,
with no foreign key, so this branch needs nothing of 0003 to upgrade (and a window can be removed
without touching its capacity row; the planner ignores rows of windows that no longer exist).
No `depends_on` either: Alembic then records only 0006 as current, while the script directory
still lists 0003 as a head, and `Database.is_current()` would report the schema as behind.
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0001"
branch_labels = ("maintenance",)
depends_on = None

ACTIVE_ORDER = sa.text("state NOT IN ('verified', 'cancelled')")
TSV = "to_tsvector('english', title || ' ' || body || ' ' || tags || ' ' || issue_keys)"


def upgrade() -> None:
    op.create_table(
        "procedure_versions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_procedure_versions")),
        sa.UniqueConstraint("name", "version", name=op.f("uq_procedure_versions_name_version")),
        sa.UniqueConstraint("name", "content_hash", name=op.f("uq_procedure_versions_name_content_hash")),
    )
    op.create_table(
        "procedure_runs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("procedure", sa.String(length=100), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        sa.Column("asset", sa.String(length=200), server_default="", nullable=False),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("steps", sa.Text(), server_default="[]", nullable=False),
        sa.Column("incident_key", sa.String(length=500), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_procedure_runs")),
    )
    op.create_index(
        "ix_procedure_runs_procedure_asset_started_at", "procedure_runs", ["procedure", "asset", "started_at"]
    )
    op.create_table(
        "maintenance_schedules",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("procedure", sa.String(length=100), nullable=False),
        sa.Column("asset", sa.String(length=200), server_default="", nullable=False),
        sa.Column("site", sa.String(length=200), server_default="", nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("rule", sa.Text(), nullable=False),
        sa.Column("enabled", sa.Integer(), server_default="1", nullable=False),
        sa.Column("last_done_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("meter_base", sa.Float(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_maintenance_schedules")),
        sa.UniqueConstraint("name", name=op.f("uq_maintenance_schedules_name")),
    )
    op.create_table(
        "schedule_dues",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("schedule_id", sa.Integer(), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("deadline", sa.DateTime(timezone=True), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("fallbacks", sa.Integer(), server_default="0", nullable=False),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("work_order_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["schedule_id"],
            ["maintenance_schedules.id"],
            name=op.f("fk_schedule_dues_schedule_id_maintenance_schedules"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_schedule_dues")),
    )
    op.create_index("ix_schedule_dues_schedule_id_state", "schedule_dues", ["schedule_id", "state"])
    op.create_table(
        "work_orders",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("asset", sa.String(length=200), server_default="", nullable=False),
        sa.Column("key", sa.String(length=500), nullable=False),
        sa.Column("title", sa.String(length=500), nullable=False),
        sa.Column("detail", sa.Text(), server_default="", nullable=False),
        sa.Column("source", sa.String(length=50), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("severity", sa.String(length=20), nullable=False),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("assignee", sa.String(length=200), nullable=True),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("estimated_h", sa.Float(), server_default="1", nullable=False),
        sa.Column("actual_h", sa.Float(), nullable=True),
        sa.Column("parts", sa.Text(), server_default="[]", nullable=False),
        sa.Column("incident_id", sa.Integer(), nullable=True),
        sa.Column("run_id", sa.Integer(), nullable=True),
        sa.Column("prediction", sa.String(length=200), nullable=True),
        sa.Column("procedure", sa.String(length=100), nullable=True),
        sa.Column("window_name", sa.String(length=200), nullable=True),
        sa.Column("planned_start", sa.DateTime(timezone=True), nullable=True),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("verified_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updates", sa.Integer(), server_default="0", nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_work_orders")),
    )
    op.create_index("ix_work_orders_state_due_at", "work_orders", ["state", "due_at"])
    op.create_index(
        "uq_work_orders_active_asset_key",
        "work_orders",
        ["asset", "key"],
        unique=True,
        sqlite_where=ACTIVE_ORDER,
        postgresql_where=ACTIVE_ORDER,
    )
    op.create_table(
        "maintenance_log",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("kind", sa.String(length=50), nullable=False),
        sa.Column("asset", sa.String(length=200), server_default="", nullable=False),
        sa.Column("site", sa.String(length=200), server_default="", nullable=False),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("summary", sa.String(length=500), nullable=False),
        sa.Column("issues", sa.Text(), server_default="", nullable=False),
        sa.Column("actions", sa.Text(), server_default="", nullable=False),
        sa.Column("result", sa.String(length=50), server_default="", nullable=False),
        sa.Column("evidence", sa.Text(), server_default="[]", nullable=False),
        sa.Column("ref", sa.String(length=200), server_default="", nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_maintenance_log")),
    )
    op.create_index("ix_maintenance_log_at", "maintenance_log", ["at"])
    op.create_index("ix_maintenance_log_asset_at", "maintenance_log", ["asset", "at"])
    op.create_table(
        "window_capacity",
        sa.Column("window_name", sa.String(length=200), nullable=False),
        sa.Column("capacity_h", sa.Float(), nullable=False),
        sa.Column("sites", sa.Text(), server_default="[]", nullable=False),
        sa.Column("assets", sa.Text(), server_default="[]", nullable=False),
        sa.Column("fallback", sa.String(length=220), server_default="next", nullable=False),
        sa.Column("max_fallbacks", sa.Integer(), server_default="1", nullable=False),
        sa.PrimaryKeyConstraint("window_name", name=op.f("pk_window_capacity")),
    )
    op.create_table(
        "kb_entries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("slug", sa.String(length=200), nullable=False),
        sa.Column("title", sa.String(length=500), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("issue_keys", sa.Text(), server_default="", nullable=False),
        sa.Column("asset_types", sa.Text(), server_default="", nullable=False),
        sa.Column("tags", sa.Text(), server_default="", nullable=False),
        sa.Column("origin", sa.String(length=20), nullable=False),
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_kb_entries")),
        sa.UniqueConstraint("slug", name=op.f("uq_kb_entries_slug")),
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"CREATE INDEX ix_kb_entries_fts ON kb_entries USING GIN ({TSV})")
    else:
        op.execute(
            "CREATE VIRTUAL TABLE kb_fts USING fts5(title, body, tags, issue_keys, content='kb_entries', "
            "content_rowid='id', tokenize='porter unicode61')"
        )
        op.execute(
            "CREATE TRIGGER kb_entries_ai AFTER INSERT ON kb_entries BEGIN "
            "INSERT INTO kb_fts(rowid, title, body, tags, issue_keys) "
            "VALUES (new.id, new.title, new.body, new.tags, new.issue_keys); END"
        )
        op.execute(
            "CREATE TRIGGER kb_entries_ad AFTER DELETE ON kb_entries BEGIN "
            "INSERT INTO kb_fts(kb_fts, rowid, title, body, tags, issue_keys) "
            "VALUES ('delete', old.id, old.title, old.body, old.tags, old.issue_keys); END"
        )
        op.execute(
            "CREATE TRIGGER kb_entries_au AFTER UPDATE ON kb_entries BEGIN "
            "INSERT INTO kb_fts(kb_fts, rowid, title, body, tags, issue_keys) "
            "VALUES ('delete', old.id, old.title, old.body, old.tags, old.issue_keys); "
            "INSERT INTO kb_fts(rowid, title, body, tags, issue_keys) "
            "VALUES (new.id, new.title, new.body, new.tags, new.issue_keys); END"
        )
    op.create_table(
        "lessons",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("incident_key", sa.String(length=500), nullable=False),
        sa.Column("incident_id", sa.Integer(), nullable=True),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("author", sa.String(length=200), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("kb_slug", sa.String(length=200), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_lessons")),
    )
    op.create_index("ix_lessons_incident_key", "lessons", ["incident_key"])


def downgrade() -> None:
    op.drop_table("lessons")
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP INDEX IF EXISTS ix_kb_entries_fts")
    else:
        for trigger in ("kb_entries_ai", "kb_entries_ad", "kb_entries_au"):
            op.execute(f"DROP TRIGGER IF EXISTS {trigger}")
        op.execute("DROP TABLE IF EXISTS kb_fts")
    op.drop_table("kb_entries")
    op.drop_table("window_capacity")
    op.drop_table("maintenance_log")
    op.drop_table("work_orders")
    op.drop_table("schedule_dues")
    op.drop_table("maintenance_schedules")
    op.drop_table("procedure_runs")
    op.drop_table("procedure_versions")
