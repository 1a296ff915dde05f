"""The Database: an engine over SQLite or PostgreSQL, transactions, and the schema version."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.pool import NullPool

from pitstop.errors import DatabaseUnavailable, SchemaOutdated

MIGRATIONS = Path(__file__).parent / "migrations"


def normalize_url(url: str) -> URL:
    """Accept plain postgresql:// URLs and use psycopg 3 for them."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


class Database:
    """One database, SQLite (embedded default) or PostgreSQL (production).

    Reads use `connect()`, writes use `begin()`. On SQLite there is a single writer: writes in
    this process are serialized by a lock and take the file's write lock up front
    (BEGIN IMMEDIATE) so that two processes never deadlock upgrading a read lock.
    """

    def __init__(self, url: str, *, pool_size: int = 5, sqlite_cache_mb: int = 64) -> None:
        self.url = normalize_url(url)
        self.dialect = self.url.get_backend_name()
        self._write_lock = threading.RLock()
        if self.dialect == "sqlite":
            self.engine = self._sqlite_engine(sqlite_cache_mb)
        elif self.dialect == "postgresql":
            self.engine = create_engine(
                self.url,
                pool_size=pool_size,
                pool_pre_ping=True,
                connect_args={"connect_timeout": 5, "application_name": "pitstop"},
            )
        else:
            raise DatabaseUnavailable(f"unsupported database {self.dialect!r}: use sqlite or postgresql")

    def _sqlite_engine(self, cache_mb: int) -> Engine:
        database = self.url.database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            self.url,
            connect_args={"timeout": 30, "check_same_thread": False},
            poolclass=NullPool if database in (None, "", ":memory:") else None,
        )

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_conn: Any, _record: Any) -> None:
            dbapi_conn.isolation_level = None  # pitstop emits BEGIN itself, below
            cur = dbapi_conn.cursor()
            for pragma in (
                "journal_mode=WAL",
                "synchronous=NORMAL",
                "foreign_keys=ON",
                "busy_timeout=30000",
                f"cache_size=-{cache_mb * 1024}",
                "temp_store=MEMORY",
            ):
                cur.execute(f"PRAGMA {pragma}")
            cur.close()

        @event.listens_for(engine, "begin")
        def _on_begin(conn: Connection) -> None:
            write = conn.get_execution_options().get("pitstop_write", False)
            conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

        return engine

    @property
    def display_url(self) -> str:
        return self.url.render_as_string(hide_password=True)

    @contextmanager
    def connect(self) -> Iterator[Connection]:
        """A connection for reads (and explicit transactions)."""
        try:
            conn = self.engine.connect()
        except (OperationalError, DBAPIError) as exc:
            raise DatabaseUnavailable(f"database {self.display_url} is not reachable: {_first_line(exc)}") from exc
        with conn:
            yield conn

    @contextmanager
    def begin(self) -> Iterator[Connection]:
        """A write transaction: committed when the block ends, rolled back if it raises."""
        with self._write_lock, self.connect() as conn:
            conn = conn.execution_options(pitstop_write=True)
            with conn.begin():
                yield conn

    def ping(self) -> None:
        with self.connect() as conn:
            conn.execute(text("SELECT 1"))

    # -- schema version -------------------------------------------------------------------

    def _alembic_config(self, conn: Connection) -> Config:
        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS))
        cfg.attributes["connection"] = conn
        return cfg

    def head_revisions(self) -> set[str]:
        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS))
        return set(ScriptDirectory.from_config(cfg).get_heads())

    def current_revisions(self) -> set[str]:
        with self.connect() as conn:
            return set(MigrationContext.configure(conn).get_current_heads())

    def is_current(self) -> bool:
        return self.current_revisions() == self.head_revisions()

    def ensure_current(self) -> None:
        current, head = self.current_revisions(), self.head_revisions()
        if current != head:
            have = ", ".join(sorted(current)) or "empty"
            raise SchemaOutdated(
                f"database {self.display_url} is at schema {have}, this pitstop needs "
                f"{', '.join(sorted(head))}: run `pitstop db upgrade`"
            )

    def upgrade(self, revision: str = "heads") -> None:
        with self._write_lock, self.connect() as conn:
            command.upgrade(self._alembic_config(conn), revision)
            conn.commit()

    def dispose(self) -> None:
        self.engine.dispose()


def _first_line(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None) or exc
    return str(orig).strip().splitlines()[0] if str(orig).strip() else type(orig).__name__
