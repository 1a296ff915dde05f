"""Modbus RTU over a real serial line: a pseudo-terminal pair joined by socat, pymodbus's RTU
server on the PLC's end holding known registers, the `modbus` check (transport rtu) and the
`reset_serial` repair on the other end.

A pseudo-terminal carries bytes but ignores baud rate and parity (and this kernel refuses even
parity on one), so the line runs at 8N2 here and a settings mismatch is played by a peer that
answers garbage.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from pitstop.app import build
from pitstop.config import Settings
from pitstop.core.types import Severity, Status
from pitstop.health.base import CheckContext, CheckResult
from pitstop.health.checks.modbus import ModbusCheck, SerialLine, port_lock
from pitstop.incidents import Incident, IncidentState
from pitstop.remediation import ActionContext, actions
from pitstop.storage import Database
from pitstop.testing.clock import FrozenClock
from pitstop.testing.health import check_check_result
from pitstop.testing.services import unavailable

RTU = {"transport": "rtu", "parity": "N", "timeout_s": 0.3}
REGISTERS = [0, 42, 7, 1500]  # device 1's holding registers 0..3 (register 1 reads 42)


@dataclass
class Line:
    """Both ends of the pair: the PLC's and pitstop's (socat's links to /dev/pts/N)."""

    dir: Path
    plc: str
    client: str

    @property
    def prefixes(self) -> list[str]:
        return [f"{self.dir}/", "/dev/pts/"]


@pytest.fixture
def line(tmp_path: Path) -> Iterator[Line]:
    socat = shutil.which("socat")
    if socat is None:
        unavailable("socat is not installed (apt-get install socat): the RTU tests join two pseudo-terminals with it")
        raise AssertionError("unreachable")
    ends = Line(tmp_path, str(tmp_path / "plc"), str(tmp_path / "client"))
    log = (tmp_path / "socat.log").open("w")
    proc = subprocess.Popen(
        [socat, "-d", "-d", f"pty,raw,echo=0,link={ends.plc}", f"pty,raw,echo=0,link={ends.client}"],
        stdout=subprocess.DEVNULL,
        stderr=log,
    )
    try:
        deadline = time.perf_counter() + 5
        while not (Path(ends.plc).exists() and Path(ends.client).exists()):
            assert time.perf_counter() < deadline, (tmp_path / "socat.log").read_text()
            time.sleep(0.01)
        yield ends
    finally:
        proc.terminate()
        proc.wait(5)
        log.close()


class Plc:
    """pymodbus's RTU server on the PLC's end, in a thread with its own event loop. Like a device on
    a bus it answers its own id only; `gateway=True` leaves pymodbus's answer to other ids (an
    exception), as a gateway gives."""

    def __init__(self, port: str, *, gateway: bool = False) -> None:
        self.port, self.gateway = port, gateway
        self.loop: asyncio.AbstractEventLoop | None = None
        self.thread: threading.Thread | None = None
        self.server: Any = None

    def start(self) -> None:
        from pymodbus.datastore import ModbusDeviceContext, ModbusSequentialDataBlock, ModbusServerContext
        from pymodbus.server import ModbusSerialServer

        device = ModbusDeviceContext(hr=ModbusSequentialDataBlock(1, REGISTERS + [0] * 20))
        context = ModbusServerContext(devices={1: device}, single=False)
        ready = threading.Event()

        def only_mine(sending: bool, pdu: Any) -> Any:
            return pdu if sending or self.gateway or pdu.dev_id == 1 else None  # None: not heard

        async def serve() -> None:
            self.server = ModbusSerialServer(
                context, port=self.port, baudrate=19200, parity="N", stopbits=2, trace_pdu=only_mine
            )
            ready.set()
            await self.server.serve_forever()

        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_until_complete, args=(serve(),), daemon=True)
        self.thread.start()
        assert ready.wait(5)

    def stop(self) -> None:
        assert self.loop is not None and self.thread is not None
        asyncio.run_coroutine_threadsafe(self.server.shutdown(), self.loop).result(5)
        self.thread.join(5)
        self.loop.close()
        self.loop = self.thread = None


