"""The postgres_activity check against the real PostgreSQL: long queries, lock waits, sessions idle in
a transaction, invalid and unused indexes and table bloat, each made happen in a scratch database."""

from __future__ import annotations

import contextlib
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from pitstop.core.types import Status
from pitstop.health.base import CheckContext, CheckResult, Threshold
from pitstop.health.checks import checks
from pitstop.health.checks.database import PostgresCheck
from pitstop.health.checks.postgres_activity import PostgresActivityCheck, one_line
from pitstop.storage import Database
from pitstop.testing.clock import FrozenClock
from pitstop.testing.services import scratch_postgres_database


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    with scratch_postgres_database() as scratch:
        yield scratch


@pytest.fixture
def ctx(tmp_path: Path) -> Iterator[CheckContext]:
    db = Database(f"sqlite:///{tmp_path / 'pitstop.db'}")  # pitstop's own: not the database watched
    yield CheckContext(clock=FrozenClock(), db=db)
    db.dispose()


def admin(url: str) -> psycopg.Connection[Any]:
    return psycopg.connect(url, autocommit=True)


def check(url: str, thresholds: dict[str, Threshold] | None = None, **params: Any) -> PostgresActivityCheck:
    return PostgresActivityCheck("scratch", thresholds=thresholds, params={"url": url, "scope": "database"} | params)


def run_until(
    c: PostgresActivityCheck, ctx: CheckContext, done: Callable[[CheckResult], bool], within_s: float = 8.0
) -> CheckResult:
    """Run the check until `done` holds for its result (the sessions it watches take a moment to get
    there); the last result either way."""
    deadline = time.perf_counter() + within_s
    while True:
        result = c.run(ctx)
        if done(result) or time.perf_counter() > deadline:
            return result
        time.sleep(0.2)


def in_thread(conn: psycopg.Connection[Any], sql: str) -> threading.Thread:
    """Run `sql` on `conn` in a thread; cancelling or terminating it is the test's way out."""

    def work() -> None:
        with contextlib.suppress(psycopg.Error):
            conn.execute(sql)

    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    return thread


@pytest.mark.postgres
def test_long_query_lock_wait_and_idle_transaction_are_named_then_clear(url: str, ctx: CheckContext) -> None:
    with admin(url) as a:
        a.execute("CREATE TABLE locked (id int)")
    holder, sleeper, waiter = psycopg.connect(url), admin(url), admin(url)
    threads = []
    try:
        holder.execute("LOCK TABLE locked IN ACCESS EXCLUSIVE MODE")  # and stays idle in its transaction
        threads.append(in_thread(sleeper, "SELECT pg_sleep(30)"))
        time.sleep(0.3)  # the sleeper is the longest query; the blocked SELECT is long too
        threads.append(in_thread(waiter, "SELECT count(*)\n  FROM   locked"))
        busy = check(url, long_query_s=1, lock_wait_s=0.5, idle_in_transaction_s=1)

        def all_seen(r: CheckResult) -> bool:
            return r.observed.get("long_queries") == 2 and r.observed.get("longest_lock_wait_s", 0) >= 0.5

        result = run_until(busy, ctx, all_seen)
        assert result.status is Status.WARNING, result.summary
        assert result.observed["long_queries"] == 2 and result.observed["longest_query_s"] >= 1
        assert result.observed["lock_waits"] == 1 and result.observed["idle_in_transaction"] == 1
        assert result.observed["longest_idle_in_transaction_s"] >= 1
        assert result.issue_key == "database.activity" and result.summary.startswith("scratch: ")
        sleeper_pid, waiter_pid, holder_pid = (c.info.backend_pid for c in (sleeper, waiter, holder))
        assert f"2 queries over 1 s, longest pid {sleeper_pid} (postgres@" in result.summary
        assert "s: SELECT pg_sleep(30)" in result.summary
        assert f"1 session waiting on a lock over 0.5 s, longest pid {waiter_pid} (postgres@" in result.summary
        assert f"s: SELECT count(*) FROM locked, blocked by pid {holder_pid} (postgres, idle in transaction)" in (
            result.summary
        )
        assert f"1 session idle in a transaction over 1 s, longest pid {holder_pid}" in result.summary
        assert "LOCK TABLE locked IN ACCESS EXCLUSIVE MODE" in result.summary
        assert "cannot see" not in result.summary  # postgres is a superuser

        # Thresholds are data: a profile may make any lock wait critical.
        strict = check(url, {"lock_waits": Threshold("lock_waits", critical=1)}, lock_wait_s=0.5)
        assert strict.run(ctx).status is Status.CRITICAL

        with admin(url) as a:
            a.execute("SELECT pg_cancel_backend(%s)", (sleeper_pid,))
        holder.rollback()  # the waiter gets its lock and finishes
        for thread in threads:
            thread.join(timeout=10)
        calm = run_until(busy, ctx, lambda r: r.status is Status.HEALTHY)
        assert calm.status is Status.HEALTHY and calm.is_clear, calm.summary
        assert calm.observed["long_queries"] == calm.observed["lock_waits"] == 0
        assert calm.observed["longest_query_s"] == calm.observed["longest_lock_wait_s"] == 0
        assert calm.observed["idle_in_transaction"] == 0
    finally:
        for conn in (holder, sleeper, waiter):
            conn.cancel_safe()
            conn.close()


