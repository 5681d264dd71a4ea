"""The `dispatch` job: send each subscriber's digest when their local send time has come.

The scheduler runs this every few minutes (`jobs.digest:dispatch`); `newsletter jobs run
dispatch` and `make demo` run the very same function. It is driven by the database, not by
remembering what it did: for each active subscriber it looks at the latest scheduled digest
(jobs/schedule.py) and the outbox row for that local date, so a restart, a second scheduler
or a run after a long pause all reach the same decision:

- no row yet, within the grace period → hand to the outbox (`send_digests`), grouped by date;
- a row left `pending`/`sending` by a run that died, within grace → hand it to the outbox too,
  which resumes it under its in-flight policy;
- no row and the grace period is over → record the digest as missed (never sent late); the
  next digest then covers everything since the last one sent;
- any other row → that digest is done (sent, quiet day, failed for `deliveries retry`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, case
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from jobs.schedule import Occurrence, SendSchedule, latest_occurrence
from newsletter.db import open_database, session_scope
from newsletter.dbtypes import utcnow
from newsletter.delivery.models import Delivery, DeliveryStatus
from newsletter.delivery.outbox import UNFINISHED, send_digests
from newsletter.settings import Settings, get_settings
from subscribers.models import Frequency, Status, Subscriber

log = logging.getLogger("newsletter.jobs.dispatch")

@dataclass
class DispatchReport:
    """What one dispatch run decided and what the outbox reported back."""

    now: datetime
    due: dict[date, list[int]] = field(default_factory=dict)
    missed: list[tuple[int, date]] = field(default_factory=list)
    sends: dict[date, Any] = field(default_factory=dict)  # digest date → outbox SendReport

    def summary(self) -> str:
        """One line for logs and the CLI."""
        due = sum(len(ids) for ids in self.due.values())
        dates = ", ".join(d.isoformat() for d in sorted(self.due)) or "none"
        return (
            f"dispatch at {self.now:%Y-%m-%d %H:%M} UTC: {due} due "
            f"(digest dates: {dates}), {len(self.missed)} missed"
        )


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
    return case((Subscriber.frequency == Frequency.WEEKLY, Subscriber.weekday), else_=-1)


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
        occurrence = by_key.get(tuple(key))  # type: ignore[call-overload]
        if occurrence is not None and sid not in finished[occurrence.digest_date]:
            open_ids[sid] = _schedule(*key)
    candidates = []
    for chunk in _chunks(sorted(open_ids)):
        unfinished = {
            (sid, day): DeliveryStatus(status)
            for sid, day, status in session.exec(
                select(Delivery.subscriber_id, Delivery.digest_date, Delivery.status).where(
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
            schedule = open_ids[sid]
            status = unfinished.get((sid, occurrences[schedule].digest_date))
            candidates.append(Candidate(sid, schedule, confirmed or created, status))
    return candidates


def _chunks(ids: list[int], size: int = 500) -> Iterable[list[int]]:
    return (ids[i : i + size] for i in range(0, len(ids), size))


def dispatch(settings: Settings | None = None, *, now: datetime | None = None) -> DispatchReport:
    """Send every digest that is due now; record those past the grace period as missed."""
    settings = settings or get_settings()
    engine = open_database(settings)
    now = now or utcnow()
    grace = timedelta(minutes=settings.dispatch_grace_minutes)
    report = DispatchReport(now=now)
    with Session(engine) as session:
        occurrences = latest_occurrences(session, now)
        decisions = decide(open_digests(session, occurrences), occurrences, now, grace)
    for decision in decisions:
        if decision.action == "send":
            report.due.setdefault(decision.occurrence.digest_date, []).append(decision.subscriber_id)
    report.missed = _record_missed(engine, [d for d in decisions if d.action == "miss"], grace)
    for digest_date, ids in sorted(report.due.items()):
        report.sends[digest_date] = send_digests(
            engine, settings, digest_date=digest_date, subscriber_ids=sorted(ids), now=now
        )
    log.info(report.summary())
    return report


def _record_missed(engine: Engine, decisions: list[Decision], grace: timedelta) -> list[tuple[int, date]]:
    """Write a `skipped-missed` outbox row per missed digest (a racing scheduler may win)."""
    recorded: list[tuple[int, date]] = []
    with session_scope(engine) as session:
        for decision in decisions:
            scheduled = decision.occurrence.scheduled_at
            row = Delivery(
                subscriber_id=decision.subscriber_id,
                digest_date=decision.occurrence.digest_date,
                status=DeliveryStatus.MISSED,
                last_error=(
                    f"not sent: due at {scheduled:%Y-%m-%d %H:%M} UTC, no scheduler ran "
                    f"within the {int(grace.total_seconds() // 60)}-minute grace period"
                ),
            )
            try:
                with session.begin_nested():
                    session.add(row)
            except IntegrityError:  # another dispatch recorded or sent it meanwhile
                continue
            recorded.append((decision.subscriber_id, decision.occurrence.digest_date))
            log.warning("digest of subscriber %s for %s missed", *recorded[-1])
    return recorded
