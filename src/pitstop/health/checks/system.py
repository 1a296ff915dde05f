"""Host checks: cpu, memory, disk, and processes / services."""

from __future__ import annotations

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
    try:
        pid = int(path.read_text().strip())
    except FileNotFoundError:
        return False, 0, f"no pid file {path}"
    except ValueError:
        return False, 0, f"pid file {path} holds no pid"
    if not psutil.pid_exists(pid):
        return False, 0, f"pid {pid} from {path} is not running"
    try:
        zombie = psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False, 0, f"pid {pid} from {path} is not running"
    if zombie:
        return False, 0, f"pid {pid} from {path} is a zombie"
    return True, 1, f"pid {pid} running"
