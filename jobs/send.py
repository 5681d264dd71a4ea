"""Send a day's digests: who is due → compose (rank, record) → the outbox sends, once each.

`newsletter send`, `deliveries retry` (through the outbox), the scheduler's `dispatch` and
the queue workers all come through `send_digests`, so a digest is recorded before it is sent
and a rerun after a crash never ranks or sends it twice.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import date, datetime

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from jobs.compose import compose, items_for, recommend
from jobs.due import due_on
from newsletter.delivery import outbox
from newsletter.delivery.message import build_mail, new_message_id
from newsletter.delivery.models import Delivery
from newsletter.delivery.outbox import UNFINISHED, Fence, Progress, SendReport
from newsletter.delivery.transports import Outgoing, get_transport
from newsletter.digest.render import render_digest
from newsletter.errors import UserError
from newsletter.papers.queries import trending
from newsletter.settings import Settings
from subscribers.models import Status, Subscriber
from subscribers.profile import normalize_email


def send_digests(
    engine: Engine,
    settings: Settings,
    *,
    digest_date: date,
    subscriber_ids: Sequence[int] | None = None,
    dry_run: bool = False,
    limit: int | None = None,
    now: datetime | None = None,
    progress: Progress | None = None,
    fence: Fence | None = None,
) -> SendReport:
    """Send the digest of `digest_date` to the given (or all due) subscribers, once each.

    `subscriber_ids` (the scheduler's choice, or `--subscriber`) bypasses the daily/weekly
    rule but never the status: only active subscribers get digests. `limit` caps how many
    digests this run records and sends. `dry_run` ranks and renders, records and sends
    nothing, but still builds the transport, so a dry run fails where the real one could not
    send (SendGrid without a key). `progress` hears how many messages go out and each answer.
    `fence` is a condition every claim must meet (the scheduler passes "this leader still
    holds its lease"). Raises `TransportStopped` (a UserError) when the provider refuses every
    message; what was sent until then is recorded.
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
        get_transport(settings).close()  # a missing key or unknown transport fails here too
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
        if progress is not None:
            waiting = outbox.count_pending(engine, digest_date, ids)
            progress.set_total(min(waiting, limit) if limit is not None else waiting)
        outbox.send_pending(
            engine, settings, transport, digest_date, ids, limit, papers, report, progress, fence=fence
        )
    return report


def send_test(
    engine: Engine, settings: Settings, *, to: str, subscriber: Subscriber, digest_date: date
) -> tuple[str, int]:
    """Send `subscriber`'s digest of `digest_date`, ranked now, to the operator's address `to`;
    returns its subject and how many papers it holds.

    Nothing is recorded (the reader still gets their own digest), and the copy is rendered for
    a reader with no id, so its unsubscribe, preference and feedback links lead to "no
    subscription here" instead of acting on the reader's behalf; the links still show the
    host they are built from (NEWSLETTER_BASE_URL).
    """
    address = normalize_email(to)
    with Session(engine, expire_on_commit=False) as session:
        picks = recommend(session, settings, [subscriber]).get(subscriber.id or 0, [])
        items = items_for(session, picks)
        papers = trending(session, digest_date)
        session.rollback()  # ranking may have embedded phrases: a test send keeps nothing
        stand_in = subscriber.model_copy(update={"id": 0, "email": address})
        rendered = render_digest(settings, stand_in, items, digest_date=digest_date, trending=papers)
    rendered = replace(rendered, subject=f"[Test] {rendered.subject}")
    mail = build_mail(
        settings,
        to=address,
        subscriber_id=0,
        rendered=rendered,
        message_id=new_message_id(settings, f"test.{digest_date:%Y%m%d}.{subscriber.id}"),
        list_mail=False,
    )
    with get_transport(settings) as transport:
        results = list(transport.send([Outgoing(key=0, mail=mail, digest_date=digest_date)]))
    if not results or not results[0].ok:
        reason = results[0].error if results else "the transport sent nothing"
        raise UserError(f"the test digest to {address} was not sent: {reason}")
    return rendered.subject, len(items)
