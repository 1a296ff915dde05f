"""The PLC link: a holding register over Modbus TCP or RTU on a serial line, and the serial-line
helpers the reset_serial repair shares with it."""

from __future__ import annotations

import math
import os
import stat
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pitstop.core.types import Status
from pitstop.health.base import Check, CheckContext, CheckResult
from pitstop.health.checks.network import LATENCY, host_port, only_known_params

# -- serial lines: the Modbus RTU check and the reset_serial repair drive them the same way ------

MAX_BAUDRATE = 4_000_000
PARITIES = ("N", "E", "O")


@dataclass(frozen=True, slots=True)
class SerialLine:
    """A serial port and the settings pitstop drives it with (`line_settings` reads them from
    parameters, with the Modbus serial line's defaults)."""

    port: str
    baudrate: int = 19200
    parity: str = "E"
    stopbits: int = 1
    bytesize: int = 8

    @property
    def settings(self) -> str:
        """As the guides write them: "19200 8E1"."""
        return f"{self.baudrate} {self.bytesize}{self.parity}{self.stopbits}"

    def open(self, timeout_s: float) -> Any:
        """The port, opened exclusively (no other program may hold it): pyserial applies the
        settings, turns flow control off and discards unread input. Raises with the reason
        (serial.SerialException, OSError or termios.error)."""
        import serial  # type: ignore[import-untyped]

        return serial.Serial(
            self.port,
            baudrate=self.baudrate,
            bytesize=self.bytesize,
            parity=self.parity,
            stopbits=self.stopbits,
            timeout=timeout_s,
            write_timeout=timeout_s,
            exclusive=True,
        )


def whole_number(owner: str, name: str, value: Any) -> int:
    """An int parameter (also written as a string of digits); ValueError naming it otherwise."""
    if isinstance(value, str) and value.strip().lstrip("+-").isdigit():
        return int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{owner}: {name} must be a whole number, got {value!r}"[:300])
    return value


def seconds(owner: str, name: str, value: Any, *, most: float, zero: bool = False) -> float:
    """A duration parameter in seconds, more than 0 (or 0 when `zero`) and at most `most`."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"{owner}: {name} must be a number of seconds, got {value!r}"[:300])
    try:
        number = float(value)
    except ValueError:
        raise ValueError(f"{owner}: {name} must be a number of seconds, got {value!r}"[:300]) from None
    if not (math.isfinite(number) and (number >= 0 if zero else number > 0) and number <= most):
        least = "at least 0" if zero else "more than 0"
        raise ValueError(f"{owner}: {name} must be {least} and at most {most:g} s, got {value!r}"[:300])
    return number


def device_path(owner: str, port: Any) -> str:
    """A serial port's path as a parameter gives it; ValueError unless it is an absolute path."""
    if (
        not isinstance(port, str)
        or not port.startswith("/")
        or len(port) > 255
        or "\x00" in port
        or "://" in port  # pyserial would take it as a URL (rfc2217://, socket://, ...)
        or ".." in port.split("/")
    ):
        raise ValueError(f"{owner}: port must be a device path such as /dev/ttyUSB0, got {port!r}"[:300])
    return port


def line_settings(owner: str, params: Mapping[str, Any]) -> dict[str, Any]:
    """baudrate, parity, stopbits and bytesize from the parameters, with the Modbus serial line's
    defaults; raises ValueError naming a bad one."""
    baudrate = whole_number(owner, "baudrate", params.get("baudrate", 19200))
    if not 0 < baudrate <= MAX_BAUDRATE:
        raise ValueError(f"{owner}: baudrate must be positive and at most {MAX_BAUDRATE} bit/s, got {baudrate}")
    parity = params.get("parity", "E")
    if not isinstance(parity, str) or parity.upper() not in PARITIES:
        raise ValueError(f"{owner}: parity must be N (none), E (even) or O (odd), got {parity!r}"[:300])
    parity = parity.upper()
    stopbits = whole_number(owner, "stopbits", params.get("stopbits", 2 if parity == "N" else 1))
    if stopbits not in (1, 2):
        raise ValueError(f"{owner}: stopbits must be 1 or 2, got {stopbits}")
    bytesize = whole_number(owner, "bytesize", params.get("bytesize", 8))
    if not 5 <= bytesize <= 8:
        raise ValueError(f"{owner}: bytesize must be 5, 6, 7 or 8 data bits, got {bytesize}")
    return {"baudrate": baudrate, "parity": parity, "stopbits": stopbits, "bytesize": bytesize}


def serial_line(owner: str, port: Any, params: Mapping[str, Any]) -> SerialLine:
    """The line on `port` with the settings of `params`; raises ValueError naming a bad parameter."""
    return SerialLine(device_path(owner, port), **line_settings(owner, params))


