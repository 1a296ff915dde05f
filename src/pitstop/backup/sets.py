"""Backup sets on disk: a directory of stored files and a manifest, published atomically.

A set is written under `<destination>/.partial-<id>/`, every file fsynced, the manifest written
last, then the directory is renamed to `<destination>/<id>/` and the destination fsynced. Only a
directory with a plain name and a manifest is a set: a crash at any point leaves a `.partial-`
directory that `list_sets` ignores and `prune` removes.

A set on disk is not trusted: its manifest is size-capped and type-checked, its id must be its
directory's name, and every path in it must stay inside the set (stored files) or inside the
restore target (restored files), symlinks followed, before anything is read or written.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path, PurePosixPath
from typing import Any

from pitstop.backup import codec
from pitstop.errors import BackupError

MANIFEST = "manifest.json"
PARTIAL = ".partial-"
FORMAT = 1
# Far above any real manifest (about 300 bytes per file); a bigger one is refused unread.
MAX_MANIFEST_BYTES = 64 * 1024 * 1024
RESTORE_SUFFIX = ".pitstop-restore"


@dataclass(frozen=True, slots=True)
class FileEntry:
    path: str  # relative, posix
    size: int
    sha256: str
    stored: str  # relative to the set directory
    stored_size: int
    stored_sha256: str
    compressed: bool = True  # gzip; False for data that is compressed already (pg_dump -Fc)


@dataclass(slots=True)
class SourceEntry:
    name: str
    kind: str
    location: str  # for people; never a password
    meta: dict[str, Any] = field(default_factory=dict)
    files: list[FileEntry] = field(default_factory=list)

    def file(self, path: str) -> FileEntry | None:
        return next((f for f in self.files if f.path == path), None)


@dataclass(slots=True)
class Manifest:
    id: str
    pitstop_version: str
    reason: str
    started_at: datetime
    finished_at: datetime
    compression_level: int
    encryption: dict[str, str] | None
    sources: list[SourceEntry]
    format: int = FORMAT

    def source(self, name: str) -> SourceEntry:
        for s in self.sources:
            if s.name == name:
                return s
        raise BackupError(f"set {self.id} has no source {name!r}; it has {', '.join(self.source_names)}")

    @property
    def source_names(self) -> list[str]:
        return [s.name for s in self.sources]

    @property
    def size(self) -> int:
        return sum(f.size for s in self.sources for f in s.files)

    @property
    def stored_size(self) -> int:
        return sum(f.stored_size for s in self.sources for f in s.files)

    def to_json(self) -> str:
        data = asdict(self)
        data["started_at"] = self.started_at.isoformat()
        data["finished_at"] = self.finished_at.isoformat()
        return json.dumps(data, indent=1, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Manifest:
        """Parse and type-check a manifest; ValueError says what is wrong."""
        data = json.loads(text)
        if _get(data, "format", int) != FORMAT:
            raise ValueError(f"unknown manifest format {data.get('format')!r}")
        encryption = data.get("encryption")
        if encryption is not None and not (
            isinstance(encryption, dict) and all(isinstance(v, str) for v in encryption.values())
        ):
            raise ValueError("'encryption' is not an object of strings")
        if encryption is not None and not {"salt", "key_check"} <= encryption.keys():
            raise ValueError("'encryption' lacks the salt or the key check")
        sources = [
            SourceEntry(
                name=_get(s, "name", str),
                kind=_get(s, "kind", str),
                location=_get(s, "location", str),
                meta=_get(s, "meta", dict),
                files=[_file_entry(f) for f in _get(s, "files", list)],
            )
            for s in _get(data, "sources", list)
        ]
        return cls(
            id=_get(data, "id", str),
            pitstop_version=_get(data, "pitstop_version", str),
            reason=_get(data, "reason", str),
            started_at=_moment(_get(data, "started_at", str)),
            finished_at=_moment(_get(data, "finished_at", str)),
            compression_level=_get(data, "compression_level", int),
            encryption=encryption,
            sources=sources,
        )


def _get(data: object, key: str, kind: type) -> Any:
    """`data[key]` when `data` is an object and the value is of `kind` (ints not negative, not booleans)."""
    if not isinstance(data, dict):
        raise ValueError(f"expected an object holding {key!r}")
    if key not in data:
        raise ValueError(f"{key!r} is missing")
    value = data[key]
    if not isinstance(value, kind) or (isinstance(value, int) and (isinstance(value, bool) or value < 0)):
        raise ValueError(f"{key!r} is not a {'non-negative integer' if kind is int else kind.__name__}")
    return value


def _file_entry(data: object) -> FileEntry:
    compressed = data.get("compressed", True) if isinstance(data, dict) else True
    if not isinstance(compressed, bool):
        raise ValueError("'compressed' is not a bool")
    return FileEntry(
        path=_get(data, "path", str),
        size=_get(data, "size", int),
        sha256=_get(data, "sha256", str),
        stored=_get(data, "stored", str),
        stored_size=_get(data, "stored_size", int),
        stored_sha256=_get(data, "stored_sha256", str),
        compressed=compressed,
    )


def _moment(text: str) -> datetime:
    # naive and aware times cannot be compared: sorting sets would fail on a naive one
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        raise ValueError(f"time {text!r} has no time zone")
    return moment


def safe_relpath(path: str) -> str:
    """A relative posix path that names something below its root, or BackupError."""
    pure = PurePosixPath(path)
    if not pure.parts or pure.is_absolute() or ".." in pure.parts or "\\" in path or "\x00" in path:
        raise BackupError(f"unsafe path in backup: {path!r}")
    return pure.as_posix()


def contained(root: Path, rel: str) -> Path:
    """`root / rel`, checked to stay inside `root` with every symlink that exists followed.

    BackupError when `rel` is unsafe as written or, through a symlink, resolves outside `root`;
    the message names `rel` only (never server paths).
    """
    path = root / safe_relpath(rel)
    try:
        inside = path.resolve().is_relative_to(root.resolve())
    except (OSError, RuntimeError):  # a symlink loop, or a directory we may not read
        raise BackupError(f"unsafe path in backup: {rel!r} cannot be resolved") from None
    if not inside:
        raise BackupError(f"unsafe path in backup: {rel!r} leads outside through a symlink")
    return path


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class SourceWriter:
    """What a BackupTarget's `dump` writes into: files and streams, plus `meta` for the manifest."""

    def __init__(self, writer: SetWriter, entry: SourceEntry) -> None:
        self._writer, self.entry = writer, entry
        self.scratch = writer.scratch

    @property
    def meta(self) -> dict[str, Any]:
        return self.entry.meta

    def add_stream(self, path: str, chunks: Iterable[bytes], *, compress: bool = True) -> FileEntry:
        """Store one file; `compress=False` for data that is compressed already."""
        rel = safe_relpath(path)
        stored = f"data/{self.entry.name}/{len(self.entry.files):06d}"
        dest = self._writer.dir / stored
        dest.parent.mkdir(parents=True, exist_ok=True)
        level = self._writer.level if compress else 0
        info = codec.write_stored(chunks, dest, level=level, key=self._writer.key)
        entry = FileEntry(rel, info.size, info.sha256, stored, info.stored_size, info.stored_sha256, level > 0)
        self.entry.files.append(entry)
        return entry

    def add_file(self, path: str, source: Path) -> FileEntry:
        return self.add_stream(path, codec.file_chunks(source))


