"""The delivery outbox: record → claim → send → mark, never twice per (subscriber, date).

The outbox records the digests it is given, and sends what it recorded; deciding who is
due and what they get is the job of the floors above (`jobs.compose` ranks and hands over
`Plan`s). The order of writes is what makes a crash harmless:

1. **record** — a `Delivery` row (pending, or skipped-nothing-new) with its `DeliveryItem`s
   is committed before anything is sent. The unique (subscriber, digest_date) key means a
   second run, a concurrent scheduler or a rerun after a crash finds the row and never
   records it twice.
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

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import Engine, and_, case, func, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from newsletter.db import chunked, session_scope
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
from newsletter.digest.context import DigestItem
from newsletter.digest.render import render_digest
from newsletter.papers.models import Paper
from newsletter.papers.queries import trending as trending_papers
from newsletter.settings import Settings
from subscribers.models import Status, Subscriber

#: Statuses of a row whose digest has not reached an end yet.
UNFINISHED = frozenset({DeliveryStatus.PENDING, DeliveryStatus.SENDING})

#: Messages per transport batch (rows read, rendered and handed to the transport at once).
SEND_CHUNK = 200


class Progress(Protocol):
    """Something that shows a long run moving (the CLI's bar or log lines)."""

    def set_total(self, total: int) -> None:
        """How many messages the run will send."""

    def advance(self, count: int = 1) -> None:
        """`count` more messages have an answer."""


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


def recover_in_flight(
    engine: Engine, settings: Settings, digest_date: date, ids: Sequence[int] | None, report: SendReport
) -> None:
    """Apply `in_flight_policy` to rows a dead run left `sending` (of `ids`, else of every
    subscriber), and count what it did."""
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


@dataclass(frozen=True)
class Plan:
    """One subscriber's digest for a date, as the floors above composed it."""

    subscriber: Subscriber
    items: list[DigestItem]


def _new_delivery(settings: Settings, plan: Plan, digest_date: date) -> tuple[Delivery, list[DeliveryItem]]:
    subscriber = plan.subscriber
    assert subscriber.id is not None
    status = DeliveryStatus.PENDING if plan.items or subscriber.send_empty else DeliveryStatus.SKIPPED
    delivery = Delivery(
        subscriber_id=subscriber.id,
        digest_date=digest_date,
        status=status,
        message_id=new_message_id(settings, f"digest.{digest_date:%Y%m%d}.{subscriber.id}"),
    )
    rows = [
        DeliveryItem(
            delivery_id=0,
            paper_id=item.paper.id,
            rank=rank,
            score=float(item.score),
            reason=item.reason,
            matched_interest=item.matched_interest,
            highlight=item.highlight,
        )
        for rank, item in enumerate(plan.items, start=1)
        if item.paper.id is not None
    ]
    return delivery, rows


def _insert(session: Session, delivery: Delivery, rows: list[DeliveryItem]) -> None:
    session.add(delivery)
    session.flush()
    for row in rows:
        row.delivery_id = delivery.id  # type: ignore[assignment]
        session.add(row)


def record(
    engine: Engine, settings: Settings, plans: Sequence[Plan], digest_date: date, report: SendReport
) -> None:
    """Commit the plans' rows at once; if another run raced us, fall back to one by one.

    A plan whose (subscriber, date) row exists already is counted `already_done` and left
    alone: the first recorded digest is the one that goes out.
    """
    built = [_new_delivery(settings, plan, digest_date) for plan in plans]
    try:
        with session_scope(engine) as session:
            for delivery, rows in built:
                _insert(session, delivery, rows)
        written = [d for d, _ in built]
    except IntegrityError:
        written = []
        for plan in plans:
            delivery, rows = _new_delivery(settings, plan, digest_date)
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
        values = {
            "status": DeliveryStatus.SENT,
            "sent_at": now,
            "last_error": None,
            "provider_message_id": result.provider_id,
        }
        report.sent += 1
    elif not result.attempted:  # nothing reached the provider: it stays owed
        values = {
            "status": DeliveryStatus.PENDING,
            "last_error": result.error,
            "attempts": case((col(Delivery.attempts) > 0, col(Delivery.attempts) - 1), else_=0),
        }
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
    ids = [r.id for r in rows if r.id is not None]
    with session_scope(engine) as session:
        subscribers = {
            s.id: s
            for s in session.exec(
                select(Subscriber).where(col(Subscriber.id).in_([r.subscriber_id for r in rows]))
            )
        }
        by_delivery = stored_items(session, ids)
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
        rendered = render_digest(settings, subscriber, items, digest_date=row.digest_date, trending=trending)
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


def stored_items(session: Session, delivery_ids: Sequence[int]) -> dict[int, list[DigestItem]]:
    """The papers each delivery carries, in rank order, as digest items (what its email showed)."""
    out: dict[int, list[DigestItem]] = {}
    for chunk in chunked(delivery_ids):
        for item, paper in session.exec(
            select(DeliveryItem, Paper)
            .join(Paper, col(Paper.id) == col(DeliveryItem.paper_id))
            .where(col(DeliveryItem.delivery_id).in_(chunk))
            .order_by(col(DeliveryItem.delivery_id), col(DeliveryItem.rank))
        ):
            out.setdefault(item.delivery_id, []).append(
                DigestItem(paper, item.matched_interest, item.highlight, item.reason, item.score)
            )
    return out


def sent_digests(
    session: Session, subscriber_id: int, *, digest_date: date | None = None, limit: int = 30
) -> list[tuple[Delivery, list[DigestItem]]]:
    """A reader's sent digests with their papers, newest first (one date, or the latest
    `limit`): what "view in browser" and the reader's feed show."""
    query = select(Delivery).where(
        Delivery.subscriber_id == subscriber_id, Delivery.status == DeliveryStatus.SENT
    )
    if digest_date is not None:
        query = query.where(Delivery.digest_date == digest_date)
    rows = list(session.exec(query.order_by(col(Delivery.digest_date).desc()).limit(limit)))
    items = stored_items(session, [r.id for r in rows if r.id is not None])
    return [(row, items.get(row.id or 0, [])) for row in rows]


def send_pending(
    engine: Engine,
    settings: Settings,
    transport: Transport,
    digest_date: date,
    ids: Sequence[int] | None,
    limit: int | None,
    trending: list[Paper],
    report: SendReport,
    progress: Progress | None = None,
) -> None:
    """Send the pending digests of `digest_date` (of `ids`, else everybody's), `limit` at most.

    Raises `TransportStopped` when the provider refuses every message; what was sent until
    then is marked.
    """
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
                if progress is not None:
                    progress.advance(1)
        except TransportStopped as exc:
            report.stopped = exc.message
            raise


def count_pending(engine: Engine, digest_date: date, ids: Sequence[int] | None) -> int:
    """How many digests of `digest_date` (of `ids`, else everybody's) wait to be sent."""
    with Session(engine) as session:
        query = select(func.count()).where(
            Delivery.digest_date == digest_date, Delivery.status == DeliveryStatus.PENDING
        )
        if ids is not None:
            query = query.where(col(Delivery.subscriber_id).in_(list(ids)))
        return int(session.exec(query).one())


def record_missed(engine: Engine, missed: Sequence[tuple[int, date, str]]) -> list[tuple[int, date]]:
    """Write a `skipped-missed` row per (subscriber, date, reason) that has no row yet; returns
    those written (another run may have recorded or sent one meanwhile)."""
    recorded: list[tuple[int, date]] = []
    with session_scope(engine) as session:
        for subscriber_id, digest_date, reason in missed:
            row = Delivery(
                subscriber_id=subscriber_id,
                digest_date=digest_date,
                status=DeliveryStatus.MISSED,
                last_error=reason,
            )
            try:
                with session.begin_nested():
                    session.add(row)
            except IntegrityError:
                continue
            recorded.append((subscriber_id, digest_date))
    return recorded


def retry(
    engine: Engine,
    settings: Settings,
    *,
    digest_date: date | None = None,
    delivery_ids: Sequence[int] | None = None,
) -> list[SendReport]:
    """Put failed (and held in-flight) digests back to pending and send them again: those of
    `digest_date`, or just `delivery_ids` (the admin page's button), or all."""
    cutoff = utcnow() - timedelta(seconds=settings.in_flight_grace_seconds)
    with session_scope(engine) as session:
        query = select(Delivery).where(
            (col(Delivery.status) == DeliveryStatus.FAILED)
            | ((col(Delivery.status) == DeliveryStatus.SENDING) & (col(Delivery.updated_at) < cutoff))
        )
        if digest_date is not None:
            query = query.where(Delivery.digest_date == digest_date)
        if delivery_ids is not None:
            query = query.where(col(Delivery.id).in_(list(delivery_ids)))
        rows = list(session.exec(query))
        by_date: dict[date, list[int]] = {}
        for row in rows:
            row.status = DeliveryStatus.PENDING
            row.updated_at = utcnow()
            session.add(row)
            by_date.setdefault(row.digest_date, []).append(row.subscriber_id)
    reports: list[SendReport] = []
    if not by_date:
        return reports
    with get_transport(settings) as transport:
        for day, ids in sorted(by_date.items()):
            report = SendReport(digest_date=day, transport=settings.transport, due=len(ids))
            with Session(engine) as session:
                trending = trending_papers(session, day)
            send_pending(engine, settings, transport, day, ids, None, trending, report)
            reports.append(report)
    return reports


def last_sent(session: Session, subscriber_ids: Sequence[int]) -> dict[int, datetime]:
    """When each subscriber's latest digest was sent (absent: never)."""
    out: dict[int, datetime] = {}
    for chunk in chunked(subscriber_ids):
        query = (
            select(Delivery.subscriber_id, func.max(Delivery.sent_at))
            .where(Delivery.status == DeliveryStatus.SENT, col(Delivery.subscriber_id).in_(chunk))
            .group_by(col(Delivery.subscriber_id))
        )
        for sid, sent_at in session.exec(query):
            if sent_at is not None:
                out[sid] = sent_at
    return out


def papers_sent(
    session: Session, subscriber_ids: Sequence[int], since: datetime | None
) -> dict[int, set[int]]:
    """Papers in each subscriber's non-failed digests (first seen after `since`, when given):
    a paper is never sent to one reader twice."""
    out: dict[int, set[int]] = defaultdict(set)
    for chunk in chunked(subscriber_ids):
        query = (
            select(Delivery.subscriber_id, DeliveryItem.paper_id)
            .join(DeliveryItem, col(DeliveryItem.delivery_id) == col(Delivery.id))
            .where(Delivery.status != DeliveryStatus.FAILED, col(Delivery.subscriber_id).in_(chunk))
        )
        if since is not None:
            query = query.join(Paper, col(Paper.id) == col(DeliveryItem.paper_id)).where(
                Paper.first_seen_at > since
            )
        for sid, pid in session.exec(query):
            out[sid].add(pid)
    return out


def history(session: Session, subscriber_id: int) -> list[dict[str, object]]:
    """One subscriber's digests with their papers, oldest first ("download my data")."""
    out: list[dict[str, object]] = []
    for delivery in session.exec(
        select(Delivery).where(Delivery.subscriber_id == subscriber_id).order_by(col(Delivery.id))
    ):
        items = session.exec(
            select(DeliveryItem, Paper.title)
            .join(Paper, col(Paper.id) == col(DeliveryItem.paper_id))
            .where(DeliveryItem.delivery_id == delivery.id)
            .order_by(col(DeliveryItem.rank))
        )
        papers = [
            {
                "paper_id": item.paper_id,
                "title": title,
                "rank": item.rank,
                "matched_interest": item.matched_interest,
            }
            for item, title in items
        ]
        out.append(delivery.model_dump(mode="json", exclude={"subscriber_id"}) | {"papers": papers})
    return out


def stats(session: Session, *, days: int = 14, today: date | None = None) -> list[dict[str, Any]]:
    """Per digest date: due (rows recorded), sent, skipped, failed, unfinished — newest first."""
    since = (today or utcnow().date()) - timedelta(days=days - 1)
    rows = session.exec(
        select(col(Delivery.digest_date), col(Delivery.status), func.count())
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