def port_problem(port: str) -> str | None:
    """Why `port` cannot be a serial port ("no such port", "not a character device"); None when it can."""
    try:
        mode = Path(port).stat().st_mode  # follows /dev/serial/by-id links to the device
    except FileNotFoundError:
        return "no such port"
    except OSError as exc:
        return f"cannot look at the port ({exc.strerror or type(exc).__name__})"
    return None if stat.S_ISCHR(mode) else "not a serial device (not a character device)"


def open_error(exc: BaseException) -> str:
    """What went wrong opening a port, in one line: pyserial's (errno, text) without the errno, and
    termios's refusal of the settings."""
    import termios

    args = exc.args
    if len(args) == 2 and isinstance(args[0], int) and isinstance(args[1], str):
        return f"the line settings were refused: {args[1]}" if isinstance(exc, termios.error) else args[1]
    return str(exc) or type(exc).__name__


_PORT_LOCKS: dict[str, threading.Lock] = {}
_PORT_LOCKS_GUARD = threading.Lock()


def port_lock(port: str) -> threading.Lock:
    """One lock per serial device (by its real path): a bus has one master at a time and pitstop
    opens the port exclusively, so its reads and resets of one port take turns instead of failing."""
    key = os.path.realpath(port)
    with _PORT_LOCKS_GUARD:
        return _PORT_LOCKS.setdefault(key, threading.Lock())


# Modbus exception codes, as the PLC's manual names them.
MODBUS_EXCEPTIONS = {
    1: "illegal function",
    2: "illegal data address",
    3: "illegal data value",
    4: "device failure",
    5: "acknowledge",
    6: "device busy",
    8: "memory parity error",
    10: "gateway path unavailable",
    11: "gateway target did not respond",
}
LINE_SETTINGS = ("baudrate", "parity", "stopbits", "bytesize")
SERIAL_PARAMS = {"port", *LINE_SETTINGS}


