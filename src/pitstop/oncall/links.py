"""Signed acknowledge links: `<public_url>/ack/<token>` in every page, good for one incident until
it expires.

The token is `<incident id>.<recipient>.<expiry, unix seconds>.<signature>`, the signature an
HMAC-SHA256 (base64url) of those three parts under the link secret: `[oncall] link_secret`, or a
random key kept in `<data_dir>/oncall-link.key` (created on first use, readable by its owner only).
A token that does not parse, is not signed with the secret, or has expired is refused; it
changes nothing.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from pitstop.errors import ConfigError

TOKEN = re.compile(
    r"^(?P<id>[1-9][0-9]{0,9})\.(?P<to>[a-z0-9][a-z0-9_-]{0,63})\.(?P<exp>[0-9]{1,12})\.(?P<sig>[A-Za-z0-9_-]{43})$"
)
KEY_FILE = "oncall-link.key"


class LinkRefused(Exception):
    """A token that acknowledges nothing: malformed (400), forged (403) or expired (410)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True, slots=True)
class AckToken:
    incident_id: int
    recipient: str
    expires: datetime


def recipient_name(name: str) -> str:
    """A contact or channel name as it may appear in a token."""
    cleaned = re.sub(r"[^a-z0-9_-]", "-", name.lower())[:64].strip("-_") or "team"
    return cleaned if cleaned[0].isalnum() else f"x{cleaned}"[:64]


def load_secret(data_dir: Path, configured: str | None) -> bytes:
    """The configured secret, or the key file's (made on first use)."""
    if configured:
        return configured.encode()
    path = data_dir / KEY_FILE
    try:
        return path.read_bytes().strip()
    except FileNotFoundError:
        pass
    data_dir.mkdir(parents=True, exist_ok=True)
    key = secrets.token_hex(32).encode()
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process made it first
        return path.read_bytes().strip()
    with os.fdopen(fd, "wb") as fh:
        fh.write(key)
    return key


class AckLinks:
    def __init__(self, secret: bytes | Callable[[], bytes], base_url: str, valid: timedelta) -> None:
        """`secret` may be a function: the key file is then read (or made) on first use only."""
        self._secret = secret
        self._key: bytes | None = None
        self.base_url = base_url.rstrip("/")
        self.valid = valid

    @property
    def secret(self) -> bytes:
        if self._key is None:
            key = self._secret if isinstance(self._secret, bytes) else self._secret()
            if len(key) < 16:
                raise ConfigError("the acknowledge link secret (oncall.link_secret) needs at least 16 characters")
            self._key = key
        return self._key

    def _sign(self, incident_id: int, recipient: str, expires: int) -> str:
        mac = hmac.new(self.secret, f"pitstop-ack:{incident_id}:{recipient}:{expires}".encode(), hashlib.sha256)
        return base64.urlsafe_b64encode(mac.digest()).decode().rstrip("=")

    def token(self, incident_id: int, recipient: str, now: datetime) -> str:
        recipient = recipient_name(recipient)
        expires = int((now + self.valid).timestamp())
        return f"{incident_id}.{recipient}.{expires}.{self._sign(incident_id, recipient, expires)}"

    def url(self, incident_id: int, recipient: str, now: datetime) -> str:
        return f"{self.base_url}/ack/{self.token(incident_id, recipient, now)}"

    def verify(self, token: str, now: datetime) -> AckToken:
        match = TOKEN.match(token)
        if match is None:
            raise LinkRefused(400, "this is not a pitstop acknowledge link (it may have been cut short)")
        incident_id, recipient, expires = int(match["id"]), match["to"], int(match["exp"])
        if not hmac.compare_digest(match["sig"], self._sign(incident_id, recipient, expires)):
            raise LinkRefused(403, "this acknowledge link is not signed by this pitstop")
        if expires > 253402300799 or now.timestamp() >= expires:
            raise LinkRefused(410, "this acknowledge link has expired; acknowledge in the dashboard or the CLI")
        return AckToken(incident_id, recipient, datetime.fromtimestamp(expires, UTC))
