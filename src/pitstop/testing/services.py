"""The real services tests run against, with a skip (or, in CI, a failure) when one is absent.

PITSTOP_REQUIRE_SERVICES=1 turns "service absent" from a skip into a failure, so CI cannot
pass by skipping the PostgreSQL and MQTT tests.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

PG_ADMIN_URLS = ("postgresql://postgres@127.0.0.1:5432/test", "postgresql://root@127.0.0.1:5432/test")
MQTT_HOST, MQTT_PORT = "127.0.0.1", 1883


def services_required() -> bool:
    return os.environ.get("PITSTOP_REQUIRE_SERVICES", "") not in ("", "0")


def unavailable(reason: str) -> None:
    """Skip the current test, or fail it when services are required."""
    import pytest

    if services_required():
        pytest.fail(f"{reason} (PITSTOP_REQUIRE_SERVICES=1)")
    pytest.skip(reason)


def port_open(host: str, port: int, timeout: float = 1.0) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def _admin_url() -> str | None:
    import psycopg

    for url in PG_ADMIN_URLS:
        try:
            with psycopg.connect(url, connect_timeout=3):
                return url
        except psycopg.Error:
            continue
    return None


@contextmanager
def scratch_postgres_database() -> Iterator[str]:
    """A new, empty database on the shared server, dropped afterwards; yields its URL."""
    import psycopg

    admin = _admin_url()
    if admin is None:
        unavailable("PostgreSQL is not reachable at 127.0.0.1:5432 (database test, trust auth)")
        raise AssertionError("unreachable")
    name = f"pitstop_t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield admin.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


PG_BIN = Path("/usr/lib/postgresql/15/bin")


class PostgresCluster:
    """A PostgreSQL 15 cluster of a test's or bench's own (initdb in `root`, a free port), for what must
    stop or restart the database; run as the postgres user when the caller is root."""

    def __init__(self, root: Path) -> None:
        from pitstop.testing.server import free_port

        self.dir = root / "pgdata"
        self.port = free_port()
        self.as_postgres = os.geteuid() == 0

    def run(self, *args: str) -> None:
        cmd = ["runuser", "-u", "postgres", "--", *args] if self.as_postgres else list(args)
        subprocess.run(cmd, check=True, capture_output=True, timeout=120)

    def init(self) -> None:
        self.dir.mkdir()
        if self.as_postgres:
            shutil.chown(self.dir, "postgres")
            shutil.chown(self.dir.parent, "postgres")
        self.run(str(PG_BIN / "initdb"), "-D", str(self.dir), "-A", "trust", "-U", "postgres", "--no-sync")

    def pg_ctl(self, *args: str) -> None:
        """`start`, `stop -m fast`, `restart`, ...: waits until done."""
        options = f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off"
        self.run(str(PG_BIN / "pg_ctl"), "-D", str(self.dir), "-o", options, "-l", str(self.dir / "log"), "-w", *args)

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
