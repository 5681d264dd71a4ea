"""Run the enabled sources, each in its own transaction, and report on each.

A source that fails (down after retries, an error feed) is reported with its message while
the others still ingest; its own partial work is rolled back, so a run never leaves half a
source behind. Stats per source say what happened: fetched, new, updated, duplicates,
skipped with reasons.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import closing
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import Engine

from newsletter.db import session_scope
from newsletter.errors import UserError
from newsletter.papers.http import PoliteClient, SourceError
from newsletter.papers.records import Progress, SourceStats
from newsletter.papers.sources import Source
from newsletter.papers.sources.arxiv_api import ArxivApiSource
from newsletter.papers.sources.arxiv_listing import ArxivListingSource
from newsletter.papers.sources.hf_daily import HfDailySource
from newsletter.papers.sources.rss import RssSource
from newsletter.papers.store import store_records
from newsletter.settings import Settings

SOURCES = ("arxiv", "arxiv-listing", "hf-daily", "rss")
#: Without --date/--since the arXiv API looks back this far: its index lags announcements.
DEFAULT_LOOKBACK_DAYS = 2


@dataclass
class IngestReport:
    """One `SourceStats` per source run, in the order they ran."""

    sources: list[SourceStats] = field(default_factory=list)

    @property
    def failed(self) -> list[SourceStats]:
        return [s for s in self.sources if s.error]

    def totals(self) -> SourceStats:
        total = SourceStats(name="all sources")
        for s in self.sources:
            total.fetched += s.fetched
            total.new += s.new
            total.updated += s.updated
            total.duplicates += s.duplicates
            total.skipped.update(s.skipped)
        return total


def _days(since: date, until: date) -> list[date | None]:
    if since > until:
        raise UserError(f"--since {since} is after {until}; give an earlier date")
    return [since + timedelta(days=n) for n in range((until - since).days + 1)]


def build_source(
    name: str,
    settings: Settings,
    client: PoliteClient,
    *,
    categories: Sequence[str] | None = None,
    day: date | None = None,
    since: date | None = None,
    urls: Sequence[str] | None = None,
    include_cross: bool = False,
    max_results: int = 2000,
    arxiv_client: PoliteClient | None = None,
) -> Source:
    """The configured source called `name` for one run's options."""
    cats = list(categories or settings.arxiv_categories)
    if name == "arxiv":
        until = day or datetime.now(UTC).date()
        start = day or since or until - timedelta(days=DEFAULT_LOOKBACK_DAYS)
        return ArxivApiSource(
            arxiv_client or client,
            settings.arxiv_api_url,
            cats,
            start,
            until,
            max_results=max_results,
        )
    if name == "arxiv-listing":
        return ArxivListingSource(client, settings.arxiv_rss_url, cats, include_cross)
    if name == "hf-daily":
        dates = [day] if day else _days(since, datetime.now(UTC).date()) if since else [None]
        return HfDailySource(client, settings.hf_api_url, dates)
    if name == "rss":
        return RssSource(client, list(urls or settings.rss_feeds))
    raise UserError(f"unknown source {name!r}; use one of {', '.join(SOURCES)}")


def ingest(
    engine: Engine,
    settings: Settings,
    sources: list[str] | None = None,
    *,
    progress: Progress | None = None,
    **options: Any,
) -> IngestReport:
    """Fetch and store papers from `sources` (default: `settings.sources`).

    `options` are those of `build_source`: categories, day, since, urls, include_cross,
    max_results.
    """
    names = list(sources or settings.sources)
    for name in names:
        if name not in SOURCES:
            raise UserError(f"unknown source {name!r}; use one of {', '.join(SOURCES)}")
    report = IngestReport()
    with (
        closing(PoliteClient.from_settings(settings)) as client,
        closing(
            PoliteClient.from_settings(settings, delay_seconds=settings.arxiv_delay_seconds)
        ) as arxiv,
    ):
        for name in names:
            stats = SourceStats(name=name)
            report.sources.append(stats)
            source = build_source(name, settings, client, arxiv_client=arxiv, **options)
            if isinstance(source, RssSource) and not source.urls:
                stats.note = "no feeds configured (NEWSLETTER_RSS_FEEDS or --url)"
                continue
            on_chunk = (lambda s: progress(s, None)) if progress else None
            try:
                with session_scope(engine) as session:
                    store_records(session, source.fetch(), stats, progress=on_chunk)
            except SourceError as exc:
                stats.error = str(exc)
                stats.new = stats.updated = stats.duplicates = 0  # rolled back
            if not stats.error and stats.fetched == 0:
                stats.note = "no papers today (weekend, holiday or not announced yet)"
    return report
