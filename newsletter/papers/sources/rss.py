"""Any RSS or Atom feed (journals, lab blogs) through feedparser.

Feeds have no shared paper id, so an item's identity is its arXiv id when its link points
at arXiv, else its normalised title (`store.py`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from newsletter.papers.http import PoliteClient
from newsletter.papers.records import PaperRecord, Skip, parse_arxiv_id
from newsletter.papers.sources import Fetched
from newsletter.papers.sources.arxiv_listing import entry_authors, read_feed


def _when(entry: Any) -> datetime | None:
    parsed = entry.get("published_parsed") or entry.get("updated_parsed")
    return datetime(*parsed[:6], tzinfo=UTC) if parsed else None


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
class RssSource:
    """Every entry of every feed in `urls`."""

    client: PoliteClient
    urls: Sequence[str]
    name: str = "rss"

    def fetch(self) -> Fetched:
        for url in self.urls:
            for entry in read_feed(self.client, url).entries:
                yield parse_entry(entry, url)
