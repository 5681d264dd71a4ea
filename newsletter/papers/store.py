"""Storing records: clean, find the paper they describe, insert or merge. Idempotent.

Identity is the versionless arXiv id; papers without one are matched on `title_key`, and a
paper first seen without an id (a file import) adopts the id when arXiv reports it later.
Merging never loses information: the richer abstract wins, upvotes only grow, links are
united, `first_seen_at` never moves — except that a newer arXiv version replaces the text
its authors revised. A record that changes nothing leaves the row (and `modified_at`) alone,
so re-running an ingest is a no-op.

Records are handled in chunks: one query per chunk finds the rows they may match, which
keeps a multi-million-line snapshot import at a few queries per thousand papers and its
memory bounded (the session only holds the current chunk's rows).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlmodel import Session, col, select

from newsletter.db import chunked
from newsletter.dbtypes import utcnow
from newsletter.papers.cleaning import clean_text, title_key
from newsletter.papers.models import Paper
from newsletter.papers.records import PaperRecord, Skip, SourceStats

CHUNK_SIZE = 500

#: Called after each stored chunk with the running stats.
ChunkDone = Callable[[SourceStats], None]


@dataclass
class _Prepared:
    record: PaperRecord
    title: str
    abstract: str
    key: str


def _prepare(record: PaperRecord) -> _Prepared | Skip:
    title = clean_text(record.title)
    key = title_key(record.title)
    if not key:  # no letters or digits: nothing to show, and no identity to dedupe on
        return Skip("empty title", record.source_id)
    return _Prepared(record, title, clean_text(record.abstract), key)


def _fields_for_new(p: _Prepared, now: datetime) -> dict[str, Any]:
    r = p.record
    return {
        "source": r.source,
        "source_id": r.source_id[:255],
        "arxiv_id": r.arxiv_id,
        "arxiv_version": r.arxiv_version,
        "title": p.title,
        "title_raw": r.title,
        "abstract": p.abstract,
        "abstract_raw": r.abstract,
        "title_key": p.key,
        "authors": list(r.authors),
        "categories": list(r.categories),
        "primary_category": r.primary_category,
        "published_at": r.published_at,
        "updated_at": r.updated_at,
        "url": r.url,
        "pdf_url": r.pdf_url,
        "upvotes": r.upvotes,
        "links": dict(r.links),
        "first_seen_at": now,
        "modified_at": now,
    }


def merged_fields(paper: Paper, p: _Prepared) -> dict[str, Any]:
    """The fields of `paper` that `p` should change (empty: nothing new)."""
    r = p.record
    want: dict[str, Any] = {}
    if paper.arxiv_id is None and r.arxiv_id:
        want.update(arxiv_id=r.arxiv_id, arxiv_version=r.arxiv_version)
    # Only a known older version is superseded; a row without one (a file, Hugging Face)
    # merges like any other source and just learns its version.
    newer = (
        r.arxiv_version is not None
        and paper.arxiv_version is not None
        and paper.arxiv_version < r.arxiv_version
    )
    if newer:  # the authors revised the paper: their new text replaces the old
        want.update(arxiv_version=r.arxiv_version, title=p.title, title_raw=r.title)
        want.update(title_key=p.key, updated_at=r.updated_at or paper.updated_at)
        if p.abstract:
            want.update(abstract=p.abstract, abstract_raw=r.abstract)
        for name in ("authors", "categories"):
            if getattr(r, name):
                want[name] = list(getattr(r, name))
        for name in ("primary_category", "pdf_url"):
            if getattr(r, name):
                want[name] = getattr(r, name)
    else:
        if len(p.abstract) > len(paper.abstract):
            want.update(abstract=p.abstract, abstract_raw=r.abstract)
        for name in ("authors", "categories"):
            if not getattr(paper, name) and getattr(r, name):
                want[name] = list(getattr(r, name))
        for name in (
            "arxiv_version",
            "primary_category",
            "published_at",
            "updated_at",
            "url",
            "pdf_url",
        ):
            if getattr(paper, name) is None and getattr(r, name) is not None:
                want[name] = getattr(r, name)
    if r.upvotes is not None and (paper.upvotes is None or r.upvotes > paper.upvotes):
        want["upvotes"] = r.upvotes
    links = {**paper.links, **r.links} if newer else {**r.links, **paper.links}
    if links != paper.links:
        want["links"] = links
    return {k: v for k, v in want.items() if getattr(paper, k) != v}


class _ChunkIndex:
    """The rows a chunk's records may match, plus rows created in this chunk."""

    def __init__(self, session: Session, items: list[_Prepared]) -> None:
        ids = {p.record.arxiv_id for p in items if p.record.arxiv_id}
        keys = {p.key for p in items}
        self.by_id: dict[str, Paper] = {}
        self.by_key: dict[str, list[Paper]] = {}
        if ids:
            for paper in session.exec(select(Paper).where(col(Paper.arxiv_id).in_(ids))):
                self.add(paper)
        for paper in session.exec(
            select(Paper).where(col(Paper.title_key).in_(keys)).order_by(col(Paper.id))
        ):
            self.add(paper)

    def add(self, paper: Paper) -> None:
        if paper.arxiv_id:
            self.by_id[paper.arxiv_id] = paper
        rows = self.by_key.setdefault(paper.title_key, [])
        if paper not in rows:
            rows.append(paper)

    def match(self, p: _Prepared) -> Paper | None:
        if p.record.arxiv_id:
            found = self.by_id.get(p.record.arxiv_id)
            if found is not None:
                return found
            # a paper first seen without an id (a file) takes the id arXiv now gives it
            return next((row for row in self.by_key.get(p.key, []) if row.arxiv_id is None), None)
        rows = self.by_key.get(p.key)
        return rows[0] if rows else None


def _store_chunk(session: Session, items: list[_Prepared], stats: SourceStats, now: datetime) -> None:
    index = _ChunkIndex(session, items)
    for p in items:
        paper = index.match(p)
        if paper is None:
            paper = Paper(**_fields_for_new(p, now))
            session.add(paper)
            index.add(paper)
            stats.count("new")
            continue
        changes = merged_fields(paper, p)
        if not changes:
            stats.count("duplicate")
            continue
        for name, value in changes.items():
            setattr(paper, name, value)
        paper.modified_at = now
        index.add(paper)
        stats.count("updated")
    session.flush()


def store_records(
    session: Session,
    items: Iterable[PaperRecord | Skip],
    stats: SourceStats,
    *,
    progress: ChunkDone | None = None,
    now: datetime | None = None,
) -> SourceStats:
    """Insert or merge every record into `session` (flushed, not committed); counts in `stats`."""
    now = now or utcnow()
    for chunk in chunked(items, CHUNK_SIZE):
        prepared: list[_Prepared] = []
        for item in chunk:
            stats.fetched += 1
            ready = item if isinstance(item, Skip) else _prepare(item)
            if isinstance(ready, Skip):
                stats.skip(ready)
            else:
                prepared.append(ready)
        if prepared:
            _store_chunk(session, prepared, stats, now)
            session.expunge_all()  # rows are in the database now; keep memory bounded
        if progress:
            progress(stats)
    return stats
