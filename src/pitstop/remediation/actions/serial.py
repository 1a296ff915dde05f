"""reset_serial: reset the serial connection to a PLC, the first step of its troubleshooting guide.

Resetting means: open the port exclusively with the line's settings (which also turns flow control
off and discards unread input), optionally discard unsent output and pulse DTR/RTS, close it,
optionally run a configured command (a USB reset, a gateway restart), then reopen it to prove it
opens. It acts on a real machine, so it refuses any path that is not a character device under the
allowed prefixes, checked when planned and again when applied.
"""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from pitstop.health.checks.modbus import (
    LINE_SETTINGS,
    SerialLine,
    device_path,
    line_settings,
    open_error,
    port_lock,
    port_problem,
    seconds,
)
from pitstop.incidents import Incident
from pitstop.remediation.actions._command import run
from pitstop.remediation.base import Action, ActionContext, Outcome, Plan

if TYPE_CHECKING:
    from pitstop.config.remediation import CommandSettings

# Serial device families only: /dev/tty alone would also match the consoles (/dev/tty1) and the
# controlling terminal, and a reset puts a port in raw mode.
DEFAULT_PREFIXES = (
    "/dev/ttyS",
    "/dev/ttyUSB",
    "/dev/ttyACM",
    "/dev/ttyAMA",
    "/dev/ttymxc",
    "/dev/serial/by-id/",
    "/dev/serial/by-path/",
)
LINES = ("dtr", "rts")
OPEN_TIMEOUT_S = 2.0
LOCK_WAIT_S = 10.0  # a check reading the same port finishes within its timeout
POLL_S = 0.1


