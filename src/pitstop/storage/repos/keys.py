"""API keys, stored as a public prefix and a SHA-256 of the secret part.

Keys are 32 random bytes, so a fast hash is enough: there is nothing to brute-force.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import insert, select, update
from sqlalchemy.exc import OperationalError

from pitstop.core.types import Role
from pitstop.errors import DatabaseUnavailable
from pitstop.storage.engine import Database
from pitstop.storage.schema import api_keys


@dataclass(frozen=True, slots=True)
class ApiKey:
    id: int
    name: str
    prefix: str
    role: Role
    created_at: datetime
    revoked_at: datetime | None


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class KeyRepo:
    def __init__(self, db: Database) -> None:
        self.db = db
        self._known: dict[str, ApiKey] = {}  # token hash -> key, for when the database is down

    def create(self, name: str, role: Role, now: datetime) -> tuple[ApiKey, str]:
        """Returns the stored key and the plain token, which is shown once and never stored."""
        prefix, secret = secrets.token_hex(6), secrets.token_urlsafe(32)
        with self.db.begin() as conn:
            key_id = conn.execute(
                insert(api_keys).values(
                    name=name, prefix=prefix, secret_hash=_hash(secret), role=role.value, created_at=now
                )
            ).inserted_primary_key
        assert key_id is not None
        return ApiKey(int(key_id[0]), name, prefix, role, now, None), f"ps_{prefix}_{secret}"

    def authenticate(self, token: str) -> ApiKey | None:
        parts = token.split("_", 2)
        if len(parts) != 3 or parts[0] != "ps" or not parts[1] or not parts[2]:
            return None
        try:
            with self.db.connect() as conn:
                row = conn.execute(select(api_keys).where(api_keys.c.prefix == parts[1])).first()
        except (DatabaseUnavailable, OperationalError):
            # While the database is down, a key that authenticated before still does (nothing can be
            # revoked meanwhile): readings pushed then can still be accepted into the ingest spool.
            known = self._known.get(_hash(token))
            if known is None:
                raise
            return known
        if row is None or row.revoked_at is not None or not hmac.compare_digest(row.secret_hash, _hash(parts[2])):
            self._known.pop(_hash(token), None)
            return None
        key = _key(row)
        self._known[_hash(token)] = key
        return key

    def list(self) -> list[ApiKey]:
        with self.db.connect() as conn:
            return [_key(r) for r in conn.execute(select(api_keys).order_by(api_keys.c.id))]

    def revoke(self, prefix: str, now: datetime) -> bool:
        with self.db.begin() as conn:
            result = conn.execute(
                update(api_keys)
                .where(api_keys.c.prefix == prefix, api_keys.c.revoked_at.is_(None))
                .values(revoked_at=now)
            )
        return result.rowcount > 0


def _key(row: object) -> ApiKey:
    m = row._mapping  # type: ignore[attr-defined]
    return ApiKey(m["id"], m["name"], m["prefix"], Role(m["role"]), m["created_at"], m["revoked_at"])
