"""Where simulated readings go: pitstop's database, an MQTT broker, or pitstop's HTTP API; and the
runner that paces simulated time against the injected clock (`--speed 60x`)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import numpy.typing as npt
import pandas as pd

from pitstop.core.clock import Clock
from pitstop.errors import ScenarioError
from pitstop.sim.fleet import Batch, Simulator

if TYPE_CHECKING:
    from pitstop.ingest.service import IngestService
    from pitstop.storage.repos.assets import AssetRepo
    from pitstop.storage.repos.readings import ReadingRepo

HTTP_BATCH = 1000
SOURCE = "sim"


class Publisher(Protocol):
    def publish(self, batch: Batch) -> int:
        """Send the batch; returns how many readings were taken (stored, published or accepted)."""
        ...

    def close(self) -> None: ...


def iso_times(ts_us: npt.NDArray[np.int64]) -> npt.NDArray[np.str_]:
    """ISO 8601 with an explicit offset, e.g. 2026-07-01T12:00:00+00:00."""
    whole_seconds = bool(np.all(ts_us % 1_000_000 == 0))
    stamps = ts_us.astype("datetime64[us]")
    text = np.datetime_as_string(stamps, unit="s") if whole_seconds else np.datetime_as_string(stamps, unit="us")
    return np.char.add(text, "+00:00")


class DatabasePublisher:
    """Through pitstop's ingest when given one (validation, quarantine, spool), else straight into
    the readings table: the simulator's readings are valid by construction."""

    def __init__(
        self,
        simulator: Simulator,
        *,
        assets: AssetRepo,
        readings: ReadingRepo,
        ingest: IngestService | None = None,
    ) -> None:
        self.readings = readings
        self.ingest = ingest
        index = {(s.asset, s.name): s.id for s in assets.sensors()}
        missing = [f"{a}/{s}" for a, s in simulator.keys if (a, s) not in index]
        if missing:
            raise ScenarioError(f"sensors not in the database inventory: {', '.join(missing[:5])}")
        self.sensor_ids = np.array([index[k] for k in simulator.keys], dtype=np.int32)
        # readings the ingest quarantined: over a time already stored with other values, conflicts
        self.quarantined = 0

    def frame(self, batch: Batch) -> pd.DataFrame:
        """The batch as the validator takes it, asset and sensor as categoricals over the simulator's
        keys (the validator looks up each key once, not each row's text)."""
        assets = sorted({a for a, _ in batch.keys})
        sensors = sorted({s for _, s in batch.keys})
        asset_code = np.array([assets.index(a) for a, _ in batch.keys], dtype=np.int32)
        sensor_code = np.array([sensors.index(s) for _, s in batch.keys], dtype=np.int32)
        ts = pd.DatetimeIndex(batch.ts_us.astype("datetime64[us]")).tz_localize("UTC")
        return pd.DataFrame(
            {
                "ts": ts,
                "asset": pd.Categorical.from_codes(asset_code[batch.key], categories=pd.Index(assets)),
                "sensor": pd.Categorical.from_codes(sensor_code[batch.key], categories=pd.Index(sensors)),
                "value": batch.value,
            }
        )

    def publish(self, batch: Batch) -> int:
        if len(batch) == 0:
            return 0
        if self.ingest is not None:
            result = self.ingest.ingest(self.frame(batch), SOURCE)
            self.quarantined += result.quarantined
            return int(result.stored + result.duplicates + result.spooled)
        from pitstop.storage.repos.readings import ReadingBatch

        written = self.readings.write(ReadingBatch.of(self.sensor_ids[batch.key], batch.ts_us, batch.value))
        return written.stored + written.duplicates

    def close(self) -> None:
        return None


