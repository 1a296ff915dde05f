"""The off-site copy of every backup set (3-2-1): a mounted folder, S3-compatible object storage or SFTP.

Every destination holds the same thing: one set per directory (a key prefix on S3) named by its id,
with the set's stored files, byte for byte as written locally (so encrypted when the local set is),
and its `manifest.json`. A copy is complete when its manifest is there; it is written last:

- folder and SFTP: the set is written under `.partial-<id>/` and renamed when complete;
- S3 (no rename): the manifest is the last object uploaded, and prune deletes it first.

So a copy interrupted at any point is never taken for a set, and prune removes it a day later.
Nothing read back is trusted: a remote manifest is size-capped and type-checked like a local one,
and every stored path is kept inside the set before anything is written locally. Verifying a copy
downloads each stored file and checks it against the remote manifest (stored size and sha256, then
decryption, decompression and the original sha256), one file at a time. A drill from the off-site
copy downloads the set into a scratch directory and restores from that alone.

Errors are BackupError with what went wrong and where (the URL, never a secret): unreachable,
credentials refused, host key unknown or changed.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import posixpath
import re
import shutil
import socket
import stat
import tempfile
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Protocol

from pitstop.backup import codec
from pitstop.backup.sets import (
    MANIFEST,
    MAX_MANIFEST_BYTES,
    PARTIAL,
    BackupSet,
    FileEntry,
    Manifest,
    SourceReader,
    copy_set,
    list_sets,
    partial_dirs,
    read_set,
)
from pitstop.config.offsite import OffsiteSettings
from pitstop.errors import BackupError, NotFound

# S3 deletes at most this many keys per request.
_DELETE_BATCH = 1000


class Missing(BackupError):
    """An object or file of a set is not in the off-site copy (as opposed to the copy being unreachable)."""


class DamagedManifest(BackupError):
    """A manifest in the off-site copy that is not a good one (listing leaves its set out, as locally)."""


@dataclass(frozen=True, slots=True)
class OffsiteSet:
    """A complete set in the off-site copy, as its own manifest there describes it."""

    id: str
    manifest: Manifest
    location: str  # where the copy is, for people: a path or URL, never a secret
    store: OffsiteStore = field(repr=False, compare=False)

    def verify(self, passphrase: str | None) -> list[str]:
        """Every file of this copy against its manifest; one line per problem (see `OffsiteStore.verify`)."""
        return self.store.verify(self, passphrase)


class OffsiteStore(ABC):
    """One off-site destination. Nothing connects until an operation needs to."""

    location: str  # the destination as people see it (path or URL)

    @abstractmethod
    def put(self, backup_set: BackupSet) -> str:
        """Copy a local set here (nothing when a complete copy is here already); returns where it is."""

    @abstractmethod
    def sets(self) -> list[OffsiteSet]:
        """Complete sets here, oldest first; partial copies and unreadable manifests are left out."""

    @abstractmethod
    def get(self, set_id: str) -> OffsiteSet:
        """One set by id: NotFound when it is not here, BackupError naming what is wrong with its manifest."""

    @abstractmethod
    def verify(self, copy: OffsiteSet, passphrase: str | None) -> list[str]:
        """Download and check every stored file of `copy` against its manifest; one line per problem."""

    @abstractmethod
    def local_copy(self, copy: OffsiteSet, scratch: Path) -> contextlib.AbstractContextManager[BackupSet]:
        """The set as a local one (downloaded under `scratch`, removed afterwards) to restore from."""

    @abstractmethod
    def delete(self, set_id: str) -> None:
        """Remove a set (its manifest first: a half-deleted set is never taken for one)."""

    @abstractmethod
    def partials(self) -> list[str]:
        """Names of interrupted copies (and of sets half-deleted) that prune may remove when stale."""

    @abstractmethod
    def delete_partial(self, name: str) -> None:
        """Remove an interrupted copy."""

    def close(self) -> None:  # noqa: B027 - most stores hold nothing open
        """Release what the store holds open."""


def open_store(settings: OffsiteSettings, *, scratch: Path) -> OffsiteStore:
    """The store for `backup.offsite`; `scratch` is a local directory for downloads while verifying."""
    if settings.kind == "s3":
        return S3Store(settings, scratch=scratch)
    if settings.kind == "sftp":
        return SftpStore(settings, scratch=scratch)
    return FolderStore(settings.folder)


# -- a mounted folder -------------------------------------------------------------------------------


class FolderStore(OffsiteStore):
    """A mounted share: sets are directories, read in place."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.location = str(root)

    def _offsite(self, backup_set: BackupSet) -> OffsiteSet:
        return OffsiteSet(backup_set.id, backup_set.manifest, str(backup_set.dir), self)

    def put(self, backup_set: BackupSet) -> str:
        try:
            return str(copy_set(backup_set, self.root).dir)
        except OSError as exc:
            raise BackupError(f"{self.location}: cannot write the off-site copy ({exc.strerror or exc})") from None

    def sets(self) -> list[OffsiteSet]:
        return [self._offsite(s) for s in list_sets(self.root)]

    def get(self, set_id: str) -> OffsiteSet:
        directory = self.root / set_id
        if not directory.is_dir():
            raise NotFound(f"no backup set {set_id!r} in the off-site copy")
        return self._offsite(read_set(directory))

    def verify(self, copy: OffsiteSet, passphrase: str | None) -> list[str]:
        return read_set(self.root / copy.id).verify(passphrase)

    @contextlib.contextmanager
    def local_copy(self, copy: OffsiteSet, scratch: Path) -> Iterator[BackupSet]:
        yield read_set(self.root / copy.id)  # already a local directory: restored from in place

    def delete(self, set_id: str) -> None:
        directory = self.root / set_id
        (directory / MANIFEST).unlink(missing_ok=True)
        shutil.rmtree(directory)

    def partials(self) -> list[str]:
        return [p.name for p in partial_dirs(self.root)]

    def delete_partial(self, name: str) -> None:
        shutil.rmtree(self.root / name, ignore_errors=True)


