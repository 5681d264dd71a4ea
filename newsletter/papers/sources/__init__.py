"""The paper sources, by name: `papers ingest --source NAME` and NEWSLETTER_SOURCES read this.

Adding a source is one new module here (a class following `base.Source`) and one line in
`SOURCES`.
"""

from __future__ import annotations

from newsletter.papers.sources.base import Source
from newsletter.registry import Registry

SOURCES: Registry[type[Source]] = Registry(
    "source",
    {
        "arxiv": "newsletter.papers.sources.arxiv_api:ArxivApiSource",
        "arxiv-listing": "newsletter.papers.sources.arxiv_listing:ArxivListingSource",
        "hf-daily": "newsletter.papers.sources.hf_daily:HfDailySource",
        "rss": "newsletter.papers.sources.rss:RssSource",
    },
)
