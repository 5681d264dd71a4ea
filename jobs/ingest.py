"""The `ingest` job: pull every enabled source, then embed the papers that arrived.

Embedding right after ingesting means the dispatch job never waits for the model on the
hot path of a send; a failed source does not stop the others (the ingest layer reports it)
and papers stored before a crash are embedded by the next run (`embed_missing` is by state).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from newsletter.db import open_database, session_scope
from newsletter.settings import Settings, get_settings

log = logging.getLogger("newsletter.jobs.ingest")


@dataclass(frozen=True)
class IngestJobReport:
    """The ingest layer's report and how many papers got their embedding."""

    ingest: Any  # newsletter.papers.ingest.IngestReport
    embedded: int

    def summary(self) -> str:
        """One line for logs and the CLI."""
        return f"ingest: {self.ingest}; embedded {self.embedded} new papers"


def ingest(
    settings: Settings | None = None,
    *,
    progress: Callable[[int], None] | None = None,
) -> IngestJobReport:
    """Ingest from every source enabled in settings, then embed what is new."""
    from newsletter.papers.ingest import ingest as ingest_sources
    from newsletter.ranking.service import embed_missing  # loads torch only here

    settings = settings or get_settings()
    engine = open_database(settings)
    ingested = ingest_sources(engine, settings)
    with session_scope(engine) as session:
        embedded = embed_missing(session, settings, progress=progress)
    report = IngestJobReport(ingest=ingested, embedded=embedded)
    log.info(report.summary())
    return report
