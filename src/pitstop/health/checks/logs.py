"""Log file check: new ERROR lines, read incrementally, surviving rotation and truncation."""

from __future__ import annotations

import re
from collections import deque
from pathlib import Path
from typing import Any

from pitstop.health.base import Check, CheckContext, CheckResult, Threshold


class LogFileCheck(Check):
    """Counts new lines matching `pattern` (default ERROR) in file `target` since the previous run.

    Observed: errors_window (matches within `window_s`, default 24 h), errors_per_min (since the
    previous run). The first run starts at the end of the file unless params.from_start is true.
    When the file is rotated (a new inode), the rest of the old file is read before the new one.
    """

    name = "logfile"
    issue = "log.errors"
    default_thresholds = (Threshold("errors_window", "above", warning=1, critical=100, target=0),)

    def configure(self, **params: Any) -> None:
        if unknown := set(params) - {"pattern", "window_s", "from_start"}:
            raise ValueError(f"logfile check: unknown parameter(s) {', '.join(sorted(unknown))}")
        self.pattern = re.compile(str(params.get("pattern", r"\bERROR\b")))
        self.window_s = float(params.get("window_s", 86400))
        self.from_start = bool(params.get("from_start", False))
        self._inode: tuple[int, int] | None = None  # the file read so far, and how far
        self._offset = 0
        self._seen: deque[tuple[float, int]] = deque()
        self._last_run: float | None = None

    def _count(self, path: Path, offset: int) -> tuple[int, int]:
        """Matches in complete lines after `offset`, and the offset after the last complete line."""
        found = 0
        with path.open("rb") as fh:
            fh.seek(offset)
            for line in fh:
                if not line.endswith(b"\n"):  # a line still being written: read it next time
                    break
                offset += len(line)
                if self.pattern.search(line.decode("utf-8", "replace")):
                    found += 1
        return found, offset

    def _rotated_to(self, path: Path) -> Path | None:
        """Where the file we were reading went (app.log -> app.log.1), found by its inode."""
        for sibling in path.parent.glob(path.name + "*"):
            try:
                st = sibling.stat()
            except OSError:
                continue
            if (st.st_dev, st.st_ino) == self._inode:
                return sibling
        return None

    def run(self, ctx: CheckContext, /) -> CheckResult:
        path = Path(self.target)
        new = 0
        try:
            st = path.stat()
        except FileNotFoundError:
            st = None
        inode = (st.st_dev, st.st_ino) if st else None
        if self._inode is not None and inode != self._inode:  # rotated: finish the old file first
            old = self._rotated_to(path)
            if old is not None:
                new += self._count(old, self._offset)[0]
            self._offset = 0
        elif st is not None and self._inode is None and not self.from_start:
            self._offset = st.st_size  # the first run starts at the end
            while self._offset and not _ends_line(path, self._offset):
                self._offset -= 1
        if st is not None and st.st_size < self._offset:
            self._offset = 0  # truncated in place (copytruncate)
        self._inode = inode
        if st is not None:
            found, self._offset = self._count(path, self._offset)
            new += found
        now = ctx.clock.now().timestamp()
        if new:
            self._seen.append((now, new))
        while self._seen and self._seen[0][0] <= now - self.window_s:
            self._seen.popleft()
        in_window = sum(n for _, n in self._seen)
        minutes = (now - self._last_run) / 60 if self._last_run is not None and now > self._last_run else 0.0
        self._last_run = now
        observed = {"errors_window": float(in_window), "new_errors": float(new)}
        if minutes:
            observed["errors_per_min"] = new / minutes
        hours = self.window_s / 3600
        where = self.target if st is not None else f"{self.target} (missing)"
        return self.judge(ctx, observed, f"{where}: {in_window} error line(s) in {hours:g} h, {new} new")


def _ends_line(path: Path, offset: int) -> bool:
    with path.open("rb") as fh:
        fh.seek(offset - 1)
        return fh.read(1) == b"\n"
