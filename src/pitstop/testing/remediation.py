"""Contract suite for remediation actions, for pitstop's own and for plugins.

`check_action` plans twice (same plan, nothing changed: `snapshot` of the world before and after
must be equal), round-trips the plan through JSON, applies it twice (the second apply leaves
the world as the first did) and holds every Outcome to its shape.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pitstop.incidents import Incident
from pitstop.remediation.base import Action, ActionContext, Outcome, Plan, actions


def check_action_class(cls: type[Action], **params: Any) -> None:
    """Registered by name, refuses an unknown parameter with ValueError."""
    assert getattr(cls, "name", ""), f"{cls.__qualname__} has no name"
    assert actions.get(cls.name) is cls, f"{cls.name} is not registered"
    try:
        cls(**{"no_such_parameter_": 1, **params})
    except ValueError:
        pass
    else:
        raise AssertionError(f"{cls.name}: an unknown parameter must be refused with ValueError")


def check_action(
    action: Action, incident: Incident, ctx: ActionContext, *, snapshot: Callable[[], object] = lambda: None
) -> tuple[Plan, Outcome]:
    """Hold one configured action to the contract against a real sandbox; returns (plan, first outcome)."""
    before = snapshot()
    plan = action.plan(incident, ctx)
    assert snapshot() == before, f"{action.name}: plan() changed something"
    assert action.plan(incident, ctx) == plan, f"{action.name}: plan() is not deterministic"
    assert plan.action == action.name and plan.target == incident.target
    assert plan.steps and all(isinstance(s, str) and s.strip() for s in plan.steps)
    assert Plan.from_dict(json.loads(plan.to_json())) == plan, f"{action.name}: the plan does not round-trip JSON"
    first = _outcome(action, action.apply(plan, ctx), plan)
    after_first = snapshot()
    _outcome(action, action.apply(plan, ctx), plan)
    assert snapshot() == after_first, f"{action.name}: applying twice did more than applying once"
    back = action.rollback(plan, first, ctx)
    assert back is None or isinstance(back, Outcome)
    seen = action.verify(plan, ctx)
    assert seen is None or (isinstance(seen[0], bool) and isinstance(seen[1], str))
    return plan, first


def _outcome(action: Action, outcome: Outcome, plan: Plan) -> Outcome:
    assert isinstance(outcome, Outcome) and outcome.plan == plan
    assert outcome.detail.strip(), f"{action.name}: an outcome says what happened"
    assert outcome.started_at.tzinfo is not None and outcome.finished_at >= outcome.started_at
    json.dumps(outcome.as_dict(), default=str)
    return outcome


def tree(root: Path) -> dict[str, tuple[int, str]]:
    """A snapshot of a directory tree: relative path -> (size, content hash); symlinks by target."""
    out: dict[str, tuple[int, str]] = {}
    for dirpath, _dirs, files in os.walk(root, followlinks=False):
        for name in files:
            path = Path(dirpath) / name
            rel = path.relative_to(root).as_posix()
            if path.is_symlink():
                out[rel] = (-1, str(path.readlink()))
            else:
                data = path.read_bytes()
                out[rel] = (len(data), hashlib.sha256(data).hexdigest())
    return out
