"""Contract suites for health checks and notifiers, for pitstop's own and for plugins."""

from __future__ import annotations

import re
from typing import Any

from pitstop.alerts.base import Alert, Delivery, Notifier
from pitstop.core.types import Status
from pitstop.health.base import Check, CheckContext, CheckResult

ISSUE = re.compile(r"^[a-z][a-z0-9_-]*\.[a-z][a-z0-9_.-]*$")


def check_check_class(cls: type[Check], *, sample_target: str = "x", **params: Any) -> None:
    """What every Check class promises, without touching anything outside."""
    assert getattr(cls, "name", ""), f"{cls.__qualname__} has no name"
    assert ISSUE.match(cls.issue), f"{cls.name}: issue {cls.issue!r} is not <area>.<condition>"
    for t in cls.default_thresholds:
        assert t.warning is not None or t.critical is not None
    try:
        cls(sample_target, params={"no_such_parameter_": 1, **params})
    except ValueError:
        pass
    else:
        raise AssertionError(f"{cls.name}: an unknown parameter must be refused with ValueError")


def check_check_result(check: Check, ctx: CheckContext) -> CheckResult:
    """Run a check once and hold its result to the contract; returns it."""
    result = check.run(ctx)
    assert isinstance(result, CheckResult)
    assert result.check == check.name and result.target == check.target
    assert isinstance(result.status, Status) and result.summary.strip()
    assert result.issue_key is None or ISSUE.match(result.issue_key)
    assert all(isinstance(v, float | int) for v in result.observed.values())
    assert result.checked_at.tzinfo is not None
    return result


def check_notifier(notifier: Notifier, alert: Alert) -> Delivery:
    """Send once; a notifier returns a Delivery named after itself and does not raise."""
    delivery = notifier.send(alert)
    assert isinstance(delivery, Delivery) and delivery.channel == notifier.name
    assert delivery.ok or delivery.error
    return delivery
