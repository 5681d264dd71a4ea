"""Hugging Face Daily Papers (`/api/daily_papers?date=YYYY-MM-DD`): curated papers with upvotes.

Upvotes are the community's signal of what is worth reading today; they are kept as the
paper's popularity (the digest's "trending" section). Every item names its arXiv id, so
these papers merge with the same papers from arXiv itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, ClassVar, Self

from newsletter.errors import UserError
from newsletter.papers.http import PoliteClient, SourceError
from newsletter.papers.records import PaperRecord, Skip, parse_arxiv_id
from newsletter.papers.sources.base import Fetched, Source, SourceRequest, parse_datetime


def parse_item(item: Any) -> PaperRecord | Skip:
    """One daily-papers object as a record, or why it is not usable."""
    paper = item.get("paper") if isinstance(item, dict) else None
    if not isinstance(paper, dict):
        return Skip("item without a paper object")
    arxiv_id, version = parse_arxiv_id(str(paper.get("id") or ""))
    title = paper.get("title") or item.get("title") or ""
    if not arxiv_id:
        return Skip("item without an arXiv id", str(paper.get("id") or "") or None)
    if not str(title).strip():
        return Skip("item without a title", arxiv_id)
    links = {"hf": f"https://huggingface.co/papers/{arxiv_id}"}
    for key, name in (("githubRepo", "github"), ("projectPage", "project")):
        if paper.get(key):
            links[name] = str(paper[key])
    upvotes = paper.get("upvotes")
    return PaperRecord(
        source="hf-daily",
        source_id=arxiv_id,
        title=str(title),
        abstract=str(paper.get("summary") or item.get("summary") or ""),
        authors=[a["name"] for a in paper.get("authors", []) if isinstance(a, dict) and a.get("name")],
        arxiv_id=arxiv_id,
        arxiv_version=version,
        published_at=parse_datetime(paper.get("publishedAt") or item.get("publishedAt")),
        url=f"https://arxiv.org/abs/{arxiv_id}",
        pdf_url=f"https://arxiv.org/pdf/{arxiv_id}",
        upvotes=int(upvotes) if isinstance(upvotes, int) else None,
        links=links,
    )


@dataclass
class HfDailySource(Source):
    """The daily papers of each date in `dates` (no date: the latest day)."""

    client: PoliteClient
    base_url: str
    dates: Sequence[date | None] = field(default_factory=lambda: [None])
    name: ClassVar[str] = "hf-daily"

    @classmethod
    def from_request(cls, request: SourceRequest) -> Self:
        if request.day:
            dates: list[date | None] = [request.day]
        elif request.since:
            until = datetime.now(UTC).date()
            if request.since > until:
                raise UserError(f"--since {request.since} is after {until}; give an earlier date")
            dates = [request.since + timedelta(days=n) for n in range((until - request.since).days + 1)]
        else:
            dates = [None]
        return cls(request.client, request.settings.hf_api_url, dates)

    def fetch(self) -> Fetched:
        for day in self.dates:
            params = {"date": day.isoformat()} if day else None
            response = self.client.get(self.base_url, params=params)
            if response.status_code >= 400:
                raise SourceError(f"{self.base_url} answered HTTP {response.status_code}")
            try:
                items = response.json()
            except ValueError as exc:
                raise SourceError(f"{self.base_url} did not answer JSON ({exc})") from None
            if not isinstance(items, list):
                raise SourceError(f"{self.base_url} answered {type(items).__name__}, not a list")
            for item in items:
                yield parse_item(item)
