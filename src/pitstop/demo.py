"""The demo installation: a small site loaded into the embedded database."""

from __future__ import annotations

from importlib.resources import files

from pitstop import inventory
from pitstop.app import Pitstop
from pitstop.core.types import Role


def prepare(pitstop: Pitstop) -> tuple[str, str]:
    """Upgrade the schema, load the demo inventory, and create a viewer and an operator key."""
    pitstop.db.upgrade()
    text = (files("pitstop") / "data" / "demo-inventory.toml").read_text(encoding="utf-8")
    spec = inventory.parse(text, "demo-inventory.toml", "toml")
    inventory.apply(pitstop.db, spec, actor="demo", now=pitstop.clock.now())
    now = pitstop.clock.now()
    _, viewer = pitstop.keys.create("demo-viewer", Role.VIEWER, now)
    _, operator = pitstop.keys.create("demo-operator", Role.OPERATOR, now)
    return viewer, operator


def simulate(pitstop: Pitstop) -> int:
    """Run the fleet simulator into the database: a few days of history on first start (or the gap
    since the last run), then new readings every few seconds. Returns how many readings were added."""
    from pitstop.sim.live import attach

    _, stored = attach(pitstop)
    return stored
