"""restart_service and run_command: repairs that run a configured command."""

from __future__ import annotations

from typing import Any, ClassVar

from pitstop.incidents import Incident
from pitstop.remediation.actions._command import argv_of, run
from pitstop.remediation.base import Action, ActionContext, Outcome, Plan

MANAGERS = {
    "systemd": ("systemctl", "restart"),
    "supervisor": ("supervisorctl", "restart"),
    "docker": ("docker", "restart"),
}


class RestartService(Action):
    """Restart a service through its manager (systemd, supervisor, docker) or a script.

    params: manager (systemd|supervisor|docker|script), unit (the service name; not for script),
    command (script: the command that starts it again), grace_s (start-up time before
    verification, 5), timeout_s (of the command, 60).
    """

    name = "restart_service"
    destructive: ClassVar[bool] = False

    def configure(self, **params: Any) -> None:
        if unknown := set(params) - {"manager", "unit", "command", "grace_s", "timeout_s"}:
            raise ValueError(f"restart_service: unknown parameter(s) {', '.join(sorted(unknown))}")
        manager = params.get("manager", "script" if "command" in params else "systemd")
        if manager == "script":
            if "command" not in params:
                raise ValueError("restart_service: manager script needs a command")
            self.argv = argv_of(params["command"], "restart_service command")
        elif manager in MANAGERS:
            unit = params.get("unit")
            if not isinstance(unit, str) or not unit or unit.startswith("-") or "\x00" in unit:
                raise ValueError(f"restart_service: manager {manager} needs a unit name")
            self.argv = [*MANAGERS[manager], unit]
        else:
            raise ValueError(f"restart_service: manager {manager!r} is not systemd, supervisor, docker or script")
        self.manager = manager
        self.grace_s = float(params.get("grace_s", 5.0))
        self.timeout_s = float(params.get("timeout_s", 60.0))
        if not 0 <= self.grace_s <= 3600 or not 0 < self.timeout_s <= 3600:
            raise ValueError("restart_service: grace_s and timeout_s are seconds up to 3600")

    def plan(self, incident: Incident, ctx: ActionContext, /) -> Plan:
        return Plan(
            action=self.name,
            target=incident.target,
            steps=(
                f"run {' '.join(self.argv)} (timeout {self.timeout_s:g} s)",
                f"wait {self.grace_s:g} s for it to start, then re-run the check",
            ),
            destructive=self.destructive,
            params={"argv": self.argv, "timeout_s": self.timeout_s},
            grace_s=self.grace_s,
        )

    def apply(self, plan: Plan, ctx: ActionContext, /) -> Outcome:
        started = ctx.clock.now()
        argv = [str(a) for a in plan.params["argv"]]
        if argv != self.argv:  # a stored plan is only ever this rule's command
            return self.outcome(plan, ctx, started, False, "the plan's command is not the configured one")
        code, output = run(argv, float(plan.params["timeout_s"]))
        ok = code == 0
        detail = f"{argv[0]} exited {code}" if code is not None else "the restart command did not finish"
        return self.outcome(plan, ctx, started, ok, detail, output=output, data={"exit_code": code})


class RunCommand(Action):
    """Run a command named in `remediation.commands`, with arguments from the rule ({target} is
    filled in with the incident's target). params: command (the name), args (list)."""

    name = "run_command"
    destructive: ClassVar[bool] = True

    def configure(self, **params: Any) -> None:
        if unknown := set(params) - {"command", "args"}:
            raise ValueError(f"run_command: unknown parameter(s) {', '.join(sorted(unknown))}")
        command = params.get("command")
        if not isinstance(command, str) or not command:
            raise ValueError("run_command: give the name of a configured command")
        self.command = command
        args = params.get("args", [])
        if not isinstance(args, list) or not all(isinstance(a, str) and "\x00" not in a for a in args):
            raise ValueError("run_command: args must be a list of strings")
        self.args: list[str] = args

    def plan(self, incident: Incident, ctx: ActionContext, /) -> Plan:
        spec = ctx.commands.get(self.command)
        if spec is None:
            raise ValueError(f"run_command: {self.command!r} is not in remediation.commands")
        args = [a.replace("{target}", incident.target) for a in self.args]
        return Plan(
            action=self.name,
            target=incident.target,
            steps=(f"run {self.command}: {' '.join([*spec.argv, *args])} (timeout {spec.timeout_s:g} s)",),
            destructive=spec.destructive,
            params={"command": self.command, "args": args},
        )

    def apply(self, plan: Plan, ctx: ActionContext, /) -> Outcome:
        started = ctx.clock.now()
        spec = ctx.commands.get(str(plan.params["command"]))
        if spec is None:
            return self.outcome(plan, ctx, started, False, f"{plan.params['command']!r} is not a configured command")
        args = [str(a) for a in plan.params.get("args", [])]
        code, output = run([*spec.argv, *args], spec.timeout_s)
        detail = f"{plan.params['command']} exited {code}" if code is not None else "the command did not finish"
        return self.outcome(plan, ctx, started, code == 0, detail, output=output, data={"exit_code": code})
