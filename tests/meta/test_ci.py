"""The CI script itself: what it does on a fresh machine."""

from __future__ import annotations

import re
from pathlib import Path

CI = Path(__file__).resolve().parents[2] / ".ci" / "run"


def test_ci_updates_the_package_lists_before_it_installs() -> None:
    """Issue 15, item 13: `apt-get install` on a fresh machine with no package lists fails unless
    `apt-get update` ran first, so every install in `.ci/run` comes after an update."""
    text = CI.read_text()
    installs = [m.start() for m in re.finditer(r"apt-get install", text)]
    updates = [m.start() for m in re.finditer(r"apt-get update", text)]
    assert installs, "the CI script installs chromium and restic when they are missing"
    assert updates and min(updates) < min(installs)
    # the update sits in the same helper as the install: no install path bypasses it
    helper = re.search(r"apt_install\(\)\s*\{(?P<body>.*?)\n\}", text, re.S)
    assert helper is not None and "apt-get update" in helper["body"] and "apt-get install" in helper["body"]
    assert text.count("apt-get install") == 1
