"""House rules that keep the architecture visible in the code."""

from __future__ import annotations

import ast
import re
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src" / "pitstop"


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_core_imports_nothing_else_of_pitstop() -> None:
    for path in (SRC / "core").rglob("*.py"):
        bad = {n for n in _imports(path) if n.startswith("pitstop") and not n.startswith("pitstop.core")}
        assert not bad, f"{path.relative_to(SRC)} imports {bad}"


def test_components_never_import_the_edges() -> None:
    edges = ("pitstop.cli", "pitstop.api", "pitstop.web")
    for path in SRC.rglob("*.py"):
        rel = path.relative_to(SRC)
        if rel.parts[0] in ("cli", "api", "web", "__main__.py"):
            continue
        bad = {n for n in _imports(path) if n.startswith(edges)}
        assert not bad, f"{rel} imports {bad}"


WALL_CLOCK = re.compile(
    r"\b(datetime\.now|datetime\.utcnow|datetime\.today|date\.today|time\.time|time\.monotonic)\s*\("
)


def test_only_the_clock_reads_the_wall_clock() -> None:
    allowed = {SRC / "core" / "clock.py"}
    offenders = [
        f"{path.relative_to(SRC)}:{i}"
        for path in SRC.rglob("*.py")
        if path not in allowed
        for i, line in enumerate(path.read_text().splitlines(), 1)
        if WALL_CLOCK.search(line)
    ]
    assert not offenders, f"read the injected Clock instead: {offenders}"
