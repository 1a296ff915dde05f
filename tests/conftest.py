from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from pitstop import inventory
from pitstop.api import create_app
from pitstop.app import Pitstop, build
from pitstop.config import Settings
from pitstop.core.types import Role
from pitstop.storage import Database
from pitstop.storage.schema import metadata
from pitstop.testing.clock import FrozenClock
from pitstop.testing.services import scratch_postgres_database

ROOT = Path(__file__).resolve().parents[1]
DEMO_INVENTORY = ROOT / "src" / "pitstop" / "data" / "demo-inventory.toml"


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    with scratch_postgres_database() as url:
        yield url


def _empty_postgres(db: Database) -> None:
    names = ", ".join(t.name for t in metadata.sorted_tables)
    with db.begin() as conn:
        conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    """An upgraded, empty database: a fresh SQLite file, or the session's PostgreSQL database emptied."""
    if request.param == "sqlite":
        database = Database(f"sqlite:///{tmp_path / 'pitstop.db'}")
        database.upgrade()
        yield database
    else:
        database = Database(request.getfixturevalue("pg_url"))
        database.upgrade()
        _empty_postgres(database)
        yield database
    database.dispose()


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock()


@pytest.fixture
def pitstop(db: Database, clock: FrozenClock, tmp_path: Path) -> Pitstop:
    return build(Settings(data_dir=tmp_path), clock=clock, db=db)


@pytest.fixture
def demo_pitstop(pitstop: Pitstop) -> Pitstop:
    inventory.apply(pitstop.db, inventory.read_file(DEMO_INVENTORY), actor="test", now=pitstop.clock.now())
    return pitstop


@pytest.fixture
def keys(pitstop: Pitstop) -> dict[Role, str]:
    return {role: pitstop.keys.create(f"test-{role.value}", role, pitstop.clock.now())[1] for role in Role}


@pytest.fixture
def client(demo_pitstop: Pitstop) -> Iterator[TestClient]:
    with TestClient(create_app(demo_pitstop)) as c:
        yield c


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
