"""rollback_model lives with the other built-in actions (pitstop.remediation.actions.models)."""

from pitstop.remediation.actions.models import RollbackModel

__all__ = ["RollbackModel"]
