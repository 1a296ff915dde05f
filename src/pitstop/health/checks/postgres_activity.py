"""What a PostgreSQL server is busy with: long queries, lock waits, sessions idle in a transaction,
invalid and unused indexes, and the most bloated table (an estimate).

The `postgres` check says whether the server answers and needs VACUUM; this one says why it is
slow or stuck, naming the session or object. Read from pg_stat_activity, pg_locks, pg_index,
pg_stat_user_indexes, pg_class and pg_stats (PostgreSQL 12 or later); it needs no superuser: a role
with pg_monitor (or pg_read_all_stats) sees every session's query, any other role only its own, and
the summary says so. The table bloat estimate needs SELECT on the tables (pg_stats shows only
readable columns).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from pitstop.core.types import Status
from pitstop.health.base import Check, CheckContext, CheckResult, Threshold
from pitstop.health.checks.database import PostgresUnreachable, connect_postgres, libpq_url

if TYPE_CHECKING:
    import psycopg

PARAMS = {
    "url",
    "scope",
    "long_query_s",
    "lock_wait_s",
    "idle_in_transaction_s",
    "include_workers",
    "unused_min_bytes",
    "bloat_min_bytes",
    "timeout_s",
}
MAX_SECONDS = 30 * 86400.0
MAX_BYTES = float(2**50)

# Sessions that are running a statement; "idle in transaction" ones are counted apart.
RUNNING = ("active", "fastpath function call")
IDLE_IN_TRANSACTION = ("idle in transaction", "idle in transaction (aborted)")

# `now()` is the start of the check's one transaction, which also holds a single snapshot of
# pg_stat_activity (PostgreSQL caches it per transaction), so the queries below agree.
LONG_QUERIES = """
SELECT pid, usename, datname, extract(epoch FROM now() - query_start)::float8 AS seconds, query
FROM pg_stat_activity
WHERE state = ANY(%(running)s) AND pid <> pg_backend_pid()
  AND (%(workers)s OR backend_type = 'client backend')
  AND (%(server)s OR datname = current_database())
  AND now() - query_start >= make_interval(secs => %(min_s)s)
ORDER BY seconds DESC
"""

# Waiters come from pg_locks (ungranted heavyweight locks: the sessions pg_stat_activity shows with
# wait_event_type 'Lock'), which every role may read, so a role without pg_read_all_stats still
# counts them. The wait began at pg_locks.waitstart (PostgreSQL 14+; null for a moment after the wait
# begins); before 14 the waiting statement's start stands in for it.
LOCK_WAITS = """
SELECT w.pid, a.usename, a.datname, extract(epoch FROM now() - {since})::float8 AS seconds,
       a.query, pg_blocking_pids(w.pid) AS blockers
FROM (SELECT pid, min({waitstart}) AS waitstart FROM pg_locks WHERE NOT granted AND pid IS NOT NULL GROUP BY pid) w
LEFT JOIN pg_stat_activity a ON a.pid = w.pid
WHERE w.pid <> pg_backend_pid()
  AND (%(server)s OR a.datid = (SELECT oid FROM pg_database WHERE datname = current_database()))
  AND now() - {since} >= make_interval(secs => %(min_s)s)
ORDER BY seconds DESC
"""
WAIT_SINCE = {
    True: ("waitstart", "coalesce(w.waitstart, now())"),
    False: ("NULL::timestamptz", "coalesce(a.query_start, now())"),
}

BLOCKER = "SELECT usename, state FROM pg_stat_activity WHERE pid = %s"

IDLE_IN_TRANSACTIONS = """
SELECT pid, usename, datname, extract(epoch FROM now() - state_change)::float8 AS seconds, query
FROM pg_stat_activity
WHERE state = ANY(%(idle)s) AND pid <> pg_backend_pid()
  AND (%(server)s OR datname = current_database())
  AND now() - state_change >= make_interval(secs => %(min_s)s)
