"""Link checks: http (status, latency, a JSON field), tcp connect, rtsp OPTIONS, mqtt round trip.
The PLC link (modbus) is in `modbus.py`."""

from __future__ import annotations

import socket
import threading
import time
import uuid
from typing import Any
from urllib.parse import urlsplit

import httpx

from pitstop.core.types import Status
from pitstop.health.base import Check, CheckContext, CheckResult, Threshold

LATENCY = Threshold("latency_ms", "above", warning=500, critical=2000, target=100)


def host_port(target: str, default_port: int) -> tuple[str, int]:
    host, sep, port = target.rpartition(":")
    if not sep:
        return target, default_port
    if not port.isdigit():
        raise ValueError(f"{target!r} is not host:port")
    return host.strip("[]"), int(port)


def only_known_params(check: str, params: dict[str, Any], known: set[str]) -> None:
    if unknown := set(params) - known:
        raise ValueError(f"{check} check: unknown parameter(s) {', '.join(sorted(unknown))}")


class HttpCheck(Check):
    """GET `target` (a URL): status code, latency, and optionally one JSON field's value.

    params: expect_status (200), json_field ("status" or "a.b.c"), expect ("ok"), timeout_s (5).
    """

    name = "http"
    runs_anywhere = True
    issue = "http.failing"
    waits_on_network = True
    default_thresholds = (LATENCY,)

    def configure(self, **params: Any) -> None:
        only_known_params("http", params, {"expect_status", "json_field", "expect", "timeout_s"})
        if urlsplit(self.target).scheme not in ("http", "https"):
            raise ValueError(f"http check: target {self.target!r} is not an http(s) URL")
        self.expect_status = int(params.get("expect_status", 200))
        self.json_field: str | None = params.get("json_field")
        self.expect = params.get("expect")
        self.wait_s = float(params.get("timeout_s", 5.0))

    def run(self, ctx: CheckContext, /) -> CheckResult:
        start = time.perf_counter()
        try:
            response = httpx.get(self.target, timeout=self.wait_s, follow_redirects=False)
        except httpx.HTTPError as exc:
            return self.result(ctx, Status.CRITICAL, f"{self.target} unreachable: {type(exc).__name__}")
        latency = (time.perf_counter() - start) * 1000
        observed = {"latency_ms": round(latency, 3), "status_code": float(response.status_code)}
        if response.status_code != self.expect_status:
            return self.result(
                ctx,
                Status.CRITICAL,
                f"{self.target} answered {response.status_code}, expected {self.expect_status}",
                observed=observed,
            )
        if self.json_field:
            value: Any = response.json()
            for part in self.json_field.split("."):
                value = value.get(part) if isinstance(value, dict) else None
            if isinstance(value, int | float) and not isinstance(value, bool):
                observed[self.json_field] = float(value)
            if self.expect is not None and value != self.expect:
                return self.result(
                    ctx,
                    Status.CRITICAL,
                    f"{self.target}: {self.json_field} is {value!r}, expected {self.expect!r}",
                    observed=observed,
                )
        return self.judge(ctx, observed, f"{self.target} answered {response.status_code} in {latency:.0f} ms")


class TcpCheck(Check):
    """Connect to `target` (host:port) and measure how long it takes."""

    name = "tcp"
    runs_anywhere = True
    issue = "link.down"
    waits_on_network = True
    default_thresholds = (LATENCY,)

    def configure(self, **params: Any) -> None:
        only_known_params("tcp", params, {"timeout_s"})
        self.host, self.port = host_port(self.target, 0)
        if not self.port:
            raise ValueError(f"tcp check: target {self.target!r} needs a port (host:port)")
        self.wait_s = float(params.get("timeout_s", 3.0))

    def run(self, ctx: CheckContext, /) -> CheckResult:
        start = time.perf_counter()
        try:
            with socket.create_connection((self.host, self.port), timeout=self.wait_s):
                latency = (time.perf_counter() - start) * 1000
        except OSError as exc:
            return self.result(
                ctx,
                Status.CRITICAL,
                f"{self.target}: cannot connect ({exc.strerror or type(exc).__name__})",
                observed={"up": 0.0},
            )
        return self.judge(
            ctx, {"latency_ms": round(latency, 3), "up": 1.0}, f"{self.target} connects in {latency:.1f} ms"
        )