# -- remote stores: shared logic over a few primitives ----------------------------------------------


class _Session(Protocol):
    """One connection to a remote store; keys are posix paths relative to the store's root."""

    def names(self) -> list[str]: ...  # top-level entries: set ids and partial copies

    def read_small(self, key: str, limit: int) -> bytes | None: ...  # None when absent; DamagedManifest over limit

    def download(self, key: str, to: Path) -> None: ...  # Missing when absent

    def upload_set(self, backup_set: BackupSet) -> None: ...  # complete (manifest last) or nothing

    def remove(self, name: str) -> None: ...  # a set or partial copy, manifest first


class _RemoteStore(OffsiteStore):
    def __init__(self, settings: OffsiteSettings, *, scratch: Path) -> None:
        self.settings, self.scratch = settings, scratch
        self.location = settings.url.rstrip("/")

    @abstractmethod
    def session(self) -> contextlib.AbstractContextManager[_Session]:
        """A connection; every error inside it is turned into a BackupError saying what went wrong."""

    def put(self, backup_set: BackupSet) -> str:
        with self.session() as s:
            if s.read_small(f"{backup_set.id}/{MANIFEST}", MAX_MANIFEST_BYTES) is None:
                s.upload_set(backup_set)
        return f"{self.location}/{backup_set.id}"

    def _read_manifest(self, s: _Session, name: str) -> Manifest | None:
        data = s.read_small(f"{name}/{MANIFEST}", MAX_MANIFEST_BYTES)
        if data is None:
            return None
        try:
            manifest = Manifest.from_json(data.decode())
        except (ValueError, RecursionError, MemoryError) as exc:  # UnicodeDecodeError is a ValueError
            raise DamagedManifest(f"set {name} (off-site): the manifest is damaged ({str(exc)[:200]})") from None
        if manifest.id != name:
            raise DamagedManifest(f"set {name} (off-site): the manifest is damaged (it names set {manifest.id[:80]!r})")
        return manifest

    def sets(self) -> list[OffsiteSet]:
        found = []
        with self.session() as s:
            for name in s.names():
                if name.startswith("."):
                    continue
                try:
                    manifest = self._read_manifest(s, name)
                except DamagedManifest:
                    continue  # not a set, as locally; `get` names what is wrong with it
                if manifest is not None:
                    found.append(OffsiteSet(name, manifest, f"{self.location}/{name}", self))
        return sorted(found, key=lambda c: (c.manifest.started_at, c.id))

    def get(self, set_id: str) -> OffsiteSet:
        with self.session() as s:
            manifest = self._read_manifest(s, set_id)
        if manifest is None:
            raise NotFound(f"no backup set {set_id!r} in the off-site copy")
        return OffsiteSet(set_id, manifest, f"{self.location}/{set_id}", self)

    def verify(self, copy: OffsiteSet, passphrase: str | None) -> list[str]:
        problems: list[str] = []
        self.scratch.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=self.scratch, prefix=".offsite-verify-") as tmp, self.session() as s:
            local = BackupSet(Path(tmp), copy.manifest)
            key = local.key(passphrase)
            for source in copy.manifest.sources:
                reader = SourceReader(local, source, key)
                for file in source.files:
                    where = f"{source.name}/{file.path}"
                    trouble = self._fetch(s, local, file)
                    if trouble is None:
                        trouble = local.check_stored(file)
                    if trouble is None:
                        try:
                            # decryption, decompression and the original checksum, as for a local set
                            for _ in reader.chunks(file):
                                pass
                        except BackupError as exc:
                            trouble = str(exc).rsplit(": ", 1)[-1]
                    if trouble is not None:
                        problems.append(f"{where}: {trouble}")
                    with contextlib.suppress(BackupError, OSError):
                        local.stored_path(file).unlink()  # one file on local disk at a time
        return problems

    def _fetch(self, s: _Session, local: BackupSet, file: FileEntry) -> str | None:
        """Download one stored file into the local scratch set; a problem line, or None when fetched."""
        try:
            dest = local.stored_path(file)
        except BackupError:
            return f"unsafe stored path {file.stored!r} in the manifest (outside the set)"
        dest.parent.mkdir(parents=True, exist_ok=True)
        try:
            s.download(f"{local.id}/{file.stored}", dest)
        except Missing:
            return "missing in the off-site copy"
        return None

    @contextlib.contextmanager
    def local_copy(self, copy: OffsiteSet, scratch: Path) -> Iterator[BackupSet]:
        scratch.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=scratch, prefix=".offsite-drill-") as tmp:
            root = Path(tmp) / copy.id
            root.mkdir()
            with self.session() as s:
                data = s.read_small(f"{copy.id}/{MANIFEST}", MAX_MANIFEST_BYTES)
                if data is None:
                    raise NotFound(f"no backup set {copy.id!r} in the off-site copy")
                (root / MANIFEST).write_bytes(data)
                backup_set = read_set(root)  # checked again: the copy restored from is what is there now
                for source in backup_set.manifest.sources:
                    for file in source.files:
                        trouble = self._fetch(s, backup_set, file)
                        if trouble is not None:
                            raise BackupError(f"set {copy.id} (off-site): {source.name}/{file.path}: {trouble}")
            yield backup_set

    def delete(self, set_id: str) -> None:
        with self.session() as s:
            s.remove(set_id)

    def partials(self) -> list[str]:
        with self.session() as s:
            return [n for n in s.names() if n.startswith(PARTIAL) or self._incomplete(s, n)]

    def _incomplete(self, s: _Session, name: str) -> bool:
        return False

    def delete_partial(self, name: str) -> None:
        with self.session() as s:
            s.remove(name)


