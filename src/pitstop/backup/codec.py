"""How one file is stored in a set: gzip-compressed, optionally AES-256-GCM encrypted, hashed both ways.

Each file is stored on its own, so damage to one byte of a set spoils one file, and verification
names it. Encryption works in 1 MiB records; each record is sealed with a nonce of the file's random
prefix and the record number, and the last record is marked, so reordered, truncated or extended
files fail to decrypt instead of restoring wrong data.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import struct
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from pitstop.errors import BackupError

CHUNK = 1024 * 1024
MAGIC = b"PSBE1"  # pitstop backup, encrypted, format 1
_RECORD = struct.Struct(">IB")  # ciphertext length, last-record flag
_KEY_CHECK = b"pitstop backup key check"


def derive_key(passphrase: str, salt: bytes) -> bytes:
    """A 256-bit key from the configured passphrase (scrypt, one salt per set)."""
    return hashlib.scrypt(passphrase.encode(), salt=salt, n=2**14, r=8, p=1, dklen=32)


def key_check(key: bytes) -> str:
    """A value stored in the manifest that tells a wrong key from a damaged file."""
    return hmac.new(key, _KEY_CHECK, hashlib.sha256).hexdigest()[:32]


@dataclass(frozen=True, slots=True)
class Stored:
    size: int
    sha256: str
    stored_size: int
    stored_sha256: str


def file_chunks(path: Path) -> Iterator[bytes]:
    with path.open("rb") as fh:
        while chunk := fh.read(CHUNK):
            yield chunk


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    for chunk in file_chunks(path):
        digest.update(chunk)
    return digest.hexdigest()


def write_stored(chunks: Iterable[bytes], dest: Path, *, level: int, key: bytes | None) -> Stored:
    """Compress (level 0 stores), encrypt when `key` is given, write and fsync `dest`."""
    plain, stored = hashlib.sha256(), hashlib.sha256()
    size = stored_size = 0
    compressor = zlib.compressobj(level, zlib.DEFLATED, 31) if level > 0 else None
    with dest.open("wb") as fh:
        sink = _Sink(fh, stored, key)
        for chunk in chunks:
            plain.update(chunk)
            size += len(chunk)
            sink.write(compressor.compress(chunk) if compressor else chunk)
        if compressor:
            sink.write(compressor.flush())
        sink.close()
        stored_size = sink.written
        fh.flush()
        os.fsync(fh.fileno())
    return Stored(size, plain.hexdigest(), stored_size, stored.hexdigest())


class _Sink:
    """Buffers output into CHUNK-sized pieces, encrypts them when keyed, hashes what it writes."""

    def __init__(self, fh: BinaryIO, digest: hashlib._Hash, key: bytes | None) -> None:
        self.fh, self.digest = fh, digest
        self.aead = AESGCM(key) if key else None
        self.prefix = os.urandom(8)
        self.counter = 0
        self.buffer = bytearray()
        self.written = 0
        if self.aead:
            self._emit(MAGIC + self.prefix)

    def _emit(self, data: bytes) -> None:
        self.fh.write(data)
        self.digest.update(data)
        self.written += len(data)

    def write(self, data: bytes) -> None:
        if not self.aead:
            if data:
                self._emit(data)
            return
        self.buffer += data
        while len(self.buffer) > CHUNK:
            self._seal(bytes(self.buffer[:CHUNK]), last=False)
            del self.buffer[:CHUNK]

    def close(self) -> None:
        if self.aead:
            self._seal(bytes(self.buffer), last=True)
            self.buffer.clear()

    def _seal(self, data: bytes, *, last: bool) -> None:
        assert self.aead is not None
        nonce = self.prefix + struct.pack(">I", self.counter)
        sealed = self.aead.encrypt(nonce, data, bytes([last]))
        self.counter += 1
        self._emit(_RECORD.pack(len(sealed), last) + sealed)


def read_stored(path: Path, *, compressed: bool, key: bytes | None, name: str) -> Iterator[bytes]:
    """The original bytes of a stored file. Damage raises BackupError naming `name`."""
    raw = _decrypt(path, key, name) if key else file_chunks(path)
    if not compressed:
        yield from raw
        return
    decompressor = zlib.decompressobj(31)
    try:
        for chunk in raw:
            out = decompressor.decompress(chunk)
            if out:
                yield out
        tail = decompressor.flush()
    except zlib.error as exc:
        raise BackupError(f"{name}: damaged (cannot decompress: {exc})") from None
    if tail:
        yield tail
    if not decompressor.eof:
        raise BackupError(f"{name}: damaged (truncated)")


def _decrypt(path: Path, key: bytes, name: str) -> Iterator[bytes]:
    aead = AESGCM(key)
    with path.open("rb") as fh:
        head = fh.read(len(MAGIC) + 8)
        if head[: len(MAGIC)] != MAGIC or len(head) != len(MAGIC) + 8:
            raise BackupError(f"{name}: damaged (not an encrypted pitstop file)")
        prefix, counter = head[len(MAGIC) :], 0
        while True:
            header = fh.read(_RECORD.size)
            if len(header) != _RECORD.size:
                raise BackupError(f"{name}: damaged (truncated)")
            length, last = _RECORD.unpack(header)
            sealed = fh.read(length)
            if len(sealed) != length:
                raise BackupError(f"{name}: damaged (truncated)")
            try:
                data = aead.decrypt(prefix + struct.pack(">I", counter), sealed, bytes([last]))
            except InvalidTag:
                raise BackupError(f"{name}: damaged (authentication failed in record {counter})") from None
            counter += 1
            yield data
            if last:
                if fh.read(1):
                    raise BackupError(f"{name}: damaged (data after the last record)")
                return
