"""AssetRepo.get_asset reads one row by name, not the whole inventory: the alert service labels every
incident transition with it, so its cost must not grow with the number of assets (bench/alerts.py
measured 90 transitions/s at 1,000 assets when it listed them all)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import event

from pitstop import inventory
from pitstop.storage import Database
from pitstop.storage.repos.assets import AssetRepo
from pitstop.testing.clock import FrozenClock

PLANT = """
[[sites]]
name = "north"

[[assets]]
name = "line-1"
site = "north"
type = "line"

[[assets]]
name = "pump-1"
site = "north"
type = "pump"
parent = "line-1"
criticality = 4
"""


def test_get_asset_is_one_row_by_name(db: Database, clock: FrozenClock) -> None:
    inventory.apply(db, inventory.parse(PLANT, "plant.toml", "toml"), actor="t", now=clock.now())
    repo = AssetRepo(db)
    selects: list[str] = []

    def seen(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            selects.append(" ".join(statement.split()))

    listed = {a.name: a for a in repo.list_assets()}
    event.listen(db.engine, "after_cursor_execute", seen)
    try:
        pump = repo.get_asset("pump-1")
    finally:
        event.remove(db.engine, "after_cursor_execute", seen)
    assert pump == listed["pump-1"]
    assert (pump.site, pump.parent, pump.criticality) == ("north", "line-1", 4)
    assert repo.get_asset("line-1") == listed["line-1"]
    assert repo.get_asset("pump-2") is None
    assert repo.get_asset("PUMP-1") is None  # names are case-sensitive, as before
    assert repo.get_asset("pump-1\x00") is None  # PostgreSQL refuses NUL: no such asset, no error
    assert len(selects) == 1
    assert "WHERE assets.name = " in selects[0]
