"""Send a day's digests: who is due → compose (rank, record) → the outbox sends, once each.

`newsletter send`, `deliveries retry` (through the outbox), the scheduler's `dispatch` and
the queue workers all come through `send_digests`, so a digest is recorded before it is sent
and a rerun after a crash never ranks or sends it twice.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from jobs.compose import compose
from jobs.due import due_on
from newsletter.delivery import outbox
from newsletter.delivery.models import Delivery
from newsletter.delivery.outbox import UNFINISHED, Fence, SendReport
from newsletter.delivery.transports import get_transport
from newsletter.papers.queries import trending
from newsletter.settings import Settings
from subscribers.models import Status, Subscriber


def send_digests(
    engine: Engine,
    settings: Settings,
    *,
    digest_date: date,
    subscriber_ids: Sequence[int] | None = None,
    dry_run: bool = False,
    limit: int | None = None,
    now: datetime | None = None,
    fence: Fence | None = None,
) -> SendReport:
    """Send the digest of `digest_date` to the given (or all due) subscribers, once each.

    `subscriber_ids` (the scheduler's choice, or `--subscriber`) bypasses the daily/weekly
    rule but never the status: only active subscribers get digests. `limit` caps how many
    digests this run records and sends. `dry_run` ranks and renders, records and sends
    nothing. Raises `TransportStopped` (a UserError) when the provider refuses every
    message; what was sent until then is recorded. `fence` is a condition every claim must
    meet (the scheduler passes "this leader still holds its lease").
    """
    report = SendReport(digest_date=digest_date, transport=settings.transport, dry_run=dry_run)
    with Session(engine, expire_on_commit=False) as session:
        if subscriber_ids is None:
            subscribers = due_on(session, digest_date)
        else:
            chosen = list(
                session.exec(
                    select(Subscriber)
                    .where(col(Subscriber.id).in_(list(subscriber_ids)))
                    .order_by(col(Subscriber.id))
                )
            )
            subscribers = [s for s in chosen if s.status == Status.ACTIVE]
            report.not_active = len(chosen) - len(subscribers)
        has_row = dict(
            session.exec(
                select(Delivery.subscriber_id, Delivery.status).where(
                    Delivery.digest_date == digest_date,
                    col(Delivery.subscriber_id).in_([s.id for s in subscribers]),
                )
            ).all()
        )
        papers = trending(session, digest_date)
    report.due = len(subscribers)
    report.already_done = sum(1 for status in has_row.values() if status not in UNFINISHED)
    fresh = [s for s in subscribers if s.id not in has_row]
    if limit is not None:
        fresh = fresh[:limit]
    if dry_run:
        if fresh:
            compose(engine, settings, fresh, digest_date, report, papers, now)
        return report
    # The transport is set up first, so a missing key stops the run before anything is written.
    with get_transport(settings) as transport:
        ids = [s.id for s in subscribers if s.id is not None] if subscriber_ids is not None else None
        outbox.recover_in_flight(engine, settings, digest_date, ids, report)
        if fresh:
            compose(engine, settings, fresh, digest_date, report, papers, now)
        # Rows pending from this run, or left pending by an earlier one, go out now.
        outbox.send_pending(engine, settings, transport, digest_date, ids, limit, papers, report, fence=fence)
    return report