@pytest.fixture
def plc(line: Line) -> Iterator[Plc]:
    server = Plc(line.plc)
    server.start()
    yield server
    if server.loop is not None:
        server.stop()


@pytest.fixture
def ctx(tmp_path: Path) -> Iterator[CheckContext]:
    db = Database(f"sqlite:///{tmp_path / 'pitstop.db'}")
    yield CheckContext(clock=FrozenClock(), db=db)
    db.dispose()


def read(ctx: CheckContext, target: str, **params: Any) -> CheckResult:
    return check_check_result(ModbusCheck(target, params={**RTU, **params}), ctx)


def healthy_soon(ctx: CheckContext, target: str, **params: Any) -> CheckResult:
    """The server opens its end a moment after it starts: read until it answers (5 s at most)."""
    deadline = time.perf_counter() + 5
    while True:
        result = read(ctx, target, **params)
        if result.status is Status.HEALTHY or time.perf_counter() > deadline:
            return result


# -- the check ----------------------------------------------------------------------------------


def test_rtu_check_reads_the_register_with_a_latency(line: Line, plc: Plc, ctx: CheckContext) -> None:
    result = healthy_soon(ctx, line.client, register=1)
    assert result.status is Status.HEALTHY, result.summary
    assert result.observed["value"] == 42 and result.observed["up"] == 1
    assert 0 < result.observed["latency_ms"] < 1000
    assert result.summary.startswith(f"PLC {line.client}: device 1 register 1 = 42 in ")
    assert result.incident_key == f"plc.link:{line.client}"
    # A named device with the path in `port` (several devices on one bus): keyed by the name.
    named = read(ctx, "boiler-plc", port=line.client, register=3, count=1)
    assert named.status is Status.HEALTHY and named.observed["value"] == 1500
    assert named.summary.startswith(f"PLC boiler-plc ({line.client}): device 1 register 3 = 1500")
    assert named.incident_key == "plc.link:boiler-plc"
    # A thresholded process value, as over TCP.
    from pitstop.health.base import Threshold

    hot = ModbusCheck(
        line.client, params={**RTU, "register": 3}, thresholds={"value": Threshold("value", critical=1000)}
    )
    judged = hot.run(ctx)
    assert judged.status is Status.CRITICAL and "value 1500 >= 1000" in judged.summary


def test_stopped_server_is_critical_no_answer_and_healthy_once_it_is_back(
    line: Line, plc: Plc, ctx: CheckContext
) -> None:
    assert healthy_soon(ctx, line.client, register=1).status is Status.HEALTHY
    plc.stop()
    start = time.perf_counter()
    down = read(ctx, line.client, register=1)
    took = time.perf_counter() - start
    assert down.status is Status.CRITICAL and down.observed == {"up": 0.0}
    assert f"PLC {line.client}: no answer from device 1 in 0.3 s" in down.summary
    assert "19200 8N2" in down.summary  # the settings it tried, for the person at the cabinet
    assert 0.25 < took < 2, took
    plc.start()
    assert healthy_soon(ctx, line.client, register=1).status is Status.HEALTHY


def test_wrong_device_id_is_a_silent_device_and_the_line_still_works(line: Line, plc: Plc, ctx: CheckContext) -> None:
    assert healthy_soon(ctx, line.client, register=1).status is Status.HEALTHY
    wrong = read(ctx, line.client, register=1, device_id=2)
    assert wrong.status is Status.CRITICAL and wrong.observed == {"up": 0.0}
    assert "no answer from device 2 in 0.3 s" in wrong.summary and "not device 2 at 19200 8N2" in wrong.summary
    assert read(ctx, line.client, register=1).status is Status.HEALTHY  # the port and device 1 are fine
    # A register the device does not have: it answers, with an exception code.
    missing = read(ctx, line.client, register=500)
    assert missing.status is Status.CRITICAL and missing.observed["exception_code"] == 2
    assert "device 1 refused to read register 500: exception 2 (illegal data address)" in missing.summary
    assert missing.observed["up"] == 0 and missing.observed["latency_ms"] > 0


