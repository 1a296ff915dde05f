"""The monitoring system's own server: CPU, memory, a disk filling with video recordings and
emptied by retention, camera latency with spikes, the PLC link and the recording service."""

from __future__ import annotations

import numpy as np

from pitstop.sim import climate, noise
from pitstop.sim.noise import F64, I64
from pitstop.sim.scenario import Fault, FaultKind

SIGNALS = ("cpu_pct", "mem_pct", "disk_free_pct", "camera_latency_ms", "plc_link_up", "service_up")
RETENTION_DAYS = 14.0
RETENTION_HOUR = 2.0  # retention deletes recordings older than RETENTION_DAYS every day at 02:00
SYSTEM_USED_PCT = 20.0


class ServerModel:
    def __init__(self, seed: int, asset: str, faults: tuple[Fault, ...]) -> None:
        rng = np.random.default_rng(noise.key(seed, asset, "server"))
        # %/h of disk written by the recorders: retention keeps the disk 30-37 % free.
        self.record_rate = float(rng.uniform(44.0, 47.0)) / (RETENTION_DAYS * 24.0)
        self.seed, self.asset, self.faults = seed, asset, faults

    def _key(self, name: str) -> int:
        return noise.key(self.seed, self.asset, name)

    def _of(self, kind: FaultKind) -> tuple[Fault, ...]:
        return tuple(f for f in self.faults if f.kind is kind)

    @staticmethod
    def _active(f: Fault, t: F64) -> np.ndarray:
        return (t >= f.start.timestamp()) & (t < f.end.timestamp() if f.end else True)

    def disk_free(self, t: F64) -> F64:
        since_retention = ((t / 3600.0 - RETENTION_HOUR) % 24.0) * 3600.0
        window = RETENTION_DAYS * 86_400.0 + since_retention  # recordings still on disk span this long
        written = self.record_rate * window / 3600.0
        for f in self._of(FaultKind.DISK_FILL):
            lo = np.maximum(f.start.timestamp(), t - window)
            hi = t if f.end is None else np.minimum(t, f.end.timestamp())
            written = written + self.record_rate * 9.0 * f.severity * np.maximum(hi - lo, 0.0) / 3600.0
        return 100.0 - SYSTEM_USED_PCT - written

    def latency(self, t: F64, k: I64) -> F64:
        base = 90.0 * np.exp(
            0.12 * noise.normal(self._key("latency"), k) + 0.1 * noise.smooth(self._key("net"), t, 1800)
        )
        spike = noise.uniform(self._key("spike"), k) < 0.005
        latency = base + np.where(spike, 300.0 + 2000.0 * noise.uniform(self._key("spike-size"), k), 0.0)
        for f in self._of(FaultKind.CAMERA_LATENCY):
            rising = f.severity * 1000.0 * np.maximum(t - f.start.timestamp(), 0.0) / 3600.0
            latency = latency + np.where(self._active(f, t), rising, 0.0)
        return latency

    def up(self, kind: FaultKind, t: F64) -> F64:
        up = np.ones_like(t)
        for f in self._of(kind):
            up = np.where(self._active(f, t), 0.0, up)
        return up

    def signals(self, t: F64, k: I64) -> dict[str, tuple[F64, F64 | float]]:
        cpu = 22.0 + 12.0 * climate.daytime(t) + 4.0 * noise.smooth(self._key("cpu"), t, 1800)
        since_restart = ((t / 3600.0 - 3.0) % 24.0) / 24.0  # the recorder restarts every day at 03:00
        mem = 48.0 + 6.0 * since_restart + 1.5 * noise.smooth(self._key("mem"), t, 7200)
        return {
            "cpu_pct": (cpu, 1.5),
            "mem_pct": (mem, 0.3),
            "disk_free_pct": (self.disk_free(t), 0.02),
            "camera_latency_ms": (self.latency(t, k), 0.0),
            "plc_link_up": (self.up(FaultKind.PLC_LINK_DROP, t), 0.0),
            "service_up": (self.up(FaultKind.SERVICE_DOWN, t), 0.0),
        }
