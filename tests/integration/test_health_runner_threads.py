"""The runner sizes its threads by check kind: checks that wait on the network run in a pool, the
others inline in the calling thread, one after another. Network checks here are real `http`
checks against a slow HTTP server the test starts on a free port."""

from __future__ import annotations

import http.server
import threading
import time
from collections.abc import Iterator
from typing import Any, ClassVar

import pytest

from pitstop.app import Pitstop
from pitstop.core.types import Status
from pitstop.health.base import Check, CheckContext, CheckResult, checks
from pitstop.health.checks import BUILTIN
from pitstop.health.runner import CheckRunner
from pitstop.health.specs import CheckSpec

DELAY_S = 0.4
ANSWERED: list[float] = []  # when the slow server answered (perf_counter), request by request


class _Slow(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        time.sleep(DELAY_S)
        ANSWERED.append(time.perf_counter())
        body = b'{"status": "ok"}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def slow_url() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Slow)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/health"
    server.shutdown()
    server.server_close()


class _ThreadProbe(Check):
    """A plugin-style local check (no `waits_on_network`): reports the thread that ran it."""

    name = "test_thread_probe"
    issue = "test.probe"
    threads: ClassVar[dict[str, int]] = {}
    ran_at: ClassVar[dict[str, float]] = {}

    def run(self, ctx: CheckContext, /) -> CheckResult:
        self.threads[self.target] = threading.get_ident()
        self.ran_at[self.target] = time.perf_counter()
        return self.result(ctx, Status.HEALTHY, "probed")


class _Hangs(Check):
    """Waits on "the network" longer than its timeout."""

    name = "test_network_hangs"
    issue = "test.hangs"
    waits_on_network = True
    timeout_s = 0.2

    def run(self, ctx: CheckContext, /) -> CheckResult:
        time.sleep(0.6)
        return self.result(ctx, Status.HEALTHY, "late")


for _cls in (_ThreadProbe, _Hangs):
    if _cls.name not in checks:
        checks.add(_cls)


def _timed(runner: CheckRunner, ctx: CheckContext) -> tuple[list[CheckResult], float]:
    start = time.perf_counter()
    results = runner.run(ctx)
    return results, time.perf_counter() - start


def test_every_builtin_check_declares_its_kind() -> None:
    waiting = {cls.name for cls in BUILTIN if cls.waits_on_network}
    network = {"http", "tcp", "rtsp", "mqtt", "modbus", "camera_image", "postgres", "postgres_activity", "updates"}
    assert waiting == network
    local = {"cpu", "memory", "disk", "database", "heartbeat", "freshness", "limits", "frozen", "reading"}
    assert local <= {cls.name for cls in BUILTIN} and not local & waiting
    assert all(isinstance(cls.waits_on_network, bool) for cls in BUILTIN)
    assert checks.get("test_thread_probe").waits_on_network is False  # a plugin that says nothing: inline


def test_network_checks_wait_side_by_side(pitstop: Pitstop, slow_url: str) -> None:
    specs = [CheckSpec("http", f"{slow_url}?n={i}", params={"timeout_s": 5}) for i in range(5)]
    results, wall = _timed(CheckRunner(specs, workers=8), pitstop.health.context)
    assert all(r.error is None and r.observed["status_code"] == 200 for r in results), [r.summary for r in results]
    assert wall < 5 * DELAY_S * 0.7, f"5 waits of {DELAY_S} s overlapped: {wall:.2f} s"
    _, serial = _timed(CheckRunner(specs, workers=1), pitstop.health.context)
    assert serial >= 5 * DELAY_S  # workers = 1: one after another, as configured


def test_local_checks_run_inline_while_the_pool_waits(pitstop: Pitstop, slow_url: str, tmp_path: Any) -> None:
    specs = [
        CheckSpec("test_thread_probe", "a"),
        CheckSpec("http", slow_url, params={"timeout_s": 5}),
        CheckSpec("disk", str(tmp_path)),
        CheckSpec("test_thread_probe", "b"),
        CheckSpec("memory", "host"),
        CheckSpec("test_thread_probe", "c"),
    ]
    _ThreadProbe.threads.clear()
    ANSWERED.clear()
    results = CheckRunner(specs, workers=8).run(pitstop.health.context)
    assert [(r.check, r.target) for r in results] == [(s.check, s.target) for s in specs]  # spec order
    assert all(r.status is not Status.UNKNOWN for r in results), [r.summary for r in results]
    assert set(_ThreadProbe.threads.values()) == {threading.get_ident()}  # the caller's thread
    # every local check, the last one too, ran while the http check was still waiting for its answer
    assert len(ANSWERED) == 1 and max(_ThreadProbe.ran_at.values()) < ANSWERED[0]


def test_only_local_checks_start_no_threads(pitstop: Pitstop, tmp_path: Any) -> None:
    specs = [CheckSpec("test_thread_probe", f"t{i}") for i in range(20)] + [CheckSpec("disk", str(tmp_path))]
    _ThreadProbe.threads.clear()
    results = CheckRunner(specs, workers=8).run(pitstop.health.context)
    assert len(results) == 21 and {r.status for r in results} == {Status.HEALTHY}
    assert set(_ThreadProbe.threads.values()) == {threading.get_ident()}


def test_a_network_check_past_its_timeout_is_unknown(pitstop: Pitstop) -> None:
    specs = [CheckSpec("test_network_hangs", "plc-1"), CheckSpec("test_thread_probe", "x")]
    results = CheckRunner(specs, workers=4).run(pitstop.health.context)
    hung, local = results
    assert hung.status is Status.UNKNOWN and hung.error == "timed out after 0.2 s"
    assert hung.summary == "check failed: timed out after 0.2 s"
    assert local.status is Status.HEALTHY


def test_a_broken_check_is_unknown_in_either_kind(pitstop: Pitstop) -> None:
    specs = [
        CheckSpec("http", "http://127.0.0.1:9/unreachable", params={"timeout_s": 1}),  # discard port: refused
        CheckSpec("disk", "data\x00dir"),  # raises inside the check (ValueError): the check is broken
    ]
    results = CheckRunner(specs, workers=2).run(pitstop.health.context)
    assert results[0].status is Status.CRITICAL and "unreachable" in results[0].summary  # the target is down
    assert results[1].status is Status.UNKNOWN and results[1].error and "ValueError" in results[1].error
