"""Any RSS or Atom feed (journals, lab blogs) through feedparser.

Feeds have no shared paper id, so an item's identity is its arXiv id when its link points
at arXiv, else its normalised title (`store.py`).
"""

from __future__ import annotations

import calendar
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar, Self

from newsletter.papers.http import PoliteClient
from newsletter.papers.records import PaperRecord, Skip, parse_arxiv_id
from newsletter.papers.sources.arxiv_listing import entry_authors, read_feed
from newsletter.papers.sources.base import Fetched, Source, SourceRequest


def _when(entry: Any) -> datetime | None:
    parsed = entry.get("published_parsed") or entry.get("updated_parsed")
    return datetime.fromtimestamp(calendar.timegm(parsed), UTC) if parsed else None


def parse_entry(entry: Any, feed_url: str) -> PaperRecord | Skip:
    """One feed entry as a record; entries without a title are skipped."""
    title = entry.get("title", "")
    link = entry.get("link")
    if not title.strip():
        return Skip("entry without a title", link or entry.get("id"))
    arxiv_id, version = parse_arxiv_id(link)
    abstract = entry.get("summary", "")
    if not abstract and entry.get("content"):
        abstract = entry["content"][0].get("value", "")
    return PaperRecord(
        source="rss",
        source_id=str(entry.get("id") or link or title)[:255],
        title=title,
        abstract=abstract,
        authors=entry_authors(entry),
        categories=[t.get("term") for t in entry.get("tags", []) if t.get("term")],
        arxiv_id=arxiv_id,
        arxiv_version=version,
        published_at=_when(entry),
        url=link,
        links={"feed": feed_url, **({"article": link} if link else {})},
    )


@dataclass
class RssSource(Source):
    """Every entry of every feed in `urls`."""

    client: PoliteClient
    urls: Sequence[str]
    name: ClassVar[str] = "rss"

    @classmethod
    def from_request(cls, request: SourceRequest) -> Self:
        return cls(request.client, list(request.urls or request.settings.rss_feeds))

    def unconfigured(self) -> str | None:
        return None if self.urls else "no feeds configured (NEWSLETTER_RSS_FEEDS or --url)"

    def fetch(self) -> Fetched:
        for url in self.urls:
            for entry in read_feed(self.client, url).entries:
                yield parse_entry(entry, url)
