"""Errors pitstop raises on purpose, each with a stable code.

PitstopError
├── ConfigError          config.invalid      a settings file or value is wrong
├── StorageError         storage.*           the database is unreachable or behind
│   ├── DatabaseUnavailable  storage.unavailable
│   └── SchemaOutdated       storage.outdated
├── InventoryError       inventory.invalid   an inventory file is wrong (names the line)
├── NotFound             not_found           a named thing does not exist
├── InvalidInput         input.invalid       a request or command argument is wrong (says which)
│   └── BodyTooLarge         request.too_large   a request body over api.max_body_bytes (413)
├── AuthError            auth.*              missing or insufficient API key
├── IngestError          ingest.*            readings that cannot be taken in
│   └── SpoolFull            ingest.spool_full   database down, spool at its cap (also DatabaseUnavailable)
├── BackupError          backup.failed       a backup, verification, drill or restore did not succeed
└── ScenarioError        sim.scenario        a simulator scenario or option is wrong (says which)

Third-party errors are wrapped where they enter pitstop, so callers catch one tree.
"""

from __future__ import annotations


class PitstopError(Exception):
    code = "pitstop.error"
    exit_code = 1


class ConfigError(PitstopError):
    code = "config.invalid"
    exit_code = 2


class StorageError(PitstopError):
    code = "storage.error"


class DatabaseUnavailable(StorageError):
    code = "storage.unavailable"


class SchemaOutdated(StorageError):
    code = "storage.outdated"


class InventoryError(PitstopError):
    code = "inventory.invalid"
    exit_code = 2


class NotFound(PitstopError):
    code = "not_found"


class InvalidInput(PitstopError):
    code = "input.invalid"
    exit_code = 2


class BodyTooLarge(InvalidInput):
    code = "request.too_large"


class AuthError(PitstopError):
    code = "auth.denied"


class BackupError(PitstopError):
    code = "backup.failed"


class IngestError(PitstopError):
    code = "ingest.invalid"
    exit_code = 2


class SpoolFull(IngestError, DatabaseUnavailable):
    code = "ingest.spool_full"
    exit_code = 1


class ScenarioError(PitstopError):
    code = "sim.scenario"
    exit_code = 2
