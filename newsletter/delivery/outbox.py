"""The delivery outbox: rank → render → record → send → mark, never twice per (subscriber, date).

The order of writes is what makes a crash harmless:

1. **record** — for each due subscriber without a row for the date, rank and write a
   `Delivery` (pending, or skipped-nothing-new) with its `DeliveryItem`s, committed before
   anything is sent. The unique (subscriber, digest_date) key means a second run, a
   concurrent scheduler or a rerun after a crash finds the row and never ranks again.
2. **claim** — right before the transport hands one message to the provider, a conditional
   `UPDATE … SET status='sending' WHERE status='pending'` claims it (one winner, any database).
3. **mark** — the provider's answer makes it `sent` (with the provider id), `failed` (with
   the reason) or, when nothing was attempted, `pending` again.

A kill -9 between 2 and 3 leaves a row `sending`: that message was in flight and nobody can
know whether the provider took it. `in_flight_policy` decides, explicitly and reported:
`resend` (default: a rare duplicate beats a silent miss), `mark-failed`, or `hold` (leave it
for `deliveries retry`). Rows younger than `in_flight_grace_seconds` are left alone: they may
belong to a run that is still alive.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import Engine, and_, case, func, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from newsletter.db import session_scope
from newsletter.dbtypes import utcnow
from newsletter.delivery.message import build_message, new_message_id
from newsletter.delivery.models import Delivery, DeliveryItem, DeliveryStatus
from newsletter.delivery.transports import (
    Outgoing,
    SendResult,
    Transport,
    TransportStopped,
    get_transport,
)
from newsletter.digest.context import TRENDING_COUNT, DigestItem
from newsletter.digest.render import render_digest
from newsletter.papers.models import Paper
from newsletter.settings import Settings
from subscribers.models import Frequency, Status, Subscriber

#: Statuses of a row whose digest has not reached an end yet.
UNFINISHED = frozenset({DeliveryStatus.PENDING, DeliveryStatus.SENDING})

#: Subscribers ranked per `recommend` call (each call re-reads the candidate pool, so large
#: chunks; ranking bounds its own memory inside a call), and messages per transport batch.
RANK_CHUNK = 5_000
SEND_CHUNK = 200


@dataclass
class SendReport:
    """What one `send_digests` run did; `summary()` is the line people read."""

    digest_date: date
    transport: str
    dry_run: bool = False
    due: int = 0
    already_done: int = 0
    recorded: int = 0
    skipped: int = 0
    sent: int = 0
    failed: int = 0
    rendered: int = 0
    not_active: int = 0
    in_flight: int = 0
    in_flight_policy: str = ""
    in_flight_young: int = 0
    stopped: str | None = None
    failures: list[dict[str, Any]] = field(default_factory=list)
    previews: list[dict[str, Any]] = field(default_factory=list)

    def summary(self) -> str:
        """One line: counts for people and logs."""
        if self.dry_run:
            return (
                f"dry run for {self.digest_date}: {self.due} due, {self.rendered} rendered, "
                f"{self.skipped} with nothing new, {self.already_done} already done; nothing sent"
            )
        parts = [
            f"{self.digest_date} via {self.transport}: {self.due} due",
            f"{self.sent} sent",
            f"{self.failed} failed",
            f"{self.skipped} skipped (nothing new)",
            f"{self.already_done} already done",
        ]
        if self.in_flight:
            parts.append(
                f"{self.in_flight} found in flight from a stopped run (policy {self.in_flight_policy})"
            )
        if self.in_flight_young:
            parts.append(f"{self.in_flight_young} in flight in another run, left alone")
        return ", ".join(parts)

    def as_dict(self) -> dict[str, Any]:
        """Stable keys for `--format json`."""
        return {
            "digest_date": self.digest_date.isoformat(),
            "transport": self.transport,
            "dry_run": self.dry_run,
            "due": self.due,
            "already_done": self.already_done,
            "recorded": self.recorded,
            "sent": self.sent,
            "failed": self.failed,
            "skipped": self.skipped,
            "rendered": self.rendered,
            "not_active": self.not_active,
            "in_flight": self.in_flight,
            "in_flight_policy": self.in_flight_policy,
            "in_flight_young": self.in_flight_young,
            "stopped": self.stopped,
            "failures": self.failures,
            "previews": self.previews,
        }


def is_due(subscriber: Subscriber, digest_date: date) -> bool:
    """Daily subscribers every day, weekly ones on their weekday (0 = Monday)."""
    if subscriber.frequency == Frequency.WEEKLY:
        return digest_date.weekday() == subscriber.weekday
    return True


def due_subscribers(session: Session, digest_date: date) -> list[Subscriber]:
    """Active subscribers whose digest falls on `digest_date` (pending and unsubscribed never)."""
    active = session.exec(
        select(Subscriber).where(Subscriber.status == Status.ACTIVE).order_by(col(Subscriber.id))
    )
    return [s for s in active if is_due(s, digest_date)]


def _day_bounds(day: date) -> tuple[datetime, datetime]:
    start = datetime.combine(day, time.min, tzinfo=UTC)
    return start, start + timedelta(days=1)


def trending_papers(session: Session, digest_date: date, limit: int = 60) -> list[Paper]:
    """The day's most upvoted papers (first seen the day before or on the date).

    More than shown are returned, so each reader's list still has some after removing the
    papers already picked for them.
    """
    start, end = _day_bounds(digest_date)
    return list(
        session.exec(
            select(Paper)
            .where(col(Paper.upvotes).is_not(None), col(Paper.upvotes) > 0)
            .where(col(Paper.first_seen_at) >= start - timedelta(days=1))
            .where(col(Paper.first_seen_at) < end)
            .order_by(col(Paper.upvotes).desc(), col(Paper.id))
            .limit(limit)
        )
    )


def _stale_sending(
    engine: Engine, settings: Settings, digest_date: date, ids: Sequence[int] | None, report: SendReport
) -> None:
    """Apply `in_flight_policy` to rows a dead run left `sending`, and count what it did."""
    cutoff = utcnow() - timedelta(seconds=settings.in_flight_grace_seconds)
    policy = settings.in_flight_policy
    report.in_flight_policy = policy
    with session_scope(engine) as session:
        query = select(Delivery).where(
            Delivery.digest_date == digest_date, Delivery.status == DeliveryStatus.SENDING
        )
        if ids is not None:
            query = query.where(col(Delivery.subscriber_id).in_(list(ids)))
        for row in session.exec(query):
            if row.updated_at > cutoff:
                report.in_flight_young += 1
                continue
            report.in_flight += 1
            note = f"in flight when a run stopped ({row.updated_at:%Y-%m-%d %H:%M:%S} UTC)"
            if policy == "resend":
                row.status = DeliveryStatus.PENDING
                row.last_error = f"{note}; sending again (in_flight_policy=resend)"
            elif policy == "mark-failed":
                row.status = DeliveryStatus.FAILED
                row.last_error = f"{note}; marked failed (in_flight_policy=mark-failed)"
            else:
                row.last_error = f"{note}; held (in_flight_policy=hold): see `deliveries retry`"
                continue
            row.updated_at = utcnow()
            session.add(row)


def _to_items(picks: Iterable[Any], papers: dict[int, Paper]) -> list[DigestItem]:
    return [
        DigestItem(
            paper=papers[p.paper_id],
            matched_interest=p.matched_interest,
            highlight=p.highlight,
            reason=p.reason,
        )
        for p in picks
        if p.paper_id in papers
    ]


def _load_papers(session: Session, ids: Iterable[int]) -> dict[int, Paper]:
    wanted = sorted(set(ids))
    if not wanted:
        return {}
    return {p.id: p for p in session.exec(select(Paper).where(col(Paper.id).in_(wanted)))}  # type: ignore[misc]


def items_for(session: Session, picks: Sequence[Any]) -> list[DigestItem]:
    """Ranking's picks, in order, as digest items with their papers loaded."""
    return _to_items(picks, _load_papers(session, (p.paper_id for p in picks)))


