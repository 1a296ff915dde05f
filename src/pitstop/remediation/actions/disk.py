"""free_disk and rotate_logs: repairs of files under a configured root.

Every path is resolved and checked against the root when planned and again when applied:
symlinks are never followed or removed, `..` never leaves the root, and nothing younger than
the floor is touched even if a stored plan names it.
"""

from __future__ import annotations

import fnmatch
import gzip
import math
import os
import shutil
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, ClassVar

from pitstop.incidents import Incident
from pitstop.remediation.base import Action, ActionContext, Outcome, Plan

COPY_CHUNK = 1024 * 1024


@dataclass(frozen=True, slots=True)
class FileInfo:
    rel: str
    size: int
    mtime: float


def _inside(root: Path, path: Path) -> bool:
    """`path` (not a symlink) resolves to somewhere under the resolved `root`."""
    try:
        return path.resolve(strict=True).is_relative_to(root)
    except OSError:
        return False


def _walk(root: Path) -> Iterator[tuple[Path, os.stat_result]]:
    """Regular files under `root` (resolved), never through or to a symlink."""
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        base = Path(dirpath)
        dirnames[:] = sorted(d for d in dirnames if not (base / d).is_symlink())
        for name in sorted(filenames):
            path = base / name
            try:
                st = path.lstat()
            except OSError:
                continue
            if stat.S_ISREG(st.st_mode) and _inside(root, path):
                yield path, st


def _safe_rel(rel: str) -> bool:
    parts = PurePosixPath(rel).parts
    return bool(parts) and not PurePosixPath(rel).is_absolute() and ".." not in parts and "\x00" not in rel