@pytest.mark.postgres
def test_server_scope_sees_other_databases_and_database_scope_does_not(url: str, ctx: CheckContext) -> None:
    sleeper = admin(url)
    thread = in_thread(sleeper, "SELECT pg_sleep(30)")
    try:
        with scratch_postgres_database() as quiet:  # a database nobody else uses: the check is alone there
            whole = run_until(
                check(quiet, long_query_s=0.5, scope="server"), ctx, lambda r: r.observed["long_queries"] >= 1
            )
            assert whole.observed["long_queries"] >= 1, whole.summary  # the sleeper, and anyone else's
            own = check(quiet, long_query_s=0.5, scope="database").run(ctx)
            assert own.observed["long_queries"] == 0 and own.status is Status.HEALTHY, own.summary
    finally:
        sleeper.cancel_safe()
        thread.join(timeout=10)
        sleeper.close()


@pytest.mark.postgres
def test_background_workers_count_only_when_asked(url: str, ctx: CheckContext) -> None:
    leader = admin(url)
    leader.execute("SET force_parallel_mode = on")  # the sleep runs in a parallel worker too
    thread = in_thread(leader, "SELECT pg_sleep(30)")
    try:
        with_workers = check(url, long_query_s=0.5, include_workers=True)
        both = run_until(with_workers, ctx, lambda r: r.observed.get("long_queries") == 2)
        assert both.observed["long_queries"] == 2, both.summary  # the client session and its worker
        clients = check(url, long_query_s=0.5).run(ctx)
        assert clients.observed["long_queries"] == 1, clients.summary
        assert f"longest pid {leader.info.backend_pid} " in clients.summary
    finally:
        leader.cancel_safe()
        thread.join(timeout=10)
        leader.close()


@pytest.mark.postgres
def test_invalid_index_is_named_until_dropped(url: str, ctx: CheckContext) -> None:
    with admin(url) as a:
        a.execute("CREATE TABLE twice (v int)")
        a.execute("INSERT INTO twice VALUES (1), (1)")
        with pytest.raises(psycopg.errors.UniqueViolation):
            a.execute("CREATE UNIQUE INDEX CONCURRENTLY twice_v_key ON twice (v)")  # leaves it invalid
        result = check(url).run(ctx)
        assert result.status is Status.WARNING, result.summary
        assert result.observed["invalid_indexes"] == 1
        assert "1 invalid index: public.twice_v_key" in result.summary
        assert "invalid_indexes 1 >= 1" in result.summary
        a.execute("DROP INDEX twice_v_key")
        a.execute("DROP TABLE twice")
    after = check(url).run(ctx)
    assert after.observed["invalid_indexes"] == 0 and "twice" not in after.summary