def test_a_gateway_answers_a_wrong_device_id_with_an_exception(line: Line, ctx: CheckContext) -> None:
    gateway = Plc(line.plc, gateway=True)
    gateway.start()
    try:
        assert healthy_soon(ctx, line.client, register=1).status is Status.HEALTHY
        wrong = read(ctx, line.client, register=1, device_id=2)
    finally:
        gateway.stop()
    assert wrong.status is Status.CRITICAL
    code = wrong.observed["exception_code"]
    assert code in (4, 11)  # pymodbus answers "device failure"; the Modbus spec's gateways 11
    assert f"device 2 refused to read register 1: exception {code:g} (" in wrong.summary


def test_garbage_on_the_line_points_at_the_line_settings(line: Line, ctx: CheckContext) -> None:
    import serial  # type: ignore[import-untyped]

    peer = serial.Serial(line.plc, 19200, parity="N", stopbits=2, timeout=2)

    def babble() -> None:  # what a device at another baud rate sends back
        if peer.read(8):
            peer.write(b"\xff\x00\xfe\x1c\x55\x80")

    thread = threading.Thread(target=babble)
    thread.start()
    try:
        result = read(ctx, line.client, register=1)
    finally:
        thread.join(5)
        peer.close()
    assert result.status is Status.CRITICAL and result.observed == {"up": 0.0}
    assert (
        "bytes came back but no valid reply from device 1 in 0.3 s (does the device use 19200 8N2?)" in result.summary
    )


def test_port_missing_not_a_device_or_held_by_another_program(line: Line, ctx: CheckContext, tmp_path: Path) -> None:
    import serial

    missing = read(ctx, str(tmp_path / "ttyUSB9"))
    assert missing.status is Status.CRITICAL and missing.summary.endswith("ttyUSB9: no such port")
    (tmp_path / "notes.txt").write_text("x")
    plain = read(ctx, str(tmp_path / "notes.txt"))
    assert plain.status is Status.CRITICAL and "not a serial device" in plain.summary
    holder = serial.Serial(line.client, exclusive=True)  # another program polling the same port
    try:
        held = read(ctx, line.client)
    finally:
        holder.close()
    assert held.status is Status.CRITICAL and held.observed == {"up": 0.0}
    assert "cannot open the port: Could not exclusively lock port" in held.summary


def test_reads_of_one_port_take_turns(line: Line, plc: Plc, ctx: CheckContext) -> None:
    """The runner runs checks in parallel; two devices on one bus must not fail each other's
    exclusive open."""
    assert healthy_soon(ctx, line.client, register=1).status is Status.HEALTHY
    checks = [ModbusCheck(f"device-{i}", params={**RTU, "port": line.client, "register": 1}) for i in range(4)]
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda c: c.run(ctx), checks))
    assert [r.status for r in results] == [Status.HEALTHY] * 4, [r.summary for r in results]


def test_a_read_waits_its_turn_only_as_long_as_the_runner_allows(line: Line, ctx: CheckContext) -> None:
    with port_lock(line.client):  # a reset_serial of the same port holds it
        start = time.perf_counter()
        result = read(ctx, line.client, timeout_s=8.9)
        took = time.perf_counter() - start
    assert result.status is Status.UNKNOWN, result.summary
    assert result.summary == f"PLC {line.client}: the port stayed busy in pitstop for 0.1 s" and took < 1