class ResetSerial(Action):
    """params: port (the device path; default the incident's target, as the rtu modbus check keys
    it), allowed_prefixes (what may be reset; default the serial families /dev/ttyS, ttyUSB,
    ttyACM, ttyAMA, ttymxc and /dev/serial/by-id/, by-path/), baudrate, parity, stopbits, bytesize
    (the line's settings, applied when the port is opened; 19200 8E1), flush (discard unread input
    and unsent output, true), toggle (["dtr", "rts"]: drop them for pulse_s, 0.25 s, then raise
    them; many adapters and some devices reset on it; none by default), command (a name in
    `remediation.commands`) with args ({port} filled in), settle_s (how long the port may take to
    come back after the command, 5), grace_s (wait before verifying, 0).
    """

    name = "reset_serial"
    destructive: ClassVar[bool] = False  # a command's own `destructive` decides when one runs

    def configure(self, **params: Any) -> None:
        known = {"port", "allowed_prefixes", "flush", "toggle", "pulse_s", "command", "args", "settle_s", "grace_s"}
        if unknown := set(params) - known - set(LINE_SETTINGS):
            raise ValueError(f"reset_serial: unknown parameter(s) {', '.join(sorted(unknown))}")
        self.port = device_path("reset_serial", params["port"]) if "port" in params else None
        self.settings = line_settings("reset_serial", params)
        self.prefixes = _prefixes(params.get("allowed_prefixes", DEFAULT_PREFIXES))
        if self.port is not None and (problem := self._outside(self.port)):
            raise ValueError(f"reset_serial: {problem}")
        flush = params.get("flush", True)
        if not isinstance(flush, bool):
            raise ValueError(f"reset_serial: flush must be true or false, got {flush!r}"[:300])
        self.flush = flush
        toggle = params.get("toggle", [])
        if not isinstance(toggle, list) or not all(t in LINES for t in toggle) or len(set(toggle)) != len(toggle):
            raise ValueError(f"reset_serial: toggle must be a list of dtr and rts, got {toggle!r}"[:300])
        self.toggle: list[str] = [str(line) for line in toggle]
        self.pulse_s = seconds("reset_serial", "pulse_s", params.get("pulse_s", 0.25), most=10)
        self.settle_s = seconds("reset_serial", "settle_s", params.get("settle_s", 5.0), most=120)
        self.grace_s = seconds("reset_serial", "grace_s", params.get("grace_s", 0), most=600, zero=True)
        command = params.get("command")
        if command is not None and (not isinstance(command, str) or not command.strip()):
            raise ValueError("reset_serial: command must be the name of a command in remediation.commands")
        self.command: str | None = command
        args = params.get("args", [])
        if not isinstance(args, list) or not all(isinstance(a, str) and "\x00" not in a for a in args):
            raise ValueError("reset_serial: args must be a list of strings")
        if args and command is None:
            raise ValueError("reset_serial: args need a command")
        self.args: list[str] = args

    # -- plan, apply, verify --------------------------------------------------------------------

    def plan(self, incident: Incident, ctx: ActionContext, /) -> Plan:
        port = self._port(incident)
        if problem := self._refusal(port):
            raise ValueError(f"reset_serial: {problem}")
        spec = self._command(ctx)
        line = SerialLine(port, **self.settings)
        device = os.path.realpath(port)
        shown = port if device == port else f"{port} ({device})"
        steps = []
        if port_problem(port) is None:
            opened = f"open {shown} exclusively at {line.settings}, flow control off, unread input discarded"
            steps.append(opened + (" and unsent output" if self.flush else ""))
            if self.toggle:
                steps.append(f"drop {' and '.join(t.upper() for t in self.toggle)} for {self.pulse_s:g} s, raise again")
            steps.append(f"close {port}")
        else:
            steps.append(f"{port} is missing: the command may bring it back")
        if spec is not None:
            argv = [*spec.argv, *self._args(port)]
            steps.append(f"run {self.command}: {' '.join(argv)} (timeout {spec.timeout_s:g} s)")
        steps.append(f"reopen {port} at {line.settings} within {self.settle_s:g} s, then re-run the check")
        return Plan(
            action=self.name,
            target=incident.target,
            steps=tuple(steps),
            destructive=bool(spec is not None and spec.destructive),
            params=self._params(port),
            grace_s=self.grace_s,
        )

    def apply(self, plan: Plan, ctx: ActionContext, /) -> Outcome:
        started = ctx.clock.now()
        port = str(plan.params.get("port", ""))
        try:
            mine = self.port is None or port == self.port
            if not mine or dict(plan.params) != self._params(device_path("reset_serial", port)):
                return self.outcome(plan, ctx, started, False, "the plan is not this rule's reset")
            spec = self._command(ctx)
        except ValueError as exc:
            return self.outcome(plan, ctx, started, False, str(exc))
        if problem := self._refusal(port):  # again: the device may have changed since the plan
            return self.outcome(plan, ctx, started, False, f"refused: {problem}")
        line = SerialLine(port, **self.settings)
        lock = port_lock(port)
        if not lock.acquire(timeout=LOCK_WAIT_S):
            return self.outcome(plan, ctx, started, False, f"{port} stayed busy in pitstop for {LOCK_WAIT_S:g} s")
        output, ran = "", True
        data: dict[str, Any] = {}
        try:
            reset, said = self._reset(line, ctx)
            notes, data["reset"] = [said], reset
            if spec is not None:
                code, output = run([*spec.argv, *self._args(port)], spec.timeout_s)
                ran = code == 0
                data["exit_code"] = code
                notes.append(f"{self.command} exited {code}" if code is not None else f"{self.command} did not finish")
            reopened, said = self._reopen(line, ctx, self.settle_s)
            notes.append(said)
            data["reopened"] = reopened
        finally:
            lock.release()
        # A failed first open is fine when the command fixed it (a port held by a stuck program).
        ok = (reset or spec is not None) and ran and reopened
        return self.outcome(plan, ctx, started, ok, "; ".join(notes), output=output, data=data)

    def verify(self, plan: Plan, ctx: ActionContext, /) -> tuple[bool, str] | None:
        """The port opens with the line's settings; the check that opened the incident re-runs too."""
        port = str(plan.params.get("port", ""))
        if problem := self._refusal(port, missing_ok=False):
            return False, problem
        lock = port_lock(port)
        if not lock.acquire(timeout=LOCK_WAIT_S):
            return False, f"{port} stayed busy in pitstop for {LOCK_WAIT_S:g} s"
        try:
            return self._reopen(SerialLine(port, **self.settings), ctx, 0.0)
        finally:
            lock.release()

    # -- the steps ------------------------------------------------------------------------------

    def _reset(self, line: SerialLine, ctx: ActionContext) -> tuple[bool, str]:
        """Open, discard, pulse, close: (done, what happened)."""
        import termios  # POSIX only, like the ports; the actions still import elsewhere

        if problem := port_problem(line.port):
            return False, f"{line.port}: {problem}"
        try:
            handle = line.open(OPEN_TIMEOUT_S)
        except Exception as exc:  # pyserial raises SerialException, OSError or termios.error
            return False, f"cannot open {line.port}: {open_error(exc)}"[:500]
        done, dropped, step = [f"opened {line.port} at {line.settings}"], [], "discard its buffers"
        try:
            if self.flush:
                handle.reset_input_buffer()
                handle.reset_output_buffer()
                done.append("discarded its buffers")
            for name in self.toggle:
                step = f"drop {name.upper()}"
                setattr(handle, name, False)
                dropped.append(name)
            if dropped:
                ctx.sleep(self.pulse_s)
                done.append(f"pulsed {' and '.join(d.upper() for d in dropped)} for {self.pulse_s:g} s")
        except (OSError, termios.error) as exc:  # a pseudo-terminal or an adapter without modem lines
            return False, f"{', '.join(done)}; cannot {step} on {line.port}: {_reason(exc)}"[:500]
        finally:
            for name in dropped:  # raise them again; reopening raises them too, should this fail
                with contextlib.suppress(OSError, termios.error):
                    setattr(handle, name, True)
            handle.close()
        return True, ", ".join([*done, "closed"])

    def _reopen(self, line: SerialLine, ctx: ActionContext, settle_s: float) -> tuple[bool, str]:
        """Open and close the port again, waiting up to settle_s for it to come back."""
        why = ""
        for attempt in range(1 + math.ceil(settle_s / POLL_S)):
            if attempt:
                ctx.sleep(POLL_S)
            if problem := self._outside(line.port):  # it came back as something it must not be
                return False, f"refused to reopen: {problem}"
            why = port_problem(line.port) or ""
            if not why:
                try:
                    line.open(OPEN_TIMEOUT_S).close()
                except Exception as exc:
                    why = open_error(exc)
                else:
                    return True, f"{line.port} opens at {line.settings}"
        return False, f"{line.port} does not open: {why}"[:500]

    # -- guards and helpers ---------------------------------------------------------------------

    def _port(self, incident: Incident) -> str:
        if self.port is not None:
            return self.port
        try:
            return device_path("reset_serial", incident.target)
        except ValueError:
            raise ValueError(
                f"reset_serial: the incident's target {incident.target!r} is not a device path; give `port`"[:300]
            ) from None

    def _outside(self, port: str) -> str | None:
        """Why `port` is not one reset_serial may touch by its path: the path as given and the device
        it leads to (a by-id link) must both be under an allowed prefix."""
        if not _under(port, self.prefixes):
            return f"{port} is not under an allowed prefix ({', '.join(self.prefixes)})"
        device = os.path.realpath(port)
        if not _under(device, self.prefixes):
            return f"{port} leads to {device}, which is not under an allowed prefix"
        return None

    def _refusal(self, port: str, *, missing_ok: bool | None = None) -> str | None:
        """Why reset_serial must not act on `port` now; None when it may. A missing port is allowed
        when a command follows (a USB reset may bring it back), unless `missing_ok` says otherwise."""
        if problem := self._outside(port):
            return problem
        problem = port_problem(port)
        if problem == "no such port":
            if self.command is not None if missing_ok is None else missing_ok:
                return None
            return f"{port}: no such port" + ("" if self.command else ", and no command to bring it back")
        return f"{port}: {problem}" if problem else None

    def _command(self, ctx: ActionContext) -> CommandSettings | None:
        if self.command is None:
            return None
        spec = ctx.commands.get(self.command)
        if spec is None:
            raise ValueError(f"reset_serial: {self.command!r} is not in remediation.commands")
        return spec

    def _args(self, port: str) -> list[str]:
        return [a.replace("{port}", port) for a in self.args]

    def _params(self, port: str) -> dict[str, Any]:
        """Everything apply does, so that a stored plan is only ever applied as this rule's."""
        return {
            "port": port,
            **self.settings,
            "flush": self.flush,
            "toggle": list(self.toggle),
            "pulse_s": self.pulse_s,
            "command": self.command,
            "args": self._args(port),
            "settle_s": self.settle_s,
        }


def _prefixes(value: Any) -> tuple[str, ...]:
    if isinstance(value, str) or not isinstance(value, Sequence) or not 1 <= len(value) <= 32:
        raise ValueError("reset_serial: allowed_prefixes must be a list of 1 to 32 path prefixes")
    prefixes = []
    for prefix in value:
        if not isinstance(prefix, str) or not prefix.startswith("/") or "\x00" in prefix or ".." in prefix.split("/"):
            raise ValueError(f"reset_serial: allowed_prefixes: {prefix!r} is not an absolute path prefix"[:300])
        if "/dev/".startswith(prefix):  # "/", "/dev", "/de": every device
            raise ValueError(f"reset_serial: allowed_prefixes: {prefix!r} would allow every device")
        prefixes.append(prefix)
    return tuple(prefixes)


def _under(path: str, prefixes: Sequence[str]) -> bool:
    return any(path.startswith(prefix) for prefix in prefixes)


def _reason(exc: BaseException) -> str:
    """An OSError's or termios.error's text without its errno."""
    args = exc.args
    return args[1] if len(args) == 2 and isinstance(args[1], str) else str(exc) or type(exc).__name__
