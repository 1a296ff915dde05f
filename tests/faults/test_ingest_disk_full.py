"""Readings pushed while the data directory's disk is full: a clear 503, nothing half-written,
not ready until there is room again, and then nothing lost (a real full file system: a small tmpfs)."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from pitstop import inventory
from pitstop.api import create_app
from pitstop.app import build
from pitstop.config import Settings
from pitstop.core.types import Role
from pitstop.storage import Database
from pitstop.testing.clock import FrozenClock
from pitstop.testing.services import unavailable
from tests.conftest import DEMO_INVENTORY, auth


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 4 MiB tmpfs: filling it takes a moment, and the shared disk is never touched."""
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount)], capture_output=True)
    if done.returncode != 0:
        unavailable(f"cannot mount a tmpfs here (needs root): {done.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(path: Path) -> None:
    """Write zeros until the file system says it is full."""
    with path.open("wb") as fh:
        try:
            while True:
                fh.write(b"\0" * 65536)
                fh.flush()
                os.fsync(fh.fileno())
        except OSError:
            pass


def readings(first: int, n: int) -> bytes:
    return json.dumps(
        [{"ts": 1_767_500_000 + first + i, "asset": "ahu-1", "sensor": "UCAOT", "value": 20.0} for i in range(n)]
    ).encode()


def test_a_full_disk_answers_503_leaves_no_temp_files_and_loses_nothing(small_disk: Path) -> None:
    """Issue 15, item 7: with the data directory's disk full, pushes got 500 (unhandled ENOSPC in the
    spool), empty spool/*.tmp files stayed behind and /ready said ready."""
    db = Database(f"sqlite:///{small_disk / 'pitstop.db'}")
    db.upgrade()
    clock = FrozenClock()
    pitstop = build(Settings(data_dir=small_disk), clock=clock, db=db)
    inventory.apply(db, inventory.read_file(DEMO_INVENTORY), actor="test", now=clock.now())
    token = pitstop.keys.create("gateway", Role.OPERATOR, clock.now())[1]
    sensor = pitstop.assets.sensor_index()[("ahu-1", "UCAOT")].id
    headers = {**auth(token), "Content-Type": "application/json"}
    with TestClient(create_app(pitstop)) as client:
        assert client.post("/api/readings", content=readings(0, 100), headers=headers).json()["stored"] == 100
        assert client.get("/ready").status_code == 200
        filler = small_disk / "filler"
        fill(filler)
        refused = 0
        for attempt in range(5):  # large pushes until the database's free pages are used up too
            response = client.post("/api/readings", content=readings(1000 + attempt * 20_000, 20_000), headers=headers)
            assert response.status_code in (200, 503), response.text
            if response.status_code == 503:
                refused = attempt
                break
        else:
            pytest.fail("the full disk never refused a push")
        body = response.json()
        assert body["error"]["code"] == "ingest.spool_full"
        assert "No space left on device" in body["error"]["message"]
        assert not list((small_disk / "spool").glob("*.tmp"))
        ready = client.get("/ready")
        assert ready.status_code == 503 and ready.json()["checks"]["ingest"].startswith("refusing readings")
        filler.unlink()
        clock.advance(2.0)  # the next probe of the spool, and the next try of the database
        assert client.get("/ready").status_code == 200
        again = client.post("/api/readings", content=readings(1000 + refused * 20_000, 20_000), headers=headers)
        assert again.status_code == 200, again.text
        pitstop.ingest.flush_spool()
    stored_before = 100 + refused * 20_000  # every push that was answered 200 (stored or spooled)
    assert pitstop.readings.count(sensor) == stored_before + 20_000
    pitstop.close()
