"""Backup sets on disk: a directory of stored files and a manifest, published atomically.

A set is written under `<destination>/.partial-<id>/`, every file fsynced, the manifest written
last, then the directory is renamed to `<destination>/<id>/` and the destination fsynced. Only a
directory with a plain name and a manifest is a set: a crash at any point leaves a `.partial-`
directory that `list_sets` ignores and `prune` removes.
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
        data = json.loads(text)
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
        if data.get("format") != FORMAT:
            raise ValueError(f"unknown manifest format {data.get('format')!r}")
        sources = [
            SourceEntry(
                name=s["name"],
                kind=s["kind"],
                location=s["location"],
                meta=s["meta"],
                files=[FileEntry(**f) for f in s["files"]],
            )
            for s in data["sources"]
        ]
        return cls(
            id=data["id"],
            pitstop_version=data["pitstop_version"],
            reason=data["reason"],
            started_at=datetime.fromisoformat(data["started_at"]),
            finished_at=datetime.fromisoformat(data["finished_at"]),
            compression_level=data["compression_level"],
            encryption=data["encryption"],
            sources=sources,
        )


def safe_relpath(path: str) -> str:
    """A relative posix path that stays inside its root, or BackupError."""
    pure = PurePosixPath(path)
    if not path or pure.is_absolute() or ".." in pure.parts or "\\" in path or "\x00" in path:
        raise BackupError(f"unsafe path in backup: {path!r}")
    return pure.as_posix()


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

    def chunks(self, file: FileEntry) -> Iterator[bytes]:
        """The original bytes; raises BackupError naming the file if they do not match the manifest."""
        name = f"{self.set.id}/{self.entry.name}/{file.path}"
        digest, size = hashlib.sha256(), 0
        stored = self.set.dir / file.stored
        for chunk in codec.read_stored(stored, compressed=file.compressed, key=self._key, name=name):
            digest.update(chunk)
            size += len(chunk)
            yield chunk
        if size != file.size or digest.hexdigest() != file.sha256:
            raise BackupError(f"{name}: checksum mismatch (damaged in the set)")

    def extract(self, file: FileEntry, to: Path) -> None:
        """Write the file to `to` atomically (temp name, fsync, rename), checked against the manifest."""
        to.parent.mkdir(parents=True, exist_ok=True)
        tmp = to.with_name(f".{to.name}.pitstop-restore")
        try:
            with tmp.open("wb") as fh:
                for chunk in self.chunks(file):
                    fh.write(chunk)
                fh.flush()
                os.fsync(fh.fileno())
            tmp.replace(to)
        finally:
            with contextlib.suppress(FileNotFoundError):
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
        key = codec.derive_key(passphrase, bytes.fromhex(enc["salt"]))
        if codec.key_check(key) != enc["key_check"]:
            raise BackupError(f"set {self.id} was encrypted with another key than backup.encryption_key")
        return key

    def reader(self, source: str, passphrase: str | None) -> SourceReader:
        return SourceReader(self, self.manifest.source(source), self.key(passphrase))

    def check_stored(self, file: FileEntry) -> str | None:
        """Cheap check without the key: the stored bytes are the ones written. None when good."""
        path = self.dir / file.stored
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
    try:
        manifest = Manifest.from_json((directory / MANIFEST).read_text())
    except FileNotFoundError:
        raise BackupError(f"{directory} is not a backup set (no manifest)") from None
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise BackupError(f"{directory}: the manifest is damaged ({exc!r})") from None
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
                dest = tmp / file.stored
                dest.parent.mkdir(parents=True, exist_ok=True)
                digest = hashlib.sha256()
                with dest.open("wb") as out:
                    for chunk in codec.file_chunks(backup_set.dir / file.stored):
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
