"""What an email says, as plain data: the template context of a digest or a confirmation.

Pure functions (no database, no clock except the date passed in): the same papers, picks and
settings always give the same words, so previews, tests and the real send agree, and the
templates only lay out what is decided here. Every link is built with `newsletter.tokens.link`
(signed, purpose-scoped) — an email never carries a bare address or id.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from newsletter.papers.models import Paper
from newsletter.settings import Settings
from newsletter.tokens import MAX_AGE, Purpose, link
from subscribers.models import Frequency, Subscriber
from subscribers.profile import followed_author

#: Authors listed before "et al."; categories shown; abstract characters kept.
MAX_AUTHORS = 3
MAX_CATEGORIES = 4
SNIPPET_CHARS = 320
SUBJECT_TITLE_CHARS = 60
TRENDING_COUNT = 3

_REASON_TEXT = {
    "author": "By an author you follow",
    "liked": "Close to papers you liked",
}


@dataclass(frozen=True)
class DigestItem:
    """One paper in a digest with why it was picked (from ranking, or from a stored row)."""

    paper: Paper
    matched_interest: str | None = None
    highlight: str | None = None
    reason: str = "interest"
    score: float = 0.0


def shorten(text: str, limit: int) -> str:
    """`text` with whitespace collapsed, cut at a word boundary to `limit` characters + '…'."""
    clean = " ".join(text.split())
    if len(clean) <= limit:
        return clean
    cut = clean[:limit].rsplit(" ", 1)[0].rstrip(",;:-–— ")
    return cut + "…"


def authors_line(authors: Sequence[str]) -> str:
    """'A, B, C et al.' — long author lists would push the abstract below the fold."""
    if len(authors) <= MAX_AUTHORS:
        return ", ".join(authors)
    return ", ".join(authors[:MAX_AUTHORS]) + " et al."


def _snippet(abstract: str) -> str:
    """The abstract's opening, without leftover TeX markup or run-on whitespace."""
    text = re.sub(r"\$([^$]{0,80})\$", r"\1", abstract)
    text = re.sub(r"\\(?:boldsymbol|mathbf|mathrm|textbf|emph)\{([^}]*)\}", r"\1", text)
    return shorten(text, SNIPPET_CHARS)


def paper_url(paper: Paper) -> str:
    """The paper's page: its own URL, else the arXiv abstract page when the id is known."""
    if paper.url:
        return paper.url
    if paper.arxiv_id:
        return f"https://arxiv.org/abs/{paper.arxiv_id}"
    return str(paper.links.get("pdf") or paper.pdf_url or "")


def hf_url(paper: Paper) -> str | None:
    """The Hugging Face paper page when known (stored link, or an HF-reported arXiv paper)."""
    for key in ("hf", "huggingface", "hf_url"):
        if paper.links.get(key):
            return str(paper.links[key])
    if paper.upvotes is not None and paper.arxiv_id:
        return f"https://huggingface.co/papers/{paper.arxiv_id}"
    return None


def _paper_links(paper: Paper) -> list[dict[str, str]]:
    links = [{"label": "Abstract", "url": paper_url(paper)}]
    pdf = paper.pdf_url or (f"https://arxiv.org/pdf/{paper.arxiv_id}" if paper.arxiv_id else None)
    if pdf:
        links.append({"label": "PDF", "url": pdf})
    hf = hf_url(paper)
    if hf:
        links.append({"label": "Hugging Face", "url": hf})
    return links


def why_picked(item: DigestItem) -> str:
    """One line telling the reader why this paper is here (matched interest + highlight)."""
    if item.reason == "author" and item.matched_interest:
        head = f"By {followed_author(item.matched_interest) or item.matched_interest}, an author you follow"
    elif item.reason in _REASON_TEXT:
        head = _REASON_TEXT[item.reason]
    elif item.matched_interest:
        head = f"Matches your interest “{item.matched_interest}”"
    else:
        head = "Matches your interests"
    if item.highlight:
        return f"{head}: “{shorten(item.highlight, 200)}”"
    return head


def _feedback(settings: Settings, subscriber_id: int, paper_id: int, vote: str) -> str:
    return link(settings, Purpose.FEEDBACK, subscriber_id, paper=paper_id, vote=vote)


