"""The `dispatch` job: send each subscriber's digest when their local send time has come.

The scheduler runs this every few minutes (`jobs.digest:dispatch`); `newsletter jobs run
dispatch` and `make demo` run the very same function. It is driven by the database, not by
remembering what it did: for each active subscriber it looks at the latest scheduled digest
(`jobs.due`, the rule `newsletter send` uses too) and the outbox row for that local date, so a restart, a second scheduler
or a run after a long pause all reach the same decision:

- no row yet, within the grace period → hand to the outbox (`send_digests`), grouped by date;
- a row left `pending`/`sending` by a run that died, within grace → hand it to the outbox too,
  which resumes it under its in-flight policy;
- no row and the grace period is over → record the digest as missed (never sent late); the
  next digest then covers everything since the last one sent;
- any other row → that digest is done (sent, quiet day, failed for `deliveries retry`).

Run by the scheduler, it runs in its leader's tenure (`lease.LEADING`) and fences every claim
with it: if the lease is lost meanwhile, it sends nothing more and the new leader goes on.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from sqlalchemy import Engine
from sqlmodel import Session

from jobs import lease
from jobs.due import Decision, decide, latest_occurrences, open_digests
from jobs.send import send_digests
from newsletter.db import open_database
from newsletter.dbtypes import utcnow
from newsletter.delivery import outbox
from newsletter.delivery.outbox import SendReport
from newsletter.settings import Settings, get_settings

log = logging.getLogger("newsletter.jobs.dispatch")


@dataclass
class DispatchReport:
    """What one dispatch run decided and what the outbox reported back."""

    now: datetime
    due: dict[date, list[int]] = field(default_factory=dict)
    missed: list[tuple[int, date]] = field(default_factory=list)
    sends: dict[date, SendReport] = field(default_factory=dict)

    def summary(self) -> str:
        """One line for logs and the CLI."""
        due = sum(len(ids) for ids in self.due.values())
        dates = ", ".join(d.isoformat() for d in sorted(self.due)) or "none"
        return (
            f"dispatch at {self.now:%Y-%m-%d %H:%M} UTC: {due} due "
            f"(digest dates: {dates}), {len(self.missed)} missed"
        )


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
    tenure = lease.LEADING.get()
    fence = lease.fence(tenure) if tenure is not None else None
    for digest_date, ids in sorted(report.due.items()):
        report.sends[digest_date] = sent = send_digests(
            engine, settings, digest_date=digest_date, subscriber_ids=sorted(ids), now=now, fence=fence
        )
        if sent.stopped:
            break
    log.info(report.summary())
    return report


def _record_missed(engine: Engine, decisions: list[Decision], grace: timedelta) -> list[tuple[int, date]]:
    """Record each missed digest in the outbox (never sent late; a racing scheduler may win)."""
    minutes = int(grace.total_seconds() // 60)
    recorded = outbox.record_missed(
        engine,
        [
            (
                d.subscriber_id,
                d.occurrence.digest_date,
                f"not sent: due at {d.occurrence.scheduled_at:%Y-%m-%d %H:%M} UTC, no scheduler "
                f"ran within the {minutes}-minute grace period",
            )
            for d in decisions
        ],
    )
    for missed in recorded:
        log.warning("digest of subscriber %s for %s missed", *missed)
    return recorded
