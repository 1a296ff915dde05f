"""The demo prints fresh keys at each start and revokes the ones it printed before."""

from __future__ import annotations

from pitstop.app import Pitstop
from pitstop.demo import prepare


def test_a_restarted_demo_revokes_its_earlier_keys(pitstop: Pitstop) -> None:
    first_viewer, first_operator = prepare(pitstop)
    assert pitstop.keys.authenticate(first_viewer) is not None
    second_viewer, second_operator = prepare(pitstop)
    assert pitstop.keys.authenticate(first_viewer) is None
    assert pitstop.keys.authenticate(first_operator) is None
    assert pitstop.keys.authenticate(second_viewer) is not None
    assert pitstop.keys.authenticate(second_operator) is not None
    active = [k.name for k in pitstop.keys.list() if k.revoked_at is None]
    assert sorted(active) == ["demo-operator", "demo-viewer"]
