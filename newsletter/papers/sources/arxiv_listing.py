"""arXiv's daily new-listings feed (rss.arxiv.org/rss/cs.LG+cs.CL): what was announced today.

Each item carries `arxiv:announce_type`: `new` papers are today's; `cross` are cross-lists
from other archives (taken only when asked); `replace` are new versions of old papers and
are skipped, since they are not news. An empty feed is a normal day without announcements
(weekends, holidays), not an error.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Self

import feedparser

from newsletter.papers.http import PoliteClient, SourceError
from newsletter.papers.records import PaperRecord, Skip, parse_arxiv_id
from newsletter.papers.sources.base import Fetched, Source, SourceRequest, parse_datetime

#: "arXiv:2609.26811v1 Announce Type: new \nAbstract: …" — the prefix before the abstract.
_DESCRIPTION_PREFIX = re.compile(r"^\s*arXiv:\S+\s+Announce Type:\s*\S+\s*(Abstract:\s*)?", re.S)


def read_feed(client: PoliteClient, url: str) -> Any:
    """Fetch and parse a feed; SourceError when it is unreachable or not a feed at all."""
    response = client.get(url)
    if response.status_code >= 400:
        raise SourceError(f"{url} answered HTTP {response.status_code}")
    parsed = feedparser.parse(response.content)
    if parsed.bozo and not parsed.entries and not parsed.feed.get("title"):
        raise SourceError(f"{url} is not an RSS/Atom feed ({parsed.get('bozo_exception')})")
    return parsed


def entry_authors(entry: Any) -> list[str]:
    """Authors from `<author>` elements or a comma-separated `dc:creator`."""
    names = [a.get("name", "") for a in entry.get("authors", []) if a.get("name")]
    if len(names) == 1 and "," in names[0]:
        names = names[0].split(",")
    return [n.strip() for n in names if n.strip()]


def parse_item(entry: Any, *, include_cross: bool) -> PaperRecord | Skip:
    """One listing item as a record, or the reason it is not one."""
    kind = (entry.get("arxiv_announce_type") or "new").strip()
    arxiv_id, version = parse_arxiv_id(entry.get("id") or entry.get("link"))
    if not arxiv_id:
        return Skip("item without an arXiv id", entry.get("link"))
    if kind.startswith("replace"):
        return Skip("replacement of an older paper", arxiv_id)
    if kind == "cross" and not include_cross:
        return Skip("cross-list (use --cross to include)", arxiv_id)
    title = entry.get("title", "")
    if not title.strip():
        return Skip("item without a title", arxiv_id)
    categories = [t.get("term") for t in entry.get("tags", []) if t.get("term")]
    abs_url = f"https://arxiv.org/abs/{arxiv_id}"
    return PaperRecord(
        source="arxiv-listing",
        source_id=f"{arxiv_id}v{version}" if version else arxiv_id,
        title=title,
        abstract=_DESCRIPTION_PREFIX.sub("", entry.get("summary", "")),
        authors=entry_authors(entry),
        categories=categories,
        primary_category=categories[0] if categories else None,
        arxiv_id=arxiv_id,
        arxiv_version=version,
        published_at=parse_datetime(entry.get("published")),
        url=abs_url,
        pdf_url=f"https://arxiv.org/pdf/{arxiv_id}",
        links={"abs": abs_url},
    )


@dataclass
class ArxivListingSource(Source):
    """Today's announcements in `categories` from the listings feed at `base_url`."""

    client: PoliteClient
    base_url: str
    categories: Sequence[str]
    include_cross: bool = False
    name: ClassVar[str] = "arxiv-listing"

    @classmethod
    def from_request(cls, request: SourceRequest) -> Self:
        return cls(request.client, request.settings.arxiv_rss_url, request.categories, request.include_cross)

    def fetch(self) -> Fetched:
        if not self.categories:
            raise SourceError("no arXiv categories given; set NEWSLETTER_ARXIV_CATEGORIES")
        url = f"{self.base_url.rstrip('/')}/{'+'.join(self.categories)}"
        for entry in read_feed(self.client, url).entries:
            yield parse_item(entry, include_cross=self.include_cross)
