"""Extensions from installed packages (issue 17, item 5): a package that declares a check in the
`pitstop.checks` entry-point group is registered beside the built-ins with no configuration, keeps
the same contract, and runs in a health round; a plugin that fails to import is left out, logged."""

from __future__ import annotations

import logging
import textwrap
from pathlib import Path

import pytest

from pitstop.app import build
from pitstop.config import Settings
from pitstop.core.registry import Registry
from pitstop.health.base import Check
from pitstop.health.checks import BUILTIN
from pitstop.storage import Database
from pitstop.testing.clock import FrozenClock
from pitstop.testing.health import check_check_class, check_check_result

PLUGIN = textwrap.dedent(
    '''
    from pathlib import Path

    from pitstop.health.base import Check
    from pitstop.core.types import Status


    class UpsCheck(Check):
        """A site's UPS: on mains or on battery (a file stands in for the UPS's status here)."""

        name = "acme_ups"
        issue = "power.on_battery"

        def run(self, ctx):
            on_battery = Path(self.target).read_text().strip() == "battery"
            status = Status.CRITICAL if on_battery else Status.HEALTHY
            return self.result(ctx, status, "on battery" if on_battery else "on mains")
    '''
)


def install(site: Path, entry_points: str) -> None:
    """A package and its dist-info on a path entry, as pip would leave them."""
    (site / "acme_pitstop").mkdir(parents=True)
    (site / "acme_pitstop" / "__init__.py").write_text("")
    (site / "acme_pitstop" / "ups.py").write_text(PLUGIN)
    info = site / "acme_pitstop-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: acme-pitstop\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(entry_points)


def test_a_check_from_an_installed_package_is_registered_checked_and_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    site = tmp_path / "site"
    install(
        site,
        "[pitstop.checks]\nacme_ups = acme_pitstop.ups:UpsCheck\nbroken = acme_pitstop.missing:Nothing\n",
    )
    monkeypatch.syspath_prepend(str(site))
    registry: Registry[Check] = Registry("check", "pitstop.checks")
    for cls in BUILTIN:
        registry.add(cls)
    with caplog.at_level(logging.ERROR, logger="pitstop.plugins"):
        names = registry.names()
    assert set(names) == {cls.name for cls in BUILTIN} | {"acme_ups"}  # the broken one left out
    assert "broken" in caplog.text and "acme_pitstop.missing:Nothing" in caplog.text
    ups = registry.get("acme_ups")
    check_check_class(ups, sample_target=str(tmp_path / "ups"))

    # and through the product's own registry, in a health round, as `[[health.checks]]` names it
    import pitstop.health.base as base

    monkeypatch.setattr(base.checks, "_plugins_read", False)
    status = tmp_path / "ups"
    status.write_text("battery")
    settings = Settings(
        data_dir=tmp_path, health={"default_checks": False, "checks": [{"check": "acme_ups", "target": str(status)}]}
    )
    db = Database(f"sqlite:///{tmp_path / 'pitstop.db'}")
    db.upgrade()
    pitstop = build(settings, clock=FrozenClock(), db=db)
    (result,) = pitstop.health.run_round().results
    check_check_result(base.checks.get("acme_ups")(str(status)), pitstop.health.context)
    assert (result.check, result.status.value, result.summary) == ("acme_ups", "critical", "on battery")
    assert pitstop.incidents.active(f"power.on_battery:{status}") is not None
    pitstop.close()
