"""The command line: `pitstop <noun> <verb>`, thin over the Pitstop object.

Every module here imports only typer, rich and light pitstop modules at the top; what a command
needs (the app, pandas, SQLAlchemy, the models) it imports inside the command, so that
`pitstop --help` and `pitstop <noun> --help` start in a fraction of a second.

The command modules do without `from __future__ import annotations`: Typer reads the signature of
every command when it builds the command tree (for any command, `--help` included), and evaluating
a hundred commands' string annotations, twice each, took as long as all the imports left.
"""

from __future__ import annotations

from typing import Any


def _flags_show_no_type() -> None:
    """Typer's rich help prints `<bool>` beside a flag (`--json <bool>`) as if it took a value; its
    plain help does not. Show flags as flags in the rich help too (tests/e2e/test_cli_conventions.py
    fails if `<bool>` comes back, e.g. after a Typer upgrade renames what this wraps)."""
    from typer.core import TyperOption

    shown = getattr(TyperOption, "display_type_rich", None)
    if shown is None or getattr(shown, "flags_show_no_type", False):
        return

    def display_type_rich(self: Any, ctx: Any) -> str | None:
        return None if getattr(self, "is_flag", False) else shown(self, ctx)

    display_type_rich.flags_show_no_type = True  # type: ignore[attr-defined]
    TyperOption.display_type_rich = display_type_rich  # type: ignore[method-assign]


_flags_show_no_type()
