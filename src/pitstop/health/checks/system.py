"""Host checks: cpu, memory, disk, and processes / services (up, and their memory)."""

from __future__ import annotations

import re
import shlex
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import psutil

from pitstop.core.types import Status
from pitstop.health.base import Check, CheckContext, CheckResult, Threshold

CpuTimes = Callable[[], tuple[float, float]]
# The first round of a target has no earlier reading: it measures over this interval.
FIRST_INTERVAL_S = 0.1
PIDFILE_MAX_BYTES = 4096


def proc_cpu_times() -> tuple[float, float]:
    """Busy and total CPU seconds since boot over all CPUs (/proc/stat on Linux, through psutil).

    Idle and iowait are not busy; guest time is already counted in user and nice on Linux, so it
    is left out of the total."""
    t = psutil.cpu_times()
    total = float(sum(t)) - float(getattr(t, "guest", 0.0)) - float(getattr(t, "guest_nice", 0.0))
    busy = total - float(t.idle) - float(getattr(t, "iowait", 0.0))
    return busy, total


# The last reading per (target, source): kept by the process, so a new runner (the inventory or the
# settings changed) goes on from the previous round instead of starting over with a snapshot.
_last: dict[tuple[str, CpuTimes], tuple[float, float]] = {}
_lock = threading.Lock()


class CpuCheck(Check):
    """CPU use averaged since the previous round of this target, from the deltas of the cumulative
    CPU times (/proc/stat); the first round measures over 0.1 s. A burst between two rounds counts
    for its share of the interval, not as the whole picture.

    ``CheckContext.extra["cpu_times"]``, when given, is the source of (busy, total) seconds (tests)."""

    default_target = "localhost"
    name = "cpu"
    issue = "cpu.high"
    default_thresholds = (Threshold("cpu_pct", "above", warning=70, critical=90, target=50, clear=65),)

    def run(self, ctx: CheckContext, /) -> CheckResult:
        source: CpuTimes = ctx.extra.get("cpu_times", proc_cpu_times)
        key = (self.target, source)
        with _lock:
            last = _last.get(key)
        if last is None:
            last = source()
            time.sleep(FIRST_INTERVAL_S)
        now = source()
        with _lock:
            _last[key] = now
        busy, total = now[0] - last[0], now[1] - last[1]
        if total <= 0.0:  # no time passed (or the counters went back: a restart of the source)
            return self.result(ctx, Status.UNKNOWN, "cpu: no CPU time elapsed since the previous round")
        pct = round(min(max(100.0 * busy / total, 0.0), 100.0), 3)
        seconds = total / max(psutil.cpu_count() or 1, 1)
        return self.judge(ctx, {"cpu_pct": pct}, f"cpu {pct:.0f}% used (average over {seconds:.1f} s)")


class MemoryCheck(Check):
    default_target = "localhost"
    name = "memory"
    issue = "memory.high"
    default_thresholds = (Threshold("mem_pct", "above", warning=80, critical=95, target=60, clear=75),)

    def run(self, ctx: CheckContext, /) -> CheckResult:
        mem = psutil.virtual_memory()
        return self.judge(
            ctx,
            {"mem_pct": float(mem.percent), "available_bytes": float(mem.available)},
            f"memory {mem.percent:.0f}% used",
        )


class DiskCheck(Check):
    """Free space of the file system holding `target` (a path), in percent and bytes."""

    default_target = "{data_dir}"
    name = "disk"
    issue = "disk.low"
    default_thresholds = (Threshold("free_pct", "below", warning=20, critical=10, target=30, clear=22),)

    def run(self, ctx: CheckContext, /) -> CheckResult:
        try:
            usage = psutil.disk_usage(self.target)
        except FileNotFoundError:
            return self.result(ctx, Status.CRITICAL, f"{self.target} does not exist")
        free_pct = 100.0 * usage.free / usage.total if usage.total else 0.0
        gib = usage.free / 1024**3
        return self.judge(
            ctx,
            {"free_pct": round(free_pct, 3), "free_bytes": float(usage.free), "total_bytes": float(usage.total)},
            f"{self.target}: {free_pct:.1f}% free ({gib:.1f} GiB)",
        )


class ProcessCheck(Check):
    """A process or service is up: by pid file, by process name, or by a status command (exit 0 = up).

    target is a label for it; params: pidfile, process (name), command, min_count (default 1).
    """

    name = "process"
    issue = "service.down"
    timeout_s: ClassVar[float] = 15.0

    def configure(self, **params: Any) -> None:
        known = {"pidfile", "process", "command", "min_count"}
        if unknown := set(params) - known:
            raise ValueError(f"process check: unknown parameter(s) {', '.join(sorted(unknown))}")
        ways = [k for k in ("pidfile", "process", "command") if params.get(k)]
        if len(ways) != 1:
            raise ValueError("process check: give exactly one of pidfile, process, command")
        self.way, self.how = ways[0], params[ways[0]]
        self.min_count = int(params.get("min_count", 1))

    def run(self, ctx: CheckContext, /) -> CheckResult:
        if self.way == "pidfile":
            up, count, why = _by_pidfile(Path(self.how))
        elif self.way == "process":
            count = sum(1 for p in psutil.process_iter(["name"]) if p.info["name"] == self.how)
            up, why = count >= self.min_count, f"{count} process(es) named {self.how!r}"
        else:
            argv = shlex.split(self.how) if isinstance(self.how, str) else [str(a) for a in self.how]
            done = subprocess.run(argv, capture_output=True, timeout=self.timeout_s - 1, check=False)
            count = 1 if done.returncode == 0 else 0
            up, why = done.returncode == 0, f"status command exited {done.returncode}"
        status = Status.HEALTHY if up else Status.CRITICAL
        return self.result(
            ctx,
            status,
            f"{self.target} {'up' if up else 'down'}: {why}",
            observed={"up": float(up), "count": float(count)},
        )


