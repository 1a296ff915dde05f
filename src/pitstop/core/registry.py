"""Components register by name; built-ins go through the same path as plugins.

A plugin package makes its components known with an entry point in the kind's group, e.g. in
its pyproject.toml::

    [project.entry-points."pitstop.checks"]
    ups = "acme_pitstop.ups:UpsCheck"

Groups: `pitstop.checks`, `pitstop.actions`, `pitstop.detectors`, `pitstop.backup_targets`,
`pitstop.rul_models`, `pitstop.thresholds`, `pitstop.notifiers`. They are read the first time a registry is asked for
a name, so an installed plugin needs no configuration and costs nothing at start-up.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from importlib import import_module
from importlib.metadata import entry_points
from typing import Any, Generic, TypeVar

T = TypeVar("T")
log = logging.getLogger("pitstop.plugins")


class UnknownComponentError(LookupError):
    def __init__(self, kind: str, name: str, known: Iterable[str]) -> None:
        self.kind, self.name = kind, name
        super().__init__(f"unknown {kind} {name!r}; known: {', '.join(sorted(known)) or 'none'}")


class Registry(Generic[T]):
    """By-name lookup of component classes of one kind (checks, detectors, actions, ...)."""

    def __init__(self, kind: str, group: str | None = None, *, key: str = "name") -> None:
        self.kind = kind
        self.group = group  # the entry-point group plugins register in
        self.key = key  # the class attribute that names a component
        self._classes: dict[str, type[T]] = {}
        self._plugins_read = group is None

    def add(self, cls: type[T]) -> type[T]:
        name: str = getattr(cls, self.key, "")
        if not name:
            raise ValueError(f"{cls.__qualname__} has no `{self.key}`")
        if name in self._classes and self._classes[name] is not cls:
            raise ValueError(f"{self.kind} {name!r} is already registered")
        self._classes[name] = cls
        return cls

    def load(self, dotted: Iterable[str]) -> None:
        """Register classes given as 'package.module:Class'."""
        for path in dotted:
            module, _, attr = path.partition(":")
            self.add(getattr(import_module(module), attr))

    def get(self, name: str) -> type[T]:
        self._read_plugins()
        try:
            return self._classes[name]
        except KeyError:
            raise UnknownComponentError(self.kind, name, self._classes) from None

    def create(self, name: str, /, **params: Any) -> T:
        return self.get(name)(**params)

    def names(self) -> list[str]:
        self._read_plugins()
        return sorted(self._classes)

    def __contains__(self, name: object) -> bool:
        self._read_plugins()
        return name in self._classes

    def _read_plugins(self) -> None:
        """Register what installed packages offer in the group; a plugin that fails to load is
        logged and left out, the rest still work."""
        if self._plugins_read:
            return
        self._plugins_read = True
        for ep in entry_points(group=self.group or ""):
            try:
                self.add(ep.load())
            except Exception:
                log.exception("%s plugin %s (%s) could not be loaded; left out", self.kind, ep.name, ep.value)