ORDER BY seconds DESC
"""

# Without pg_read_all_stats, other roles' sessions show only who and where, this text for the query.
HIDDEN_SESSIONS = """
SELECT count(*) FROM pg_stat_activity
WHERE query = '<insufficient privilege>' AND (%(server)s OR datname = current_database())
"""

# An index being built or rebuilt concurrently is invalid until it is done: not a finding.
INVALID_INDEXES = """
SELECT format('%I.%I', n.nspname, c.relname)
FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE NOT i.indisvalid
  AND i.indexrelid NOT IN (SELECT index_relid FROM pg_stat_progress_create_index WHERE index_relid IS NOT NULL)
ORDER BY 1
"""

# Sizes from pg_class.relpages (as of the last VACUUM, ANALYZE or CREATE INDEX): pg_relation_size
# would wait on a lock that a DROP or REINDEX holds. Unique, primary-key and constraint indexes are
# used by writes even when no query scans them.
UNUSED_INDEXES = """
SELECT format('%%I.%%I', s.schemaname, s.indexrelname), c.relpages::float8 * current_setting('block_size')::int
FROM pg_stat_user_indexes s
JOIN pg_index i ON i.indexrelid = s.indexrelid
JOIN pg_class c ON c.oid = s.indexrelid
WHERE s.idx_scan = 0 AND i.indisvalid AND NOT i.indisunique AND NOT i.indisprimary
  AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = s.indexrelid)
  AND c.relpages::float8 * current_setting('block_size')::int >= %(min_bytes)s
ORDER BY 2 DESC, 1
"""

STATS_SINCE = "SELECT stats_reset FROM pg_stat_database WHERE datname = current_database()"

# Per table: its pages and rows (as of the last VACUUM or ANALYZE), its fill factor, and from
# pg_stats the average bytes of data a row holds; tables with a column without statistics are left out.
TABLE_SHAPES = """
SELECT format('%%I.%%I', n.nspname, c.relname), c.relpages::float8, c.reltuples::float8,
       coalesce((SELECT substring(o FROM '^fillfactor=(\\d+)$')::int FROM unnest(c.reloptions) o
                 WHERE o LIKE 'fillfactor=%%'), 100),
       count(a.attnum), count(s.attname),
       coalesce(sum((1 - s.null_frac) * s.avg_width), 0)::float8,
       coalesce(bool_or(s.null_frac > 0), false)
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
LEFT JOIN pg_stats s ON s.schemaname = n.nspname AND s.tablename = c.relname AND s.attname = a.attname
                    AND NOT s.inherited
WHERE c.relkind IN ('r', 'm') AND c.relpersistence <> 't'
  AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_toast%%'
  AND c.reltuples >= 0 AND c.relpages > 0
  AND c.relpages::float8 * current_setting('block_size')::int >= %(min_bytes)s