def _new_delivery(
    settings: Settings, subscriber: Subscriber, digest_date: date, items: list[DigestItem], picks: list[Any]
) -> tuple[Delivery, list[DeliveryItem]]:
    assert subscriber.id is not None
    status = DeliveryStatus.PENDING if items or subscriber.send_empty else DeliveryStatus.SKIPPED
    delivery = Delivery(
        subscriber_id=subscriber.id,
        digest_date=digest_date,
        status=status,
        message_id=new_message_id(settings, f"digest.{digest_date:%Y%m%d}.{subscriber.id}"),
    )
    known = {item.paper.id for item in items}
    rows = [
        DeliveryItem(
            delivery_id=0,
            paper_id=pick.paper_id,
            rank=rank,
            score=float(pick.score),
            reason=pick.reason,
            matched_interest=pick.matched_interest,
            highlight=pick.highlight,
        )
        for rank, pick in enumerate(picks, start=1)
        if pick.paper_id in known
    ]
    return delivery, rows


def _insert(session: Session, delivery: Delivery, rows: list[DeliveryItem]) -> None:
    session.add(delivery)
    session.flush()
    for row in rows:
        row.delivery_id = delivery.id  # type: ignore[assignment]
        session.add(row)


def _record(
    engine: Engine,
    settings: Settings,
    subscribers: list[Subscriber],
    digest_date: date,
    report: SendReport,
    trending: list[Paper],
    now: datetime | None,
) -> None:
    """Rank and write rows (or, in a dry run, rank and render only), chunk by chunk."""
    from newsletter.ranking.service import recommend  # loads the embedding model

    for start in range(0, len(subscribers), RANK_CHUNK):
        chunk = subscribers[start : start + RANK_CHUNK]
        with session_scope(engine) as session:
            picks = recommend(session, settings, chunk, now=now)
            papers = _load_papers(session, (p.paper_id for ps in picks.values() for p in ps))
            planned = []
            for subscriber in chunk:
                chosen = list(picks.get(subscriber.id or 0, []))
                items = _to_items(chosen, papers)
                planned.append((subscriber, items, chosen))
            if report.dry_run:
                session.rollback()
                for subscriber, items, _ in planned:
                    _preview(settings, subscriber, items, digest_date, trending, report)
                continue
        _write_planned(engine, settings, planned, digest_date, report)


