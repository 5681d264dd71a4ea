"""Named plug-ins (paper sources, transports, rankers) looked up by the name a setting gives.

Each floor keeps its own table of name → "module:attribute"; the text references keep the
table cheap to import (the CLI's help lists the names without loading httpx, smtplib or
numpy) and let a plug-in be added with one new module and one line in its table.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from importlib import import_module
from typing import Generic, TypeVar

from newsletter.errors import UserError

T = TypeVar("T")


class Registry(Mapping[str, str], Generic[T]):
    """name → "module:attribute" of one kind of plug-in (`T` is what `load` returns)."""

    def __init__(self, kind: str, entries: dict[str, str]) -> None:
        self.kind = kind
        self._entries = dict(entries)

    def __getitem__(self, name: str) -> str:
        return self._entries[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def names(self) -> str:
        """The names for help texts and error messages: "a, b or c"."""
        names = list(self._entries)
        return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"

    def load(self, name: str) -> T:
        """The plug-in registered as `name`, or a UserError listing the names."""
        reference = self._entries.get(name)
        if reference is None:
            raise UserError(f"unknown {self.kind} {name!r}; use {self.names()}")
        module, _, attribute = reference.partition(":")
        found: T = getattr(import_module(module), attribute)
        return found