_UNREACHABLE = "cannot reach"
# What a set's id looks like (`20260101T000000Z-a1b2c3`): only such prefixes are taken for interrupted copies.
_SET_ID = re.compile(r"\d{8}T\d{6}Z-[0-9a-f]{1,32}")


class _HashingReader:
    """A file read through once, its sha256 taken on the way (what is uploaded is what was checked)."""

    def __init__(self, fh: IO[bytes]) -> None:
        self.fh, self.digest, self.size = fh, hashlib.sha256(), 0

    def read(self, n: int = -1) -> bytes:
        data = self.fh.read(n)
        self.digest.update(data)
        self.size += len(data)
        return data


def _upload_checked(backup_set: BackupSet, send: Callable[[FileEntry, _HashingReader, str], None]) -> None:
    """Send every stored file of a set; BackupError when one is not the bytes its manifest names."""
    for source in backup_set.manifest.sources:
        for file in source.files:
            with backup_set.stored_path(file).open("rb") as fh:
                reader = _HashingReader(fh)
                send(file, reader, file.stored)
            if reader.size != file.stored_size or reader.digest.hexdigest() != file.stored_sha256:
                raise BackupError(f"{backup_set.id}/{source.name}/{file.path}: changed while copying")


# -- S3-compatible object storage -------------------------------------------------------------------