def _preview(
    settings: Settings,
    subscriber: Subscriber,
    items: list[DigestItem],
    digest_date: date,
    trending: list[Paper],
    report: SendReport,
) -> None:
    if not items and not subscriber.send_empty:
        report.skipped += 1
        return
    rendered = render_digest(settings, subscriber, items, digest_date=digest_date, trending=trending)
    report.rendered += 1
    report.previews.append(
        {
            "email": subscriber.email,
            "papers": len(items),
            "subject": rendered.subject,
            "html_bytes": len(rendered.html.encode()),
        }
    )


def _write_planned(
    engine: Engine,
    settings: Settings,
    planned: list[tuple[Subscriber, list[DigestItem], list[Any]]],
    digest_date: date,
    report: SendReport,
) -> None:
    """Commit the chunk's rows at once; if another run raced us, fall back to one by one."""
    built = [(s, *_new_delivery(settings, s, digest_date, items, picks)) for s, items, picks in planned]
    try:
        with session_scope(engine) as session:
            for _, delivery, rows in built:
                _insert(session, delivery, rows)
        written = [d for _, d, _ in built]
    except IntegrityError:
        written = []
        for subscriber, items, picks in planned:
            delivery, rows = _new_delivery(settings, subscriber, digest_date, items, picks)
            try:
                with session_scope(engine) as session:
                    _insert(session, delivery, rows)
                written.append(delivery)
            except IntegrityError:
                report.already_done += 1
    report.recorded += len(written)
    report.skipped += sum(1 for d in written if d.status == DeliveryStatus.SKIPPED)


def _claimer(engine: Engine):  # type: ignore[no-untyped-def]
    """The transport's claim hook: pending → sending, atomically, right before sending."""

    def claim(item: Outgoing) -> bool:
        with engine.begin() as conn:
            result = conn.execute(
                update(Delivery)
                .where(and_(col(Delivery.id) == item.key, col(Delivery.status) == DeliveryStatus.PENDING))
                .values(
                    status=DeliveryStatus.SENDING,
                    attempts=col(Delivery.attempts) + 1,
                    updated_at=utcnow(),
                )
            )
            return result.rowcount == 1

    return claim