def test_defaults_are_the_modbus_serial_line_defaults() -> None:
    check = ModbusCheck("/dev/ttyUSB0", params={"transport": "rtu"})
    assert check.line == SerialLine("/dev/ttyUSB0", 19200, "E", 1, 8) and check.line.settings == "19200 8E1"
    assert (check.device_id, check.register, check.count, check.wait_s) == (1, 0, 1, 3.0)
    assert ModbusCheck("/dev/ttyUSB0", params={"transport": "rtu", "parity": "n"}).line.settings == "19200 8N2"
    one = ModbusCheck("x", params={"transport": "rtu", "port": "/dev/ttyS0", "parity": "N", "stopbits": 1})
    assert one.line.settings == "19200 8N1" and one.where == "x (/dev/ttyS0)"
    assert ModbusCheck("/dev/ttyUSB0", params={"transport": "rtu", "baudrate": "9600"}).line.baudrate == 9600
    tcp = ModbusCheck("plc-1.local", params={"device_id": 0})  # tcp stays the default
    assert (tcp.transport, tcp.host, tcp.port, tcp.device_id) == ("tcp", "plc-1.local", 502, 0)


R = {"transport": "rtu"}


@pytest.mark.parametrize(
    ("target", "params", "names"),
    [
        ("/dev/ttyUSB0", {"transport": "udp"}, "transport"),
        ("/dev/ttyUSB0", {"transport": ["rtu"]}, "transport"),
        ("/dev/ttyUSB0", {**R, "parity": "X"}, "parity"),
        ("/dev/ttyUSB0", {**R, "parity": 1}, "parity"),
        ("/dev/ttyUSB0", {**R, "parity": "even"}, "parity"),
        ("/dev/ttyUSB0", {**R, "baudrate": 0}, "baudrate"),
        ("/dev/ttyUSB0", {**R, "baudrate": -9600}, "baudrate"),
        ("/dev/ttyUSB0", {**R, "baudrate": "fast"}, "baudrate"),
        ("/dev/ttyUSB0", {**R, "baudrate": True}, "baudrate"),
        ("/dev/ttyUSB0", {**R, "baudrate": 9600.5}, "baudrate"),
        ("/dev/ttyUSB0", {**R, "baudrate": 10**12}, "baudrate"),
        ("/dev/ttyUSB0", {**R, "stopbits": 3}, "stopbits"),
        ("/dev/ttyUSB0", {**R, "stopbits": 1.5}, "stopbits"),
        ("/dev/ttyUSB0", {**R, "bytesize": 7}, "bytesize"),
        ("/dev/ttyUSB0", {**R, "bytesize": 9}, "bytesize"),
        ("/dev/ttyUSB0", {**R, "device_id": 0}, "device_id"),
        ("/dev/ttyUSB0", {**R, "device_id": 248}, "device_id"),
        ("/dev/ttyUSB0", {**R, "device_id": "one"}, "device_id"),
        ("plc:502", {"device_id": 256}, "device_id"),
        ("/dev/ttyUSB0", {**R, "register": -1}, "register"),
        ("/dev/ttyUSB0", {**R, "register": 65536}, "register"),
        ("/dev/ttyUSB0", {**R, "count": 0}, "count"),
        ("/dev/ttyUSB0", {**R, "count": 126}, "count"),
        ("/dev/ttyUSB0", {**R, "register": 65535, "count": 2}, "count"),
        ("/dev/ttyUSB0", {**R, "timeout_s": 0}, "timeout_s"),
        ("/dev/ttyUSB0", {**R, "timeout_s": -1}, "timeout_s"),
        ("/dev/ttyUSB0", {**R, "timeout_s": "nan"}, "timeout_s"),
        ("/dev/ttyUSB0", {**R, "timeout_s": float("inf")}, "timeout_s"),
        ("/dev/ttyUSB0", {**R, "timeout_s": "soon"}, "timeout_s"),
        ("/dev/ttyUSB0", {**R, "timeout_s": 9.5}, "timeout_s"),  # past the runner's 10 s, less a read's turn
        ("ttyUSB0", R, "port"),
        ("127.0.0.1:502", R, "port"),
        ("plc", {**R, "port": "rfc2217://10.0.0.5:4001"}, "port"),
        ("plc", {**R, "port": "socket://10.0.0.5:4001"}, "port"),
        ("plc", {**R, "port": "/dev/ttyUSB0\x00"}, "port"),
        ("plc", {**R, "port": "/dev/../etc/shadow"}, "port"),
        ("plc", {**R, "port": 5}, "port"),
        ("plc", {**R, "port": "/" + "a" * 300}, "port"),
        ("plc:502", {"baudrate": 9600}, "baudrate"),
        ("plc:502", {"port": "/dev/ttyUSB0"}, "port"),
        ("/dev/ttyUSB0", {**R, "speed": 9600}, "speed"),
    ],
)
def test_bad_parameters_are_refused_naming_the_parameter(target: str, params: dict[str, Any], names: str) -> None:
    with pytest.raises(ValueError, match=f"modbus check: .*{names}"):
        ModbusCheck(target, params=params)