def _by_pidfile(path: Path) -> tuple[bool, int, str]:
    process, why = pidfile_process(path)
    return process is not None, int(process is not None), why


def pidfile_process(path: Path) -> tuple[psutil.Process | None, str]:
    """The live process whose pid `path` holds, or None; and why, in words."""
    try:
        with path.open("rb") as f:
            pid = int(f.read(PIDFILE_MAX_BYTES).strip())  # bounded: a path like /dev/zero never ends
    except FileNotFoundError:
        return None, f"no pid file {path}"
    except ValueError:
        return None, f"pid file {path} holds no pid"
    if not 0 < pid < 2**31:  # no process has it (psutil cannot even look it up)
        return None, f"pid file {path} holds no pid"
    if not psutil.pid_exists(pid):
        return None, f"pid {pid} from {path} is not running"
    try:
        process = psutil.Process(pid)
        zombie = process.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return None, f"pid {pid} from {path} is not running"
    if zombie:
        return None, f"pid {pid} from {path} is a zombie"
    return process, f"pid {pid} running"


MIB = 1024**2
MAX_PATTERN_CHARS = 500


class ProcessMemoryCheck(Check):
    """Resident memory (RSS) of a process or service, found the ways `process` finds it: by pid
    file (`pidfile`), process name (`process`, every process of that name) or a regular expression
    searched in the command line (`cmdline`, every process whose arguments, joined by spaces,
    match). target is a label for it. Nothing found is critical ("not running").

    Observed: ``rss_mb`` (MB of 2^20 bytes, summed over the processes found), ``rss_pct`` (of the
    machine's memory) and ``count``. No levels by default: set ``thresholds.rss_mb`` (or
    ``rss_pct``) on the entry, e.g. `{ warning = 1500, critical = 3000 }`."""

    name = "process_memory"
    issue = "process.memory"
    timeout_s: ClassVar[float] = 15.0

    def configure(self, **params: Any) -> None:
        if unknown := set(params) - {"pidfile", "process", "cmdline"}:
            raise ValueError(f"process_memory check: unknown parameter(s) {', '.join(sorted(unknown))}")
        ways = [k for k in ("pidfile", "process", "cmdline") if k in params]
        if len(ways) != 1:
            raise ValueError("process_memory check: give exactly one of pidfile, process, cmdline")
        self.way, how = ways[0], params[ways[0]]
        if not isinstance(how, str) or not how.strip() or len(how) > MAX_PATTERN_CHARS or "\0" in how:
            raise ValueError(
                f"process_memory check: {self.way} must be a non-empty text of at most 500 characters, without NUL"
            )
        self.how = how
        self.pattern: re.Pattern[str] | None = None
        if self.way == "cmdline":
            try:
                self.pattern = re.compile(how)
            except re.error as exc:
                raise ValueError(f"process_memory check: cmdline is not a regular expression: {exc}") from None

    def run(self, ctx: CheckContext, /) -> CheckResult:
        processes, why = self._find()
        rss, counted, denied = 0, 0, 0
        for process in processes:
            try:
                rss += process.memory_info().rss
                counted += 1
            except (psutil.NoSuchProcess, psutil.ZombieProcess):
                continue  # ended since it was found
            except psutil.AccessDenied:
                denied += 1
        if not counted:
            if denied:
                return self.result(ctx, Status.UNKNOWN, f"{self.target}: {why}, but may not read their memory")
            observed = {"rss_mb": 0.0, "rss_pct": 0.0, "count": 0.0}
            return self.result(ctx, Status.CRITICAL, f"{self.target} not running: {why}", observed=observed)
        total = psutil.virtual_memory().total
        mb, pct = rss / MIB, 100.0 * rss / total if total else 0.0
        many = f" in {counted} processes" if counted > 1 else ""
        return self.judge(
            ctx,
            {"rss_mb": round(mb, 3), "rss_pct": round(pct, 3), "count": float(counted)},
            f"{self.target}: {mb:.0f} MB resident{many} ({pct:.1f}% of memory)",
        )

    def _find(self) -> tuple[list[psutil.Process], str]:
        """The live processes the check watches, and what was found in words."""
        if self.way == "pidfile":
            process, why = pidfile_process(Path(self.how))
            return ([process] if process else []), why
        if self.way == "process":
            found = [p for p in psutil.process_iter(["name", "status"]) if p.info["name"] == self.how and _alive(p)]
            return found, f"{len(found)} process(es) named {self.how!r}"
        assert self.pattern is not None
        found = []
        for p in psutil.process_iter(["cmdline", "status"]):
            argv = p.info["cmdline"]  # None when it may not be read (another user's, on some systems)
            if argv and self.pattern.search(" ".join(argv)) and _alive(p):
                found.append(p)
        return found, f"{len(found)} process(es) whose command line matches {self.how!r}"


def _alive(process: psutil.Process) -> bool:
    return bool(process.info["status"] != psutil.STATUS_ZOMBIE)