def _mark(engine: Engine, result: SendResult, report: SendReport) -> None:
    """Record the provider's answer at once (one UPDATE, committed: a 202 is never forgotten)."""
    now = utcnow()
    values: dict[str, Any]
    if result.ok:
        values = {"status": DeliveryStatus.SENT, "sent_at": now, "last_error": None,
                  "provider_message_id": result.provider_id}
        report.sent += 1
    elif not result.attempted:  # nothing reached the provider: it stays owed
        values = {"status": DeliveryStatus.PENDING, "last_error": result.error,
                  "attempts": case((col(Delivery.attempts) > 0, col(Delivery.attempts) - 1), else_=0)}
    else:
        values = {"status": DeliveryStatus.FAILED, "last_error": result.error}
        report.failed += 1
        report.failures.append({"delivery_id": result.key, "error": result.error})
    with engine.begin() as conn:
        conn.execute(update(Delivery).where(col(Delivery.id) == result.key).values(updated_at=now, **values))


def _outgoing_batch(
    engine: Engine, settings: Settings, rows: list[Delivery], trending: list[Paper], report: SendReport
) -> list[Outgoing]:
    """Render each pending row from its stored items (a rerun shows exactly what was recorded)."""
    ids = [r.id for r in rows]
    with session_scope(engine) as session:
        subscribers = {
            s.id: s
            for s in session.exec(
                select(Subscriber).where(col(Subscriber.id).in_([r.subscriber_id for r in rows]))
            )
        }
        stored = list(
            session.exec(
                select(DeliveryItem, Paper)
                .join(Paper, col(Paper.id) == col(DeliveryItem.paper_id))
                .where(col(DeliveryItem.delivery_id).in_(ids))
                .order_by(col(DeliveryItem.delivery_id), col(DeliveryItem.rank))
            )
        )
    by_delivery: dict[int, list[DigestItem]] = {}
    for item, paper in stored:
        by_delivery.setdefault(item.delivery_id, []).append(
            DigestItem(paper, item.matched_interest, item.highlight, item.reason)
        )
    batch: list[Outgoing] = []
    for row in rows:
        subscriber = subscribers.get(row.subscriber_id)
        assert row.id is not None
        if subscriber is None or subscriber.status != Status.ACTIVE:
            report.not_active += 1
            status = subscriber.status if subscriber else "erased"
            _mark(engine, SendResult(row.id, False, error=f"not sent: the subscriber is {status}"), report)
            continue
        items = by_delivery.get(row.id, [])
        rendered = render_digest(
            settings, subscriber, items, digest_date=row.digest_date, trending=trending
        )
        report.rendered += 1
        message = build_message(
            settings,
            to=subscriber.email,
            subscriber_id=row.subscriber_id,
            rendered=rendered,
            message_id=row.message_id or new_message_id(settings, f"digest.{row.id}"),
        )
        batch.append(Outgoing(key=row.id, message=message, digest_date=row.digest_date))
    return batch


def _send_pending(
    engine: Engine,
    settings: Settings,
    transport: Transport,
    digest_date: date,
    ids: Sequence[int] | None,
    limit: int | None,
    trending: list[Paper],
    report: SendReport,
) -> None:
    claim = _claimer(engine)
    remaining = limit
    last_id = 0
    while remaining is None or remaining > 0:
        size = SEND_CHUNK if remaining is None else min(SEND_CHUNK, remaining)
        with Session(engine, expire_on_commit=False) as session:
            query = (
                select(Delivery)
                .where(Delivery.digest_date == digest_date, Delivery.status == DeliveryStatus.PENDING)
                .where(col(Delivery.id) > last_id)
                .order_by(col(Delivery.id))
                .limit(size)
            )
            if ids is not None:
                query = query.where(col(Delivery.subscriber_id).in_(list(ids)))
            rows = list(session.exec(query))
        if not rows:
            return
        last_id = rows[-1].id or last_id
        batch = _outgoing_batch(engine, settings, rows, trending, report)
        if remaining is not None:
            remaining -= len(rows)
        try:
            for result in transport.send(batch, claim):
                _mark(engine, result, report)
        except TransportStopped as exc:
            report.stopped = exc.message
            raise