_CREDENTIAL_CODES = {
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "InvalidToken",
    "ExpiredToken",
    "InvalidClientTokenId",
    "AuthorizationHeaderMalformed",
}


class S3Store(_RemoteStore):
    """S3-compatible object storage (boto3): one key prefix per set, the manifest uploaded last."""

    def __init__(self, settings: OffsiteSettings, *, scratch: Path) -> None:
        super().__init__(settings, scratch=scratch)
        self._client: Any = None

    def client(self) -> Any:
        if self._client is None:
            import boto3  # type: ignore[import-untyped]  # imported when an S3 copy is configured
            from botocore.config import Config  # type: ignore[import-untyped]

            s = self.settings
            secret = s.secret_access_key.get_secret_value() if s.secret_access_key else None
            session = boto3.session.Session(
                aws_access_key_id=s.access_key_id, aws_secret_access_key=secret, region_name=s.region
            )
            config = Config(
                connect_timeout=s.timeout_s,
                read_timeout=s.timeout_s,
                retries={"max_attempts": 3, "mode": "standard"},
                # MinIO, Ceph and most self-hosted services want the bucket in the path
                s3={"addressing_style": "path" if s.endpoint_url else "auto"},
            )
            self._client = session.client("s3", endpoint_url=s.endpoint_url, config=config)
        return self._client

    @contextlib.contextmanager
    def session(self) -> Iterator[_Session]:
        from botocore.exceptions import (  # type: ignore[import-untyped]
            BotoCoreError,
            ClientError,
            ConnectionError,
            HTTPClientError,
            NoCredentialsError,
        )

        where = self.location + (f" at {self.settings.endpoint_url}" if self.settings.endpoint_url else "")
        try:
            yield _S3Session(self.client(), self.settings.bucket, self.settings.prefix)
        except ClientError as exc:
            error = exc.response.get("Error", {})
            code, message = str(error.get("Code", "?")), str(error.get("Message", ""))[:200]
            if code in _CREDENTIAL_CODES:
                raise BackupError(
                    f"{where}: the credentials were refused ({code}): check backup.offsite.access_key_id "
                    "and secret_access_key"
                ) from None
            if code in ("AccessDenied", "403"):
                raise BackupError(
                    f"{where}: access denied: the credentials may not use this bucket or prefix"
                ) from None
            if code == "NoSuchBucket":
                raise BackupError(f"{where}: no bucket {self.settings.bucket!r}") from None
            raise BackupError(f"{where}: the storage answered {code}: {message}") from None
        except NoCredentialsError:
            raise BackupError(
                f"{where}: no credentials: set backup.offsite.access_key_id and secret_access_key "
                "(or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)"
            ) from None
        except (ConnectionError, HTTPClientError) as exc:
            raise BackupError(f"{where}: {_UNREACHABLE} the storage ({str(exc)[:200]})") from None
        except BotoCoreError as exc:
            raise BackupError(f"{where}: {str(exc)[:200]}") from None

    def _incomplete(self, s: _Session, name: str) -> bool:
        # no rename on S3: a set's prefix without its manifest is an upload (or a delete) that did not finish
        return _SET_ID.fullmatch(name) is not None and s.read_small(f"{name}/{MANIFEST}", MAX_MANIFEST_BYTES) is None

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None


