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


def _module(path: Path) -> str:
    parts = path.relative_to(SRC.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _import_graph() -> dict[str, set[str]]:
    """Module -> the pitstop modules it imports anywhere in it (in functions and under TYPE_CHECKING too).
    `from package import name` points at the submodule when `name` is one, else at the package."""
    paths = {_module(path): path for path in SRC.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for module, path in paths.items():
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                found.update(a.name for a in node.names if a.name in paths)
            elif isinstance(node, ast.ImportFrom) and node.module:
                for alias in node.names:
                    submodule = f"{node.module}.{alias.name}"
                    found.add(submodule if submodule in paths else node.module)
        graph[module] = (found & paths.keys()) - {module}
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[set[str]]:
    """The modules that import each other, directly or round a circle (strongly connected, Tarjan)."""
    order: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[set[str]] = []

    def visit(module: str) -> None:
        order[module] = low[module] = len(order)
        stack.append(module)
        for other in graph[module]:
            if other not in order:
                visit(other)
                low[module] = min(low[module], low[other])
            elif other in stack:
                low[module] = min(low[module], order[other])
        if low[module] == order[module]:
            component = {stack.pop()}
            while module not in component:
                component.add(stack.pop())
            if len(component) > 1:
                found.append(component)

    for module in graph:
        if module not in order:
            visit(module)
    return found


# The circle through the composition root: these take the Pitstop object, which builds them (issue 17
# removes it). No module may join it, and no other circle may form.
KNOWN_CYCLE = {
    "pitstop.app",
    "pitstop.ml.registry",
    "pitstop.ml.registry.checks",
    "pitstop.ml.registry.data",
    "pitstop.ml.registry.watch",
    "pitstop.ml.scoring",
    "pitstop.ml.training",
}


def test_no_import_cycles() -> None:
    cycles = [sorted(c) for c in _cycles(_import_graph()) if not c <= KNOWN_CYCLE]
    assert not cycles, f"modules that import each other: {cycles}"


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