class SetWriter:
    """Writes one set into `<destination>/.partial-<id>`; `publish` makes it a set, `abort` removes it."""

    def __init__(self, destination: Path, set_id: str, *, level: int, passphrase: str | None) -> None:
        destination.mkdir(parents=True, exist_ok=True)
        self.destination, self.id, self.level = destination, set_id, level
        self.dir = destination / f"{PARTIAL}{set_id}"
        self.dir.mkdir()
        self.scratch = self.dir / "scratch"
        self.scratch.mkdir()
        self.encryption: dict[str, str] | None = None
        self.key: bytes | None = None
        if passphrase:
            salt = os.urandom(16)
            self.key = codec.derive_key(passphrase, salt)
            self.encryption = {
                "cipher": "AES-256-GCM",
                "kdf": "scrypt",
                "salt": salt.hex(),
                "key_check": codec.key_check(self.key),
            }
        self.sources: list[SourceEntry] = []

    def source(self, name: str, kind: str, location: str) -> SourceWriter:
        entry = SourceEntry(name, kind, location)
        self.sources.append(entry)
        return SourceWriter(self, entry)

    def publish(self, *, version: str, reason: str, started_at: datetime, finished_at: datetime) -> BackupSet:
        manifest = Manifest(
            id=self.id,
            pitstop_version=version,
            reason=reason,
            started_at=started_at,
            finished_at=finished_at,
            compression_level=self.level,
            encryption=self.encryption,
            sources=self.sources,
        )
        shutil.rmtree(self.scratch)
        for directory in sorted({p.parent for p in self.dir.rglob("*") if p.is_file()}):
            fsync_dir(directory)
        _write_atomic(self.dir / MANIFEST, manifest.to_json().encode())
        final = self.destination / self.id
        self.dir.rename(final)
        fsync_dir(self.destination)
        return BackupSet(final, manifest)

    def abort(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with tmp.open("wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    tmp.replace(path)
    fsync_dir(path.parent)


class SourceReader:
    """One source of a set, as a BackupTarget's `restore` reads it."""

    def __init__(self, backup_set: BackupSet, entry: SourceEntry, key: bytes | None) -> None:
        self.set, self.entry, self._key = backup_set, entry, key

    @property
    def files(self) -> list[FileEntry]:
        return self.entry.files

    @property
    def meta(self) -> dict[str, Any]:
        return self.entry.meta

    def check(self) -> None:
        """Refuse a source whose stored files lie outside the set, before anything is restored."""
        for file in self.files:
            self.set.stored_path(file)

    def chunks(self, file: FileEntry) -> Iterator[bytes]:
        """The original bytes; raises BackupError naming the file if they do not match the manifest."""
        name = f"{self.set.id}/{self.entry.name}/{file.path}"
        digest, size = hashlib.sha256(), 0
        stored = self.set.stored_path(file)
        for chunk in codec.read_stored(stored, compressed=file.compressed, key=self._key, name=name):
            digest.update(chunk)
            size += len(chunk)
            yield chunk
        if size != file.size or digest.hexdigest() != file.sha256:
            raise BackupError(f"{name}: checksum mismatch (damaged in the set)")

    def extract(self, file: FileEntry, to: Path) -> None:
        """Write the file to `to` atomically (temp name, fsync, rename), checked against the manifest."""
        tmp = to.with_name(f".{to.name}{RESTORE_SUFFIX}")
        try:
            to.parent.mkdir(parents=True, exist_ok=True)
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()  # a leftover, or a planted symlink: never written through
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
            with os.fdopen(fd, "wb") as fh:
                for chunk in self.chunks(file):
                    fh.write(chunk)
                fh.flush()
                os.fsync(fh.fileno())
            tmp.replace(to)
        except OSError as exc:
            raise BackupError(f"{self.entry.name}/{file.path}: cannot restore ({exc.strerror})") from None
        finally:
            with contextlib.suppress(OSError):
                tmp.unlink()


@dataclass(slots=True)
class BackupSet:
    dir: Path
    manifest: Manifest

    @property
    def id(self) -> str:
        return self.manifest.id

    def key(self, passphrase: str | None) -> bytes | None:
        enc = self.manifest.encryption
        if enc is None:
            return None
        if not passphrase:
            raise BackupError(f"set {self.id} is encrypted: set backup.encryption_key")
        try:
            salt = bytes.fromhex(enc["salt"])
        except ValueError:
            raise BackupError(f"set {self.id}: the manifest is damaged (the salt is not hex)") from None
        key = codec.derive_key(passphrase, salt)
        if codec.key_check(key) != enc["key_check"]:
            raise BackupError(f"set {self.id} was encrypted with another key than backup.encryption_key")
        return key

    def reader(self, source: str, passphrase: str | None) -> SourceReader:
        return SourceReader(self, self.manifest.source(source), self.key(passphrase))

    def stored_path(self, file: FileEntry) -> Path:
        """Where a file's stored bytes are; BackupError when the manifest points outside the set."""
        try:
            return contained(self.dir, file.stored)
        except BackupError:
            raise BackupError(f"set {self.id}: {file.path}: unsafe stored path {file.stored!r}") from None

    def check_stored(self, file: FileEntry) -> str | None:
        """Cheap check without the key: the stored bytes are the ones written. None when good."""
        try:
            safe_relpath(file.path)
        except BackupError:
            return "unsafe path in the manifest (empty, absolute or with ..)"
        try:
            path = self.stored_path(file)
        except BackupError:
            return f"unsafe stored path {file.stored!r} in the manifest (outside the set)"
        try:
            if path.stat().st_size != file.stored_size:
                return "stored size differs from the manifest"
            if codec.sha256_file(path) != file.stored_sha256:
                return "stored checksum differs from the manifest"
        except OSError as exc:
            return f"unreadable: {exc.strerror}"
        return None

    def verify(self, passphrase: str | None) -> list[str]:
        """Every file's stored bytes and original bytes against the manifest; one line per problem."""
        problems: list[str] = []
        key = self.key(passphrase)
        for source in self.manifest.sources:
            reader = SourceReader(self, source, key)
            for file in source.files:
                where = f"{source.name}/{file.path}"
                trouble = self.check_stored(file)
                if trouble is not None:
                    problems.append(f"{where}: {trouble}")
                    continue
                try:
                    # reading every chunk is the check: decryption, decompression and the
                    # checksum are verified as the file streams through
                    for _ in reader.chunks(file):
                        pass
                except BackupError as exc:
                    problems.append(f"{where}: {str(exc).rsplit(': ', 1)[-1]}")
        return problems


def read_set(directory: Path) -> BackupSet:
    """The set in `directory`; BackupError naming the set (not the server path) when it is not a good one."""
    name = directory.name
    path = directory / MANIFEST
    try:
        size = path.stat().st_size
        if size > MAX_MANIFEST_BYTES:
            raise BackupError(f"set {name}: the manifest is damaged ({size} bytes, over {MAX_MANIFEST_BYTES})")
        manifest = Manifest.from_json(path.read_text())
    except FileNotFoundError:
        raise BackupError(f"set {name}: not a backup set (no manifest)") from None
    except OSError as exc:
        raise BackupError(f"set {name}: the manifest cannot be read ({exc.strerror})") from None
    except (ValueError, RecursionError, MemoryError) as exc:  # RecursionError: JSON nested too deep
        raise BackupError(f"set {name}: the manifest is damaged ({str(exc)[:200]})") from None
    if manifest.id != name:
        # prune deletes by id and restore names sets by id: one that claims another id is not trusted
        raise BackupError(f"set {name}: the manifest is damaged (it names set {manifest.id[:80]!r})")
    return BackupSet(directory, manifest)


def list_sets(destination: Path) -> list[BackupSet]:
    """Complete sets in `destination`, oldest first. Partial and unreadable directories are left out."""
    if not destination.is_dir():
        return []
    sets = []
    for child in destination.iterdir():
        if child.name.startswith(".") or not child.is_dir() or not (child / MANIFEST).is_file():
            continue
        with contextlib.suppress(BackupError):
            sets.append(read_set(child))
    return sorted(sets, key=lambda s: (s.manifest.started_at, s.id))


def partial_dirs(destination: Path) -> list[Path]:
    if not destination.is_dir():
        return []
    return sorted(p for p in destination.iterdir() if p.name.startswith(PARTIAL))


def copy_set(backup_set: BackupSet, destination: Path) -> BackupSet:
    """Copy a set to another destination (the off-site copy), checking every stored checksum on the way."""
    destination.mkdir(parents=True, exist_ok=True)
    final = destination / backup_set.id
    if (final / MANIFEST).is_file():
        return read_set(final)
    tmp = destination / f"{PARTIAL}{backup_set.id}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        for source in backup_set.manifest.sources:
            for file in source.files:
                stored = backup_set.stored_path(file)
                dest = contained(tmp, file.stored)
                dest.parent.mkdir(parents=True, exist_ok=True)
                digest = hashlib.sha256()
                with dest.open("wb") as out:
                    for chunk in codec.file_chunks(stored):
                        digest.update(chunk)
                        out.write(chunk)
                    out.flush()
                    os.fsync(out.fileno())
                if digest.hexdigest() != file.stored_sha256:
                    raise BackupError(f"{backup_set.id}/{source.name}/{file.path}: changed while copying")
                fsync_dir(dest.parent)
        _write_atomic(tmp / MANIFEST, (backup_set.dir / MANIFEST).read_bytes())
        tmp.rename(final)
        fsync_dir(destination)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return BackupSet(final, backup_set.manifest)
