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


def test_no_import_cycles() -> None:
    cycles = [sorted(c) for c in _cycles(_import_graph())]
    assert not cycles, f"modules that import each other: {cycles}"


# The composition root and what may reach it: the edges, the demo installation and the test helpers.
# Every other module is handed the narrow services it uses (database, clock, repositories, the incident
# registry) by `app.py`, never the `Pitstop` object.
ROOT_USERS = ("app.py", "cli", "api", "web", "demo.py", "testing")


def test_only_the_edges_import_the_composition_root() -> None:
    offenders = [
        str(path.relative_to(SRC))
        for path in SRC.rglob("*.py")
        if path.relative_to(SRC).parts[0] not in ROOT_USERS and "pitstop.app" in _imports_with_names(path)
    ]
    assert not offenders, f"take the narrow services instead of the Pitstop object: {offenders}"


def _imports_with_names(path: Path) -> set[str]:
    """Like `_imports`, with `from package import module` as package.module (`from pitstop import app`)."""
    names = _imports(path)
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


# Tables with one writer: every change to them goes through the module that owns them.
TABLE_OWNERS = {
    "incidents": "incidents/registry.py",  # open, update, acknowledge, resolve, reopen, suppress
    "work_orders": "maintenance/workorders.py",  # WorkOrderService.open_for and the order's moves
}
WRITE_CALL = re.compile(r"insert|update|delete|upsert|merge", re.IGNORECASE)


def _sql_write(table: str) -> re.Pattern[str]:
    """SQL text that writes the table (prose such as "update incidents" in a docstring is not SQL)."""
    name = rf"[\"`]?{table}[\"`]?"
    return re.compile(rf"\b(insert\s+into\s+{name}|update\s+{name}\s+set|delete\s+from\s+{name})\b", re.IGNORECASE)


def _table_writes(path: Path) -> set[str]:
    """The owned tables a module writes: `insert(t)`, `update(t)`, `delete(t)` (or a dialect's
    insert) and `t.insert()` & co. on a table imported from pitstop.storage.schema, and SQL text
    that inserts into, updates or deletes from it."""
    tree = ast.parse(path.read_text())
    local: dict[str, str] = {}  # name in the module -> table
    schema_names: set[str] = set()  # names the schema module itself is bound to
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == "pitstop.storage.schema":
            local.update({a.asname or a.name: a.name for a in node.names if a.name in TABLE_OWNERS})
        elif isinstance(node, ast.ImportFrom) and node.module == "pitstop.storage":
            schema_names.update(a.asname or a.name for a in node.names if a.name == "schema")
        elif isinstance(node, ast.Import):
            schema_names.update(a.asname for a in node.names if a.name == "pitstop.storage.schema" and a.asname)

    def table(expr: ast.expr) -> str | None:
        if isinstance(expr, ast.Name):
            return local.get(expr.id)
        if isinstance(expr, ast.Attribute) and expr.attr in TABLE_OWNERS:
            base = expr.value
            if isinstance(base, ast.Name) and base.id in schema_names:
                return expr.attr
            if ast.unparse(base) == "pitstop.storage.schema":
                return expr.attr
        return None

    written: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
            if not WRITE_CALL.search(name):
                continue
            written.update(t for arg in node.args if (t := table(arg)) is not None)
            if isinstance(func, ast.Attribute) and (t := table(func.value)) is not None:
                written.add(t)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            written.update(name for name in TABLE_OWNERS if _sql_write(name).search(node.value))
    return written


def test_one_module_writes_incidents_and_one_writes_work_orders() -> None:
    writers: dict[str, set[str]] = {name: set() for name in TABLE_OWNERS}
    for path in SRC.rglob("*.py"):
        rel = path.relative_to(SRC)
        if rel.parts[:2] == ("storage", "migrations"):  # schema history, run before anything else
            continue
        for name in _table_writes(path):
            writers[name].add(rel.as_posix())
    assert writers == {name: {owner} for name, owner in TABLE_OWNERS.items()}, (
        f"only the owner writes each table; found: {writers}"
    )


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
