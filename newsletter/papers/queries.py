"""Reading papers back: listings, one paper by id or arXiv id, and their public rows."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlmodel import Session, col, select

from newsletter.errors import UserError
from newsletter.papers.models import Paper
from newsletter.papers.records import parse_arxiv_id


def paper_row(paper: Paper) -> dict[str, Any]:
    """The stable public row of a paper (dates as ISO 8601 text)."""
    return {
        "id": paper.id,
        "arxiv_id": paper.arxiv_id,
        "title": paper.title,
        "abstract": paper.abstract,
        "authors": list(paper.authors),
        "categories": list(paper.categories),
        "published": paper.published_at.isoformat() if paper.published_at else None,
        "url": paper.url,
        "upvotes": paper.upvotes,
        "first_seen": paper.first_seen_at.isoformat(),
    }


def paper_detail(paper: Paper) -> dict[str, Any]:
    """Everything stored about a paper, raw text and links included."""
    row = paper_row(paper)
    row.update(
        arxiv_version=paper.arxiv_version,
        primary_category=paper.primary_category,
        updated=paper.updated_at.isoformat() if paper.updated_at else None,
        pdf_url=paper.pdf_url,
        links=dict(paper.links),
        source=paper.source,
        source_id=paper.source_id,
        title_raw=paper.title_raw,
        abstract_raw=paper.abstract_raw,
        modified=paper.modified_at.isoformat(),
    )
    return row


def list_papers(session: Session, *, since: date | None = None, limit: int | None = None) -> list[Paper]:
    """Papers first seen on or after `since`, most recently seen first."""
    query = select(Paper).order_by(col(Paper.first_seen_at).desc(), col(Paper.id).desc())
    if since:
        query = query.where(col(Paper.first_seen_at) >= datetime.combine(since, datetime.min.time(), UTC))
    if limit:
        query = query.limit(limit)
    return list(session.exec(query))


def find_paper(session: Session, ref: str) -> Paper:
    """A paper by database id or arXiv id (with or without version); UserError if unknown."""
    paper: Paper | None = None
    if ref.isdigit():
        paper = session.get(Paper, int(ref))
    else:
        arxiv_id, _ = parse_arxiv_id(ref)
        if arxiv_id:
            paper = session.exec(select(Paper).where(Paper.arxiv_id == arxiv_id)).first()
    if paper is None:
        raise UserError(f"no paper {ref!r}; give a number from `newsletter papers list` or an arXiv id")
    return paper


def trending(session: Session, digest_date: date, limit: int = 60) -> list[Paper]:
    """The day's most upvoted papers (first seen the day before or on the date, UTC).

    More than a digest shows are returned, so each reader's list still has some after
    removing the papers already picked for them.
    """
    start = datetime.combine(digest_date, time.min, tzinfo=UTC)
    return list(
        session.exec(
            select(Paper)
            .where(col(Paper.upvotes).is_not(None), col(Paper.upvotes) > 0)
            .where(col(Paper.first_seen_at) >= start - timedelta(days=1))
            .where(col(Paper.first_seen_at) < start + timedelta(days=1))
            .order_by(col(Paper.upvotes).desc(), col(Paper.id))
            .limit(limit)
        )
    )