@pytest.mark.postgres
def test_unused_indexes_are_information_and_bloat_is_estimated(url: str, ctx: CheckContext) -> None:
    with admin(url) as a:
        a.execute("CREATE TABLE readings (id int PRIMARY KEY, sensor text, value float8, note text)")
        a.execute(
            "INSERT INTO readings SELECT i, 'sensor-' || (i % 50), random(), repeat('x', 60) "
            "FROM generate_series(1, 40000) i"
        )
        a.execute("CREATE INDEX readings_sensor_idx ON readings (sensor)")
        a.execute("VACUUM (ANALYZE) readings")
        packed = check(url, unused_min_bytes=0, bloat_min_bytes=1024**2).run(ctx)
        assert packed.status is Status.HEALTHY, packed.summary
        assert packed.observed["unused_indexes"] == 1 and packed.observed["unused_index_bytes"] > 0
        assert "1 unused index (no scans since stats began): public.readings_sensor_idx" in packed.summary
        assert "readings_pkey" not in packed.summary  # a primary key is used by every insert
        assert packed.observed["bloat_pct"] < 10, packed.summary  # freshly written: packed full

        # Only when asked is an unused index a warning; a size floor leaves small ones out.
        asked = check(url, {"unused_indexes": Threshold("unused_indexes", warning=1)}, unused_min_bytes=0)
        assert asked.run(ctx).status is Status.WARNING
        assert check(url, unused_min_bytes=1024**3).run(ctx).observed["unused_indexes"] == 0

        a.execute("DELETE FROM readings WHERE id % 4 <> 0")  # 3 rows in 4 gone from every page
        a.execute("VACUUM (ANALYZE) readings")  # frees the space, cannot give it back
        bloated = check(url, bloat_min_bytes=1024**2).run(ctx)
        assert bloated.status is Status.WARNING, bloated.summary
        assert 65 <= bloated.observed["bloat_pct"] <= 85, bloated.summary
        assert "bloat ~" in bloated.summary and "% of public.readings (~" in bloated.summary
        assert "bloat_pct" not in check(url, bloat_min_bytes=1024**3).run(ctx).observed  # too small: no estimate
        a.execute("DROP TABLE readings")


@pytest.mark.postgres
def test_a_role_without_pg_read_all_stats_is_told_what_it_cannot_see(url: str, ctx: CheckContext) -> None:
    role = f"pitstop_t_{uuid.uuid4().hex[:12]}"
    with admin(url) as a:
        a.execute(f'CREATE ROLE "{role}" LOGIN')
    as_role = url.replace("://postgres@", f"://{role}@").replace("://root@", f"://{role}@")
    with admin(url) as a:
        a.execute("CREATE TABLE guarded (id int)")
    holder, sleeper, waiter = psycopg.connect(url), admin(url), admin(url)
    holder.execute("LOCK TABLE guarded IN ACCESS EXCLUSIVE MODE")
    threads = [in_thread(sleeper, "SELECT pg_sleep(30)"), in_thread(waiter, "SELECT * FROM guarded")]
    try:
        limited = check(as_role, long_query_s=0.5, lock_wait_s=0)

        def seen(r: CheckResult) -> bool:
            return r.observed.get("hidden_sessions") == 3 and r.observed.get("lock_waits") == 1

        result = run_until(limited, ctx, seen)
        assert result.observed["long_queries"] == 0 and result.observed["hidden_sessions"] == 3, result.summary
        assert f"role {role} cannot see other roles' queries, 3 sessions hidden" in result.summary
        assert "(grant pg_monitor or pg_read_all_stats)" in result.summary
        # pg_locks is everyone's to read: the wait is counted, its query and the blocker's state not shown.
        blocked = f"longest pid {waiter.info.backend_pid} (postgres@{url.rsplit('/', 1)[1]})"
        assert result.observed["lock_waits"] == 1 and blocked in result.summary
        assert f"<insufficient privilege>, blocked by pid {holder.info.backend_pid} (postgres)" in result.summary
        holder.rollback()
        with admin(url) as a:
            a.execute(f'GRANT pg_monitor TO "{role}"')
        granted = run_until(limited, ctx, lambda r: r.observed.get("long_queries") == 1)
        assert granted.observed["long_queries"] == 1 and "SELECT pg_sleep(30)" in granted.summary
        assert "cannot see" not in granted.summary
    finally:
        for conn in (holder, sleeper, waiter):
            conn.cancel_safe()
        for thread in threads:
            thread.join(timeout=10)
        for conn in (holder, sleeper, waiter):
            conn.close()
        with admin(url) as a:
            a.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s", (role,))
            a.execute(f'DROP ROLE IF EXISTS "{role}"')


def test_unreachable_server_is_critical_without_the_password(ctx: CheckContext) -> None:
    c = PostgresActivityCheck("plant-db", params={"url": "postgresql://nobody:secret@127.0.0.1:1/none", "timeout_s": 2})
    result = c.run(ctx)
    assert result.status is Status.CRITICAL and result.observed == {"up": 0.0}
    assert result.summary.startswith("plant-db: not reachable (") and "secret" not in result.summary


