"""Dashboard sessions: a signed cookie naming the API key's prefix, checked against the key store each request."""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from datetime import datetime
from pathlib import Path

from pitstop.storage.repos.keys import ApiKey, KeyRepo

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


class Sessions:
    def __init__(self, data_dir: Path, keys: KeyRepo) -> None:
        self._secret = _secret(data_dir)
        self._keys = keys

    def _sign(self, text: str) -> str:
        return hmac.new(self._secret, text.encode(), hashlib.sha256).hexdigest()

    def issue(self, key: ApiKey, now: datetime) -> str:
        """Cookie value: prefix.expiry.nonce.signature."""
        body = f"{key.prefix}.{int(now.timestamp()) + LIFETIME_S}.{secrets.token_hex(8)}"
        return f"{body}.{self._sign(body)}"

    def key(self, cookie: str | None, now: datetime) -> ApiKey | None:
        """The live (not revoked) key of a valid, unexpired session; None otherwise."""
        if not cookie or len(cookie) > 300 or not cookie.isascii():
            return None
        body, _, signature = cookie.rpartition(".")
        if not _same(signature, self._sign(body)):
            return None
        prefix, expires, _nonce = [*body.split("."), "", "", ""][:3]
        if not expires.isdigit() or int(expires) < now.timestamp():
            return None
        return next((k for k in self._keys.list() if k.prefix == prefix and k.revoked_at is None), None)

    def csrf(self, cookie: str) -> str:
        """The CSRF token of a session: forms carry it; a POST without it is refused."""
        return self._sign(f"csrf:{cookie}")

    def csrf_ok(self, cookie: str | None, token: str) -> bool:
        return bool(cookie) and _same(token, self.csrf(cookie or ""))
