"""Settings of a fleet installation (`[fleet]` in pitstop.toml): per-asset work shared among worker
processes over NATS JetStream. Without this section pitstop runs every job in the process that
schedules it, as a single plant's `pitstop serve` does.

```toml
[fleet]
servers = ["nats://10.0.0.11:4222", "nats://10.0.0.12:4222", "nats://10.0.0.13:4222"]
replicas = 3          # the job stream kept on three servers: one may die
partitions = 32       # assets are hashed into these; each worker holds a share of them
```
"""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field, field_validator

NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")  # a JetStream stream name, and a subject token


class FleetSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    servers: list[str] = Field(
        default_factory=lambda: ["nats://127.0.0.1:4222"],
        min_length=1,
        description="NATS servers with JetStream (any of them; the client follows the cluster)",
    )
    stream: str = Field(default="PITSTOP_JOBS", description="the JetStream stream of per-asset jobs")
    subject: str = Field(default="pitstop-jobs", description="subjects are <subject>.<partition>")
    partitions: int = Field(
        default=16, ge=1, le=1024, description="assets are hashed into this many; order is kept within each"
    )
    replicas: int = Field(default=1, ge=1, le=5, description="copies of the stream in a NATS cluster (3: one may die)")
    lease_seconds: float = Field(
        default=10.0, ge=1.0, le=600.0, description="a worker that stops renewing loses its partitions after this"
    )
    ack_wait_s: float = Field(
        default=10.0,
        ge=1.0,
        le=3600.0,
        description="a job whose worker stops answering for this long is handed out again (a running one beats)",
    )
    max_deliver: int = Field(default=5, ge=1, le=100, description="tries of one job before it is given up (logged)")
    max_age_s: float = Field(
        default=900.0,
        ge=10.0,
        le=7 * 86_400.0,
        description="a job not run within this is dropped (its asset's next one supersedes it)",
    )
    threads: int = Field(default=4, ge=1, le=64, description="jobs a worker runs at once (one per partition at most)")

    @field_validator("servers")
    @classmethod
    def _urls(cls, servers: list[str]) -> list[str]:
        for url in servers:
            if not re.fullmatch(r"(nats|tls)://[^\s/]+(:\d{1,5})?", url):
                raise ValueError(f"not a NATS server URL (nats://host:port): {url[:100]!r}")
        return servers

    @field_validator("stream", "subject")
    @classmethod
    def _names(cls, value: str) -> str:
        if not NAME.fullmatch(value):
            raise ValueError("letters, digits, '-' and '_' only (at most 64)")
        return value
