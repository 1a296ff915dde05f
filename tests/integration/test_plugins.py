"""Extensions from installed packages (issue 17, item 5): a package that declares a check in the
`pitstop.checks` entry-point group is registered beside the built-ins with no configuration, keeps
the same contract, and runs in a health round; a plugin that fails to import is left out, logged.
A notifier from `pitstop.notifiers` is a channel (`type = "plugin"`) that incidents reach."""

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

NOTIFIER = textwrap.dedent(
    '''
    import json
    from pathlib import Path

    from pitstop.alerts.base import Delivery


    class PagerNotifier:
        """The site's pager gateway (a file stands in for it here)."""

        kind = "acme_pager"

        def __init__(self, name, params):
            self.name = name
            self.outbox = Path(params["outbox"])
            self.token = params["token"]

        def send(self, alert):
            with self.outbox.open("a") as f:
                f.write(json.dumps({"token": self.token, **alert.as_dict()}) + "\\n")
            return Delivery(self.name, True)
    '''
)


def install(site: Path, entry_points: str) -> None:
    """A package and its dist-info on a path entry, as pip would leave them."""
    (site / "acme_pitstop").mkdir(parents=True)
    (site / "acme_pitstop" / "__init__.py").write_text("")
    (site / "acme_pitstop" / "ups.py").write_text(PLUGIN)
    (site / "acme_pitstop" / "pager.py").write_text(NOTIFIER)
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


def test_a_notifier_from_an_installed_package_is_a_channel_incidents_reach(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import json

    from pitstop.alerts.base import Alert, AlertItem
    from pitstop.alerts.notifiers import plugins
    from pitstop.core.types import Severity
    from pitstop.errors import ConfigError
    from pitstop.testing.health import check_notifier

    site = tmp_path / "site"
    install(site, "[pitstop.notifiers]\nacme_pager = acme_pitstop.pager:PagerNotifier\n")
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setattr(plugins, "_plugins_read", False)
    outbox = tmp_path / "outbox.jsonl"
    channel = {
        "type": "plugin",
        "notifier": "acme_pager",
        "params": {"outbox": str(outbox)},
        "secrets": {"token": "s3"},
    }
    settings = Settings(
        data_dir=tmp_path,
        health={
            "default_checks": False,
            "alerts": {"channels": {"pager": channel}, "routes": [{"channels": ["pager"]}]},
        },
    )
    db = Database(f"sqlite:///{tmp_path / 'pitstop.db'}")
    db.upgrade()
    pitstop = build(settings, clock=FrozenClock(), db=db)
    notifier = pitstop.alerts.router.notifiers["pager"]
    item = AlertItem("x.y:z", "firing", Severity.WARNING, "contract", pitstop.clock.now())
    assert check_notifier(notifier, Alert({}, (item,))).ok
    pitstop.incidents.open_or_update(
        "asset.anomaly:ahu-9", severity=Severity.CRITICAL, title="ahu-9", source="monitoring"
    )
    pitstop.feed.deliver()
    sent = [json.loads(line) for line in outbox.read_text().splitlines()]
    assert [(m["token"], m["alerts"][0]["key"]) for m in sent] == [("s3", "x.y:z"), ("s3", "asset.anomaly:ahu-9")]
    pitstop.close()
    with pytest.raises(ConfigError, match="unknown notifier 'acme_fax'"):
        build(
            Settings(data_dir=tmp_path, health={"alerts": {"channels": {"fax": {**channel, "notifier": "acme_fax"}}}}),
            db=db,
        )
