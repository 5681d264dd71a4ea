"""Paper sources: each turns one outside format into `PaperRecord`s (or `Skip`s).

Every source has the same shape — `fetch()` yields records and skips, raises
`SourceError` when the source as a whole cannot be read — so `ingest.py` can run any mix
of them and report each one separately.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Protocol

from newsletter.papers.records import PaperRecord, Skip

Fetched = Iterator[PaperRecord | Skip]


class Source(Protocol):
    """What `ingest` needs of a source."""

    name: str

    def fetch(self) -> Fetched:
        """Yield every record (or skipped entry) this source has for the request."""
        ...


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
