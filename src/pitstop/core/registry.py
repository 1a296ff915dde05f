"""Components register by name; built-ins go through the same path as plugins."""

from __future__ import annotations

from collections.abc import Iterable
from importlib import import_module
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class UnknownComponentError(LookupError):
    def __init__(self, kind: str, name: str, known: Iterable[str]) -> None:
        self.kind, self.name = kind, name
        super().__init__(f"unknown {kind} {name!r}; known: {', '.join(sorted(known)) or 'none'}")


class Registry(Generic[T]):
    """By-name lookup of component classes of one kind (checks, detectors, actions, ...)."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._classes: dict[str, type[T]] = {}

    def add(self, cls: type[T]) -> type[T]:
        name: str = getattr(cls, "name", "")
        if not name:
            raise ValueError(f"{cls.__qualname__} has no `name`")
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
        try:
            return self._classes[name]
        except KeyError:
            raise UnknownComponentError(self.kind, name, self._classes) from None

    def create(self, name: str, /, **params: Any) -> T:
        return self.get(name)(**params)

    def names(self) -> list[str]:
        return sorted(self._classes)

    def __contains__(self, name: object) -> bool:
        return name in self._classes