class _S3Session:
    def __init__(self, client: Any, bucket: str, prefix: str) -> None:
        self.client, self.bucket = client, bucket
        self.base = f"{prefix}/" if prefix else ""

    def names(self) -> list[str]:
        names = []
        for page in self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=self.base, Delimiter="/"
        ):
            for p in page.get("CommonPrefixes", []):
                names.append(p["Prefix"][len(self.base) :].rstrip("/"))
        return names

    def read_small(self, key: str, limit: int) -> bytes | None:
        from botocore.exceptions import ClientError

        try:
            response = self.client.get_object(Bucket=self.bucket, Key=self.base + key)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                return None
            raise
        body = response["Body"]
        with contextlib.closing(body):
            if int(response.get("ContentLength", 0)) > limit:
                raise DamagedManifest(f"{key}: over {limit} bytes in the off-site copy (damaged)")
            data: bytes = body.read(limit + 1)
        if len(data) > limit:
            raise DamagedManifest(f"{key}: over {limit} bytes in the off-site copy (damaged)")
        return data

    def download(self, key: str, to: Path) -> None:
        from botocore.exceptions import ClientError

        try:
            response = self.client.get_object(Bucket=self.bucket, Key=self.base + key)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                raise Missing(f"{key}: missing in the off-site copy") from None
            raise
        with contextlib.closing(response["Body"]) as body, to.open("wb") as fh:
            for chunk in body.iter_chunks(codec.CHUNK):
                fh.write(chunk)

    def upload_set(self, backup_set: BackupSet) -> None:
        def send(file: FileEntry, reader: _HashingReader, key: str) -> None:
            # a stream without seek: s3transfer reads it once, in order, in 8 MiB parts
            self.client.upload_fileobj(reader, self.bucket, f"{self.base}{backup_set.id}/{key}")

        _upload_checked(backup_set, send)
        manifest = (backup_set.dir / MANIFEST).read_bytes()
        self.client.put_object(
            Bucket=self.bucket,
            Key=f"{self.base}{backup_set.id}/{MANIFEST}",
            Body=manifest,
            ContentType="application/json",
        )

    def remove(self, name: str) -> None:
        prefix = f"{self.base}{name}/"
        self.client.delete_object(Bucket=self.bucket, Key=prefix + MANIFEST)
        keys = [
            obj["Key"]
            for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix)
            for obj in page.get("Contents", [])
        ]
        for i in range(0, len(keys), _DELETE_BATCH):
            batch = [{"Key": k} for k in keys[i : i + _DELETE_BATCH]]
            response = self.client.delete_objects(Bucket=self.bucket, Delete={"Objects": batch, "Quiet": True})
            if response.get("Errors"):
                first = response["Errors"][0]
                raise BackupError(f"{name}: could not delete {first.get('Key')} ({first.get('Code')})")


# -- SFTP -------------------------------------------------------------------------------------------


def fingerprint(key_bytes: bytes) -> str:
    """A host key's fingerprint as `ssh-keygen -lf` prints it: SHA256 and unpadded base64."""
    return "SHA256:" + base64.b64encode(hashlib.sha256(key_bytes).digest()).decode().rstrip("=")


class HostKeyRefused(BackupError):
    """The SFTP server's host key is unknown or is not the one configured."""