class ModbusCheck(Check):
    """A PLC link: read holding register(s) over Modbus TCP (`target` host[:port], default 502), or
    over Modbus RTU on a serial line (`transport = "rtu"`: `target` is the device path, e.g.
    /dev/ttyUSB0, or a name of the device with the path in `port`, for several devices on one bus).

    params: transport (tcp), register (0), count (1), device_id (the unit/slave id, 1),
    timeout_s (3); rtu also port (the target), baudrate (19200), parity (E), stopbits (1; 2 with
    parity N), bytesize (8). Observed: latency_ms, value (the first register; give it thresholds
    to watch a process value), up, and for rtu exception_code when the device refused the read.
    """

    name = "modbus"
    runs_anywhere = True
    issue = "plc.link"
    waits_on_network = True
    default_thresholds = (LATENCY,)

    def runs_on_any_machine(self) -> bool:
        return self.transport == "tcp"  # RTU: the serial line is plugged into one machine

    def configure(self, **params: Any) -> None:
        transport = params.get("transport", "tcp")
        if transport not in ("tcp", "rtu"):
            raise ValueError(f"modbus check: transport must be tcp or rtu, got {transport!r}"[:300])
        self.transport = str(transport)
        if transport == "tcp" and (serial_only := SERIAL_PARAMS & set(params)):
            raise ValueError(f"modbus check: {', '.join(sorted(serial_only))} only with transport = 'rtu'")
        only_known_params(
            "modbus", params, {"transport", "register", "count", "device_id", "timeout_s"} | SERIAL_PARAMS
        )
        self.register = whole_number("modbus check", "register", params.get("register", 0))
        self.count = whole_number("modbus check", "count", params.get("count", 1))
        self.device_id = whole_number("modbus check", "device_id", params.get("device_id", 1))
        # The runner gives a check timeout_s (10 s) in all; a longer wait would end as `unknown`.
        self.wait_s = seconds("modbus check", "timeout_s", params.get("timeout_s", 3.0), most=self.timeout_s - 1)
        if not 0 <= self.register <= 65535:
            raise ValueError(f"modbus check: register must be 0..65535, got {self.register}")
        if not (1 <= self.count <= 125 and self.register + self.count <= 65536):
            raise ValueError(f"modbus check: count must be 1..125 registers within 0..65535, got {self.count}")
        if transport == "tcp":
            self.host, self.port = host_port(self.target, 502)
            if not 0 <= self.device_id <= 255:
                raise ValueError(f"modbus check: device_id must be 0..255 over tcp, got {self.device_id}")
            return
        # On a serial bus 0 is a broadcast, which no device answers; 248..255 are reserved.
        if not 1 <= self.device_id <= 247:
            raise ValueError(f"modbus check: device_id must be 1..247 over rtu, got {self.device_id}")
        self.line = serial_line("modbus check", params.get("port", self.target), params)
        if self.line.bytesize != 8:
            raise ValueError("modbus check: bytesize must be 8 over rtu (RTU frames are 8-bit bytes)")
        self.where = self.line.port if self.line.port == self.target else f"{self.target} ({self.line.port})"

    def run(self, ctx: CheckContext, /) -> CheckResult:
        return self._run_rtu(ctx) if self.transport == "rtu" else self._run_tcp(ctx)

    def _run_tcp(self, ctx: CheckContext) -> CheckResult:
        from pymodbus.client import ModbusTcpClient
        from pymodbus.exceptions import ModbusException

        client = ModbusTcpClient(self.host, port=self.port, timeout=self.wait_s, retries=0)
        start = time.perf_counter()
        try:
            if not client.connect():  # type: ignore[no-untyped-call]
                return self.result(ctx, Status.CRITICAL, f"PLC {self.target}: cannot connect", observed={"up": 0.0})
            reply = client.read_holding_registers(self.register, count=self.count, device_id=self.device_id)
        except ModbusException as exc:
            return self.result(ctx, Status.CRITICAL, f"PLC {self.target}: {type(exc).__name__}", observed={"up": 0.0})
        finally:
            client.close()  # type: ignore[no-untyped-call]
        latency = (time.perf_counter() - start) * 1000
        if reply.isError():
            return self.result(
                ctx,
                Status.CRITICAL,
                f"PLC {self.target}: register {self.register} read failed ({reply})"[:300],
                observed={"up": 0.0, "latency_ms": round(latency, 3)},
            )
        value = float(reply.registers[0])
        observed = {"up": 1.0, "latency_ms": round(latency, 3), "value": value}
        return self.judge(ctx, observed, f"PLC {self.target}: register {self.register} = {value:g} in {latency:.0f} ms")

    def _run_rtu(self, ctx: CheckContext) -> CheckResult:
        from pymodbus.client import ModbusSerialClient
        from pymodbus.exceptions import ModbusException

        line, down = self.line, {"up": 0.0}
        if problem := port_problem(line.port):
            return self.result(ctx, Status.CRITICAL, f"PLC {self.where}: {problem}", observed=down)
        # Wait for another read of this bus (a silent device takes its whole timeout) or a reset
        # as long as the runner's time for this check allows.
        lock, wait = port_lock(line.port), max(self.timeout_s - self.wait_s - 1, 0.1)
        if not lock.acquire(timeout=wait):
            return self.result(ctx, Status.UNKNOWN, f"PLC {self.where}: the port stayed busy in pitstop for {wait:g} s")
        heard = []  # anything at all came back: a garbled reply means the line settings differ

        def listen(sending: bool, data: bytes) -> bytes:
            if not sending and data:
                heard.append(len(data))
            return data

        client = ModbusSerialClient(
            line.port,
            baudrate=line.baudrate,
            bytesize=line.bytesize,
            parity=line.parity,
            stopbits=line.stopbits,
            timeout=self.wait_s,
            retries=0,
            trace_packet=listen,
        )
        try:
            start = time.perf_counter()
            if not client.connect():  # pymodbus logs the reason; open once more to say it
                return self.result(
                    ctx, Status.CRITICAL, f"PLC {self.where}: cannot open the port: {self._why_closed()}", observed=down
                )
            try:
                reply = client.read_holding_registers(self.register, count=self.count, device_id=self.device_id)
            except ModbusException:
                return self.result(ctx, Status.CRITICAL, self._silence(bool(heard)), observed=down)
            latency = (time.perf_counter() - start) * 1000
        finally:
            client.close()  # type: ignore[no-untyped-call]
            lock.release()
        if reply.isError():
            code = int(getattr(reply, "exception_code", 0) or 0)
            return self.result(
                ctx,
                Status.CRITICAL,
                f"PLC {self.where}: device {self.device_id} refused to read register {self.register}: "
                f"exception {code} ({MODBUS_EXCEPTIONS.get(code, 'unknown')})",
                observed={**down, "latency_ms": round(latency, 3), "exception_code": float(code)},
            )
        value = float(reply.registers[0])
        observed = {"up": 1.0, "latency_ms": round(latency, 3), "value": value}
        summary = f"PLC {self.where}: device {self.device_id} register {self.register} = {value:g} in {latency:.0f} ms"
        return self.judge(ctx, observed, summary)

    def _why_closed(self) -> str:
        try:
            self.line.open(self.wait_s).close()
        except Exception as exc:  # pyserial raises SerialException, OSError or termios.error
            return open_error(exc)[:200]
        return "it opens now (it was busy a moment ago)"

    def _silence(self, heard: bool) -> str:
        where, device, settings = self.where, self.device_id, self.line.settings
        if heard:
            return (
                f"PLC {where}: bytes came back but no valid reply from device {device} in {self.wait_s:g} s "
                f"(does the device use {settings}?)"
            )
        return (
            f"PLC {where}: no answer from device {device} in {self.wait_s:g} s (PLC off or unwired, "
            f"or not device {device} at {settings})"
        )
