"""Self-healing MTTR per injected fault and the success rate, from the fault-injection suite.

    python bench/heal.py [--repeat 3]

Runs tests/faults (real processes, files, a scratch PostgreSQL database, a Mosquitto of its own)
`--repeat` times and prints JSON: per fault the seconds from the fault to the verified repair
(median and max over the runs), the share of recoverable faults healed and verified, and the
repairs made outside their budget or window (the suite fails if there is one).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    runs: list[dict[str, object]] = []
    failed_runs = 0
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.repeat):
            out = Path(tmp) / f"run{i}.jsonl"
            done = subprocess.run(
                [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/faults"],
                cwd=ROOT,
                env={**os.environ, "PITSTOP_HEAL_BENCH": str(out)},
                capture_output=True,
                text=True,
                check=False,
            )
            failed_runs += done.returncode != 0
            if out.exists():
                runs += [json.loads(line) for line in out.read_text().splitlines()]
    by_fault: dict[str, list[dict[str, object]]] = defaultdict(list)
    for r in runs:
        by_fault[str(r["fault"])].append(r)
    faults = {}
    for fault, items in sorted(by_fault.items()):
        seconds = [float(s) for r in items if isinstance(s := r.get("seconds"), int | float)]
        faults[fault] = {
            "expected": items[0]["expected"],
            "outcomes": sorted({str(r["outcome"]) for r in items}),
            "runs": len(items),
            "mttr_s_median": round(statistics.median(seconds), 3) if seconds else None,
            "mttr_s_max": round(max(seconds), 3) if seconds else None,
        }
    recoverable = [r for r in runs if r["expected"] == "heal"]
    healed = [r for r in recoverable if r["outcome"] == "healed"]
    print(
        json.dumps(
            {
                "python": platform.python_version(),
                "repeat": args.repeat,
                "suite_runs_failed": failed_runs,
                "faults": faults,
                "recoverable_attempts": len(recoverable),
                "success_rate": round(len(healed) / len(recoverable), 4) if recoverable else None,
                "repairs_outside_budget_or_window": 0 if failed_runs == 0 else "see failed runs",
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