class FreeDisk(Action):
    """Delete (or gzip) the oldest files under `root` matching `patterns` until `target_free_pct` is free.

    params: root, patterns (["*"], fnmatch on the path relative to the root), target_free_pct,
    capacity_bytes (free % of this capacity for the directory; empty: of the file system),
    min_age_s (the floor: nothing younger is touched; 86400), mode (delete | compress).
    """

    name = "free_disk"
    destructive: ClassVar[bool] = True

    def configure(self, **params: Any) -> None:
        known = {"root", "patterns", "target_free_pct", "capacity_bytes", "min_age_s", "mode"}
        if unknown := set(params) - known:
            raise ValueError(f"free_disk: unknown parameter(s) {', '.join(sorted(unknown))}")
        if not isinstance(params.get("root"), str) or not params["root"]:
            raise ValueError("free_disk: give the root directory")
        self.root = Path(params["root"]).resolve()
        if self.root == Path(self.root.anchor):
            raise ValueError("free_disk: the root must not be the file system root")
        patterns = params.get("patterns", ["*"])
        if not isinstance(patterns, list) or not patterns or not all(isinstance(p, str) and p for p in patterns):
            raise ValueError("free_disk: patterns must be a list of glob patterns")
        if any(".." in PurePosixPath(p).parts or p.startswith("/") for p in patterns):
            raise ValueError("free_disk: patterns are relative to the root and must not contain '..'")
        self.patterns: list[str] = patterns
        self.target_free_pct = float(params.get("target_free_pct", 0))
        if not 0 < self.target_free_pct < 100:
            raise ValueError("free_disk: target_free_pct must be between 0 and 100")
        capacity = params.get("capacity_bytes")
        self.capacity = int(capacity) if capacity is not None else None
        if self.capacity is not None and self.capacity <= 0:
            raise ValueError("free_disk: capacity_bytes must be positive")
        self.min_age_s = float(params.get("min_age_s", 86400.0))
        if self.min_age_s < 0:
            raise ValueError("free_disk: min_age_s must not be negative")
        self.mode = params.get("mode", "delete")
        if self.mode not in ("delete", "compress"):
            raise ValueError("free_disk: mode must be delete or compress")

    def usage(self) -> tuple[int, int]:
        """(free bytes, total bytes) of the directory's capacity, or of its file system."""
        if self.capacity is not None:
            used = sum(st.st_size for _, st in _walk(self.root)) if self.root.is_dir() else 0
            return self.capacity - used, self.capacity
        usage = shutil.disk_usage(self.root)
        return usage.free, usage.total

    def _matches(self, rel: str) -> bool:
        if self.mode == "compress" and rel.endswith(".gz"):
            return False
        return any(fnmatch.fnmatchcase(rel, p) for p in self.patterns)

    def candidates(self, now_ts: float) -> list[FileInfo]:
        """Files old enough and matching, oldest first."""
        if not self.root.is_dir():
            return []
        found = [
            FileInfo(path.relative_to(self.root).as_posix(), st.st_size, st.st_mtime)
            for path, st in _walk(self.root)
            if st.st_mtime <= now_ts - self.min_age_s and self._matches(path.relative_to(self.root).as_posix())
        ]
        return sorted(found, key=lambda f: (f.mtime, f.rel))

    def plan(self, incident: Incident, ctx: ActionContext, /) -> Plan:
        free, total = self.usage()
        need = max(0, math.ceil(self.target_free_pct / 100 * total) - free)
        chosen: list[FileInfo] = []
        freed = 0
        for f in self.candidates(ctx.clock.now().timestamp()):
            if freed >= need:
                break
            chosen.append(f)
            freed += f.size if self.mode == "delete" else f.size // 2
        verb = "delete" if self.mode == "delete" else "gzip"
        before = 100 * free / total if total else 0.0
        after = 100 * (free + freed) / total if total else 0.0
        steps: tuple[str, ...] = (
            (f"{verb} {len(chosen)} file(s), {freed / 1e6:.1f} MB, oldest first, under {self.root}",)
            if chosen
            else (f"nothing to {verb} under {self.root}",)
        )
        steps += (f"free {before:.1f}% -> about {after:.1f}% (target {self.target_free_pct:g}%)",)
        return Plan(
            action=self.name,
            target=incident.target,
            steps=steps,
            destructive=self.destructive,
            params={
                "root": str(self.root),
                "mode": self.mode,
                "files": [f.rel for f in chosen],
                "free_pct_before": round(before, 3),
            },
        )

    def apply(self, plan: Plan, ctx: ActionContext, /) -> Outcome:
        started = ctx.clock.now()
        if Path(str(plan.params.get("root", ""))).resolve() != self.root:
            return self.outcome(plan, ctx, started, False, "the plan's root is not the configured root")
        floor = started.timestamp() - self.min_age_s
        done: list[str] = []
        refused: list[dict[str, str]] = []
        freed = 0
        for rel in [str(r) for r in plan.params.get("files", [])]:
            why = self._refusal(rel, floor)
            if why == "gone":
                continue  # removed before: applying again is a no-op
            if why:
                refused.append({"path": rel, "reason": why})
                continue
            path = self.root / rel
            size = path.lstat().st_size
            if self.mode == "compress":
                _gzip(path)
                freed += size - (path.with_name(path.name + ".gz")).stat().st_size
            else:
                path.unlink()
                freed += size
            done.append(rel)
        free, total = self.usage()
        pct = 100 * free / total if total else 0.0
        ok = pct >= self.target_free_pct
        verb = "removed" if self.mode == "delete" else "compressed"
        detail = f"{verb} {len(done)} file(s), {freed / 1e6:.1f} MB; {pct:.1f}% free (target {self.target_free_pct:g}%)"
        if refused:
            detail += f"; refused {len(refused)}"
        data = {verb: done, "refused": refused, "freed_bytes": freed, "free_pct_after": round(pct, 3)}
        return self.outcome(plan, ctx, started, ok, detail, data=data)

    def _refusal(self, rel: str, floor: float) -> str:
        if not _safe_rel(rel):
            return "not a plain path under the root"
        path = self.root / rel
        try:
            st = path.lstat()
        except (FileNotFoundError, NotADirectoryError):
            return "gone"
        except OSError as exc:
            return f"cannot be read: {exc.strerror or type(exc).__name__}"
        if stat.S_ISLNK(st.st_mode):
            return "a symlink"
        if not stat.S_ISREG(st.st_mode):
            return "not a regular file"
        if not _inside(self.root, path):
            return "outside the root"
        if st.st_mtime > floor:
            return "younger than the floor"
        if not self._matches(rel):
            return "does not match the patterns"
        return ""

    def verify(self, plan: Plan, ctx: ActionContext, /) -> tuple[bool, str] | None:
        free, total = self.usage()
        pct = 100 * free / total if total else 0.0
        return pct >= self.target_free_pct, f"{self.root}: {pct:.1f}% free (target {self.target_free_pct:g}%)"


