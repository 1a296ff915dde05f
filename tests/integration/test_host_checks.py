"""The `network` check on the real loopback interface (traffic the test sends itself) and the
`process_memory` check on processes the test starts."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import psutil
import pytest

from pitstop.core.types import Status
from pitstop.health.base import CheckContext, Threshold
from pitstop.health.checks.host import NetworkCheck, NicCounters
from pitstop.health.checks.system import ProcessMemoryCheck
from pitstop.storage import Database
from pitstop.testing.clock import FrozenClock

MIB = 1024**2


@pytest.fixture
def ctx(tmp_path: Path) -> CheckContext:
    db = Database(f"sqlite:///{tmp_path / 'pitstop.db'}")
    return CheckContext(clock=FrozenClock(), db=db)


# -- network --------------------------------------------------------------------------------------


def send_over_loopback(nbytes: int) -> int:
    """Send `nbytes` to a local socket server; returns how many it received."""
    server = socket.create_server(("127.0.0.1", 0))
    received = [0]

    def serve() -> None:
        conn, _ = server.accept()
        with conn:
            while chunk := conn.recv(1 << 16):
                received[0] += len(chunk)

    reader = threading.Thread(target=serve)
    reader.start()
    with socket.create_connection(server.getsockname()) as client:
        client.sendall(b"x" * nbytes)
    reader.join(timeout=10)
    server.close()
    return received[0]


def test_loopback_traffic_moves_rx_and_tx_between_rounds(ctx: CheckContext) -> None:
    check = NetworkCheck("lo")
    first = check.run(ctx)  # the first round measures over a short interval
    assert first.status is Status.HEALTHY and first.observed["link_up"] == 1.0
    assert first.summary.startswith("lo up: rx ")
    assert send_over_loopback(8 * MIB) == 8 * MIB
    second = check.run(ctx)
    # what the test sent crossed lo once each way (other traffic on lo only adds to it)
    assert second.observed["rx_bytes"] >= 8 * MIB and second.observed["tx_bytes"] >= 8 * MIB
    seconds = second.observed["interval_s"]
    assert second.observed["rx_bytes_per_s"] == pytest.approx(second.observed["rx_bytes"] / seconds, rel=0.01)
    assert second.observed["errors"] == 0 and second.observed["errors_per_s"] == 0
    assert second.status is Status.HEALTHY and second.issue_key == "network.interface"
    quiet = check.run(ctx)  # the next round counts only what came since
    assert quiet.observed["rx_bytes"] < 8 * MIB


def test_an_unknown_interface_is_critical(ctx: CheckContext) -> None:
    name = "eth9" if "eth9" not in psutil.net_if_stats() else "pitstop-no-nic"
    result = NetworkCheck(name).run(ctx)
    assert result.status is Status.CRITICAL
    assert result.summary.startswith(f"no interface {name} (interfaces: ")
    assert result.incident_key == f"network.interface:{name}"


def test_star_covers_the_interfaces_that_are_up_but_not_loopback(ctx: CheckContext) -> None:
    up = sorted(
        n for n, s in psutil.net_if_stats().items() if s.isup and "loopback" not in s.flags.split(",") and n != "lo"
    )
    result = NetworkCheck("*").run(ctx)
    if not up:
        assert (result.status, result.summary) == (Status.CRITICAL, "no network interface is up (loopback aside)")
        return
    assert result.observed["interfaces"] == len(up) and "link_up" not in result.observed
    assert result.summary.startswith(f"{len(up)} interface(s) up ({', '.join(up[:8])})")


class Counters:
    """Counter readings handed out in turn: the kernel's for every interface but lo, whose values
    the test gives, as after a driver reset or a re-created interface."""

    def __init__(self, *lo: NicCounters) -> None:
        self.lo = list(lo)

    def __call__(self) -> Mapping[str, NicCounters]:
        value = self.lo.pop(0) if len(self.lo) > 1 else self.lo[0]
        return {"lo": value}


def test_counters_that_go_down_count_from_zero_not_as_a_negative(ctx: CheckContext) -> None:
    high = NicCounters(10_000_000, 9_000_000, 50, 40, 30, 20)
    ctx.extra["net_counters"] = Counters(high, high, NicCounters(4_000, 3_000, 2, 1, 0, 5))
    check = NetworkCheck("lo")
    assert check.run(ctx).observed["errors"] == 0  # first round: high, then high again
    after = check.run(ctx)
    assert after.observed["errors_in"] == 2 and after.observed["errors_out"] == 1 and after.observed["errors"] == 3
    assert after.observed["drops_in"] == 0 and after.observed["drops_out"] == 5 and after.observed["drops"] == 5
    assert after.observed["rx_bytes"] == 4_000 and after.observed["tx_bytes"] == 3_000
    seconds = after.observed["interval_s"]
    assert after.observed["rx_bytes_per_s"] == pytest.approx(4_000 / seconds, rel=0.01)
    assert min(after.observed.values()) >= 0


def test_errors_per_second_and_a_down_link_are_judged(ctx: CheckContext) -> None:
    base = NicCounters(0, 0, 0, 0, 0, 0)
    ctx.extra["net_counters"] = Counters(base, base, NicCounters(0, 0, 10_000_000, 0, 0, 0))
    check = NetworkCheck("lo")
    check.run(ctx)
    flood = check.run(ctx)
    assert flood.observed["errors_per_s"] >= 10 and flood.status is Status.CRITICAL
    assert "errors_per_s" in flood.summary
    levels = NetworkCheck("lo", thresholds={"link_up": Threshold("link_up", "below", critical=2)})
    down = levels.run(ctx)  # lo is up (1), and a level of 2 makes "up" not enough: the link level is judged
    assert down.status is Status.CRITICAL and "link_up 1 < 2" in down.summary


@pytest.mark.parametrize("target", ["", "a/b", "x" * 65, "eth0\n", "eth\x000"])
def test_malformed_interface_names_are_refused(target: str) -> None:
    with pytest.raises(ValueError, match="network check: target must be an interface name"):
        NetworkCheck(target)


@pytest.mark.parametrize("params", [{"interface": "eth0"}, {"interval_s": 1}])
def test_the_network_check_takes_no_parameters(params: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="takes no parameters"):
        NetworkCheck("lo", params=params)


# -- process_memory -------------------------------------------------------------------------------


def start_hog(megabytes: int, marker: str, executable: str = sys.executable) -> subprocess.Popen[str]:
    """A python process holding `megabytes` MiB (each page written, so resident), `marker` in its
    command line; returns once the memory is held."""
    code = (
        f"import sys, time; held = b'x' * ({megabytes} * 2**20); print('ready', flush=True); "
        f"sys.stdin.read()  # {marker}"
    )
    proc = subprocess.Popen(
        [executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, start_new_session=True
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    return proc


def stop(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        proc.kill()
    proc.communicate(timeout=10)  # reaps it and closes its pipes


@pytest.fixture
def marker() -> str:
    return f"pitstop-memtest-{uuid.uuid4().hex}"


@pytest.fixture
def hog(marker: str) -> Iterator[subprocess.Popen[str]]:
    proc = start_hog(60, marker)
    yield proc
    stop(proc)


def test_rss_of_a_process_found_by_command_line_and_by_pid_file(
    ctx: CheckContext, hog: subprocess.Popen[str], marker: str, tmp_path: Path
) -> None:
    by_cmdline = ProcessMemoryCheck("hog", params={"cmdline": rf"memtest-{marker[16:]}\b"}).run(ctx)
    assert by_cmdline.status is Status.HEALTHY, by_cmdline.summary
    assert by_cmdline.observed["rss_mb"] >= 60 and by_cmdline.observed["count"] == 1
    total_mb = psutil.virtual_memory().total / MIB
    expected_pct = 100 * by_cmdline.observed["rss_mb"] / total_mb
    assert by_cmdline.observed["rss_pct"] == pytest.approx(expected_pct, abs=6e-4)  # rounded to 3 places
    assert by_cmdline.summary.startswith("hog: ") and "MB resident" in by_cmdline.summary
    assert by_cmdline.issue_key == "process.memory"

    pidfile = tmp_path / "hog.pid"
    pidfile.write_text(f"{hog.pid}\n")
    by_pidfile = ProcessMemoryCheck("hog", params={"pidfile": str(pidfile)}).run(ctx)
    assert by_pidfile.observed["rss_mb"] == pytest.approx(by_cmdline.observed["rss_mb"], abs=2)

    warning = {"rss_mb": Threshold("rss_mb", warning=50, critical=1000)}
    judged = ProcessMemoryCheck("hog", params={"pidfile": str(pidfile)}, thresholds=warning).run(ctx)
    assert judged.status is Status.WARNING and "rss_mb" in judged.summary
    critical = {"rss_mb": Threshold("rss_mb", warning=10, critical=50)}
    assert ProcessMemoryCheck("hog", params={"pidfile": str(pidfile)}, thresholds=critical).run(ctx).status is (
        Status.CRITICAL
    )


def test_rss_is_summed_over_every_matching_process(ctx: CheckContext, marker: str, tmp_path: Path) -> None:
    # by process name: a python under a name of its own (the kernel names a process after its file)
    name = f"ptm{uuid.uuid4().hex[:6]}"
    os.symlink(sys.executable, tmp_path / name)
    procs = [start_hog(30, marker, str(tmp_path / name)) for _ in range(2)]
    try:
        both = ProcessMemoryCheck("hogs", params={"process": name}).run(ctx)
        assert both.observed["count"] == 2 and both.observed["rss_mb"] >= 60
        assert "in 2 processes" in both.summary
        by_cmdline = ProcessMemoryCheck("hogs", params={"cmdline": marker}).run(ctx)
        assert by_cmdline.observed["count"] == 2
    finally:
        for proc in procs:
            stop(proc)


def test_a_process_that_is_not_running_is_critical(ctx: CheckContext, marker: str, tmp_path: Path) -> None:
    pidfile = tmp_path / "gone.pid"
    result = ProcessMemoryCheck("svc", params={"pidfile": str(pidfile)}).run(ctx)
    assert (result.status, result.summary) == (Status.CRITICAL, f"svc not running: no pid file {pidfile}")
    assert result.observed == {"rss_mb": 0.0, "rss_pct": 0.0, "count": 0.0}
    name = ProcessMemoryCheck("svc", params={"process": f"no-such-{uuid.uuid4().hex[:6]}"}).run(ctx)
    assert name.status is Status.CRITICAL and name.summary.startswith("svc not running: 0 process(es) named")
    cmdline = ProcessMemoryCheck("svc", params={"cmdline": f"{marker}-absent"}).run(ctx)
    assert cmdline.status is Status.CRITICAL and "not running" in cmdline.summary

    # a process that ended, and one that ended but was not reaped (a zombie), hold no memory
    proc = start_hog(1, marker)
    pidfile.write_text(str(proc.pid))
    os.kill(proc.pid, signal.SIGKILL)
    deadline = time.perf_counter() + 10
    while psutil.Process(proc.pid).status() != psutil.STATUS_ZOMBIE and time.perf_counter() < deadline:
        time.sleep(0.01)
    zombie = ProcessMemoryCheck("svc", params={"pidfile": str(pidfile)}).run(ctx)
    assert (zombie.status, zombie.summary) == (
        Status.CRITICAL,
        f"svc not running: pid {proc.pid} from {pidfile} is a zombie",
    )
    assert ProcessMemoryCheck("svc", params={"cmdline": marker}).run(ctx).status is Status.CRITICAL
    stop(proc)
    ended = ProcessMemoryCheck("svc", params={"pidfile": str(pidfile)}).run(ctx)
    assert ended.status is Status.CRITICAL and "is not running" in ended.summary


@pytest.mark.parametrize("content", [b"", b"abc", b"-1", b"0", b"99999999999999999999", b"\xff\xfe", b"1" * 5000])
def test_a_pid_file_without_a_pid_is_not_running(ctx: CheckContext, tmp_path: Path, content: bytes) -> None:
    pidfile = tmp_path / "bad.pid"
    pidfile.write_bytes(content)
    result = ProcessMemoryCheck("svc", params={"pidfile": str(pidfile)}).run(ctx)
    assert (result.status, result.summary) == (Status.CRITICAL, f"svc not running: pid file {pidfile} holds no pid")


def test_a_pid_file_that_never_ends_is_read_only_so_far(ctx: CheckContext) -> None:
    result = ProcessMemoryCheck("svc", params={"pidfile": "/dev/zero"}).run(ctx)
    assert (result.status, result.summary) == (Status.CRITICAL, "svc not running: pid file /dev/zero holds no pid")


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"pidfile": "/run/x.pid", "process": "x"},
        {"process": ""},
        {"process": "   "},
        {"process": None},
        {"process": 123},
        {"process": ["nginx"]},
        {"cmdline": "("},
        {"cmdline": "[a-"},
        {"cmdline": "x" * 501},
        {"pidfile": "/run/x\x00.pid"},
        {"command": "systemctl is-active nginx"},
        {"process": "nginx", "min_count": 2},
    ],
)
def test_malformed_process_memory_parameters_are_refused(params: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="process_memory check: "):
        ProcessMemoryCheck("svc", params=params)
