from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pitstop import inventory
from pitstop.errors import InventoryError

GOOD = """\
[[sites]]
name = "plant"

[[assets]]
name = "ahu-1"
site = "plant"
type = "hvac"
criticality = 4
sensors = [{ name = "UCAOT", unit = "degC", min = -10, max = 60, period_s = 60 }]

[[assets]]
name = "fan-1"
site = "plant"
parent = "ahu-1"
type = "fan"
"""


def test_parses_sites_assets_sensors() -> None:
    spec = inventory.parse(GOOD, "inv.toml", "toml")
    assert [a.name for a in spec.assets] == ["ahu-1", "fan-1"]
    assert spec.assets[0].sensors[0].max == 60
    assert spec.assets[1].criticality == 3  # default


def test_repeated_asset_name_gives_the_line_of_the_repeat() -> None:
    text = GOOD + '\n[[assets]]\nname = "fan-1"\nsite = "plant"\ntype = "fan"\n'
    with pytest.raises(InventoryError, match=r"inv.toml: line 18: asset 'fan-1' is named twice"):
        inventory.parse(text, "inv.toml", "toml")


def test_bad_field_gives_the_line_of_its_entry() -> None:
    text = GOOD.replace("criticality = 4", "criticality = 9")
    with pytest.raises(InventoryError, match=r"line 5: assets.0.criticality"):
        inventory.parse(text, "inv.toml", "toml")


def test_sensor_range_must_be_ordered() -> None:
    text = GOOD.replace("min = -10, max = 60", "min = 60, max = -10")
    with pytest.raises(InventoryError, match="must be below max"):
        inventory.parse(text, "inv.toml", "toml")


def test_yaml_inventory_and_its_errors() -> None:
    text = (
        "sites:\n  - name: plant\nassets:\n"
        "  - name: p1\n    site: plant\n    type: pump\n"
        "  - name: p1\n    site: plant\n    type: pump\n"
    )
    with pytest.raises(InventoryError, match="line 7: asset 'p1' is named twice"):
        inventory.parse(text, "inv.yaml", "yaml")
    spec = inventory.parse(text.rsplit("  - name: p1", 1)[0], "inv.yaml", "yaml")
    assert spec.assets[0].type == "pump"


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=400))
def test_any_text_is_parsed_or_refused_clearly(text: str) -> None:
    for fmt in ("toml", "yaml"):
        try:
            inventory.parse(text, "fuzz", fmt)
        except InventoryError as exc:
            assert str(exc).startswith("fuzz")
