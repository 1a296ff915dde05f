"""The demo prints the same keys at each start (kept in its data folder, readable by the user
alone); a key that no longer works is replaced and the demo keys before it are revoked."""

from __future__ import annotations

import stat

from pitstop.app import Pitstop
from pitstop.demo import KEYS_FILE, prepare


def test_a_restarted_demo_prints_the_same_keys(pitstop: Pitstop) -> None:
    first_viewer, first_operator = prepare(pitstop)
    assert pitstop.keys.authenticate(first_viewer) is not None
    assert prepare(pitstop) == (first_viewer, first_operator)  # a browser logged in stays logged in
    path = pitstop.settings.data_dir / KEYS_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    active = [k.name for k in pitstop.keys.list() if k.revoked_at is None]
    assert sorted(active) == ["demo-operator", "demo-viewer"]


def test_a_revoked_or_lost_key_is_replaced_and_the_earlier_ones_revoked(pitstop: Pitstop) -> None:
    viewer, operator = prepare(pitstop)
    key = pitstop.keys.authenticate(viewer)
    assert key is not None
    pitstop.keys.revoke(key.prefix, pitstop.clock.now())
    new_viewer, same_operator = prepare(pitstop)
    assert new_viewer != viewer and same_operator == operator
    assert pitstop.keys.authenticate(new_viewer) is not None
    (pitstop.settings.data_dir / KEYS_FILE).write_text("{damaged")  # a damaged file: new keys for both
    third_viewer, third_operator = prepare(pitstop)
    assert third_operator != operator and pitstop.keys.authenticate(operator) is None
    assert pitstop.keys.authenticate(new_viewer) is None and pitstop.keys.authenticate(third_viewer) is not None
    active = [k.name for k in pitstop.keys.list() if k.revoked_at is None]
    assert sorted(active) == ["demo-operator", "demo-viewer"]
