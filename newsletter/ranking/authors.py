"""Matching followed authors to paper bylines, tolerant of initials, accents and middle names.

"Yann LeCun" follows "Y. LeCun", "Yann A. LeCun", "LeCun, Yann" and "Yann Lécun". Two names
match when their surnames are equal (accents, case and TeX accents ignored) and their first
given names agree: equal, or one is the initial of the other. Middle names never matter.
"""

from __future__ import annotations

import re
import unicodedata
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

_TEX_ACCENT = re.compile(r"\\[`'^\"~=.uvHckrb]\s*\{?([A-Za-z])\}?")
_NON_NAME = re.compile(r"[^a-z\s-]")


@dataclass(frozen=True)
class Name:
    """A person's name reduced to what matching needs."""

    given: str  # first given name, or its initial ("y"); "" when unknown
    surname: str


def _fold(text: str) -> str:
    text = _TEX_ACCENT.sub(r"\1", text)
    text = unicodedata.normalize("NFKD", text)
    text = "".join(ch for ch in text if not unicodedata.combining(ch)).lower()
    text = text.replace(".", ". ")
    return " ".join(_NON_NAME.sub(" ", text).split())


def parse_name(raw: str) -> Name | None:
    """`Name` of "Yann LeCun", "LeCun, Yann", "Y. A. LeCun"; None when there is no name."""
    if "," in raw:
        surname, _, given = raw.partition(",")
        raw = f"{given} {surname}"
    parts = _fold(raw).split()
    if not parts:
        return None
    return Name(given=parts[0] if len(parts) > 1 else "", surname=parts[-1])


def same_person(followed: Name, author: Name) -> bool:
    """Whether a byline name can be the followed person."""
    if followed.surname != author.surname:
        return False
    a, b = followed.given, author.given
    if not a or not b:
        return True
    if len(a) == 1 or len(b) == 1:
        return a[0] == b[0]
    return a == b


class AuthorIndex:
    """Candidate papers by author surname, so each followed name is looked up, not scanned."""

    def __init__(self, bylines: Sequence[Sequence[str]]) -> None:
        self._by_surname: dict[str, list[tuple[int, Name]]] = defaultdict(list)
        for column, names in enumerate(bylines):
            for raw in names:
                name = parse_name(raw)
                if name is not None:
                    self._by_surname[name.surname].append((column, name))

    def papers_by(self, followed: str) -> list[int]:
        """Columns of the papers with `followed` among their authors (sorted, unique)."""
        name = parse_name(followed)
        if name is None:
            return []
        return sorted({c for c, a in self._by_surname.get(name.surname, []) if same_person(name, a)})
