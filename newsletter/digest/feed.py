"""A reader's private Atom feed: the papers of their recent digests, one entry per pick.

Pure, like the email context: the digests (date, when sent, picks) go in, Atom XML comes out,
built by `feedgen` (a well-kept Atom writer: escaping, dates, required elements). Entries say
the same as the email (title, authors, why it was picked, the abstract) and link the paper's
page, or the digest's archive page when the paper has none.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from urllib.parse import urlsplit

from feedgen.feed import FeedGenerator

from newsletter.digest.context import DigestItem, archive_url, digest_item
from newsletter.settings import Settings

#: Entries in one feed document: a month of daily digests of ten papers.
MAX_ENTRIES = 300


@dataclass(frozen=True)
class SentDigest:
    """One digest as the feed needs it."""

    digest_date: date
    sent_at: datetime
    items: Sequence[DigestItem]


def atom_feed(
    settings: Settings, subscriber_id: int, site_name: str, self_url: str, digests: Sequence[SentDigest]
) -> bytes:
    """The Atom document of `digests` (newest first) for one reader."""
    host = urlsplit(settings.base_url).hostname or "localhost"
    feed = FeedGenerator()
    # Tag URIs (RFC 4151) stay the same whatever the link's token, so readers never see
    # duplicates when a new feed link is issued.
    feed.id(f"tag:{host},2024:feed:{subscriber_id}")
    feed.title(f"{site_name}: papers picked for you")
    feed.subtitle("New research papers matching your interests, from your digests.")
    feed.author({"name": site_name})
    feed.link(href=self_url, rel="self", type="application/atom+xml")
    feed.link(href=settings.base_url, rel="alternate", type="text/html")
    feed.updated(max((d.sent_at for d in digests), default=datetime(2024, 1, 1).astimezone()))
    count = 0
    for digest in digests:
        archive = archive_url(settings, subscriber_id, digest.digest_date)
        for rank, item in enumerate(digest.items, 1):
            if count >= MAX_ENTRIES:
                break
            shown = digest_item(settings, subscriber_id, item, rank, archive)
            entry = feed.add_entry(order="append")
            entry.id(f"tag:{host},{digest.digest_date.isoformat()}:pick:{subscriber_id}:{item.paper.id}")
            entry.title(shown["title"])
            entry.link(href=shown["url"], rel="alternate")
            entry.updated(digest.sent_at)
            entry.published(digest.sent_at)
            for name in item.paper.authors[:10]:
                entry.author({"name": name})
            byline = f"{shown['authors']}\n" if shown["authors"] else ""
            entry.summary(f"{byline}{shown['why']}\n\n{shown['abstract']}".strip())
            count += 1
    return bytes(feed.atom_str(pretty=True))