# -- reset_serial -------------------------------------------------------------------------------


def incident(target: str) -> Incident:
    at = datetime(2026, 1, 5, 7, 0, tzinfo=UTC)
    return Incident(
        1, f"plc.link:{target}", IncidentState.OPEN, Severity.CRITICAL, "t", None, "check:modbus", None, at, at, None
    )


def action_ctx(**commands: Any) -> ActionContext:
    from pitstop.config.remediation import CommandSettings

    specs = {name: CommandSettings(argv=argv, destructive=False) for name, argv in commands.items()}
    return ActionContext(clock=FrozenClock(), db=None, commands=specs)  # type: ignore[arg-type]


def reset(line: Line, **params: Any) -> Any:
    return actions.create("reset_serial", allowed_prefixes=line.prefixes, parity="N", **params)


def test_reset_serial_plan_apply_verify_and_the_check_after_the_plc_is_back(
    line: Line, plc: Plc, ctx: CheckContext
) -> None:
    assert healthy_soon(ctx, line.client, register=1).status is Status.HEALTHY
    plc.stop()
    assert read(ctx, line.client, register=1).status is Status.CRITICAL
    action, actx = reset(line), action_ctx()
    plan = action.plan(incident(line.client), actx)  # the target is the port
    device = os.path.realpath(line.client)
    assert plan.steps == (
        f"open {line.client} ({device}) exclusively at 19200 8N2, flow control off, unread input discarded"
        " and unsent output",
        f"close {line.client}",
        f"reopen {line.client} at 19200 8N2 within 5 s, then re-run the check",
    )
    assert not plan.destructive and plan.params["port"] == line.client
    outcome = action.apply(plan, actx)
    assert outcome.ok, outcome.detail
    assert outcome.detail == (
        f"opened {line.client} at 19200 8N2, discarded its buffers, closed; {line.client} opens at 19200 8N2"
    )
    assert outcome.data == {"reset": True, "reopened": True}
    # The port is fine, so the action's own verification passes; the check still decides.
    assert action.verify(plan, actx) == (True, f"{line.client} opens at 19200 8N2")
    assert read(ctx, line.client, register=1).status is Status.CRITICAL
    plc.start()
    assert healthy_soon(ctx, line.client, register=1).status is Status.HEALTHY


def test_reset_serial_runs_the_command_that_brings_a_missing_port_back(line: Line, tmp_path: Path) -> None:
    """A USB adapter that fell off the bus: the port is gone until the command (here: a link
    made again, as udev would) brings it back."""
    port = str(tmp_path / "ttyUSB0")
    action = reset(line, port=port, command="usb-reset", args=["{port}"], settle_s=2)
    actx = action_ctx(**{"usb-reset": ["ln", "-s", os.path.realpath(line.client)]})
    plan = action.plan(incident("ttyUSB0-plc"), actx)
    assert plan.steps[0] == f"{port} is missing: the command may bring it back"
    assert plan.steps[1] == f"run usb-reset: ln -s {os.path.realpath(line.client)} {port} (timeout 60 s)"
    assert action.verify(plan, actx) == (False, f"{port}: no such port")
    outcome = action.apply(plan, actx)
    assert outcome.ok, outcome.detail
    assert outcome.data == {"reset": False, "exit_code": 0, "reopened": True}
    assert outcome.detail == f"{port}: no such port; usb-reset exited 0; {port} opens at 19200 8N2"
    assert action.verify(plan, actx) == (True, f"{port} opens at 19200 8N2")
    # Without a command there is nothing to do for a missing port: planning refuses.
    with pytest.raises(ValueError, match="no such port, and no command"):
        reset(line, port=str(tmp_path / "ttyUSB1")).plan(incident("x"), actx)


