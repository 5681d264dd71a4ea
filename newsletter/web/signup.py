"""Sign-up and double opt-in pages: /subscribe (with a preview of today's papers), /confirm.

A GET never changes anything: mail scanners open every link in an email, so the confirm
page asks the browser to POST (by itself, with a button as fallback).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.responses import RedirectResponse
from sqlmodel import Session, col, select
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response

from newsletter.errors import UserError
from newsletter.papers.models import Paper
from newsletter.tokens import MAX_AGE, Purpose, TokenError
from newsletter.web.context import WebContext, get_context, read_form
from newsletter.web.forms import EXAMPLE_INTERESTS, SignupInput
from newsletter.web.ratelimit import Bucket
from subscribers import lifecycle
from subscribers.lifecycle import ConfirmOutcome
from subscribers.models import Status, Subscriber
from subscribers.profile import email_key

router = APIRouter()
Context = Annotated[WebContext, Depends(get_context)]
Form = Annotated[FormData, Depends(read_form)]

#: Papers shown in the sign-up preview at most (the email itself may hold up to 50).
PREVIEW_LIMIT = 10
CONFIRM_DAYS = MAX_AGE[Purpose.CONFIRM].days


@dataclass(frozen=True)
class PreviewItem:
    """One paper of the preview and why it matched."""

    paper: Paper
    matched: str | None
    highlight: str | None


def client_ip(request: Request) -> str:
    """The client's address (uvicorn resolves X-Forwarded-For from trusted proxies)."""
    return request.client.host if request.client else "unknown"


def send_confirmation(session: Session, ctx: WebContext, subscriber: Subscriber) -> bool:
    """Email the confirmation link (the digest side owns the template and the rate cap)."""
    from newsletter.delivery.confirmation import send_confirmation as send

    return send(session, ctx.settings, subscriber)


def _preview(ctx: WebContext, interests: list[str], limit: int) -> list[PreviewItem]:
    from newsletter.ranking.service import recommend_for_interests  # loads the model

    with ctx.session() as session:
        picks = recommend_for_interests(session, ctx.settings, interests, limit=limit)
        ids = [pick.paper_id for pick in picks]
        papers = {p.id: p for p in session.exec(select(Paper).where(col(Paper.id).in_(ids)))}
    return [
        PreviewItem(papers[pick.paper_id], pick.matched_interest, pick.highlight)
        for pick in picks
        if pick.paper_id in papers
    ]


def _form_page(
    ctx: WebContext,
    request: Request,
    values: SignupInput,
    status_code: int = 200,
    error: str | None = None,
    preview: list[PreviewItem] | None = None,
    problems: dict[str, str] | None = None,
) -> Response:
    return ctx.render(
        request,
        "subscribe.html",
        status_code,
        values=values,
        error=error,
        problems=problems or {},
        preview=preview,
        examples=EXAMPLE_INTERESTS,
    )


@router.get("/subscribe")
def subscribe_form(request: Request, ctx: Context) -> Response:
    """The sign-up form."""
    return _form_page(ctx, request, SignupInput())


@router.post("/subscribe")
def subscribe(request: Request, ctx: Context, form: Form) -> Response:
    """Preview today's papers for the interests typed, or request a subscription."""
    values = SignupInput.from_form(form)
    if not ctx.csrf_ok(request, form):
        return _form_page(
            ctx,
            request,
            values,
            403,
            "This form expired or came from another page. Please submit it again.",
        )
    ip = client_ip(request)
    if form.get("action") == "preview":
        if not ctx.limiter.hit(Bucket.PREVIEW_IP, ip):
            return _form_page(ctx, request, values, 429, "Too many previews; try again in an hour.")
        problems = {k: v for k, v in values.problems().items() if k in ("interests", "max_papers")}
        if problems:
            return _form_page(ctx, request, values, 400, problems=problems)
        interests = values.interest_list()
        limit = min(values.max_papers_value(), PREVIEW_LIMIT)
        return _form_page(ctx, request, values, preview=_preview(ctx, interests, limit))
    if not ctx.limiter.hit(Bucket.SIGNUP_IP, ip):
        return _form_page(ctx, request, values, 429, "Too many sign-ups from your network; try again later.")
    problems = values.problems()
    if problems:
        return _form_page(ctx, request, values, 400, problems=problems)
    try:
        data = values.validate()
    except UserError as exc:  # a rule only the whole form can break
        return _form_page(ctx, request, values, 400, exc.message)
    if not ctx.limiter.hit(Bucket.SIGNUP_ADDRESS, email_key(data.email)):
        return _form_page(
            ctx,
            request,
            values,
            429,
            "Too many sign-up requests for this address; try again later.",
        )
    with ctx.session() as session:
        subscriber = lifecycle.request_signup(session, data)
        if subscriber is not None:
            send_confirmation(session, ctx, subscriber)
    # The same answer whether the address was new, pending, or already subscribed.
    return RedirectResponse("/subscribe/sent", status_code=303)


