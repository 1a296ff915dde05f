"""Dashboard sessions: a signed cookie naming the API key's prefix and a random session id, checked each
request against the sessions the server keeps (logout ends one there) and the key store (a revoked key ends
all of its sessions)."""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from datetime import UTC, datetime
from pathlib import Path

from pitstop.storage.repos.keys import ApiKey
from pitstop.storage.repos.sessions import SessionRepo

COOKIE = "pitstop_session"
LIFETIME_S = 12 * 3600


def _secret(data_dir: Path) -> bytes:
    """A random secret generated once into data_dir (0600): sessions survive restarts, not a new data_dir."""
    path = data_dir / "web_session_secret"
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_hex(32))
    return path.read_text().strip().encode()


def _same(given: str, expected: str) -> bool:
    """Constant-time equality of a client's text with ours (ASCII hex). A cookie or form field may hold
    anything, and `hmac.compare_digest` raises on `str` with non-ASCII characters: such text is simply wrong."""
    return given.isascii() and hmac.compare_digest(given.encode(), expected.encode())


def _hash(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


class Sessions:
    def __init__(self, data_dir: Path, store: SessionRepo) -> None:
        self._secret = _secret(data_dir)
        self._store = store

    def _sign(self, text: str) -> str:
        return hmac.new(self._secret, text.encode(), hashlib.sha256).hexdigest()

    def issue(self, key: ApiKey, now: datetime) -> str:
        """Start a session of `key`; the cookie value: prefix.expiry.session_id.signature."""
        expires = int(now.timestamp()) + LIFETIME_S
        session_id = secrets.token_hex(16)
        self._store.start(_hash(session_id), key.prefix, now=now, expires_at=datetime.fromtimestamp(expires, UTC))
        body = f"{key.prefix}.{expires}.{session_id}"
        return f"{body}.{self._sign(body)}"

    def _read(self, cookie: str | None) -> tuple[str, int, str] | None:
        """(prefix, expiry, session id) of a cookie we signed; None for anything else."""
        if not cookie or len(cookie) > 300 or not cookie.isascii():
            return None
        body, _, signature = cookie.rpartition(".")
        if not _same(signature, self._sign(body)):
            return None
        prefix, expires, session_id = [*body.split("."), "", "", ""][:3]
        if not (prefix and expires.isdigit() and session_id):
            return None
        return prefix, int(expires), session_id

    def key(self, cookie: str | None, now: datetime) -> ApiKey | None:
        """The live (not revoked) key of a valid, unexpired session that has not ended; None otherwise."""
        session = self._read(cookie)
        if session is None or session[1] < now.timestamp():
            return None
        prefix, _, session_id = session
        return self._store.key(_hash(session_id), prefix, now)

    def end(self, cookie: str | None) -> None:
        """Logout: the session ends on the server, so a copy of the cookie opens nothing afterwards."""
        session = self._read(cookie)
        if session is not None:
            self._store.end(_hash(session[2]))

    def csrf(self, cookie: str) -> str:
        """The CSRF token of a session: forms carry it; a POST without it is refused."""
        return self._sign(f"csrf:{cookie}")

    def csrf_ok(self, cookie: str | None, token: str) -> bool:
        return bool(cookie) and _same(token, self.csrf(cookie or ""))
