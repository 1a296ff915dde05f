"""Self-healing: actions planned without side effects, guarded, applied, verified, recorded."""

import pitstop.remediation.actions  # noqa: F401 - registers the built-in actions
from pitstop.remediation.base import Action, ActionContext, Outcome, Plan, actions
from pitstop.remediation.engine import Preview, RemediationEngine
from pitstop.remediation.hooks import check_verifier, escalator, maintenance_logger, own_links
from pitstop.remediation.rules import RemediationRule
from pitstop.remediation.store import Remediation, RemediationStore

__all__ = [
    "Action",
    "ActionContext",
    "Outcome",
    "Plan",
    "Preview",
    "Remediation",
    "RemediationEngine",
    "RemediationRule",
    "RemediationStore",
    "actions",
    "check_verifier",
    "escalator",
    "maintenance_logger",
    "own_links",
]