@router.get("/subscribe/sent")
def subscribe_sent(request: Request, ctx: Context) -> Response:
    """ "Check your inbox"."""
    return ctx.render(request, "sent.html", days=CONFIRM_DAYS)


Confirmable = tuple[Subscriber, datetime]


def _confirm_state(ctx: WebContext, request: Request, token: str) -> Response | Confirmable:
    """The subscriber a confirm link may activate (and when it was issued), or the page
    explaining why it cannot be used."""
    try:
        data = ctx.read(Purpose.CONFIRM, token)
    except TokenError as exc:
        if exc.expired:
            return ctx.render(request, "confirm.html", 410, state="expired", token=token, pending=True)
        return ctx.message(request, 400, "This link does not work", str(exc).capitalize() + ".", signup=True)
    with ctx.session() as session:
        subscriber = session.get(Subscriber, data.subscriber_id)
    if subscriber is None:
        return ctx.message(request, 404, "No such sign-up", "This sign-up no longer exists.", signup=True)
    outcome = lifecycle.check_confirm(subscriber, data.issued_at)
    if outcome == ConfirmOutcome.ALREADY:
        return ctx.render(
            request,
            "confirm.html",
            state="already",
            preferences=ctx.path(Purpose.PREFERENCES, data.subscriber_id),
        )
    if outcome == ConfirmOutcome.STALE:
        return ctx.render(
            request,
            "confirm.html",
            410,
            state="stale",
            token=token,
            pending=subscriber.status == Status.PENDING,
        )
    return subscriber, data.issued_at


@router.get("/confirm/{token}")
def confirm_page(token: str, request: Request, ctx: Context) -> Response:
    """The page that confirms by POSTing itself (scanners that only GET confirm nothing)."""
    state = _confirm_state(ctx, request, token)
    if isinstance(state, Response):
        return state
    return ctx.render(request, "confirm.html", state="ready", token=token)


@router.post("/confirm/{token}")
def confirm(token: str, request: Request, ctx: Context, form: Form) -> Response:
    """Activate the subscriber."""
    state = _confirm_state(ctx, request, token)
    if isinstance(state, Response):
        return state
    if not ctx.csrf_ok(request, form):
        return ctx.render(request, "confirm.html", 403, state="ready", token=token, retry=True)
    found, issued_at = state
    with ctx.session() as session:
        subscriber = session.get(Subscriber, found.id)
        outcome = subscriber and lifecycle.confirm(session, subscriber, issued_at)
    if subscriber is None or outcome != ConfirmOutcome.CONFIRMED:  # raced with another tab
        return confirm_page(token, request, ctx)
    return ctx.render(
        request,
        "confirm.html",
        state="confirmed",
        subscriber=subscriber,
        preferences=ctx.path(Purpose.PREFERENCES, found.id or 0),
    )


@router.post("/confirm/{token}/resend")
def resend(token: str, request: Request, ctx: Context, form: Form) -> Response:
    """Send a new confirmation link in place of an expired or replaced one."""
    try:
        subscriber_id = ctx.read(Purpose.CONFIRM, token).subscriber_id
    except TokenError as exc:
        if not exc.expired or exc.subscriber_id is None:
            return ctx.message(
                request, 400, "This link does not work", str(exc).capitalize() + ".", signup=True
            )
        subscriber_id = exc.subscriber_id
    if not ctx.csrf_ok(request, form):
        return ctx.render(
            request, "confirm.html", 403, state="expired", token=token, pending=True, retry=True
        )
    if not ctx.limiter.hit(Bucket.SIGNUP_IP, client_ip(request)):
        return ctx.message(request, 429, "Please wait", "Too many requests; try again later.")
    with ctx.session() as session:
        subscriber = session.get(Subscriber, subscriber_id)
        if subscriber is not None and subscriber.status == Status.PENDING:
            send_confirmation(session, ctx, subscriber)
    return RedirectResponse("/subscribe/sent", status_code=303)
