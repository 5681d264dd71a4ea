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

#: Authors listed before "et al."; categories shown; abstract characters kept. The snippet
#: is short because the quoted sentence (why it was picked) already says the most; on a
#: phone every 100 characters is another line per paper.
MAX_AUTHORS = 3
MAX_CATEGORIES = 4
SNIPPET_CHARS = 240
HIGHLIGHT_CHARS = 180
#: A phone shows 35–45 characters of a subject: the best pick's title leads.
SUBJECT_TITLE_CHARS = 70
TRENDING_COUNT = 3

#: Match strength in [0, 1] → the cue shown beside a pick: (lowest strength, label, meter).
#: Three steps, so the cue tells strong from weak at a glance without pretending to precision.
STRENGTH_LEVELS = (
    (2 / 3, "Strong match", "●●●"),
    (1 / 3, "Good match", "●●○"),
    (0.0, "Loose match", "●○○"),
)

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
    #: How strongly the paper matches, in [0, 1] (ranking's calibrated score); None: no cue.
    strength: float | None = None


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


def paper_url(paper: Paper) -> str | None:
    """The paper's page: its own URL, else the arXiv abstract page, else its PDF; None when
    nothing is known (the email then links the paper's entry in the reader's archive)."""
    if paper.url:
        return paper.url
    if paper.arxiv_id:
        return f"https://arxiv.org/abs/{paper.arxiv_id}"
    found = paper.links.get("pdf") or paper.pdf_url
    return str(found) if found else None


def hf_url(paper: Paper) -> str | None:
    """The Hugging Face paper page when known (stored link, or an HF-reported arXiv paper)."""
    for key in ("hf", "huggingface", "hf_url"):
        if paper.links.get(key):
            return str(paper.links[key])
    if paper.upvotes is not None and paper.arxiv_id:
        return f"https://huggingface.co/papers/{paper.arxiv_id}"
    return None


def _paper_links(paper: Paper) -> list[dict[str, str]]:
    """The paper's own pages that exist (never an empty link)."""
    links = []
    page = paper_url(paper)
    if page:
        links.append({"label": "Abstract", "url": page})
    pdf = paper.pdf_url or (f"https://arxiv.org/pdf/{paper.arxiv_id}" if paper.arxiv_id else None)
    if pdf and pdf != page:
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
        return f"{head}: “{shorten(item.highlight, HIGHLIGHT_CHARS)}”"
    return head


def strength_cue(strength: float | None) -> dict[str, str] | None:
    """The cue for a match strength in [0, 1] ({"label", "meter"}), or None without one."""
    if strength is None or strength != strength:  # None or NaN: say nothing rather than guess
        return None
    value = min(max(strength, 0.0), 1.0)
    for lowest, label, meter in STRENGTH_LEVELS:
        if value >= lowest:
            return {"label": label, "meter": meter}
    return None  # unreachable: the last level starts at 0


def _feedback(settings: Settings, subscriber_id: int, paper_id: int, vote: str) -> str:
    return link(settings, Purpose.FEEDBACK, subscriber_id, paper=paper_id, vote=vote)


def subject_line(items: Sequence[DigestItem], digest_date: date) -> str:
    """'Hyper-Connections (+4 more)': the best pick leads, because a phone shows only the
    first ~40 characters; the date is in the email's own header already."""
    if not items:
        return f"Nothing new for you · {digest_date:%a} {digest_date.day} {digest_date:%b}"
    top = shorten(items[0].paper.title, SUBJECT_TITLE_CHARS)
    return f"{top} (+{len(items) - 1} more)" if len(items) > 1 else top


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
        "feed_url": None,
        "postal_address": settings.postal_address,
    }


def archive_url(settings: Settings, subscriber_id: int, digest_date: date) -> str:
    """The signed "view in browser" page of one reader's digest of one date."""
    return link(settings, Purpose.ARCHIVE, subscriber_id, claims={"d": digest_date.isoformat()})


def feed_url(settings: Settings, subscriber_id: int) -> str:
    """The reader's private Atom feed of their picks (signed, long-lived)."""
    return link(settings, Purpose.FEED, subscriber_id, suffix="/atom.xml")


def _clean_abstract(abstract: str) -> str:
    """The abstract without leftover TeX markup or run-on whitespace."""
    text = re.sub(r"\$([^$]{0,80})\$", r"\1", abstract)
    text = re.sub(r"\\(?:boldsymbol|mathbf|mathrm|textbf|emph)\{([^}]*)\}", r"\1", text)
    return " ".join(text.split())


def digest_item(
    settings: Settings, subscriber_id: int, item: DigestItem, rank: int, archive: str
) -> dict[str, Any]:
    """One pick as the email (and its archive page) shows it; `archive` is the digest's
    archive URL, the link of a paper that has no page of its own."""
    paper = item.paper
    anchor = f"paper-{paper.id or rank}"
    abstract = _clean_abstract(paper.abstract or "")
    return {
        "rank": rank,
        "anchor": anchor,
        "title": paper.title,
        "url": paper_url(paper) or f"{archive}#{anchor}",
        "authors": authors_line(paper.authors),
        "categories": ", ".join(paper.categories[:MAX_CATEGORIES]),
        "why": why_picked(item),
        "strength": strength_cue(item.strength),
        # The quoted sentence is the abstract's most relevant line; the opening is shown only
        # without one (the archive page always has the whole abstract).
        "snippet": "" if item.highlight else shorten(abstract, SNIPPET_CHARS),
        "abstract": abstract,
        "links": _paper_links(paper),
        "more_url": _feedback(settings, subscriber_id, paper.id or 0, "up"),
        "less_url": _feedback(settings, subscriber_id, paper.id or 0, "down"),
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
    archive = archive_url(settings, sid, digest_date)
    return {
        "subject": subject_line(items, digest_date),
        "preheader": _preheader(items, interests),
        "heading": f"{len(items)} new paper{'s' if len(items) != 1 else ''} for you"
        if items
        else "Nothing new today",
        "intro": day
        + (" · nothing new matched your interests; we will write when something does." if not items else ""),
        "view_url": archive,
        "toc": len(items) > 1,  # "In this email": a list of titles is noise for one paper
        "items": [digest_item(settings, sid, item, rank, archive) for rank, item in enumerate(items, 1)],
        "trending": [
            {"title": p.title, "url": url, "upvotes": p.upvotes}
            for p in trending
            if p.id not in picked and (url := paper_url(p))
        ][:TRENDING_COUNT],
        **_footer(settings, subscriber, why),
        "feed_url": feed_url(settings, sid),
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
