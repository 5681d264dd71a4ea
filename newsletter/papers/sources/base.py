"""What every paper source is: built from one run's `SourceRequest`, it yields records.

Every source has the same shape — `from_request()` builds it from the run's options,
`fetch()` yields records and skips and raises `SourceError` when the source as a whole
cannot be read — so `ingest.py` can run any mix of them and report each one separately.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from email.utils import parsedate_to_datetime
from typing import ClassVar, Self

from newsletter.papers.http import PoliteClient
from newsletter.papers.records import PaperRecord, Skip
from newsletter.settings import Settings

Fetched = Iterator[PaperRecord | Skip]


@dataclass(frozen=True)
class SourceRequest:
    """One ingest run's options, as every source reads them (each takes what it needs)."""

    settings: Settings
    client: PoliteClient
    arxiv_client: PoliteClient  # the arXiv API's own, with its required pause between calls
    categories: Sequence[str]
    day: date | None = None
    since: date | None = None
    urls: Sequence[str] = ()
    include_cross: bool = False
    max_results: int = 2000


class Source(ABC):
    """What `ingest` needs of a source."""

    name: ClassVar[str]

    @classmethod
    @abstractmethod
    def from_request(cls, request: SourceRequest) -> Self:
        """The source configured for one run."""

    @abstractmethod
    def fetch(self) -> Fetched:
        """Yield every record (or skipped entry) this source has for the request."""

    def unconfigured(self) -> str | None:
        """Why this source has nothing to fetch by configuration (a note), else None."""
        return None


def parse_datetime(value: str | None) -> datetime | None:
    """An aware UTC datetime from ISO 8601 or RFC 822 text; None when absent or unreadable."""
    if not value:
        return None
    text = value.strip()
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        try:
            parsed = parsedate_to_datetime(text)
        except (TypeError, ValueError):
            return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)