def send_digests(
    engine: Engine,
    settings: Settings,
    *,
    digest_date: date,
    subscriber_ids: Sequence[int] | None = None,
    dry_run: bool = False,
    limit: int | None = None,
    now: datetime | None = None,
) -> SendReport:
    """Send the digest of `digest_date` to the given (or all due) subscribers, once each.

    `subscriber_ids` (the scheduler's choice, or `--subscriber`) bypasses the daily/weekly
    rule but never the status: only active subscribers get digests. `limit` caps how many
    digests this run records and sends. `dry_run` ranks and renders, records and sends
    nothing. Raises `TransportStopped` (a UserError) when the provider refuses every
    message; what was sent until then is recorded.
    """
    report = SendReport(digest_date=digest_date, transport=settings.transport, dry_run=dry_run)
    with Session(engine, expire_on_commit=False) as session:
        if subscriber_ids is None:
            subscribers = due_subscribers(session, digest_date)
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
        trending = trending_papers(session, digest_date)
    report.due = len(subscribers)
    report.already_done = sum(1 for status in has_row.values() if status not in UNFINISHED)
    fresh = [s for s in subscribers if s.id not in has_row]
    if limit is not None:
        fresh = fresh[:limit]
    if dry_run:
        if fresh:
            _record(engine, settings, fresh, digest_date, report, trending, now)
        return report
    # The transport is set up first, so a missing key stops the run before anything is written.
    with get_transport(settings) as transport:
        _stale_sending(engine, settings, digest_date, subscriber_ids, report)
        if fresh:
            _record(engine, settings, fresh, digest_date, report, trending, now)
        # Rows pending from this run, or left pending by an earlier one, go out now.
        _send_pending(
            engine, settings, transport, digest_date,
            [s.id for s in subscribers if s.id is not None] if subscriber_ids is not None else None,
            limit, trending, report,
        )
    return report


def retry(engine: Engine, settings: Settings, *, digest_date: date | None = None) -> list[SendReport]:
    """Put failed (and held in-flight) digests back to pending and send them again."""
    cutoff = utcnow() - timedelta(seconds=settings.in_flight_grace_seconds)
    with session_scope(engine) as session:
        query = select(Delivery).where(
            (col(Delivery.status) == DeliveryStatus.FAILED)
            | ((col(Delivery.status) == DeliveryStatus.SENDING) & (col(Delivery.updated_at) < cutoff))
        )
        if digest_date is not None:
            query = query.where(Delivery.digest_date == digest_date)
        rows = list(session.exec(query))
        by_date: dict[date, list[int]] = {}
        for row in rows:
            row.status = DeliveryStatus.PENDING
            row.updated_at = utcnow()
            session.add(row)
            by_date.setdefault(row.digest_date, []).append(row.subscriber_id)
    return [
        send_digests(engine, settings, digest_date=day, subscriber_ids=ids)
        for day, ids in sorted(by_date.items())
    ]


def stats(session: Session, *, days: int = 14, today: date | None = None) -> list[dict[str, Any]]:
    """Per digest date: due (rows recorded), sent, skipped, failed, unfinished — newest first."""
    since = (today or utcnow().date()) - timedelta(days=days - 1)
    rows = session.exec(
        select(Delivery.digest_date, Delivery.status, func.count())
        .where(col(Delivery.digest_date) >= since)
        .group_by(col(Delivery.digest_date), col(Delivery.status))
    )
    table: dict[date, dict[str, Any]] = {}
    for day, status, count in rows:
        entry = table.setdefault(
            day,
            {"date": day.isoformat(), "due": 0, "sent": 0, "skipped": 0, "failed": 0, "unfinished": 0},
        )
        entry["due"] += count
        key = {
            DeliveryStatus.SENT: "sent",
            DeliveryStatus.FAILED: "failed",
            DeliveryStatus.PENDING: "unfinished",
            DeliveryStatus.SENDING: "unfinished",
        }.get(DeliveryStatus(status), "skipped")
        entry[key] += count
    return [table[d] for d in sorted(table, reverse=True)]
