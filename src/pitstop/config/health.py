"""Settings of health checks, thresholds, the alert policy and notifiers (`[health]` in pitstop.toml).

Thresholds are data: each check target has target / warning / critical levels, a direction and
an optional clear level. Ready profiles (src/pitstop/profiles/*.toml) are included by name and
overridden by the user's own entries.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ThresholdSettings(_Section):
    direction: Literal["above", "below"] = Field(default="above", description="which side is bad")
    target: float | None = None
    warning: float | None = None
    critical: float | None = None
    clear: float | None = Field(default=None, description="where a raised condition clears (hysteresis)")


class CheckSettings(_Section):
    check: str = Field(min_length=1, max_length=100, description="registered check name, e.g. disk, http")
    target: str = Field(default="", max_length=400, description="what is checked; empty: the check's default")
    enabled: bool = True
    asset: str | None = Field(default=None, description="the asset this target belongs to (diagnostics)")
    site: str | None = Field(default=None, description="the site this target belongs to (diagnostics)")
    scope: Literal["installation", "site", "asset"] | None = Field(
        default=None, description="site-scope alerts mute their site's asset alerts while firing"
    )
    labels: dict[str, str] = Field(default_factory=dict)
    params: dict[str, Any] = Field(default_factory=dict)
    secrets: dict[str, SecretStr] = Field(
        default_factory=dict, description="parameters that are secrets (a postgres url, an mqtt password): masked"
    )
    thresholds: dict[str, ThresholdSettings] = Field(default_factory=dict)


class AlertRuleSettings(_Section):
    for_s: float = Field(default=0.0, ge=0, description="the condition must hold this long before firing")
    n: int = Field(default=1, ge=1, le=1000, description="fire when n of the last m evaluations are bad")
    m: int = Field(default=1, ge=1, le=1000)
    clear_for_s: float = Field(default=0.0, ge=0, description="must be past the clear level this long to clear")
    min_interval_s: float = Field(default=300.0, ge=0, description="between notifications of one alert")
    repeat_s: float = Field(default=4 * 3600.0, gt=0, description="remind of an open problem first after this long")
    repeat_max_s: float = Field(
        default=24 * 3600.0, gt=0, description="reminders back off (each as long as the problem was told) up to this"
    )
    flap_window_s: float = Field(default=1800.0, gt=0)
    flap_crossings: int = Field(default=6, ge=2, description="this many rises within the window is flapping")


class LogChannel(_Section):
    type: Literal["log"] = "log"


class MqttChannel(_Section):
    type: Literal["mqtt"] = "mqtt"
    host: str = "127.0.0.1"
    port: int = Field(default=1883, ge=1, le=65535)
    topic: str = Field(default="pitstop/alerts/{severity}", description="{severity} and {event} are filled in")
    username: SecretStr | None = None
    password: SecretStr | None = None
    qos: int = Field(default=1, ge=0, le=2)
    retain: bool = False
    timeout_s: float = Field(default=5.0, gt=0)


class EmailChannel(_Section):
    type: Literal["email"] = "email"
    host: str = "127.0.0.1"
    port: int = Field(default=25, ge=1, le=65535)
    starttls: bool = False
    username: SecretStr | None = None
    password: SecretStr | None = None
    sender: str = "pitstop@localhost"
    to: list[str] = Field(default_factory=list, min_length=1)
    timeout_s: float = Field(default=10.0, gt=0)


class WebhookChannel(_Section):
    type: Literal["webhook"] = "webhook"
    url: SecretStr = Field(description="secret: Slack webhook URLs carry their token")
    format: Literal["generic", "slack", "pagerduty", "opsgenie"] = Field(
        default="generic", description="generic JSON, Slack, PagerDuty Events v2 or an Opsgenie alert body"
    )
    routing_key: SecretStr | None = Field(default=None, description="PagerDuty Events v2 integration key")
    hmac_secret: SecretStr | None = Field(default=None, description="signs the body: X-Pitstop-Signature")
    timeout_s: float = Field(default=10.0, gt=0)

    @model_validator(mode="after")
    def _pagerduty_key(self) -> WebhookChannel:
        if self.format == "pagerduty" and self.routing_key is None:
            raise ValueError("a pagerduty webhook needs routing_key (the Events v2 integration key)")
        return self


class PluginChannel(_Section):
    """A channel of a notifier from an installed package (entry-point group `pitstop.notifiers`)."""

    type: Literal["plugin"] = "plugin"
    notifier: str = Field(min_length=1, max_length=100, description="the notifier's entry-point name")
    params: dict[str, Any] = Field(default_factory=dict)
    secrets: dict[str, SecretStr] = Field(default_factory=dict, description="parameters that are secrets: masked")


Channel = Annotated[
    LogChannel | MqttChannel | EmailChannel | WebhookChannel | PluginChannel, Field(discriminator="type")
]


def _log_only() -> dict[str, Channel]:
    return {"log": LogChannel()}


class RouteSettings(_Section):
    channels: list[str] = Field(min_length=1)
    match: dict[str, str] = Field(default_factory=dict, description="label matchers; wildcards allowed")
    min_severity: Literal["info", "warning", "critical", "emergency"] = "warning"
    group_by: list[str] = Field(default_factory=lambda: ["site"])


class AlertSettings(_Section):
    rule: AlertRuleSettings = AlertRuleSettings()
    rules: dict[str, AlertRuleSettings] = Field(
        default_factory=dict, description="by issue (disk.low) or incident key (disk.low:/data)"
    )
    channels: dict[str, Channel] = Field(default_factory=_log_only)
    routes: list[RouteSettings] = Field(default_factory=lambda: [RouteSettings(channels=["log"])])
    inhibit_site_down: bool = Field(default=True, description="a firing site-scope alert mutes its assets")
    max_attempts: int = Field(default=3, ge=1, le=10)
    backoff_s: float = Field(default=1.0, ge=0, description="first retry delay; doubles each attempt")


class HealthSettings(_Section):
    enabled: bool = Field(default=True, description="run the checks from the scheduler")
    interval_s: float = Field(default=60.0, gt=0, description="one round of checks this often")
    include: list[str] = Field(default_factory=list, description="profiles by name or path, e.g. hvac-twin")
    default_checks: bool = Field(
        default=True, description="cpu, memory, disk, database, heartbeat, freshness, limits, frozen"
    )
    checks: list[CheckSettings] = Field(default_factory=list)
    thresholds: dict[str, dict[str, ThresholdSettings]] = Field(
        default_factory=dict, description="per check name and metric, e.g. thresholds.cpu.cpu_pct"
    )
    history_days: int = Field(default=30, ge=1, description="keep check results this long")
    workers: int = Field(
        default=8,
        ge=1,
        le=64,
        description="checks that wait on the network run concurrently in this many threads; local ones run inline",
    )
    alerts: AlertSettings = AlertSettings()
