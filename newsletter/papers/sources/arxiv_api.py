"""The arXiv API (Atom from export.arxiv.org/api/query): papers by category and date window.

Pages through results with `start`/`max_results` until the opensearch total is reached,
waits between calls as arXiv asks, and turns arXiv's error feed (HTTP 400 with one entry
titled "Error") into a `SourceError` that quotes arXiv's explanation.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import ClassVar, Self

from newsletter.papers.http import PoliteClient, SourceError
from newsletter.papers.records import PaperRecord, Skip, parse_arxiv_id
from newsletter.papers.sources.base import Fetched, Source, SourceRequest, parse_datetime

#: Without --date/--since the arXiv API looks back this far: its index lags announcements.
DEFAULT_LOOKBACK_DAYS = 2

ATOM = "{http://www.w3.org/2005/Atom}"
ARXIV = "{http://arxiv.org/schemas/atom}"
OPENSEARCH = "{http://a9.com/-/spec/opensearch/1.1/}"


def build_query(categories: Sequence[str], since: date | None, until: date | None) -> str:
    """`(cat:cs.LG OR cat:cs.CL) AND submittedDate:[202607100000 TO 202607102359]`."""
    if not categories:
        raise SourceError("no arXiv categories given; set NEWSLETTER_ARXIV_CATEGORIES or --categories")
    query = "(" + " OR ".join(f"cat:{c}" for c in categories) + ")"
    if since or until:
        start = (since or date(1991, 1, 1)).strftime("%Y%m%d") + "0000"
        end = (until or date.today()).strftime("%Y%m%d") + "2359"
        query += f" AND submittedDate:[{start} TO {end}]"
    return query


def _text(element: ET.Element, tag: str) -> str:
    found = element.find(tag)
    return (found.text or "") if found is not None else ""


def _is_error_feed(root: ET.Element) -> str | None:
    """arXiv's explanation when the feed is its error feed, else None."""
    for entry in root.iter(f"{ATOM}entry"):
        if _text(entry, f"{ATOM}title").strip() == "Error" and "/api/errors" in _text(entry, f"{ATOM}id"):
            return _text(entry, f"{ATOM}summary").strip() or "unspecified error"
    return None


def parse_entry(entry: ET.Element) -> PaperRecord | Skip:
    """One Atom entry as a record; entries without id or title are skipped."""
    entry_id = _text(entry, f"{ATOM}id").strip()
    arxiv_id, version = parse_arxiv_id(entry_id)
    title = _text(entry, f"{ATOM}title")
    if not arxiv_id:
        return Skip("entry without an arXiv id", entry_id or None)
    if not title.strip():
        return Skip("entry without a title", arxiv_id)
    links: dict[str, str] = {}
    for link in entry.findall(f"{ATOM}link"):
        href = link.get("href")
        if not href:
            continue
        kind = link.get("title") or ("abs" if link.get("rel") == "alternate" else None)
        if kind:
            links[kind] = href
    categories = [c.get("term", "") for c in entry.findall(f"{ATOM}category") if c.get("term")]
    primary = entry.find(f"{ARXIV}primary_category")
    doi = _text(entry, f"{ARXIV}doi").strip()
    if doi:
        links.setdefault("doi", f"https://doi.org/{doi}")
    return PaperRecord(
        source="arxiv",
        source_id=f"{arxiv_id}v{version}" if version else arxiv_id,
        title=title,
        abstract=_text(entry, f"{ATOM}summary"),
        authors=[_text(a, f"{ATOM}name").strip() for a in entry.findall(f"{ATOM}author")],
        categories=categories,
        primary_category=primary.get("term") if primary is not None else next(iter(categories), None),
        arxiv_id=arxiv_id,
        arxiv_version=version,
        published_at=parse_datetime(_text(entry, f"{ATOM}published")),
        updated_at=parse_datetime(_text(entry, f"{ATOM}updated")),
        url=f"https://arxiv.org/abs/{arxiv_id}",
        pdf_url=links.get("pdf"),
        links=links,
    )


@dataclass
class ArxivApiSource(Source):
    """Papers submitted in a date window to any of `categories`, newest first."""

    client: PoliteClient
    base_url: str
    categories: Sequence[str]
    since: date | None = None
    until: date | None = None
    page_size: int = 100
    max_results: int = 2000
    on_total: Callable[[int], None] | None = None
    name: ClassVar[str] = "arxiv"

    @classmethod
    def from_request(cls, request: SourceRequest) -> Self:
        until = request.day or datetime.now(UTC).date()
        start = request.day or request.since or until - timedelta(days=DEFAULT_LOOKBACK_DAYS)
        return cls(
            request.arxiv_client,
            request.settings.arxiv_api_url,
            request.categories,
            start,
            until,
            max_results=request.max_results,
        )

    def fetch(self) -> Fetched:
        query = build_query(self.categories, self.since, self.until)
        start, total = 0, None
        while start < min(total if total is not None else self.max_results, self.max_results):
            size = min(self.page_size, self.max_results - start)
            root = self._page(query, start, size)
            total = int(_text(root, f"{OPENSEARCH}totalResults") or 0)
            if start == 0 and self.on_total:
                self.on_total(min(total, self.max_results))
            entries = root.findall(f"{ATOM}entry")
            if not entries:
                break  # an empty day, or arXiv's occasional short page: stop, never loop
            for entry in entries:
                yield parse_entry(entry)
            start += len(entries)

    def _page(self, query: str, start: int, size: int) -> ET.Element:
        params = {
            "search_query": query,
            "start": str(start),
            "max_results": str(size),
            "sortBy": "submittedDate",
            "sortOrder": "descending",
        }
        response = self.client.get(self.base_url, params=params)
        try:
            root = ET.fromstring(response.content)
        except ET.ParseError as exc:
            raise SourceError(
                f"arXiv API answered HTTP {response.status_code} with unreadable XML ({exc})"
            ) from None
        error = _is_error_feed(root)
        if error:
            raise SourceError(f"arXiv API error: {error}")
        if response.status_code >= 400:
            raise SourceError(f"arXiv API answered HTTP {response.status_code}")
        return root
