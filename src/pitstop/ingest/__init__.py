"""Readings in: files (CSV, Parquet), HTTP push and MQTT, through one validator and one service.

Every source calls `IngestService.ingest(rows, source)`; readings are stored once (idempotent on
sensor and time), bad rows are quarantined with a reason, and while the database is down accepted
readings wait in an on-disk spool.
"""

from pitstop.ingest.service import IngestResult, IngestService, ReplayResult
from pitstop.ingest.validate import REASONS, Quarantined, SensorIndex, validate

__all__ = ["REASONS", "IngestResult", "IngestService", "Quarantined", "ReplayResult", "SensorIndex", "validate"]