class SftpStore(_RemoteStore):
    """SFTP (paramiko), logged in with a private key; the server's host key must be known.

    One connection per operation: a backup, a listing, a verify or a drill each connect and
    disconnect, so a restarted server or a dropped link costs nothing but that operation.
    """

    @property
    def _where(self) -> str:
        return f"{self.settings.host}:{self.settings.port}"

    @contextlib.contextmanager
    def session(self) -> Iterator[_Session]:
        import paramiko  # type: ignore[import-untyped]  # imported when an SFTP copy is configured

        s = self.settings
        try:
            client = self._client(paramiko)
            try:
                assert s.key_file is not None  # the settings demand it
                passphrase = s.key_passphrase.get_secret_value() if s.key_passphrase else None
                try:
                    pkey = paramiko.PKey.from_path(s.key_file, passphrase)
                except (OSError, paramiko.SSHException, ValueError) as exc:
                    raise BackupError(f"{self.location}: cannot load key_file {s.key_file}: {exc}") from None
                client.connect(
                    s.host,
                    port=s.port,
                    username=s.user,
                    pkey=pkey,
                    allow_agent=False,
                    look_for_keys=False,
                    timeout=s.timeout_s,
                    banner_timeout=s.timeout_s,
                    auth_timeout=s.timeout_s,
                    channel_timeout=s.timeout_s,
                )
                sftp = client.open_sftp()
                sftp.get_channel().settimeout(s.timeout_s)
                with contextlib.closing(sftp):
                    yield _SftpSession(sftp, s.remote_path)
            finally:
                client.close()
        except BackupError:
            raise
        except paramiko.BadHostKeyException as exc:
            raise HostKeyRefused(
                f"{self.location}: the host key of {self._where} is not the one in known_hosts "
                f"(it offered {fingerprint(exc.key.asbytes())}): refused; if the server's key was "
                "changed on purpose, update backup.offsite.known_hosts"
            ) from None
        except paramiko.AuthenticationException:
            raise BackupError(
                f"{self.location}: the server refused the login of {s.user!r} with key_file {s.key_file}"
            ) from None
        except (paramiko.ssh_exception.NoValidConnectionsError, ConnectionError, socket.gaierror, TimeoutError) as exc:
            raise BackupError(f"{self.location}: {_UNREACHABLE} {self._where} ({exc.strerror or exc})") from None
        except (paramiko.SSHException, EOFError) as exc:
            raise BackupError(f"{self.location}: SSH failed: {str(exc)[:200] or type(exc).__name__}") from None
        except OSError as exc:  # an SFTP status (permission denied, no space...) or the local disk
            raise BackupError(f"{self.location}: {exc.strerror or exc}") from None

    def _client(self, paramiko: Any) -> Any:
        s = self.settings
        client = paramiko.SSHClient()
        if s.host_key_fingerprint is not None:
            client.set_missing_host_key_policy(_FingerprintPolicy(s.host_key_fingerprint, self.location, self._where))
        else:
            assert s.known_hosts is not None  # the settings demand one of the two
            try:
                client.load_host_keys(str(s.known_hosts))
            except OSError as exc:
                raise BackupError(f"{self.location}: cannot read known_hosts {s.known_hosts}: {exc.strerror}") from None
            client.set_missing_host_key_policy(_UnknownHostPolicy(self.location, self._where))
        return client


class _UnknownHostPolicy:
    """Refuses a server whose host key is not in known_hosts (paramiko's RejectPolicy, saying what to do)."""

    def __init__(self, location: str, where: str) -> None:
        self.location, self.where = location, where

    def missing_host_key(self, client: Any, hostname: str, key: Any) -> None:
        raise HostKeyRefused(
            f"{self.location}: the host key of {self.where} ({fingerprint(key.asbytes())}) is not in "
            "backup.offsite.known_hosts: refused; add it (ssh-keyscan, checked against the server) or "
            "set host_key_fingerprint"
        )


