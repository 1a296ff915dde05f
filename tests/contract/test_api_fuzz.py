"""Every operation of the OpenAPI spec, fed generated (and hostile) input, never answers 5xx."""

from __future__ import annotations

from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

from pitstop import inventory
from pitstop.api import create_app
from pitstop.app import build
from pitstop.config import Settings
from pitstop.core.types import Role
from pitstop.storage import Database
from pitstop.testing.clock import FrozenClock
from tests.conftest import DEMO_INVENTORY


@pytest.fixture
def api(tmp_path: Path) -> tuple[schemathesis.schemas.BaseSchema, dict[str, str]]:
    db = Database(f"sqlite:///{tmp_path / 'fuzz.db'}")
    db.upgrade()
    pitstop = build(Settings(data_dir=tmp_path), clock=FrozenClock(), db=db)
    inventory.apply(db, inventory.read_file(DEMO_INVENTORY), actor="test", now=pitstop.clock.now())
    _, token = pitstop.keys.create("fuzz", Role.ADMIN, pitstop.clock.now())
    return schemathesis.openapi.from_asgi("/openapi.json", create_app(pitstop)), {"Authorization": f"Bearer {token}"}


def test_no_operation_answers_5xx(api: tuple[schemathesis.schemas.BaseSchema, dict[str, str]]) -> None:
    schema, headers = api
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 8
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def call(case: schemathesis.Case) -> None:
            response = case.call(headers=headers)
            assert response.status_code < 500, f"{case.operation.label}: {response.status_code} {response.text[:300]}"

        call()
