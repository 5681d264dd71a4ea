"""The normalised paper record every source and importer produces, and arXiv identity.

Sources only translate their format into `PaperRecord`s with the text exactly as fetched;
cleaning and deduplication happen once, in `store.py`, so every source is treated alike.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

#: New-style (2007+) ids `2104.12255v1` and old-style `astro-ph/0601001v2`.
_ARXIV_ID = re.compile(r"(?P<id>\d{4}\.\d{4,5}|[a-z][a-z\-]*(?:\.[A-Z]{2})?/\d{7})(?:v(?P<version>\d+))?$")


def parse_arxiv_id(text: str | None) -> tuple[str | None, int | None]:
    """The versionless arXiv id and version in an id, abs/pdf URL or OAI identifier.

    The versionless id is a paper's identity; the version only says which revision we hold.
    """
    if not text:
        return None, None
    value = text.strip()
    for prefix in ("oai:arXiv.org:", "arXiv:", "arxiv:"):
        if value.startswith(prefix):
            value = value[len(prefix) :]
    value = re.sub(r"^https?://(export\.)?arxiv\.org/(abs|pdf|html)/", "", value)
    value = value.removesuffix(".pdf").rstrip("/")
    match = _ARXIV_ID.fullmatch(value)
    if not match:
        return None, None
    version = match.group("version")
    return match.group("id"), int(version) if version else None


@dataclass
class PaperRecord:
    """One paper as a source reported it (title and abstract not yet cleaned)."""

    source: str
    source_id: str
    title: str
    abstract: str = ""
    authors: list[str] = field(default_factory=list)
    categories: list[str] = field(default_factory=list)
    primary_category: str | None = None
    arxiv_id: str | None = None
    arxiv_version: int | None = None
    published_at: datetime | None = None
    updated_at: datetime | None = None
    url: str | None = None
    pdf_url: str | None = None
    upvotes: int | None = None
    links: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Skip:
    """An entry or file row a source could not use; `reason` is short and groupable."""

    reason: str
    where: str | None = None  # e.g. "line 12" or an entry id

    def describe(self) -> str:
        return f"{self.where}: {self.reason}" if self.where else self.reason


@dataclass
class SourceStats:
    """What one source or import did: the numbers behind the one-line summary."""

    name: str
    fetched: int = 0
    new: int = 0
    updated: int = 0
    duplicates: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    examples: list[str] = field(default_factory=list)  # first skips with their place
    error: str | None = None
    note: str | None = None

    MAX_EXAMPLES = 20

    def skip(self, item: Skip) -> None:
        """Count a skipped entry by reason; keep the first few with line numbers."""
        self.skipped[item.reason] += 1
        if len(self.examples) < self.MAX_EXAMPLES:
            self.examples.append(item.describe())

    def count(self, outcome: str) -> None:
        """Count one stored record by its outcome: new, updated or duplicate."""
        if outcome == "new":
            self.new += 1
        elif outcome == "updated":
            self.updated += 1
        else:
            self.duplicates += 1

    @property
    def skipped_total(self) -> int:
        return sum(self.skipped.values())

    def summary(self) -> str:
        """`fetched 120, new 116, updated 0, duplicates 4, skipped 2 (missing title: 2)`."""
        text = (
            f"fetched {self.fetched}, new {self.new}, updated {self.updated}, "
            f"duplicates {self.duplicates}, skipped {self.skipped_total}"
        )
        if self.skipped:
            text += " (" + "; ".join(f"{r}: {n}" for r, n in self.skipped.most_common()) + ")"
        return text

    def as_dict(self) -> dict[str, object]:
        return {
            "source": self.name,
            "fetched": self.fetched,
            "new": self.new,
            "updated": self.updated,
            "duplicates": self.duplicates,
            "skipped": self.skipped_total,
            "skipped_reasons": dict(self.skipped),
            "skipped_examples": list(self.examples),
            "error": self.error,
            "note": self.note,
        }


#: Progress callback of imports and ingests: running stats and the fraction done when known.
Progress = Callable[[SourceStats, float | None], None]