def test_reset_serial_refuses_what_is_not_a_serial_device_under_the_prefixes(line: Line, tmp_path: Path) -> None:
    actx = action_ctx()
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(ValueError, match="not a serial device"):
        reset(line, port=str(tmp_path / "notes.txt")).plan(incident("x"), actx)
    (tmp_path / "null").symlink_to("/dev/null")  # a character device, but not a serial one
    with pytest.raises(ValueError, match="leads to /dev/null, which is not under an allowed prefix"):
        reset(line, port=str(tmp_path / "null")).plan(incident("x"), actx)
    with pytest.raises(ValueError, match="/dev/null is not under an allowed prefix"):
        actions.create("reset_serial").plan(incident("/dev/null"), actx)  # the default prefixes
    with pytest.raises(ValueError, match="target 'boiler-plc' is not a device path; give `port`"):
        reset(line).plan(incident("boiler-plc"), actx)
    # A stored plan pointed elsewhere is refused when applied, before anything is opened.
    action = reset(line)
    plan = action.plan(incident(line.client), actx)
    tampered = type(plan).from_dict({**plan.as_dict(), "params": {**plan.params, "port": "/dev/null"}})
    refused = action.apply(tampered, actx)
    assert not refused.ok and refused.detail.startswith("refused: /dev/null is not under an allowed prefix")
    other = type(plan).from_dict({**plan.as_dict(), "params": {**plan.params, "toggle": ["dtr"]}})
    assert action.apply(other, actx).detail == "the plan is not this rule's reset"


def test_reset_serial_reports_a_line_without_modem_lines(line: Line) -> None:
    """A pseudo-terminal has no DTR: asked to pulse it, the reset fails and says why."""
    action, actx = reset(line, toggle=["dtr", "rts"]), action_ctx()
    plan = action.plan(incident(line.client), actx)
    assert "drop DTR and RTS for 0.25 s, raise again" in plan.steps
    outcome = action.apply(plan, actx)
    assert not outcome.ok and outcome.data["reset"] is False and outcome.data["reopened"] is True
    assert f"cannot drop DTR on {line.client}: Inappropriate ioctl for device" in outcome.detail


@pytest.mark.parametrize(
    ("params", "names"),
    [
        ({"port": "ttyUSB0"}, "port"),
        ({"port": "/dev/null"}, "not under an allowed prefix"),
        ({"allowed_prefixes": "/dev/ttyUSB"}, "allowed_prefixes"),
        ({"allowed_prefixes": []}, "allowed_prefixes"),
        ({"allowed_prefixes": ["/"]}, "allowed_prefixes"),
        ({"allowed_prefixes": ["/dev/"]}, "allowed_prefixes"),
        ({"allowed_prefixes": ["/dev"]}, "allowed_prefixes"),
        ({"allowed_prefixes": ["/dev/ttyUSB", "/de"]}, "allowed_prefixes"),
        ({"allowed_prefixes": ["dev/tty"]}, "allowed_prefixes"),
        ({"allowed_prefixes": ["/dev/../etc/"]}, "allowed_prefixes"),
        ({"allowed_prefixes": [7]}, "allowed_prefixes"),
        ({"baudrate": 0}, "baudrate"),
        ({"parity": "Q"}, "parity"),
        ({"stopbits": 0}, "stopbits"),
        ({"toggle": "dtr"}, "toggle"),
        ({"toggle": ["dsr"]}, "toggle"),
        ({"toggle": ["dtr", "dtr"]}, "toggle"),
        ({"toggle": [["dtr"]]}, "toggle"),
        ({"pulse_s": 0}, "pulse_s"),
        ({"pulse_s": 11}, "pulse_s"),
        ({"settle_s": -1}, "settle_s"),
        ({"grace_s": -1}, "grace_s"),
        ({"grace_s": True}, "grace_s"),
        ({"flush": "yes"}, "flush"),
        ({"command": ""}, "command"),
        ({"command": ["usbreset"]}, "command"),
        ({"command": "x", "args": "{port}"}, "args"),
        ({"args": ["{port}"]}, "args"),
        ({"speed": 9600}, "speed"),
    ],
)
def test_reset_serial_bad_parameters_are_refused(params: dict[str, Any], names: str) -> None:
    with pytest.raises(ValueError, match=f"reset_serial: .*{names}"):
        actions.create("reset_serial", **params)


