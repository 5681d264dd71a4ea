"""Pages the emails link to: /preferences, /unsubscribe (RFC 8058 one-click), /feedback.

Each link's token names the subscriber and is scoped to its page. GETs only show; every
change is a POST. The unsubscribe POST needs nothing but its token, because mail providers
send the one-click `List-Unsubscribe=One-Click` POST without cookies or form tokens.
"""

from __future__ import annotations

import json
from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.responses import RedirectResponse
from sqlmodel import Session
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response

from jobs import accounts
from newsletter.errors import UserError
from newsletter.papers.models import Paper
from newsletter.tokens import Purpose, TokenError
from newsletter.web.context import WebContext, get_context, read_form
from newsletter.web.forms import PreferencesInput
from subscribers import lifecycle, service
from subscribers.feedback import record_vote
from subscribers.models import NEVER_MAIL, Subscriber
from subscribers.profile import WEEKDAYS

router = APIRouter()
Context = Annotated[WebContext, Depends(get_context)]
Form = Annotated[FormData, Depends(read_form)]

VOTES = {"up": 1, "down": -1, "none": 0}


def _subscriber_id(
    ctx: WebContext, request: Request, purpose: Purpose, token: str, *, allow_expired: bool = False
) -> int | Response:
    """The subscriber a link names, or the page that explains why the link cannot be used."""
    try:
        return ctx.read(purpose, token).subscriber_id
    except TokenError as exc:
        if exc.expired and allow_expired and exc.subscriber_id is not None:
            return exc.subscriber_id
        if exc.expired:
            return ctx.message(
                request,
                410,
                "This link has expired",
                str(exc).capitalize() + ". The links in your latest digest are always fresh.",
            )
        return ctx.message(request, 400, "This link does not work", str(exc).capitalize() + ".")


def _gone(ctx: WebContext, request: Request) -> Response:
    return ctx.message(
        request,
        404,
        "No subscription here",
        "There is no subscription for this link any more (it may have been deleted).",
        signup=True,
    )


# --- preferences -------------------------------------------------------------------------


def _preferences_page(
    ctx: WebContext,
    request: Request,
    token: str,
    subscriber: Subscriber,
    status_code: int = 200,
    error: str | None = None,
    values: PreferencesInput | None = None,
    problems: dict[str, str] | None = None,
) -> Response:
    with ctx.session() as session:
        votes = lifecycle.votes(session, subscriber)
    if values is None:
        values = PreferencesInput(
            interests="\n".join(subscriber.interests),
            frequency=subscriber.frequency,
            weekday=str(subscriber.weekday),
            send_hour=str(subscriber.send_hour),
            timezone=subscriber.timezone,
            max_papers=str(subscriber.max_papers),
            send_empty=subscriber.send_empty,
        )
    return ctx.render(
        request,
        "preferences.html",
        status_code,
        token=token,
        subscriber=subscriber,
        values=values,
        error=error,
        problems=problems or {},
        liked=[paper for paper, vote in votes if vote > 0],
        disliked=[paper for paper, vote in votes if vote < 0],
        weekdays=[day.capitalize() for day in WEEKDAYS],
        saved=request.query_params.get("saved") == "1",
        never_mail=subscriber.status in NEVER_MAIL,
    )


def _linked(
    ctx: WebContext,
    request: Request,
    session: Session,
    purpose: Purpose,
    token: str,
    *,
    allow_expired: bool = False,
) -> Subscriber | Response:
    """The subscriber a link names (loaded in `session`), or the page saying why there is none."""
    found = _subscriber_id(ctx, request, purpose, token, allow_expired=allow_expired)
    if isinstance(found, Response):
        return found
    subscriber = session.get(Subscriber, found)
    return _gone(ctx, request) if subscriber is None else subscriber


@router.get("/preferences/{token}")
def preferences(token: str, request: Request, ctx: Context) -> Response:
    """The preferences form, with liked and disliked papers."""
    with ctx.session() as session:
        subscriber = _linked(ctx, request, session, Purpose.PREFERENCES, token)
    if isinstance(subscriber, Response):
        return subscriber
    return _preferences_page(ctx, request, token, subscriber)


@router.post("/preferences/{token}")
def save_preferences(token: str, request: Request, ctx: Context, form: Form) -> Response:
    """Save the form, or pause / resume digests (the `action` button pressed)."""
    action = form.get("action")
    values = PreferencesInput.from_form(form) if action == "save" else None
    with ctx.session() as session:
        subscriber = _linked(ctx, request, session, Purpose.PREFERENCES, token)
        if isinstance(subscriber, Response):
            return subscriber
        if not ctx.csrf_ok(request, form):
            return _preferences_page(
                ctx,
                request,
                token,
                subscriber,
                403,
                "This form expired or came from another page. Please submit it again.",
                values,
            )
        if action in ("pause", "resume"):
            lifecycle.set_paused(session, subscriber, action == "pause")
        elif values is not None:
            problems = values.problems()
            if problems:
                return _preferences_page(ctx, request, token, subscriber, 400, None, values, problems)
            try:
                service.update(session, subscriber, values.validate())
            except UserError as exc:
                return _preferences_page(ctx, request, token, subscriber, 400, exc.message, values)
    return RedirectResponse(f"/preferences/{token}?saved=1", status_code=303)


