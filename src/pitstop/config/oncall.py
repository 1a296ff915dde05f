"""Settings of on-call and escalation (`[oncall]` in pitstop.toml): contacts, schedules, policies.

```toml
[oncall.contacts.ana]
name = "Ana Silva"
email = "ana@plant.example"        # through the email channel named by oncall.email_channel
phone = "+351910000001"            # through [oncall.sms]

[oncall.schedules.maintenance]
rotation = ["ana", "ben"]          # one shift each, in turn
timezone = "Europe/Lisbon"
start = 2026-01-05                 # the first hand-off day (a Monday: hand-offs on Mondays)
handoff = "08:00"                  # local time
interval_days = 7

[oncall.policies.plant]
schedule = "maintenance"
min_severity = "critical"
steps = [
  { notify = "primary" },
  { notify = "secondary", after_minutes = 15 },
  { notify = "channel:team", after_minutes = 15 },
]
```
"""

from __future__ import annotations

import re
from datetime import date, datetime, time
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, SecretStr, model_validator

NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,49}$")
PHONE = re.compile(r"^\+?[0-9][0-9 ()-]{4,30}$")
EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,255}$")
SEVERITIES = ("info", "warning", "critical", "emergency")
Level = Literal["info", "warning", "critical", "emergency"]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _zone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {name!r} (an IANA name like Europe/Lisbon)") from None
    return name


def _hhmm(text: str) -> str:
    try:
        time.fromisoformat(text)
    except ValueError:
        raise ValueError(f"hand-off time {text!r} is not HH:MM") from None
    return text


def _phone(text: str) -> str:
    if not PHONE.match(text):
        raise ValueError(f"phone {text[:40]!r} is not a phone number like +351910000001")
    return text


def _email(text: str) -> str:
    if not EMAIL.match(text):
        raise ValueError(f"email {text[:80]!r} is not an address like ana@plant.example")
    return text


Zone = Annotated[str, AfterValidator(_zone)]


class ContactSettings(_Section):
    name: str = Field(min_length=1, max_length=200, description="the person, as people call them")
    email: Annotated[str, AfterValidator(_email)] | None = None
    phone: Annotated[str, AfterValidator(_phone)] | None = Field(default=None, description="paged through [oncall.sms]")
    webhook: SecretStr | None = Field(default=None, description="a personal webhook URL (secret)")
    webhook_format: Literal["generic", "slack", "pagerduty", "opsgenie"] = "generic"
    routing_key: SecretStr | None = Field(default=None, description="PagerDuty Events v2 routing key")

    @model_validator(mode="after")
    def _reachable(self) -> ContactSettings:
        if self.email is None and self.phone is None and self.webhook is None:
            raise ValueError(f"contact {self.name!r} needs at least one of email, phone, webhook")
        if self.webhook_format == "pagerduty" and self.routing_key is None:
            raise ValueError(f"contact {self.name!r}: webhook_format pagerduty needs routing_key")
        return self


class OverrideSettings(_Section):
    contact: str = Field(description="who is on call instead, between start and end")
    start: AwareDatetime
    end: AwareDatetime

    @model_validator(mode="after")
    def _order(self) -> OverrideSettings:
        if self.end <= self.start:
            raise ValueError(f"override for {self.contact!r} must end after it starts")
        return self


class ScheduleSettings(_Section):
    rotation: list[str] = Field(min_length=1, max_length=100, description="contacts, one shift each in turn")
    timezone: Zone = "UTC"
    start: date = Field(description="the first hand-off day; the rotation's first contact starts then")
    handoff: Annotated[str, AfterValidator(_hhmm)] = Field(default="08:00", description="local hand-off time, HH:MM")
    interval_days: int = Field(default=7, ge=1, le=366, description="shift length in days (7: weekly)")
    overrides: list[OverrideSettings] = Field(default_factory=list, max_length=1000)


class StepSettings(_Section):
    notify: str = Field(
        description="primary or secondary (of the policy's schedule), contact:<name> or channel:<alert channel>"
    )
    after_minutes: float = Field(default=0.0, ge=0, le=7 * 24 * 60, description="after the previous step")

    @model_validator(mode="after")
    def _target(self) -> StepSettings:
        kind, _, name = self.notify.partition(":")
        if self.notify in ("primary", "secondary") or (kind in ("contact", "channel") and name):
            return self
        raise ValueError(
            f"step notify {self.notify[:60]!r} is not primary, secondary, contact:<name> or channel:<name>"
        )