@pytest.mark.postgres
def test_the_postgres_check_connects_through_the_same_helper(url: str, ctx: CheckContext) -> None:
    reachable = PostgresCheck("scratch", params={"url": url}).run(ctx)
    assert reachable.status is Status.HEALTHY and reachable.observed["up"] == 1, reachable.summary
    nowhere = "postgresql://nobody:secret@127.0.0.1:1/none"
    down = PostgresCheck("plant-db", params={"url": nowhere, "timeout_s": 2}).run(ctx)
    ours = PostgresActivityCheck("plant-db", params={"url": nowhere, "timeout_s": 2}).run(ctx)
    assert down.status is Status.CRITICAL and down.summary == ours.summary


def test_pitstops_own_sqlite_database_is_unknown_without_a_url(ctx: CheckContext) -> None:
    result = PostgresActivityCheck("pitstop").run(ctx)
    assert result.status is Status.UNKNOWN and "give params.url" in result.summary


@pytest.mark.parametrize(
    ("params", "named"),
    [
        ({"url": 5}, "url"),
        ({"url": ""}, "url"),
        ({"url": "mysql://u@h/db"}, "url"),
        ({"url": "not a url at all"}, "url"),
        ({"url": ["postgresql://h/db"]}, "url"),
        ({"url": "postgresql://h:port/db"}, "url"),
        ({"scope": "cluster"}, "scope"),
        ({"scope": None}, "scope"),
        ({"long_query_s": -1}, "long_query_s"),
        ({"long_query_s": "60"}, "long_query_s"),
        ({"long_query_s": True}, "long_query_s"),
        ({"long_query_s": float("nan")}, "long_query_s"),
        ({"long_query_s": float("inf")}, "long_query_s"),
        ({"lock_wait_s": 1e12}, "lock_wait_s"),
        ({"lock_wait_s": None}, "lock_wait_s"),
        ({"idle_in_transaction_s": -0.1}, "idle_in_transaction_s"),
        ({"unused_min_bytes": -1}, "unused_min_bytes"),
        ({"bloat_min_bytes": 2.0**60}, "bloat_min_bytes"),
        ({"include_workers": "yes"}, "include_workers"),
        ({"include_workers": 1}, "include_workers"),
        ({"timeout_s": 0}, "timeout_s"),
        ({"timeout_s": 61}, "timeout_s"),
        ({"timeout_s": False}, "timeout_s"),
        ({"no_such": 1}, "no_such"),
        ({"url; DROP DATABASE x": 1}, "url; DROP DATABASE x"),
    ],
)
def test_bad_parameters_are_refused_by_name(params: dict[str, Any], named: str) -> None:
    with pytest.raises(ValueError, match="postgres_activity check: ") as raised:
        PostgresActivityCheck("x", params=params)
    assert named in str(raised.value)


def test_registered_with_its_issue_and_defaults() -> None:
    cls = checks.get("postgres_activity")
    assert cls is PostgresActivityCheck and cls.issue == "database.activity"
    levels = {t.metric: (t.warning, t.critical) for t in cls.default_thresholds}
    assert levels["long_queries"] == (1, None) and levels["invalid_indexes"] == (1, None)
    assert "unused_indexes" not in levels  # informational unless a threshold is given
    c = PostgresActivityCheck("x")
    assert (c.long_query_s, c.lock_wait_s, c.idle_in_transaction_s, c.include_workers) == (60, 5, 300, False)


def test_query_text_is_one_short_line_without_a_password() -> None:
    assert one_line("SELECT  a,\n\tb\r\nFROM t") == "SELECT a, b FROM t"
    assert one_line("ALTER ROLE app PASSWORD 'hunter2''s' VALID UNTIL 'x'") == (
        "ALTER ROLE app PASSWORD '***' VALID UNTIL 'x'"
    )
    assert one_line("CREATE USER u WITH password secret") == "CREATE USER u WITH password '***'"
    long = one_line("SELECT " + "x, " * 100)
    assert len(long) == 80 and long.endswith("…")
    assert one_line("SELECT '\x1b[31m'") == "SELECT '?[31m'"
    assert one_line(None) == one_line("") == "(no query text)"
