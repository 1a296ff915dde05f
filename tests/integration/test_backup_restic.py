"""Differential test: pitstop's retention keeps the same sets as `restic forget --dry-run`.

Only for the tiers both have (keep-last, daily, weekly, monthly, yearly). Skips when restic is
not installed (`apt-get install restic`). Each `restic backup` costs about a second (the key
derivation), so the calendar is small and chosen to cross day, ISO week, month and year edges.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from pitstop.backup.retention import Policy, decide
from pitstop.testing.services import unavailable

pytestmark = pytest.mark.slow

EDGES = [
    datetime(2020, 12, 27, 23, 30),  # Sunday, ISO week 2020-W52
    datetime(2020, 12, 31, 22, 0),  # Thursday, ISO week 2020-W53
    datetime(2021, 1, 1, 1, 0),  # Friday, still ISO 2020-W53, but year 2021
    datetime(2021, 1, 3, 23, 0),  # Sunday, 2020-W53
    datetime(2021, 1, 4, 0, 30),  # Monday, 2021-W01
    datetime(2021, 1, 4, 12, 0),  # same day
    datetime(2021, 1, 31, 23, 59),
    datetime(2021, 2, 1, 0, 1),
    datetime(2021, 3, 31, 12, 0),
    datetime(2021, 4, 1, 12, 0),
]
POLICIES = [
    Policy(daily=3),
    Policy(keep_last=2, weekly=3, monthly=2),
    Policy(daily=4, weekly=2, monthly=3, yearly=2),
    Policy(weekly=5, yearly=3),
]


def _calendar() -> list[datetime]:
    rng = random.Random(20260105)
    extra = [datetime(2019, 6, 1) + timedelta(hours=rng.randrange(0, 3 * 365 * 24)) for _ in range(12)]
    return sorted({t.replace(tzinfo=UTC) for t in EDGES + extra})


def _restic(repo: Path, *args: str) -> str:
    env = {**os.environ, "RESTIC_REPOSITORY": str(repo), "RESTIC_PASSWORD": "pitstop-test", "TZ": "UTC"}
    done = subprocess.run(["restic", "--no-cache", *args], env=env, capture_output=True, text=True, check=True)
    return done.stdout


def test_retention_matches_restic_forget(tmp_path: Path) -> None:
    if shutil.which("restic") is None:
        unavailable("restic is not installed (apt-get install restic)")
    repo, data = tmp_path / "repo", tmp_path / "data"
    data.mkdir()
    (data / "file").write_text("x")
    _restic(repo, "init")
    times = _calendar()
    for t in times:
        _restic(repo, "backup", "--quiet", "--host", "pitstop", "--time", f"{t:%Y-%m-%d %H:%M:%S}", str(data))
    items = [(f"{t:%Y-%m-%dT%H:%M:%S}", t) for t in times]
    for policy in POLICIES:
        flags = []
        for name, flag in (
            ("keep_last", "--keep-last"),
            ("daily", "--keep-daily"),
            ("weekly", "--keep-weekly"),
            ("monthly", "--keep-monthly"),
            ("yearly", "--keep-yearly"),
        ):
            if getattr(policy, name):
                flags += [flag, str(getattr(policy, name))]
        (group,) = json.loads(_restic(repo, "forget", "--dry-run", "--json", *flags))
        restic_keeps = {s["time"][:19] for s in group["keep"]}
        ours = {d.id for d in decide(items, policy) if d.keep}
        assert ours == restic_keeps, policy
