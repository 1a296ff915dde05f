"""CLI start time: `pitstop --help` and `pitstop check --help` against a bare `python -c pass`.

Runs hyperfine (Debian package `hyperfine`) with warm-up runs and prints its numbers as JSON,
in milliseconds, with the start time above the bare interpreter's. The goal is `pitstop --help`
under 300 ms (the command tree imports no heavy library: tests/meta/test_cli_imports.py). Exits 0
with {"skipped": true, ...} when hyperfine is absent.

    python bench/cli.py [--runs 30] [--warmup 5]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import emit

GOAL_MS = 300.0


def commands() -> dict[str, str]:
    """Name -> shell command, each started the way a user starts it (a fresh interpreter)."""
    python = sys.executable
    return {
        "python -c pass": f"{python} -c pass",
        "pitstop --help": f"{python} -m pitstop --help",
        "pitstop check --help": f"{python} -m pitstop check --help",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=5)
    args = parser.parse_args()
    hyperfine = shutil.which("hyperfine")
    if hyperfine is None:
        print(json.dumps({"skipped": True, "reason": "hyperfine not found: apt-get install hyperfine"}))
        return
    named = commands()
    with tempfile.TemporaryDirectory() as tmp:
        exported = Path(tmp) / "hyperfine.json"
        env = {k: v for k, v in os.environ.items() if not k.startswith("PITSTOP_")}
        subprocess.run(
            [
                hyperfine,
                "--shell=none",  # no shell start-up in the numbers
                f"--warmup={args.warmup}",
                f"--runs={args.runs}",
                "--style=none",
                f"--export-json={exported}",
                *(f"--command-name={name}" for name in named),
                *named.values(),
            ],
            check=True,
            cwd=tmp,  # no pitstop.toml of the current folder is read
            env=env,
            stdout=subprocess.DEVNULL,
        )
        measured = json.loads(exported.read_text())["results"]
    result: dict[str, Any] = {"runs": args.runs, "warmup": args.warmup, "goal_ms": GOAL_MS, "commands": {}}
    for r in measured:
        result["commands"][r["command"]] = {
            "mean_ms": round(r["mean"] * 1000, 1),
            "stddev_ms": round(r["stddev"] * 1000, 1),
            "median_ms": round(r["median"] * 1000, 1),
            "min_ms": round(r["min"] * 1000, 1),
            "max_ms": round(r["max"] * 1000, 1),
        }
    bare = result["commands"]["python -c pass"]["mean_ms"]
    for name in named:
        result["commands"][name]["over_bare_python_ms"] = round(result["commands"][name]["mean_ms"] - bare, 1)
    result["help_under_goal"] = result["commands"]["pitstop --help"]["mean_ms"] < GOAL_MS
    result["load_average"] = [round(x, 2) for x in os.getloadavg()]
    emit(result)


if __name__ == "__main__":
    main()