def subject_line(items: Sequence[DigestItem], digest_date: date) -> str:
    """'5 papers for you · Fri 27 Nov: Hyper-Connections, …' — count, date and top title."""
    day = f"{digest_date:%a} {digest_date.day} {digest_date:%b}"
    if not items:
        return f"Nothing new for you · {day}"
    noun = "paper" if len(items) == 1 else "papers"
    top = shorten(items[0].paper.title, SUBJECT_TITLE_CHARS)
    more = ", …" if len(items) > 1 else ""
    return f"{len(items)} {noun} for you · {day}: {top}{more}"


def _preheader(items: Sequence[DigestItem], interests: Sequence[str]) -> str:
    if not items:
        return "No new papers matched your interests today."
    titles = [shorten(i.paper.title, 50) for i in items[1:3]]
    rest = len(items) - 1 - len(titles)
    lead = "Also: " + ", ".join(titles) + (f" and {rest} more" if rest > 0 else "") if titles else ""
    picked = "Picked for " + ", ".join(interests[:3]) if interests else "Picked for you"
    return f"{lead} — {picked}." if lead else f"{picked}."


def _footer(settings: Settings, subscriber: Subscriber, why: str) -> dict[str, Any]:
    assert subscriber.id is not None
    return {
        "why_received": why,
        "preferences_url": link(settings, Purpose.PREFERENCES, subscriber.id),
        "unsubscribe_url": link(settings, Purpose.UNSUBSCRIBE, subscriber.id),
        "postal_address": settings.postal_address,
    }


def digest_context(
    settings: Settings,
    subscriber: Subscriber,
    items: Sequence[DigestItem],
    *,
    digest_date: date,
    trending: Sequence[Paper] = (),
) -> dict[str, Any]:
    """Everything the digest templates show, for one subscriber on one date."""
    assert subscriber.id is not None
    sid = subscriber.id
    picked = {item.paper.id for item in items}
    cadence = "weekly" if subscriber.frequency == Frequency.WEEKLY else "daily"
    interests = list(subscriber.interests)
    why = f"You get this {cadence} digest because {subscriber.email} subscribed" + (
        f" with the interests: {', '.join(interests)}." if interests else "."
    )
    day = f"{digest_date:%A} {digest_date.day} {digest_date:%B %Y}"
    return {
        "subject": subject_line(items, digest_date),
        "preheader": _preheader(items, interests),
        "heading": f"{len(items)} new paper{'s' if len(items) != 1 else ''} for you"
        if items
        else "Nothing new today",
        "intro": day
        + (" · nothing new matched your interests; we will write when something does." if not items else ""),
        "items": [
            {
                "title": item.paper.title,
                "url": paper_url(item.paper),
                "authors": authors_line(item.paper.authors),
                "categories": ", ".join(item.paper.categories[:MAX_CATEGORIES]),
                "why": why_picked(item),
                "snippet": _snippet(item.paper.abstract),
                "links": _paper_links(item.paper),
                "more_url": _feedback(settings, sid, item.paper.id or 0, "up"),
                "less_url": _feedback(settings, sid, item.paper.id or 0, "down"),
            }
            for item in items
        ],
        "trending": [
            {"title": p.title, "url": paper_url(p), "upvotes": p.upvotes}
            for p in trending
            if p.id not in picked
        ][:TRENDING_COUNT],
        **_footer(settings, subscriber, why),
    }


def confirmation_context(settings: Settings, subscriber: Subscriber) -> dict[str, Any]:
    """The confirmation email: one button to the signed /confirm link, valid for days."""
    assert subscriber.id is not None
    return {
        "subject": "Confirm your subscription to the paper digest",
        "preheader": "One click to start getting new papers that match your interests.",
        "heading": "Please confirm your subscription",
        "intro": f"Someone (hopefully you) asked to send the paper digest to {subscriber.email}.",
        "interests": ", ".join(subscriber.interests),
        "confirm_url": link(settings, Purpose.CONFIRM, subscriber.id),
        "confirm_days": MAX_AGE[Purpose.CONFIRM].days,
        **_footer(
            settings,
            subscriber,
            f"You get this one email because {subscriber.email} was entered on our sign-up form.",
        ),
    }
