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
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from jobs.schedule import Occurrence, SendSchedule, latest_occurrence
from newsletter.db import open_database, session_scope
from newsletter.dbtypes import utcnow
from newsletter.delivery.models import Delivery, DeliveryStatus
from newsletter.settings import Settings, get_settings
from subscribers.models import Frequency, Status, Subscriber

log = logging.getLogger("newsletter.jobs.dispatch")

#: Outbox rows a dead run left behind; the outbox knows how to finish them.
UNFINISHED = frozenset({DeliveryStatus.PENDING, DeliveryStatus.SENDING})


@dataclass
class DispatchReport:
    """What one dispatch run decided and what the outbox reported back."""

    now: datetime
    active: int = 0
    due: dict[date, list[int]] = field(default_factory=dict)
    missed: list[tuple[int, date]] = field(default_factory=list)
    sends: dict[date, Any] = field(default_factory=dict)  # digest date → outbox SendReport

    def summary(self) -> str:
        """One line for logs and the CLI."""
        due = sum(len(ids) for ids in self.due.values())
        dates = ", ".join(d.isoformat() for d in sorted(self.due)) or "none"
        return (
            f"dispatch at {self.now:%Y-%m-%d %H:%M} UTC: {self.active} active, {due} due "
            f"(digest dates: {dates}), {len(self.missed)} missed"
        )


@dataclass(frozen=True)
class Candidate:
    """What dispatch needs to know about an active subscriber (no interests, no profile)."""

    subscriber_id: int
    schedule: SendSchedule
    active_since: datetime  # digests scheduled before this are not theirs to miss


@dataclass(frozen=True)
class Decision:
    """What dispatch does for one subscriber now."""

    subscriber_id: int
    occurrence: Occurrence
    action: str  # "send" | "miss"


def decide(
    candidates: Iterable[Candidate],
    existing: dict[tuple[int, date], DeliveryStatus],
    now: datetime,
    grace: timedelta,
) -> list[Decision]:
    """The send/miss decisions for `candidates` given the outbox rows that exist."""
    # Thousands of subscribers share a few hundred (timezone, hour) schedules: work each out once.
    occurrences: dict[SendSchedule, Occurrence | None] = {}
    decisions: list[Decision] = []
    for candidate in candidates:
        if candidate.schedule not in occurrences:
            occurrences[candidate.schedule] = latest_occurrence(candidate.schedule, now)
        occurrence = occurrences[candidate.schedule]
        if occurrence is None:
            continue
        status = existing.get((candidate.subscriber_id, occurrence.digest_date))
        late = occurrence.missed(now, grace)
        if (status is None or status in UNFINISHED) and not late:
            decisions.append(Decision(candidate.subscriber_id, occurrence, "send"))
        elif status is None and occurrence.scheduled_at >= candidate.active_since:
            decisions.append(Decision(candidate.subscriber_id, occurrence, "miss"))
    return decisions


def active_candidates(session: Session) -> list[Candidate]:
    """Every active subscriber's schedule, read as plain columns (cheap for 100k rows)."""
    rows = session.exec(
        select(
            Subscriber.id,
            Subscriber.timezone,
            Subscriber.send_hour,
            Subscriber.frequency,
            Subscriber.weekday,
            Subscriber.confirmed_at,
            Subscriber.created_at,
        ).where(Subscriber.status == Status.ACTIVE)
    )
    return [
        Candidate(
            subscriber_id=sid,
            schedule=SendSchedule(tz, hour, weekly=str(freq) == Frequency.WEEKLY, weekday=weekday),
            active_since=confirmed or created,
        )
        for sid, tz, hour, freq, weekday, confirmed, created in rows
    ]


def dispatch(settings: Settings | None = None, *, now: datetime | None = None) -> DispatchReport:
    """Send every digest that is due now; record those past the grace period as missed."""
    settings = settings or get_settings()
    engine = open_database(settings)
    now = now or utcnow()
    grace = timedelta(minutes=settings.dispatch_grace_minutes)
    report = DispatchReport(now=now)
    with Session(engine) as session:
        candidates = active_candidates(session)
        existing = _recent_deliveries(session, now)
    report.active = len(candidates)
    decisions = decide(candidates, existing, now, grace)
    for decision in decisions:
        if decision.action == "send":
            report.due.setdefault(decision.occurrence.digest_date, []).append(decision.subscriber_id)
    report.missed = _record_missed(engine, [d for d in decisions if d.action == "miss"], grace)
    from newsletter.delivery.outbox import send_digests  # renders with MJML, ranks with torch

    for digest_date, ids in sorted(report.due.items()):
        report.sends[digest_date] = send_digests(
            engine, settings, digest_date=digest_date, subscriber_ids=sorted(ids), now=now
        )
    log.info(report.summary())
    return report


def _recent_deliveries(session: Session, now: datetime) -> dict[tuple[int, date], DeliveryStatus]:
    """Outbox rows of the dates any timezone can be on now (UTC−12 … UTC+14) or a week back."""
    since = (now - timedelta(days=8)).date()
    rows = session.exec(
        select(Delivery.subscriber_id, Delivery.digest_date, Delivery.status).where(
            col(Delivery.digest_date) >= since
        )
    )
    return {(sid, day): DeliveryStatus(status) for sid, day, status in rows}


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
