"""Dashboard sessions kept on the server: started at login, ended at logout (web/session.py signs the cookie).

Only a SHA-256 of each session's random id is stored, so the table alone opens no session.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, insert, select

from pitstop.core.types import Role
from pitstop.storage.engine import Database
from pitstop.storage.repos.keys import ApiKey
from pitstop.storage.schema import api_keys, web_sessions


class SessionRepo:
    def __init__(self, db: Database) -> None:
        self.db = db

    def start(self, id_hash: str, key_prefix: str, *, now: datetime, expires_at: datetime) -> None:
        with self.db.begin() as conn:
            # Expired sessions go as new ones start: the table holds about the sessions that can still open.
            conn.execute(delete(web_sessions).where(web_sessions.c.expires_at <= now))
            conn.execute(
                insert(web_sessions).values(
                    id_hash=id_hash, key_prefix=key_prefix, created_at=now, expires_at=expires_at
                )
            )

    def key(self, id_hash: str, key_prefix: str, now: datetime) -> ApiKey | None:
        """The key of a session that was started for `key_prefix`, has not ended or expired, and whose key is
        not revoked; None otherwise."""
        query = (
            select(api_keys)
            .join(web_sessions, web_sessions.c.key_prefix == api_keys.c.prefix)
            .where(
                web_sessions.c.id_hash == id_hash,
                web_sessions.c.key_prefix == key_prefix,
                web_sessions.c.expires_at > now,
                api_keys.c.revoked_at.is_(None),
            )
        )
        with self.db.connect() as conn:
            row = conn.execute(query).first()
        if row is None:
            return None
        return ApiKey(row.id, row.name, row.prefix, Role(row.role), row.created_at, row.revoked_at)

    def end(self, id_hash: str) -> bool:
        """End a session (logout); False when there was none to end."""
        with self.db.begin() as conn:
            return conn.execute(delete(web_sessions).where(web_sessions.c.id_hash == id_hash)).rowcount > 0
