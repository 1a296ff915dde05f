"""Storage: one Database over SQLite or PostgreSQL, its schema, migrations and repositories."""

from pitstop.storage.engine import Database

__all__ = ["Database"]