class MqttPublisher:
    """JSON {"ts", "value"} to <prefix>/<site>/<asset>/<sensor>, QoS 1 (paho-mqtt 2)."""

    def __init__(
        self,
        simulator: Simulator,
        *,
        host: str = "127.0.0.1",
        port: int = 1883,
        prefix: str = "pitstop",
        qos: int = 1,
        username: str | None = None,
        password: str | None = None,
        timeout_s: float = 30.0,
    ) -> None:
        import paho.mqtt.client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion

        self.qos, self.timeout_s = qos, timeout_s
        self.topics = [f"{prefix}/{simulator.site_of(a)}/{a}/{s}" for a, s in simulator.keys]
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"pitstop-sim-{id(self):x}")
        self.client.max_inflight_messages_set(1000)
        self.client.max_queued_messages_set(0)
        if username:
            self.client.username_pw_set(username, password)
        try:
            self.client.connect(host, port, keepalive=30)
        except OSError as exc:
            raise ScenarioError(f"cannot reach the MQTT broker at {host}:{port}: {exc}") from None
        self.client.loop_start()

    def publish(self, batch: Batch) -> int:
        if len(batch) == 0:
            return 0
        infos = []
        for key, ts, value in zip(
            batch.key.tolist(), iso_times(batch.ts_us).tolist(), batch.value.tolist(), strict=True
        ):
            payload = json.dumps({"ts": ts, "value": value})
            infos.append(self.client.publish(self.topics[key], payload, qos=self.qos))
        for info in infos:  # QoS 1: wait until the broker has acknowledged each one
            info.wait_for_publish(timeout=self.timeout_s)
            if not info.is_published():
                raise ScenarioError(f"the MQTT broker did not acknowledge a reading within {self.timeout_s:.0f} s")
        return len(infos)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


class HttpPublisher:
    """JSON lists of {"asset", "sensor", "ts", "value"} POSTed to /api/readings, 1,000 per request."""

    def __init__(self, base_url: str, api_key: str, *, batch_size: int = HTTP_BATCH, timeout_s: float = 30.0) -> None:
        import httpx

        self.url = base_url.rstrip("/") + "/api/readings"
        self.batch_size = batch_size
        self.client = httpx.Client(headers={"Authorization": f"Bearer {api_key}"}, timeout=timeout_s)

    def publish(self, batch: Batch) -> int:
        import httpx

        assets, sensors, times = batch.asset.tolist(), batch.sensor.tolist(), iso_times(batch.ts_us).tolist()
        values = batch.value.tolist()
        sent = 0
        for i in range(0, len(batch), self.batch_size):
            j = i + self.batch_size
            body = [
                {"asset": a, "sensor": s, "ts": t, "value": v}
                for a, s, t, v in zip(assets[i:j], sensors[i:j], times[i:j], values[i:j], strict=True)
            ]
            try:
                response = self.client.post(self.url, json=body)
            except httpx.HTTPError as exc:
                raise ScenarioError(f"cannot POST readings to {self.url}: {exc}") from None
            if response.status_code >= 300:
                raise ScenarioError(f"{self.url} answered {response.status_code}: {response.text[:200]}")
            sent += len(body)
        return sent

    def close(self) -> None:
        self.client.close()


@dataclass(frozen=True, slots=True)
class RunSummary:
    start: datetime
    end: datetime
    readings: int


def run(
    simulator: Simulator,
    publisher: Publisher,
    *,
    clock: Clock,
    start: datetime,
    duration: timedelta,
    speed: float,
    tick_s: float = 1.0,
    sleep: Callable[[float], Any] = time.sleep,
    stop: threading.Event | None = None,
    progress: Callable[[datetime, int], None] | None = None,
) -> RunSummary:
    """Publish [start, start + duration) while simulated time runs `speed` times faster than the clock's
    monotonic time. Each tick publishes what became due since the last one."""
    if speed <= 0:
        raise ScenarioError("speed must be above 0")
    end = start + duration
    origin = clock.monotonic()
    cursor, total = start, 0
    while cursor < end and not (stop is not None and stop.is_set()):
        now = min(end, start + timedelta(seconds=(clock.monotonic() - origin) * speed))
        if now > cursor:
            total += publisher.publish(simulator.batch(cursor, now))
            cursor = now
            if progress is not None:
                progress(cursor, total)
        if cursor < end:
            sleep(tick_s)
    return RunSummary(start, cursor, total)


def parse_speed(text: str) -> float:
    """'60x', '60', '0.5x' -> 60.0, 60.0, 0.5."""
    try:
        speed = float(text.strip().lower().removesuffix("x"))
    except ValueError:
        raise ScenarioError(f"not a speed: {text!r} (e.g. 60x)") from None
    if not (0 < speed < 1e9):
        raise ScenarioError(f"speed must be above 0, not {text!r}")
    return speed
