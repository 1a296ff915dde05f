"""How every command prints: one convention.

- A list prints a table; an empty list says so in words ("no incidents match"), never a bare header.
- A show prints one thing as a table of fields, or a line or two.
- `--json` prints machine JSON (plain, indented, no colour; datetimes ISO 8601, NaN as null).
- Human output never shows a Python repr: None is "-", a dict is "k=v, ...", a list "a, b".

Imports only rich and the standard library, so that `pitstop --help` starts fast.
"""

from __future__ import annotations

import json
import math
import re
import sys
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime, timedelta
from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

out = Console()
err = Console(stderr=True)

AsJson = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON instead of a table.")]
NONE = "-"  # what a missing value looks like in a table
_ISO_FRACTION = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)\.\d+")


def _plain(value: Any) -> Any:
    """`value` as JSON types: datetimes ISO, enums their value, paths strings, NaN and infinities null."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if value is None or isinstance(value, str | int | bool):
        return value
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_plain(v) for v in value]
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, Enum):
        return _plain(value.value)
    as_dict = getattr(value, "as_dict", None)
    if callable(as_dict):
        return _plain(as_dict())
    return str(value)


def emit_json(data: Any) -> None:
    """Machine JSON on stdout: what `--json` prints."""
    sys.stdout.write(json.dumps(_plain(data), indent=2) + "\n")
    sys.stdout.flush()


def text(value: Any) -> str:
    """One value for a person: never 'None', '{}' or '[]'."""
    if value is None or value == "":
        return NONE
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.4g}" if math.isfinite(value) else NONE
    if isinstance(value, datetime):
        return value.isoformat(timespec="seconds")
    if isinstance(value, Enum):
        return text(value.value)
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, Mapping):
        return ", ".join(f"{k}={text(v)}" for k, v in value.items()) or NONE
    if isinstance(value, list | tuple | set | frozenset):
        return ", ".join(text(v) for v in value) or NONE
    if isinstance(value, str) and _ISO_FRACTION.match(value):  # a recorded time: to the second is enough
        return _ISO_FRACTION.sub(r"\1", value)
    return str(value)


def _cell(value: Any) -> Text | str:
    # Text: a value's own square brackets are not rich markup; a caller's Text (a colour) stays.
    return value if isinstance(value, Text) else Text(text(value))


def table(columns: Sequence[str], rows: Iterable[Sequence[Any]], *, empty: str, title: str | None = None) -> None:
    """A list: a table of `rows`, or the words `empty` when there are none."""
    rows = list(rows)
    if not rows:
        out.print(empty, highlight=False, markup=False)
        return
    shown = Table(*columns, title=title)
    for row in rows:
        shown.add_row(*(_cell(v) for v in row))
    out.print(shown)


def fields(pairs: Mapping[str, Any] | Iterable[tuple[str, Any]], *, title: str | None = None) -> None:
    """A show: one thing as a two-column table of its fields."""
    items = list(pairs.items()) if isinstance(pairs, Mapping) else list(pairs)
    shown = Table("field", "value", title=title, show_header=False)
    for key, value in items:
        shown.add_row(Text(key), _cell(value))
    out.print(shown)


def _records(value: Any) -> list[tuple[str, Mapping[str, Any]]] | None:
    """`value` as rows of a table when it is a list of mappings, or a mapping of mappings (keyed
    rows: per output, per action); None otherwise."""
    if isinstance(value, list) and value and all(isinstance(v, Mapping) for v in value):
        return [("", v) for v in value]
    if isinstance(value, Mapping) and value and all(isinstance(v, Mapping) for v in value.values()):
        return [(str(k), v) for k, v in value.items()]
    return None


def _too_much(value: Any) -> bool:
    return _records(value) is not None or (isinstance(value, list | tuple) and len(value) > 8)


def document(data: Mapping[str, Any], *, title: str | None = None) -> None:
    """A show of a nested result (a training report, a drift report, a decision): its plain fields
    in one table (nested mappings as `a.b`), each list of records in a table of its own."""
    plain: list[tuple[str, Any]] = []
    tables: list[tuple[str, list[tuple[str, Mapping[str, Any]]]]] = []

    def walk(prefix: str, value: Mapping[str, Any]) -> None:
        for key, item in value.items():
            name = f"{prefix}{key}"
            rows = _records(item)
            if rows is not None:
                tables.append((name, rows))
            elif isinstance(item, Mapping) and item:
                walk(f"{name}.", item)
            else:
                plain.append((name, item))

    walk("", data)
    if plain:
        fields(plain, title=title)
    for name, rows in tables:
        keyed = any(k for k, _ in rows)
        columns = list(dict.fromkeys(c for _, row in rows for c in row))
        # nested records (a decision's gate verdicts) or long series (a histogram's bins) are unreadable
        # in a cell: --json has them
        nested = [c for c in columns if any(_too_much(row.get(c)) for _, row in rows)]
        columns = [c for c in columns if c not in nested]
        caption = f"{', '.join(nested)}: see --json" if nested else None
        shown = Table(*((name,) if keyed else ()), *columns, title=None if keyed else name, caption=caption)
        for key, row in rows:
            shown.add_row(*((Text(key),) if keyed else ()), *(_cell(row.get(c)) for c in columns))
        out.print(shown)


def say(line: str) -> None:
    """One line of plain words (no rich markup or highlighting of what it quotes)."""
    out.print(line, highlight=False, markup=False, soft_wrap=True)


def coloured(value: str, colour: str) -> Text:
    """A table cell in a colour (a status)."""
    return Text(value, style=colour)
