"""The real services tests run against, with a skip (or, in CI, a failure) when one is absent.

PITSTOP_REQUIRE_SERVICES=1 turns "service absent" from a skip into a failure, so CI cannot
pass by skipping the PostgreSQL and MQTT tests.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

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