@router.get("/preferences/{token}/data.json")
def download(token: str, request: Request, ctx: Context) -> Response:
    """Everything stored about the subscriber, as a JSON file."""
    with ctx.session() as session:
        subscriber = _linked(ctx, request, session, Purpose.PREFERENCES, token)
        if isinstance(subscriber, Response):
            return subscriber
        data = accounts.export(session, subscriber)
    return Response(
        json.dumps(data, indent=2, ensure_ascii=False),
        media_type="application/json",
        headers={"content-disposition": 'attachment; filename="my-paper-digest-data.json"'},
    )


@router.get("/preferences/{token}/delete")
def delete_page(token: str, request: Request, ctx: Context) -> Response:
    """Asks "really delete everything?"."""
    with ctx.session() as session:
        subscriber = _linked(ctx, request, session, Purpose.PREFERENCES, token)
    if isinstance(subscriber, Response):
        return subscriber
    return ctx.render(request, "delete.html", token=token)


@router.post("/preferences/{token}/delete")
def delete(token: str, request: Request, ctx: Context, form: Form) -> Response:
    """Erase the subscriber and everything stored about them."""
    found = _subscriber_id(ctx, request, Purpose.PREFERENCES, token)
    if isinstance(found, Response):
        return found
    if not ctx.csrf_ok(request, form):
        return ctx.render(request, "delete.html", 403, token=token, retry=True)
    with ctx.session() as session:
        subscriber = session.get(Subscriber, found)
        if subscriber is not None:
            service.erase(session, subscriber)
    return ctx.message(
        request, 200, "Deleted", "Everything we stored about you is gone. Goodbye!", signup=True
    )


# --- unsubscribe ---------------------------------------------------------------------------


@router.get("/unsubscribe/{token}")
def unsubscribe_page(token: str, request: Request, ctx: Context) -> Response:
    """One button; the GET itself changes nothing (mail scanners follow links)."""
    with ctx.session() as session:
        subscriber = _linked(ctx, request, session, Purpose.UNSUBSCRIBE, token, allow_expired=True)
    if isinstance(subscriber, Response):
        return subscriber
    return ctx.render(request, "unsubscribe.html", token=token, done=subscriber.status in NEVER_MAIL)


@router.post("/unsubscribe/{token}")
def unsubscribe(token: str, request: Request, ctx: Context) -> Response:
    """Unsubscribe at once: the page's button and RFC 8058 one-click POSTs alike.

    An expired but genuine link still unsubscribes: stopping mail is always safe, and the
    person asked for it.
    """
    with ctx.session() as session:
        subscriber = _linked(ctx, request, session, Purpose.UNSUBSCRIBE, token, allow_expired=True)
        if isinstance(subscriber, Response):
            return subscriber
        lifecycle.unsubscribe(session, subscriber)
    return ctx.render(request, "unsubscribe.html", token=token, done=True, just_now=True)


# --- feedback ------------------------------------------------------------------------------


def _paper_id(raw: str | None) -> int | None:
    """A paper id from a query or form field: plain ASCII digits, well inside BIGINT."""
    if raw and raw.isascii() and raw.isdigit() and len(raw) < 12:
        return int(raw)
    return None


def _feedback_target(
    ctx: WebContext, request: Request, token: str, paper_raw: str | None, vote_raw: str | None
) -> Response | tuple[int, Paper, int]:
    """(subscriber id, paper, vote) from a feedback link, or the page explaining the problem."""
    found = _subscriber_id(ctx, request, Purpose.FEEDBACK, token)
    if isinstance(found, Response):
        return found
    vote = VOTES.get(vote_raw or "")
    paper_id = _paper_id(paper_raw)
    if vote is None or paper_id is None:
        return ctx.message(
            request,
            400,
            "This link does not work",
            "The link is missing which paper or which vote it is for; use the link in your email.",
        )
    with ctx.session() as session:
        paper = session.get(Paper, paper_id)
        subscriber = session.get(Subscriber, found)
    if subscriber is None:
        return _gone(ctx, request)
    if paper is None:
        return ctx.message(request, 404, "Paper not found", "That paper is no longer in our list.")
    return found, paper, vote


@router.get("/feedback/{token}")
def feedback_page(token: str, request: Request, ctx: Context) -> Response:
    """Shows the vote and POSTs it by itself (a link scanner records nothing)."""
    target = _feedback_target(
        ctx, request, token, request.query_params.get("paper"), request.query_params.get("vote")
    )
    if isinstance(target, Response):
        return target
    _, paper, vote = target
    return ctx.render(request, "feedback.html", token=token, paper=paper, vote=vote, state="ready")


@router.post("/feedback/{token}")
def feedback(token: str, request: Request, ctx: Context, form: Form) -> Response:
    """Record (or, with vote=none, undo) a "more / less like this" vote; idempotent."""
    paper_raw, vote_raw = form.get("paper"), form.get("vote")
    target = _feedback_target(
        ctx,
        request,
        token,
        paper_raw if isinstance(paper_raw, str) else None,
        vote_raw if isinstance(vote_raw, str) else None,
    )
    if isinstance(target, Response):
        return target
    subscriber_id, paper, vote = target
    if not ctx.csrf_ok(request, form):
        return ctx.render(
            request,
            "feedback.html",
            403,
            token=token,
            paper=paper,
            vote=vote,
            state="ready",
            retry=True,
        )
    with ctx.session() as session:
        record_vote(session, subscriber_id, paper.id or 0, vote)
    return ctx.render(
        request,
        "feedback.html",
        token=token,
        paper=paper,
        vote=vote,
        state="undone" if vote == 0 else "recorded",
        preferences=ctx.path(Purpose.PREFERENCES, subscriber_id),
    )
