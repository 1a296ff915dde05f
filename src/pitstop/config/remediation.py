"""Settings of the remediation engine: rules (issue-key pattern -> action), named commands, guards."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RuleSettings(_Section):
    """Which action heals incidents whose key matches `match`, and the guards around it."""

    match: str = Field(min_length=1, max_length=500, description="incident key pattern, e.g. http.failing:*")
    action: str = Field(min_length=1, max_length=100, description="registered action, e.g. restart_service")
    params: dict[str, Any] = Field(default_factory=dict, description="the action's parameters")
    max_attempts: int = Field(default=3, ge=1, le=100, description="attempts per target within `window_s`")
    window_s: float = Field(default=3600.0, gt=0, description="the attempt budget's window")
    cooldown_s: float = Field(default=60.0, ge=0, description="at least this long between attempts on a target")
    approval: bool | None = Field(default=None, description="needs a person's approval; empty: when destructive")
    wait_for_window: bool = Field(default=False, description="only inside a maintenance window (unless critical)")
    escalate_to: str | None = Field(default=None, description="alert channel or `work_order`; empty: the default")
    verify_timeout_s: float | None = Field(default=None, gt=0, description="empty: the engine's default")


class CommandSettings(_Section):
    """A command `run_command` may run: the fixed argv; the plan adds arguments after it."""

    argv: list[str] = Field(min_length=1)
    timeout_s: float = Field(default=60.0, gt=0, le=3600)
    destructive: bool = Field(default=True, description="destructive commands need approval by default")


class RemediationSettings(_Section):
    enabled: bool = Field(default=True, description="run the engine for open incidents from the scheduler")
    interval_s: float = Field(default=30.0, gt=0, description="one pass over the open incidents this often")
    dry_run: bool = Field(default=False, description="plan and record, never apply")
    verify_timeout_s: float = Field(default=30.0, gt=0, description="re-run the check until healthy this long")
    verify_interval_s: float = Field(default=1.0, gt=0, description="between verification re-runs")
    escalate_to: str = Field(default="log", description="alert channel, or `work_order` (maintenance)")
    rules: list[RuleSettings] = Field(default_factory=list)
    commands: dict[str, CommandSettings] = Field(default_factory=dict, description="what run_command may run")