class PolicySettings(_Section):
    schedule: str | None = Field(default=None, description="whose primary and secondary the steps page")
    match: dict[str, str] = Field(default_factory=dict, description="incident labels, as in alert routes")
    min_severity: Level = "critical"
    steps: list[StepSettings] = Field(min_length=1, max_length=20)
    repeat: int = Field(default=0, ge=0, le=20, description="run the steps again this often while unacknowledged")
    repeat_after_minutes: float = Field(default=30.0, gt=0, le=7 * 24 * 60)
    repeat_min_severity: Level = Field(default="critical", description="only incidents this bad repeat")


class SmsGatewaySettings(_Section):
    """A generic HTTP SMS gateway: a JSON POST of {to_field: phone, text_field: text}."""

    url: SecretStr = Field(description="secret: gateway URLs often carry an account token")
    token: SecretStr | None = Field(default=None, description="sent as Authorization: Bearer <token>")
    to_field: str = Field(default="to", min_length=1, max_length=50)
    text_field: str = Field(default="text", min_length=1, max_length=50)
    max_chars: int = Field(default=320, ge=40, le=1600)
    timeout_s: float = Field(default=10.0, gt=0)


class OncallSettings(_Section):
    contacts: dict[str, ContactSettings] = Field(default_factory=dict)
    schedules: dict[str, ScheduleSettings] = Field(default_factory=dict)
    policies: dict[str, PolicySettings] = Field(default_factory=dict, description="the first that matches applies")
    emergency_policy: str | None = Field(
        default=None, description="for emergencies no policy matches; empty: the first policy"
    )
    email_channel: str | None = Field(default=None, description="the email alert channel that mails contacts")
    sms: SmsGatewaySettings | None = None
    public_url: str | None = Field(
        default=None, description="how people reach pitstop, for acknowledge links; empty: http://<api.host>:<api.port>"
    )
    link_secret: SecretStr | None = Field(
        default=None, description="signs acknowledge links; empty: a key kept in <data_dir>/oncall-link.key"
    )
    link_valid_hours: float = Field(default=24.0, gt=0, le=24 * 30)
    every_s: float = Field(default=30.0, gt=0, le=3600, description="how often due escalation steps are looked for")

    @model_validator(mode="after")
    def _references(self) -> OncallSettings:
        for name, contact in self.contacts.items():
            if not NAME.match(name):
                raise ValueError(f"contact name {name[:60]!r}: lowercase letters, digits, - and _ (at most 50)")
            if contact.phone is not None and self.sms is None:
                raise ValueError(f"contact {name!r} has a phone but [oncall.sms] (the SMS gateway) is not set")
            if contact.email is not None and self.email_channel is None:
                raise ValueError(f"contact {name!r} has an email but oncall.email_channel is not set")
        for name, schedule in self.schedules.items():
            unknown = [c for c in schedule.rotation if c not in self.contacts]
            unknown += [o.contact for o in schedule.overrides if o.contact not in self.contacts]
            if unknown:
                raise ValueError(f"schedule {name!r} names unknown contact(s): {', '.join(sorted(set(unknown)))}")
        for name, policy in self.policies.items():
            if policy.schedule is not None and policy.schedule not in self.schedules:
                raise ValueError(f"policy {name!r} names unknown schedule {policy.schedule!r}")
            for step in policy.steps:
                if step.notify in ("primary", "secondary") and policy.schedule is None:
                    raise ValueError(f"policy {name!r}: step {step.notify} needs the policy's schedule")
                if step.notify.startswith("contact:") and step.notify[8:] not in self.contacts:
                    raise ValueError(f"policy {name!r} names unknown contact {step.notify[8:]!r}")
        if self.emergency_policy is not None and self.emergency_policy not in self.policies:
            raise ValueError(f"emergency_policy names unknown policy {self.emergency_policy!r}")
        return self

    def channel_names(self) -> set[str]:
        """The alert channels the policies' steps name (checked against [health.alerts.channels])."""
        return {s.notify[8:] for p in self.policies.values() for s in p.steps if s.notify.startswith("channel:")}


def parse_when(text: str) -> datetime:
    """An aware ISO time from the command line or a query; ValueError names the problem."""
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"time {text[:40]!r} is not ISO 8601, e.g. 2026-03-29T08:00+01:00") from None
    if value.tzinfo is None:
        raise ValueError(f"time {text[:40]!r} needs a UTC offset, e.g. 2026-03-29T08:00+01:00")
    return value
