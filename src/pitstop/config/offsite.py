"""Settings of the off-site copy of every backup set (`backup.offsite`): a mounted folder, S3 or SFTP.

A plain string is the URL; a table adds the options of its kind:

```toml
[backup]
offsite = "/mnt/nas/pitstop"               # a mounted share

[backup.offsite]                           # S3-compatible object storage (AWS, MinIO, Ceph, ...)
url = "s3://plant-backups/pitstop"
endpoint_url = "https://minio.plant.example:9000"   # empty: AWS
region = "eu-west-1"
access_key_id = "AKIA..."                  # or PITSTOP_BACKUP__OFFSITE__ACCESS_KEY_ID
secret_access_key = "..."                  # or PITSTOP_BACKUP__OFFSITE__SECRET_ACCESS_KEY

[backup.offsite]                           # SFTP, the server's host key checked
url = "sftp://backup@nas.plant.example:22/srv/backups/pitstop"
key_file = "/etc/pitstop/backup_ed25519"
known_hosts = "/etc/pitstop/known_hosts"   # or host_key_fingerprint = "SHA256:..."
```
"""

from __future__ import annotations

import os
import re
from pathlib import Path, PurePosixPath
from typing import Literal
from urllib.parse import unquote, urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

# S3's bucket naming rules (3-63 lower-case letters, digits, dots and hyphens).
BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
# `ssh-keygen -lf` prints a host key's fingerprint this way: SHA256 and unpadded base64.
FINGERPRINT = re.compile(r"^SHA256:[A-Za-z0-9+/]{43}$")
_S3_OPTIONS = ("endpoint_url", "region", "access_key_id", "secret_access_key")
_SFTP_OPTIONS = ("key_file", "key_passphrase", "known_hosts", "host_key_fingerprint")

OffsiteKind = Literal["folder", "s3", "sftp"]


