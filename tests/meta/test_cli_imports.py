"""`pitstop --help` stays fast: the command tree imports no heavy library until a command runs.

Each command imports what it needs inside itself (pitstop/cli/__init__.py); a module-level import of
the app, pandas or SQLAlchemy in any pitstop.cli module would load it for every `--help` again
(about 0.9 s of imports before). bench/cli.py measures the start time itself.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

HEAVY = ("pandas", "numpy", "sqlalchemy", "alembic", "psycopg", "pyarrow", "scipy", "sklearn", "lightgbm")
PITSTOP_HEAVY = ("pitstop.app", "pitstop.config", "pitstop.storage", "pitstop.incidents", "pitstop.ml")


def _loaded(code: str) -> set[str]:
    """The modules loaded after running `code` in a fresh interpreter."""
    probe = f"{code}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    return set(json.loads(done.stdout.strip().splitlines()[-1]))


def test_importing_the_command_tree_loads_no_heavy_library() -> None:
    loaded = _loaded("import pitstop.cli.main")
    assert "pitstop.cli.main" in loaded  # the probe did import it (the test can fail)
    assert not {m for m in loaded if m.split(".")[0] in HEAVY}, "a heavy library is imported at CLI start"
    assert not {m for m in loaded if m.startswith(PITSTOP_HEAVY)}, "a heavy pitstop module is imported at CLI start"


@pytest.mark.parametrize("args", [["--help"], ["check", "--help"], ["models", "retrain", "--help"]])
def test_help_runs_without_heavy_libraries(args: list[str]) -> None:
    code = (
        "import sys\n"
        "from pitstop.cli.main import app\n"
        f"sys.argv = ['pitstop', *{args!r}]\n"
        "try:\n    app()\nexcept SystemExit as exc:\n    assert exc.code in (0, None), exc.code\n"
    )
    loaded = _loaded(code)
    assert "typer.rich_utils" in loaded  # the help was rendered
    assert not {m for m in loaded if m.split(".")[0] in HEAVY}
