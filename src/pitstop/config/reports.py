"""Settings of the monthly maintenance report's delivery (`[reports]` in pitstop.toml).

```toml
[reports]
hour = 6                                # UTC, on the first day of the month, for the month before
[reports.email]                         # without it the report is archived only
host = "smtp.plant.example"
port = 587
starttls = true
username = "pitstop"
password = "..."                        # or PITSTOP_REPORTS__EMAIL__PASSWORD
sender = "pitstop@plant.example"
to = ["plant-manager@plant.example", "maintenance@plant.example"]
```
"""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field, field_validator

from pitstop.config.health import EmailChannel

ADDRESS = re.compile(r"^[^@\s,;<>\"]{1,64}@[^@\s,;<>\"]{1,255}$")


class ReportEmail(EmailChannel):
    """The SMTP server and the list the PDF goes to (the same fields as an alert e-mail channel)."""

    @field_validator("to")
    @classmethod
    def _addresses(cls, to: list[str]) -> list[str]:
        bad = [a for a in to if not ADDRESS.fullmatch(a)]
        if bad:
            raise ValueError(f"not an e-mail address: {bad[0][:80]!r}")
        if len(to) > 100:
            raise ValueError("at most 100 recipients")
        return to

    @field_validator("sender")
    @classmethod
    def _sender(cls, sender: str) -> str:
        if not ADDRESS.fullmatch(sender):
            raise ValueError(f"not an e-mail address: {sender[:80]!r}")
        return sender


class ReportSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    schedule: bool = Field(
        default=True, description="make the previous month's report on the first of each month (archive and e-mail)"
    )
    hour: int = Field(default=6, ge=0, le=23, description="UTC hour on the first day of the month")
    retry_minutes: float = Field(
        default=30.0, ge=1.0, le=1440.0, description="a report that failed to render or send is tried again after this"
    )
    email: ReportEmail | None = Field(default=None, description="where the PDF is e-mailed; none: archived only")
