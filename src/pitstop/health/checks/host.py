"""The `network` check: a network interface of the machine pitstop runs on, from the kernel's
per-interface counters (errors, drops, bytes) as deltas between rounds, and its link state."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import psutil

from pitstop.core.types import Status
from pitstop.health.base import Check, CheckContext, CheckResult, Threshold
from pitstop.health.checks.system import FIRST_INTERVAL_S


class NicCounters(NamedTuple):
    """One interface's cumulative counters since it came up (the kernel's, through psutil)."""

    rx_bytes: int
    tx_bytes: int
    errors_in: int
    errors_out: int
    drops_in: int
    drops_out: int


NicSource = Callable[[], Mapping[str, NicCounters]]


def nic_counters() -> dict[str, NicCounters]:
    return {
        nic: NicCounters(c.bytes_recv, c.bytes_sent, c.errin, c.errout, c.dropin, c.dropout)
        for nic, c in psutil.net_io_counters(pernic=True).items()
    }


# The last counters per (target, source), with when they were read (time.perf_counter): kept by
# the process, like the cpu check's, so a new runner goes on from the previous round.
_last: dict[tuple[str, NicSource], tuple[float, dict[str, NicCounters]]] = {}
_lock = threading.Lock()
MAX_NAME_CHARS = 64


class NetworkCheck(Check):
    """Interface `target` (e.g. "eth0") of the machine pitstop runs on: errors, drops and
    throughput since the target's previous round, from the kernel's cumulative counters (psutil);
    the first round measures over 0.1 s. The target `*` sums every interface that is up (has
    carrier), the loopback aside; an interface that goes down simply leaves `*`, so name an
    interface to have its link judged. A named interface that does not exist is critical ("no
    interface eth9"). Counters that went down (the interface was re-created, or a driver reset
    them) count from zero: the round reads what was counted since, never a negative.

    Observed: ``rx_bytes_per_s``, ``tx_bytes_per_s``; in the interval ``rx_bytes``, ``tx_bytes``,
    ``errors`` (in + out), ``errors_in``, ``errors_out``, ``drops``, ``drops_in``, ``drops_out``;
    ``errors_per_s``, ``drops_per_s``, ``interval_s``; ``link_up`` (1 or 0) for a named interface,
    ``interfaces`` (how many) for `*`. Default levels: ``link_up`` under 1 is critical,
    ``errors_per_s`` from 1 a warning and from 10 critical; none on drops (kernels count dropped
    frames of unknown protocols too) or throughput.

    ``CheckContext.extra["net_counters"]``, when given, is the source of the counters (tests)."""

    default_target = "*"
    name = "network"
    issue = "network.interface"
    default_thresholds = (
        Threshold("link_up", "below", critical=1),
        Threshold("errors_per_s", "above", warning=1, critical=10, target=0),
    )

    def configure(self, **params: Any) -> None:
        super().configure(**params)
        name = self.target
        if not name or len(name) > MAX_NAME_CHARS or not name.isprintable() or "/" in name:
            raise ValueError(f"network check: target must be an interface name or '*', got {name[:80]!r}")

    def run(self, ctx: CheckContext, /) -> CheckResult:
        source: NicSource = ctx.extra.get("net_counters", nic_counters)
        stats = psutil.net_if_stats()
        now = (time.perf_counter(), dict(source()))
        counters = now[1]
        if self.target == "*":
            nics = sorted(n for n, s in stats.items() if s.isup and not _loopback(n, s.flags) and n in counters)
            if not nics:
                none = {"interfaces": 0.0}
                return self.result(ctx, Status.CRITICAL, "no network interface is up (loopback aside)", observed=none)
        elif self.target not in counters:
            known = ", ".join(sorted(counters)[:20])
            return self.result(ctx, Status.CRITICAL, f"no interface {self.target} (interfaces: {known})")
        else:
            nics = [self.target]
        key = (self.target, source)
        with _lock:
            last = _last.get(key)
        if last is None:  # the first round of this target: measure over a short interval
            last = now
            time.sleep(FIRST_INTERVAL_S)
            now = (time.perf_counter(), dict(source()))
            counters = now[1]
        with _lock:
            _last[key] = now
        seconds = max(now[0] - last[0], 1e-6)
        delta = [0] * len(NicCounters._fields)
        for nic in nics:
            before = last[1].get(nic)
            if before is None or nic not in counters:  # came (or went) since the previous round
                continue
            for i, (new, old) in enumerate(zip(counters[nic], before, strict=True)):
                delta[i] += new - old if new >= old else new  # went down: a restart, counted from zero
        d = NicCounters(*delta)
        errors, drops = d.errors_in + d.errors_out, d.drops_in + d.drops_out
        observed: dict[str, float] = {
            "rx_bytes": float(d.rx_bytes),
            "tx_bytes": float(d.tx_bytes),
            "rx_bytes_per_s": round(d.rx_bytes / seconds, 3),
            "tx_bytes_per_s": round(d.tx_bytes / seconds, 3),
            "errors": float(errors),
            "errors_per_s": round(errors / seconds, 6),
            "errors_in": float(d.errors_in),
            "errors_out": float(d.errors_out),
            "drops": float(drops),
            "drops_per_s": round(drops / seconds, 6),
            "drops_in": float(d.drops_in),
            "drops_out": float(d.drops_out),
            "interval_s": round(seconds, 6),
        }
        if self.target == "*":
            observed["interfaces"] = float(len(nics))
            head = f"{len(nics)} interface(s) up ({', '.join(nics[:8])})"
        else:
            stat = stats.get(self.target)
            up = stat is not None and stat.isup
            observed["link_up"] = float(up)
            head = f"{self.target} {'up' if up else 'down (no carrier)'}"
        summary = (
            f"{head}: rx {_rate(observed['rx_bytes_per_s'])}, tx {_rate(observed['tx_bytes_per_s'])}, "
            f"{errors} errors, {drops} drops in {seconds:.1f} s"
        )
        return self.judge(ctx, observed, summary)


def _loopback(name: str, flags: str) -> bool:
    return "loopback" in flags.split(",") if flags else name == "lo"


def _rate(bytes_per_s: float) -> str:
    for unit, size in (("GB/s", 1e9), ("MB/s", 1e6), ("kB/s", 1e3)):
        if bytes_per_s >= size:
            return f"{bytes_per_s / size:.1f} {unit}"
    return f"{bytes_per_s:.0f} B/s"
