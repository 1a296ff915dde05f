"""vacuum_database: PostgreSQL VACUUM (ANALYZE) of tables with many dead tuples (and REINDEX of
their indexes when allowed); SQLite VACUUM and ANALYZE. Only inside a maintenance window unless
the incident is critical."""

from __future__ import annotations

import sqlite3
from typing import Any, ClassVar

from sqlalchemy import make_url

from pitstop.incidents import Incident
from pitstop.remediation.base import Action, ActionContext, Outcome, Plan

FLAGGED = (
    "SELECT relname, n_dead_tup, n_live_tup FROM pg_stat_user_tables "
    "WHERE n_live_tup + n_dead_tup >= %(min_rows)s "
    "AND n_dead_tup::float8 / greatest(n_live_tup + n_dead_tup, 1) >= %(ratio)s ORDER BY relname"
)
INDEXES = "SELECT indexrelname FROM pg_stat_user_indexes WHERE relname = %(table)s ORDER BY indexrelname"


class VacuumDatabase(Action):
    """params: url (a PostgreSQL URL; empty: pitstop's own database), tables (only these; empty: the
    flagged ones), dead_ratio (0.2), min_rows (1000), reindex (false), timeout_s (600)."""

    name = "vacuum_database"
    destructive: ClassVar[bool] = False

    def configure(self, **params: Any) -> None:
        if unknown := set(params) - {"url", "tables", "dead_ratio", "min_rows", "reindex", "timeout_s"}:
            raise ValueError(f"vacuum_database: unknown parameter(s) {', '.join(sorted(unknown))}")
        url = params.get("url")
        if url is not None and make_url(str(url)).get_backend_name() != "postgresql":
            raise ValueError("vacuum_database: url must be a postgresql:// URL")
        self.url: str | None = str(url) if url is not None else None
        tables = params.get("tables", [])
        if not isinstance(tables, list) or not all(isinstance(t, str) and t and "\x00" not in t for t in tables):
            raise ValueError("vacuum_database: tables must be a list of table names")
        self.tables: list[str] = tables
        self.dead_ratio = float(params.get("dead_ratio", 0.2))
        self.min_rows = int(params.get("min_rows", 1000))
        self.reindex = bool(params.get("reindex", False))
        self.timeout_s = float(params.get("timeout_s", 600.0))

    def _pg_url(self, ctx: ActionContext) -> str | None:
        if self.url is not None:
            return make_url(self.url).set(drivername="postgresql").render_as_string(hide_password=False)
        if ctx.db.dialect == "postgresql":
            return ctx.db.url.set(drivername="postgresql").render_as_string(hide_password=False)
        return None

    def plan(self, incident: Incident, ctx: ActionContext, /) -> Plan:
        url = self._pg_url(ctx)
        if url is None:
            return Plan(
                self.name,
                incident.target,
                ("VACUUM the SQLite database", "ANALYZE it"),
                self.destructive,
                {"dialect": "sqlite"},
                needs_window=True,
            )
        import psycopg

        with psycopg.connect(url, connect_timeout=5, application_name="pitstop-remediation") as conn:
            conn.read_only = True
            rows = conn.execute(FLAGGED, {"min_rows": self.min_rows, "ratio": self.dead_ratio}).fetchall()
            tables = [str(r[0]) for r in rows if not self.tables or r[0] in self.tables]
            indexes = {
                t: [str(r[0]) for r in conn.execute(INDEXES, {"table": t}).fetchall()] if self.reindex else []
                for t in tables
            }
        steps = [f"VACUUM (ANALYZE) {t}" for t in tables]
        steps += [f"REINDEX INDEX {i}" for t in tables for i in indexes[t]]
        return Plan(
            self.name,
            incident.target,
            tuple(steps) or (f"no table has {self.dead_ratio:.0%} dead tuples",),
            self.destructive,
            {"dialect": "postgresql", "tables": tables, "indexes": [i for t in tables for i in indexes[t]]},
            needs_window=True,
        )

    def apply(self, plan: Plan, ctx: ActionContext, /) -> Outcome:
        started = ctx.clock.now()
        if plan.params.get("dialect") == "sqlite":
            if ctx.db.dialect != "sqlite":
                return self.outcome(plan, ctx, started, False, "planned for SQLite, the database is not SQLite")
            path = ctx.db.url.database
            if not path or path == ":memory:":
                return self.outcome(plan, ctx, started, False, "an in-memory SQLite database is not vacuumed")
            lite = sqlite3.connect(path, timeout=self.timeout_s, isolation_level=None)  # VACUUM needs autocommit
            try:
                lite.execute("VACUUM")
                lite.execute("ANALYZE")
            except sqlite3.Error as exc:
                return self.outcome(plan, ctx, started, False, f"failed: {exc}")
            finally:
                lite.close()
            return self.outcome(plan, ctx, started, True, "VACUUM and ANALYZE done")
        url = self._pg_url(ctx)
        if url is None:
            return self.outcome(plan, ctx, started, False, "no PostgreSQL database to vacuum")
        import psycopg
        from psycopg import sql

        lines: list[str] = []
        done: dict[str, dict[str, int]] = {}
        try:
            with psycopg.connect(
                url, connect_timeout=5, autocommit=True, application_name="pitstop-remediation"
            ) as conn:
                conn.execute(sql.SQL("SET statement_timeout = {}").format(sql.Literal(int(self.timeout_s * 1000))))
                for table in [str(t) for t in plan.params.get("tables", [])]:
                    conn.execute(sql.SQL("VACUUM (ANALYZE) {}").format(sql.Identifier(table)))
                    row = conn.execute(
                        "SELECT n_dead_tup, n_live_tup FROM pg_stat_user_tables WHERE relname = %s", (table,)
                    ).fetchone()
                    done[table] = {"dead": int(row[0]), "live": int(row[1])} if row else {}
                    lines.append(f"VACUUM (ANALYZE) {table}: {done[table]}")
                for index in [str(i) for i in plan.params.get("indexes", [])]:
                    conn.execute(sql.SQL("REINDEX INDEX {}").format(sql.Identifier(index)))
                    lines.append(f"REINDEX INDEX {index}")
        except psycopg.Error as exc:
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            return self.outcome(plan, ctx, started, False, f"failed: {first[:300]}", output="\n".join(lines))
        return self.outcome(
            plan, ctx, started, True, f"vacuumed {len(done)} table(s)", output="\n".join(lines), data={"tables": done}
        )