class _FingerprintPolicy:
    """Accepts the server only when its host key has the configured SHA256 fingerprint."""

    def __init__(self, expected: str, location: str, where: str) -> None:
        self.expected, self.location, self.where = expected, location, where

    def missing_host_key(self, client: Any, hostname: str, key: Any) -> None:
        offered = fingerprint(key.asbytes())
        if not hmac.compare_digest(offered, self.expected):
            raise HostKeyRefused(
                f"{self.location}: the host key of {self.where} is {offered}, not the configured "
                f"host_key_fingerprint {self.expected}: refused"
            )


class _SftpSession:
    def __init__(self, sftp: Any, root: str) -> None:
        self.sftp, self.root = sftp, root

    def _path(self, key: str) -> str:
        return posixpath.join(self.root, key)

    def names(self) -> list[str]:
        try:
            return [a.filename for a in self.sftp.listdir_attr(self.root) if stat.S_ISDIR(a.st_mode or 0)]
        except FileNotFoundError:
            return []  # nothing copied yet

    def read_small(self, key: str, limit: int) -> bytes | None:
        path = self._path(key)
        try:
            size = self.sftp.stat(path).st_size or 0
        except FileNotFoundError:
            return None
        if size > limit:
            raise DamagedManifest(f"{key}: over {limit} bytes in the off-site copy (damaged)")
        with self.sftp.open(path, "rb") as fh:
            data: bytes = fh.read(limit + 1)
        if len(data) > limit:
            raise DamagedManifest(f"{key}: over {limit} bytes in the off-site copy (damaged)")
        return data

    def download(self, key: str, to: Path) -> None:
        try:
            with to.open("wb") as fh:
                self.sftp.getfo(self._path(key), fh)
        except FileNotFoundError:
            raise Missing(f"{key}: missing in the off-site copy") from None

    def _makedirs(self, path: str) -> None:
        missing = []
        while path not in ("", "/"):
            try:
                self.sftp.stat(path)
                break
            except FileNotFoundError:
                missing.append(path)
                path = posixpath.dirname(path)
        for directory in reversed(missing):
            self.sftp.mkdir(directory)

    def upload_set(self, backup_set: BackupSet) -> None:
        tmp = self._path(f"{PARTIAL}{backup_set.id}")
        final = self._path(backup_set.id)
        for leftover in (tmp, final):  # an earlier interrupted copy; `final` has no manifest (checked)
            if self._exists(leftover):
                self._rmtree(leftover)
        self._makedirs(tmp)
        made = {tmp}

        def send(file: FileEntry, reader: _HashingReader, key: str) -> None:
            dest = posixpath.join(tmp, key)
            parent = posixpath.dirname(dest)
            if parent not in made:
                self._makedirs(parent)
                made.add(parent)
            # confirm: the server's size of the file is checked against what was sent
            self.sftp.putfo(reader, dest, file_size=file.stored_size, confirm=True)

        try:
            _upload_checked(backup_set, send)
            with (backup_set.dir / MANIFEST).open("rb") as fh:
                self.sftp.putfo(fh, posixpath.join(tmp, MANIFEST))
            self.sftp.rename(tmp, final)  # plain SFTP rename: `final` is not there (removed above)
        except BaseException:
            with contextlib.suppress(Exception):
                self._rmtree(tmp)
            raise

    def _exists(self, path: str) -> bool:
        try:
            self.sftp.stat(path)
        except FileNotFoundError:
            return False
        return True

    def _rmtree(self, path: str) -> None:
        for attr in self.sftp.listdir_attr(path):
            child = posixpath.join(path, attr.filename)
            if stat.S_ISDIR(attr.st_mode or 0):
                self._rmtree(child)
            else:
                self.sftp.remove(child)
        self.sftp.rmdir(path)

    def remove(self, name: str) -> None:
        path = self._path(name)
        with contextlib.suppress(FileNotFoundError):
            self.sftp.remove(posixpath.join(path, MANIFEST))
        with contextlib.suppress(FileNotFoundError):
            self._rmtree(path)