class OffsiteSettings(BaseModel):
    """Where the second copy of every set goes (3-2-1). Errors name the option that is wrong."""

    model_config = ConfigDict(extra="forbid")

    url: str = Field(
        min_length=1,
        max_length=2000,
        description="a path (a mounted share), s3://bucket/prefix or sftp://user@host[:port]/absolute/path",
    )
    endpoint_url: str | None = Field(default=None, description="S3: the service's URL (MinIO, Ceph...); empty: AWS")
    region: str | None = Field(default=None, max_length=64, description="S3: the region; empty: the AWS default")
    access_key_id: str | None = Field(
        default=None, max_length=256, description="S3: empty: the AWS credential chain (AWS_* variables, ~/.aws)"
    )
    secret_access_key: SecretStr | None = Field(default=None, description="S3: the secret of access_key_id")
    key_file: Path | None = Field(default=None, description="SFTP: the private key (OpenSSH or PEM format)")
    key_passphrase: SecretStr | None = Field(default=None, description="SFTP: the private key's passphrase")
    known_hosts: Path | None = Field(default=None, description="SFTP: a known_hosts file holding the server's key")
    host_key_fingerprint: str | None = Field(
        default=None, description="SFTP: the server key's SHA256 fingerprint, as `ssh-keygen -lf` prints it"
    )
    timeout_s: float = Field(default=30.0, gt=0, le=600, description="connect and per-request timeout")

    @model_validator(mode="before")
    @classmethod
    def _plain_string_is_the_url(cls, value: object) -> object:
        # `offsite = "/mnt/nas"` as before, and `offsite = "s3://..."`; a Path from Python code too
        if isinstance(value, str | os.PathLike):
            return {"url": os.fspath(value)}
        return value

    @field_validator("endpoint_url", "region", "access_key_id", "secret_access_key", "key_passphrase", mode="before")
    @classmethod
    def _blank_is_none(cls, value: object) -> object:
        return None if value == "" else value

    @model_validator(mode="after")
    def _fits_the_kind(self) -> OffsiteSettings:
        kind = self.kind  # raises for an unknown scheme
        given = [name for name in (*_S3_OPTIONS, *_SFTP_OPTIONS) if getattr(self, name) is not None]
        foreign = [n for n in given if n not in {"s3": _S3_OPTIONS, "sftp": _SFTP_OPTIONS}.get(kind, ())]
        if foreign:
            raise ValueError(f"{', '.join(foreign)}: not an option of a {kind} off-site copy ({self.shown_url})")
        if "\x00" in self.url or any(c in self.url for c in "\r\n"):
            raise ValueError("url: control characters are not allowed")
        if kind == "s3":
            self._check_s3()
        elif kind == "sftp":
            self._check_sftp()
        return self

    def _check_s3(self) -> None:
        parts = urlsplit(self.url)
        if "@" in parts.netloc:
            raise ValueError("url: give credentials as access_key_id / secret_access_key, not in the s3:// URL")
        if not BUCKET.fullmatch(parts.netloc):
            raise ValueError(f"url: {parts.netloc[:70]!r} is not an S3 bucket name (3-63 of a-z, 0-9, '.', '-')")
        if parts.query or parts.fragment:
            raise ValueError("url: an s3:// URL takes no query or fragment")
        if any(p in (".", "..") for p in self.prefix.split("/")):
            raise ValueError("url: the prefix may not hold '.' or '..' segments")
        if self.endpoint_url is not None:
            endpoint = urlsplit(self.endpoint_url)
            if endpoint.scheme not in ("http", "https") or not endpoint.hostname:
                raise ValueError("endpoint_url: give an http:// or https:// URL")
        if (self.access_key_id is None) != (self.secret_access_key is None):
            raise ValueError("access_key_id and secret_access_key: give both, or neither (the AWS credential chain)")

    def _check_sftp(self) -> None:
        parts = urlsplit(self.url)
        if parts.password is not None:
            raise ValueError("url: no password in the sftp:// URL; log in with key_file")
        if not parts.username or not parts.hostname:
            raise ValueError("url: an sftp:// URL names the user and the host: sftp://user@host[:port]/path")
        try:
            port = parts.port
        except ValueError:
            port = 0
        if port == 0:
            raise ValueError("url: the port is not a number from 1 to 65535")
        if parts.query or parts.fragment:
            raise ValueError("url: an sftp:// URL takes no query or fragment")
        path = PurePosixPath(self.remote_path)
        if path == PurePosixPath("/") or ".." in path.parts:
            raise ValueError("url: give the directory on the server (an absolute path without '..', not '/')")
        if self.key_file is None:
            raise ValueError("key_file: an sftp:// off-site copy logs in with a private key")
        if self.known_hosts is None and self.host_key_fingerprint is None:
            raise ValueError(
                "known_hosts or host_key_fingerprint: the SFTP server's host key is checked and an unknown "
                "key refused; give a known_hosts file holding it or its SHA256 fingerprint (ssh-keygen -lf)"
            )
        if self.host_key_fingerprint is not None and not FINGERPRINT.fullmatch(self.host_key_fingerprint):
            raise ValueError("host_key_fingerprint: give it as `ssh-keygen -lf` prints it: SHA256:<43 characters>")

    # -- the URL's parts ---------------------------------------------------------------------------

    @property
    def kind(self) -> OffsiteKind:
        scheme = urlsplit(self.url).scheme if "://" in self.url else ""
        if scheme == "":
            return "folder"
        if scheme in ("s3", "sftp"):
            return scheme  # type: ignore[return-value]
        raise ValueError(
            f"url: unknown scheme {scheme[:20]!r}: use a path, s3://bucket/prefix or sftp://user@host/path"
        )

    @property
    def folder(self) -> Path:
        return Path(self.url)

    @property
    def bucket(self) -> str:
        return urlsplit(self.url).netloc

    @property
    def prefix(self) -> str:
        """The key prefix inside the bucket, without leading or trailing slashes ('' for the whole bucket)."""
        return unquote(urlsplit(self.url).path).strip("/")

    @property
    def user(self) -> str:
        return unquote(urlsplit(self.url).username or "")

    @property
    def host(self) -> str:
        return urlsplit(self.url).hostname or ""

    @property
    def port(self) -> int:
        return urlsplit(self.url).port or 22

    @property
    def remote_path(self) -> str:
        """The directory on the SFTP server, absolute, without a trailing slash."""
        return "/" + unquote(urlsplit(self.url).path).strip("/")

    @property
    def shown_url(self) -> str:
        """The URL as logs and errors show it (it holds no secret: those are options of their own)."""
        return self.url if len(self.url) <= 200 else self.url[:200] + "..."
