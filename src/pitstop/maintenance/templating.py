"""Placeholders in procedure steps, filled from pitstop's configuration when a step runs.

    {asset}                  the run's asset (its name)
    {asset.name} {asset.site} {asset.type} {asset.location} {asset.parent} {asset.criticality}
                             that asset's fields in the inventory
    {asset.check.<check>}    the target of the health check of that kind configured for the asset:
                             the `[[health.checks]]` entry with `check = "<check>"` and
                             `asset = "<the asset>"`, e.g. a camera's rtsp:// URL
    {pitstop.url}            pitstop's own address: `oncall.public_url`, else
                             http://<api.host>:<api.port> (a wildcard host reads as the loopback)
    {pitstop.data_dir}       pitstop's data folder

They are filled in check targets and params, action targets and params, command arguments and
pitstop operations' args. Only these forms are placeholders: other braces (awk's '{print $1}',
JSON) stay as they are. Assets have no free-form attributes in the inventory, so what belongs to
one asset and is not an inventory field (a camera's URL) is read from the health check configured
for it. A placeholder that cannot be filled (a run without an asset, an asset not in the
inventory, no such check configured for it) stops the step with a message naming what is missing,
rather than passing a bogus value on.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pitstop.config.models import Settings
    from pitstop.storage.repos.assets import AssetRow

PLACEHOLDER = re.compile(r"\{(asset|pitstop)((?:\.[A-Za-z0-9_-]+)*)\}")
ASSET_FIELDS = ("name", "site", "type", "location", "parent", "criticality")
PITSTOP_FIELDS = ("url", "data_dir")
KNOWN = "{asset}, {asset.<field>} (" + ", ".join(ASSET_FIELDS) + "), {asset.check.<check>}, {pitstop.url}, "
KNOWN += "{pitstop.data_dir}"
MAX_DEPTH = 10


class Unfilled(Exception):
    """A placeholder without a value; the message names it and where its value would come from."""


@dataclass(frozen=True)
class Sources:
    """Where placeholders take their values from (wired in `pitstop.app`)."""

    asset_row: Callable[[str], AssetRow | None] = lambda name: None
    pitstop: Mapping[str, str] = field(default_factory=dict)
    # the configured health checks: (check, target, asset) of every enabled entry
    checks: Callable[[], Iterable[tuple[str, str, str | None]]] = tuple


def pitstop_values(settings: Settings) -> dict[str, str]:
    """{pitstop.*} from the settings: the address people and pitstop itself reach it at, its data folder."""
    public = settings.oncall.public_url
    if public:
        url = public.rstrip("/")
    else:
        host = settings.api.host
        host = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(host, host)
        url = f"http://{f'[{host}]' if ':' in host else host}:{settings.api.port}"
    return {"url": url, "data_dir": str(settings.data_dir)}


def problem(value: Any) -> str | None:
    """What is wrong with the placeholders in a step's value (a string, or lists and tables of
    them), for the procedure file's checks; None when every placeholder is a known form."""
    for text in _strings(value, 0):
        for match in PLACEHOLDER.finditer(text):
            root, path = match[1], match[2].split(".")[1:]
            if root == "asset" and (
                not path or (len(path) == 1 and path[0] in ASSET_FIELDS) or (len(path) == 2 and path[0] == "check")
            ):
                continue
            if root == "pitstop" and len(path) == 1 and path[0] in PITSTOP_FIELDS:
                continue
            return f"unknown placeholder {match[0]}; known: {KNOWN}"
    return None


def _strings(value: Any, depth: int) -> Iterable[str]:
    if depth > MAX_DEPTH:
        return
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for v in value.values():
            yield from _strings(v, depth + 1)
    elif isinstance(value, list | tuple):
        for v in value:
            yield from _strings(v, depth + 1)


class Filler:
    """Fills the placeholders of one step of one run; looks the asset and the checks up once."""

    def __init__(self, sources: Sources, asset: str) -> None:
        self.sources = sources
        self.asset = asset
        self._row: AssetRow | None = None
        self._checks: list[tuple[str, str, str | None]] | None = None

    def fill(self, value: Any) -> Any:
        """`value` with every placeholder in its strings filled (lists and tables alike)."""
        if isinstance(value, str):
            return PLACEHOLDER.sub(lambda m: self._value(m[1], m[2].split(".")[1:], m[0]), value)
        if isinstance(value, Mapping):
            return {k: self.fill(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.fill(v) for v in value]
        return value

    def _value(self, root: str, path: list[str], placeholder: str) -> str:
        if root == "pitstop":
            if len(path) != 1 or path[0] not in PITSTOP_FIELDS:
                raise Unfilled(f"unknown placeholder {placeholder}; known: {KNOWN}")
            found = self.sources.pitstop.get(path[0])
            if not found:
                raise Unfilled(f"{placeholder} is not known here: this runner was not given pitstop's settings")
            return found
        if not self.asset:
            raise Unfilled(f"{placeholder} needs an asset: start the run on one (this run has none)")
        if not path:
            return self.asset
        if len(path) == 2 and path[0] == "check":
            return self._check_target(path[1], placeholder)
        if len(path) != 1 or path[0] not in ASSET_FIELDS:
            raise Unfilled(f"unknown placeholder {placeholder}; known: {KNOWN}")
        row = self._asset_row(placeholder)
        got = getattr(row, path[0])
        if got is None or got == "":
            raise Unfilled(f"{placeholder}: asset {self.asset} has no {path[0]} in the inventory")
        return str(got)

    def _asset_row(self, placeholder: str) -> AssetRow:
        if self._row is None:
            self._row = self.sources.asset_row(self.asset)
        if self._row is None:
            raise Unfilled(f"{placeholder}: there is no asset {self.asset!r} in the inventory")
        return self._row

    def _check_target(self, check: str, placeholder: str) -> str:
        if self._checks is None:
            self._checks = list(self.sources.checks())
        targets = sorted({t for c, t, a in self._checks if c == check and a == self.asset})
        if not targets:
            raise Unfilled(
                f"{placeholder}: no {check} check is configured for asset {self.asset}: add one to the "
                f'settings ([[health.checks]] check = "{check}", target = "...", asset = "{self.asset}")'
            )
        if len(targets) > 1:
            raise Unfilled(
                f"{placeholder}: asset {self.asset} has {len(targets)} {check} checks configured "
                f"({', '.join(targets)[:300]}); a step names one: give its target instead"
            )
        return targets[0]
