"""Small helpers shared by the maintenance modules: checked text, durations, JSON columns."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from typing import Any

from sqlalchemy import Connection, select

from pitstop.errors import InvalidInput
from pitstop.storage.schema import assets, sites

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(m|min|h|d|w)\s*$")
_UNITS = {"m": 60, "min": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,99}$")
ASSET_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,199}$")  # as the inventory names assets


def text(what: str, value: str | None, limit: int, *, required: bool = True) -> str:
    """`value` stripped; InvalidInput (one line, naming `what`) when empty, too long or with control bytes."""
    value = (value or "").strip()
    if required and not value:
        raise InvalidInput(f"{what} must not be empty")
    if len(value) > limit:
        raise InvalidInput(f"{what} is longer than {limit} characters")
    if any(ord(c) < 32 and c not in "\t\n\r" for c in value):
        raise InvalidInput(f"{what} contains control characters")
    return value


def param(what: str, value: str | None) -> str | None:
    """A filter value as given, or InvalidInput when it holds bytes no database takes (NUL)."""
    if value is not None and ("\x00" in value or len(value) > 1000):
        raise InvalidInput(f"{what} must be at most 1000 characters without NUL bytes")
    return value


def name(what: str, value: str) -> str:
    if not isinstance(value, str) or not NAME.match(value):
        raise InvalidInput(f"{what} {str(value)[:60]!r} must be 1-100 lowercase letters, digits, '.', '_' or '-'")
    return value


def duration(value: str | float | int, what: str = "duration") -> timedelta:
    """'30m', '4h', '1d', '2w' (or seconds as a number) -> timedelta."""
    if isinstance(value, bool):
        raise InvalidInput(f"{what} {value!r} is not a duration like 4h, 1d or 2w")
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        match = _DURATION.match(str(value))
        if match is None:
            raise InvalidInput(f"{what} {str(value)[:40]!r} is not a duration like 30m, 4h, 1d or 2w")
        seconds = float(match[1]) * _UNITS[match[2]]
    if not 0 <= seconds <= 10 * 366 * 86400:
        raise InvalidInput(f"{what} must be between 0 and 10 years")
    return timedelta(seconds=seconds)


def dumps(value: Any) -> str:
    return json.dumps(value, default=str, sort_keys=True)


def site_of(conn: Connection, asset: str) -> str:
    """The site name of an asset, '' for the system itself or an unknown asset."""
    if not asset:
        return ""
    row = conn.execute(
        select(sites.c.name).join(assets, assets.c.site_id == sites.c.id).where(assets.c.name == asset)
    ).first()
    return str(row[0]) if row else ""


def criticality_of(conn: Connection, asset: str) -> int:
    """1..5 from the inventory; 3 for the system itself and for assets not in the inventory."""
    if not asset:
        return 3
    row = conn.execute(select(assets.c.criticality).where(assets.c.name == asset)).first()
    return int(row[0]) if row else 3
