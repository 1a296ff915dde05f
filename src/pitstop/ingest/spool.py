"""Store-and-forward: accepted readings wait on disk while the database is down.

Each entry is one file `<seq>.npz` under the spool directory (validated reading columns, the
quarantined rows and the source), written to a temporary name, fsync'd, renamed, and the directory
fsync'd: an entry either exists whole or not at all. Entries are flushed in sequence order and
deleted only after their transaction committed. Files are never rewritten, only added and removed.
"""

from __future__ import annotations

import json
import os
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pitstop.errors import SpoolFull
from pitstop.ingest.validate import Quarantined
from pitstop.storage.repos.readings import ReadingBatch


@dataclass(frozen=True)
class SpoolEntry:
    path: Path
    batch: ReadingBatch
    quarantined: list[Quarantined]
    source: str


class Spool:
    def __init__(self, directory: Path, max_bytes: int) -> None:
        self.directory = directory
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self._sizes: dict[Path, int] = {}
        self._seq = 0
        if directory.exists():
            for path in directory.glob("*.tmp"):
                path.unlink()  # a write that never completed was never acknowledged
            for path in self._paths():
                self._sizes[path] = path.stat().st_size
                self._seq = max(self._seq, int(path.stem))

    def _paths(self) -> list[Path]:
        return sorted(self.directory.glob("*.npz"))

    @property
    def size_bytes(self) -> int:
        return sum(self._sizes.values())

    def __len__(self) -> int:
        return len(self._sizes)

    def append(self, batch: ReadingBatch, quarantined: list[Quarantined], source: str) -> None:
        """Write one entry durably; SpoolFull (and nothing written) when the cap would be passed."""
        meta = json.dumps({"source": source, "quarantined": [[q.payload, q.reason] for q in quarantined]})
        with self._lock:
            estimate = len(batch) * 16 + len(meta) + 1024
            if self.size_bytes + estimate > self.max_bytes:
                raise SpoolFull(
                    f"the database is unavailable and the spool {self.directory} is full "
                    f"({self.size_bytes} of {self.max_bytes} bytes): readings are refused until it drains"
                )
            self._seq += 1
            final = self.directory / f"{self._seq:012d}.npz"
            tmp = final.with_suffix(".tmp")
            try:
                self.directory.mkdir(parents=True, exist_ok=True)
                with tmp.open("wb") as fh:
                    np.savez(fh, sensor_id=batch.sensor_id, ts_us=batch.ts_us, value=batch.value, meta=np.array(meta))
                    fh.flush()
                    os.fsync(fh.fileno())
                tmp.rename(final)
                _fsync_dir(self.directory)
            except OSError as exc:  # the disk is full (or failing): nothing half-written stays behind
                tmp.unlink(missing_ok=True)
                raise SpoolFull(
                    f"the database is unavailable and the spool cannot be written "
                    f"({os.strerror(exc.errno) if exc.errno else exc}): readings are refused until there is room"
                ) from exc
            self._sizes[final] = final.stat().st_size

    def writable(self) -> bool:
        """Whether an entry could be written now: below the cap, and a small file can be written
        and synced in the directory (a probe while readings are refused)."""
        if self.size_bytes + 1024 > self.max_bytes:
            return False
        probe = self.directory / "probe.tmp"
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            with probe.open("wb") as fh:
                fh.write(b"\0" * 4096)
                fh.flush()
                os.fsync(fh.fileno())
        except OSError:
            return False
        finally:
            probe.unlink(missing_ok=True)
        return True

    def entries(self) -> list[Path]:
        with self._lock:
            return sorted(self._sizes)

    @staticmethod
    def read(path: Path) -> SpoolEntry:
        with np.load(path, allow_pickle=False) as data:
            meta = json.loads(str(data["meta"]))
            batch = ReadingBatch.of(data["sensor_id"], data["ts_us"], data["value"])
        quarantined = [Quarantined(p, r) for p, r in meta["quarantined"]]
        return SpoolEntry(path, batch, quarantined, str(meta["source"]))

    def remove(self, path: Path) -> None:
        with self._lock:
            path.unlink(missing_ok=True)
            self._sizes.pop(path, None)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
