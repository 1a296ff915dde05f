"""Backups proven by restoring: targets, sets, retention, verification, drills and restores."""

from pitstop.backup import checks as checks  # registers the backup health checks
from pitstop.backup.records import BackupRecords, BackupRun
from pitstop.backup.retention import Decision, Policy, decide
from pitstop.backup.service import BackupService, DrillResult, FileCopy, FileRestore, PruneResult
from pitstop.backup.sets import BackupSet, Manifest
from pitstop.backup.targets import BackupTarget, targets

__all__ = [
    "BackupRecords",
    "BackupRun",
    "BackupService",
    "BackupSet",
    "BackupTarget",
    "Decision",
    "DrillResult",
    "FileCopy",
    "FileRestore",
    "Manifest",
    "Policy",
    "PruneResult",
    "decide",
    "targets",
]
