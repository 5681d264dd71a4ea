"""Run the enabled sources, each in its own transaction, and report on each.

A source that fails (down after retries, an error feed) is reported with its message while
the others still ingest; its own partial work is rolled back, so a run never leaves half a
source behind. Stats per source say what happened: fetched, new, updated, duplicates,
skipped with reasons.
"""

from __future__ import annotations

from contextlib import closing
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine

from newsletter.db import session_scope
from newsletter.papers.http import PoliteClient, SourceError
from newsletter.papers.records import Progress, SourceStats
from newsletter.papers.sources import SOURCES
from newsletter.papers.sources.base import SourceRequest
from newsletter.papers.store import store_records
from newsletter.settings import Settings


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


def ingest(
    engine: Engine,
    settings: Settings,
    sources: list[str] | None = None,
    *,
    progress: Progress | None = None,
    **options: Any,
) -> IngestReport:
    """Fetch and store papers from `sources` (default: `settings.sources`).

    `options` are those of `SourceRequest`: categories, day, since, urls, include_cross,
    max_results.
    """
    names = list(sources or settings.sources)
    classes = [SOURCES.load(name) for name in names]
    categories = options.pop("categories", None)
    report = IngestReport()
    with (
        closing(PoliteClient.from_settings(settings)) as client,
        closing(PoliteClient.from_settings(settings, delay_seconds=settings.arxiv_delay_seconds)) as arxiv,
    ):
        request = SourceRequest(
            settings,
            client,
            arxiv,
            list(categories or settings.arxiv_categories),
            **{k: v for k, v in options.items() if v is not None},
        )
        for name, cls in zip(names, classes):
            stats = SourceStats(name=name)
            report.sources.append(stats)
            source = cls.from_request(request)
            note = source.unconfigured()
            if note:
                stats.note = note
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
