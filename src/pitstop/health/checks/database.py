"""Database checks: pitstop's own database, and any PostgreSQL (reachable, latency, VACUUM need,
size growth, slowest statements when pg_stat_statements is installed)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from sqlalchemy.engine import make_url

from pitstop.core.types import Status
from pitstop.errors import PitstopError
from pitstop.health.base import Check, CheckContext, CheckResult, Threshold

if TYPE_CHECKING:
    import psycopg

QUERY_LATENCY = Threshold("latency_ms", "above", warning=1000, critical=5000, target=100)


class PostgresUnreachable(Exception):
    """Connecting failed; the message is libpq's reason, one line (the URL's password is not in it)."""


def libpq_url(ctx: CheckContext, url: str | None) -> str | None:
    """The URL psycopg connects to: `url` without a SQLAlchemy driver (postgresql+psycopg://), or
    pitstop's own database's when `url` is None; None when that is not PostgreSQL."""
    if url is None:
        if ctx.db.dialect != "postgresql":
            return None
        return ctx.db.url.set(drivername="postgresql").render_as_string(hide_password=False)
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def connect_postgres(url: str, timeout_s: int) -> psycopg.Connection[Any]:
    """A connection named pitstop-check, or PostgresUnreachable within `timeout_s` (whole seconds: libpq's)."""
    import psycopg

    try:
        return psycopg.connect(url, connect_timeout=timeout_s, application_name="pitstop-check")
    except psycopg.Error as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise PostgresUnreachable(first[:200]) from None


class DatabaseCheck(Check):
    """pitstop's own database answers, and how fast (target: "pitstop")."""

    default_target = "pitstop"
    name = "database"
    issue = "database.down"
    default_thresholds = (QUERY_LATENCY,)

    def run(self, ctx: CheckContext, /) -> CheckResult:
        start = time.perf_counter()
        try:
            ctx.db.ping()
        except PitstopError as exc:
            return self.result(ctx, Status.CRITICAL, str(exc), observed={"up": 0.0})
        latency = (time.perf_counter() - start) * 1000
        return self.judge(
            ctx, {"latency_ms": round(latency, 3), "up": 1.0}, f"{ctx.db.dialect} answers in {latency:.1f} ms"
        )


class PostgresCheck(Check):
    """A PostgreSQL server. params: url (a secret; empty: pitstop's own database), min_rows (1000).

    The target is a label; the URL's password never appears in results.
    """

    name = "postgres"
    issue = "postgres.unhealthy"
    waits_on_network = True
    default_thresholds = (
        QUERY_LATENCY,
        Threshold("dead_tuple_ratio", "above", warning=0.2, critical=0.5, clear=0.15),
        Threshold("slowest_mean_ms", "above", warning=1000, critical=5000),
    )

    def configure(self, **params: Any) -> None:
        if unknown := set(params) - {"url", "min_rows", "timeout_s"}:
            raise ValueError(f"postgres check: unknown parameter(s) {', '.join(sorted(unknown))}")
        self.url: str | None = params.get("url")
        if self.url is not None and make_url(self.url).get_backend_name() != "postgresql":
            raise ValueError("postgres check: url must be a postgresql:// URL")
        self.min_rows = int(params.get("min_rows", 1000))
        self.wait_s = int(params.get("timeout_s", 5))
        self._last_size: tuple[float, float] | None = None

    def run(self, ctx: CheckContext, /) -> CheckResult:
        import psycopg

        url = libpq_url(ctx, self.url)
        if url is None:
            return self.result(ctx, Status.UNKNOWN, "pitstop's database is not PostgreSQL; give params.url")
        start = time.perf_counter()
        try:
            conn = connect_postgres(url, self.wait_s)
        except PostgresUnreachable as exc:
            return self.result(ctx, Status.CRITICAL, f"{self.target}: not reachable ({exc})", observed={"up": 0.0})
        with conn:
            conn.execute("SELECT 1").fetchone()
            latency = (time.perf_counter() - start) * 1000
            size = float(conn.execute("SELECT pg_database_size(current_database())").fetchone()[0])  # type: ignore[index]
            rows = conn.execute(
                "SELECT relname, n_dead_tup::float8 / (n_live_tup + n_dead_tup) FROM pg_stat_user_tables "
                "WHERE n_live_tup + n_dead_tup >= %s ORDER BY 2 DESC",
                (self.min_rows,),
            ).fetchall()
            slowest = None
            if conn.execute("SELECT 1 FROM pg_extension WHERE extname = 'pg_stat_statements'").fetchone():
                try:
                    row = conn.execute("SELECT max(mean_exec_time) FROM pg_stat_statements").fetchone()
                    slowest = float(row[0]) if row and row[0] is not None else None
                except psycopg.Error:
                    slowest = None  # installed but not preloaded
        observed: dict[str, float] = {"up": 1.0, "latency_ms": round(latency, 3), "size_bytes": size}
        observed["dead_tuple_ratio"] = round(float(rows[0][1]), 4) if rows else 0.0
        needing = [name for name, ratio in rows if ratio >= self.thresholds["dead_tuple_ratio"].raise_level]
        observed["tables_needing_vacuum"] = float(len(needing))
        now = ctx.clock.now().timestamp()
        if self._last_size is not None and now > self._last_size[0]:
            observed["growth_bytes_per_day"] = (size - self._last_size[1]) * 86400 / (now - self._last_size[0])
        self._last_size = (now, size)
        if slowest is not None:
            observed["slowest_mean_ms"] = round(slowest, 3)
        summary = f"{self.target}: answers in {latency:.0f} ms, {size / 1024**2:.0f} MiB"
        if needing:
            summary += f"; VACUUM: {', '.join(needing[:5])}"
        return self.judge(ctx, observed, summary)
