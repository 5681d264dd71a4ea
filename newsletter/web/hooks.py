"""Machine endpoints: SendGrid's Event Webhook and the health check (JSON, no pages)."""

from __future__ import annotations

import logging
from dataclasses import asdict
from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from starlette.requests import Request

from newsletter.delivery.events import WebhookRefused, record_events
from newsletter.delivery.transports.sendgrid_webhook import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    parse_events,
    read_events,
)
from newsletter.web.context import WebContext, get_context

router = APIRouter()
log = logging.getLogger(__name__)
Context = Annotated[WebContext, Depends(get_context)]


async def _body(request: Request) -> bytes:
    return await request.body()


@router.post("/webhooks/sendgrid")
def sendgrid_events(request: Request, ctx: Context, body: Annotated[bytes, Depends(_body)]) -> JSONResponse:
    """Verify the signature, then record and apply each event once (403 when unsigned)."""
    try:
        ctx.verifier.verify(
            body, request.headers.get(SIGNATURE_HEADER), request.headers.get(TIMESTAMP_HEADER)
        )
        raw = parse_events(body)
    except WebhookRefused as exc:
        log.warning("SendGrid webhook refused (%s): %s", exc.status, exc.reason)
        return JSONResponse({"reason": exc.reason}, status_code=exc.status)
    try:
        with ctx.session() as session:
            report = record_events(session, *read_events(raw))
    except IntegrityError:
        # Another delivery of the same batch committed first; this run now sees its events.
        with ctx.session() as session:
            report = record_events(session, *read_events(raw))
    return JSONResponse(asdict(report))


@router.get("/healthz")
def healthz(ctx: Context) -> JSONResponse:
    """200 when the app can reach its database."""
    with ctx.engine.connect() as connection:
        connection.execute(text("SELECT 1"))
    return JSONResponse({"status": "ok"})
