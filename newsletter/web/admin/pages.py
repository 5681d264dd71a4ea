"""The admin pages: dashboard (charts), subscribers (search, lift a bounce), deliveries
(retry), the day's papers. Every route depends on `current_operator`.

Routes stay thin: numbers come from `jobs.metrics`, changes go through the same functions the
CLI uses (`subscribers.lifecycle.lift_suppression`, `newsletter.delivery.outbox.retry`).
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Depends
from fastapi.responses import RedirectResponse
from sqlmodel import col, func, select
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response

from jobs import metrics
from newsletter.dbtypes import utcnow
from newsletter.delivery.models import Delivery, DeliveryItem, DeliveryStatus
from newsletter.delivery.outbox import retry
from newsletter.errors import UserError
from newsletter.operators import Operator
from newsletter.web.admin.auth import PREFIX, current_operator
from newsletter.web.admin.charts import CHARTS, render_svg
from newsletter.web.context import WebContext, get_context, read_form
from subscribers import lifecycle, service
from subscribers.models import NEVER_MAIL, Status, Subscriber

router = APIRouter(prefix=PREFIX)
Context = Annotated[WebContext, Depends(get_context)]
Form = Annotated[FormData, Depends(read_form)]
Signed = Annotated[Operator, Depends(current_operator)]

#: The dashboard's choice of windows, in days.
WINDOWS = (7, 30, 90)
PAGE_SIZE = 50
#: Charts may include inline styles (pygal's), nothing else: as an <img> an SVG runs no
#: script, and this policy says so again.
SVG_POLICY = "default-src 'none'; style-src 'unsafe-inline'"


def _days(raw: str | None) -> int:
    return int(raw) if raw in {str(w) for w in WINDOWS} else metrics.DEFAULT_DAYS


def _page(ctx: WebContext, request: Request, template: str, operator: Operator, **values: object) -> Response:
    return ctx.render(
        request,
        f"admin/{template}",
        200,
        operator=operator,
        notice=request.query_params.get("notice"),
        **values,
    )


def _day(request: Request) -> date:
    """The `date` query parameter, today (UTC) when absent or not a date."""
    try:
        return date.fromisoformat(request.query_params.get("date", ""))
    except ValueError:
        return utcnow().date()


def _around(day: date) -> dict[str, date]:
    """The day a page shows and its neighbours (the ← and → links)."""
    return {"day": day, "previous": day - timedelta(days=1), "following": day + timedelta(days=1)}


def _back(path: str, notice: str, **query: str) -> RedirectResponse:
    return RedirectResponse(f"{PREFIX}{path}?{urlencode({**query, 'notice': notice})}", status_code=303)


@router.get("")
def dashboard(request: Request, ctx: Context, operator: Signed) -> Response:
    """Headline numbers and every chart, for the last 7, 30 or 90 days."""
    days = _days(request.query_params.get("days"))
    today = utcnow().date()
    with ctx.session() as session:
        events = metrics.provider_events(session, days, today)
        sent = metrics.digests(session, days, today)
        totals = metrics.totals(session, events, sent)
        tables = {name: chart.data(session, days, today) for name, chart in CHARTS.items()}
    return _page(
        ctx,
        request,
        "dashboard.html",
        operator,
        days=days,
        windows=WINDOWS,
        totals=totals,
        charts=CHARTS,
        tables=tables,
    )


@router.get("/charts/{name}.svg")
def chart(name: str, request: Request, ctx: Context, operator: Signed) -> Response:
    """One chart as SVG (the dashboard shows it as an image)."""
    if name not in CHARTS:
        return Response("no such chart", status_code=404, media_type="text/plain")
    size = "narrow" if request.query_params.get("size") == "narrow" else "wide"
    with ctx.session() as session:
        svg = render_svg(session, name, _days(request.query_params.get("days")), utcnow().date(), size)
    return Response(
        svg,
        media_type="image/svg+xml",
        headers={"content-security-policy": SVG_POLICY, "cache-control": "no-store"},
    )


@router.get("/subscribers")
def subscribers(request: Request, ctx: Context, operator: Signed) -> Response:
    """Search subscribers by address and status."""
    text = request.query_params.get("q", "")[:320]
    raw_status = request.query_params.get("status") or ""
    status = Status(raw_status) if raw_status in {s.value for s in Status} else None
    raw_page = request.query_params.get("page", "1")
    page = int(raw_page) if raw_page.isascii() and raw_page.isdigit() and 0 < int(raw_page) < 100_000 else 1
    with ctx.session() as session:
        rows, total = service.search(session, text, status, limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE)
    return _page(
        ctx,
        request,
        "subscribers.html",
        operator,
        rows=rows,
        total=total,
        q=text,
        status=status.value if status else "",
        statuses=[s.value for s in Status],
        page=page,
        pages=max(1, -(-total // PAGE_SIZE)),
        suppressed=NEVER_MAIL,
    )


@router.post("/subscribers/{subscriber_id}/lift")
def lift(subscriber_id: int, request: Request, ctx: Context, form: Form, operator: Signed) -> Response:
    """Make a bounced address active again (an unsubscribe or complaint cannot be lifted)."""
    query = {"q": str(form.get("q") or "")}
    if not ctx.csrf_ok(request, form):
        return _back("/subscribers", "That form expired; please press the button again.", **query)
    with ctx.session() as session:
        subscriber = session.get(Subscriber, subscriber_id)
        if subscriber is None:
            return _back("/subscribers", "That subscriber no longer exists.", **query)
        try:
            lifecycle.lift_suppression(session, subscriber)
        except UserError as exc:
            return _back("/subscribers", exc.message.capitalize() + ".", **query)
        email = subscriber.email
    return _back("/subscribers", f"{email} gets digests again.", **query)


@router.get("/deliveries")
def deliveries(request: Request, ctx: Context, operator: Signed) -> Response:
    """The outbox for one digest date, with the last error of each failed digest."""
    day = _day(request)
    raw_status = request.query_params.get("status") or ""
    status = raw_status if raw_status in {s.value for s in DeliveryStatus} else ""
    with ctx.session() as session:
        papers = select(func.count()).where(DeliveryItem.delivery_id == Delivery.id).scalar_subquery()
        query = (
            select(Delivery, Subscriber.email, papers)
            .join(Subscriber, col(Subscriber.id) == col(Delivery.subscriber_id))
            .where(Delivery.digest_date == day)
            .order_by(col(Delivery.id))
            .limit(500)
        )
        if status:
            query = query.where(Delivery.status == status)
        rows = list(session.exec(query))
    return _page(
        ctx,
        request,
        "deliveries.html",
        operator,
        rows=rows,
        **_around(day),
        status=status,
        statuses=[s.value for s in DeliveryStatus],
        retryable={DeliveryStatus.FAILED.value, DeliveryStatus.SENDING.value},
    )


@router.post("/deliveries/{delivery_id}/retry")
def retry_delivery(
    delivery_id: int, request: Request, ctx: Context, form: Form, operator: Signed
) -> Response:
    """Send one failed digest again, now."""
    day = str(form.get("date") or "")
    if not ctx.csrf_ok(request, form):
        return _back("/deliveries", "That form expired; please press the button again.", date=day)
    try:
        reports = retry(ctx.engine, ctx.settings, delivery_ids=[delivery_id])
    except UserError as exc:
        return _back("/deliveries", exc.message.capitalize() + ".", date=day)
    notice = reports[0].summary() if reports else "Nothing to retry: that digest is not failed."
    return _back("/deliveries", notice, date=day)


@router.get("/papers")
def papers(request: Request, ctx: Context, operator: Signed) -> Response:
    """The papers first seen on a day (default today), and how many digests carried each."""
    day = _day(request)
    with ctx.session() as session:
        rows = metrics.papers_of_day(session, day)
    return _page(
        ctx,
        request,
        "papers.html",
        operator,
        rows=rows,
        **_around(day),
    )