GROUP BY c.oid, n.nspname, c.relname, c.relpages, c.reltuples, c.reloptions
"""

PAGE_HEADER = 24  # bytes
TUPLE_HEADER = 23  # bytes, before the null bitmap
LINE_POINTER = 4  # bytes per tuple in the page's item array
MAXALIGN = 8


@dataclass(frozen=True, slots=True)
class Session:
    pid: int
    user: str | None
    database: str | None
    seconds: float
    query: str | None

    def who(self) -> str:
        return f"pid {self.pid} ({self.user or '?'}@{self.database or '?'})"


@dataclass(frozen=True, slots=True)
class Bloat:
    table: str
    pct: float
    wasted_bytes: float


def expected_pages(
    rows: float, data_bytes: float, columns: int, nullable: bool, fillfactor: int, block_size: int
) -> int:
    """Heap pages `rows` rows would fill when packed: each row a MAXALIGNed header (with a null
    bitmap when any column has nulls) and data, plus its line pointer; pages filled to `fillfactor`.
    Padding between columns is not counted, so rows mixing short and 8-byte columns read a little small."""
    header = TUPLE_HEADER + ((columns + 7) // 8 if nullable else 0)
    tuple_bytes = _align(header) + _align(data_bytes) + LINE_POINTER
    per_page = max(1, math.floor((block_size - PAGE_HEADER) * fillfactor / 100 / tuple_bytes))
    return math.ceil(rows / per_page)


def estimate_bloat(
    table: str,
    pages: float,
    rows: float,
    fillfactor: int,
    data_bytes: float,
    columns: int,
    nullable: bool,
    block_size: int,
) -> Bloat:
    """The share of a table's pages beyond what its rows need: an estimate from statistics (pg_class's
    pages and rows, pg_stats' average widths, as of the last VACUUM or ANALYZE), the well-known
    approach of ioguix/pgsql-bloat-estimation, simplified to the heap (its TOAST table is not judged).
    Against a rewritten copy of the table it came within 0.5 points on fixed-width rows and 3 to 7
    points high on rows of nullable text between 4- and 8-byte columns."""
    wasted = max(0.0, pages - expected_pages(rows, data_bytes, columns, nullable, fillfactor, block_size))
    return Bloat(table, round(100 * wasted / pages, 1), wasted * block_size)


class PostgresActivityCheck(Check):
    """What a PostgreSQL server is busy with. params: url (a secret; empty: pitstop's own database),
    scope ("server": every database's sessions, or "database": the URL's only), long_query_s (60),
    lock_wait_s (5), idle_in_transaction_s (300), include_workers (false: only client sessions'
    queries count as long, not autovacuum, replication or background workers'), unused_min_bytes
    (1 MiB), bloat_min_bytes (10 MiB), timeout_s (5).

    Indexes and bloat are the URL's database's. The target is a label; the URL's password never
    appears in results. A summary names the worst of each finding, e.g. "plant-db: 1 query over
    60 s: pid 4711 (etl@plant) 412 s: UPDATE readings SET ...".
    """

    name = "postgres_activity"
    issue = "database.activity"
    waits_on_network = True
    timeout_s = 15.0  # connect (timeout_s) and a few catalog reads, each bounded by timeout_s
    default_thresholds = (
        Threshold("long_queries", "above", warning=1),
        Threshold("longest_query_s", "above", critical=3600),
        Threshold("lock_waits", "above", warning=1),
        Threshold("longest_lock_wait_s", "above", critical=300),
        Threshold("idle_in_transaction", "above", warning=1),
        Threshold("longest_idle_in_transaction_s", "above", critical=3600),
        Threshold("invalid_indexes", "above", warning=1),
        Threshold("bloat_pct", "above", warning=50),
        # unused_indexes has none: informational, as idx_scan counts only since the last stats reset.
        # A threshold `unused_indexes` (e.g. warning = 1) in the settings or a profile makes it a warning.
    )

    def configure(self, **params: Any) -> None:
        if unknown := set(params) - PARAMS:
            raise ValueError(f"postgres_activity check: unknown parameter(s) {', '.join(sorted(unknown))}")
        self.url = _url_param(params.get("url"))
        scope = params.get("scope", "server")
        if scope not in ("server", "database"):
            raise ValueError("postgres_activity check: scope must be 'server' or 'database'")
        self.whole_server = scope == "server"
        self.long_query_s = _number(params, "long_query_s", 60.0, MAX_SECONDS)
        self.lock_wait_s = _number(params, "lock_wait_s", 5.0, MAX_SECONDS)
        self.idle_in_transaction_s = _number(params, "idle_in_transaction_s", 300.0, MAX_SECONDS)
        self.unused_min_bytes = _number(params, "unused_min_bytes", 1024.0**2, MAX_BYTES)
        self.bloat_min_bytes = _number(params, "bloat_min_bytes", 10 * 1024.0**2, MAX_BYTES)
        workers = params.get("include_workers", False)
        if not isinstance(workers, bool):
            raise ValueError("postgres_activity check: include_workers must be true or false")
        self.include_workers = workers
        wait = params.get("timeout_s", 5)
        if isinstance(wait, bool) or not isinstance(wait, int | float) or not 1 <= wait <= 60:
            raise ValueError("postgres_activity check: timeout_s must be a number of seconds from 1 to 60")
        self.wait_s = math.ceil(wait)

    def run(self, ctx: CheckContext, /) -> CheckResult:
        url = libpq_url(ctx, self.url)
        if url is None:
            return self.result(ctx, Status.UNKNOWN, "pitstop's database is not PostgreSQL; give params.url")
        try:
            conn = connect_postgres(url, self.wait_s)
        except PostgresUnreachable as exc:
            return self.result(ctx, Status.CRITICAL, f"{self.target}: not reachable ({exc})", observed={"up": 0.0})
        with conn:
            conn.read_only = True
            # A check must not hang behind a lock (a DROP, a VACUUM FULL on a catalog) or a slow catalog.
            conn.execute(
                "SELECT set_config('statement_timeout', %s, true), set_config('lock_timeout', '1s', true)",
                (f"{self.wait_s}s",),
            )
            return self._observe(ctx, conn)

    def _observe(self, ctx: CheckContext, conn: psycopg.Connection[Any]) -> CheckResult:
        server = {"server": self.whole_server}
        row = conn.execute("SELECT pg_has_role('pg_read_all_stats', 'USAGE'), current_user").fetchone()
        assert row is not None
        sees_all, role = bool(row[0]), str(row[1])
        long = self._sessions(
            conn, LONG_QUERIES, server | {"running": list(RUNNING), "workers": self.include_workers}, self.long_query_s
        )
        waitstart, since = WAIT_SINCE[conn.info.server_version >= 140000]
        lock_waits = LOCK_WAITS.format(waitstart=waitstart, since=since)
        waits = conn.execute(lock_waits, server | {"min_s": self.lock_wait_s}).fetchall()
        idle = self._sessions(
            conn, IDLE_IN_TRANSACTIONS, server | {"idle": list(IDLE_IN_TRANSACTION)}, self.idle_in_transaction_s
        )
        hidden = 0
        if not sees_all:
            hidden_row = conn.execute(HIDDEN_SESSIONS, server).fetchone()
            hidden = int(hidden_row[0]) if hidden_row else 0
        invalid = [str(r[0]) for r in conn.execute(INVALID_INDEXES).fetchall()]
        unused = conn.execute(UNUSED_INDEXES, {"min_bytes": self.unused_min_bytes}).fetchall()
        stats_row = conn.execute(STATS_SINCE).fetchone()
        stats_since: datetime | None = stats_row[0] if stats_row else None
        block_size = int(conn.execute("SELECT current_setting('block_size')::int").fetchone()[0])  # type: ignore[index]
        bloat = [
            estimate_bloat(name, pages, rows, fillfactor, width, columns, nullable, block_size)
            for name, pages, rows, fillfactor, columns, with_stats, width, nullable in conn.execute(
                TABLE_SHAPES, {"min_bytes": self.bloat_min_bytes}
            ).fetchall()
            if with_stats == columns
        ]
        worst_bloat = max(bloat, key=lambda b: (b.pct, b.wasted_bytes), default=None)
        blocker = None
        if waits and waits[0][5]:
            blocker_pid = int(waits[0][5][0])
            found = conn.execute(BLOCKER, (blocker_pid,)).fetchone()
            blocker = (blocker_pid, found[0] if found else None, found[1] if found else None)

        observed: dict[str, float] = {
            "up": 1.0,
            "long_queries": float(len(long)),
            "longest_query_s": round(long[0].seconds, 1) if long else 0.0,
            "lock_waits": float(len(waits)),
            "longest_lock_wait_s": round(float(waits[0][3]), 1) if waits else 0.0,
            "idle_in_transaction": float(len(idle)),
            "longest_idle_in_transaction_s": round(idle[0].seconds, 1) if idle else 0.0,
            "invalid_indexes": float(len(invalid)),
            "unused_indexes": float(len(unused)),
            "unused_index_bytes": float(sum(size for _, size in unused)),
            "hidden_sessions": float(hidden),
        }
        if worst_bloat is not None:  # no table big enough, or none with statistics: no estimate
            observed["bloat_pct"] = worst_bloat.pct
            observed["bloat_bytes"] = worst_bloat.wasted_bytes

        parts = []
        if long:
            first = long[0]
            parts.append(
                f"{_count(len(long), 'query', 'queries')} over {self.long_query_s:g} s, longest "
                f"{first.who()} {first.seconds:.0f} s: {one_line(first.query)}"
            )
        if waits:
            pid, user, database, seconds, query, _ = waits[0]
            waiter = Session(int(pid), user, database, float(seconds), query)
            text = f"{_count(len(waits), 'session')} waiting on a lock over {self.lock_wait_s:g} s, longest "
            text += f"{waiter.who()} {waiter.seconds:.0f} s: {one_line(query)}"
            if blocker is not None:
                state = f", {blocker[2]}" if blocker[2] else ""
                text += f", blocked by pid {blocker[0]} ({blocker[1] or '?'}{state})"
            parts.append(text)
        if idle:
            first = idle[0]
            parts.append(
                f"{_count(len(idle), 'session')} idle in a transaction over {self.idle_in_transaction_s:g} s, "
                f"longest {first.who()} {first.seconds:.0f} s after: {one_line(first.query)}"
            )
        if invalid:
            parts.append(f"{_count(len(invalid), 'invalid index', 'invalid indexes')}: {_names(invalid)}")
        if unused:
            reset = f"since stats reset {stats_since:%Y-%m-%d}" if stats_since else "since stats began"
            named = _names([f"{name} {size / 1024**2:.0f} MiB" for name, size in unused], 3)
            parts.append(f"{_count(len(unused), 'unused index', 'unused indexes')} (no scans {reset}): {named}")
        if worst_bloat is not None and (worst_bloat.pct >= 20 or self._raised("bloat_pct", worst_bloat.pct)):
            # under 20 % is ordinary free space, unless a threshold says otherwise
            parts.append(
                f"bloat ~{worst_bloat.pct:.0f}% of {worst_bloat.table} "
                f"(~{worst_bloat.wasted_bytes / 1024**2:.0f} MiB, estimate)"
            )
        if not sees_all:
            others = f", {_count(hidden, 'session')} hidden" if hidden else ""
            parts.append(f"role {role} cannot see other roles' queries{others} (grant pg_monitor or pg_read_all_stats)")
        summary = "; ".join(parts) if parts else "no long queries, lock waits or idle transactions; indexes valid"
        # Role, database and object names may hold any character; a summary is one printable line.
        return self.judge(ctx, observed, _printable(f"{self.target}: {summary}"))

    def _raised(self, metric: str, value: float) -> bool:
        threshold = self.thresholds.get(metric)
        return threshold is not None and threshold.status(value) is not Status.HEALTHY

    def _sessions(self, conn: psycopg.Connection[Any], sql: str, args: dict[str, Any], min_s: float) -> list[Session]:
        rows = conn.execute(sql, args | {"min_s": min_s}).fetchall()
        return [Session(int(pid), user, db, float(seconds), query) for pid, user, db, seconds, query in rows]


SECRET = re.compile(r"(password\s+)('(?:[^']|'')*'|\S+)", re.IGNORECASE)


def one_line(query: str | None, width: int = 80) -> str:
    """The first `width` characters of a statement on one line, printable, a password literal masked
    (ALTER ROLE ... PASSWORD '...'): it goes into alerts."""
    if not query:
        return "(no query text)"
    text = _printable(" ".join(SECRET.sub(r"\1'***'", query).split()))
    return text if len(text) <= width else text[: width - 1] + "…"


def _printable(text: str) -> str:
    return "".join(c if c.isprintable() else "?" for c in text)


def _url_param(url: Any) -> str | None:
    if url is None:
        return None
    try:
        backend = make_url(url).get_backend_name() if isinstance(url, str) else None
    except (ArgumentError, ValueError):  # unparsable, or a port that is not a number
        backend = None
    if backend != "postgresql":
        raise ValueError("postgres_activity check: url must be a postgresql:// URL")
    return str(url)


def _number(params: dict[str, Any], name: str, default: float, most: float) -> float:
    value = params.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= most:
        raise ValueError(f"postgres_activity check: {name} must be a number from 0 to {most:g}")
    return float(value)


def _align(size: float) -> int:
    return math.ceil(size / MAXALIGN) * MAXALIGN


def _count(n: int, one: str, many: str | None = None) -> str:
    return f"{n} {one if n == 1 else (many or one + 's')}"


def _names(names: list[str], most: int = 5) -> str:
    more = f" and {len(names) - most} more" if len(names) > most else ""
    return ", ".join(names[:most]) + more
