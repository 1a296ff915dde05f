"""The built-in actions, registered on import."""

from pitstop.remediation.actions.database import VacuumDatabase
from pitstop.remediation.actions.disk import FreeDisk, RotateLogs
from pitstop.remediation.actions.links import Reconnect
from pitstop.remediation.actions.models import RollbackModel
from pitstop.remediation.actions.serial import ResetSerial
from pitstop.remediation.actions.service import RestartService, RunCommand
from pitstop.remediation.base import actions

BUILTINS = (RestartService, FreeDisk, RotateLogs, VacuumDatabase, Reconnect, RunCommand, RollbackModel, ResetSerial)
for _cls in BUILTINS:
    actions.add(_cls)

__all__ = [
    "BUILTINS",
    "FreeDisk",
    "Reconnect",
    "ResetSerial",
    "RestartService",
    "RollbackModel",
    "RotateLogs",
    "RunCommand",
    "VacuumDatabase",
]
