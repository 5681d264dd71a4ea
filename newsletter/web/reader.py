"""What a reader opens besides the email: "view in browser" (/archive/<token>), their private
Atom feed (/feed/<token>/atom.xml), and the optional public page of each day's trending papers
(/trending, when NEWSLETTER_PUBLIC_ARCHIVE is on).

The archive and feed links are signed per reader (`Purpose.ARCHIVE` carries the digest date,
`Purpose.FEED` only the reader), so a tampered link is a 400 and nobody can list another
reader's picks. Both show what was sent, read from the outbox's stored rows.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Annotated

from fastapi import APIRouter, Depends
from starlette.requests import Request
from starlette.responses import Response

from newsletter.dbtypes import utcnow
from newsletter.delivery.outbox import sent_digests
from newsletter.digest.context import digest_context, feed_url
from newsletter.digest.feed import SentDigest, atom_feed
from newsletter.papers.queries import trending
from newsletter.tokens import Purpose, TokenError
from newsletter.web.context import WebContext, get_context
from subscribers.models import Subscriber

router = APIRouter()
Context = Annotated[WebContext, Depends(get_context)]

#: Digests a feed document covers (newest first).
FEED_DIGESTS = 30
#: Papers on a public trending page.
TRENDING_SHOWN = 20


def _refused(ctx: WebContext, request: Request, exc: TokenError) -> Response:
    return ctx.message(request, 400, "This link does not work", str(exc).capitalize() + ".")


def _digest_date(raw: object) -> date | None:
    try:
        return date.fromisoformat(raw) if isinstance(raw, str) else None
    except ValueError:
        return None


@router.get("/archive/{token}")
def archive(token: str, request: Request, ctx: Context) -> Response:
    """One digest in the browser, with each paper's whole abstract."""
    try:
        data = ctx.read(Purpose.ARCHIVE, token)
    except TokenError as exc:
        return _refused(ctx, request, exc)
    digest_date = _digest_date(data.extra.get("d"))
    if digest_date is None:
        return ctx.message(request, 400, "This link does not work", "This link names no digest.")
    with ctx.session() as session:
        subscriber = session.get(Subscriber, data.subscriber_id)
        found = sent_digests(session, data.subscriber_id, digest_date=digest_date, limit=1)
        if subscriber is None or not found:
            return ctx.message(
                request, 404, "No digest here", "There is no digest for this link (it may have been deleted)."
            )
        _, items = found[0]
        digest = digest_context(ctx.settings, subscriber, items, digest_date=digest_date)
    return ctx.render(request, "archive.html", digest=digest)


@router.get("/feed/{token}/atom.xml")
def feed(token: str, request: Request, ctx: Context) -> Response:
    """The reader's picks as an Atom feed (for a feed reader instead of, or beside, email)."""
    try:
        subscriber_id = ctx.read(Purpose.FEED, token).subscriber_id
    except TokenError as exc:
        return _refused(ctx, request, exc)
    with ctx.session() as session:
        if session.get(Subscriber, subscriber_id) is None:
            return ctx.message(
                request, 404, "No feed here", "There is no subscription for this link any more."
            )
        digests = [
            SentDigest(row.digest_date, row.sent_at or row.updated_at, items)
            for row, items in sent_digests(session, subscriber_id, limit=FEED_DIGESTS)
        ]
    body = atom_feed(
        ctx.settings, subscriber_id, ctx.site_name, feed_url(ctx.settings, subscriber_id), digests
    )
    return Response(body, media_type="application/atom+xml; charset=utf-8")


@router.get("/trending")
@router.get("/trending/{day}")
def trending_page(request: Request, ctx: Context, day: str | None = None) -> Response:
    """The day's most upvoted papers (public, only when NEWSLETTER_PUBLIC_ARCHIVE is on)."""
    if not ctx.settings.public_archive:
        return ctx.message(request, 404, "Page not found", "There is no public archive on this site.")
    today = utcnow().date()
    shown = _digest_date(day) if day is not None else today
    if shown is None or shown > today:
        return ctx.message(request, 404, "Page not found", "Give a past date as YYYY-MM-DD.")
    with ctx.session() as session:
        papers = trending(session, shown, limit=TRENDING_SHOWN)
    return ctx.render(
        request,
        "trending.html",
        day=shown,
        papers=papers,
        previous=shown - timedelta(days=1),
        following=shown + timedelta(days=1) if shown < today else None,
    )