class RtspCheck(Check):
    """An RTSP OPTIONS round trip to a camera (`target` rtsp://host[:port]/path) and its latency."""

    name = "rtsp"
    runs_anywhere = True
    issue = "camera.down"
    waits_on_network = True
    default_thresholds = (LATENCY,)

    def configure(self, **params: Any) -> None:
        only_known_params("rtsp", params, {"timeout_s"})
        parts = urlsplit(self.target)
        if parts.scheme != "rtsp" or not parts.hostname:
            raise ValueError(f"rtsp check: target {self.target!r} is not rtsp://host[:port]/path")
        self.host, self.port = parts.hostname, parts.port or 554
        self.wait_s = float(params.get("timeout_s", 3.0))

    def run(self, ctx: CheckContext, /) -> CheckResult:
        request = f"OPTIONS {self.target} RTSP/1.0\r\nCSeq: 1\r\nUser-Agent: pitstop\r\n\r\n".encode()
        start = time.perf_counter()
        try:
            with socket.create_connection((self.host, self.port), timeout=self.wait_s) as sock:
                sock.sendall(request)
                reply = sock.recv(4096).decode("latin-1")
        except OSError as exc:
            return self.result(
                ctx, Status.CRITICAL, f"camera {self.host}:{self.port} unreachable ({type(exc).__name__})"
            )
        latency = (time.perf_counter() - start) * 1000
        status_line = reply.split("\r\n", 1)[0]
        if not status_line.startswith("RTSP/1.0 200"):
            return self.result(
                ctx, Status.CRITICAL, f"camera answered {status_line[:80]!r}", observed={"latency_ms": latency}
            )
        return self.judge(ctx, {"latency_ms": round(latency, 3)}, f"camera answers OPTIONS in {latency:.0f} ms")


class MqttCheck(Check):
    """Publish to a unique topic and wait for it to come back through the broker (`target` host:port)."""

    name = "mqtt"
    runs_anywhere = True
    issue = "mqtt.down"
    waits_on_network = True
    default_thresholds = (LATENCY,)

    def configure(self, **params: Any) -> None:
        only_known_params("mqtt", params, {"timeout_s", "topic_prefix", "username", "password"})
        self.host, self.port = host_port(self.target, 1883)
        self.wait_s = float(params.get("timeout_s", 5.0))
        self.prefix = str(params.get("topic_prefix", "pitstop/health"))
        self.username, self.password = params.get("username"), params.get("password")

    def run(self, ctx: CheckContext, /) -> CheckResult:
        import paho.mqtt.client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion

        topic = f"{self.prefix}/{uuid.uuid4().hex}"
        arrived = threading.Event()
        subscribed = threading.Event()
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"pitstop-check-{uuid.uuid4().hex[:8]}")
        if self.username:
            client.username_pw_set(str(self.username), str(self.password) if self.password else None)
        client.on_message = lambda c, u, msg: arrived.set()
        client.on_subscribe = lambda c, u, mid, codes, props: subscribed.set()
        try:
            client.connect(self.host, self.port, keepalive=10)
        except OSError as exc:
            return self.result(
                ctx, Status.CRITICAL, f"broker {self.target} unreachable ({type(exc).__name__})", observed={"up": 0.0}
            )
        client.loop_start()
        try:
            client.subscribe(topic, qos=1)
            if not subscribed.wait(self.wait_s):
                return self.result(ctx, Status.CRITICAL, f"broker {self.target} did not confirm a subscription")
            start = time.perf_counter()
            client.publish(topic, b"ping", qos=1)
            if not arrived.wait(self.wait_s):
                return self.result(
                    ctx, Status.CRITICAL, f"broker {self.target}: message did not come back in {self.wait_s:g} s"
                )
            latency = (time.perf_counter() - start) * 1000
        finally:
            client.disconnect()
            client.loop_stop()
        return self.judge(ctx, {"latency_ms": round(latency, 3), "up": 1.0}, f"broker round trip {latency:.1f} ms")
