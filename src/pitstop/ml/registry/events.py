"""Asset events that concern models: an equipment change (a new coil, valve, fan, a replaced sensor).

An event is a row of `asset_events` and a maintenance-log entry of the asset, written together. An
``equipment_changed`` event is a retraining trigger (``equipment_changed: <note>``) of every model
whose inputs come from the asset (the models of its asset type), acted on by the lifecycle job
(`ModelWatch`); the asset's readings from before the change are left out of that training.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select

from pitstop.core.clock import Clock
from pitstop.errors import InvalidInput, NotFound
from pitstop.storage.engine import Database
from pitstop.storage.schema import asset_events
from pitstop.storage.schema import assets as asset_table

EQUIPMENT_CHANGED = "equipment_changed"
KINDS = (EQUIPMENT_CHANGED,)
MAX_NOTE = 2000


@dataclass(frozen=True, slots=True)
class AssetEvent:
    id: int
    at: datetime
    asset: str
    kind: str
    note: str
    actor: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "at": self.at.isoformat(),
            "asset": self.asset,
            "kind": self.kind,
            "note": self.note,
            "actor": self.actor,
        }


def kind_of(given: str) -> str:
    """The event kind for a name as typed (``equipment-changed`` or ``equipment_changed``)."""
    kind = given.strip().lower().replace("-", "_")
    if kind not in KINDS:
        raise InvalidInput(
            f"event kind {given[:60]!r}: known kinds are {', '.join(k.replace('_', '-') for k in KINDS)}"
        )
    return kind


class AssetEvents:
    def __init__(self, db: Database, clock: Clock) -> None:
        self.db = db
        self.clock = clock
        self.listeners: list[Callable[[AssetEvent], None]] = []  # told after the commit (the maintenance log)

    def record(self, asset: str, kind: str, note: str, *, actor: str) -> AssetEvent:
        """Record an event of an existing asset; the listeners (the maintenance log) are told."""
        kind = kind_of(kind)
        note = note.strip()
        if not note:
            raise InvalidInput("an asset event needs a note: what changed")
        if len(note) > MAX_NOTE or any(ord(c) < 32 and c not in "\t\n" for c in note):
            raise InvalidInput(f"the note must be at most {MAX_NOTE} printable characters")
        if not actor or len(actor) > 200:
            raise InvalidInput("the actor must be 1 to 200 characters")
        now = self.clock.now()
        with self.db.begin() as conn:
            if (
                "\x00" in asset
                or conn.execute(select(asset_table.c.id).where(asset_table.c.name == asset)).first() is None
            ):
                raise NotFound(f"no asset named {asset[:200]!r}")
            key = conn.execute(
                insert(asset_events).values(at=now, asset=asset, kind=kind, note=note, actor=actor)
            ).inserted_primary_key
            assert key is not None
        event = AssetEvent(int(key[0]), now, asset, kind, note, actor)
        for listener in self.listeners:
            listener(event)
        return event

    def find(
        self, *, assets: Sequence[str] | None = None, kind: str | None = None, since: datetime | None = None
    ) -> list[AssetEvent]:
        """Events oldest first, of the given assets, kind, from ``since`` on."""
        query = select(asset_events).order_by(asset_events.c.at, asset_events.c.id)
        if assets is not None:
            query = query.where(asset_events.c.asset.in_(list(assets)))
        if kind is not None:
            query = query.where(asset_events.c.kind == kind_of(kind))
        if since is not None:
            query = query.where(asset_events.c.at >= since)
        with self.db.connect() as conn:
            return [AssetEvent(r.id, r.at, r.asset, r.kind, r.note, r.actor) for r in conn.execute(query)]
