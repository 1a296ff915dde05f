"""API keys, stored as a public prefix and a SHA-256 of the secret part.

Keys are 32 random bytes, so a fast hash is enough: there is nothing to brute-force.

A key that verified against the database is remembered for ``ttl`` seconds (2 by default), so a
busy endpoint such as ``/predict`` does not query the database on every request. Revoking through
this repository forgets the key at once; a revocation made by another process (``pitstop keys
revoke``) is honoured here within ``ttl``. Tokens that fail are never remembered.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Callable
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


_CACHE_MAX = 4096  # verified tokens remembered at once; past it the memory starts over


class KeyRepo:
    def __init__(self, db: Database, *, ttl: float = 2.0, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.db = db
        self.ttl = ttl
        self._monotonic = monotonic
        self._known: dict[str, ApiKey] = {}  # token hash -> key, for when the database is down
        self._verified: dict[str, tuple[ApiKey, float]] = {}  # token hash -> key, when it verified

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

    def cached(self, token: str) -> ApiKey | None:
        """The key of `token` if it verified within the last `ttl` seconds; no I/O (None: ask `authenticate`)."""
        hit = self._verified.get(_hash(token))
        if hit is None or self._monotonic() - hit[1] >= self.ttl:
            return None
        return hit[0]

    def authenticate(self, token: str) -> ApiKey | None:
        parts = token.split("_", 2)
        if len(parts) != 3 or parts[0] != "ps" or not parts[1] or not parts[2]:
            return None
        hashed = _hash(token)
        hit = self._verified.get(hashed)
        if hit is not None and self._monotonic() - hit[1] < self.ttl:
            return hit[0]
        try:
            with self.db.connect() as conn:
                row = conn.execute(select(api_keys).where(api_keys.c.prefix == parts[1])).first()
        except (DatabaseUnavailable, OperationalError):
            # While the database is down, a key that authenticated before still does (nothing can be
            # revoked meanwhile): readings pushed then can still be accepted into the ingest spool.
            known = self._known.get(hashed)
            if known is None:
                raise
            return known
        if row is None or row.revoked_at is not None or not hmac.compare_digest(row.secret_hash, _hash(parts[2])):
            self._known.pop(hashed, None)
            self._verified.pop(hashed, None)
            return None
        key = _key(row)
        self._known[hashed] = key
        if len(self._verified) >= _CACHE_MAX:
            self._verified.clear()
        self._verified[hashed] = (key, self._monotonic())
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
        # Forget every remembered token of this prefix at once (the cache is keyed by token hash).
        for hashed, (key, _) in list(self._verified.items()):
            if key.prefix == prefix:
                del self._verified[hashed]
        return result.rowcount > 0


def _key(row: object) -> ApiKey:
    m = row._mapping  # type: ignore[attr-defined]
    return ApiKey(m["id"], m["name"], m["prefix"], Role(m["role"]), m["created_at"], m["revoked_at"])