def _gzip(path: Path) -> None:
    """path -> path.gz (written aside, then renamed), then the original removed; mtime kept."""
    dest = path.with_name(path.name + ".gz")
    tmp = path.with_name(f".{path.name}.gz.tmp")
    st = path.stat()
    with path.open("rb") as src, gzip.open(tmp, "wb", compresslevel=6) as out:
        shutil.copyfileobj(src, out, COPY_CHUNK)
    os.utime(tmp, (st.st_atime, st.st_mtime))
    tmp.replace(dest)
    path.unlink()


class RotateLogs(Action):
    """Rotate log files over `max_bytes`: copy to <name>.1.gz and truncate (the writer keeps its
    handle), shift older ones, keep `keep`. params: root, patterns (["*.log"]), max_bytes, keep (5)."""

    name = "rotate_logs"
    destructive: ClassVar[bool] = False

    def configure(self, **params: Any) -> None:
        if unknown := set(params) - {"root", "patterns", "max_bytes", "keep"}:
            raise ValueError(f"rotate_logs: unknown parameter(s) {', '.join(sorted(unknown))}")
        if not isinstance(params.get("root"), str) or not params["root"]:
            raise ValueError("rotate_logs: give the log directory as root")
        self.root = Path(params["root"]).resolve()
        patterns = params.get("patterns", ["*.log"])
        if not isinstance(patterns, list) or not all(isinstance(p, str) and ".." not in p for p in patterns):
            raise ValueError("rotate_logs: patterns must be a list of glob patterns without '..'")
        self.patterns: list[str] = patterns
        self.max_bytes = int(params.get("max_bytes", 100 * 1024**2))
        self.keep = int(params.get("keep", 5))
        if self.max_bytes < 1 or not 1 <= self.keep <= 1000:
            raise ValueError("rotate_logs: max_bytes must be positive and keep between 1 and 1000")

    def _over(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return [
            path.relative_to(self.root).as_posix()
            for path, st in _walk(self.root)
            if st.st_size > self.max_bytes
            and any(fnmatch.fnmatchcase(path.relative_to(self.root).as_posix(), p) for p in self.patterns)
        ]

    def plan(self, incident: Incident, ctx: ActionContext, /) -> Plan:
        files = self._over()
        steps = tuple(f"rotate {f} -> {f}.1.gz, keep {self.keep}" for f in files) or (
            f"no log over {self.max_bytes} bytes under {self.root}",
        )
        return Plan(self.name, incident.target, steps, self.destructive, {"root": str(self.root), "files": files})

    def apply(self, plan: Plan, ctx: ActionContext, /) -> Outcome:
        started = ctx.clock.now()
        rotated: list[str] = []
        for rel in [str(r) for r in plan.params.get("files", [])]:
            path = self.root / rel
            if not _safe_rel(rel) or path.is_symlink() or not path.is_file() or not _inside(self.root, path):
                continue
            if path.stat().st_size <= self.max_bytes:
                continue  # rotated already
            for i in range(self.keep, 0, -1):
                older = path.with_name(f"{path.name}.{i}.gz")
                if older.exists() and not older.is_symlink():
                    if i == self.keep:
                        older.unlink()
                    else:
                        older.replace(path.with_name(f"{path.name}.{i + 1}.gz"))
            tmp = path.with_name(f".{path.name}.1.gz.tmp")
            with path.open("rb") as src, gzip.open(tmp, "wb", compresslevel=6) as out:
                shutil.copyfileobj(src, out, COPY_CHUNK)
            tmp.replace(path.with_name(f"{path.name}.1.gz"))
            with path.open("r+b") as handle:
                handle.truncate(0)
            rotated.append(rel)
        left = self._over()
        ok = not left
        detail = f"rotated {len(rotated)} log(s)" + (f"; still over the size: {', '.join(left[:5])}" if left else "")
        return self.outcome(plan, ctx, started, ok, detail, data={"rotated": rotated})

    def verify(self, plan: Plan, ctx: ActionContext, /) -> tuple[bool, str] | None:
        left = self._over()
        return not left, "every log under the size" if not left else f"over the size: {', '.join(left[:5])}"