def test_reset_serial_through_the_engine_frees_a_port_a_stuck_program_holds(
    line: Line, plc: Plc, ctx: CheckContext, tmp_path: Path
) -> None:
    """The guide's first step, end to end: the check finds the port held by a stuck poller, the
    rule's reset runs the configured command that ends it, the check verifies, the incident resolves."""
    assert healthy_soon(ctx, line.client, register=1).status is Status.HEALTHY
    stuck = subprocess.Popen(
        [sys.executable, "-c", HOLDER, line.client], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    assert stuck.stdout is not None and stuck.stdout.readline().strip() == "holding"
    db = Database(f"sqlite:///{tmp_path / 'engine.db'}")
    db.upgrade()
    settings = Settings(
        data_dir=tmp_path / "data",
        health={
            "default_checks": False,
            "checks": [{"check": "modbus", "target": line.client, "params": {**RTU, "register": 1}}],
        },
        remediation={
            "verify_timeout_s": 3.0,
            "verify_interval_s": 0.05,
            "commands": {"end-poller": {"argv": ["kill", str(stuck.pid)], "destructive": False}},
            "rules": [
                {
                    "match": "plc.link:*",
                    "action": "reset_serial",
                    "params": {
                        "allowed_prefixes": line.prefixes,
                        "parity": "N",
                        "command": "end-poller",
                        "settle_s": 3,
                    },
                }
            ],
        },
    )
    pitstop = build(settings, clock=FrozenClock(), db=db)
    try:
        round_ = pitstop.health.run_round()
        assert "Could not exclusively lock port" in round_.results[0].summary
        [opened] = pitstop.incidents.list(state=IncidentState.OPEN)
        assert opened.key == f"plc.link:{line.client}"
        start = time.perf_counter()
        [rid] = pitstop.remediation.run_pass()
        took = time.perf_counter() - start
        done = pitstop.remediation.store.get(rid)
        assert done.state == "healed", done.result
        steps = {s.step: s for s in pitstop.remediation.store.steps(rid)}
        assert list(steps) == ["seen", "planned", "applied", "verified", "resolved"]
        assert steps["applied"].detail.startswith(f"cannot open {line.client}: Could not exclusively lock port")
        assert "end-poller exited 0" in steps["applied"].detail
        assert "check modbus: healthy" in steps["verified"].detail
        assert f"{line.client} opens at 19200 8N2" in steps["verified"].detail
        assert pitstop.incidents.get(opened.id).state is IncidentState.RESOLVED
        assert stuck.wait(5) is not None and took < 3, took
    finally:
        stuck.kill()
        stuck.wait(5)
        stuck.stdout.close()
        pitstop.close()


# A program that took the port and never lets go.
HOLDER = """
import sys, time
import serial
port = serial.Serial(sys.argv[1], exclusive=True)
print("holding", flush=True)
time.sleep(60)
"""
