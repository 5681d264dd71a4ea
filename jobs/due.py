"""Who is due, and for which digest date: the one rule `newsletter send` and the scheduler share.

A digest belongs to a *local* date: the date in the subscriber's timezone on which it goes
out at their send hour, weekly digests only on their weekday (`jobs.schedule.SendSchedule`).
`newsletter send` asks "who gets the digest of this date" (`due_on`; by default each
reader's own today, `due_today`); the scheduler asks "whose latest scheduled digest has no
finished outbox row yet" (`latest_occurrences`, `open_digests`, `decide`). Both answer with
the same `SendSchedule.sends_on`, so the two can never disagree about a weekday.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import case
from sqlmodel import Session, col, select

from jobs.schedule import Occurrence, SendSchedule, latest_occurrence, zone
from newsletter.db import chunked
from newsletter.delivery.models import Delivery, DeliveryStatus
from newsletter.delivery.outbox import UNFINISHED
from subscribers.models import Frequency, Status, Subscriber


def schedule_of(subscriber: Subscriber) -> SendSchedule:
    """A subscriber's delivery timing."""
    return _schedule(
        subscriber.timezone,
        subscriber.send_hour,
        subscriber.weekday if subscriber.frequency == Frequency.WEEKLY else -1,
    )


def _active(session: Session) -> list[Subscriber]:
    return list(
        session.exec(
            select(Subscriber).where(Subscriber.status == Status.ACTIVE).order_by(col(Subscriber.id))
        )
    )


def due_on(session: Session, digest_date: date) -> list[Subscriber]:
    """Active subscribers with a digest on local date `digest_date` (pending ones never)."""
    return [s for s in _active(session) if schedule_of(s).sends_on(digest_date)]


def local_today(subscriber: Subscriber, now: datetime) -> date:
    """The date it is now in the subscriber's timezone (the digest date of their today)."""
    return now.astimezone(zone(subscriber.timezone)).date()


def due_today(session: Session, now: datetime) -> dict[date, list[Subscriber]]:
    """Active subscribers with a digest on their own local today, grouped by that date."""
    out: dict[date, list[Subscriber]] = {}
    for subscriber in _active(session):
        today = local_today(subscriber, now)
        if schedule_of(subscriber).sends_on(today):
            out.setdefault(today, []).append(subscriber)
    return out


@dataclass(frozen=True)
class Candidate:
    """An active subscriber whose latest scheduled digest has no finished outbox row."""

    subscriber_id: int
    schedule: SendSchedule
    active_since: datetime  # digests scheduled before this are not theirs to miss
    status: DeliveryStatus | None  # None: no row yet; else a row a dead run left unfinished


@dataclass(frozen=True)
class Decision:
    """What dispatch does for one subscriber now."""

    subscriber_id: int
    occurrence: Occurrence
    action: str  # "send" | "miss"


def decide(
    candidates: Iterable[Candidate],
    occurrences: Mapping[SendSchedule, Occurrence],
    now: datetime,
    grace: timedelta,
) -> list[Decision]:
    """Send what is due within the grace period; record as missed what is past it."""
    decisions: list[Decision] = []
    for candidate in candidates:
        occurrence = occurrences[candidate.schedule]
        if not occurrence.missed(now, grace):
            decisions.append(Decision(candidate.subscriber_id, occurrence, "send"))
        elif candidate.status is None and occurrence.scheduled_at >= candidate.active_since:
            decisions.append(Decision(candidate.subscriber_id, occurrence, "miss"))
    return decisions


def _weekday_key() -> Any:
    """A subscriber's weekday for weekly digests, -1 for daily ones (their weekday is moot)."""
    return case((col(Subscriber.frequency) == Frequency.WEEKLY, col(Subscriber.weekday)), else_=-1)


def _schedule(timezone: str, hour: int, weekday_key: int) -> SendSchedule:
    return SendSchedule(timezone, hour, weekly=weekday_key >= 0, weekday=max(weekday_key, 0))


def latest_occurrences(session: Session, now: datetime) -> dict[SendSchedule, Occurrence]:
    """The latest scheduled digest of every distinct schedule in use.

    100,000 subscribers share a few hundred (timezone, hour, weekday) schedules, so the time
    arithmetic runs per schedule, not per subscriber.
    """
    rows = session.exec(
        select(Subscriber.timezone, Subscriber.send_hour, _weekday_key())
        .where(Subscriber.status == Status.ACTIVE)
        .distinct()
    )
    occurrences = {}
    for row in rows:
        schedule = _schedule(*row)
        occurrence = latest_occurrence(schedule, now)
        if occurrence is not None:
            occurrences[schedule] = occurrence
    return occurrences


def open_digests(session: Session, occurrences: Mapping[SendSchedule, Occurrence]) -> list[Candidate]:
    """Active subscribers whose latest digest has no row, or one a dead run left unfinished.

    Reads plain ids and schedule columns (no ORM objects, no per-row type conversion), since
    a normal tick finds every digest done and should cost little for 100,000 subscribers;
    only the few open ones are then loaded in full.
    """
    finished: dict[date, set[int]] = {}
    for day in {o.digest_date for o in occurrences.values()}:
        finished[day] = set(
            session.exec(
                select(Delivery.subscriber_id).where(
                    Delivery.digest_date == day, col(Delivery.status).not_in(list(UNFINISHED))
                )
            )
        )
    by_key = {(s.timezone, s.send_hour, s.weekday if s.weekly else -1): o for s, o in occurrences.items()}
    rows = session.connection().execute(  # plain rows: no ORM bookkeeping for 100k of them
        select(Subscriber.id, Subscriber.timezone, Subscriber.send_hour, _weekday_key()).where(
            Subscriber.status == Status.ACTIVE
        )
    )
    open_ids = {}
    for sid, *key in rows:
        occurrence = by_key.get((key[0], key[1], key[2]))
        if occurrence is not None and sid not in finished[occurrence.digest_date]:
            open_ids[sid] = _schedule(*key)
    candidates = []
    for chunk in chunked(sorted(open_ids)):
        unfinished = {
            (sid, day): DeliveryStatus(status)
            for sid, day, status in session.exec(
                select(col(Delivery.subscriber_id), col(Delivery.digest_date), col(Delivery.status)).where(
                    col(Delivery.subscriber_id).in_(chunk),
                    col(Delivery.status).in_(list(UNFINISHED)),
                )
            )
        }
        details = session.exec(
            select(Subscriber.id, Subscriber.confirmed_at, Subscriber.created_at).where(
                col(Subscriber.id).in_(chunk)
            )
        )
        for sid, confirmed, created in details:
            assert sid is not None
            schedule = open_ids[sid]
            status = unfinished.get((sid, occurrences[schedule].digest_date))
            candidates.append(Candidate(sid, schedule, confirmed or created, status))
    return candidates
